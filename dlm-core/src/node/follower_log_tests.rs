//! Exact-effect tests of a follower's consistency check: one call, the outcome, the log and the
//! persists.

use super::*;
use crate::command::Command;
use crate::node::Effect;

fn entry(term: u64, index: u64) -> Entry {
    Entry {
        term: Term(term),
        index: LogIndex(index),
        command: Command::Noop,
    }
}

fn pos(term: u64, index: u64) -> LogPosition {
    LogPosition::new(Term(term), LogIndex(index))
}

/// A log above `base` holding `terms[i]` at index base + 1 + i, durable up to `durable`.
struct Follower {
    log: Log,
    durable: LogIndex,
}

impl Follower {
    fn new(base: LogPosition, terms: &[u64], durable: u64) -> Follower {
        let entries = terms
            .iter()
            .enumerate()
            .map(|(i, t)| entry(*t, base.index.0 + 1 + i as u64));
        Follower {
            log: Log::new(base, entries),
            durable: LogIndex(durable),
        }
    }

    /// Runs one AppendEntries and returns the answer and the effects.
    fn append(
        &mut self,
        prev: LogPosition,
        entries: Vec<Entry>,
    ) -> ((LogIndex, AppendOutcome), Vec<Effect>) {
        let mut out = Output::default();
        let answer = FollowerLog {
            log: &mut self.log,
            durable: &mut self.durable,
            out: &mut out,
        }
        .append(prev, entries);
        (answer, std::iter::from_fn(|| out.pop()).collect())
    }

    fn terms(&self) -> Vec<u64> {
        let last = self.log.last().index;
        let first = self.log.base().index.next();
        self.log.range(first, last).map(|e| e.term.0).collect()
    }
}

fn accepted(prev: u64, match_index: u64) -> (LogIndex, AppendOutcome) {
    let outcome = AppendOutcome::Accepted {
        match_index: LogIndex(match_index),
    };
    (LogIndex(prev), outcome)
}

fn rejected(prev: u64, hint: u64) -> (LogIndex, AppendOutcome) {
    let outcome = AppendOutcome::Rejected {
        hint: LogIndex(hint),
    };
    (LogIndex(prev), outcome)
}

fn persisted(entries: Vec<Entry>) -> Effect {
    Effect::Persist(Persist::Entries(entries))
}

#[test]
fn matching_entries_are_appended_and_persisted() {
    let mut f = Follower::new(LogPosition::default(), &[1, 1], 2);
    let (answer, effects) = f.append(pos(1, 2), vec![entry(2, 3), entry(2, 4)]);
    assert_eq!(answer, accepted(2, 4));
    assert_eq!(effects, [persisted(vec![entry(2, 3), entry(2, 4)])]);
    assert_eq!(f.terms(), [1, 1, 2, 2]);
}

#[test]
fn a_repeated_append_changes_nothing_and_persists_nothing() {
    let mut f = Follower::new(LogPosition::default(), &[1, 2, 2], 3);
    let (answer, effects) = f.append(pos(1, 1), vec![entry(2, 2), entry(2, 3)]);
    assert_eq!(answer, accepted(1, 3));
    assert!(effects.is_empty());
}

#[test]
fn a_missing_prev_is_rejected_with_the_end_of_our_log() {
    let mut f = Follower::new(LogPosition::default(), &[1, 1], 2);
    let (answer, effects) = f.append(pos(2, 6), vec![entry(2, 7)]);
    assert_eq!(answer, rejected(6, 3));
    assert!(effects.is_empty());
}

#[test]
fn a_conflicting_prev_is_rejected_with_the_start_of_its_terms_run() {
    // Our entries 3..=5 are of term 2; the leader's entry 5 is of term 3.
    let mut f = Follower::new(LogPosition::default(), &[1, 1, 2, 2, 2], 5);
    let (answer, effects) = f.append(pos(3, 5), vec![]);
    assert_eq!(answer, rejected(5, 3));
    assert!(effects.is_empty());
    assert_eq!(f.terms(), [1, 1, 2, 2, 2], "a rejection changes nothing");
}

#[test]
fn the_hint_never_goes_below_the_snapshot() {
    let mut f = Follower::new(pos(2, 4), &[2, 2], 6);
    let (answer, _) = f.append(pos(3, 6), vec![]);
    assert_eq!(answer, rejected(6, 5));
}

#[test]
fn a_conflicting_suffix_is_replaced_and_is_no_longer_durable() {
    let mut f = Follower::new(LogPosition::default(), &[1, 1, 2, 2], 4);
    let (answer, effects) = f.append(pos(1, 2), vec![entry(3, 3)]);
    assert_eq!(answer, accepted(2, 3));
    assert_eq!(effects, [persisted(vec![entry(3, 3)])]);
    assert_eq!(f.terms(), [1, 1, 3]);
    assert_eq!(f.durable, LogIndex(2));
}

#[test]
fn entries_inside_the_snapshot_are_skipped_as_committed() {
    let mut f = Follower::new(pos(2, 4), &[], 4);
    let (answer, effects) = f.append(
        pos(1, 1),
        vec![
            entry(1, 2),
            entry(1, 3),
            entry(2, 4),
            entry(2, 5),
            entry(3, 6),
        ],
    );
    assert_eq!(
        answer,
        accepted(4, 6),
        "answered about the snapshot's position"
    );
    assert_eq!(effects, [persisted(vec![entry(2, 5), entry(3, 6)])]);
    assert_eq!(f.terms(), [2, 3]);
}

#[test]
fn entries_ending_at_the_snapshot_are_answered_about_it() {
    let mut f = Follower::new(pos(2, 4), &[2], 5);
    let (answer, effects) = f.append(pos(1, 2), vec![entry(1, 3), entry(2, 4)]);
    assert_eq!(answer, accepted(4, 4));
    assert!(effects.is_empty());
}

#[test]
fn a_prev_that_contradicts_the_snapshot_is_not_trusted() {
    // No honest leader sends this (the snapshot is committed), so nothing is taken from it.
    let mut f = Follower::new(pos(2, 4), &[2], 5);
    let (answer, effects) = f.append(pos(1, 4), vec![entry(3, 5)]);
    assert_eq!(answer, rejected(4, 4));
    assert!(effects.is_empty());
    assert_eq!(f.terms(), [2]);
}

#[test]
fn an_append_wholly_inside_the_snapshot_is_accepted_as_it_is() {
    let mut f = Follower::new(pos(2, 4), &[2], 5);
    let (answer, effects) = f.append(pos(1, 1), vec![entry(1, 2)]);
    assert_eq!(answer, accepted(1, 2));
    assert!(effects.is_empty());
}
