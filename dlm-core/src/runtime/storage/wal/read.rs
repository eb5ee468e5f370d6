//! Reading the log back when it is opened: every segment decoded (on a few threads), each
//! entry's index checked, and a torn tail of the last segment cut off. Apart from the writing
//! side, which is all that runs once the node is up. This file reads the appended segments of
//! formats 1-3; `read_seg.rs` the preallocated ones.

use super::read_seg::read_seg;
use super::{corrupt, segment_path, Kind, Segment};
use crate::command::Entry;
use crate::runtime::storage::record::{scan, Scan};
use crate::runtime::storage::{io_err, StorageError};
use crate::types::LogIndex;
use std::fs::{self, OpenOptions};
use std::path::Path;

type SegmentRead = Result<(Segment, Vec<Entry>), StorageError>;

/// Reads every segment, decoding on a few threads (decoding, not the disk, is what limits
/// recovery of a long log). Results come back in the order of `firsts`.
pub(super) fn read_all(dir: &Path, firsts: &[(LogIndex, Kind)]) -> Vec<SegmentRead> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 4);
    let count = firsts.len();
    let read_one = |i: usize, (first, kind): (LogIndex, Kind)| -> SegmentRead {
        let path = segment_path(dir, first, kind);
        let mut out = Vec::new();
        let segment = match kind {
            Kind::Legacy => read_segment(&path, first, i + 1 == count, &mut out)?,
            Kind::Prealloc { .. } => read_seg(&path, first, i + 1 == count, &mut out)?,
        };
        Ok((segment, out))
    };
    if threads == 1 || count < 2 {
        return firsts
            .iter()
            .enumerate()
            .map(|(i, f)| read_one(i, *f))
            .collect();
    }
    let per_thread = count.div_ceil(threads);
    std::thread::scope(|scope| {
        let workers: Vec<_> = firsts
            .chunks(per_thread)
            .enumerate()
            .map(|(c, chunk)| {
                let read_one = &read_one;
                scope.spawn(move || {
                    chunk
                        .iter()
                        .enumerate()
                        .map(|(j, f)| read_one(c * per_thread + j, *f))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .zip(firsts.chunks(per_thread))
            .flat_map(|(w, chunk)| {
                w.join().unwrap_or_else(|_| {
                    chunk
                        .iter()
                        .map(|(f, k)| {
                            Err(corrupt(
                                &segment_path(dir, *f, *k),
                                0,
                                "reader thread panicked",
                            ))
                        })
                        .collect()
                })
            })
            .collect()
    })
}

/// Reads one appended segment, appending its entries to `out`.
fn read_segment(
    path: &Path,
    first: LogIndex,
    is_last: bool,
    out: &mut Vec<Entry>,
) -> Result<Segment, StorageError> {
    let data = fs::read(path).map_err(io_err(path))?;
    let mut offsets = Vec::new();
    let mut off = 0usize;
    let mut expected = first;
    loop {
        match scan(&data, off) {
            Scan::Record { payload, next } => {
                let entry: Entry = postcard::from_bytes(payload)
                    .map_err(|e| corrupt(path, off as u64, format!("undecodable entry: {e}")))?;
                if entry.index != expected {
                    return Err(corrupt(
                        path,
                        off as u64,
                        format!("entry has index {}, expected {expected}", entry.index),
                    ));
                }
                // No log reaches the last index; only damaged or forged data can claim it.
                let Some(after) = expected.get().checked_add(1) else {
                    return Err(corrupt(
                        path,
                        off as u64,
                        "entry at the last possible index",
                    ));
                };
                out.push(entry);
                offsets.push(off as u64);
                expected = LogIndex(after);
                off = next;
            }
            Scan::End => break,
            Scan::Torn(reason) if is_last => {
                tracing::warn!(
                    file = %path.display(),
                    offset = off,
                    dropped = data.len() - off,
                    reason,
                    "truncating a torn tail of the log"
                );
                let file = OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(io_err(path))?;
                file.set_len(off as u64).map_err(io_err(path))?;
                file.sync_all().map_err(io_err(path))?;
                break;
            }
            Scan::Torn(reason) | Scan::Corrupt(reason) => {
                return Err(corrupt(path, off as u64, reason));
            }
        }
    }
    Ok(Segment {
        first,
        path: path.to_path_buf(),
        offsets,
        len: off as u64,
        kind: Kind::Legacy,
    })
}
