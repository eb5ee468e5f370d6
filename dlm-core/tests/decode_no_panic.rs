//! Arbitrary bytes from the network or the disk never panic: the wire decoders and WAL recovery
//! answer with a value or a typed error. (A proptest stand-in for the cargo-fuzz targets.)
#![cfg(feature = "tokio")]

use dlm_core::message::PeerMessage;
use dlm_core::protocol::ClientRequest;
use dlm_core::runtime::{FileStorage, Storage};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = postcard::from_bytes::<PeerMessage>(&bytes);
        let _ = postcard::from_bytes::<ClientRequest>(&bytes);
    }

    #[test]
    fn wal_recovery_never_panics(
        bytes in proptest::collection::vec(any::<u8>(), 0..2048),
        first in 0u64..4,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let wal = dir.path().join("wal");
        std::fs::create_dir_all(&wal).unwrap();
        std::fs::write(wal.join(format!("{first:020}.wal")), &bytes).unwrap();
        if let Ok(mut storage) = FileStorage::open(dir.path()) {
            let _ = storage.recover();
        }
    }

    /// The same for a preallocated segment: arbitrary bytes after a valid header (which a
    /// checksum would otherwise keep random bytes from passing).
    #[test]
    fn preallocated_segment_recovery_never_panics(
        bytes in proptest::collection::vec(any::<u8>(), 0..2048),
        first in 0u64..4,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let wal = dir.path().join("wal");
        std::fs::create_dir_all(&wal).unwrap();
        let mut file = b"dlm-seg\0".to_vec();
        file.extend_from_slice(&1u32.to_le_bytes());
        file.extend_from_slice(&7u64.to_le_bytes());
        let crc = crc32fast::hash(&file);
        file.extend_from_slice(&crc.to_le_bytes());
        file.extend_from_slice(&bytes);
        std::fs::write(wal.join(format!("{first:020}.seg")), &file).unwrap();
        if let Ok(mut storage) = FileStorage::open(dir.path()) {
            let _ = storage.recover();
        }
    }
}
