//! The logic of dlm's fuzz targets, kept in a library so that the `cargo fuzz` targets, the seed
//! writer and any regression test run the same code. Each `run` takes the raw fuzzer input and
//! panics only when it finds a bug.

pub mod wal_ops;
pub mod wal_raw;
pub mod wire_frame;

/// A scratch directory on a RAM-backed file system when there is one: recovery does real file
/// I/O, and a disk-backed temp dir would make every execution pay for it.
pub(crate) fn scratch_dir() -> tempfile::TempDir {
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(dir) = tempfile::tempdir_in(shm) {
            return dir;
        }
    }
    tempfile::tempdir().expect("a temporary directory")
}
