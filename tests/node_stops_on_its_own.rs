//! A node that stops on its own says so: `ServerHandle::stopped` resolves with the reason, and a
//! full data disk is named as such, so that an embedder or a supervisor can act on it (a
//! `server` process once logged the error and went on running, deaf, until SIGTERM).
#![cfg(feature = "mem")]

use dlm::mem::MemNetwork;
use dlm::runtime::{spawn_server, MemStorage, ServerOptions, Stopped, Storage, StorageError};
use dlm::{Config, NodeId, Persist, Recovered};
use std::path::PathBuf;
use std::time::Duration;

/// Memory storage whose disk fills up after `room` persists.
struct FillingDisk {
    inner: MemStorage,
    room: usize,
}

impl Storage for FillingDisk {
    fn recover(&mut self) -> Result<Recovered, StorageError> {
        self.inner.recover()
    }

    fn persist(&mut self, batch: Vec<Persist>) -> Result<(), StorageError> {
        if self.room == 0 {
            return Err(StorageError::Io {
                path: PathBuf::from("/data/raft/wal-0001"),
                source: std::io::Error::from(std::io::ErrorKind::StorageFull),
            });
        }
        self.room -= 1;
        self.inner.persist(batch)
    }
}

async fn lone_node(storage: impl Storage) -> dlm::runtime::ServerHandle {
    let net = MemNetwork::new(3);
    let cfg = Config::single(NodeId(1));
    spawn_server(cfg, storage, net.node(NodeId(1)), ServerOptions::default())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_full_disk_stops_the_node_and_says_so() {
    let handle = lone_node(FillingDisk {
        inner: MemStorage::new(),
        room: 0,
    })
    .await;
    // A lone node elects itself at once, and its first persist (term and vote) meets the full
    // disk.
    let stopped = tokio::time::timeout(Duration::from_secs(10), handle.stopped())
        .await
        .expect("the node did not stop on a full disk");
    assert!(matches!(stopped, Stopped::DiskFull(_)), "{stopped:?}");
    assert!(stopped.to_string().contains("disk is full"), "{stopped}");
    assert!(!stopped.was_asked());
    // Shutting down a stopped node returns the error that stopped it.
    assert!(handle.shutdown().await.is_err());
}

#[tokio::test]
async fn a_node_asked_to_stop_reports_that() {
    let handle = lone_node(MemStorage::new()).await;
    let stopped = handle.stopped();
    handle.shutdown().await.unwrap();
    let stopped = tokio::time::timeout(Duration::from_secs(10), stopped)
        .await
        .expect("stopped() did not resolve after shutdown");
    assert_eq!(stopped, Stopped::Asked);
    assert!(stopped.was_asked());
}
