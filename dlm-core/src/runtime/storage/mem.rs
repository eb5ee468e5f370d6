//! [`MemStorage`]: storage in memory, for tests. Clones share the same contents, so a test can
//! stop a node and start a new one from what the old one persisted.

use super::{Storage, StorageError};
use crate::command::Entry;
use crate::node::{HardState, Persist, Recovered, Snapshot};
use std::sync::{Arc, Mutex, PoisonError};

#[derive(Debug, Default)]
struct Contents {
    hard_state: HardState,
    snapshot: Option<Snapshot>,
    entries: Vec<Entry>,
    syncs: u64,
}

/// In-memory storage with a shared handle. Nothing survives the process.
#[derive(Clone, Debug, Default)]
pub struct MemStorage {
    inner: Arc<Mutex<Contents>>,
}

impl MemStorage {
    /// Empty storage.
    pub fn new() -> MemStorage {
        MemStorage::default()
    }

    /// How many times [`Storage::persist`] was called (one per group commit).
    pub fn syncs(&self) -> u64 {
        self.lock().syncs
    }

    /// The stored entries (after the snapshot).
    pub fn entries(&self) -> Vec<Entry> {
        self.lock().entries.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Contents> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Storage for MemStorage {
    fn recover(&mut self) -> Result<Recovered, StorageError> {
        let c = self.lock();
        Ok(Recovered {
            hard_state: c.hard_state,
            snapshot: c.snapshot.clone(),
            entries: c.entries.clone(),
        })
    }

    fn persist(&mut self, batch: Vec<Persist>) -> Result<(), StorageError> {
        let mut c = self.lock();
        c.syncs += 1;
        for p in batch {
            match p {
                Persist::HardState(hs) => c.hard_state = hs,
                Persist::Entries(entries) => {
                    if let Some(first) = entries.first() {
                        let first = first.index;
                        c.entries.retain(|e| e.index < first);
                    }
                    c.entries.extend(entries);
                }
                Persist::Snapshot {
                    snapshot,
                    replaces_log,
                } => {
                    let last = snapshot.last.index;
                    if replaces_log {
                        c.entries.clear();
                    } else {
                        c.entries.retain(|e| e.index > last);
                    }
                    c.snapshot = Some((*snapshot).clone());
                }
            }
        }
        Ok(())
    }

    fn blocking(&self) -> bool {
        false
    }
}
