//! What a simulated node has made durable: persists are applied here as they are executed, and a
//! crash rebuilds the node from this copy alone.

use crate::command::Entry;
use crate::node::{HardState, Persist, Recovered, Snapshot};

/// The durable copy of one node's storage.
#[derive(Clone, Debug, Default)]
pub struct Durable {
    hard_state: HardState,
    snapshot: Option<Snapshot>,
    entries: Vec<Entry>,
}

impl Durable {
    /// Executes one persist.
    pub fn apply(&mut self, persist: &Persist) {
        match persist {
            Persist::HardState(hs) => self.hard_state = *hs,
            Persist::Entries(entries) => {
                let Some(first) = entries.first() else {
                    return;
                };
                self.entries.retain(|e| e.index < first.index);
                self.entries.extend(entries.iter().cloned());
            }
            Persist::Snapshot {
                snapshot,
                replaces_log,
            } => {
                let last = snapshot.last.index;
                if *replaces_log {
                    self.entries.clear();
                } else {
                    self.entries.retain(|e| e.index > last);
                }
                self.snapshot = Some((**snapshot).clone());
            }
        }
    }

    /// What a restarted node recovers.
    pub fn recover(&self) -> Recovered {
        Recovered {
            hard_state: self.hard_state,
            snapshot: self.snapshot.clone(),
            entries: self.entries.clone(),
        }
    }
}
