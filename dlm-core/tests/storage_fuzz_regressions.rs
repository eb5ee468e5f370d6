//! Storage inputs found by the fuzz targets in `dlm-core/fuzz` (`wal_ops`, `wal_raw`), kept as
//! plain tests so that CI checks them without libFuzzer.
#![cfg(feature = "tokio")]

use dlm_core::runtime::{FileStorage, Storage, StorageError, STORAGE_FORMAT};
use dlm_core::{Command, Entry, LockName, LogIndex, Persist, Term};
use std::path::{Path, PathBuf};

fn entry(index: u64, name_len: usize) -> Entry {
    Entry {
        term: Term(1),
        index: LogIndex(index),
        command: Command::LiftDelay {
            lock: LockName::new("x".repeat(name_len)),
        },
    }
}

fn only_segment(dir: &Path) -> PathBuf {
    let mut segments: Vec<PathBuf> = std::fs::read_dir(dir.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(segments.len(), 1);
    segments.remove(0)
}

/// `wal_ops`: a batch of two records whose last blocks never reached the disk (zeros from the
/// middle of the first record on) is a torn write, not corruption: the node must restart with
/// the entries before it instead of refusing to start.
#[test]
fn a_zero_filled_tail_across_records_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let kept = entry(1, 10);
    {
        let mut storage = FileStorage::open(dir.path()).unwrap();
        storage.recover().unwrap();
        storage
            .persist(vec![Persist::Entries(vec![kept.clone()])])
            .unwrap();
        storage
            .persist(vec![Persist::Entries(vec![entry(2, 190), entry(3, 190)])])
            .unwrap();
    }
    let path = only_segment(dir.path());
    let mut bytes = std::fs::read(&path).unwrap();
    // Where the written bytes end (the segment is preallocated: zeros follow).
    let len = bytes.iter().rposition(|b| *b != 0).unwrap() + 1;
    // Both records of the second batch are about 200 bytes (then a 45-byte commit): this starts
    // inside the first one.
    bytes[len - 257 - 45..].fill(0);
    std::fs::write(&path, &bytes).unwrap();

    let mut storage = FileStorage::open(dir.path()).unwrap();
    let recovered = storage.recover().unwrap();
    assert_eq!(recovered.entries, vec![kept.clone()]);
    // The cut is durable, and the log goes on from there.
    storage
        .persist(vec![Persist::Entries(vec![entry(2, 3)])])
        .unwrap();
    drop(storage);
    let mut storage = FileStorage::open(dir.path()).unwrap();
    assert_eq!(storage.recover().unwrap().entries, vec![kept, entry(2, 3)]);
}

/// Damage followed by real data is still refused.
#[test]
fn a_damaged_record_before_more_data_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut storage = FileStorage::open(dir.path()).unwrap();
        storage.recover().unwrap();
        storage
            .persist(vec![Persist::Entries(vec![entry(1, 10), entry(2, 10)])])
            .unwrap();
    }
    let path = only_segment(dir.path());
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[10] ^= 0xFF;
    std::fs::write(&path, &bytes).unwrap();
    let mut storage = FileStorage::open(dir.path()).unwrap();
    assert!(matches!(
        storage.recover(),
        Err(StorageError::Corrupt { .. })
    ));
}

/// `wal_raw`: a checksummed segment named after the last possible index, holding an entry at that
/// index, used to overflow the next expected index (a panic in debug builds).
#[test]
fn an_entry_at_the_last_index_is_refused_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let wal = dir.path().join("wal");
    std::fs::create_dir_all(&wal).unwrap();
    let payload = postcard::to_allocvec(&Entry {
        term: Term(1),
        index: LogIndex(u64::MAX),
        command: Command::Noop,
    })
    .unwrap();
    let mut record = Vec::new();
    record.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    record.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    record.extend_from_slice(&payload);
    std::fs::write(wal.join(format!("{:020}.wal", u64::MAX)), &record).unwrap();
    let format = format!("dlm storage format {STORAGE_FORMAT}\n");
    std::fs::write(dir.path().join("FORMAT"), format).unwrap();
    let mut storage = FileStorage::open(dir.path()).unwrap();
    assert!(matches!(
        storage.recover(),
        Err(StorageError::Corrupt { .. })
    ));
}
