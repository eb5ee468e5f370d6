//! FileStorage and MemStorage: round trips, truncation, compaction, torn tails and corruption.
#![cfg(feature = "tokio")]

use dlm_core::runtime::{FileStorage, FileStorageOptions, MemStorage, Storage, StorageError};
use dlm_core::*;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn entry(term: u64, index: u64) -> Entry {
    Entry {
        term: Term(term),
        index: LogIndex(index),
        command: Command::Client(ClientRequest {
            client: ClientId(7),
            seq: Seq(index),
            acked_below: Seq(1),
            pending: Vec::new(),
            op: Op::Cancel {
                lock: format!("lock-{index}").into(),
                seq: Seq(index),
            },
        }),
    }
}

fn entries(term: u64, range: std::ops::RangeInclusive<u64>) -> Vec<Entry> {
    range.map(|i| entry(term, i)).collect()
}

fn small_segments() -> FileStorageOptions {
    FileStorageOptions { segment_bytes: 200 }
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

fn reopen(dir: &Path, opts: FileStorageOptions) -> Result<Recovered, StorageError> {
    FileStorage::open_with(dir, opts)?.recover()
}

#[test]
fn round_trip_of_hard_state_entries_and_snapshot() {
    let tmp = tempfile::tempdir().unwrap();
    let mut s = FileStorage::open(tmp.path()).unwrap();
    assert_eq!(s.recover().unwrap(), Recovered::default());
    let hs = HardState {
        term: Term(3),
        voted_for: Some(NodeId(2)),
    };
    s.persist(vec![
        Persist::HardState(hs),
        Persist::Entries(entries(3, 1..=3)),
        Persist::Entries(entries(3, 4..=5)),
    ])
    .unwrap();
    drop(s);
    let r = reopen(tmp.path(), FileStorageOptions::default()).unwrap();
    assert_eq!(r.hard_state, hs);
    assert_eq!(r.entries, entries(3, 1..=5));
    assert_eq!(r.snapshot, None);
}

#[test]
fn a_second_open_of_the_same_directory_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let _first = FileStorage::open(tmp.path()).unwrap();
    let second = FileStorage::open(tmp.path());
    assert!(matches!(second, Err(StorageError::Locked { .. })));
}

#[test]
fn conflicting_entries_truncate_within_and_across_segments() {
    let tmp = tempfile::tempdir().unwrap();
    let mut s = FileStorage::open_with(tmp.path(), small_segments()).unwrap();
    s.recover().unwrap();
    s.persist(vec![Persist::Entries(entries(1, 1..=30))])
        .unwrap();
    let before = segments(tmp.path()).len();
    assert!(before > 3, "expected several segments, got {before}");
    // Across segments: everything from 8 on is replaced.
    s.persist(vec![Persist::Entries(entries(2, 8..=9))])
        .unwrap();
    assert!(segments(tmp.path()).len() < before);
    // Within the current segment.
    s.persist(vec![Persist::Entries(entries(3, 9..=12))])
        .unwrap();
    drop(s);
    let r = reopen(tmp.path(), small_segments()).unwrap();
    let mut expected = entries(1, 1..=7);
    expected.push(entry(2, 8));
    expected.extend(entries(3, 9..=12));
    assert_eq!(r.entries, expected);
}

#[test]
fn a_snapshot_deletes_the_segments_it_covers() {
    let tmp = tempfile::tempdir().unwrap();
    let mut s = FileStorage::open_with(tmp.path(), small_segments()).unwrap();
    s.recover().unwrap();
    s.persist(vec![Persist::Entries(entries(1, 1..=30))])
        .unwrap();
    let before = segments(tmp.path()).len();
    let snapshot = Snapshot {
        last: LogPosition::new(Term(1), LogIndex(20)),
        data: StateMachine::new().to_bytes().unwrap(),
    };
    s.persist(vec![Persist::Snapshot {
        snapshot: Arc::new(snapshot.clone()),
        replaces_log: false,
    }])
    .unwrap();
    assert!(segments(tmp.path()).len() < before);
    drop(s);
    let r = reopen(tmp.path(), small_segments()).unwrap();
    assert_eq!(r.snapshot, Some(snapshot.clone()));
    assert_eq!(r.entries, entries(1, 21..=30));

    // A snapshot from the leader replaces the whole log.
    let mut s = FileStorage::open_with(tmp.path(), small_segments()).unwrap();
    s.recover().unwrap();
    let theirs = Snapshot {
        last: LogPosition::new(Term(4), LogIndex(50)),
        ..snapshot
    };
    s.persist(vec![
        Persist::Snapshot {
            snapshot: Arc::new(theirs.clone()),
            replaces_log: true,
        },
        Persist::Entries(entries(4, 51..=52)),
    ])
    .unwrap();
    drop(s);
    let r = reopen(tmp.path(), small_segments()).unwrap();
    assert_eq!(r.snapshot, Some(theirs));
    assert_eq!(r.entries, entries(4, 51..=52));
}

/// Bytes before a preallocated segment's first record (its header).
const SEGMENT_HEADER: usize = 24;

/// Where `after` (a segment's bytes after one more sync) first differs from `before`: the start
/// of the batch that sync wrote (a record starts with its length, never zero).
fn batch_start(before: &[u8], after: &[u8]) -> usize {
    (0..after.len())
        .find(|i| before.get(*i) != after.get(*i))
        .unwrap()
}

/// One past the last byte that is not zero: inside the last commit record written.
fn last_written(data: &[u8]) -> usize {
    data.iter().rposition(|b| *b != 0).unwrap() + 1
}

/// A sync that persisted only a prefix of what it wrote (the rest still the preallocated
/// zeros) leaves the whole batches before it.
#[test]
fn every_cut_of_the_log_recovers_the_whole_records_before_it() {
    let tmp = tempfile::tempdir().unwrap();
    let mut s = FileStorage::open(tmp.path()).unwrap();
    s.recover().unwrap();
    // One record per persist, to know where each batch ends.
    let mut images = Vec::new();
    for i in 1..=5 {
        s.persist(vec![Persist::Entries(vec![entry(1, i)])])
            .unwrap();
        images.push(std::fs::read(&segments(tmp.path())[0]).unwrap());
    }
    drop(s);
    let mut ends = vec![SEGMENT_HEADER];
    for pair in images.windows(2) {
        ends.push(batch_start(&pair[0], &pair[1]));
    }
    let seg = segments(tmp.path())[0].clone();
    let full = images[3].clone();
    for cut in SEGMENT_HEADER..=ends[4] {
        // Past the last batch only zeros: the file's preallocated length does not matter here.
        let mut torn = full[..ends[4] + 64].to_vec();
        torn[cut..].fill(0);
        std::fs::write(&seg, &torn).unwrap();
        let r = reopen(tmp.path(), FileStorageOptions::default()).unwrap();
        let whole = ends.iter().filter(|e| **e <= cut).count() as u64 - 1;
        assert_eq!(r.entries, entries(1, 1..=whole), "cut at {cut}");
        // The torn part is gone from disk, so new records follow the good ones.
        let data = std::fs::read(&seg).unwrap();
        assert!(data[ends[whole as usize]..].iter().all(|b| *b == 0));
        let mut s = FileStorage::open(tmp.path()).unwrap();
        s.recover().unwrap();
        s.persist(vec![Persist::Entries(vec![entry(2, whole + 1)])])
            .unwrap();
        drop(s);
        let mut expected = entries(1, 1..=whole);
        expected.push(entry(2, whole + 1));
        let r = reopen(tmp.path(), FileStorageOptions::default()).unwrap();
        assert_eq!(r.entries, expected, "append after cut at {cut}");
    }
}

#[test]
fn a_bad_checksum_in_the_last_record_is_a_torn_tail() {
    let tmp = tempfile::tempdir().unwrap();
    let mut s = FileStorage::open(tmp.path()).unwrap();
    s.recover().unwrap();
    s.persist(vec![Persist::Entries(entries(1, 1..=2))])
        .unwrap();
    s.persist(vec![Persist::Entries(entries(1, 3..=3))])
        .unwrap();
    drop(s);
    let seg = segments(tmp.path())[0].clone();
    let mut data = std::fs::read(&seg).unwrap();
    let last = last_written(&data) - 1;
    data[last] ^= 0xff;
    std::fs::write(&seg, &data).unwrap();
    let r = reopen(tmp.path(), FileStorageOptions::default()).unwrap();
    assert_eq!(r.entries, entries(1, 1..=2));
}

/// Damage to a batch that was followed by another one (so it was synced) is refused, at the
/// first record that could not be read.
#[test]
fn corruption_before_the_tail_is_refused_with_file_and_offset() {
    let tmp = tempfile::tempdir().unwrap();
    let mut s = FileStorage::open(tmp.path()).unwrap();
    s.recover().unwrap();
    s.persist(vec![Persist::Entries(vec![entry(1, 1)])])
        .unwrap();
    let before = std::fs::read(&segments(tmp.path())[0]).unwrap();
    s.persist(vec![Persist::Entries(entries(1, 2..=4))])
        .unwrap();
    let after = std::fs::read(&segments(tmp.path())[0]).unwrap();
    let second = batch_start(&before, &after) as u64;
    s.persist(vec![Persist::Entries(vec![entry(1, 5)])])
        .unwrap();
    drop(s);
    let seg = segments(tmp.path())[0].clone();
    let mut data = std::fs::read(&seg).unwrap();
    // A byte inside the payload of the second batch's first record.
    data[second as usize + 10] ^= 0x01;
    std::fs::write(&seg, &data).unwrap();
    match reopen(tmp.path(), FileStorageOptions::default()) {
        Err(StorageError::Corrupt { file, offset, .. }) => {
            assert_eq!(file, seg);
            assert_eq!(offset, second);
        }
        other => panic!("expected a corruption error, got {other:?}"),
    }
    // Nothing was "repaired": the file is untouched.
    assert_eq!(std::fs::read(&seg).unwrap(), data);
}

/// A segment with a successor was synced whole before the successor was made: a torn batch
/// there is damage.
#[test]
fn a_torn_record_in_an_earlier_segment_is_corruption() {
    let tmp = tempfile::tempdir().unwrap();
    let mut s = FileStorage::open_with(tmp.path(), small_segments()).unwrap();
    s.recover().unwrap();
    s.persist(vec![Persist::Entries(entries(1, 1..=30))])
        .unwrap();
    drop(s);
    let first = segments(tmp.path())[0].clone();
    let mut data = std::fs::read(&first).unwrap();
    let end = last_written(&data);
    data[end - 3..end].fill(0);
    std::fs::write(&first, &data).unwrap();
    assert!(matches!(
        reopen(tmp.path(), small_segments()),
        Err(StorageError::Corrupt { .. })
    ));
}

#[test]
fn mem_storage_clones_share_contents() {
    let mut a = MemStorage::new();
    let mut b = a.clone();
    a.persist(vec![
        Persist::Entries(entries(1, 1..=5)),
        Persist::Entries(entries(2, 4..=4)),
    ])
    .unwrap();
    let r = b.recover().unwrap();
    let mut expected = entries(1, 1..=3);
    expected.push(entry(2, 4));
    assert_eq!(r.entries, expected);
    assert_eq!(a.syncs(), 1);
}

#[test]
fn an_empty_last_segment_left_by_a_crash_is_reused_and_truncation_still_works() {
    let tmp = tempfile::tempdir().unwrap();
    let mut s = FileStorage::open_with(tmp.path(), small_segments()).unwrap();
    s.recover().unwrap();
    s.persist(vec![Persist::Entries(entries(1, 1..=20))])
        .unwrap();
    drop(s);
    // A crash right after a new segment file was created.
    let next = segments(tmp.path()).len();
    assert!(next > 1, "{:?}", segments(tmp.path()));
    std::fs::write(tmp.path().join("wal").join(format!("{:020}.wal", 21)), b"").unwrap();
    let mut s = FileStorage::open_with(tmp.path(), small_segments()).unwrap();
    assert_eq!(s.recover().unwrap().entries, entries(1, 1..=20));
    // Replacing a suffix that lies in an earlier segment, past the empty one.
    s.persist(vec![Persist::Entries(entries(2, 5..=7))])
        .unwrap();
    drop(s);
    let r = reopen(tmp.path(), small_segments()).unwrap();
    let mut expected = entries(1, 1..=4);
    expected.extend(entries(2, 5..=7));
    assert_eq!(r.entries, expected);
}

/// An entry at the last possible index could never be recovered (recovery refuses it as an
/// index overflow), so storing one is refused up front and the stored log is left as it was.
#[test]
fn an_entry_at_the_last_possible_index_is_refused_before_it_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let mut s = FileStorage::open(tmp.path()).unwrap();
    s.persist(vec![Persist::Entries(entries(1, 1..=2))])
        .unwrap();
    let last = LogIndex(u64::MAX);
    let refused = s.persist(vec![Persist::Entries(vec![
        entry(1, u64::MAX - 1),
        entry(1, u64::MAX),
    ])]);
    assert!(
        matches!(refused, Err(StorageError::IndexExhausted(i)) if i == last),
        "{refused:?}"
    );
    drop(s);
    let r = reopen(tmp.path(), FileStorageOptions::default()).unwrap();
    assert_eq!(r.entries, entries(1, 1..=2));
}
