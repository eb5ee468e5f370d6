//! Membership changes through the shipped client on a 3-node in-memory cluster: a fourth node,
//! started outside the configuration, is added as a learner, catches up, is promoted, and
//! takes part (the cluster then serves with any one of the four down); then the first node is
//! removed. Refusals are typed. No authentication, so every client may make the calls.
#![cfg(feature = "mem")]

mod support;

use dlm::mem::{MemClient, MemNetwork};
use dlm::{Client, ClientConfig, ClientError, MembershipRejection, NodeId, Rejection, Server};
use std::collections::BTreeMap;
use std::time::Duration;

fn client(net: &MemNetwork, nodes: &[u64], seed: u64) -> Client<MemClient> {
    let mut cfg = ClientConfig::new(nodes.iter().copied().map(NodeId));
    cfg.seed = Some(seed);
    support::tune(&mut cfg);
    cfg.deadline = Duration::from_secs(30);
    Client::new(net.client(), cfg)
}

/// Asks until `ok` holds of the configuration in force (no sleeps but the polling's).
async fn until(admin: &Client<MemClient>, ok: impl Fn(&dlm::introspection::MembersInfo) -> bool) {
    loop {
        if let Ok(info) = admin.membership().await {
            if ok(&info) {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_fourth_node_joins_as_a_learner_is_promoted_and_the_first_is_removed() {
    let net = MemNetwork::new(11);
    let mut servers = support::serve_mem(&net, &[1, 2, 3]).await;
    support::wait_until_settled(&servers, Duration::from_secs(10)).await;
    // Node 4 knows the start-up members but is not one: it waits to be added.
    let mut builder = Server::builder().id(4);
    for peer in [1, 2, 3] {
        builder = builder.member(peer);
    }
    servers.insert(4, builder.serve_mem(&net).await.unwrap());
    let admin = client(&net, &[1, 2, 3, 4], 1);
    let user = client(&net, &[1, 2, 3, 4], 2);
    let guard = user.lock("jobs").await.unwrap();
    user.append(&guard, "jobs.log", b"before\n".to_vec())
        .await
        .unwrap();

    let refused = admin.promote(NodeId(4)).await;
    assert_eq!(
        refused,
        Err(ClientError::Rejected(Rejection::Membership(
            MembershipRejection::UnknownMember { id: NodeId(4) }
        )))
    );
    let config = admin.add_learner(NodeId(4), "node4").await.unwrap();
    assert!(config.is_learner(NodeId(4)));
    // Promoted once it has caught up (asked again until it has).
    let config = loop {
        match admin.promote(NodeId(4)).await {
            Ok(config) => break config,
            Err(ClientError::Rejected(Rejection::Membership(
                MembershipRejection::NotCaughtUp { .. },
            ))) => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(e) => panic!("promote: {e}"),
        }
    };
    assert!(config.is_voter(NodeId(4)));
    assert_eq!(config.voters().len(), 4);
    until(&admin, |info| {
        info.committed && info.config.is_voter(NodeId(4))
    })
    .await;

    // The per-peer metrics follow the configuration, not the start-up flags.
    let peers = |server: &Server| {
        let server = server.metrics();
        async move {
            let snapshot = server.read(Duration::from_secs(5)).await;
            snapshot
                .peers
                .iter()
                .map(|p| p.peer.get())
                .collect::<Vec<_>>()
        }
    };
    caught_up(&servers, 2).await;
    assert_eq!(peers(&servers[&2]).await, vec![1, 3, 4]);

    // Node 4 holds the guarded file like everyone else.
    user.append(&guard, "jobs.log", b"after\n".to_vec())
        .await
        .unwrap();
    let last = servers[&1].status().commit;
    loop {
        if servers[&4].status().applied >= last {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Remove node 1 (likely the leader: it hands over first).
    let config = admin.remove(NodeId(1)).await.unwrap();
    assert!(!config.contains(NodeId(1)));
    until(&admin, |info| {
        info.committed && !info.config.contains(NodeId(1))
    })
    .await;
    servers.remove(&1).unwrap().shutdown().await.unwrap();
    caught_up(&servers, 2).await;
    assert_eq!(peers(&servers[&2]).await, vec![3, 4]);
    user.append(&guard, "jobs.log", b"without 1\n".to_vec())
        .await
        .unwrap();
    let data = user.read("jobs.log").await.unwrap();
    assert_eq!(data, b"before\nafter\nwithout 1\n");
    assert_eq!(
        admin.remove(NodeId(1)).await,
        Err(ClientError::Rejected(Rejection::Membership(
            MembershipRejection::UnknownMember { id: NodeId(1) }
        )))
    );
    user.release(guard).await.unwrap();
    for server in servers.into_values() {
        server.shutdown().await.unwrap();
    }
}

/// Waits until node `id` has applied what any node has committed so far (so it has every
/// configuration committed so far in force).
async fn caught_up(servers: &BTreeMap<u64, Server>, id: u64) {
    let last = servers.values().map(|s| s.status().commit).max();
    while Some(servers[&id].status().applied) < last {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A replacement that stops half-way (the new node is not running yet, so it never catches
/// up) leaves it a learner and says so, typed; run again once the node runs, it skips the add
/// and finishes.
#[tokio::test(start_paused = true)]
async fn a_replacement_that_stopped_half_way_is_finished_by_running_it_again() {
    let net = MemNetwork::new(12);
    let mut servers = support::serve_mem(&net, &[1, 2, 3]).await;
    support::wait_until_settled(&servers, Duration::from_secs(10)).await;
    let admin = client(&net, &[1, 2, 3, 4], 1);
    let stopped = admin
        .replace_within(NodeId(3), NodeId(4), "node4", Duration::from_secs(2))
        .await;
    assert!(
        matches!(
            stopped,
            Err(dlm::ReplaceError::NotCaughtUp { id: NodeId(4), .. })
        ),
        "{stopped:?}"
    );
    let info = admin.membership().await.unwrap();
    assert!(info.config.is_learner(NodeId(4)) && info.config.is_voter(NodeId(3)));

    let mut builder = Server::builder().id(4);
    for peer in [1, 2, 3] {
        builder = builder.member(peer);
    }
    servers.insert(4, builder.serve_mem(&net).await.unwrap());
    let config = admin
        .replace_within(NodeId(3), NodeId(4), "node4", Duration::from_secs(30))
        .await
        .unwrap();
    let voters: Vec<u64> = config.voters().iter().map(|m| m.id.get()).collect();
    assert_eq!(voters, [1, 2, 4]);
    assert!(config.learners().is_empty());
    for server in servers.into_values() {
        server.shutdown().await.unwrap();
    }
}
