//! The transport follows the configuration: a member with an address is dialed there, one
//! without keeps its start-up address, and a former member's link goes a few seconds later.

use dlm_core::runtime::Transport;
use dlm_core::{Membership, NodeId};
use dlm_transport_tcp::{PeerAddr, TcpConfig, TcpTransport};
use std::net::SocketAddr;
use std::time::Duration;

#[tokio::test(start_paused = true)]
async fn links_follow_the_configuration() {
    let mut cfg = TcpConfig::new(NodeId(1), "127.0.0.1:0".parse().unwrap(), 7);
    let discard: SocketAddr = "127.0.0.1:9".parse().unwrap();
    cfg.peers.insert(NodeId(2), discard.into());
    cfg.peers.insert(NodeId(3), discard.into());
    let transport = TcpTransport::bind(cfg).await.unwrap();
    assert_eq!(transport.linked_peers(), [NodeId(2), NodeId(3)]);

    // 2 keeps its start-up address (empty here), 4 is new, 3 has left.
    let config = Membership::bootstrap([NodeId(1), NodeId(2)])
        .with_learner(NodeId(4), "127.0.0.1:10".into())
        .unwrap();
    transport.members_changed(&config);
    assert_eq!(transport.peer_addr(NodeId(2)), Some(discard.into()));
    let four: SocketAddr = "127.0.0.1:10".parse().unwrap();
    assert_eq!(transport.peer_addr(NodeId(4)), Some(four.into()));
    assert_eq!(
        transport.linked_peers(),
        [NodeId(2), NodeId(3), NodeId(4)],
        "a former member's link is kept a while, for the leader's last messages"
    );
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(transport.linked_peers(), [NodeId(2), NodeId(4)]);

    // A member that comes back before its link is retired keeps it.
    transport.members_changed(&Membership::bootstrap([NodeId(1)]));
    transport.members_changed(&config);
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(transport.linked_peers(), [NodeId(2), NodeId(4)]);
}

/// The configuration's address wins over the start-up one (a restarted node whose flags are
/// stale), and a host name is kept as one, resolved at every dial.
#[tokio::test(start_paused = true)]
async fn the_configurations_address_wins_over_the_flags() {
    let mut cfg = TcpConfig::new(NodeId(1), "127.0.0.1:0".parse().unwrap(), 7);
    let stale: SocketAddr = "127.0.0.1:9".parse().unwrap();
    cfg.peers.insert(NodeId(2), stale.into());
    let transport = TcpTransport::bind(cfg).await.unwrap();
    let config = Membership::bootstrap([NodeId(1), NodeId(2), NodeId(3)]).addressed(
        &[
            (NodeId(2), "127.0.0.1:12".to_string()),
            (NodeId(3), "node3:7001".to_string()),
        ]
        .into_iter()
        .collect(),
    );
    transport.members_changed(&config);
    let moved: SocketAddr = "127.0.0.1:12".parse().unwrap();
    assert_eq!(transport.peer_addr(NodeId(2)), Some(moved.into()));
    assert_eq!(
        transport.peer_addr(NodeId(3)),
        Some(PeerAddr::Host("node3:7001".into()))
    );
}
