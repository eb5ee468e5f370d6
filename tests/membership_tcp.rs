//! Membership changes over TCP: the transport dials members from the configuration, not only
//! from start-up flags. A fourth node, named on no old node's command line, is added as a
//! learner at its address, receives the log and is promoted. Real sockets and real time,
//! generous deadlines, no timing assertions.
#![cfg(feature = "tcp")]

mod support;

use dlm::tcp::TcpClient;
use dlm::{Client, ClientError, MembershipRejection, NodeId, Rejection, Server};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

/// A client of the nodes `nodes`, with the tests' tuning and a long deadline.
fn client(nodes: &[(u64, SocketAddr)]) -> Client<TcpClient> {
    dlm::connect_tcp_with(nodes.iter().copied(), dlm::DEFAULT_CLUSTER_ID, |cfg| {
        support::tune(cfg);
        cfg.deadline = Duration::from_secs(30);
    })
}

/// Starts nodes `members` (each told of the others by flag), in memory.
async fn start(members: &[(u64, SocketAddr)]) -> BTreeMap<u64, Server> {
    let mut servers = BTreeMap::new();
    for (id, addr) in members {
        let mut builder = Server::builder().id(*id);
        for (peer, at) in members.iter().filter(|(p, _)| p != id) {
            builder = builder.peer(*peer, *at);
        }
        servers.insert(*id, builder.serve_tcp(*addr).await.unwrap());
    }
    servers
}

/// Promotes `id`, asking again while it has not caught up (for at most 30 s).
async fn promote(admin: &Client<TcpClient>, id: u64) -> dlm::Membership {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "node {id} never caught up"
        );
        match admin.promote(NodeId(id)).await {
            Ok(config) => return config,
            Err(ClientError::Rejected(Rejection::Membership(
                MembershipRejection::NotCaughtUp { .. },
            ))) => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(e) => panic!("promote {id}: {e}"),
        }
    }
}

/// Waits until node `id` has applied at least `index`.
async fn applied(server: &Server, index: dlm::LogIndex) {
    while server.status().applied < index {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_learner_named_on_no_command_line_is_dialed_from_the_configuration() {
    let members = support::local_members(4);
    let (old, new) = members.split_at(3);
    let mut servers = start(old).await;
    support::wait_until_settled(&servers, Duration::from_secs(20)).await;
    let user = client(old);
    let guard = user.lock("jobs").await.unwrap();
    user.append(&guard, "jobs.log", b"before\n".to_vec())
        .await
        .unwrap();

    // Node 4 knows the old members (it must answer the leader); they know nothing of it.
    let (id4, addr4) = new[0];
    let mut builder = Server::builder().id(id4);
    for (peer, at) in old {
        builder = builder.peer(*peer, *at);
    }
    servers.insert(id4, builder.serve_tcp(addr4).await.unwrap());
    let admin = client(old);
    let config = admin
        .add_learner(NodeId(id4), addr4.to_string())
        .await
        .unwrap();
    assert!(config.is_learner(NodeId(id4)));
    let config = promote(&admin, id4).await;
    assert!(config.is_voter(NodeId(id4)));

    user.append(&guard, "jobs.log", b"after\n".to_vec())
        .await
        .unwrap();
    let commit = servers[&support::wait_for_leader(&servers, Duration::from_secs(10))
        .await
        .0]
        .status()
        .commit;
    applied(&servers[&id4], commit).await;
    let info = admin.membership().await.unwrap();
    assert_eq!(
        info.config.member(NodeId(id4)).map(|m| m.addr.clone()),
        Some(addr4.to_string())
    );
    user.release(guard).await.unwrap();
    for server in servers.into_values() {
        server.shutdown().await.unwrap();
    }
}
