//! What the server builder refuses before a node starts: a data directory that belongs to
//! another node or cluster, a node listed as its own peer, and a peer with two addresses; and
//! the in-memory client taking its settings.
#![cfg(feature = "mem")]

use dlm::mem::MemNetwork;
use dlm::{DataDirError, NodeId, Server, StartError};
use std::net::SocketAddr;

async fn start(
    net: &MemNetwork,
    id: u64,
    cluster: Option<u64>,
    dir: &std::path::Path,
) -> Result<Server, StartError> {
    let mut builder = Server::builder().id(id).data_dir(dir);
    if let Some(cluster) = cluster {
        builder = builder.cluster_id(cluster);
    }
    builder.serve_mem(net).await
}

#[tokio::test]
async fn a_data_directory_serves_only_the_node_and_cluster_that_first_used_it() {
    let dir = tempfile::tempdir().unwrap();
    let net = MemNetwork::new(1);
    start(&net, 1, None, dir.path())
        .await
        .unwrap()
        .shutdown()
        .await
        .unwrap();

    let err = start(&net, 2, None, dir.path()).await.unwrap_err();
    assert!(
        matches!(
            err,
            StartError::DataDir(DataDirError::OtherOwner {
                recorded_node: NodeId(1),
                node: NodeId(2),
                ..
            })
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("belongs to node 1"), "{err}");

    let err = start(&net, 1, Some(42), dir.path()).await.unwrap_err();
    assert!(
        matches!(
            err,
            StartError::DataDir(DataDirError::OtherOwner { cluster: 42, .. })
        ),
        "{err:?}"
    );

    // Refusing left the directory usable by its owner.
    start(&net, 1, None, dir.path())
        .await
        .unwrap()
        .shutdown()
        .await
        .unwrap();
}

#[test]
fn a_node_listed_as_its_own_peer_is_refused() {
    let addr: SocketAddr = "127.0.0.1:7001".parse().unwrap();
    let err = Server::builder()
        .id(1)
        .peer(1, addr)
        .peer(2, addr)
        .config()
        .unwrap_err();
    assert!(matches!(err, StartError::SelfAsPeer(NodeId(1))), "{err:?}");
    assert!(err.to_string().contains("its own peer"), "{err}");
}

#[test]
fn a_peer_given_two_addresses_is_refused_and_the_same_one_twice_is_not() {
    let a: SocketAddr = "127.0.0.1:7002".parse().unwrap();
    let b: SocketAddr = "127.0.0.1:7012".parse().unwrap();
    let err = Server::builder()
        .id(1)
        .peer(2, a)
        .peer(2, b)
        .config()
        .unwrap_err();
    assert!(
        matches!(&err, StartError::ConflictingPeer { id: NodeId(2), first, second } if *first == a.to_string() && *second == b.to_string()),
        "{err:?}"
    );
    let cfg = Server::builder()
        .id(1)
        .peer(2, a)
        .peer(2, a)
        .config()
        .unwrap();
    assert_eq!(cfg.members, vec![NodeId(1), NodeId(2)]);
}

#[tokio::test]
async fn an_in_memory_client_takes_its_settings_as_a_tcp_one_does() {
    let net = MemNetwork::new(5);
    let client = dlm::connect_mem_with(&net, [1, 2, 3], |c| {
        c.lease = std::time::Duration::from_millis(1_234);
    });
    assert_eq!(
        client.config().lease,
        std::time::Duration::from_millis(1_234)
    );
    let plain = dlm::connect_mem(&net, [1, 2, 3]);
    assert_ne!(
        plain.config().lease,
        std::time::Duration::from_millis(1_234)
    );
}
