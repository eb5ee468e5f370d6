//! The version of what a data directory holds. Log entries, the hard state and snapshots are
//! postcard-encoded, which carries no field names or tags: a field added to a persisted type
//! makes older bytes undecodable, or worse, decodable as something else. So a directory
//! records the format it was written in (`FORMAT`, one line), and a node refuses, by name, a
//! directory of another format instead of reporting it corrupt or misreading it.
//!
//! [`STORAGE_FORMAT`] goes up with any change to the encoding of `Entry` (and so `Command`
//! and the protocol's `ClientRequest`), `HardState` or `Snapshot` (and so `StateMachine`);
//! `tests/storage_format.rs` fails on such a change until it does.

use super::file::replace_file;
use super::StorageError;
use std::fs;
use std::path::Path;

/// The storage format this build writes. 2: snapshots carry the cluster's configuration and
/// the log may hold membership changes. 3: lock kinds: a lock in a snapshot has a kind,
/// several holders and waiters with modes, the snapshot starts with a prefix naming its
/// layout, and the log may hold `Op::AcquireAs`. 4: elections and preallocated segments: a
/// snapshot (layout 4) keeps the values holders proclaimed and the log may hold
/// `Op::Proclaim`; new log segments are preallocated and written in place (`wal/<first>.seg`:
/// a header, records tagged with a kind, each sync's batch closed by a commit record); the
/// appended segments of 1-3 (`wal/<first>.wal`) are read, and cut by a truncation, but never
/// appended to. 5: a client request in the log may name pending seqs
/// (`ClientRequest::pending`), written as a command variant after the others; everything
/// format 4 wrote is encoded as it was.
pub const STORAGE_FORMAT: u32 = 5;

/// Older formats this build reads: 1, whose snapshots lack the configuration, 2, whose locks
/// are all exclusive, 3, without proclaimed values (`StateMachine::from_bytes` reads every
/// layout, told apart from the current one by its prefix), and 4, without pending seqs; their
/// commands are all still decoded as they were (new ops and commands were added at the end). 1 to 3 wrote appended log segments,
/// which the log reads by their name (`.wal`) and moves on from to a preallocated one. A
/// directory of one is marked as of [`STORAGE_FORMAT`] before anything is written to it, so
/// that the build that wrote it refuses it from then on instead of misreading the newer data.
const READS: [u32; 4] = [1, 2, 3, 4];

const FORMAT_FILE: &str = "FORMAT";
/// The files and directories that only a directory with data holds.
const DATA: [&str; 3] = ["hardstate", "snapshot", "wal"];

/// Checks that `dir` (locked by the caller) is of this build's format; records it in a
/// directory that holds no data yet.
pub(super) fn check_or_record(dir: &Path) -> Result<(), StorageError> {
    let path = dir.join(FORMAT_FILE);
    match fs::read_to_string(&path) {
        Ok(text) => {
            let found = parse(&text);
            if found == Some(STORAGE_FORMAT) {
                return Ok(());
            }
            if found.is_some_and(|f| READS.contains(&f)) {
                return record(dir);
            }
            Err(StorageError::Format {
                dir: dir.to_path_buf(),
                found,
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if DATA.iter().any(|name| dir.join(name).exists()) {
                return Err(StorageError::Format {
                    dir: dir.to_path_buf(),
                    found: None,
                });
            }
            record(dir)
        }
        Err(source) => Err(StorageError::Io { path, source }),
    }
}

/// The version in a `FORMAT` file's text, if it is one.
fn parse(text: &str) -> Option<u32> {
    text.trim()
        .strip_prefix("dlm storage format ")?
        .parse()
        .ok()
}

fn record(dir: &Path) -> Result<(), StorageError> {
    let text = format!("dlm storage format {STORAGE_FORMAT}\n");
    replace_file(dir, FORMAT_FILE, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_directory_records_the_format_and_opens_again() {
        let dir = tempfile::tempdir().unwrap();
        check_or_record(dir.path()).unwrap();
        let text = fs::read_to_string(dir.path().join(FORMAT_FILE)).unwrap();
        assert_eq!(text, format!("dlm storage format {STORAGE_FORMAT}\n"));
        check_or_record(dir.path()).unwrap();
    }

    #[test]
    fn another_format_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let next = STORAGE_FORMAT + 1;
        fs::write(
            dir.path().join(FORMAT_FILE),
            format!("dlm storage format {next}\n"),
        )
        .unwrap();
        match check_or_record(dir.path()) {
            Err(StorageError::Format { found, .. }) => assert_eq!(found, Some(next)),
            other => panic!("{other:?}"),
        }
        fs::write(dir.path().join(FORMAT_FILE), "garbage").unwrap();
        assert!(matches!(
            check_or_record(dir.path()),
            Err(StorageError::Format { found: None, .. })
        ));
    }

    #[test]
    fn an_older_format_this_build_reads_is_marked_as_the_current_one() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("hardstate"), b"old bytes").unwrap();
        fs::write(dir.path().join(FORMAT_FILE), "dlm storage format 1\n").unwrap();
        check_or_record(dir.path()).unwrap();
        let text = fs::read_to_string(dir.path().join(FORMAT_FILE)).unwrap();
        assert_eq!(text, format!("dlm storage format {STORAGE_FORMAT}\n"));
    }

    #[test]
    fn a_format_file_that_cannot_be_read_is_an_io_error_not_a_missing_format() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("hardstate"), b"old bytes").unwrap();
        fs::create_dir(dir.path().join(FORMAT_FILE)).unwrap();
        assert!(matches!(
            check_or_record(dir.path()),
            Err(StorageError::Io { .. })
        ));
    }

    #[test]
    fn data_without_a_recorded_format_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("hardstate"), b"old bytes").unwrap();
        assert!(matches!(
            check_or_record(dir.path()),
            Err(StorageError::Format { found: None, .. })
        ));
        assert!(!dir.path().join(FORMAT_FILE).exists());
    }
}
