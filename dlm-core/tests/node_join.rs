//! What a node joining at run time relies on: it starts outside the configuration it is given
//! (the cluster's, without it) and never stands for election until it is made a voter; the
//! start-up configuration carries the addresses from start-up flags; a configuration recovered
//! from the log carries its own and wins over the flags.

mod common;

use common::*;
use dlm_core::message::PeerBody;
use dlm_core::*;
use std::collections::BTreeMap;

fn ids(ids: &[u64]) -> Vec<NodeId> {
    ids.iter().copied().map(NodeId).collect()
}

fn flags(pairs: &[(u64, &str)]) -> BTreeMap<NodeId, String> {
    pairs
        .iter()
        .map(|(id, addr)| (NodeId(*id), addr.to_string()))
        .collect()
}

#[test]
fn a_node_outside_its_start_up_configuration_never_stands() {
    let mut cfg = Config::new(NodeId(4), ids(&[1, 2, 3]));
    cfg.addresses = flags(&[(1, "h:1"), (2, "h:2"), (3, "h:3")]);
    let mut node = Node::new(cfg, Recovered::default()).unwrap();
    assert!(!node.membership().contains(NodeId(4)));
    let mut now = Time::ZERO;
    for _ in 0..20 {
        now = node.next_deadline().max(now);
        node.handle(now, Input::Tick);
        let effects = drain_unsynced(&mut node);
        let asked = effects.iter().any(
            |e| matches!(e, Effect::Send(m) if matches!(m.body, PeerBody::RequestVote { .. })),
        );
        assert!(!asked, "a node outside its configuration stood");
    }
    assert_eq!((node.term(), node.role()), (Term(0), Role::Follower));
}

#[test]
fn the_start_up_configuration_carries_the_flags_addresses() {
    let mut cfg = Config::new(NodeId(1), ids(&[1, 2, 3]));
    cfg.addresses = flags(&[(1, "me:1"), (2, "h:2")]);
    let node = Node::new(cfg, Recovered::default()).unwrap();
    let addr = |id| node.membership().member(NodeId(id)).map(|m| m.addr.clone());
    assert_eq!(addr(1).as_deref(), Some("me:1"));
    assert_eq!(addr(2).as_deref(), Some("h:2"));
    assert_eq!(addr(3).as_deref(), Some(""), "no flag, no address");
}

#[test]
fn a_recovered_configuration_wins_over_the_flags() {
    let mut cfg = Config::single(NodeId(1));
    cfg.addresses = flags(&[(1, "first:1")]);
    let mut h = Harness::leader(cfg.clone());
    h.request(
        9,
        req(
            99,
            1,
            Op::AddLearner {
                id: NodeId(2),
                addr: "h:2".into(),
            },
        ),
    );
    let written = h.node.membership().clone();
    assert_eq!(
        written.member(NodeId(1)).map(|m| m.addr.as_str()),
        Some("first:1"),
        "the first change writes the start-up addresses into the log"
    );
    // Restarted with other flags: the log's configuration is the one in force.
    cfg.addresses = flags(&[(1, "moved:1"), (2, "moved:2")]);
    let restarted = Node::new(cfg, h.recovered()).unwrap();
    assert_eq!(restarted.membership(), &written);
}
