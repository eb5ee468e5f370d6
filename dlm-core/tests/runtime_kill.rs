//! `ServerHandle::kill` returns only once nothing holds the node's storage any more, even when
//! a sync was under way on its thread, so the node can be started again from the same directory
//! at once (found in review: it used to return while the sync thread still held the lock).
#![cfg(feature = "tokio")]

mod runtime_support;

use dlm_core::runtime::{spawn_server, FileStorage, ServerOptions, Storage, StorageError};
use dlm_core::{Config, NodeId, Persist, Recovered};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// File storage whose syncs wait until the test opens the gate.
struct Gated {
    inner: FileStorage,
    gate: Arc<(Mutex<(bool, bool)>, Condvar)>,
}

impl Storage for Gated {
    fn recover(&mut self) -> Result<Recovered, StorageError> {
        self.inner.recover()
    }

    fn persist(&mut self, batch: Vec<Persist>) -> Result<(), StorageError> {
        let (lock, changed) = &*self.gate;
        let mut state = lock.lock().unwrap_or_else(|e| e.into_inner());
        // (entered, open)
        state.0 = true;
        changed.notify_all();
        let _open = changed
            .wait_while(state, |s| !s.1)
            .unwrap_or_else(|e| e.into_inner());
        self.inner.persist(batch)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_can_be_reopened_at_once_even_after_a_sync_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let gate = Arc::new((Mutex::new((false, false)), Condvar::new()));
    let storage = Gated {
        inner: FileStorage::open(dir.path()).unwrap(),
        gate: Arc::clone(&gate),
    };
    let net = runtime_support::Net::new(1);
    let cfg = Config::single(NodeId(1));
    let handle = spawn_server(cfg, storage, net.node(NodeId(1)), ServerOptions::default())
        .await
        .unwrap();
    // Wait until the node's first sync (its election's entry) is stuck in the gate.
    let entered = Arc::clone(&gate);
    tokio::task::spawn_blocking(move || {
        let (lock, changed) = &*entered;
        let state = lock.lock().unwrap_or_else(|e| e.into_inner());
        let _in = changed.wait_while(state, |s| !s.0);
    })
    .await
    .unwrap();
    // Let the sync go on a little after the kill has begun.
    let opener = Arc::clone(&gate);
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        let (lock, changed) = &*opener;
        lock.lock().unwrap_or_else(|e| e.into_inner()).1 = true;
        changed.notify_all();
    });
    handle.kill().await;
    let reopened = FileStorage::open(dir.path());
    assert!(reopened.is_ok(), "{:?}", reopened.map(|_| ()));
}
