//! Zero-filled space for a preallocated segment. A sync that overwrites blocks that are already
//! allocated, written and synced writes only the data; one that grows the file or fills a hole
//! also writes the inode (on ext4 without a journal, a second I/O with its own wait). So the
//! zeros are written and synced ahead, in their own sync, never together with a batch: then
//! everything past the write position is durable zeros, which recovery relies on.

use super::frame::{header, HEADER_LEN};
use crate::runtime::storage::{io_err, StorageError};
use std::fs::{self, File, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::os::unix::fs::FileExt;
use std::path::Path;

/// How much zero-filled space is added at a time (at most the segment size).
pub(super) const CHUNK: u64 = 1 << 20;

/// Suffix of a segment file being prepared; such files are deleted when the log is opened.
pub(super) const TMP_SUFFIX: &str = ".tmp";

/// A nonce for a new segment, different from any other segment's with high probability.
pub(super) fn new_nonce() -> u64 {
    // The standard library's randomly keyed hasher, over the time: no dependency needed.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    h.write_u128(now);
    h.write_u32(std::process::id());
    h.finish()
}

/// Creates the segment file `path`: header, then zeros up to `len`, synced, under a temporary
/// name and then renamed, so a file with a segment's name always has its whole header. The
/// rename is durable once the directory is synced.
pub(super) fn create(path: &Path, nonce: u64, len: u64) -> Result<File, StorageError> {
    let mut name = path.as_os_str().to_owned();
    name.push(TMP_SUFFIX);
    let tmp = Path::new(&name);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(tmp)
        .map_err(io_err(tmp))?;
    file.write_all_at(&header(nonce), 0).map_err(io_err(tmp))?;
    write_zeros(&file, tmp, HEADER_LEN as u64, len)?;
    file.sync_all().map_err(io_err(tmp))?;
    fs::rename(tmp, path).map_err(io_err(path))?;
    Ok(file)
}

/// Adds zero-filled space to `file` from `from` (its length) to `to`, durably.
pub(super) fn extend(file: &File, path: &Path, from: u64, to: u64) -> Result<(), StorageError> {
    write_zeros(file, path, from, to)?;
    file.sync_data().map_err(io_err(path))
}

fn write_zeros(file: &File, path: &Path, mut from: u64, to: u64) -> Result<(), StorageError> {
    let zeros = vec![0u8; 64 << 10];
    while from < to {
        let n = (to - from).min(zeros.len() as u64);
        file.write_all_at(&zeros[..n as usize], from)
            .map_err(io_err(path))?;
        from += n;
    }
    Ok(())
}
