//! Crashes during a sync of a preallocated (overwritten in place) log segment. A sync writes a
//! batch over zeros that are already on the disk; a crash can persist any subset of its
//! sectors, for instance a later one (with the batch's commit) and not an earlier one, which
//! leaves zeros followed by valid records. Every such image must recover to the log before the
//! batch or the log after it, never refuse to start; damage to a batch that a later batch
//! followed (so it was synced, and maybe acknowledged) must still be refused.
#![cfg(feature = "tokio")]

use dlm_core::runtime::{FileStorage, FileStorageOptions, Storage, StorageError};
use dlm_core::*;
use std::path::{Path, PathBuf};

/// The unit a disk writes atomically (or not at all).
const SECTOR: usize = 512;

fn entry(term: u64, index: u64, size: usize) -> Entry {
    Entry {
        term: Term(term),
        index: LogIndex(index),
        command: Command::LiftDelay {
            lock: LockName::new("x".repeat(size)),
        },
    }
}

fn run(term: u64, range: std::ops::RangeInclusive<u64>, size: usize) -> Vec<Entry> {
    range.map(|i| entry(term, i, size)).collect()
}

fn only_segment(dir: &Path) -> PathBuf {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    assert_eq!(v.len(), 1, "{v:?}");
    v.remove(0)
}

/// Small segments (and so small preallocated files) keep the many recoveries quick.
fn opts() -> FileStorageOptions {
    FileStorageOptions {
        segment_bytes: 4096,
    }
}

fn persist(dir: &Path, batch: Vec<Entry>) {
    let mut s = FileStorage::open_with(dir, opts()).unwrap();
    s.recover().unwrap();
    s.persist(vec![Persist::Entries(batch)]).unwrap();
}

fn recover(dir: &Path) -> Result<Vec<Entry>, StorageError> {
    FileStorage::open_with(dir, opts())?
        .recover()
        .map(|r| r.entries)
}

/// The sectors in which `before` and `after` differ.
fn changed_sectors(before: &[u8], after: &[u8]) -> Vec<usize> {
    (0..after.len().div_ceil(SECTOR))
        .filter(|s| {
            let r = s * SECTOR..((s + 1) * SECTOR).min(after.len());
            before.get(r.clone()) != after.get(r)
        })
        .collect()
}

/// `before` with the sectors of `after` picked by the bits of `mask`.
fn mix(before: &[u8], after: &[u8], sectors: &[usize], mask: u32) -> Vec<u8> {
    let mut out = before.to_vec();
    for (bit, s) in sectors.iter().enumerate() {
        if mask & (1 << bit) != 0 {
            let r = s * SECTOR..((s + 1) * SECTOR).min(after.len());
            out[r.clone()].copy_from_slice(&after[r]);
        }
    }
    out
}

/// Writes every mix of the sectors one sync changed and checks that recovery gives the log
/// before it or the log after it, that the repair is durable and the log goes on after it.
fn every_torn_sync(
    dir: &Path,
    before: &[u8],
    after: &[u8],
    old_log: &[Entry],
    new_log: &[Entry],
) -> (u32, u32) {
    let seg = only_segment(dir);
    let sectors = changed_sectors(before, after);
    assert!(
        sectors.len() >= 3,
        "the batch spans {} sectors",
        sectors.len()
    );
    let (mut olds, mut news) = (0, 0);
    for mask in 0..(1u32 << sectors.len()) {
        std::fs::write(&seg, mix(before, after, &sectors, mask)).unwrap();
        let got = recover(dir).unwrap_or_else(|e| panic!("mask {mask:b}: {e}"));
        if got == old_log {
            olds += 1;
        } else {
            assert_eq!(got, new_log, "mask {mask:b}");
            news += 1;
        }
        // Whatever was cut stays cut, and the log takes the next entry after it.
        let next = got.last().map_or(1, |e| e.index.get() + 1);
        persist(dir, vec![entry(9, next, 3)]);
        let mut expected = got.clone();
        expected.push(entry(9, next, 3));
        assert_eq!(
            recover(dir).unwrap(),
            expected,
            "mask {mask:b}, then one more"
        );
    }
    (olds, news)
}

/// The zero-gap case: zeros (sectors of the batch that never reached the disk) followed by
/// valid records and even the batch's own commit.
#[test]
fn a_sync_torn_at_any_sectors_recovers_the_log_before_or_after_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let first = run(1, 1..=3, 20);
    persist(dir, first.clone());
    let seg = only_segment(dir);
    let before = std::fs::read(&seg).unwrap();
    let batch = run(1, 4..=15, 150);
    persist(dir, batch.clone());
    let after = std::fs::read(&seg).unwrap();
    let mut whole = first.clone();
    whole.extend(batch);
    let (olds, news) = every_torn_sync(dir, &before, &after, &first, &whole);
    // Only the mix with every sector new is the whole batch.
    assert_eq!(news, 1);
    assert!(olds > 1);
}

/// A truncation (a conflicting suffix replaced) is a record in the batch that brings the new
/// entries: a torn sync of that batch leaves the old suffix, never the log cut without the new
/// entries, nor the old entries back after a completed one.
#[test]
fn a_truncation_counts_only_together_with_its_batch() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    persist(dir, run(1, 1..=3, 20));
    persist(dir, run(1, 4..=8, 20));
    let old_log = run(1, 1..=8, 20);
    let seg = only_segment(dir);
    let before = std::fs::read(&seg).unwrap();
    let replacement = run(2, 5..=14, 150);
    persist(dir, replacement.clone());
    let after = std::fs::read(&seg).unwrap();
    let mut new_log = run(1, 1..=4, 20);
    new_log.extend(replacement);
    assert_eq!(recover(dir).unwrap(), new_log);
    let (olds, news) = every_torn_sync(dir, &before, &after, &old_log, &new_log);
    assert_eq!(news, 1);
    assert!(olds > 1);
    // And once it counted, the old entries stay gone through later batches and reopenings.
    std::fs::write(&seg, &after).unwrap();
    persist(dir, run(2, 15..=16, 20));
    new_log.extend(run(2, 15..=16, 20));
    assert_eq!(recover(dir).unwrap(), new_log);
}

/// Zeros inside a batch that another batch followed: that batch was synced, so this is damage
/// to acknowledged data, refused even though the zeros look like an unwritten sector.
#[test]
fn zeros_in_a_synced_batch_before_a_later_batch_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    persist(dir, run(1, 1..=3, 20));
    let seg = only_segment(dir);
    let before = std::fs::read(&seg).unwrap();
    persist(dir, run(1, 4..=15, 150));
    let middle = std::fs::read(&seg).unwrap();
    persist(dir, run(1, 16..=16, 20));
    let after = std::fs::read(&seg).unwrap();
    let damaged_sector = changed_sectors(&before, &middle)[1];
    let later = changed_sectors(&middle, &after);
    let mut data = after.clone();
    data[damaged_sector * SECTOR..(damaged_sector + 1) * SECTOR].fill(0);
    // The later batch's commit is there: it proves the damaged batch was synced.
    std::fs::write(&seg, &data).unwrap();
    assert!(
        matches!(recover(dir), Err(StorageError::Corrupt { .. })),
        "zeros before a later commit"
    );
    // Its commit lost too, its other bytes still prove that it was written after the damaged
    // batch's commit.
    let last = data.iter().rposition(|b| *b != 0).unwrap();
    data[last - 20..=last].fill(0);
    assert!(later.iter().any(|s| *s * SECTOR <= last - 21));
    std::fs::write(&seg, &data).unwrap();
    assert!(
        matches!(recover(dir), Err(StorageError::Corrupt { .. })),
        "zeros before bytes written after the damaged batch's commit"
    );
    // Nothing was repaired.
    assert_eq!(std::fs::read(&seg).unwrap(), data);
}

/// A torn batch's surviving sectors are zeroed when it is cut: otherwise they would sit after
/// the shorter batches written over their start, and once the segment is sealed (the log moved
/// on to the next one) they would read as damage after its last commit.
#[test]
fn a_cut_torn_batch_leaves_nothing_behind_for_later_batches() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // Room for the batches below and not for the last, big entry.
    let opts = FileStorageOptions {
        segment_bytes: 2600,
    };
    let open = || {
        let mut s = FileStorage::open_with(dir, opts.clone()).unwrap();
        let r = s.recover();
        (s, r)
    };
    let first = run(1, 1..=3, 20);
    open()
        .0
        .persist(vec![Persist::Entries(first.clone())])
        .unwrap();
    let seg = only_segment(dir);
    let before = std::fs::read(&seg).unwrap();
    open()
        .0
        .persist(vec![Persist::Entries(run(1, 4..=15, 150))])
        .unwrap();
    let after = std::fs::read(&seg).unwrap();
    // Only the batch's last two sectors, with its commit, reached the disk.
    let sectors = changed_sectors(&before, &after);
    let n = sectors.len();
    let last_two = (1 << (n - 1)) | (1 << (n - 2));
    std::fs::write(&seg, mix(&before, &after, &sectors, last_two)).unwrap();
    let (mut s, r) = open();
    assert_eq!(r.unwrap().entries, first);
    // A short batch over the start of the cut one, then an entry too big for what is left of
    // the segment: the log moves on to a new one, and this one is sealed.
    let mut log = first;
    for batch in [run(2, 4..=4, 3), run(2, 5..=5, 3000)] {
        log.extend(batch.clone());
        s.persist(vec![Persist::Entries(batch)]).unwrap();
    }
    drop(s);
    assert_eq!(open().1.unwrap().entries, log);
}
