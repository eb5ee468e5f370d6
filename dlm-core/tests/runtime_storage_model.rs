//! FileStorage against MemStorage as a model: random runs of appends (with conflicting
//! suffixes), snapshots (compacting or replacing the log), hard states and restarts, on tiny
//! segments so that every path crosses segment boundaries.
#![cfg(feature = "tokio")]

use dlm_core::runtime::{FileStorage, FileStorageOptions, MemStorage, Storage};
use dlm_core::*;
use proptest::prelude::*;
use std::sync::Arc;

#[derive(Clone, Debug)]
enum Step {
    /// Append `count` entries starting `back` entries before the end.
    Append {
        back: u64,
        count: u64,
    },
    /// Snapshot `back` entries before the end, or past the end replacing the log.
    Snapshot {
        back: u64,
        replaces: bool,
    },
    HardState,
    Restart,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (0u64..6, 1u64..8).prop_map(|(back, count)| Step::Append { back, count }),
        1 => (0u64..10, any::<bool>()).prop_map(|(back, replaces)| Step::Snapshot { back, replaces }),
        1 => Just(Step::HardState),
        2 => Just(Step::Restart),
    ]
}

fn entry(term: u64, index: u64) -> Entry {
    Entry {
        term: Term(term),
        index: LogIndex(index),
        command: Command::Noop,
    }
}

fn opts() -> FileStorageOptions {
    FileStorageOptions { segment_bytes: 40 }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]
    #[test]
    fn file_storage_recovers_what_the_model_holds(steps in prop::collection::vec(step(), 1..30)) {
        let tmp = tempfile::tempdir().unwrap();
        let mut model = MemStorage::new();
        let mut file = FileStorage::open_with(tmp.path(), opts()).unwrap();
        file.recover().unwrap();
        let mut term = 1u64;
        for step in steps {
            let now = model.recover().unwrap();
            let base = now.snapshot.as_ref().map_or(0, |s| s.last.index.get());
            let last = now.entries.last().map_or(base, |e| e.index.get());
            let batch = match step {
                Step::Append { back, count } => {
                    term += 1;
                    let first = last.saturating_sub(back).max(base) + 1;
                    vec![Persist::Entries((first..first + count).map(|i| entry(term, i)).collect())]
                }
                Step::Snapshot { back, replaces } => {
                    let (index, t) = if replaces {
                        term += 1;
                        (last + back + 1, term)
                    } else {
                        let index = last.saturating_sub(back).max(base);
                        let t = now.entries.iter().find(|e| e.index.get() == index)
                            .map(|e| e.term.get());
                        match t {
                            Some(t) => (index, t),
                            None => continue,
                        }
                    };
                    let snapshot = Snapshot {
                        last: LogPosition::new(Term(t), LogIndex(index)),
                        data: vec![1, 2, 3],
                    };
                    vec![Persist::Snapshot { snapshot: Arc::new(snapshot), replaces_log: replaces }]
                }
                Step::HardState => {
                    vec![Persist::HardState(HardState { term: Term(term), voted_for: Some(NodeId(term % 3)) })]
                }
                Step::Restart => {
                    drop(file);
                    file = FileStorage::open_with(tmp.path(), opts()).unwrap();
                    let got = file.recover().unwrap();
                    prop_assert_eq!(got, model.recover().unwrap());
                    continue;
                }
            };
            model.persist(batch.clone()).unwrap();
            file.persist(batch).unwrap();
        }
        drop(file);
        let mut file = FileStorage::open_with(tmp.path(), opts()).unwrap();
        prop_assert_eq!(file.recover().unwrap(), model.recover().unwrap());
    }
}
