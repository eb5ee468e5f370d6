//! Duplicating network: every message on every link (client and peer) is delivered twice. Every
//! client completes its lock → append → release cycles and each append appears exactly once.
//!
//! In-memory network, real time; only outcomes are asserted.

mod support;

use dlm::mem::{LinkFaults, MemClient, MemNetwork};
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

fn client(net: &MemNetwork) -> Client<MemClient> {
    let transport = net.client();
    let mut cfg = ClientConfig::new(NODES.map(NodeId));
    cfg.attempt_timeout = Duration::from_millis(100);
    cfg.deadline = Duration::from_secs(30);
    Client::new(transport, cfg)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_append_once_under_duplication() {
    let net = MemNetwork::new(5);
    net.set_default_faults(LinkFaults {
        duplicate: 1.0,
        ..LinkFaults::NONE
    });
    let servers = start(&net).await;
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let client = client(&net);
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
    let reader = client(&net);
    let text = String::from_utf8(reader.read("f").await.unwrap()).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), CLIENTS * CYCLES, "appends lost or doubled");
    lines.sort_unstable();
    lines.dedup();
    assert_eq!(lines.len(), CLIENTS * CYCLES, "an append was applied twice");
    assert!(net.stats().duplicated > 0, "no message was duplicated");
    for s in servers {
        s.shutdown().await.unwrap();
    }
}
