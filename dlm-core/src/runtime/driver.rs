//! The driver: one task that owns a [`Node`], its [`Storage`] and its [`Transport`], and runs the
//! drive loop of [`Node`] against real time.

use super::files::FileMirror;
use super::stopped::Stopped;
use super::storage::{Storage, StorageError};
use super::transport::{Incoming, Transport};
use crate::config::Config;
use crate::message::PeerMessage;
use crate::node::{Effect, Input, Node, NodeError};
use crate::persist_queue::PersistQueue;
use crate::protocol::{ClientRequest, NodeStatus, Role};
use crate::types::{ConnId, Time};
use futures::FutureExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::Instrument;

/// Most inputs taken from the transport before the effects are executed.
const MAX_BATCH: usize = 4096;

/// Log entries, or bytes, not yet durable past which the driver stops taking input: a stalled
/// disk then holds memory to about this, and check-quorum soon deposes a leader that cannot
/// keep up.
const MAX_BACKLOG_ENTRIES: usize = 65_536;
/// See [`MAX_BACKLOG_ENTRIES`]: 64 MiB, so large appends are bounded too.
const MAX_BACKLOG_BYTES: usize = 64 << 20;

/// A sync running on a blocking thread; it hands the storage back with its result.
type SyncTask<S> = JoinHandle<Synced<S>>;

/// What a sync task hands back.
struct Synced<S> {
    storage: S,
    result: Result<(), StorageError>,
    /// Dropped after `storage` (fields drop in order), also when the driver is gone and the
    /// task's output is dropped on its thread: then [`ServerHandle::kill`] may return.
    _holds_storage: mpsc::Sender<()>,
}

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
}

impl ServerHandle {
    /// The node's latest status (role, term, leader, commit), updated after every batch.
    pub fn status(&self) -> watch::Receiver<NodeStatus> {
        self.status.clone()
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
    let driver = Driver {
        node,
        storage: Some(storage),
        transport,
        mirror,
        origin: Instant::now(),
        status: status_tx,
        seen: Seen::default(),
        queue: PersistQueue::default(),
        syncing: None,
        holds_storage,
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
    })
}

/// The inputs of one turn of the loop, sorted by kind (see [`Driver::feed_batch`]).
#[derive(Default)]
struct Batch {
    peers: Vec<PeerMessage>,
    clients: Vec<(ConnId, ClientRequest)>,
}

impl Batch {
    fn push(&mut self, incoming: Incoming) {
        match incoming {
            Incoming::Peer(msg) => self.peers.push(msg),
            Incoming::Client { conn, request } => self.clients.push((conn, request)),
        }
    }

    fn len(&self) -> usize {
        self.peers.len() + self.clients.len()
    }
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
    /// Held by whatever holds the storage (a clone goes with each sync), for
    /// [`ServerHandle::kill`].
    holds_storage: mpsc::Sender<()>,
    transport: T,
    mirror: Option<FileMirror>,
    origin: Instant,
    status: watch::Sender<NodeStatus>,
    seen: Seen,
}

impl<S: Storage, T: Transport> Driver<S, T> {
    fn now(&self) -> Time {
        let nanos = self.origin.elapsed().as_nanos();
        Time::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    fn instant_of(&self, t: Time) -> Instant {
        // "No deadline" becomes an hour away: the loop simply wakes up, finds nothing and sleeps.
        let far = Instant::now() + Duration::from_secs(3600);
        let at = self
            .origin
            .checked_add(Duration::from_nanos(t.as_nanos()))
            .unwrap_or(far);
        at.min(far)
    }

    async fn run(mut self, mut stop: oneshot::Receiver<()>) -> Result<(), ServerError> {
        tracing::info!(
            term = %self.node.term(),
            last = %self.node.last_log().index,
            "node started"
        );
        let result = self.run_loop(&mut stop).await;
        match &result {
            Ok(()) => tracing::info!("node stopped"),
            Err(e) => tracing::error!(error = %e, "node stopped on an error"),
        }
        result
    }

    async fn run_loop(&mut self, stop: &mut oneshot::Receiver<()>) -> Result<(), ServerError> {
        self.node.handle(self.now(), Input::Tick);
        self.execute().await?;
        let mut batch = Batch::default();
        // Set once asked to stop while leading: until then the node hands leadership over.
        let mut leaving: Option<Instant> = None;
        loop {
            if leaving.is_some_and(|until| !self.node.is_leader() || Instant::now() >= until) {
                return self.stop().await;
            }
            let mut deadline = self.instant_of(self.node.next_deadline());
            if let Some(until) = leaving {
                deadline = deadline.min(until);
            }
            let backlog = self.queue.backlog();
            let take_input =
                backlog.entries < MAX_BACKLOG_ENTRIES && backlog.bytes < MAX_BACKLOG_BYTES;
            tokio::select! {
                biased;
                _ = &mut *stop, if leaving.is_none() => {
                    if !self.node.is_leader() || self.node.config().members.len() == 1 {
                        return self.stop().await;
                    }
                    self.node.handle(self.now(), Input::HandOver);
                    if !self.node.is_handing_over() {
                        // Nobody to hand over to: staying would only delay the others' election.
                        return self.stop().await;
                    }
                    leaving = Some(Instant::now() + self.node.config().election_timeout);
                }
                done = join_sync(&mut self.syncing), if self.syncing.is_some() => {
                    self.syncing = None;
                    self.take_back(done)?;
                    self.synced().await?;
                }
                incoming = self.transport.recv(), if take_input => match incoming {
                    Some(incoming) => batch.push(incoming),
                    None => return self.stop().await,
                },
                () = tokio::time::sleep_until(deadline) => {
                    self.node.handle(self.now(), Input::Tick);
                }
            }
            // Take everything already queued, so that it shares this batch's sync.
            while take_input && batch.len() < MAX_BATCH {
                match self.transport.recv().now_or_never() {
                    Some(Some(incoming)) => batch.push(incoming),
                    _ => break,
                }
            }
            self.feed_batch(&mut batch);
            self.execute().await?;
        }
    }

    /// Hands a batch to the node, peer messages first, so that the acknowledgements among them
    /// are counted before the batch's requests are proposed. Any order of messages from
    /// different senders is one the network could have produced; each sender's order is kept.
    fn feed_batch(&mut self, batch: &mut Batch) {
        let now = self.now();
        for msg in batch.peers.drain(..) {
            self.node.handle(now, Input::Peer(msg));
        }
        for (conn, request) in batch.clients.drain(..) {
            self.node.handle(now, Input::Client { conn, request });
        }
    }

    /// Drains the node's effects through the persist queue: what need not wait goes out at
    /// once, persists gather for the next sync, and a sync starts if none is under way.
    async fn execute(&mut self) -> Result<(), ServerError> {
        loop {
            while let Some(effect) = self.node.poll_effect() {
                if let Some(effect) = self.queue.push(effect) {
                    self.perform(effect).await?;
                }
            }
            self.report();
            if !self.start_sync()? {
                return Ok(());
            }
            // A storage that does not block has synced on the spot.
            self.finish_sync().await?;
        }
    }

    /// Starts the next sync if none is under way. Returns true if it is already done (a
    /// storage that does not block syncs in place).
    fn start_sync(&mut self) -> Result<bool, ServerError> {
        if self.syncing.is_some() {
            return Ok(false);
        }
        let Some(batch) = self.queue.start() else {
            return Ok(false);
        };
        let Some(mut storage) = self.storage.take() else {
            return Err(ServerError::Task(
                "storage lost by an earlier failure".into(),
            ));
        };
        if storage.blocking() {
            let holds_storage = self.holds_storage.clone();
            self.syncing = Some(tokio::task::spawn_blocking(move || {
                let result = storage.persist(batch);
                Synced {
                    storage,
                    result,
                    _holds_storage: holds_storage,
                }
            }));
            return Ok(false);
        }
        let result = storage.persist(batch);
        self.storage = Some(storage);
        result?;
        Ok(true)
    }

    /// A blocking sync finished: release what waited for it, tell the node, run what follows.
    async fn synced(&mut self) -> Result<(), ServerError> {
        self.finish_sync().await?;
        self.execute().await
    }

    /// Releases what waited for the sync just finished and reports it durable to the node.
    async fn finish_sync(&mut self) -> Result<(), ServerError> {
        let done = self.queue.finish();
        for effect in done.released {
            self.perform(effect).await?;
        }
        if let Some(position) = done.persisted {
            self.node.handle(self.now(), Input::Persisted(position));
        }
        Ok(())
    }

    /// Stops: lets a sync under way finish, and makes what is still gathered durable too, so
    /// that a clean shutdown loses nothing the node handed over. Nothing waiting is released.
    async fn stop(&mut self) -> Result<(), ServerError> {
        loop {
            if let Some(task) = self.syncing.take() {
                self.take_back(task.await)?;
            }
            let _ = self.queue.finish();
            if !self.start_sync()? && self.syncing.is_none() {
                return Ok(());
            }
        }
    }

    /// Puts the storage back from a finished sync task and passes on its result.
    fn take_back(
        &mut self,
        joined: Result<Synced<S>, tokio::task::JoinError>,
    ) -> Result<(), ServerError> {
        let synced = joined.map_err(|e| ServerError::Task(e.to_string()))?;
        self.storage = Some(synced.storage);
        synced.result.map_err(ServerError::from)
    }

    async fn perform(&mut self, effect: Effect) -> Result<(), ServerError> {
        match effect {
            Effect::Send(msg) => self.transport.send(msg).await,
            Effect::Reply { conn, response } => self.transport.reply(conn, response).await,
            Effect::Applied(applied) => {
                if let Some(mirror) = &mut self.mirror {
                    mirror.apply(&applied, self.node.state_machine())?;
                }
            }
            // The queue keeps every persist for a sync; nothing hands one here.
            Effect::Persist(p) => {
                let _ = self.queue.push(Effect::Persist(p));
            }
        }
        Ok(())
    }

    /// Publishes the status and logs role, term and leader changes.
    fn report(&mut self) {
        let now = Seen {
            role: Some(self.node.role()),
            term: self.node.term(),
            leader: self.node.leader(),
        };
        if now != self.seen {
            if now.role != self.seen.role {
                match now.role {
                    Some(Role::Candidate) => {
                        tracing::info!(term = %now.term, "standing for election")
                    }
                    Some(Role::Leader) => tracing::info!(term = %now.term, "became leader"),
                    role => tracing::debug!(?role, term = %now.term, "role changed"),
                }
            }
            if now.leader != self.seen.leader || now.term != self.seen.term {
                tracing::info!(term = %now.term, leader = ?now.leader, "leader changed");
            }
            self.seen = now;
        }
        let status = self.node.status();
        self.status.send_if_modified(|old| {
            let changed = *old != status;
            if changed {
                *old = status;
            }
            changed
        });
    }
}

/// Waits for the sync under way; never resolves without one (the select guards on it).
async fn join_sync<S>(
    syncing: &mut Option<SyncTask<S>>,
) -> Result<Synced<S>, tokio::task::JoinError> {
    match syncing {
        Some(task) => task.await,
        None => std::future::pending().await,
    }
}
