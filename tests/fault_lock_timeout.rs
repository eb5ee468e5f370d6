//! A crashed client cannot hold a lock forever: a holder that stops renewing (its links to every
//! node cut, as if its process died) loses the lock when its lease ends, and the next waiter in
//! the queue gets it.
//!
//! The default lease is `ClientConfig::lease` = 10 s (renewed every third of a lease while a
//! guard lives); this test asks for 1 s so that it finishes quickly. It runs on the in-memory
//! network in real time and asserts only outcomes, never durations (the time-outs only bound a
//! hang).

mod support;

use dlm::mem::MemNetwork;
use dlm::runtime::{Client, ClientConfig};
use dlm::{NodeId, Server};
use std::time::Duration;

const NODES: [u64; 3] = [1, 2, 3];
const BOUND: Duration = Duration::from_secs(30);

async fn start(net: &MemNetwork) -> Vec<Server> {
    support::start_mem_cluster(net, &NODES).await
}

fn client(net: &MemNetwork, lease: Duration) -> (Client<dlm::mem::MemClient>, dlm::mem::Endpoint) {
    let transport = net.client();
    let endpoint = transport.endpoint();
    let mut cfg = ClientConfig::new(NODES.map(NodeId));
    cfg.lease = lease;
    cfg.attempt_timeout = Duration::from_millis(200);
    (Client::new(transport, cfg), endpoint)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_holder_loses_lock_to_next_waiter() {
    let net = MemNetwork::new(7);
    let servers = start(&net).await;
    let (holder, holder_end) = client(&net, Duration::from_secs(1));
    let (waiter, _) = client(&net, Duration::from_secs(10));

    let held = tokio::time::timeout(BOUND, holder.lock("L"))
        .await
        .unwrap()
        .unwrap();
    // The holder "crashes": nothing it sends arrives, nothing is sent back to it.
    for id in NODES {
        net.cut_both(holder_end, NodeId(id));
    }

    // The waiter queues behind it and is granted the lock once the lease has run out.
    let granted = tokio::time::timeout(BOUND, waiter.lock("L"))
        .await
        .expect("the waiter was never granted the lock")
        .unwrap();
    assert!(granted.token() > held.token(), "fencing token did not grow");

    // The silent holder, for its part, learns that its lease is over.
    tokio::time::timeout(BOUND, held.lost())
        .await
        .expect("the silent holder never saw its lock lost");
    assert!(held.is_lost());

    // The lock is the waiter's: a third client finds it busy.
    let (other, _) = client(&net, Duration::from_secs(10));
    assert_eq!(
        other.try_lock("L").await.err(),
        Some(dlm::ClientError::Busy)
    );
    waiter.release(granted).await.unwrap();
    drop(held);
    for s in servers {
        s.shutdown().await.unwrap();
    }
}
