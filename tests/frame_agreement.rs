//! The core keeps every message it builds within its frame budget (`dlm::MAX_MESSAGE`, checked
//! by `Config::validate`); the TCP transport must carry a message of that size by default, on
//! nodes and on clients, or a valid configuration could make messages that are dropped for
//! good.
#![cfg(feature = "tcp")]

use dlm::tcp::{TcpClientConfig, TcpConfig};
use dlm::NodeId;
use std::collections::HashMap;

#[test]
fn the_tcp_frame_carries_the_cores_largest_message() {
    let node = TcpConfig::new(NodeId(1), "127.0.0.1:0".parse().unwrap(), 1);
    let client = TcpClientConfig::new(1, HashMap::new());
    for max_frame in [node.max_frame, client.max_frame] {
        assert!(
            max_frame >= dlm::MAX_MESSAGE,
            "TCP frame {max_frame} < core budget {}",
            dlm::MAX_MESSAGE
        );
    }
}
