//! Fencing: a holder paused past its lease (its links cut for longer than the lease, then healed)
//! comes back and appends with its old token. The service refuses (stale token or not holder),
//! the file is untouched by it, and the client knows it lost the lock.
//!
//! In-memory network, real time, a 1 s lease; only outcomes are asserted.

mod support;

use dlm::mem::{Endpoint, MemClient, MemNetwork};
use dlm::runtime::{Client, ClientConfig, ClientError};
use dlm::{NodeId, Server};
use std::time::Duration;

const NODES: [u64; 3] = [1, 2, 3];
const BOUND: Duration = Duration::from_secs(30);

async fn start(net: &MemNetwork) -> Vec<Server> {
    support::start_mem_cluster(net, &NODES).await
}

fn client(net: &MemNetwork, lease: Duration) -> (Client<MemClient>, Endpoint) {
    let transport = net.client();
    let endpoint = transport.endpoint();
    let mut cfg = ClientConfig::new(NODES.map(NodeId));
    cfg.lease = lease;
    cfg.attempt_timeout = Duration::from_millis(200);
    (Client::new(transport, cfg), endpoint)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_holder_is_fenced_off() {
    let net = MemNetwork::new(11);
    let servers = start(&net).await;
    let (stale, stale_end) = client(&net, Duration::from_secs(1));
    let (next, _) = client(&net, Duration::from_secs(10));

    let old = tokio::time::timeout(BOUND, stale.lock("L"))
        .await
        .unwrap()
        .unwrap();
    let at = stale.append(&old, "f", b"first\n".to_vec()).await.unwrap();
    assert_eq!(at, 0);

    // Pause: the holder hears nothing and is heard by no one for longer than its lease. The
    // next client's grant is the proof that the lease ran out on the service's side.
    for id in NODES {
        net.cut_both(stale_end, NodeId(id));
    }
    let new = tokio::time::timeout(BOUND, next.lock("L"))
        .await
        .unwrap()
        .unwrap();
    assert!(new.token() > old.token());
    let at = next.append(&new, "f", b"second\n".to_vec()).await.unwrap();
    assert_eq!(at, 6);

    // Resume, and write with the old token.
    for id in NODES {
        net.heal_both(stale_end, NodeId(id));
    }
    let refused = tokio::time::timeout(BOUND, stale.append(&old, "f", b"stale\n".to_vec()))
        .await
        .unwrap();
    assert!(
        matches!(
            refused,
            Err(ClientError::StaleToken) | Err(ClientError::NotHolder)
        ),
        "stale append not refused: {refused:?}"
    );
    assert_eq!(
        next.read("f").await.unwrap(),
        b"first\nsecond\n".to_vec(),
        "the file was touched by the stale holder"
    );
    // The client knows: the guard reports the loss.
    tokio::time::timeout(BOUND, old.lost())
        .await
        .expect("the stale holder never learnt it lost the lock");
    assert!(old.is_lost());

    next.release(new).await.unwrap();
    drop(old);
    for s in servers {
        s.shutdown().await.unwrap();
    }
}
