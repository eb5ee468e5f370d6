//! The transport follows the configuration: a member with an address is dialed there, one
//! without keeps its start-up address, and a former member's link goes a few seconds later.

use dlm_core::runtime::Transport;
use dlm_core::{Membership, NodeId};
use dlm_transport_tcp::{TcpConfig, TcpTransport};
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
