//! A 3-node TCP cluster with a shared secret, through the facade: the members authenticate each
//! other and elect a leader, a client with the secret locks and appends, a client with a wrong
//! secret or none fails at once with the reason (`ClientError::Refused`, not `Unavailable` at
//! its deadline), and a member with a wrong secret is left out.
#![cfg(feature = "tcp")]

mod support;

use dlm::{ClientError, ClusterAccess, ClusterSecret, Server, DEFAULT_CLUSTER_ID};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const SECRET: &str = "the facade test's cluster secret";
const WRONG: &str = "not the facade test's cluster secret";

fn secret(text: &str) -> ClusterSecret {
    ClusterSecret::new(text).unwrap()
}

/// Starts members `1..=3` in memory storage, node `id` with `secrets(id)`.
async fn start(
    secrets: impl Fn(u64) -> &'static str,
) -> (Vec<(u64, SocketAddr)>, BTreeMap<u64, Server>) {
    let members = support::local_members(3);
    let mut servers = BTreeMap::new();
    for &(id, addr) in &members {
        let mut builder = Server::builder().id(id).secret(secret(secrets(id)));
        for &(peer, peer_addr) in &members {
            if peer != id {
                builder = builder.peer(peer, peer_addr);
            }
        }
        servers.insert(id, builder.serve_tcp(addr).await.unwrap());
    }
    (members, servers)
}

async fn shutdown(servers: BTreeMap<u64, Server>) {
    for server in servers.into_values() {
        server.shutdown().await.unwrap();
    }
}

fn client(
    members: &[(u64, SocketAddr)],
    secret: Option<ClusterSecret>,
) -> dlm::Client<dlm::tcp::TcpClient> {
    let mut access = ClusterAccess::new(DEFAULT_CLUSTER_ID);
    access.secret = secret;
    dlm::connect_tcp_with(members.to_vec(), access, |cfg| {
        support::tune(cfg);
        // Far longer than a refusal may take: failing at the deadline would fail the test.
        cfg.deadline = Duration::from_secs(60);
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_with_a_secret_serves_only_clients_that_know_it() {
    let (members, servers) = start(|_| SECRET).await;
    support::wait_for_leader(&servers, Duration::from_secs(10)).await;

    let good = client(&members, Some(secret(SECRET)));
    let guard = good.lock("l").await.unwrap();
    good.append(&guard, "l.log", b"with the secret\n".to_vec())
        .await
        .unwrap();
    good.release(guard).await.unwrap();

    for (secret, why) in [
        (
            Some(secret(WRONG)),
            "the node's proof did not verify: wrong secret?",
        ),
        (
            None,
            "authentication failed: this node requires the cluster secret",
        ),
    ] {
        let began = Instant::now();
        match client(&members, secret.clone())
            .try_lock("l")
            .await
            .map(|_| ())
        {
            Err(ClientError::Refused(reason)) => assert!(reason.contains(why), "{reason}"),
            other => panic!("a client with {secret:?} got {other:?}"),
        }
        assert!(began.elapsed() < Duration::from_secs(20), "{why}");
    }
    shutdown(servers).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_with_a_wrong_secret_is_left_out() {
    let (_, servers) = start(|id| if id == 3 { WRONG } else { SECRET }).await;
    let (leader, _) = support::wait_for_leader(&servers, Duration::from_secs(10)).await;
    assert_ne!(leader, 3);
    // Many heartbeats later, node 3 has still heard from no leader.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let outsider = servers[&3].status();
    assert_eq!(outsider.leader, None, "{outsider:?}");
    assert_eq!(servers[&1].status().leader, servers[&2].status().leader);
    shutdown(servers).await;
}
