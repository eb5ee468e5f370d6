//! Membership changes over TCP: the transport dials members from the configuration, not only
//! from start-up flags. A fourth node, named on no old node's command line, is added as a
//! learner at its address, receives the log and is promoted; a node joins from an empty data
//! directory through any member; a dead member is replaced in one call, which can be made
//! again. Real sockets and real time, generous deadlines, no timing assertions.
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
    // Addresses known everywhere: the start-up members carry the addresses of the flags.
    let info = admin.membership().await.unwrap();
    for (id, addr) in old {
        let listed = info.config.member(NodeId(*id)).map(|m| m.addr.clone());
        assert_eq!(listed, Some(addr.to_string()), "node {id}");
    }
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

/// Starts nodes `members` with data directories under `dir`.
async fn start_on_disk(
    dir: &std::path::Path,
    members: &[(u64, SocketAddr)],
) -> BTreeMap<u64, Server> {
    let mut servers = BTreeMap::new();
    for (id, addr) in members {
        let mut builder = Server::builder()
            .id(*id)
            .data_dir(dir.join(format!("node-{id}")));
        for (peer, at) in members.iter().filter(|(p, _)| p != id) {
            builder = builder.peer(*peer, *at);
        }
        servers.insert(*id, builder.serve_tcp(*addr).await.unwrap());
    }
    servers
}

/// Node `id` at `addr`, joining through `via` from an empty directory under `dir`.
fn joiner(dir: &std::path::Path, id: u64, via: SocketAddr) -> dlm::ServerBuilder {
    Server::builder()
        .id(id)
        .data_dir(dir.join(format!("node-{id}")))
        .join(via.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_joins_through_any_member_from_an_empty_directory() {
    let dir = tempfile::tempdir().unwrap();
    let members = support::local_members(4);
    let (old, new) = members.split_at(3);
    let mut servers = start_on_disk(dir.path(), old).await;
    let leader = support::wait_until_settled(&servers, Duration::from_secs(20)).await;
    let user = client(old);
    let guard = user.lock("jobs").await.unwrap();
    user.append(&guard, "jobs.log", b"before\n".to_vec())
        .await
        .unwrap();

    // Through a follower, so that the way to the leader is followed.
    let via = old.iter().find(|(id, _)| *id != leader).unwrap().1;
    let (id4, addr4) = new[0];
    let node4 = joiner(dir.path(), id4, via)
        .promote_after_join(Duration::from_secs(60))
        .serve_tcp(addr4)
        .await
        .unwrap();
    servers.insert(id4, node4);
    let admin = client(old);
    let info = admin.membership().await.unwrap();
    assert!(info.config.is_voter(NodeId(id4)), "{info:?}");
    // A retried add of the same id and address is answered, not refused.
    let again = admin.add_learner(NodeId(id4), addr4.to_string()).await;
    assert_eq!(again.map(|c| c.is_voter(NodeId(id4))), Ok(true));
    let elsewhere = admin.add_learner(NodeId(id4), "127.0.0.1:1").await;
    assert_eq!(
        elsewhere,
        Err(ClientError::Rejected(Rejection::Membership(
            MembershipRejection::AlreadyMember { id: NodeId(id4) }
        )))
    );

    user.append(&guard, "jobs.log", b"after\n".to_vec())
        .await
        .unwrap();
    let commit = servers[&leader].status().commit;
    applied(&servers[&id4], commit).await;
    // Restarted with the same flags: already a member, so nothing is asked; its recovered
    // configuration is the one in force.
    servers.remove(&id4).unwrap().shutdown().await.unwrap();
    // (The old listener closes in the background: try the port again for a while.)
    let mut tries = 0;
    let node4 = loop {
        match joiner(dir.path(), id4, via).serve_tcp(addr4).await {
            Ok(node) => break node,
            Err(e) if tries < 50 => {
                tries += 1;
                tracing::debug!("restart: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("restart: {e}"),
        }
    };
    servers.insert(id4, node4);
    let info = admin.membership().await.unwrap();
    assert!(info.config.is_voter(NodeId(id4)));
    user.release(guard).await.unwrap();
    for server in servers.into_values() {
        server.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_member_is_replaced_in_one_call_that_can_be_made_again() {
    let dir = tempfile::tempdir().unwrap();
    let members = support::local_members(4);
    let (old, new) = members.split_at(3);
    let mut servers = start_on_disk(dir.path(), old).await;
    support::wait_until_settled(&servers, Duration::from_secs(20)).await;
    let admin = client(old);
    assert_eq!(
        admin.replace(NodeId(2), NodeId(2), "x").await,
        Err(dlm::ReplaceError::SameNode(NodeId(2)))
    );
    servers.remove(&3).unwrap().kill().await;

    // The new node joins as a learner on its own; `replace` finds it added and goes on.
    let (id5, addr5) = (5, new[0].1);
    let node5 = joiner(dir.path(), id5, old[0].1)
        .serve_tcp(addr5)
        .await
        .unwrap();
    servers.insert(id5, node5);
    assert!(matches!(
        admin.replace(NodeId(3), NodeId(id5), "127.0.0.1:1").await,
        Err(dlm::ReplaceError::IdTaken { .. })
    ));
    let config = admin
        .replace(NodeId(3), NodeId(id5), addr5.to_string())
        .await
        .unwrap();
    let voters: Vec<u64> = config.voters().iter().map(|m| m.id.get()).collect();
    assert_eq!(voters, [1, 2, 5]);
    // Made again: every step is found done.
    let again = admin
        .replace(NodeId(3), NodeId(id5), addr5.to_string())
        .await
        .unwrap();
    assert_eq!(again, config);
    // Nobody to replace.
    assert!(matches!(
        admin.replace(NodeId(3), NodeId(6), "127.0.0.1:1").await,
        Err(dlm::ReplaceError::Step {
            step: dlm::ReplaceStep::Remove,
            ..
        })
    ));
    let user = client(&[old[0], old[1], (id5, addr5)]);
    let guard = user.lock("after").await.unwrap();
    user.release(guard).await.unwrap();
    for server in servers.into_values() {
        server.shutdown().await.unwrap();
    }
}
