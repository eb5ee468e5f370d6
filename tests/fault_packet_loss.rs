//! Lossy client links: 30% of requests and of responses between every client and every node are
//! lost. Every client still completes all its lock → append → release cycles (retries are
//! deduplicated by the session), and no append is applied twice.
//!
//! In-memory network in paused (simulated) time, 50 seeded loss patterns; only outcomes are
//! asserted. Each client also retries `lock` on `GrantExpired`, as a user would.

mod support;

use dlm::mem::{MemClient, MemNetwork};
use dlm::runtime::{Client, ClientConfig, ClientError, LockGuard};
use dlm::{NodeId, Server};
use std::time::Duration;

const NODES: [u64; 3] = [1, 2, 3];
const CLIENTS: usize = 3;
const CYCLES: usize = 10;
const BOUND: Duration = Duration::from_secs(120);

async fn start(net: &MemNetwork) -> Vec<Server> {
    support::start_mem_cluster(net, &NODES).await
}

/// A client whose links to and from every node lose `drop` of their messages.
fn lossy_client(net: &MemNetwork, drop: f64, seed: u64) -> Client<MemClient> {
    let transport = net.client();
    let end = transport.endpoint();
    for id in NODES {
        net.set_drop(end, NodeId(id), drop);
        net.set_drop(NodeId(id), end, drop);
    }
    let mut cfg = ClientConfig::new(NODES.map(NodeId));
    cfg.seed = Some(seed);
    cfg.attempt_timeout = Duration::from_millis(100);
    cfg.deadline = Duration::from_secs(30);
    Client::new(transport, cfg)
}

/// Takes `L`, asking again when a grant's answer was lost for longer than its lease: then the
/// grant is worthless, and the client says so instead of handing out a lost guard.
async fn lock_until_granted(client: &Client<MemClient>) -> LockGuard<MemClient> {
    loop {
        match client.lock("L").await {
            Ok(guard) => return guard,
            Err(ClientError::GrantExpired) => continue,
            Err(e) => panic!("lock: {e}"),
        }
    }
}

/// Each seed is a different loss pattern; simulated time makes a run take milliseconds.
const SEEDS: std::ops::Range<u64> = 0..50;

#[test]
fn every_cycle_completes_once_under_loss() {
    for seed in SEEDS {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .unwrap();
        rt.block_on(cycles_under_loss(seed));
    }
}

async fn cycles_under_loss(seed: u64) {
    let net = MemNetwork::new(seed);
    let servers = start(&net).await;
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let client = lossy_client(&net, 0.3, seed * 100 + c as u64);
            tokio::spawn(async move {
                for i in 0..CYCLES {
                    let g = lock_until_granted(&client).await;
                    let data = format!("client {c} cycle {i}\n").into_bytes();
                    client.append(&g, "f", data).await.unwrap();
                    client.release(g).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        let done = tokio::time::timeout(BOUND, t).await;
        done.unwrap_or_else(|_| panic!("seed {seed}: cycles did not finish"))
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    }
    let reader = lossy_client(&net, 0.0, seed * 100 + 99);
    let text = String::from_utf8(reader.read("f").await.unwrap()).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.len(),
        CLIENTS * CYCLES,
        "seed {seed}: appends lost or doubled"
    );
    lines.sort_unstable();
    lines.dedup();
    assert_eq!(
        lines.len(),
        CLIENTS * CYCLES,
        "seed {seed}: an append applied twice"
    );
    assert!(net.stats().dropped > 0, "no message was lost");
    for s in servers {
        s.shutdown().await.unwrap();
    }
}
