//! The configuration in force at a node: the latest [`Command::Membership`] in its log, since a
//! configuration takes effect when appended, not when committed; failing that, the one its state
//! machine last applied (which a snapshot carries); failing that, the one the cluster started
//! with. When the log loses the entry that held it (a conflicting suffix is truncated), the node
//! goes back to the latest one before it.

use crate::command::{Command, Entry};
use crate::log::Log;
use crate::membership::Membership;
use crate::state_machine::StateMachine;
use crate::types::{LogIndex, LogPosition};

/// The configuration in force and where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Members {
    /// The configuration in force.
    pub current: Membership,
    /// The position of its entry; `None` when it comes from the applied state or from the
    /// start-up configuration, both of which are committed.
    pub at: Option<LogPosition>,
    /// The start-up configuration ([`crate::Config::members`]).
    bootstrap: Membership,
}

impl Members {
    /// The configuration of a node whose log and state machine are these.
    pub fn recover(bootstrap: Membership, log: &Log, sm: &StateMachine) -> Members {
        let mut members = Members {
            current: bootstrap.clone(),
            at: None,
            bootstrap,
        };
        members.rescan(log, sm);
        members
    }

    /// The index of the configuration's entry (0 when it is not from the log).
    pub fn index(&self) -> LogIndex {
        self.at.map_or(LogIndex(0), |at| at.index)
    }

    /// Whether the configuration in force has committed, given the commit index.
    pub fn committed(&self, commit: LogIndex) -> bool {
        self.index() <= commit
    }

    /// An entry was appended: if it is a configuration, it is in force from now on.
    pub fn note(&mut self, entry: &Entry) {
        if let Command::Membership { config, .. } = &entry.command {
            self.current = config.clone();
            self.at = Some(entry.position());
        }
    }

    /// The log changed from `from` on (entries appended, perhaps after a truncation): takes
    /// the latest configuration in it. Looks only at the new entries, unless the entry the
    /// configuration came from is gone, which only happens to an uncommitted one.
    pub fn refresh(&mut self, log: &Log, sm: &StateMachine, from: LogIndex) {
        if let Some(at) = self.at {
            let compacted = at.index <= log.base().index;
            if !compacted && log.term_at(at.index) != Some(at.term) {
                self.rescan(log, sm);
                return;
            }
        }
        let from = from.max(self.index().next());
        for entry in log.range(from, log.last().index) {
            if let Command::Membership { config, .. } = &entry.command {
                self.current = config.clone();
                self.at = Some(entry.position());
            }
        }
    }

    /// Finds the configuration from scratch: the latest in the log in memory, else the
    /// applied one, else the start-up one. (Every entry the log no longer holds is applied, so
    /// the applied configuration is the latest among them.)
    pub fn rescan(&mut self, log: &Log, sm: &StateMachine) {
        let first = log.base().index.next();
        let latest = log
            .range(first, log.last().index)
            .filter_map(|entry| match &entry.command {
                Command::Membership { config, .. } => Some((entry.position(), config)),
                _ => None,
            })
            .last();
        (self.current, self.at) = match (latest, sm.membership()) {
            (Some((at, config)), _) => (config.clone(), Some(at)),
            (None, Some(applied)) => (applied.clone(), None),
            (None, None) => (self.bootstrap.clone(), None),
        };
    }
}

#[cfg(test)]
#[path = "members_tests.rs"]
mod tests;
