//! The write-ahead log: entries in segment files named after their first index, each entry one
//! framed record. Writes are buffered and made durable by [`Wal::sync`], once per batch.

mod read;

use super::record::encode_into;
use super::{io_err, StorageError};
use crate::command::Entry;
use crate::types::LogIndex;
use read::read_all;
use std::fs::{self, File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

const SUFFIX: &str = ".wal";

/// One segment file.
#[derive(Debug)]
struct Segment {
    /// Index of its first entry.
    first: LogIndex,
    path: PathBuf,
    /// Byte offset of each record.
    offsets: Vec<u64>,
    /// Its length, buffered bytes included.
    len: u64,
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
    /// The last segment, open for writing, and how many of its bytes are written.
    active: Option<(File, u64)>,
    buf: Vec<u8>,
    data_dirty: bool,
    dir_dirty: bool,
}

fn segment_path(dir: &Path, first: LogIndex) -> PathBuf {
    dir.join(format!("{:020}{SUFFIX}", first.get()))
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

impl Wal {
    /// Opens the log in `dir`, reading every entry back. A torn last record of the last segment
    /// is cut off; any other damage is an error.
    pub(super) fn open(dir: &Path, max_segment: u64) -> Result<(Wal, Vec<Entry>), StorageError> {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let mut found = Vec::new();
        for item in fs::read_dir(dir).map_err(io_err(dir))? {
            let item = item.map_err(io_err(dir))?;
            let name = item.file_name();
            let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(SUFFIX)) else {
                continue;
            };
            let Ok(first) = stem.parse::<u64>() else {
                continue;
            };
            found.push(LogIndex(first));
        }
        found.sort();
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
            Some(next) if first < next => {
                self.write_buffered()?;
                self.truncate_from(first)?;
            }
            Some(next) if first > next => {
                // A log that restarts after a snapshot: nothing stored connects to it.
                self.reset()?;
            }
            _ => {}
        }
        for entry in entries {
            let roll = match self.segments.last() {
                None => true,
                Some(seg) => seg.len >= self.max_segment && !seg.offsets.is_empty(),
            };
            if roll {
                self.roll(entry.index)?;
            }
            let at = self.buf.len();
            encode_into(entry, &mut self.buf)?;
            let added = (self.buf.len() - at) as u64;
            if let Some(seg) = self.segments.last_mut() {
                seg.offsets.push(seg.len);
                seg.len += added;
            }
        }
        Ok(())
    }

    /// Writes what is buffered and syncs it (one `fdatasync`), and the directory if files were
    /// created or removed.
    pub(super) fn sync(&mut self) -> Result<(), StorageError> {
        self.write_buffered()?;
        if self.data_dirty {
            if let (Some((file, _)), Some(seg)) = (&self.active, self.segments.last()) {
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
        // Highest first, so a crash part-way never leaves a gap.
        while self.segments.last().is_some_and(|s| s.first >= first) {
            if let Some(seg) = self.segments.pop() {
                fs::remove_file(&seg.path).map_err(io_err(&seg.path))?;
                self.active = None;
                self.dir_dirty = true;
            }
        }
        let Some(seg) = self.segments.last_mut() else {
            return Ok(());
        };
        let keep = (first.get() - seg.first.get()) as usize;
        if keep < seg.offsets.len() {
            let cut = seg.offsets[keep];
            seg.offsets.truncate(keep);
            seg.len = cut;
            self.open_active()?;
            if let (Some((file, written)), Some(seg)) = (&mut self.active, self.segments.last()) {
                file.set_len(cut).map_err(io_err(&seg.path))?;
                file.seek(SeekFrom::Start(cut)).map_err(io_err(&seg.path))?;
                *written = cut;
            }
            self.data_dirty = true;
        }
        Ok(())
    }

    fn roll(&mut self, first: LogIndex) -> Result<(), StorageError> {
        if !self.segments.is_empty() {
            // The finished segment must be durable before the log moves on to a new file.
            self.sync()?;
        }
        let path = segment_path(&self.dir, first);
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(io_err(&path))?;
        self.segments.push(Segment {
            first,
            path,
            offsets: Vec::new(),
            len: 0,
        });
        self.active = Some((file, 0));
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
        // `len` counts what is buffered too; the file ends where the buffer will go.
        let written = seg.len.saturating_sub(self.buf.len() as u64);
        let mut file = OpenOptions::new()
            .write(true)
            .open(&seg.path)
            .map_err(io_err(&seg.path))?;
        file.seek(SeekFrom::Start(written))
            .map_err(io_err(&seg.path))?;
        self.active = Some((file, written));
        Ok(())
    }

    fn write_buffered(&mut self) -> Result<(), StorageError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.open_active()?;
        let (Some((file, written)), Some(seg)) = (&mut self.active, self.segments.last()) else {
            self.buf.clear();
            return Ok(());
        };
        file.write_all(&self.buf).map_err(io_err(&seg.path))?;
        *written += self.buf.len() as u64;
        self.buf.clear();
        self.data_dirty = true;
        Ok(())
    }
}
