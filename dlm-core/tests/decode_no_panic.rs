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
}
