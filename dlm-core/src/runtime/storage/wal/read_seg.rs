//! Reading a preallocated segment back. Its batches were written in place, each ending with a
//! commit, over zeros that were already on the disk; a crash during a sync can persist any
//! subset of that batch's pages, so a torn batch may show zeros followed by valid records, its
//! own commit included. The rules:
//!
//! - A batch counts once its commit is read in sequence (next seq, starting where the last
//!   one ended, the right index, the CRC of the batch's bytes).
//! - After the last counted commit, a sealed segment (one with a successor) holds only zeros:
//!   its last batch was synced before the successor was created.
//! - In the last segment, the bytes after the last counted commit are the one batch whose sync
//!   may not have completed, unless they show that a later batch was written: a commit of this
//!   segment two or more seqs on, or anything but zeros after the next one's commit. A batch is
//!   only written once the sync before it has returned, so either proves that the damaged
//!   batch was synced (and maybe acknowledged): that is corruption, not a torn tail.
//! - A torn tail is zeroed and synced before anything is written after it, so that no
//!   remnant of it can be read as part of a later batch.

use super::frame::{commit_at, read_at, read_header, Commit, Record, HEADER_LEN};
use super::{corrupt, Kind, Segment};
use crate::command::Entry;
use crate::runtime::storage::{io_err, StorageError};
use crate::types::LogIndex;
use std::fs::{self, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;

/// A record of a batch whose commit has not been read yet.
enum Pending {
    Entry(Entry, u64),
    Truncate(LogIndex),
}

/// Reads one preallocated segment, appending its entries to `out`.
pub(super) fn read_seg(
    path: &Path,
    first: LogIndex,
    is_last: bool,
    out: &mut Vec<Entry>,
) -> Result<Segment, StorageError> {
    let data = fs::read(path).map_err(io_err(path))?;
    let nonce = read_header(&data).map_err(|r| corrupt(path, 0, r))?;
    let mut entries: Vec<(Entry, u64)> = Vec::new();
    let mut pending: Vec<Pending> = Vec::new();
    let mut seq = 0u64;
    let mut end = HEADER_LEN;
    // The index the next entry must have, counting the pending records.
    let mut expected = first;
    let mut off = HEADER_LEN;
    let (stop, reason) = loop {
        let (record, next) = match read_at(&data, off) {
            Ok(r) => r,
            Err(reason) => break (off, reason),
        };
        match record {
            Record::Entry(entry) => {
                if entry.index != expected {
                    break (off, "entry out of sequence");
                }
                let Some(after) = expected.get().checked_add(1) else {
                    break (off, "entry at the last possible index");
                };
                pending.push(Pending::Entry(entry, off as u64));
                expected = LogIndex(after);
            }
            Record::Truncate(from) => {
                if from <= first || from >= expected {
                    break (off, "truncation outside the segment");
                }
                pending.push(Pending::Truncate(from));
                expected = from;
            }
            Record::Commit(c) => {
                let fits = Commit {
                    nonce,
                    seq: seq + 1,
                    start: end as u64,
                    next: expected,
                    batch_crc: crc32fast::hash(&data[end..off]),
                };
                if c != fits || pending.is_empty() {
                    break (off, "commit that does not close the batch before it");
                }
                for p in pending.drain(..) {
                    match p {
                        Pending::Entry(e, at) => entries.push((e, at)),
                        Pending::Truncate(from) => {
                            entries.truncate((from.get() - first.get()) as usize)
                        }
                    }
                }
                seq += 1;
                end = next;
            }
        }
        off = next;
    };
    let last_nonzero = data.iter().rposition(|b| *b != 0);
    if last_nonzero.is_some_and(|at| at >= end) {
        if !is_last {
            return Err(corrupt(path, stop as u64, reason));
        }
        if let Some(at) = later_batch(&data, end, nonce, seq, last_nonzero.unwrap_or(0)) {
            return Err(corrupt(
                path,
                stop as u64,
                format!("{reason}, before a later batch at byte {at}"),
            ));
        }
        let upto = last_nonzero.map_or(end, |at| at + 1);
        tracing::warn!(
            file = %path.display(),
            offset = end,
            dropped = upto - end,
            reason,
            "zeroing a torn tail of the log"
        );
        let file = OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(io_err(path))?;
        file.write_all_at(&vec![0; upto - end], end as u64)
            .map_err(io_err(path))?;
        file.sync_data().map_err(io_err(path))?;
    }
    let (entries, offsets): (Vec<Entry>, Vec<u64>) = entries.into_iter().unzip();
    out.extend(entries);
    Ok(Segment {
        first,
        path: path.to_path_buf(),
        offsets,
        len: end as u64,
        kind: Kind::Prealloc {
            nonce,
            seq,
            ready: data.len() as u64,
        },
    })
}

/// Where the bytes after `end` (the last counted commit, of seq `seq`) show a batch written
/// after the one that follows it, if they do.
fn later_batch(
    data: &[u8],
    end: usize,
    nonce: u64,
    seq: u64,
    last_nonzero: usize,
) -> Option<usize> {
    let mut at = end;
    // A commit's kind byte, 8 bytes in, is not zero.
    while at + 8 <= last_nonzero {
        if let Some(c) = commit_at(data, at, nonce) {
            if c.seq > seq + 1 {
                return Some(at);
            }
            if c.seq == seq + 1 && c.start == end as u64 {
                // The next batch's own commit: a later batch would start right after it.
                let after = at + super::frame::COMMIT_LEN;
                return data[after..]
                    .iter()
                    .position(|b| *b != 0)
                    .map(|p| after + p);
            }
        }
        at += 1;
    }
    None
}
