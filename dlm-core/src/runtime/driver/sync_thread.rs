//! A node's sync thread: one long-lived thread that runs each group commit's
//! [`Storage::persist`] for a storage that blocks, instead of a task on tokio's blocking pool
//! per sync. The storage travels with each job and comes back with its result, exactly as it
//! did from a blocking task, so the driver's durability bookkeeping is the same either way; the
//! thread only saves the pool's hand-off (a task allocated, its queue locked, maybe another
//! thread woken) on every sync: about 7% of the server CPU of a lock cycle under load
//! (BENCHMARKS.md, issue 16).

use crate::node::Persist;
use crate::runtime::metrics::Counters;
use crate::runtime::storage::{Storage, StorageError};
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// What a sync hands back: the storage and how its persist went.
pub(super) struct Synced<S> {
    pub(super) storage: S,
    pub(super) result: Result<(), StorageError>,
    /// Dropped after `storage` (fields drop in order), also when the driver is gone and the
    /// answer is dropped on the sync thread: then
    /// [`ServerHandle::kill`](super::ServerHandle::kill) may return.
    pub(super) _holds_storage: mpsc::Sender<()>,
}

/// A sync under way: its answer arrives here (an error only if the thread died mid-sync).
pub(super) type SyncTask<S> = oneshot::Receiver<Synced<S>>;

/// One sync for the thread to run.
pub(super) struct Job<S> {
    storage: S,
    batch: Vec<Persist>,
    counters: Arc<Counters>,
    holds_storage: mpsc::Sender<()>,
    answer: oneshot::Sender<Synced<S>>,
}

impl<S: Storage> Job<S> {
    fn run(self) {
        let Job {
            mut storage,
            batch,
            counters,
            holds_storage,
            answer,
        } = self;
        let started = Instant::now();
        let result = storage.persist(batch);
        counters.sync.observe(started.elapsed());
        // A driver gone meanwhile drops the answer here: storage first, then the sender that
        // kill() waits on.
        let _ = answer.send(Synced {
            storage,
            result,
            _holds_storage: holds_storage,
        });
    }
}

/// Where the driver's syncs run. Dropping it ends the thread once the sync under way (if any)
/// is done.
pub(super) enum SyncThread<S> {
    /// The node's own thread.
    Thread(std_mpsc::Sender<Job<S>>),
    /// tokio's blocking pool, a task per sync, under a paused clock (tokio's test-util): the
    /// clock then moves on whenever the runtime idles, unless a blocking task is under way,
    /// and tokio cannot know of a sync on a thread of ours. Tests stay deterministic.
    Pool,
}

impl<S: Storage> SyncThread<S> {
    /// Starts the thread of node `name` (or picks the blocking pool under a paused clock).
    pub(super) fn start(name: String) -> std::io::Result<SyncThread<S>> {
        if clock_is_paused() {
            return Ok(SyncThread::Pool);
        }
        let (jobs, queue) = std_mpsc::channel::<Job<S>>();
        std::thread::Builder::new().name(name).spawn(move || {
            while let Ok(job) = queue.recv() {
                job.run();
            }
        })?;
        Ok(SyncThread::Thread(jobs))
    }

    /// Hands `storage` and `batch` to the thread. If the thread is gone (it panicked in an
    /// earlier persist), the storage comes back unused.
    pub(super) fn submit(
        &self,
        storage: S,
        batch: Vec<Persist>,
        counters: Arc<Counters>,
        holds_storage: mpsc::Sender<()>,
    ) -> Result<SyncTask<S>, S> {
        let (answer, task) = oneshot::channel();
        let job = Job {
            storage,
            batch,
            counters,
            holds_storage,
            answer,
        };
        match self {
            SyncThread::Thread(jobs) => match jobs.send(job) {
                Ok(()) => Ok(task),
                Err(std_mpsc::SendError(job)) => Err(job.storage),
            },
            SyncThread::Pool => {
                // The task's handle is not kept: the answer comes through `task`, and a panic
                // in persist drops the sender, which the driver reads as a failed sync.
                drop(tokio::task::spawn_blocking(move || job.run()));
                Ok(task)
            }
        }
    }
}

/// Whether this runtime's clock is paused (tokio's test-util): a paused clock does not move
/// while real time does.
fn clock_is_paused() -> bool {
    let frozen = tokio::time::Instant::now();
    let real = Instant::now();
    while real.elapsed() < Duration::from_micros(20) {
        std::hint::spin_loop();
    }
    tokio::time::Instant::now() == frozen
}
