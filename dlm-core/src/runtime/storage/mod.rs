//! Durable storage for a node: the hard state, the log and the latest snapshot.
//!
//! The driver hands a whole run of [`Persist`] effects to [`Storage::persist`] at once, so that
//! the run costs one sync (group commit).

mod file;
mod format;
mod mem;
mod record;
mod wal;

pub use file::{FileStorage, FileStorageOptions};
pub use format::STORAGE_FORMAT;
pub use mem::MemStorage;

use crate::node::{Persist, Recovered};
use std::path::PathBuf;

/// Why storage failed. A node whose storage fails stops: it can no longer promise durability.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// An operating-system call failed on `path`.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Stored data is damaged before its tail: the node refuses to start rather than guess.
    #[error("corrupt data in {file} at byte {offset}: {reason}")]
    Corrupt {
        /// The damaged file.
        file: PathBuf,
        /// Where the damaged record starts.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// Another process has the data directory open.
    #[error("data directory {dir} is locked by another process")]
    Locked {
        /// The directory.
        dir: PathBuf,
    },
    /// An entry at the last possible log index: it could never have a successor, so recovery
    /// would refuse the log. Storing it is refused instead, before anything is written.
    #[error("log index {0} is the last possible one: the log cannot grow past it")]
    IndexExhausted(crate::types::LogIndex),
    /// A value could not be encoded.
    #[error("cannot encode a record: {0}")]
    Encode(#[from] postcard::Error),
    /// The directory was written in another storage format (by another version of dlm), or
    /// holds data but no recorded format (written before formats were recorded). Nothing in
    /// it was read or changed.
    #[error(
        "data directory {} is in {}, and this dlm reads storage format {}: \
         run the dlm that wrote it, or replace this node with an empty one",
        dir.display(),
        match found {
            Some(v) => format!("storage format {v}"),
            None => "an unrecorded storage format".to_string(),
        },
        format::STORAGE_FORMAT
    )]
    Format {
        /// The directory.
        dir: PathBuf,
        /// The format it says it is in, if it says.
        found: Option<u32>,
    },
}

/// Where a node keeps what must survive a crash.
///
/// Both methods block; the driver runs them on a blocking thread when [`Storage::blocking`] says
/// so.
pub trait Storage: Send + 'static {
    /// Reads back everything persisted so far (repairing a torn tail if needed).
    fn recover(&mut self) -> Result<Recovered, StorageError>;

    /// Makes a run of persist effects durable, in order, before returning. Implementations
    /// should sync once for the whole run.
    fn persist(&mut self, batch: Vec<Persist>) -> Result<(), StorageError>;

    /// Whether calls block on the disk (so the driver moves them off the async threads).
    fn blocking(&self) -> bool {
        true
    }
}

fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> StorageError {
    let path = path.into();
    move |source| StorageError::Io { path, source }
}
