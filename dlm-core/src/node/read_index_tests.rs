//! Exact-effect tests of the leader's read-index rounds: one call, the whole list of effects.

use super::*;
use crate::membership::Membership;
use crate::names::FileName;
use crate::node::Effect;
use crate::protocol::{ClientResponse, Rejection};
use crate::types::Time;

const ME: NodeId = NodeId(1);
const TERM: Term = Term(4);

fn followers() -> BTreeMap<NodeId, Progress> {
    [NodeId(2), NodeId(3)]
        .into_iter()
        .map(|id| (id, Progress::new(LogIndex(5), Time::ZERO)))
        .collect()
}

/// A read by client `seq` on connection 7 that waits for `index` to be applied.
fn read(seq: u64, index: u64) -> PendingRead {
    PendingRead {
        conn: ConnId(7),
        client: ClientId(9),
        seq: Seq(seq),
        op: Op::Read {
            file: FileName::from("f"),
            offset: 0,
        },
        index: LogIndex(index),
    }
}

fn ask(to: u64, round: u64) -> Effect {
    Effect::Send(crate::message::PeerMessage {
        from: ME,
        to: NodeId(to),
        term: TERM,
        body: PeerBody::ReadIndex { round },
    })
}

/// The answer to read `seq`: the file does not exist in an empty state machine.
fn answered(seq: u64) -> Effect {
    Effect::Reply {
        conn: ConnId(7),
        response: ClientResponse {
            client: ClientId(9),
            seq: Seq(seq),
            result: Err(Rejection::NoSuchFile),
        },
    }
}

/// Runs `f` over the rounds of a 3-node leader that has applied `applied`, and returns the
/// effects.
fn with_rounds(
    reads: &mut Reads,
    applied: u64,
    f: impl FnOnce(&mut ReadRounds<'_>),
) -> Vec<Effect> {
    let three = Membership::bootstrap([ME, NodeId(2), NodeId(3)]);
    with_rounds_in(three, reads, applied, f)
}

/// As [`with_rounds`], under the configuration `config` (followers 2 and 3 have progress
/// whatever it says).
fn with_rounds_in(
    config: Membership,
    reads: &mut Reads,
    applied: u64,
    f: impl FnOnce(&mut ReadRounds<'_>),
) -> Vec<Effect> {
    let cfg = Config::new(ME, [ME, NodeId(2), NodeId(3)]);
    let sm = StateMachine::new();
    let followers = followers();
    let timers = LeaderTimers::default();
    let mut out = Output::default();
    let members = Members::recover(config, &crate::log::Log::default(), &sm);
    let mut rounds = ReadRounds {
        cfg: &cfg,
        members: &members,
        commit: LogIndex(applied),
        last: LogIndex(applied),
        term: TERM,
        now: Time::ZERO,
        applied: LogIndex(applied),
        sm: &sm,
        timers: &timers,
        followers: &followers,
        reads,
        out: &mut out,
    };
    f(&mut rounds);
    std::iter::from_fn(|| out.pop()).collect()
}

#[test]
fn no_reads_no_round() {
    let mut reads = Reads::default();
    assert!(with_rounds(&mut reads, 5, |r| r.start_round()).is_empty());
    assert_eq!(reads.round, 0);
}

#[test]
fn a_round_asks_every_follower_once_for_every_read_of_the_batch() {
    let mut reads = Reads::default();
    reads.unsent.extend([read(1, 5), read(2, 5)]);
    let effects = with_rounds(&mut reads, 5, |r| r.start_round());
    assert_eq!(effects, [ask(2, 1), ask(3, 1)]);
    assert_eq!(reads.in_round.len(), 2);
}

#[test]
fn one_follower_makes_a_majority_and_the_reads_are_answered_in_order() {
    let mut reads = Reads::default();
    reads.unsent.extend([read(1, 5), read(2, 5)]);
    with_rounds(&mut reads, 5, |r| r.start_round());
    let effects = with_rounds(&mut reads, 5, |r| r.on_ack(NodeId(3), 1));
    assert_eq!(effects, [answered(1), answered(2)]);
    assert!(reads.in_round.is_empty());
}

#[test]
fn a_confirmed_read_still_waits_for_its_index_to_be_applied() {
    let mut reads = Reads::default();
    reads.unsent.extend([read(1, 5), read(2, 6)]);
    with_rounds(&mut reads, 5, |r| r.start_round());
    assert_eq!(
        with_rounds(&mut reads, 5, |r| r.on_ack(NodeId(2), 1)),
        [answered(1)]
    );
    assert_eq!(with_rounds(&mut reads, 6, |r| r.serve()), [answered(2)]);
}

#[test]
fn an_ack_of_an_older_round_does_not_confirm_a_newer_one() {
    let mut reads = Reads::default();
    reads.unsent.push(read(1, 5));
    with_rounds(&mut reads, 5, |r| r.start_round());
    reads.unsent.push(read(2, 5));
    assert_eq!(
        with_rounds(&mut reads, 5, |r| r.start_round()),
        [ask(2, 2), ask(3, 2)]
    );
    assert_eq!(
        with_rounds(&mut reads, 5, |r| r.on_ack(NodeId(2), 1)),
        [answered(1)]
    );
    assert!(with_rounds(&mut reads, 5, |r| r.on_ack(NodeId(3), 1)).is_empty());
    assert_eq!(
        with_rounds(&mut reads, 5, |r| r.on_ack(NodeId(3), 2)),
        [answered(2)]
    );
}

#[test]
fn a_late_ack_never_lowers_what_a_follower_confirmed() {
    let mut reads = Reads::default();
    reads.unsent.push(read(1, 5));
    with_rounds(&mut reads, 5, |r| r.start_round());
    with_rounds(&mut reads, 5, |r| r.on_ack(NodeId(2), 1));
    with_rounds(&mut reads, 5, |r| r.on_ack(NodeId(2), 0));
    assert_eq!(reads.acked.get(&NodeId(2)), Some(&1));
}

/// Under voters 1 and 2 with 3 a learner: the learner is not asked, its ack confirms nothing,
/// and the voter's does.
#[test]
fn a_learner_is_not_asked_and_its_ack_confirms_nothing() {
    let config = Membership::bootstrap([ME, NodeId(2)])
        .with_learner(NodeId(3), "h:3".into())
        .unwrap();
    let mut reads = Reads::default();
    reads.unsent.push(read(1, 5));
    let effects = with_rounds_in(config.clone(), &mut reads, 5, |r| r.start_round());
    assert_eq!(effects, [ask(2, 1)]);
    let learner = with_rounds_in(config.clone(), &mut reads, 5, |r| r.on_ack(NodeId(3), 1));
    assert!(learner.is_empty(), "a learner's ack made a majority");
    let voter = with_rounds_in(config, &mut reads, 5, |r| r.on_ack(NodeId(2), 1));
    assert_eq!(voter, [answered(1)]);
}

/// A leader that is removing itself (voters 2 and 3 only) does not count its own round: both
/// voters must ack.
#[test]
fn a_leader_outside_the_voters_needs_a_majority_of_them() {
    let config = Membership::bootstrap([NodeId(2), NodeId(3)]);
    let mut reads = Reads::default();
    reads.unsent.push(read(1, 5));
    with_rounds_in(config.clone(), &mut reads, 5, |r| r.start_round());
    let one = with_rounds_in(config.clone(), &mut reads, 5, |r| r.on_ack(NodeId(2), 1));
    assert!(one.is_empty(), "counted itself");
    let both = with_rounds_in(config, &mut reads, 5, |r| r.on_ack(NodeId(3), 1));
    assert_eq!(both, [answered(1)]);
}
