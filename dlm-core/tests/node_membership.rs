//! Membership changes at the node, one server at a time: a change waits for an entry of the
//! leader's term and for the previous change to commit; a configuration takes effect when
//! appended (and is undone with the entry if that is truncated); learners never vote, never
//! campaign and never count towards a commit or check-quorum; a removed leader hands over and
//! steps down once the change commits; the configuration survives a restart, from the log or
//! from a snapshot.

mod common;

use common::*;
use dlm_core::message::{PeerBody, PeerMessage};
use dlm_core::*;
use std::time::Duration;

const ADMIN: u128 = 99;

fn ids(ids: &[u64]) -> Vec<NodeId> {
    ids.iter().copied().map(NodeId).collect()
}

fn three() -> Membership {
    Membership::bootstrap(ids(&[1, 2, 3]))
}

fn add_learner(id: u64) -> Op {
    Op::AddLearner {
        id: NodeId(id),
        addr: format!("h:{id}"),
    }
}

fn membership_entry(term: u64, index: u64, config: Membership) -> Entry {
    Entry {
        term: Term(term),
        index: LogIndex(index),
        command: Command::Membership {
            config,
            client: ClientId(ADMIN),
            seq: Seq(index),
        },
    }
}

fn refused(why: MembershipRejection) -> Result<Reply, Rejection> {
    Err(Rejection::Membership(why))
}

/// An admin request on connection 9.
fn admin(node: &mut Node, now: Time, seq: u64, op: Op) -> Vec<Effect> {
    node.handle(
        now,
        Input::Client {
            conn: ConnId(9),
            request: req(ADMIN, seq, op),
        },
    );
    drain_unsynced(node)
}

/// Node 1, leader of 1, 2 and 3 in term 1 whose Noop (index 1) has committed: it may change
/// the membership.
fn ready_leader_of_three() -> (Node, Time) {
    let (mut node, now) = leader_of_three();
    node.handle(now, Input::Persisted(pos(1, 1)));
    node.handle(now, accepted(2, 1));
    drain_unsynced(&mut node);
    assert_eq!(node.commit_index(), LogIndex(1));
    (node, now)
}

/// `ready_leader_of_three` with learner 4 added and committed at index 2 (4 holds it too).
fn leader_with_learner_four() -> (Node, Time) {
    let (mut node, now) = ready_leader_of_three();
    admin(&mut node, now, 1, add_learner(4));
    node.handle(now, Input::Persisted(pos(1, 2)));
    node.handle(now, accepted(2, 2));
    node.handle(now, accepted(4, 2));
    drain_unsynced(&mut node);
    assert_eq!(node.commit_index(), LogIndex(2));
    assert!(node.membership().is_learner(NodeId(4)));
    (node, now)
}

/// Node `me`, started from a log whose configuration (at index 2, term 1) is `config`, with
/// `bootstrap` as its start-up voters.
fn node_with_config(me: u64, bootstrap: &[u64], config: Membership) -> Node {
    let recovered = Recovered {
        hard_state: HardState {
            term: Term(1),
            voted_for: None,
        },
        snapshot: None,
        entries: vec![noop(1, 1), membership_entry(1, 2, config)],
    };
    Node::new(Config::new(NodeId(me), ids(bootstrap)), recovered).unwrap()
}

fn sent_vote_requests(effects: &[Effect]) -> usize {
    effects
        .iter()
        .filter(|e| matches!(e, Effect::Send(m) if matches!(m.body, PeerBody::RequestVote { .. })))
        .count()
}

/// The own-term rule: until an entry of its term commits, a leader refuses every change.
#[test]
fn a_change_waits_for_an_entry_of_the_leaders_term() {
    let (mut node, now) = leader_of_three();
    let effects = admin(&mut node, now, 1, add_learner(4));
    assert_eq!(
        results(&effects),
        vec![refused(MembershipRejection::LeaderNotReady)]
    );
    assert!(!any_persist(&effects));
    node.handle(now, Input::Persisted(pos(1, 1)));
    node.handle(now, accepted(2, 1));
    drain_unsynced(&mut node);
    let effects = admin(&mut node, now, 2, add_learner(4));
    assert!(results(&effects).is_empty(), "answered before it committed");
    let proposed = persisted(&effects);
    assert!(
        matches!(proposed.as_slice(), [Command::Membership { config, .. }]
            if config.is_learner(NodeId(4)) && config.voters().len() == 3),
        "{proposed:?}"
    );
}

/// One change at a time: a second is refused while the first is uncommitted, and is
/// accepted once it has committed; the first is answered when it applies.
#[test]
fn only_one_change_is_uncommitted_at_a_time() {
    let (mut node, now) = ready_leader_of_three();
    admin(&mut node, now, 1, add_learner(4));
    let effects = admin(&mut node, now, 2, add_learner(5));
    assert_eq!(
        results(&effects),
        vec![refused(MembershipRejection::ChangeInProgress {
            index: LogIndex(2)
        })]
    );
    node.handle(now, Input::Persisted(pos(1, 2)));
    node.handle(now, accepted(2, 2));
    let effects = drain_unsynced(&mut node);
    let config = three().with_learner(NodeId(4), "h:4".into()).unwrap();
    assert_eq!(
        replies(&effects),
        vec![(9, Ok(Reply::Reconfigured(config)))]
    );
    let effects = admin(&mut node, now, 3, add_learner(5));
    assert!(matches!(
        persisted(&effects).as_slice(),
        [Command::Membership { .. }]
    ));
}

/// Every refusal is typed: already a member, already a voter, unknown, the last voter, a
/// learner too far behind, and a node that does not lead.
#[test]
fn refused_changes_say_why() {
    let (mut node, now) = leader_with_learner_four();
    let cases = [
        (
            Op::AddLearner {
                id: NodeId(2),
                addr: "h:2".into(),
            },
            MembershipRejection::AlreadyMember { id: NodeId(2) },
        ),
        (
            Op::AddLearner {
                id: NodeId(4),
                addr: "elsewhere".into(),
            },
            MembershipRejection::AlreadyMember { id: NodeId(4) },
        ),
        (
            Op::Promote { id: NodeId(3) },
            MembershipRejection::AlreadyVoter { id: NodeId(3) },
        ),
        (
            Op::Promote { id: NodeId(7) },
            MembershipRejection::UnknownMember { id: NodeId(7) },
        ),
        (
            Op::Remove { id: NodeId(7) },
            MembershipRejection::UnknownMember { id: NodeId(7) },
        ),
    ];
    for (seq, (op, why)) in cases.into_iter().enumerate() {
        let effects = admin(&mut node, now, 10 + seq as u64, op.clone());
        assert_eq!(results(&effects), vec![refused(why)], "{op:?}");
        assert!(!any_persist(&effects), "{op:?}");
    }

    let mut single = Harness::leader(Config::single(NodeId(1)));
    assert_eq!(
        single.request_results(9, req(ADMIN, 1, Op::Remove { id: NodeId(1) })),
        vec![refused(MembershipRejection::LastVoter { id: NodeId(1) })]
    );

    let mut follower = fresh_node_of_three();
    let effects = admin(&mut follower, Time::ZERO, 1, add_learner(4));
    assert_eq!(
        results(&effects),
        vec![Err(Rejection::NotLeader { hint: None })]
    );
}

/// A learner that never answered is not promoted, however short the log: with the default
/// bound (1,000 entries) a fresh cluster's log is always "close", and a voter that never runs
/// (a mistyped address) would leave two voters unable to commit anything, its removal included.
#[test]
fn a_learner_that_never_answered_is_not_promoted() {
    let mut h = Harness::leader(Config::single(NodeId(1)));
    h.request(9, req(ADMIN, 1, add_learner(2)));
    assert!(h.node.membership().is_learner(NodeId(2)));
    let results = h.request_results(9, req(ADMIN, 2, Op::Promote { id: NodeId(2) }));
    assert!(
        matches!(results.as_slice(),
            [Err(Rejection::Membership(MembershipRejection::NotCaughtUp { matched, .. }))]
                if *matched == LogIndex(0)),
        "{results:?}"
    );
    assert!(!h.node.membership().is_voter(NodeId(2)));
}

/// A learner is promoted only once its log is within `promote_max_lag` of the leader's.
#[test]
fn a_learner_is_promoted_only_once_caught_up() {
    let mut cfg = Config::single(NodeId(1));
    cfg.promote_max_lag = 2;
    let mut h = Harness::leader(cfg);
    h.request(9, req(ADMIN, 1, add_learner(2)));
    // Committed on the leader's own persist (it is the only voter); the log ends at 2.
    assert!(h.node.membership().is_learner(NodeId(2)));
    for seq in 1..=3 {
        h.request(1, req(1, seq, Op::KeepAlive));
    }
    // The learner matches nothing yet: 5 entries behind.
    let behind = MembershipRejection::NotCaughtUp {
        id: NodeId(2),
        matched: LogIndex(0),
        last: LogIndex(5),
        max_lag: 2,
    };
    assert_eq!(
        h.request_results(9, req(ADMIN, 2, Op::Promote { id: NodeId(2) })),
        vec![refused(behind)]
    );
    let ack = PeerMessage {
        from: NodeId(2),
        to: NodeId(1),
        term: h.node.term(),
        body: dlm_core::message::PeerBody::AppendResponse {
            prev_index: LogIndex(0),
            outcome: dlm_core::message::AppendOutcome::Accepted {
                match_index: LogIndex(3),
            },
        },
    };
    h.node.handle(h.now, Input::Peer(ack));
    h.drain();
    let effects = h.request(9, req(ADMIN, 3, Op::Promote { id: NodeId(2) }));
    assert!(
        matches!(persisted(&effects).as_slice(), [Command::Membership { config, .. }]
            if config.is_voter(NodeId(2))),
        "{effects:?}"
    );
}

/// A configuration takes effect when appended: once learner 4 is promoted (the entry only
/// appended), a commit needs three of the four voters.
#[test]
fn a_configuration_takes_effect_when_appended_at_the_leader() {
    let (mut node, now) = leader_with_learner_four();
    admin(&mut node, now, 2, Op::Promote { id: NodeId(4) });
    assert_eq!(node.membership().voters().len(), 4);
    node.handle(now, Input::Persisted(pos(1, 3)));
    node.handle(now, accepted(2, 3));
    drain_unsynced(&mut node);
    assert_eq!(
        node.commit_index(),
        LogIndex(2),
        "committed by two of four voters"
    );
    node.handle(now, accepted(4, 3));
    drain_unsynced(&mut node);
    assert_eq!(node.commit_index(), LogIndex(3));
}

/// A follower adopts a configuration as soon as it appends it, before it commits, and goes
/// back to the one before when a new leader truncates it.
#[test]
fn a_follower_adopts_a_configuration_on_append_and_drops_it_with_the_entry() {
    let mut node = fresh_node_of_three();
    let grown = three().with_learner(NodeId(4), "h:4".into()).unwrap();
    let append = PeerBody::AppendEntries {
        prev: pos(0, 0),
        entries: vec![noop(1, 1), membership_entry(1, 2, grown.clone())],
        commit: LogIndex(1),
    };
    node.handle(Time::ZERO, peer(2, 1, append));
    drain_unsynced(&mut node);
    assert_eq!(node.membership(), &grown);
    assert_eq!(node.membership_index(), LogIndex(2));
    assert_eq!(node.commit_index(), LogIndex(1));

    let replace = PeerBody::AppendEntries {
        prev: pos(1, 1),
        entries: vec![noop(2, 2)],
        commit: LogIndex(1),
    };
    node.handle(Time::ZERO, peer(3, 2, replace));
    drain_unsynced(&mut node);
    assert_eq!(node.membership(), &three());
    assert_eq!(node.membership_index(), LogIndex(0));
}

/// A learner's acknowledgement counts towards no commit.
#[test]
fn a_learner_does_not_count_towards_a_commit() {
    let (mut node, now) = leader_with_learner_four();
    node.handle(now, keep_alive(7));
    drain_unsynced(&mut node);
    node.handle(now, Input::Persisted(pos(1, 3)));
    node.handle(now, accepted(4, 3));
    drain_unsynced(&mut node);
    assert_eq!(
        node.commit_index(),
        LogIndex(2),
        "a learner made a majority"
    );
    node.handle(now, accepted(3, 3));
    drain_unsynced(&mut node);
    assert_eq!(node.commit_index(), LogIndex(3));
}

/// Check-quorum counts voters only: a leader that hears only its learner steps down.
#[test]
fn check_quorum_counts_voters_only() {
    let (mut node, now) = leader_with_learner_four();
    // Past the first election time-out of its term, only learner 4 keeps answering.
    let mut t = now;
    for _ in 0..10 {
        t = t + Duration::from_millis(50);
        node.handle(t, accepted(4, 2));
        node.handle(t, Input::Tick);
        drain_unsynced(&mut node);
    }
    assert!(!node.is_leader(), "kept leading on a learner's answers");
}

/// A learner, and a node whose removal has committed, never stand: no pre-vote however long
/// they hear nothing, and a TimeoutNow from their leader is ignored.
#[test]
fn learners_and_removed_nodes_never_campaign() {
    let with_learner = three().with_learner(NodeId(4), "h:4".into()).unwrap();
    let without_three = three().without(NodeId(3)).unwrap();
    for (me, config) in [(4, with_learner), (3, without_three)] {
        let mut node = node_with_config(me, &[1, 2, 3, 4], config);
        let to_me = |body| {
            Input::Peer(PeerMessage {
                from: NodeId(1),
                to: NodeId(me),
                term: Term(1),
                body,
            })
        };
        // The leader's heartbeat tells it the configuration has committed.
        let heartbeat = PeerBody::AppendEntries {
            prev: pos(1, 2),
            entries: Vec::new(),
            commit: LogIndex(2),
        };
        node.handle(Time::ZERO, to_me(heartbeat));
        drain_unsynced(&mut node);
        assert_eq!(node.commit_index(), LogIndex(2));
        let mut now = Time::ZERO;
        for _ in 0..20 {
            now = node.next_deadline();
            node.handle(now, Input::Tick);
            let effects = drain_unsynced(&mut node);
            assert_eq!(sent_vote_requests(&effects), 0, "node {me} stood");
        }
        node.handle(now, to_me(PeerBody::TimeoutNow));
        let effects = drain_unsynced(&mut node);
        assert_eq!(sent_vote_requests(&effects), 0, "node {me} took a transfer");
        assert_eq!(node.term(), Term(1));
        assert_eq!(node.role(), Role::Follower);
    }
}

/// A node whose removal is appended but not known committed may hold entries the remaining
/// voters lack (it led, appended its own removal, crashed): it stands, asks only the voters of
/// its configuration, and wins only with a majority of them, not counting itself.
#[test]
fn a_node_removed_by_an_uncommitted_change_stands_without_counting_itself() {
    let without_three = three().without(NodeId(3)).unwrap();
    let mut node = node_with_config(3, &[1, 2, 3], without_three);
    node.handle(Time::ZERO, Input::Tick);
    let now = node.next_deadline();
    node.handle(now, Input::Tick);
    let asked: Vec<NodeId> = drain_unsynced(&mut node)
        .iter()
        .filter_map(|e| match e {
            Effect::Send(m) if matches!(m.body, PeerBody::RequestVote { .. }) => Some(m.to),
            _ => None,
        })
        .collect();
    assert_eq!(asked, ids(&[1, 2]));
    let grant = |from, term, pre| {
        Input::Peer(PeerMessage {
            from: NodeId(from),
            to: NodeId(3),
            term: Term(term),
            body: PeerBody::VoteResponse { pre, granted: true },
        })
    };
    node.handle(now, grant(1, 2, true));
    assert_eq!(node.role(), Role::PreCandidate, "counted itself");
    node.handle(now, grant(2, 2, true));
    assert_eq!(node.role(), Role::Candidate);
    node.handle(now, grant(1, 2, false));
    assert_eq!(node.role(), Role::Candidate, "counted itself");
    node.handle(now, grant(2, 2, false));
    assert!(node.is_leader());
}

/// A removed node that never learnt of its removal is held off by the leader-alive rule: a
/// voter that hears its leader refuses its pre-vote and its vote, and keeps its term, however
/// up to date the removed node's log is.
#[test]
fn a_removed_node_is_held_off_while_a_leader_is_heard() {
    let without_four = Membership::bootstrap(ids(&[1, 2, 3]));
    let mut node = node_with_config(1, &[1, 2, 3], without_four);
    let heartbeat = PeerBody::AppendEntries {
        prev: pos(1, 2),
        entries: Vec::new(),
        commit: LogIndex(2),
    };
    node.handle(Time::ZERO, peer(2, 1, heartbeat));
    drain_unsynced(&mut node);
    for pre in [true, false] {
        let ask = PeerBody::RequestVote {
            pre,
            last: pos(9, 9),
            transfer: false,
        };
        node.handle(Time::from_millis(100), peer(4, 5, ask));
        let refused = send(
            4,
            1,
            PeerBody::VoteResponse {
                pre,
                granted: false,
            },
        );
        assert_eq!(drain_unsynced(&mut node), vec![refused], "pre {pre}");
        assert_eq!((node.term(), node.leader()), (Term(1), Some(NodeId(2))));
    }
}

/// A vote request from a voter this node does not know yet (its configuration lags) is
/// answered: refusing it could leave the newer configuration without a leader.
#[test]
fn a_vote_request_from_outside_the_configuration_is_answered() {
    let mut node = fresh_node_of_three();
    node.handle(Time::ZERO, Input::Tick);
    drain_unsynced(&mut node);
    let ask = PeerBody::RequestVote {
        pre: true,
        last: pos(9, 9),
        transfer: false,
    };
    node.handle(Time::ZERO, peer(9, 1, ask));
    let granted = send(
        9,
        1,
        PeerBody::VoteResponse {
            pre: true,
            granted: true,
        },
    );
    assert_eq!(drain_unsynced(&mut node), vec![granted]);
}

/// What only a leader sends is taken from a node outside this node's configuration (it may
/// have been added since); other messages from outsiders are dropped.
#[test]
fn a_leader_outside_the_configuration_is_followed() {
    let mut node = fresh_node_of_three();
    let stray = PeerBody::VoteResponse {
        pre: false,
        granted: true,
    };
    node.handle(Time::ZERO, peer(9, 5, stray));
    assert_eq!(drain_unsynced(&mut node), vec![]);
    assert_eq!(node.term(), Term(0));
    let heartbeat = PeerBody::AppendEntries {
        prev: pos(0, 0),
        entries: Vec::new(),
        commit: LogIndex(0),
    };
    node.handle(Time::ZERO, peer(9, 5, heartbeat));
    drain_unsynced(&mut node);
    assert_eq!((node.term(), node.leader()), (Term(5), Some(NodeId(9))));
}

/// A leader that removes itself stops counting its own copy at once, hands leadership to a
/// caught-up voter once the removal commits, and steps down when that hand-over runs out.
#[test]
fn a_removed_leader_hands_over_and_steps_down_once_the_removal_commits() {
    let (mut node, now) = ready_leader_of_three();
    admin(&mut node, now, 1, Op::Remove { id: NodeId(1) });
    node.handle(now, Input::Persisted(pos(1, 2)));
    node.handle(now, accepted(2, 2));
    let effects = drain_unsynced(&mut node);
    assert_eq!(node.commit_index(), LogIndex(1), "counted its own copy");
    assert!(results(&effects).is_empty());
    node.handle(now, accepted(3, 2));
    let effects = drain_unsynced(&mut node);
    assert_eq!(node.commit_index(), LogIndex(2));
    let asked: Vec<NodeId> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::Send(m) if m.body == PeerBody::TimeoutNow => Some(m.to),
            _ => None,
        })
        .collect();
    assert_eq!(asked, vec![NodeId(2)]);
    assert!(node.is_leader() && node.is_handing_over());
    let config = three().without(NodeId(1)).unwrap();
    assert_eq!(
        replies(&effects),
        vec![(9, Ok(Reply::Reconfigured(config)))]
    );
    // The successor never stands (its TimeoutNow is lost) though both voters keep answering:
    // the transfer runs out, and the removed leader steps down instead of leading on.
    let answering = now + Duration::from_millis(290);
    node.handle(answering, accepted(2, 2));
    node.handle(answering, accepted(3, 2));
    drain_unsynced(&mut node);
    assert!(node.is_leader() && node.is_handing_over());
    let later = now + Duration::from_millis(400);
    node.handle(later, Input::Tick);
    drain_unsynced(&mut node);
    assert!(!node.is_leader());
    assert_eq!(node.role(), Role::Follower);
}

/// The configuration survives a restart: from the log, and from a snapshot once the log is
/// compacted.
#[test]
fn the_configuration_is_recovered_from_the_log_and_from_a_snapshot() {
    let mut cfg = Config::single(NodeId(1));
    cfg.snapshot_every = 3;
    cfg.log_retain = 0;
    let mut h = Harness::leader(cfg.clone());
    h.request(9, req(ADMIN, 1, add_learner(2)));
    let grown = Membership::bootstrap([NodeId(1)])
        .with_learner(NodeId(2), "h:2".into())
        .unwrap();
    assert_eq!(h.node.membership(), &grown);
    assert!(h.snapshot.is_none());
    let restarted = Node::new(cfg.clone(), h.recovered()).unwrap();
    assert_eq!(restarted.membership(), &grown);
    assert_eq!(restarted.membership_index(), LogIndex(2));

    h.request(1, req(1, 1, Op::KeepAlive));
    let snapshot = h.snapshot.clone().expect("no snapshot taken");
    assert_eq!(snapshot.last.index, LogIndex(3));
    assert!(h.entries.is_empty(), "{:?}", h.entries);
    let restarted = Node::new(cfg, h.recovered()).unwrap();
    assert_eq!(restarted.membership(), &grown);
    assert_eq!(restarted.membership_index(), LogIndex(0));
}

/// The members query is a read-index read: the configuration in force, whether it has
/// committed, and how far each member matches.
#[test]
fn the_members_query_shows_the_configuration_and_progress() {
    let (mut node, now) = leader_with_learner_four();
    admin(&mut node, now, 2, Op::Members);
    node.handle(now, peer(2, 1, PeerBody::ReadIndexAck { round: 1 }));
    let effects = drain_unsynced(&mut node);
    let info = MembersInfo {
        leader: NodeId(1),
        config: three().with_learner(NodeId(4), "h:4".into()).unwrap(),
        index: LogIndex(2),
        committed: true,
        last_index: LogIndex(2),
        matched: vec![
            (NodeId(2), LogIndex(2)),
            (NodeId(3), LogIndex(0)),
            (NodeId(4), LogIndex(2)),
        ],
    };
    assert_eq!(replies(&effects), vec![(9, Ok(Reply::Members(info)))]);
}

/// An add asked again once done is answered only after a read round confirms this node still
/// leads (a deposed leader must not report a change a newer leader undid), proposing nothing;
/// a follower's acknowledgement completes the round.
#[test]
fn a_repeated_add_is_answered_after_a_round_confirms_the_leader() {
    let (mut node, now) = leader_with_learner_four();
    let effects = admin(&mut node, now, 2, add_learner(4));
    assert!(results(&effects).is_empty(), "answered before a round");
    assert!(!any_persist(&effects));
    let rounds = effects
        .iter()
        .filter(|e| matches!(e, Effect::Send(m) if matches!(m.body, PeerBody::ReadIndex { .. })))
        .count();
    assert!(rounds > 0, "no read round started: {effects:?}");
    node.handle(now, peer(2, 1, PeerBody::ReadIndexAck { round: 1 }));
    let effects = drain_unsynced(&mut node);
    let config = three().with_learner(NodeId(4), "h:4".into()).unwrap();
    assert_eq!(
        replies(&effects),
        vec![(9, Ok(Reply::Reconfigured(config)))]
    );
}

/// The lowest-id preference ranks the voters of the configuration in force: node 3, once 1
/// and 2 are gone, staggers its election as the lowest id.
#[test]
fn the_election_stagger_ranks_the_current_voters() {
    let stays = Membership::bootstrap(ids(&[3, 4, 5]));
    let mut node = node_with_config(3, &[1, 2, 3, 4, 5], stays);
    node.handle(Time::ZERO, Input::Tick);
    let cfg = node.config().clone();
    let bound = Time::ZERO + cfg.election_timeout + cfg.election_stagger;
    assert!(
        node.next_deadline() < bound,
        "ranked among the start-up members"
    );
}

/// Only a voter's vote counts: a learner's grants, pre-vote or vote, elect nobody.
#[test]
fn a_learners_vote_does_not_count() {
    let with_learner = three().with_learner(NodeId(4), "h:4".into()).unwrap();
    let mut node = node_with_config(1, &[1, 2, 3], with_learner);
    node.handle(Time::ZERO, Input::Tick);
    let now = node.next_deadline();
    node.handle(now, Input::Tick);
    drain_unsynced(&mut node);
    assert_eq!(node.role(), Role::PreCandidate);
    let grant = |from, term, pre| peer(from, term, PeerBody::VoteResponse { pre, granted: true });
    node.handle(now, grant(4, 2, true));
    assert_eq!(
        node.role(),
        Role::PreCandidate,
        "a learner's pre-vote counted"
    );
    node.handle(now, grant(2, 2, true));
    assert_eq!(node.role(), Role::Candidate);
    node.handle(now, grant(4, 2, false));
    assert_eq!(node.role(), Role::Candidate, "a learner's vote counted");
    node.handle(now, grant(3, 2, false));
    assert!(node.is_leader());
}

/// A follower that installs a snapshot takes the configuration the snapshot carries.
#[test]
fn an_installed_snapshot_brings_its_configuration() {
    let grown = three().with_learner(NodeId(4), "h:4".into()).unwrap();
    let mut sm = StateMachine::new();
    let rules = Rules {
        limits: Limits::default(),
        lock_delay: false,
    };
    sm.apply(
        &membership_entry(1, 5, grown.clone()).command,
        &rules,
        &mut Vec::new(),
    );
    let data = sm.to_bytes().unwrap();
    let mut node = fresh_node_of_three();
    let chunk = PeerBody::InstallSnapshot {
        last: pos(1, 5),
        size: data.len() as u64,
        offset: 0,
        data,
    };
    node.handle(Time::ZERO, peer(2, 1, chunk));
    drain_unsynced(&mut node);
    assert_eq!(node.commit_index(), LogIndex(5));
    assert_eq!(node.membership(), &grown);
}

/// A node outside its own configuration names no leader to a client: the one it last heard of
/// may be long gone, and a stale hint sent clients back and forth between removed nodes.
#[test]
fn a_removed_node_names_no_leader() {
    let without_three = three().without(NodeId(3)).unwrap();
    let mut node = node_with_config(3, &[1, 2, 3], without_three);
    let heartbeat = PeerBody::AppendEntries {
        prev: pos(1, 2),
        entries: Vec::new(),
        commit: LogIndex(2),
    };
    node.handle(
        Time::ZERO,
        Input::Peer(PeerMessage {
            from: NodeId(1),
            to: NodeId(3),
            term: Term(1),
            body: heartbeat,
        }),
    );
    drain_unsynced(&mut node);
    assert_eq!(node.leader(), Some(NodeId(1)));
    node.handle(Time::ZERO, keep_alive(7));
    let effects = drain_unsynced(&mut node);
    assert_eq!(
        replies(&effects),
        vec![(7, Err(Rejection::NotLeader { hint: None }))]
    );
}

/// A sole voter elects itself at once, before its new term and vote are durable: it sends its
/// learners nothing until its first entry is durable (and its term with it). Otherwise a crash
/// could make it leader of the same term again with a different log, and a learner would keep
/// an entry of that term the leader never had (the simulator found this).
#[test]
fn a_sole_voter_says_nothing_to_its_learners_until_its_term_is_durable() {
    let solo = Membership::bootstrap([NodeId(1)])
        .with_learner(NodeId(2), "h:2".into())
        .unwrap();
    let recovered = Recovered {
        hard_state: HardState {
            term: Term(1),
            voted_for: Some(NodeId(1)),
        },
        snapshot: None,
        entries: vec![membership_entry(1, 1, solo)],
    };
    let mut node = Node::new(Config::single(NodeId(1)), recovered).unwrap();
    node.handle(Time::ZERO, Input::Tick);
    node.handle(Time::ZERO, Input::Tick);
    let effects = drain_unsynced(&mut node);
    assert!(node.is_leader());
    assert_eq!(node.term(), Term(2));
    let sends = |effects: &[Effect]| {
        effects
            .iter()
            .filter(|e| matches!(e, Effect::Send(_)))
            .count()
    };
    assert_eq!(sends(&effects), 0, "spoke before its term was durable");
    node.handle(Time::ZERO, Input::Persisted(pos(2, 2)));
    let effects = drain_unsynced(&mut node);
    assert!(
        effects.iter().any(|e| matches!(e, Effect::Send(m)
            if m.to == NodeId(2) && matches!(m.body, PeerBody::AppendEntries { .. }))),
        "{effects:?}"
    );
}

/// A learner names its leader to clients only while it hears from it: after an election
/// time-out of silence (it never stands, so nothing else forgets the leader) it names none.
#[test]
fn a_learner_stops_naming_a_leader_it_no_longer_hears() {
    let with_learner = three().with_learner(NodeId(4), "h:4".into()).unwrap();
    let mut node = node_with_config(4, &[1, 2, 3, 4], with_learner);
    let heartbeat = PeerBody::AppendEntries {
        prev: pos(1, 2),
        entries: Vec::new(),
        commit: LogIndex(2),
    };
    let from_leader = Input::Peer(PeerMessage {
        from: NodeId(1),
        to: NodeId(4),
        term: Term(1),
        body: heartbeat,
    });
    node.handle(Time::ZERO, from_leader);
    drain_unsynced(&mut node);
    let hint_at = |node: &mut Node, ms| {
        node.handle(Time::from_millis(ms), keep_alive(7));
        replies(&drain_unsynced(node))
    };
    let named = Err(Rejection::NotLeader {
        hint: Some(NodeId(1)),
    });
    assert_eq!(hint_at(&mut node, 299), vec![(7, named)]);
    let none = Err(Rejection::NotLeader { hint: None });
    assert_eq!(hint_at(&mut node, 300), vec![(7, none)]);
}

/// A leader keeps sending a removed member its heartbeat until the first one after the removal
/// commits (which carries the commit index, so the member learns it is out), then forgets it.
#[test]
fn a_removed_member_hears_one_heartbeat_after_the_commit_then_nothing() {
    let (mut node, now) = ready_leader_of_three();
    admin(&mut node, now, 1, Op::Remove { id: NodeId(3) });
    node.handle(now, Input::Persisted(pos(1, 2)));
    node.handle(now, accepted(2, 2));
    drain_unsynced(&mut node);
    assert_eq!(node.commit_index(), LogIndex(2));
    let to_three = |effects: &[Effect]| {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Send(m) if m.to == NodeId(3) => Some(m.body.clone()),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    let mut heard = Vec::new();
    for _ in 0..4 {
        let t = node.next_deadline();
        node.handle(t, accepted(2, 2));
        node.handle(t, Input::Tick);
        heard.push(to_three(&drain_unsynced(&mut node)));
    }
    assert!(
        matches!(heard[0].as_slice(), [PeerBody::AppendEntries { commit, .. }] if *commit == LogIndex(2)),
        "{heard:?}"
    );
    assert!(heard[1..].iter().all(Vec::is_empty), "{heard:?}");
    assert!(node.is_leader());
}
