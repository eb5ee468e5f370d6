//! The shipped client's calls are cancellable and bounded, over the in-memory transport under
//! paused tokio time (so every interleaving replays): a dropped or timed-out call leaves the
//! service as if it had never been made, or had completed and been undone; every call ends,
//! naming what each node did when nothing could be reached; and leases are discounted by a
//! drift rate.
#![cfg(feature = "mem")]

mod support;

use dlm::mem::{LinkFaults, MemClient, MemNetwork};
use dlm::{Client, ClientConfig, ClientError, NodeCause, NodeId, Role, Server};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::time::{sleep, timeout, Instant};

const MEMBERS: [u64; 3] = [1, 2, 3];

/// A 3-node cluster whose links take 1–2 ms, so that a release and a cancel can cross.
async fn cluster(seed: u64) -> (MemNetwork, BTreeMap<u64, Server>) {
    let net = MemNetwork::new(seed);
    net.set_default_faults(LinkFaults {
        delay: (Duration::from_millis(1), Duration::from_millis(2)),
        ..LinkFaults::NONE
    });
    let servers = support::serve_mem(&net, &MEMBERS).await;
    support::wait_until_settled(&servers, Duration::from_secs(10)).await;
    (net, servers)
}

fn client(net: &MemNetwork, nodes: &[u64], seed: u64) -> Client<MemClient> {
    let mut cfg = ClientConfig::new(nodes.iter().copied().map(NodeId));
    cfg.seed = Some(seed);
    support::tune(&mut cfg);
    Client::new(net.client(), cfg)
}

async fn shutdown(servers: BTreeMap<u64, Server>) {
    for server in servers.into_values() {
        server.shutdown().await.unwrap();
    }
}

/// The race of a cancelled `lock()`: A holds the lock; B waits for it under a 50 ms time-out;
/// A releases right around the moment B gives up, 40 times, each at another offset. The
/// release may grant the lock to B just as B's cancel is sent: the cancel must give that grant
/// back at once, so a third client finds the lock free a round trip later, not a lease later.
#[tokio::test(start_paused = true)]
async fn a_lock_call_given_up_as_it_is_granted_leaves_the_lock_free() {
    let (net, servers) = cluster(11).await;
    let (a, b, c) = (
        client(&net, &MEMBERS, 1),
        client(&net, &MEMBERS, 2),
        client(&net, &MEMBERS, 3),
    );
    let mut granted_to_b = 0;
    for try_no in 0..40u64 {
        let name = format!("race-{try_no}");
        let held = a.lock(name.as_str()).await.unwrap();
        let waiting = tokio::spawn({
            let (b, name) = (b.clone(), name.clone());
            async move { timeout(Duration::from_millis(50), b.lock(name.as_str())).await }
        });
        // From 10 ms before B gives up to 10 ms after, in 0.5 ms steps.
        sleep(Duration::from_micros(40_000 + 500 * try_no)).await;
        a.release(held).await.unwrap();
        if let Ok(got) = waiting.await.unwrap() {
            granted_to_b += 1;
            b.release(got.unwrap()).await.unwrap();
        }
        // A round trip and a commit take a few milliseconds here; a lease takes 2 s.
        sleep(Duration::from_millis(100)).await;
        let free = c.try_lock(name.as_str()).await;
        assert!(
            free.is_ok(),
            "try {try_no}: the lock stayed taken after B gave up: {free:?}"
        );
        c.release(free.unwrap()).await.unwrap();
    }
    // Both sides of the race were run: B sometimes got the lock in time, sometimes not.
    assert!(
        0 < granted_to_b && granted_to_b < 40,
        "{granted_to_b} of 40"
    );
    shutdown(servers).await;
}

/// A release whose future is dropped goes on in the background: its first message is lost,
/// the caller gives up on it, and still the lock is free soon after the network heals, not
/// held (and kept alive) forever.
#[tokio::test(start_paused = true)]
async fn a_dropped_release_still_releases() {
    let (net, servers) = cluster(12).await;
    let transport = net.client();
    let endpoint = transport.endpoint();
    let mut cfg = ClientConfig::new(MEMBERS.map(NodeId));
    cfg.seed = Some(1);
    support::tune(&mut cfg);
    let a = Client::new(transport, cfg);
    let c = client(&net, &MEMBERS, 3);
    let held = a.lock("r").await.unwrap();
    for node in MEMBERS {
        net.cut(endpoint, NodeId(node));
    }
    let dropped = timeout(Duration::from_millis(10), a.release(held)).await;
    assert!(
        dropped.is_err(),
        "the release was answered through a cut link"
    );
    for node in MEMBERS {
        net.heal(endpoint, NodeId(node));
    }
    let next = c.lock_timeout("r", Duration::from_secs(1)).await;
    assert!(next.is_ok(), "the lock was not released: {next:?}");
    shutdown(servers).await;
}

/// A try-lock dropped while in flight leaves nothing behind either.
#[tokio::test(start_paused = true)]
async fn a_dropped_try_lock_leaves_the_lock_free() {
    let (net, servers) = cluster(13).await;
    let (b, c) = (client(&net, &MEMBERS, 2), client(&net, &MEMBERS, 3));
    // Let B's session open first, so the try-lock is in flight when it is dropped.
    b.read("nothing").await.ok();
    let dropped = timeout(Duration::from_micros(1_500), b.try_lock("t")).await;
    assert!(
        dropped.is_err(),
        "the try-lock was answered before it was dropped"
    );
    sleep(Duration::from_millis(100)).await;
    let free = c.try_lock("t").await;
    assert!(free.is_ok(), "the lock stayed taken: {free:?}");
    shutdown(servers).await;
}

/// Nothing to reach: every node is unknown to the network. `lock()` (which may wait without
/// limit once it reaches a leader) still ends within the deadline, and says why for each node;
/// a `try_lock` right after does not first wait for anything the first call left behind.
#[tokio::test(start_paused = true)]
async fn every_call_ends_with_each_nodes_cause_when_nothing_can_be_reached() {
    let net = MemNetwork::new(14);
    let c = client(&net, &[7, 8, 9], 4);
    let deadline = c.config().deadline;
    let started = Instant::now();
    let error = c.lock("x").await.unwrap_err();
    assert!(
        started.elapsed() <= deadline,
        "lock() took {:?}",
        started.elapsed()
    );
    let ClientError::Unavailable(unreachable) = &error else {
        panic!("{error:?}");
    };
    let nodes: Vec<u64> = unreachable.causes.iter().map(|(n, _)| n.get()).collect();
    assert_eq!(nodes, vec![7, 8, 9]);
    for (node, cause) in &unreachable.causes {
        assert!(
            matches!(cause, NodeCause::Connection(reason) if reason.contains("unknown")),
            "node {node}: {cause:?}"
        );
    }
    assert!(
        error.to_string().contains("node 8: connection failed"),
        "{error}"
    );

    let started = Instant::now();
    let again = c.try_lock("x").await.unwrap_err();
    assert!(matches!(again, ClientError::Unavailable(_)), "{again:?}");
    assert!(
        started.elapsed() <= deadline,
        "try_lock took {:?}",
        started.elapsed()
    );

    let started = Instant::now();
    let bounded = c.lock_timeout("x", Duration::from_millis(700)).await;
    assert!(
        matches!(bounded, Err(ClientError::Unavailable(_))),
        "{bounded:?}"
    );
    assert!(started.elapsed() <= Duration::from_millis(700));
}

/// `safe_until` discounts the lease by the drift rate plus the margin (2% + 10 ms by default),
/// counted from the send: a 2 s lease is safe for at most 1.95 s.
#[tokio::test(start_paused = true)]
async fn safe_until_discounts_the_drift_rate() {
    let (net, servers) = cluster(15).await;
    let a = client(&net, &MEMBERS, 1);
    let lease = a.config().lease;
    let sent = Instant::now().into_std();
    let held = a.lock("d").await.unwrap();
    let bound = sent + lease.mul_f64(0.98) - Duration::from_millis(10);
    assert!(
        held.safe_until() <= bound,
        "{:?} past {bound:?}",
        held.safe_until()
    );
    assert!(held.safe_until() > sent + lease / 2);
    a.release(held).await.unwrap();
    shutdown(servers).await;
}

/// `Client::status` asks a node about itself; `cluster_status` asks them all. Client and guard
/// print for debugging.
#[tokio::test(start_paused = true)]
async fn status_and_debug() {
    let (net, servers) = cluster(16).await;
    let a = client(&net, &MEMBERS, 1);
    let one = a.status(NodeId(2)).await.unwrap();
    assert_eq!(one.id, NodeId(2));
    let all = a.cluster_status().await;
    assert_eq!(all.len(), 3);
    let leaders = all
        .iter()
        .filter(|(_, s)| s.as_ref().is_ok_and(|s| s.role == Role::Leader))
        .count();
    assert_eq!(leaders, 1);
    let held = a.lock("p").await.unwrap();
    assert!(format!("{a:?}").contains("Client"));
    assert!(format!("{held:?}").contains("token"));
    a.release(held).await.unwrap();
    shutdown(servers).await;
}
