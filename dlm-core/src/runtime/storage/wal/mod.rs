//! The write-ahead log: entries in segment files named after their first index.
//!
//! Segments of storage format 4 (`<first>.seg`, see [`frame`]) are preallocated: zero-filled
//! and synced ahead of need, then written in place, each sync's batch closed by a commit record
//! so that recovery knows where the last completed sync ended ([`read_seg`]). Segments of
//! formats 1-3 (`<first>.wal`, records appended) are still read and cut, never written to: the
//! log moves on to a new segment after them.

mod frame;
mod prealloc;
mod read;
mod read_seg;

use super::{io_err, StorageError};
use crate::command::Entry;
use crate::types::LogIndex;
use frame::{push_commit, push_entry, push_truncate, Commit, COMMIT_LEN, HEADER_LEN};
use read::read_all;
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Segments appended to by formats 1-3.
const LEGACY_SUFFIX: &str = ".wal";
/// Preallocated segments, written in place (format 4).
const SUFFIX: &str = ".seg";

/// How a segment file is laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Records appended, no header (formats 1-3): read, and cut by a truncation, only.
    Legacy,
    /// Header, then batches each closed by a commit, over preallocated zeros.
    Prealloc {
        /// From the header; in every commit.
        nonce: u64,
        /// Seq of the last commit written.
        seq: u64,
        /// The file's length: zero-filled and synced past the write position.
        ready: u64,
    },
}

/// One segment file.
#[derive(Debug)]
struct Segment {
    /// Index of its first entry.
    first: LogIndex,
    path: PathBuf,
    /// Byte offset of each entry's record.
    offsets: Vec<u64>,
    /// Where the next record goes: the end of the last commit plus what is buffered.
    len: u64,
    kind: Kind,
}

impl Segment {
    /// The index the next entry appended to it gets.
    fn end(&self) -> LogIndex {
        LogIndex(self.first.get() + self.offsets.len() as u64)
    }
}

/// The log on disk.
#[derive(Debug)]
pub(super) struct Wal {
    dir: PathBuf,
    max_segment: u64,
    segments: Vec<Segment>,
    /// The last segment, open for writing (preallocated segments only).
    active: Option<File>,
    /// Records for the last segment not yet written; they go at `len - buf.len()`.
    buf: Vec<u8>,
    data_dirty: bool,
    dir_dirty: bool,
}

fn segment_path(dir: &Path, first: LogIndex, kind: Kind) -> PathBuf {
    let suffix = match kind {
        Kind::Legacy => LEGACY_SUFFIX,
        Kind::Prealloc { .. } => SUFFIX,
    };
    dir.join(format!("{:020}{suffix}", first.get()))
}

fn corrupt(file: &Path, offset: u64, reason: impl Into<String>) -> StorageError {
    StorageError::Corrupt {
        file: file.to_path_buf(),
        offset,
        reason: reason.into(),
    }
}

pub(super) fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

/// The segment files in `dir`, by first index, after deleting segments left half-made.
fn list(dir: &Path) -> Result<Vec<(LogIndex, Kind)>, StorageError> {
    let mut found = Vec::new();
    for item in fs::read_dir(dir).map_err(io_err(dir))? {
        let item = item.map_err(io_err(dir))?;
        let name = item.file_name();
        let Some(name) = name.to_str() else {
            continue;
        };
        if name.ends_with(prealloc::TMP_SUFFIX) {
            let path = item.path();
            fs::remove_file(&path).map_err(io_err(&path))?;
            continue;
        }
        let (stem, kind) = if let Some(stem) = name.strip_suffix(SUFFIX) {
            // Nonce, seq and length are read from the file.
            let unread = Kind::Prealloc {
                nonce: 0,
                seq: 0,
                ready: 0,
            };
            (stem, unread)
        } else if let Some(stem) = name.strip_suffix(LEGACY_SUFFIX) {
            (stem, Kind::Legacy)
        } else {
            continue;
        };
        let Ok(first) = stem.parse::<u64>() else {
            continue;
        };
        found.push((LogIndex(first), kind));
    }
    found.sort_by_key(|(first, _)| *first);
    if let Some(pair) = found.windows(2).find(|p| p[0].0 == p[1].0) {
        let path = segment_path(dir, pair[1].0, pair[1].1);
        return Err(corrupt(&path, 0, "two segments start at the same index"));
    }
    Ok(found)
}

impl Wal {
    /// Opens the log in `dir`, reading every entry back. A torn tail of the last segment is cut
    /// off (or zeroed); any other damage is an error.
    pub(super) fn open(dir: &Path, max_segment: u64) -> Result<(Wal, Vec<Entry>), StorageError> {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let found = list(dir)?;
        let mut wal = Wal {
            dir: dir.to_path_buf(),
            max_segment,
            segments: Vec::new(),
            active: None,
            buf: Vec::new(),
            data_dirty: false,
            dir_dirty: false,
        };
        let mut entries = Vec::new();
        for read in read_all(dir, &found) {
            let (segment, mut part) = read?;
            if let Some(prev) = wal.segments.last() {
                let expected = prev.end();
                if segment.first != expected {
                    return Err(corrupt(
                        &segment.path,
                        0,
                        format!(
                            "segment starts at index {}, expected {expected}",
                            segment.first
                        ),
                    ));
                }
            }
            entries.append(&mut part);
            wal.segments.push(segment);
        }
        Ok((wal, entries))
    }

    /// The index the next stored entry gets (an empty segment counts: it starts where the
    /// previous one ended).
    fn next_index(&self) -> Option<LogIndex> {
        self.segments.last().map(Segment::end)
    }

    /// Buffers `entries`, first removing every stored entry at or after the first one's index.
    pub(super) fn append(&mut self, entries: &[Entry]) -> Result<(), StorageError> {
        let Some(first) = entries.first().map(|e| e.index) else {
            return Ok(());
        };
        if let Some(last) = entries.last().filter(|e| e.index == LogIndex(u64::MAX)) {
            return Err(StorageError::IndexExhausted(last.index));
        }
        match self.next_index() {
            Some(next) if first < next => self.truncate_from(first)?,
            Some(next) if first > next => {
                // A log that restarts after a snapshot: nothing stored connects to it.
                self.reset()?;
            }
            _ => {}
        }
        let mut record = Vec::new();
        for entry in entries {
            record.clear();
            push_entry(entry, &mut record)?;
            let roll = match self.segments.last() {
                None => true,
                Some(seg) => {
                    seg.kind == Kind::Legacy
                        || (seg.len + (record.len() + COMMIT_LEN) as u64 > self.max_segment
                            && !seg.offsets.is_empty())
                }
            };
            if roll {
                self.roll(entry.index)?;
            }
            if let Some(seg) = self.segments.last_mut() {
                seg.offsets.push(seg.len);
                seg.len += record.len() as u64;
                self.buf.extend_from_slice(&record);
            }
        }
        Ok(())
    }

    /// Writes what is buffered, closed by a commit, and syncs it (one `fdatasync`), and the
    /// directory if files were created or removed.
    pub(super) fn sync(&mut self) -> Result<(), StorageError> {
        self.write_buffered()?;
        if self.data_dirty {
            if let (Some(file), Some(seg)) = (&self.active, self.segments.last()) {
                file.sync_data().map_err(io_err(&seg.path))?;
            }
            self.data_dirty = false;
        }
        if self.dir_dirty {
            sync_dir(&self.dir)?;
            self.dir_dirty = false;
        }
        Ok(())
    }

    /// Deletes the segments whose entries are all at or before `upto` (never the last one).
    pub(super) fn compact(&mut self, upto: LogIndex) -> Result<(), StorageError> {
        while self.segments.len() > 1 && self.segments[1].first <= upto.next() {
            let seg = self.segments.remove(0);
            fs::remove_file(&seg.path).map_err(io_err(&seg.path))?;
            self.dir_dirty = true;
        }
        Ok(())
    }

    /// Deletes every segment, durably, before anything new is written.
    pub(super) fn reset(&mut self) -> Result<(), StorageError> {
        self.buf.clear();
        self.active = None;
        self.data_dirty = false;
        // Highest first, so a crash part-way leaves a contiguous prefix.
        while let Some(seg) = self.segments.pop() {
            fs::remove_file(&seg.path).map_err(io_err(&seg.path))?;
        }
        sync_dir(&self.dir)?;
        self.dir_dirty = false;
        Ok(())
    }

    fn truncate_from(&mut self, first: LogIndex) -> Result<(), StorageError> {
        // Highest first, so a crash part-way never leaves a gap; durably, before anything
        // written later could be read together with a segment that was meant to be gone.
        let mut removed = false;
        while self.segments.last().is_some_and(|s| s.first >= first) {
            if let Some(seg) = self.segments.pop() {
                fs::remove_file(&seg.path).map_err(io_err(&seg.path))?;
                self.active = None;
                self.buf.clear();
                self.data_dirty = false;
                removed = true;
            }
        }
        if removed {
            sync_dir(&self.dir)?;
            self.dir_dirty = false;
        }
        let buffered = self.buf.len() as u64;
        let Some(seg) = self.segments.last_mut() else {
            return Ok(());
        };
        let keep = (first.get() - seg.first.get()) as usize;
        let Some(&cut) = seg.offsets.get(keep) else {
            return Ok(());
        };
        seg.offsets.truncate(keep);
        let written = seg.len - buffered;
        match seg.kind {
            Kind::Legacy => {
                // Durable before any later segment can exist.
                seg.len = cut;
                let file = OpenOptions::new()
                    .write(true)
                    .open(&seg.path)
                    .map_err(io_err(&seg.path))?;
                file.set_len(cut).map_err(io_err(&seg.path))?;
                file.sync_all().map_err(io_err(&seg.path))?;
            }
            Kind::Prealloc { .. } if cut >= written => {
                // Only buffered records go: nothing on the disk says they were ever there.
                self.buf.truncate((cut - written) as usize);
                seg.len = cut;
            }
            Kind::Prealloc { .. } => {
                // Written records stay where they are; a truncation record voids them, in
                // the same batch as what follows, so both count or neither does.
                self.buf.clear();
                let at = self.buf.len();
                push_truncate(first, &mut self.buf);
                seg.len = written + (self.buf.len() - at) as u64;
            }
        }
        Ok(())
    }

    fn roll(&mut self, first: LogIndex) -> Result<(), StorageError> {
        if let Some(seg) = self.segments.last() {
            if seg.kind == Kind::Legacy && seg.offsets.is_empty() {
                // An empty segment of an older format (a crash right after creating it): the
                // new one takes its name's index, so it goes first, durably.
                let seg = self.segments.pop();
                if let Some(seg) = seg {
                    fs::remove_file(&seg.path).map_err(io_err(&seg.path))?;
                }
                sync_dir(&self.dir)?;
            } else {
                // The finished segment must be durable before the log moves on to a new file.
                self.sync()?;
            }
        }
        let nonce = prealloc::new_nonce();
        let ready = prealloc::CHUNK.min(self.max_segment).max(HEADER_LEN as u64);
        let kind = Kind::Prealloc {
            nonce,
            seq: 0,
            ready,
        };
        let path = segment_path(&self.dir, first, kind);
        let file = prealloc::create(&path, nonce, ready)?;
        self.segments.push(Segment {
            first,
            path,
            offsets: Vec::new(),
            len: HEADER_LEN as u64,
            kind,
        });
        self.active = Some(file);
        self.dir_dirty = true;
        Ok(())
    }

    fn open_active(&mut self) -> Result<(), StorageError> {
        if self.active.is_some() {
            return Ok(());
        }
        let Some(seg) = self.segments.last() else {
            return Ok(());
        };
        let file = OpenOptions::new()
            .write(true)
            .open(&seg.path)
            .map_err(io_err(&seg.path))?;
        self.active = Some(file);
        Ok(())
    }

    /// Writes the buffered records and a commit in place, over zeros synced beforehand.
    fn write_buffered(&mut self) -> Result<(), StorageError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.open_active()?;
        let (Some(file), Some(seg)) = (&self.active, self.segments.last_mut()) else {
            self.buf.clear();
            return Ok(());
        };
        let Kind::Prealloc { nonce, seq, ready } = &mut seg.kind else {
            // Nothing is ever buffered for a segment of an older format.
            self.buf.clear();
            return Ok(());
        };
        let start = seg.len - self.buf.len() as u64;
        let commit = Commit {
            nonce: *nonce,
            seq: *seq + 1,
            start,
            next: LogIndex(seg.first.get() + seg.offsets.len() as u64),
            batch_crc: crc32fast::hash(&self.buf),
        };
        push_commit(&commit, &mut self.buf);
        let end = start + self.buf.len() as u64;
        if end > *ready {
            let to = end.max(*ready + prealloc::CHUNK.min(self.max_segment));
            prealloc::extend(file, &seg.path, *ready, to)?;
            *ready = to;
        }
        file.write_all_at(&self.buf, start)
            .map_err(io_err(&seg.path))?;
        *seq += 1;
        seg.len = end;
        self.buf.clear();
        self.data_dirty = true;
        Ok(())
    }
}
