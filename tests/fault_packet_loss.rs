//! Lossy client links: 30% of requests and of responses between every client and every node are
//! lost. Every client still completes all its lock → append → release cycles (retries are
//! deduplicated by the session), and no append is applied twice.
//!
//! In-memory network, real time, a seeded loss pattern; only outcomes are asserted.

mod support;

use dlm::mem::{MemClient, MemNetwork};
use dlm::runtime::{Client, ClientConfig};
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
fn lossy_client(net: &MemNetwork, drop: f64) -> Client<MemClient> {
    let transport = net.client();
    let end = transport.endpoint();
    for id in NODES {
        net.set_drop(end, NodeId(id), drop);
        net.set_drop(NodeId(id), end, drop);
    }
    let mut cfg = ClientConfig::new(NODES.map(NodeId));
    cfg.attempt_timeout = Duration::from_millis(100);
    cfg.deadline = Duration::from_secs(30);
    Client::new(transport, cfg)
}

// Found bug: about 1 run in 4, a `release` whose first answer was lost is retried (same seq) and
// answered `StaleToken` instead of the deduplicated `Released` (the lock had meanwhile passed to
// the next waiter). Run with `cargo test --test fault_packet_loss -- --ignored`.
#[ignore = "flaky: a retried release can be answered StaleToken (dedup bug, see comment)"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_cycle_completes_once_under_loss() {
    let net = MemNetwork::new(3);
    let servers = start(&net).await;
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let client = lossy_client(&net, 0.3);
            tokio::spawn(async move {
                for i in 0..CYCLES {
                    let g = client.lock("L").await.unwrap();
                    let data = format!("client {c} cycle {i}\n").into_bytes();
                    client.append(&g, "f", data).await.unwrap();
                    client.release(g).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        tokio::time::timeout(BOUND, t).await.unwrap().unwrap();
    }
    let reader = lossy_client(&net, 0.0);
    let text = String::from_utf8(reader.read("f").await.unwrap()).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), CLIENTS * CYCLES, "appends lost or doubled");
    lines.sort_unstable();
    lines.dedup();
    assert_eq!(lines.len(), CLIENTS * CYCLES, "an append was applied twice");
    assert!(net.stats().dropped > 0, "no message was lost");
    for s in servers {
        s.shutdown().await.unwrap();
    }
}
