//! A leader whose disk stops answering keeps leading: it still heartbeats and replicates while
//! its own sync hangs, and its two followers' durable copies commit a grant without it. (A
//! driver that held every effect behind every sync went silent instead, and lost leadership.)
#![cfg(feature = "mem")]

use dlm::mem::MemNetwork;
use dlm::runtime::{spawn_server, MemStorage, ServerHandle, ServerOptions, Storage, StorageError};
use dlm::{connect_mem, Config, NodeId, Persist, Recovered, Role};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// A switch that makes syncs hang until it is opened again.
struct Gate {
    closed: Mutex<bool>,
    opened: Condvar,
    /// Syncs that found the gate closed, announced so the test can wait for the first.
    stalled: watch::Sender<u64>,
}

impl Default for Gate {
    fn default() -> Self {
        Gate {
            closed: Mutex::new(false),
            opened: Condvar::new(),
            stalled: watch::Sender::new(0),
        }
    }
}

impl Gate {
    fn set_closed(&self, closed: bool) {
        *self.closed.lock().unwrap_or_else(|e| e.into_inner()) = closed;
        self.opened.notify_all();
    }

    /// Resolves once a sync is hanging at the closed gate.
    async fn first_stall(&self) {
        let mut stalled = self.stalled.subscribe();
        let _ = stalled.wait_for(|n| *n >= 1).await;
    }

    fn pass(&self) {
        let closed = self.closed.lock().unwrap_or_else(|e| e.into_inner());
        if *closed {
            self.stalled.send_modify(|n| *n += 1);
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

    // Stall the leader's disk for certain before the grant under test: a first lock's persist
    // hangs at the gate, so the second lock's entry can only reach the leader's disk after
    // it. (Waiting on the grant alone raced: followers may commit it before the leader's sync
    // of it has even started.)
    gate.set_closed(true);
    let stuck = tokio::spawn({
        let client = client.clone();
        async move { client.lock("stuck").await }
    });
    tokio::time::timeout(Duration::from_secs(5), gate.first_stall())
        .await
        .expect("the leader never synced the first lock's entry");
    let guard = tokio::time::timeout(Duration::from_secs(5), client.lock("a"))
        .await
        .expect("no grant while the leader's disk stalls")
        .unwrap();
    let now = leader.status().borrow().clone();
    assert_eq!(now.role, Role::Leader, "the stalled leader lost leadership");
    assert_eq!(now.term, term, "an election was held");
    client.release(guard).await.unwrap();
    let stuck = stuck.await.unwrap().unwrap();
    client.release(stuck).await.unwrap();

    gate.set_closed(false);
    leader.shutdown().await.unwrap();
    for follower in followers {
        follower.shutdown().await.unwrap();
    }
}
