//! Where a storage that blocks syncs: on the node's own sync thread, except under a paused clock
//! (tokio's test-util), where syncs stay on the blocking pool so that the clock cannot move on
//! while one is under way.
#![cfg(feature = "tokio")]

mod runtime_support;

use dlm_core::runtime::{spawn_server, MemStorage, ServerOptions, Stopped, Storage, StorageError};
use dlm_core::*;
use runtime_support::Net;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Memory storage that says it blocks, and notes the name of each thread that synced it.
struct Noting {
    inner: MemStorage,
    threads: Arc<Mutex<Vec<Option<String>>>>,
}

impl Storage for Noting {
    fn recover(&mut self) -> Result<Recovered, StorageError> {
        self.inner.recover()
    }

    fn persist(&mut self, batch: Vec<Persist>) -> Result<(), StorageError> {
        let name = std::thread::current().name().map(str::to_owned);
        self.threads.lock().unwrap().push(name);
        self.inner.persist(batch)
    }
}

/// Starts one node on `Noting` storage, waits until it leads (its first syncs are its term and
/// vote), and returns the names of the threads that synced.
async fn sync_threads() -> Vec<Option<String>> {
    let net = Net::new(1);
    let threads = Arc::new(Mutex::new(Vec::new()));
    let storage = Noting {
        inner: MemStorage::new(),
        threads: Arc::clone(&threads),
    };
    let cfg = Config::new(NodeId(1), [NodeId(1)]);
    let node = spawn_server(cfg, storage, net.node(NodeId(1)), ServerOptions::default())
        .await
        .unwrap();
    let mut status = node.status();
    tokio::time::timeout(
        Duration::from_secs(10),
        status.wait_for(|s| s.role == Role::Leader),
    )
    .await
    .expect("no leader")
    .unwrap();
    node.shutdown().await.unwrap();
    let seen = threads.lock().unwrap().clone();
    seen
}

#[tokio::test]
async fn a_storage_that_blocks_syncs_on_the_nodes_own_thread() {
    let seen = sync_threads().await;
    assert!(!seen.is_empty());
    for name in seen {
        assert_eq!(name.as_deref(), Some("dlm-sync-1"));
    }
}

#[tokio::test(start_paused = true)]
async fn under_a_paused_clock_syncs_stay_on_the_blocking_pool() {
    let seen = sync_threads().await;
    assert!(!seen.is_empty());
    for name in seen {
        assert_ne!(name.as_deref(), Some("dlm-sync-1"));
    }
}

/// Memory storage that says it blocks and panics in its first persist.
struct Panicking(MemStorage);

impl Storage for Panicking {
    fn recover(&mut self) -> Result<Recovered, StorageError> {
        self.0.recover()
    }

    fn persist(&mut self, _batch: Vec<Persist>) -> Result<(), StorageError> {
        panic!("the disk caught fire (a test's panic)");
    }
}

#[tokio::test]
async fn a_sync_that_panics_stops_the_node_and_releases_the_storage() {
    let net = Net::new(1);
    let cfg = Config::new(NodeId(1), [NodeId(1)]);
    let storage = Panicking(MemStorage::new());
    let node = spawn_server(cfg, storage, net.node(NodeId(1)), ServerOptions::default())
        .await
        .unwrap();
    let stopped = tokio::time::timeout(Duration::from_secs(10), node.stopped())
        .await
        .expect("the node did not stop");
    assert!(
        matches!(&stopped, Stopped::Failed(m) if m.contains("sync thread")),
        "{stopped:?}"
    );
    tokio::time::timeout(Duration::from_secs(10), node.kill())
        .await
        .expect("the storage was never released");
}
