//! Target `wal_ops`: a run of persist batches of the kind a node issues (appends that may replace
//! a suffix, hard states, local snapshots that compact the log, snapshots installed from a
//! leader), with reopenings in between, against the production `FileStorage` with small
//! segments; `MemStorage` given the same batches is the model. Every recovery must equal the
//! model's. Then the files are damaged (a cut or zero-filled tail of the last segment, or one
//! flipped bit anywhere) and recovery must still be sound: a cut tail is repaired to a prefix of
//! the log, a flipped bit is either repaired that way or refused with a typed error.

use arbitrary::{Arbitrary, Unstructured};
use dlm_core::runtime::{FileStorage, FileStorageOptions, MemStorage, Storage};
use dlm_core::{
    Command, Entry, HardState, LockName, LogIndex, LogPosition, NodeId, Persist, Recovered,
    Snapshot, Term,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One persist effect, described relative to the current log so that it is one a node could
/// issue.
#[derive(Arbitrary, Debug)]
pub enum Step {
    /// Entries after the last one, or replacing up to `back % 4` of the last ones.
    Append {
        /// How many trailing entries to replace.
        back: u8,
        /// How many entries (1 to 8).
        count: u8,
        /// Whether the new entries start a new term.
        new_term: bool,
        /// Size of each entry's name, to vary record sizes across segment boundaries.
        size: u8,
    },
    /// A new hard state.
    HardState {
        /// Added to the current term.
        bump: u8,
        /// The vote.
        vote: Option<u8>,
    },
    /// A snapshot of the node's own state at one of its entries; the log before it may go.
    Compact {
        /// How far back from the last entry.
        back: u8,
    },
    /// A snapshot installed from a leader, past the end of the log; the log is replaced.
    Install {
        /// How far past the last entry.
        ahead: u8,
    },
}

/// What to do before the next batch.
#[derive(Arbitrary, Debug)]
pub struct Batch {
    /// The persist effects of one group commit.
    pub steps: Vec<Step>,
    /// Close and reopen the storage afterwards (a restart).
    pub reopen: bool,
}

/// The damage done at the end.
#[derive(Arbitrary, Debug)]
pub enum Damage {
    /// None.
    None,
    /// Cut the last segment short by `back` bytes (modulo its length + 1): a torn append (a
    /// preallocated segment never shrinks, but recovery must take a short one as well).
    Cut {
        /// Bytes to remove.
        back: u16,
    },
    /// Zero the last `back` bytes of the last segment's written part (up to its last byte that
    /// is not zero: a preallocated segment ends in zeros): a sync whose last sectors never
    /// reached the disk.
    ZeroTail {
        /// Bytes to zero.
        back: u16,
    },
    /// Flip one bit of one file.
    Flip {
        /// Which file (modulo the number of files).
        file: u8,
        /// Which byte (modulo its length).
        at: u16,
        /// Which bit.
        bit: u8,
    },
}

/// A whole input.
#[derive(Arbitrary, Debug)]
pub struct Plan {
    /// Segment size is 32 plus this.
    pub segment_bytes: u16,
    /// The batches.
    pub batches: Vec<Batch>,
    /// The damage.
    pub damage: Damage,
}

/// The node-side view needed to make realistic steps.
#[derive(Default)]
struct Model {
    mem: MemStorage,
    term: u64,
    base: LogPosition,
    last: LogPosition,
    /// The log after `base` as the node sees it, already counting the steps of the batch being
    /// built (the storage sees the batch only when it is complete).
    entries: Vec<Entry>,
    /// `entries` after each step so far: a damaged last batch (which may be a truncation)
    /// recovers to the log as it was before that batch, not only to a prefix of the last one.
    history: Vec<Vec<Entry>>,
}

impl Model {
    /// Turns a step into the persist effect a node would issue, and applies it to the model.
    fn effect(&mut self, step: &Step) -> Persist {
        let effect = self.effect_of(step);
        self.history.push(self.entries.clone());
        effect
    }

    fn effect_of(&mut self, step: &Step) -> Persist {
        match *step {
            Step::Append {
                back,
                count,
                new_term,
                size,
            } => {
                let replace =
                    u64::from(back % 4).min(self.last.index.get() - self.base.index.get());
                if new_term || self.term == 0 {
                    self.term += 1;
                }
                let first = self.last.index.get() - replace + 1;
                let entries: Vec<Entry> = (0..u64::from(count % 8) + 1)
                    .map(|i| Entry {
                        term: Term(self.term),
                        index: LogIndex(first + i),
                        command: Command::LiftDelay {
                            lock: LockName::new("x".repeat(usize::from(size))),
                        },
                    })
                    .collect();
                if let Some(e) = entries.last() {
                    self.last = e.position();
                }
                self.entries.retain(|e| e.index.get() < first);
                self.entries.extend(entries.iter().cloned());
                Persist::Entries(entries)
            }
            Step::HardState { bump, vote } => {
                self.term += u64::from(bump);
                Persist::HardState(HardState {
                    term: Term(self.term),
                    voted_for: vote.map(|v| NodeId(u64::from(v))),
                })
            }
            Step::Compact { back } => {
                let entries = &self.entries;
                let at = entries
                    .len()
                    .checked_sub(1 + usize::from(back) % entries.len().max(1))
                    .and_then(|i| entries.get(i))
                    .map(Entry::position)
                    .unwrap_or(self.base);
                self.base = at;
                self.entries.retain(|e| e.index > at.index);
                self.snapshot(at, false)
            }
            Step::Install { ahead } => {
                self.term += 1;
                let at = LogPosition {
                    term: Term(self.term),
                    index: LogIndex(self.last.index.get() + 1 + u64::from(ahead)),
                };
                self.base = at;
                self.last = at;
                self.entries.clear();
                self.snapshot(at, true)
            }
        }
    }

    fn snapshot(&self, at: LogPosition, replaces_log: bool) -> Persist {
        Persist::Snapshot {
            snapshot: Arc::new(Snapshot {
                last: at,
                data: at.index.get().to_le_bytes().to_vec(),
            }),
            replaces_log,
        }
    }

    fn recovered(&self) -> Recovered {
        self.mem.clone().recover().expect("memory storage recovers")
    }
}

fn open(dir: &Path, segment_bytes: u64) -> FileStorage {
    FileStorage::open_with(dir, FileStorageOptions { segment_bytes }).expect("opening")
}

/// Runs one input.
pub fn run(data: &[u8]) {
    let Ok(plan) = Plan::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    // To see what a crashing input does: DLM_FUZZ_DEBUG=1 target/.../wal_ops <crash file>.
    if std::env::var_os("DLM_FUZZ_DEBUG").is_some() {
        eprintln!("{plan:#?}");
    }
    run_plan(&plan);
}

/// Runs one plan.
pub fn run_plan(plan: &Plan) {
    let segment_bytes = 32 + u64::from(plan.segment_bytes);
    let dir = crate::scratch_dir();
    let mut model = Model::default();
    let mut storage = open(dir.path(), segment_bytes);
    assert_eq!(
        storage.recover().expect("an empty directory recovers"),
        Recovered::default()
    );
    for batch in plan.batches.iter().take(64) {
        let effects: Vec<Persist> = batch
            .steps
            .iter()
            .take(8)
            .map(|s| model.effect(s))
            .collect();
        model
            .mem
            .persist(effects.clone())
            .expect("memory storage persists");
        storage.persist(effects).expect("file storage persists");
        if batch.reopen {
            drop(storage);
            storage = open(dir.path(), segment_bytes);
            let got = storage.recover().expect("recovering after a clean stop");
            assert_eq!(got, model.recovered(), "recovery differs from the model");
        }
    }
    drop(storage);
    let expected = model.recovered();
    {
        let mut storage = open(dir.path(), segment_bytes);
        let got = storage.recover().expect("recovering after a clean stop");
        assert_eq!(got, expected, "recovery differs from the model");
    }
    damage(
        dir.path(),
        &plan.damage,
        &expected,
        &model.history,
        segment_bytes,
    );
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = ["hardstate", "snapshot"]
        .iter()
        .map(|n| dir.join(n))
        .filter(|p| p.is_file())
        .collect();
    let mut segments: Vec<PathBuf> = std::fs::read_dir(dir.join("wal"))
        .map(|items| items.filter_map(|i| i.ok().map(|i| i.path())).collect())
        .unwrap_or_default();
    segments.sort();
    out.extend(segments);
    out
}

/// A preallocated segment's header (magic, version, nonce, CRC).
const SEG_HEADER: usize = 8 + 4 + 8 + 4;

/// Whether damage from byte `from` on reaches the header of a preallocated segment. That is
/// not what a crash leaves: the header is written and synced with the segment's zeros, under a
/// temporary name, before the file gets its name. So recovery may refuse it as damage.
fn into_header(path: &Path, from: usize) -> bool {
    path.extension().is_some_and(|e| e == "seg") && from < SEG_HEADER
}

fn damage(
    dir: &Path,
    damage: &Damage,
    expected: &Recovered,
    history: &[Vec<Entry>],
    segment_bytes: u64,
) {
    let all = files(dir);
    let last_segment = all
        .iter()
        .rev()
        .find(|p| p.extension().is_some_and(|e| e == "wal" || e == "seg"));
    let (path, must_recover) = match *damage {
        Damage::None => return,
        Damage::Cut { back } => {
            let Some(path) = last_segment else { return };
            let mut bytes = std::fs::read(path).expect("reading a segment");
            let cut = usize::from(back) % (bytes.len() + 1);
            bytes.truncate(bytes.len() - cut);
            let kept = bytes.len();
            std::fs::write(path, bytes).expect("writing a segment");
            (path.clone(), !into_header(path, kept))
        }
        Damage::ZeroTail { back } => {
            let Some(path) = last_segment else { return };
            let mut bytes = std::fs::read(path).expect("reading a segment");
            let len = bytes.iter().rposition(|b| *b != 0).map_or(0, |at| at + 1);
            let n = usize::from(back) % (len + 1);
            bytes[len - n..len].fill(0);
            std::fs::write(path, bytes).expect("writing a segment");
            (path.clone(), !into_header(path, len - n))
        }
        Damage::Flip { file, at, bit } => {
            let Some(path) = all.get(usize::from(file) % all.len().max(1)) else {
                return;
            };
            let mut bytes = std::fs::read(path).expect("reading a file");
            if bytes.is_empty() {
                return;
            }
            let at = usize::from(at) % bytes.len();
            bytes[at] ^= 1 << (bit % 8);
            std::fs::write(path, bytes).expect("writing a file");
            (path.clone(), false)
        }
    };
    let in_wal = path.extension().is_some_and(|e| e == "wal" || e == "seg");
    let mut storage = open(dir, segment_bytes);
    match storage.recover() {
        Ok(got) => {
            assert!(in_wal, "a damaged {} was accepted", path.display());
            assert_eq!(got.hard_state, expected.hard_state);
            assert_eq!(got.snapshot, expected.snapshot);
            let base = expected.snapshot.as_ref().map(|s| s.last.index);
            let is_prefix_of = |log: &[Entry]| {
                let log: Vec<&Entry> = log.iter().filter(|e| Some(e.index) > base).collect();
                log.len() >= got.entries.len() && log.iter().zip(&got.entries).all(|(a, b)| *a == b)
            };
            assert!(
                is_prefix_of(&expected.entries) || history.iter().any(|h| is_prefix_of(h)),
                "recovered entries after damage are not a prefix of the log as it was after a step"
            );
        }
        Err(e) => assert!(
            !must_recover,
            "a torn tail of the last segment was refused: {e}"
        ),
    }
}
