//! The driver: one task that owns a [`Node`], its [`Storage`] and its [`Transport`], and runs the
//! drive loop of [`Node`] against real time.

mod effects;
mod metering;
mod probe;
mod run_loop;
mod sync_thread;

use super::files::FileMirror;
use super::metrics::{Counters, GaugeRequest, MetricsReader};
use super::stopped::Stopped;
use super::storage::{Storage, StorageError};
use super::transport::Transport;
use crate::config::Config;
use crate::node::{Node, NodeError};
use crate::persist_queue::PersistQueue;
use crate::protocol::{NodeStatus, Role};
use metering::Metering;
pub use probe::PROBE_TARGET;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use sync_thread::{SyncTask, SyncThread};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::Instrument;

/// Why a server could not start or had to stop.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// Storage failed (at recovery, or while persisting: the node stops rather than lie).
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The node refused its configuration or recovered state.
    #[error(transparent)]
    Node(#[from] NodeError),
    /// The file mirror could not be written.
    #[error("file mirror: {0}")]
    Mirror(#[from] std::io::Error),
    /// The driver task panicked or was cancelled.
    #[error("driver task failed: {0}")]
    Task(String),
}

/// What the driver needs besides the node's configuration.
#[derive(Clone, Debug, Default)]
pub struct ServerOptions {
    /// Mirror guarded files into this directory (usually `<data-dir>/files`).
    pub files_dir: Option<PathBuf>,
}

/// A running node. [`ServerHandle::shutdown`] stops it and waits; dropping the handle stops it
/// too (handing leadership over the same way), without waiting.
#[derive(Debug)]
pub struct ServerHandle {
    status: watch::Receiver<NodeStatus>,
    stop: Option<oneshot::Sender<()>>,
    /// Set before a stop is asked for, so that the run's end can tell asked from failed.
    asked: Arc<AtomicBool>,
    /// How the run ended, once it has.
    stopped: watch::Receiver<Option<Stopped>>,
    task: JoinHandle<Result<(), ServerError>>,
    /// Ends once nothing holds the storage any more: the driver, and a sync on its thread.
    storage_released: mpsc::Receiver<()>,
    metrics: MetricsReader,
}

impl ServerHandle {
    /// The node's latest status (role, term, leader, commit), updated after every batch.
    pub fn status(&self) -> watch::Receiver<NodeStatus> {
        self.status.clone()
    }

    /// Reads the node's counters and gauges (for a metrics exporter). The reader may outlive
    /// the node.
    pub fn metrics(&self) -> MetricsReader {
        self.metrics.clone()
    }

    /// Stops the node and waits for it to end. A leader first hands leadership to its most
    /// caught-up member (for at most an election time-out), so that the cluster goes on after
    /// one round trip instead of waiting out an election time-out. Returns the error that
    /// stopped the node if it had already stopped on its own.
    pub async fn shutdown(mut self) -> Result<(), ServerError> {
        self.asked.store(true, Ordering::SeqCst);
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match (&mut self.task).await {
            Ok(result) => result,
            Err(e) => Err(ServerError::Task(e.to_string())),
        }
    }

    /// Resolves when the node has stopped, with the reason: [`Stopped::Asked`] after
    /// [`ServerHandle::shutdown`], anything else when it stopped on its own (a full disk, a
    /// storage error) and will serve no more. The future owns what it needs, so a supervisor
    /// can wait on it while the handle is used to shut down.
    pub fn stopped(&self) -> impl std::future::Future<Output = Stopped> + Send + 'static {
        let mut stopped = self.stopped.clone();
        async move {
            match stopped.wait_for(Option::is_some).await {
                Ok(ended) => ended.clone().unwrap_or(Stopped::Vanished),
                Err(_) => Stopped::Vanished,
            }
        }
    }

    /// Stops the node at once, the way a crash would as far as the cluster can tell: no
    /// hand-over, and nothing more is sent. It returns once the storage is released (a sync
    /// already under way finishes on its thread first), so the node can be started again from
    /// the same data directory. For failover tests and demos; a planned stop is
    /// [`ServerHandle::shutdown`].
    pub async fn kill(mut self) {
        self.task.abort();
        // Cancelled, or finished first: either way the driver is gone.
        let _ = (&mut self.task).await;
        while self.storage_released.recv().await.is_some() {}
    }
}

/// Dropping the handle closes the stop sender, which asks the node to stop: say so first.
impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.asked.store(true, Ordering::SeqCst);
    }
}

/// Starts a node: recovers `storage`, rebuilds the file mirror, and spawns the driver task.
pub async fn spawn_server<S: Storage, T: Transport>(
    cfg: Config,
    mut storage: S,
    transport: T,
    opts: ServerOptions,
) -> Result<ServerHandle, ServerError> {
    let span = tracing::info_span!("node", id = %cfg.id);
    let (storage, recovered) = if storage.blocking() {
        tokio::task::spawn_blocking(move || {
            let r = storage.recover();
            (storage, r)
        })
        .await
        .map_err(|e| ServerError::Task(e.to_string()))?
    } else {
        let r = storage.recover();
        (storage, r)
    };
    let recovered = recovered?;
    let node = Node::new(cfg, recovered)?;
    let mirror = match opts.files_dir {
        Some(dir) => {
            let mut mirror = FileMirror::new(dir)?;
            // Entries after the snapshot are re-applied on top as the node learns the commit.
            mirror.rebuild(node.state_machine())?;
            Some(mirror)
        }
        None => None,
    };
    let (status_tx, status) = watch::channel(node.status());
    // Never sent on: the receiver learns that every holder of the storage is gone.
    let (holds_storage, storage_released) = mpsc::channel(1);
    let (stop, stop_rx) = oneshot::channel();
    let origin = Instant::now();
    let counters = Arc::new(Counters::new(
        origin,
        node.config()
            .members
            .iter()
            .copied()
            .filter(|m| *m != node.id()),
        node.commit_index(),
    ));
    // A few scrapes may wait at once; more wait for room (each is bounded by its own time-out).
    let (ask_gauges, gauge_requests) = mpsc::channel(4);
    let metrics = MetricsReader::new(Arc::clone(&counters), ask_gauges, status.clone());
    let metering = Metering::new(counters, node.applied_index());
    let driver = Driver {
        node,
        storage: Some(storage),
        transport,
        mirror,
        origin,
        status: status_tx,
        seen: Seen::default(),
        queue: PersistQueue::default(),
        syncing: None,
        sync_thread: None,
        holds_storage,
        metering,
        gauge_requests,
        members_told: None,
    };
    let asked = Arc::new(AtomicBool::new(false));
    let (report_stop, stopped) = watch::channel(None);
    let run = {
        let asked = Arc::clone(&asked);
        async move {
            let result = driver.run(stop_rx).await;
            report_stop.send_replace(Some(Stopped::of(&result, asked.load(Ordering::SeqCst))));
            result
        }
    };
    let task = tokio::spawn(run.instrument(span));
    Ok(ServerHandle {
        status,
        stop: Some(stop),
        asked,
        stopped,
        storage_released,
        task,
        metrics,
    })
}

/// What was last reported, to log changes only.
#[derive(Default, PartialEq, Eq, Clone, Copy)]
struct Seen {
    role: Option<Role>,
    term: crate::types::Term,
    leader: Option<crate::types::NodeId>,
}

struct Driver<S, T> {
    node: Node,
    /// `None` only while a sync owns it (or after a sync task failed).
    storage: Option<S>,
    /// Which persists go into the next sync and which effects wait for one.
    queue: PersistQueue,
    /// The sync under way, for a storage that blocks.
    syncing: Option<SyncTask<S>>,
    /// Where a storage that blocks syncs, started at its first sync.
    sync_thread: Option<SyncThread<S>>,
    /// Held by whatever holds the storage (a clone goes with each sync), for
    /// [`ServerHandle::kill`].
    holds_storage: mpsc::Sender<()>,
    transport: T,
    mirror: Option<FileMirror>,
    origin: Instant,
    status: watch::Sender<NodeStatus>,
    seen: Seen,
    /// Counting for metrics.
    metering: Metering,
    /// Scrapes asking for what only the driver can count.
    gauge_requests: mpsc::Receiver<GaugeRequest>,
    /// The configuration the transport was last told of ([`Transport::members_changed`]).
    members_told: Option<crate::membership::Membership>,
}
