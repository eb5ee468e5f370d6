//! Directories of storage formats 1 to 3, whose log segments were appended to (`<first>.wal`,
//! records without a header or commits), are read by this build, which then writes only
//! preallocated segments (`<first>.seg`) after them, and can still truncate into them.
#![cfg(feature = "tokio")]

use dlm_core::runtime::{FileStorage, Storage, STORAGE_FORMAT};
use dlm_core::*;
use std::path::Path;

fn entry(term: u64, index: u64) -> Entry {
    Entry {
        term: Term(term),
        index: LogIndex(index),
        command: Command::LiftDelay {
            lock: LockName::new(format!("lock-{index}")),
        },
    }
}

fn run(term: u64, range: std::ops::RangeInclusive<u64>) -> Vec<Entry> {
    range.map(|i| entry(term, i)).collect()
}

/// A segment as formats 1-3 wrote it: `u32 length | u32 CRC32 | postcard entry`, appended.
fn legacy_segment(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        let payload = postcard::to_allocvec(e).unwrap();
        out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        out.extend_from_slice(&payload);
    }
    out
}

fn suffixes(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

fn recover(dir: &Path) -> Vec<Entry> {
    FileStorage::open(dir).unwrap().recover().unwrap().entries
}

#[test]
fn appended_segments_of_formats_1_to_3_are_read_continued_and_truncated() {
    for format in 1..=3 {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let wal = dir.join("wal");
        std::fs::create_dir_all(&wal).unwrap();
        std::fs::write(dir.join("FORMAT"), format!("dlm storage format {format}\n")).unwrap();
        std::fs::write(
            wal.join(format!("{:020}.wal", 1)),
            legacy_segment(&run(1, 1..=4)),
        )
        .unwrap();
        // The last one with a torn record after its whole ones, cut as those formats did.
        let mut last = legacy_segment(&run(1, 5..=6));
        let torn = legacy_segment(&run(1, 7..=7));
        last.extend_from_slice(&torn[..torn.len() - 2]);
        std::fs::write(wal.join(format!("{:020}.wal", 5)), &last).unwrap();

        assert_eq!(recover(dir), run(1, 1..=6), "format {format}");
        let marked = std::fs::read_to_string(dir.join("FORMAT")).unwrap();
        assert_eq!(marked, format!("dlm storage format {STORAGE_FORMAT}\n"));

        // New entries go to a new, preallocated segment after the old ones.
        let mut s = FileStorage::open(dir).unwrap();
        s.recover().unwrap();
        s.persist(vec![Persist::Entries(run(1, 7..=8))]).unwrap();
        drop(s);
        assert_eq!(recover(dir), run(1, 1..=8));
        assert_eq!(
            suffixes(dir),
            [
                format!("{:020}.wal", 1),
                format!("{:020}.wal", 5),
                format!("{:020}.seg", 7)
            ]
        );

        // A conflict inside the first old segment cuts it and drops the later ones.
        let mut s = FileStorage::open(dir).unwrap();
        s.recover().unwrap();
        s.persist(vec![Persist::Entries(run(2, 3..=5))]).unwrap();
        drop(s);
        let mut expected = run(1, 1..=2);
        expected.extend(run(2, 3..=5));
        assert_eq!(recover(dir), expected, "format {format}");
        assert_eq!(
            suffixes(dir),
            [format!("{:020}.wal", 1), format!("{:020}.seg", 3)]
        );
    }
}

/// Formats 1-3 could leave an empty last segment (a crash right after creating it). The first
/// new entry goes to a preallocated segment of the same first index, which replaces it.
#[test]
fn an_empty_appended_segment_is_replaced_by_the_first_preallocated_one() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let wal = dir.join("wal");
    std::fs::create_dir_all(&wal).unwrap();
    std::fs::write(dir.join("FORMAT"), "dlm storage format 3\n").unwrap();
    std::fs::write(
        wal.join(format!("{:020}.wal", 1)),
        legacy_segment(&run(1, 1..=4)),
    )
    .unwrap();
    std::fs::write(wal.join(format!("{:020}.wal", 5)), b"").unwrap();
    assert_eq!(recover(dir), run(1, 1..=4));
    let mut s = FileStorage::open(dir).unwrap();
    s.recover().unwrap();
    s.persist(vec![Persist::Entries(run(1, 5..=6))]).unwrap();
    drop(s);
    assert_eq!(
        suffixes(dir),
        [format!("{:020}.wal", 1), format!("{:020}.seg", 5)]
    );
    assert_eq!(recover(dir), run(1, 1..=6));
}
