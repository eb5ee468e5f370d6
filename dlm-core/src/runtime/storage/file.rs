//! [`FileStorage`]: the log in segment files, the hard state and the snapshot each in one file
//! replaced atomically, and a lock so that one process at a time owns the directory.

use super::record::{encode_into, scan, Scan};
use super::wal::{sync_dir, Wal};
use super::{io_err, Storage, StorageError};
use crate::node::{HardState, Persist, Recovered, Snapshot};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};

const LOCK_FILE: &str = "LOCK";
const HARD_STATE_FILE: &str = "hardstate";
const SNAPSHOT_FILE: &str = "snapshot";
const WAL_DIR: &str = "wal";

/// Tuning of [`FileStorage`].
#[derive(Clone, Debug)]
pub struct FileStorageOptions {
    /// A new segment is started once the current one reaches this many bytes.
    pub segment_bytes: u64,
}

impl Default for FileStorageOptions {
    fn default() -> Self {
        FileStorageOptions {
            segment_bytes: 64 << 20,
        }
    }
}

/// Durable storage in a directory:
///
/// - `wal/<first index>.seg`: log segments, preallocated (zero-filled and synced ahead of
///   need) and overwritten in place, so that a sync writes data and not the file's size too.
///   Each record is `u32` length, `u32` CRC32 and a payload of a kind byte and the
///   postcard-encoded entry (or a truncation); each batch is written and then made durable with
///   one `fdatasync`, and ends with a commit record that tells recovery where the last
///   completed sync ended (see `wal/read_seg.rs`). `wal/<first index>.wal` are the appended
///   segments of formats 1-3: read, never written to.
/// - `hardstate`, `snapshot`: one record each, replaced atomically (temporary file, fsync,
///   rename, directory fsync). Segments a snapshot covers are deleted.
/// - `LOCK`: held with an exclusive `flock` while the storage is open, so a second process
///   cannot open the same directory; the OS releases it when the process dies.
/// - `FORMAT`: the storage format the directory was written in ([`STORAGE_FORMAT`](super::STORAGE_FORMAT));
///   a directory of another format is refused before anything in it is read.
#[derive(Debug)]
pub struct FileStorage {
    dir: PathBuf,
    opts: FileStorageOptions,
    wal: Option<Wal>,
    _lock: File,
}

impl FileStorage {
    /// Opens (creating if needed) the storage in `dir` and locks it.
    pub fn open(dir: impl AsRef<Path>) -> Result<FileStorage, StorageError> {
        FileStorage::open_with(dir, FileStorageOptions::default())
    }

    /// Opens with explicit options.
    pub fn open_with(
        dir: impl AsRef<Path>,
        opts: FileStorageOptions,
    ) -> Result<FileStorage, StorageError> {
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let lock_path = dir.join(LOCK_FILE);
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(io_err(&lock_path))?;
        // flock(LOCK_EX | LOCK_NB) on Unix: released by the OS when the process dies.
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(StorageError::Locked { dir }),
            Err(TryLockError::Error(source)) => {
                return Err(StorageError::Io {
                    path: lock_path,
                    source,
                })
            }
        }
        super::format::check_or_record(&dir)?;
        Ok(FileStorage {
            dir,
            opts,
            wal: None,
            _lock: lock,
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn wal(&mut self) -> Result<&mut Wal, StorageError> {
        let wal = match self.wal.take() {
            Some(wal) => wal,
            None => Wal::open(&self.dir.join(WAL_DIR), self.opts.segment_bytes)?.0,
        };
        Ok(self.wal.insert(wal))
    }

    fn write_atomic<T: Serialize>(&self, name: &str, value: &T) -> Result<(), StorageError> {
        let mut bytes = Vec::new();
        encode_into(value, &mut bytes)?;
        replace_file(&self.dir, name, &bytes)
    }
}

/// Replaces `dir/name` with `bytes` atomically: a temporary file, fsync, rename, directory
/// fsync. A crash leaves the old file or the new one, never a torn one.
pub(super) fn replace_file(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), StorageError> {
    let path = dir.join(name);
    let tmp = dir.join(format!("{name}.tmp"));
    let mut file = File::create(&tmp).map_err(io_err(&tmp))?;
    file.write_all(bytes).map_err(io_err(&tmp))?;
    file.sync_all().map_err(io_err(&tmp))?;
    fs::rename(&tmp, &path).map_err(io_err(&path))?;
    sync_dir(dir)
}

/// Reads a file holding exactly one record; `None` if it does not exist.
fn read_single<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, StorageError> {
    let data = match fs::read(path) {
        Ok(data) => data,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(StorageError::Io {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let bad = |offset: usize, reason: String| StorageError::Corrupt {
        file: path.to_path_buf(),
        offset: offset as u64,
        reason,
    };
    match scan(&data, 0) {
        Scan::Record { payload, next } if next == data.len() => postcard::from_bytes(payload)
            .map(Some)
            .map_err(|e| bad(0, format!("undecodable: {e}"))),
        Scan::Record { next, .. } => Err(bad(next, "trailing bytes".into())),
        Scan::End => Err(bad(0, "empty file".into())),
        // Written atomically: a damaged file here is never a torn append.
        Scan::Torn(reason) | Scan::Corrupt(reason) => Err(bad(0, reason.into())),
    }
}

impl Storage for FileStorage {
    fn recover(&mut self) -> Result<Recovered, StorageError> {
        let started = std::time::Instant::now();
        let hard_state: HardState =
            read_single(&self.dir.join(HARD_STATE_FILE))?.unwrap_or_default();
        let snapshot: Option<Snapshot> = read_single(&self.dir.join(SNAPSHOT_FILE))?;
        let (mut wal, mut entries) = Wal::open(&self.dir.join(WAL_DIR), self.opts.segment_bytes)?;
        if let Some(snap) = &snapshot {
            let base = snap.last;
            let conflicting = entries
                .iter()
                .find(|e| e.index == base.index)
                .is_some_and(|e| e.term != base.term);
            entries.retain(|e| e.index > base.index);
            let detached = entries
                .first()
                .is_some_and(|e| e.index != base.index.next());
            if conflicting || detached {
                tracing::warn!(
                    snapshot = %base.index,
                    dropped = entries.len(),
                    "stored log does not continue the snapshot; discarding it"
                );
                entries.clear();
                wal.reset()?;
            }
        }
        tracing::info!(
            dir = %self.dir.display(),
            term = %hard_state.term,
            snapshot = ?snapshot.as_ref().map(|s| s.last.index),
            entries = entries.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "recovered storage"
        );
        self.wal = Some(wal);
        Ok(Recovered {
            hard_state,
            snapshot,
            entries,
        })
    }

    fn persist(&mut self, batch: Vec<Persist>) -> Result<(), StorageError> {
        for p in batch {
            match p {
                Persist::Entries(entries) => self.wal()?.append(&entries)?,
                Persist::HardState(hs) => {
                    // Earlier entries of the batch first, to keep the order of the effects.
                    self.wal()?.sync()?;
                    self.write_atomic(HARD_STATE_FILE, &hs)?;
                }
                Persist::Snapshot {
                    snapshot,
                    replaces_log,
                } => {
                    self.wal()?.sync()?;
                    self.write_atomic(SNAPSHOT_FILE, &*snapshot)?;
                    let wal = self.wal()?;
                    if replaces_log {
                        wal.reset()?;
                    } else {
                        wal.compact(snapshot.last.index)?;
                    }
                }
            }
        }
        self.wal()?.sync()
    }
}
