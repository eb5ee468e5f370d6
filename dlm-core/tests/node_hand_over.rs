//! `Input::HandOver`: a leader about to stop asks its most caught-up member to stand at once
//! (TimeoutNow), but only once that member holds the whole log, and meanwhile proposes nothing
//! and points clients at its successor.

mod common;

use common::{accepted, drain_unsynced, fresh_node_of_three, keep_alive, leader_of_three, replies};
use dlm_core::message::PeerBody;
use dlm_core::*;

fn timeouts_now(effects: &[Effect]) -> Vec<NodeId> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Send(m) if m.body == PeerBody::TimeoutNow => Some(m.to),
            _ => None,
        })
        .collect()
}

#[test]
fn the_most_caught_up_member_is_asked_to_stand_at_once() {
    let (mut node, now) = leader_of_three();
    // Node 3 holds the Noop (index 1), node 2 nothing yet.
    node.handle(now, accepted(3, 1));
    node.handle(now, accepted(2, 0));
    drain_unsynced(&mut node);
    node.handle(now, Input::HandOver);
    assert_eq!(timeouts_now(&drain_unsynced(&mut node)), vec![NodeId(3)]);

    // Meanwhile nothing new is proposed and clients are sent to the successor.
    let last = node.last_log();
    node.handle(now, keep_alive(7));
    let effects = drain_unsynced(&mut node);
    assert_eq!(node.last_log(), last);
    let hint = Err(Rejection::NotLeader {
        hint: Some(NodeId(3)),
    });
    assert_eq!(replies(&effects), vec![(7, hint)]);
}

#[test]
fn a_successor_behind_is_asked_only_once_it_holds_the_whole_log() {
    let (mut node, now) = leader_of_three();
    node.handle(now, keep_alive(7));
    drain_unsynced(&mut node);
    assert_eq!(node.last_log().index, LogIndex(2));
    node.handle(now, accepted(2, 1));
    node.handle(now, accepted(3, 0));
    drain_unsynced(&mut node);

    node.handle(now, Input::HandOver);
    assert!(timeouts_now(&drain_unsynced(&mut node)).is_empty());
    node.handle(now, accepted(3, 2));
    assert!(
        timeouts_now(&drain_unsynced(&mut node)).is_empty(),
        "asked a member that is not the successor"
    );
    node.handle(now, accepted(2, 2));
    assert_eq!(timeouts_now(&drain_unsynced(&mut node)), vec![NodeId(2)]);
    // A repeated acknowledgement does not ask twice.
    node.handle(now, accepted(2, 2));
    assert!(timeouts_now(&drain_unsynced(&mut node)).is_empty());
}

#[test]
fn a_member_silent_for_an_election_time_out_is_not_chosen() {
    let (mut node, now) = leader_of_three();
    node.handle(now, accepted(2, 1));
    drain_unsynced(&mut node);
    // Both hold the whole log, and node 2 would win the tie, but it last answered at 1 s:
    // 400 ms later only node 3 (at 1.25 s) has answered within the election time-out.
    let later = Time::from_millis(1_250);
    node.handle(later, accepted(3, 1));
    // A heartbeat just before, so the hand-over's TimeoutNow is not repeated at once.
    node.handle(Time::from_millis(1_399), Input::Tick);
    drain_unsynced(&mut node);
    let much_later = Time::from_millis(1_400);
    node.handle(much_later, Input::HandOver);
    assert_eq!(timeouts_now(&drain_unsynced(&mut node)), vec![NodeId(3)]);
}

/// The boundary of the same rule: a member last heard exactly an election time-out ago is
/// silent for it (`< window`, not `<=`).
#[test]
fn a_member_heard_exactly_an_election_time_out_ago_is_not_chosen() {
    let (mut node, now) = leader_of_three();
    // Node 2 (which would win the tie on its id) last answered at 1 s, node 3 at 1.15 s:
    // neither within two heartbeats of 1.3 s, both holding the whole log.
    node.handle(now, accepted(2, 1));
    node.handle(Time::from_millis(1_150), accepted(3, 1));
    node.handle(Time::from_millis(1_299), Input::Tick);
    drain_unsynced(&mut node);
    node.handle(Time::from_millis(1_300), Input::HandOver);
    assert_eq!(timeouts_now(&drain_unsynced(&mut node)), vec![NodeId(3)]);
}

/// Guards `< fresh` (not `<=`) in the hand-over's preference: a member answered exactly two
/// heartbeats ago is not "heard lately", so one heard since is preferred to it, lower id and
/// all.
#[test]
fn a_member_heard_exactly_two_heartbeats_ago_is_not_preferred() {
    let (mut node, _) = leader_of_three();
    node.handle(Time::from_millis(1_200), accepted(2, 1));
    node.handle(Time::from_millis(1_250), accepted(3, 1));
    // The heartbeat due at 1.3 s first, so the hand-over's TimeoutNow is not repeated at once.
    node.handle(Time::from_millis(1_300), Input::Tick);
    drain_unsynced(&mut node);
    node.handle(Time::from_millis(1_300), Input::HandOver);
    assert_eq!(timeouts_now(&drain_unsynced(&mut node)), vec![NodeId(3)]);
}

#[test]
fn a_follower_or_a_cluster_of_one_does_nothing() {
    let mut follower = fresh_node_of_three();
    follower.handle(Time::ZERO, Input::HandOver);
    assert!(drain_unsynced(&mut follower).is_empty());

    let mut single = Node::new(Config::single(NodeId(1)), Recovered::default()).unwrap();
    single.handle(Time::ZERO, Input::Tick);
    drain_unsynced(&mut single);
    assert!(single.is_leader());
    single.handle(Time::ZERO, Input::HandOver);
    assert!(timeouts_now(&drain_unsynced(&mut single)).is_empty());
    assert!(single.is_leader());
    assert!(
        !single.is_handing_over(),
        "the driver would wait for nothing"
    );
}

#[test]
fn a_lost_timeout_now_is_asked_again_at_the_next_heartbeat() {
    let (mut node, now) = leader_of_three();
    node.handle(now, accepted(2, 1));
    drain_unsynced(&mut node);
    node.handle(now, Input::HandOver);
    assert!(node.is_handing_over());
    assert_eq!(timeouts_now(&drain_unsynced(&mut node)), vec![NodeId(2)]);
    let heartbeat = Time::from_millis(1_060);
    node.handle(heartbeat, Input::Tick);
    assert_eq!(timeouts_now(&drain_unsynced(&mut node)), vec![NodeId(2)]);
}

#[test]
fn a_member_heard_within_two_heartbeats_is_preferred_to_one_with_more_log() {
    let (mut node, now) = leader_of_three();
    // Node 2 holds the Noop but was last heard at 1 s; node 3 holds nothing, heard at 1.1 s.
    node.handle(now, accepted(2, 1));
    node.handle(Time::from_millis(1_100), accepted(3, 0));
    drain_unsynced(&mut node);
    let at = Time::from_millis(1_150);
    node.handle(at, Input::HandOver);
    assert!(timeouts_now(&drain_unsynced(&mut node)).is_empty());
    node.handle(at, accepted(3, 1));
    assert_eq!(timeouts_now(&drain_unsynced(&mut node)), vec![NodeId(3)]);
}
