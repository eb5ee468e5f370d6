//! The configuration in force as the log changes under it.

use super::*;
use crate::command::Command;
use crate::state_machine::Rules;
use crate::types::{ClientId, NodeId, Seq, Term};

fn three() -> Membership {
    Membership::bootstrap([NodeId(1), NodeId(2), NodeId(3)])
}

fn four() -> Membership {
    three().with_learner(NodeId(4), "h:4".into()).unwrap()
}

fn entry(term: u64, index: u64, config: Option<Membership>) -> Entry {
    let command = match config {
        Some(config) => Command::Membership {
            config,
            client: ClientId(1),
            seq: Seq(index),
        },
        None => Command::Noop,
    };
    Entry {
        term: Term(term),
        index: LogIndex(index),
        command,
    }
}

fn pos(term: u64, index: u64) -> LogPosition {
    LogPosition::new(Term(term), LogIndex(index))
}

#[test]
fn without_any_entry_the_start_up_configuration_is_in_force() {
    let m = Members::recover(three(), &Log::default(), &StateMachine::new());
    assert_eq!((m.current.clone(), m.at), (three(), None));
    assert!(m.committed(LogIndex(0)));
}

#[test]
fn the_latest_configuration_in_the_log_wins_over_the_applied_one() {
    let log = Log::new(
        LogPosition::default(),
        [
            entry(1, 1, Some(four())),
            entry(1, 2, None),
            entry(1, 3, Some(three())),
        ],
    );
    let m = Members::recover(Membership::default(), &log, &StateMachine::new());
    assert_eq!((m.current.clone(), m.at), (three(), Some(pos(1, 3))));
    assert!(!m.committed(LogIndex(2)));
    assert!(m.committed(LogIndex(3)));
}

#[test]
fn with_the_log_compacted_the_applied_configuration_is_in_force() {
    let mut sm = StateMachine::new();
    let rules = Rules {
        limits: Default::default(),
        lock_delay: false,
    };
    let config = entry(1, 1, Some(four())).command;
    sm.apply(&config, &rules, &mut Vec::new());
    let log = Log::new(pos(1, 1), [entry(1, 2, None)]);
    let m = Members::recover(three(), &log, &sm);
    assert_eq!((m.current.clone(), m.at), (four(), None));
}

/// A configuration in the log after the snapshot is newer than the one the snapshot applied,
/// so it is the one in force (at restart, or after installing a snapshot that keeps a tail).
#[test]
fn a_configuration_after_the_snapshot_wins_over_the_applied_one() {
    let mut sm = StateMachine::new();
    let rules = Rules {
        limits: Default::default(),
        lock_delay: false,
    };
    sm.apply(&entry(1, 1, Some(four())).command, &rules, &mut Vec::new());
    let log = Log::new(
        pos(1, 1),
        [
            entry(1, 2, None),
            entry(2, 3, Some(three())),
            entry(2, 4, None),
        ],
    );
    let m = Members::recover(Membership::default(), &log, &sm);
    assert_eq!((m.current.clone(), m.at), (three(), Some(pos(2, 3))));
}

/// Appending looks at the new entries only; a truncation that takes the configuration's entry
/// goes back to the one before it.
#[test]
fn refresh_follows_appends_and_undoes_truncated_configurations() {
    let mut log = Log::new(LogPosition::default(), [entry(1, 1, Some(four()))]);
    let sm = StateMachine::new();
    let mut m = Members::recover(three(), &log, &sm);
    assert_eq!(m.at, Some(pos(1, 1)));
    log.push(entry(1, 2, None));
    log.push(entry(1, 3, Some(three())));
    m.refresh(&log, &sm, LogIndex(2));
    assert_eq!((m.current.clone(), m.at), (three(), Some(pos(1, 3))));
    // A new leader replaces index 3 with a Noop of term 2.
    log.truncate_from(LogIndex(3));
    log.push(entry(2, 3, None));
    m.refresh(&log, &sm, LogIndex(3));
    assert_eq!((m.current.clone(), m.at), (four(), Some(pos(1, 1))));
    // And index 1 too: back to the start-up configuration.
    log.truncate_from(LogIndex(1));
    m.refresh(&log, &sm, LogIndex(1));
    assert_eq!((m.current.clone(), m.at), (three(), None));
}

#[test]
fn note_takes_only_configurations() {
    let mut m = Members::recover(three(), &Log::default(), &StateMachine::new());
    m.note(&entry(3, 7, None));
    assert_eq!(m.at, None);
    m.note(&entry(3, 8, Some(four())));
    assert_eq!((m.current.clone(), m.index()), (four(), LogIndex(8)));
}
