//! Exact-effect tests of hand-overs: one call, the whole list of effects and the deadline.

use super::*;
use crate::message::PeerMessage;
use crate::node::leader_timers::LeaderTimers;
use crate::node::progress::Progress;
use crate::node::Effect;

const ME: NodeId = NodeId(3);
const TERM: Term = Term(5);
const LAST: LogIndex = LogIndex(20);

fn ms(n: u64) -> Time {
    Time::from_millis(n)
}

/// A leader since time zero whose followers 1 and 2 match up to `matched` and were last heard
/// at `heard` (milliseconds).
fn leader(followers: [(u64, u64, u64); 2]) -> Leader {
    let progress = followers
        .into_iter()
        .map(|(id, matched, heard)| {
            let mut p = Progress::new(LAST, ms(heard));
            p.accept(LogIndex(matched));
            (NodeId(id), p)
        })
        .collect();
    Leader::new(progress, LeaderTimers::default(), Time::ZERO, LAST)
}

fn timeout_now(to: u64) -> Effect {
    Effect::Send(PeerMessage {
        from: ME,
        to: NodeId(to),
        term: TERM,
        body: PeerBody::TimeoutNow,
    })
}

/// Runs `f` on the hand-overs of `leader` at `now` (5-node defaults: heartbeat 50 ms,
/// election time-out 300 ms) and returns the effects.
fn at(
    now: u64,
    leader: &mut Leader,
    timers: &mut Timers,
    f: impl FnOnce(&mut Handover<'_>),
) -> Vec<Effect> {
    at_in(
        Membership::bootstrap((1..=5).map(NodeId)),
        now,
        leader,
        timers,
        f,
    )
}

/// As [`at`], under the configuration `config`.
fn at_in(
    config: Membership,
    now: u64,
    leader: &mut Leader,
    timers: &mut Timers,
    f: impl FnOnce(&mut Handover<'_>),
) -> Vec<Effect> {
    let cfg = Config::new(ME, (1..=5).map(NodeId));
    let mut out = Output::default();
    let mut handover = Handover {
        cfg: &cfg,
        members: &config,
        term: TERM,
        now: ms(now),
        last: LAST,
        leader,
        timers,
        out: &mut out,
    };
    f(&mut handover);
    std::iter::from_fn(|| out.pop()).collect()
}

#[test]
fn the_preferred_leader_is_asked_once_caught_up_and_heard_lately() {
    let mut l = leader([(1, 20, 900), (2, 20, 900)]);
    let mut timers = Timers::default();
    let effects = at(950, &mut l, &mut timers, |h| h.consider());
    assert_eq!(effects, [timeout_now(1)]);
    assert_eq!(timers.get(Deadline::TransferEnd), Some(ms(1_250)));
    assert!(l.transfer.is_some_and(|t| t.to == NodeId(1) && t.asked));
    // While that transfer runs, nothing new starts: the successor was asked once.
    assert!(at(960, &mut l, &mut timers, |h| h.consider()).is_empty());
}

#[test]
fn a_lagging_or_silent_lower_member_is_passed_over() {
    // Node 1 lags; node 2 was last heard more than two heartbeats ago.
    let mut l = leader([(1, 19, 900), (2, 20, 800)]);
    let mut timers = Timers::default();
    assert!(at(950, &mut l, &mut timers, |h| h.consider()).is_empty());
    assert_eq!(timers.get(Deadline::TransferEnd), None);
    // Node 2 heard lately: it is asked even though 1 is lower, as 1 is not caught up.
    let mut l = leader([(1, 19, 900), (2, 20, 900)]);
    assert_eq!(
        at(950, &mut l, &mut timers, |h| h.consider()),
        [timeout_now(2)]
    );
}

#[test]
fn no_transfer_in_the_first_election_timeout_nor_soon_after_one_ran_out() {
    let mut l = leader([(1, 20, 250), (2, 20, 250)]);
    let mut timers = Timers::default();
    assert!(at(299, &mut l, &mut timers, |h| h.consider()).is_empty());
    assert_eq!(
        at(300, &mut l, &mut timers, |h| h.consider()),
        [timeout_now(1)]
    );

    // Node 1 answers lately throughout; only the pause after a transfer ran out holds it back.
    let mut l = leader([(1, 20, 340), (2, 20, 340)]);
    l.no_transfer_before = ms(400);
    for now in [350, 399] {
        assert!(at(now, &mut l, &mut timers, |h| h.consider()).is_empty());
        assert!(l.transfer.is_none());
    }
    assert_eq!(
        at(400, &mut l, &mut timers, |h| h.consider()),
        [timeout_now(1)]
    );
}

#[test]
fn a_successor_not_yet_caught_up_is_asked_when_it_is() {
    let mut l = leader([(1, 12, 900), (2, 12, 900)]);
    let mut timers = Timers::default();
    // Stopping: the freshest, most caught-up, lowest member is chosen, but not yet asked.
    assert!(at(950, &mut l, &mut timers, |h| h.hand_over()).is_empty());
    assert!(l.transfer.is_some_and(|t| t.to == NodeId(1) && !t.asked));
    assert!(timers.locks_paused());
    assert!(at(960, &mut l, &mut timers, |h| h.repeat_request()).is_empty());
    if let Some(p) = l.progress.get_mut(&NodeId(1)) {
        p.accept(LAST);
    }
    assert!(at(960, &mut l, &mut timers, |h| h.ask_if_caught_up(NodeId(2))).is_empty());
    assert_eq!(
        at(960, &mut l, &mut timers, |h| h.ask_if_caught_up(NodeId(1))),
        [timeout_now(1)]
    );
    assert!(at(960, &mut l, &mut timers, |h| h.ask_if_caught_up(NodeId(1))).is_empty());
    assert_eq!(
        at(1_000, &mut l, &mut timers, |h| h.repeat_request()),
        [timeout_now(1)]
    );
}

#[test]
fn stopping_prefers_a_member_heard_lately_over_one_with_more_log() {
    let mut l = leader([(1, 20, 700), (2, 15, 900)]);
    let mut timers = Timers::default();
    at(950, &mut l, &mut timers, |h| h.hand_over());
    assert!(l.transfer.is_some_and(|t| t.to == NodeId(2)));
}

#[test]
fn stopping_skips_members_being_sent_a_snapshot_or_silent_for_a_timeout() {
    let mut l = leader([(1, 20, 900), (2, 20, 600)]);
    if let Some(p) = l.progress.get_mut(&NodeId(1)) {
        p.snapshot = Some((crate::types::LogPosition::default(), 0));
    }
    let mut timers = Timers::default();
    assert!(at(950, &mut l, &mut timers, |h| h.hand_over()).is_empty());
    assert!(l.transfer.is_none());
}

#[test]
fn a_transfer_that_ran_out_is_given_up_and_not_retried_for_ten_timeouts() {
    let mut l = leader([(1, 12, 900), (2, 12, 900)]);
    let mut timers = Timers::default();
    at(950, &mut l, &mut timers, |h| h.hand_over());
    at(1_249, &mut l, &mut timers, |h| h.give_up_if_due());
    assert!(l.transfer.is_some());
    at(1_250, &mut l, &mut timers, |h| h.give_up_if_due());
    assert!(l.transfer.is_none());
    assert!(!timers.locks_paused());
    assert_eq!(l.no_transfer_before, ms(4_250));
}

/// The lowest-id preference and a planned hand-over look at voters only: node 1, lower and
/// caught up, is a learner, so node 2 is chosen.
#[test]
fn a_learner_is_never_chosen_as_successor() {
    let config = Membership::bootstrap((2..=5).map(NodeId))
        .with_learner(NodeId(1), "h:1".into())
        .unwrap();
    let mut l = leader([(1, 20, 900), (2, 20, 900)]);
    let mut timers = Timers::default();
    assert_eq!(
        at_in(config.clone(), 950, &mut l, &mut timers, |h| h.consider()),
        [timeout_now(2)]
    );
    let mut l = leader([(1, 20, 940), (2, 12, 900)]);
    at_in(config, 950, &mut l, &mut timers, |h| h.hand_over());
    assert!(l.transfer.is_some_and(|t| t.to == NodeId(2)));
}
