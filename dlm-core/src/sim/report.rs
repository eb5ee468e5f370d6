//! What a run reports: a broken invariant with the events that led to it, or a summary with
//! the run's fingerprint; and the history and fingerprint those are drawn from. Apart from the
//! run itself, so that what a report carries, and how, is in one place.

use super::invariants::Broken;
use super::Sim;
use std::fmt;

/// A broken invariant, with what is needed to replay it.
#[derive(Clone, Debug)]
pub struct Violation {
    /// The seed of the run.
    pub seed: u64,
    /// The invariant.
    pub invariant: &'static str,
    /// What was wrong.
    pub detail: String,
    /// True virtual time (ns) of the step that broke it.
    pub at: u64,
    /// The last events before it, oldest first.
    pub events: Vec<String>,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "seed {}: invariant {} broken at {} ms: {}",
            self.seed,
            self.invariant,
            self.at / 1_000_000,
            self.detail
        )?;
        for event in &self.events {
            writeln!(f, "  {event}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Violation {}

/// What a finished run did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Summary {
    /// Hash of every effect in order: the same seed gives the same fingerprint.
    pub fingerprint: u64,
    /// Steps taken.
    pub steps: u64,
    /// Client operations answered.
    pub client_ops: u64,
    /// Grants taken away by an operator's revoke (as the checker saw them).
    pub revoked: u64,
    /// Membership changes committed (the configurations the checker saw committed).
    pub reconfigured: u64,
    /// Of those, how many removed a node that led when it was asked.
    pub leaders_removed: u64,
    /// Requests clients sent naming pending seqs: acknowledging answers past a waiting call.
    pub pending_sent: u64,
    /// Watch answers checked against the oracle, the events they carried, how many were
    /// compacted (the watcher had fallen behind the window), and how many could not be
    /// checked (they reach past an entry the checker never saw: compacted on every node first).
    pub watches: (u64, u64, u64, u64),
}

pub(super) fn fold(h: &mut u64, v: u64) {
    // One multiply per word (FxHash's step): the fingerprint tells runs apart, it guards nothing.
    *h = (h.rotate_left(5) ^ v).wrapping_mul(0x517c_c1b7_2722_0a95);
}

impl Sim {
    pub(super) fn violation(&self, broken: Broken) -> Violation {
        Violation {
            seed: self.cfg.seed,
            invariant: broken.0,
            detail: broken.1,
            at: self.now,
            events: self.history.iter().cloned().collect(),
        }
    }

    pub(super) fn log(&mut self, event: impl FnOnce() -> String) {
        if self.cfg.history == 0 {
            return;
        }
        if self.history.len() == self.cfg.history {
            self.history.pop_front();
        }
        let line = format!("{:>9.3} ms {}", self.now as f64 / 1e6, event());
        self.history.push_back(line);
    }
}
