//! A leader whose disk stops answering keeps leading: it still heartbeats and replicates while
//! its own sync hangs, and its two followers' durable copies commit a grant without it. (A
//! driver that held every effect behind every sync went silent instead, and lost leadership.)
#![cfg(feature = "mem")]

use dlm::mem::MemNetwork;
use dlm::runtime::{spawn_server, MemStorage, ServerHandle, ServerOptions, Storage, StorageError};
use dlm::{connect_mem, Config, NodeId, Persist, Recovered, Role};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// A switch that makes syncs hang until it is opened again.
#[derive(Default)]
struct Gate {
    closed: Mutex<bool>,
    opened: Condvar,
    /// Syncs that found the gate closed.
    stalled: Mutex<u64>,
}

impl Gate {
    fn set_closed(&self, closed: bool) {
        *self.closed.lock().unwrap_or_else(|e| e.into_inner()) = closed;
        self.opened.notify_all();
    }

    fn stalled(&self) -> u64 {
        *self.stalled.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn pass(&self) {
        let closed = self.closed.lock().unwrap_or_else(|e| e.into_inner());
        if *closed {
            *self.stalled.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        }
        let _open = self
            .opened
            .wait_while(closed, |closed| *closed)
            .unwrap_or_else(|e| e.into_inner());
    }
}

/// Opens the gate when dropped, so that a failing test does not leave a sync hanging (the
/// runtime waits for its blocking threads before the test can end).
struct OpenOnDrop(Arc<Gate>);

impl Drop for OpenOnDrop {
    fn drop(&mut self) {
        self.0.set_closed(false);
    }
}

/// Memory storage behind a gate, on a blocking thread like a real disk.
struct GatedStorage {
    inner: MemStorage,
    gate: Arc<Gate>,
}

impl Storage for GatedStorage {
    fn recover(&mut self) -> Result<Recovered, StorageError> {
        self.inner.recover()
    }

    fn persist(&mut self, batch: Vec<Persist>) -> Result<(), StorageError> {
        self.gate.pass();
        self.inner.persist(batch)
    }
}

async fn start(net: &MemNetwork, id: u64, storage: impl Storage) -> ServerHandle {
    let members = [1, 2, 3].map(NodeId);
    let cfg = Config::new(NodeId(id), members);
    spawn_server(cfg, storage, net.node(NodeId(id)), ServerOptions::default())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_whose_disk_stalls_keeps_leading_through_its_followers() {
    let net = MemNetwork::new(7);
    let gate = Arc::new(Gate::default());
    let _open_at_the_end = OpenOnDrop(Arc::clone(&gate));
    let storage = GatedStorage {
        inner: MemStorage::new(),
        gate: Arc::clone(&gate),
    };
    let leader = start(&net, 1, storage).await;
    let followers = [
        start(&net, 2, MemStorage::new()).await,
        start(&net, 3, MemStorage::new()).await,
    ];
    let mut status = leader.status();
    tokio::time::timeout(
        Duration::from_secs(10),
        status.wait_for(|s| s.role == Role::Leader),
    )
    .await
    .expect("node 1 did not become leader")
    .unwrap();
    let client = connect_mem(&net, [1, 2, 3]);
    let warm = client.lock("warm-up").await.unwrap();
    client.release(warm).await.unwrap();
    let term = leader.status().borrow().term;

    gate.set_closed(true);
    let guard = tokio::time::timeout(Duration::from_secs(5), client.lock("a"))
        .await
        .expect("no grant while the leader's disk stalls")
        .unwrap();
    assert!(gate.stalled() >= 1, "the leader's disk was never stalled");
    let now = leader.status().borrow().clone();
    assert_eq!(now.role, Role::Leader, "the stalled leader lost leadership");
    assert_eq!(now.term, term, "an election was held");
    client.release(guard).await.unwrap();

    gate.set_closed(false);
    leader.shutdown().await.unwrap();
    for follower in followers {
        follower.shutdown().await.unwrap();
    }
}
