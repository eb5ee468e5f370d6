//! A data directory that joined a cluster starts from the voters it found then, whatever the
//! flags of a later start: without flags it is not a cluster of one that grants locks on its
//! own, and with `--join` it does not wait for a leader that a whole-cluster restart cannot
//! give it. Here the joiner's first start was cut short: its directory holds the record of the
//! cluster it joined and nothing else, and that cluster is down.
#![cfg(feature = "tcp")]

mod support;

use dlm::{NodeId, Server};
use std::time::Duration;

/// What `dlm server --join` records before the node's first start (the format is the file's).
fn record_join(dir: &std::path::Path, voters: &[(u64, std::net::SocketAddr)]) {
    std::fs::create_dir_all(dir).unwrap();
    let mut text = String::new();
    for (id, addr) in voters {
        text.push_str(&format!("voter = {id} {addr}\n"));
    }
    std::fs::write(dir.join("dlm-joined"), text).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joined_directory_starts_from_its_recorded_voters_whatever_the_flags() {
    let root = tempfile::tempdir().unwrap();
    let members = support::local_members(4);
    let (cluster, me) = (&members[..3], members[3]);
    let dir = root.path().join("node-4");
    record_join(&dir, cluster);

    // No flags at all: a node with no peers would be a cluster of one and lead it at once.
    let alone = Server::builder()
        .id(me.0)
        .data_dir(&dir)
        .serve_tcp(me.1)
        .await
        .unwrap();
    let user = dlm::connect_tcp_with([me], dlm::DEFAULT_CLUSTER_ID, |cfg| {
        support::tune(cfg);
        cfg.deadline = Duration::from_secs(3);
    });
    let refused = user.try_lock("jobs").await;
    assert!(
        refused.is_err(),
        "a joined node started without flags granted a lock on its own: {refused:?}"
    );
    assert_ne!(alone.status().leader, Some(NodeId(me.0)));
    alone.shutdown().await.unwrap();

    // With --join through a member that is down: it starts at once; the membership the join
    // asked for is made sure of in the background, when a leader answers.
    let mut tries = 0;
    let rejoined = loop {
        let started = Server::builder()
            .id(me.0)
            .data_dir(&dir)
            .join(cluster[0].1.to_string())
            .promote_after_join(Duration::from_secs(2))
            .serve_tcp(me.1)
            .await;
        match started {
            Ok(server) => break server,
            // (The old listener closes in the background: try the port again for a while.)
            Err(dlm::StartError::Tcp(e)) if tries < 50 => {
                tries += 1;
                tracing::debug!("restart: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("a joined directory did not start with --join: {e}"),
        }
    };
    assert_ne!(rejoined.status().leader, Some(NodeId(me.0)));
    rejoined.shutdown().await.unwrap();
}

/// A join given another node's data directory is refused at once, by the directory's owner,
/// before the cluster is asked anything and before anything is written into it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_into_another_nodes_directory_is_refused_before_anything_is_written() {
    let root = tempfile::tempdir().unwrap();
    let members = support::local_members(2);
    let dir = root.path().join("node-1");
    let owner = Server::builder()
        .id(1)
        .data_dir(&dir)
        .serve_tcp(members[0].1)
        .await
        .unwrap();
    owner.shutdown().await.unwrap();

    let refused = Server::builder()
        .id(2)
        .data_dir(&dir)
        .join(members[0].1.to_string())
        .promote_after_join(Duration::from_secs(2))
        .serve_tcp(members[1].1)
        .await;
    assert!(
        matches!(refused, Err(dlm::StartError::DataDir(_))),
        "{:?}",
        refused.err()
    );
    assert!(!dir.join("dlm-joined").exists());
}
