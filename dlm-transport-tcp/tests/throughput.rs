//! Loopback round trips per second against an echo node. Prints figures, asserts none:
//! `cargo test --release -p dlm-transport-tcp -- --ignored --nocapture`.

mod common;

use common::*;
use dlm_core::runtime::ClientTransport;
use dlm_core::{ClientId, NodeId};
use dlm_transport_tcp::TcpTransport;
use std::sync::Arc;
use std::time::Instant;

const CALLS: u64 = 20_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "prints a throughput figure; run on demand in release"]
async fn loopback_round_trips_per_second() {
    let node = TcpTransport::bind(config(1)).await.unwrap();
    let addr = node.local_addr();
    spawn_echo(node);
    let client = Arc::new(client_for(&[(1, addr)]));
    client.call(NodeId(1), request(0)).await.unwrap(); // connect outside the timing

    let start = Instant::now();
    for seq in 1..=CALLS {
        client.call(NodeId(1), request(seq)).await.unwrap();
    }
    let rate = CALLS as f64 / start.elapsed().as_secs_f64();
    println!("tcp loopback, 1 client, sequential calls: {rate:.0} round trips/s ({CALLS} calls)");

    let concurrency = 16u64;
    let start = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|t| {
            let client = client.clone();
            tokio::spawn(async move {
                for seq in 1..=CALLS / concurrency {
                    let mut req = request(seq);
                    req.client = ClientId(1000 + u128::from(t));
                    client.call(NodeId(1), req).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let rate = CALLS as f64 / start.elapsed().as_secs_f64();
    println!(
        "tcp loopback, 1 client, {concurrency} concurrent calls: {rate:.0} round trips/s ({CALLS} calls)"
    );
}
