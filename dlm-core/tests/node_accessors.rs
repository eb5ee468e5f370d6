//! What a node reports about itself to its driver and to operators: its id, the size of its
//! in-memory log, and its `Debug` form. Drivers and the simulator rely on these, so they are
//! checked here rather than only used.

mod common;

use common::{drain_unsynced, noops, pos};
use dlm_core::*;

fn node(id: u64, log: &[(u64, u64)]) -> Node {
    let ids = [NodeId(1), NodeId(2), NodeId(3)];
    let recovered = Recovered {
        hard_state: HardState {
            term: Term(1),
            voted_for: None,
        },
        snapshot: None,
        entries: noops(log),
    };
    Node::new(Config::new(NodeId(id), ids), recovered).unwrap()
}

/// `Node::id` is the configured id, whichever member the node is.
#[test]
fn id_is_the_configured_member() {
    assert_eq!(node(2, &[]).id(), NodeId(2));
    assert_eq!(node(3, &[]).id(), NodeId(3));
}

/// `Node::log_len` counts the entries held in memory (what bounds a node's memory).
#[test]
fn log_len_counts_the_entries_in_memory() {
    assert_eq!(node(1, &[]).log_len(), 0);
    let mut n = node(1, &[(1, 1), (1, 2), (1, 3)]);
    assert_eq!(n.log_len(), 3);
    assert_eq!(n.last_log(), pos(1, 3));
    n.handle(Time::from_millis(1), Input::Tick);
    drain_unsynced(&mut n);
    assert_eq!(n.log_len(), 3);
}

/// `Debug` names the node, its role and its term (what an operator's log line needs).
#[test]
fn debug_names_id_role_and_term() {
    let text = format!("{:?}", node(2, &[(1, 1)]));
    assert!(text.starts_with("Node {"), "{text}");
    for part in ["id: NodeId(2)", "role: Follower", "term: Term(1)"] {
        assert!(text.contains(part), "{part} missing from {text}");
    }
}
