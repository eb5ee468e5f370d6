//! The async client: a thin driver over the sans-IO [`crate::client::ClientCore`], which does
//! the retrying, leader-finding, lease renewal and clean-up. One task per client owns the core;
//! the [`Client`] handles send it calls and wait for their answers.
//!
//! # Cancellation and deadlines
//!
//! Every call may be dropped or wrapped in a time-out at any point, and leaves the service as
//! if it had never been made, or had completed (and, for an acquire, been undone):
//!
//! - a dropped `lock`, `lock_timeout` or `try_lock` (or a shared lock's or a semaphore's
//!   acquire, [`RwLock`], [`Semaphore`]) is withdrawn from the lock's queue; if it
//!   was granted meanwhile, the grant is given back at once, in the same log entry as the
//!   withdrawal, and the next waiter gets the lock;
//! - a dropped `release` carries on in the background;
//! - a dropped `append` is applied once or not at all, never twice.
//!
//! Every call ends: a call fails with [`ClientError::Unavailable`] (naming what each node did)
//! when no leader answers within [`ClientConfig::deadline`]; a waiting `lock` is bounded by
//! that deadline only while no leader can be reached, and `lock_timeout(d)` bounds the whole
//! call by `d`.

mod actor;
mod admin;
mod election;
mod guard;
mod kinds;
mod replace;
mod watch;

pub use crate::client::{
    ClientConfig, ClientError, DriftBound, LossReason, NodeCause, Unreachable,
};
pub use election::{Election, Leader, LeaderObserver, Leadership};
pub use guard::LockGuard;
pub use kinds::{RwLock, Semaphore};
pub use replace::{ReplaceError, ReplaceStep, REPLACE_CATCH_UP};
pub use watch::{LockWatch, WatchUpdate};

use super::transport::ClientTransport;
use crate::client::{CallId, CallOp, ClientCore, Done, Wait};
use crate::names::{FileName, LockName};
use crate::protocol::{Mode, NodeStatus};
use crate::types::{ClientId, NodeId};
use actor::{Actor, Answer, Clock, Command};
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// A client of a dlm cluster. Cheap to clone; clones share the session and the locks.
pub struct Client<T: ClientTransport> {
    shared: Arc<Shared<T>>,
}

impl<T: ClientTransport> Clone for Client<T> {
    fn clone(&self) -> Self {
        Client {
            shared: self.shared.clone(),
        }
    }
}

impl<T: ClientTransport> fmt::Debug for Client<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("session", &self.id())
            .field("nodes", &self.shared.cfg.nodes)
            .finish_non_exhaustive()
    }
}

struct Shared<T> {
    cfg: ClientConfig,
    commands: mpsc::UnboundedSender<Command>,
    next_call: Arc<AtomicU64>,
    session: Arc<Mutex<ClientId>>,
    /// The actor, until the first call starts it (inside a tokio runtime).
    idle_actor: Mutex<Option<Actor<T>>>,
}

fn os_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    h.write_u128(nanos);
    h.write_u32(std::process::id());
    h.finish()
}

/// Sends `Abandon` for a call whose future is dropped before its answer.
struct AbandonOnDrop<'a> {
    commands: &'a mpsc::UnboundedSender<Command>,
    call: Option<CallId>,
}

impl Drop for AbandonOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(call) = self.call.take() {
            let _ = self.commands.send(Command::Abandon(call));
        }
    }
}

impl<T: ClientTransport> Client<T> {
    /// A client over `transport` with a fresh random session id. Its task starts with its
    /// first call (which must run inside a tokio runtime).
    pub fn new(transport: T, cfg: ClientConfig) -> Client<T> {
        let core = ClientCore::new(cfg.clone(), cfg.seed.unwrap_or_else(os_seed));
        let session = Arc::new(Mutex::new(core.session()));
        let (tx, rx) = mpsc::unbounded_channel();
        let next_call = Arc::new(AtomicU64::new(1));
        let actor = Actor {
            next_call: next_call.clone(),
            core,
            transport: Arc::new(transport),
            commands: rx,
            clock: Clock {
                epoch: Instant::now(),
            },
            session: session.clone(),
            replies: HashMap::new(),
            guards: HashMap::new(),
            attempts: HashMap::new(),
        };
        Client {
            shared: Arc::new(Shared {
                cfg,
                commands: tx,
                next_call,
                session,
                idle_actor: Mutex::new(Some(actor)),
            }),
        }
    }

    /// This client's id: the id of its current session (a new one after the service expired
    /// the last).
    pub fn id(&self) -> ClientId {
        *self
            .shared
            .session
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Its configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.shared.cfg
    }

    fn ensure_running(&self) {
        let idle = self
            .shared
            .idle_actor
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(actor) = idle {
            tokio::spawn(actor.run());
        }
    }

    fn next_call(&self) -> CallId {
        CallId(self.shared.next_call.fetch_add(1, Ordering::Relaxed))
    }

    /// Runs one call to its end; dropping the future abandons it (see the module docs).
    async fn call(&self, op: CallOp) -> Answer {
        self.ensure_running();
        let call = self.next_call();
        let (reply, answer) = oneshot::channel();
        let commands = &self.shared.commands;
        commands
            .send(Command::Start { call, op, reply })
            .map_err(|_| ClientError::Closed)?;
        let mut abandon = AbandonOnDrop {
            commands,
            call: Some(call),
        };
        let answer = answer.await.unwrap_or(Err(ClientError::Closed));
        abandon.call = None;
        answer
    }

    /// Starts a call nobody waits for (a dropped guard's release); the client's task sees it
    /// through.
    pub(super) fn fire_and_forget(&self, op: CallOp) {
        let call = self.next_call();
        let (reply, _) = oneshot::channel();
        let commands = &self.shared.commands;
        if commands.send(Command::Start { call, op, reply }).is_ok() {
            let _ = commands.send(Command::Abandon(call));
            // Without a runtime there is nobody to run it: the lease runs out instead.
            if tokio::runtime::Handle::try_current().is_ok() {
                self.ensure_running();
            }
        }
    }

    /// Waits for `lock` without limit, in FIFO order. Fails with [`ClientError::Unavailable`]
    /// only if no leader can be reached for [`ClientConfig::deadline`].
    pub async fn lock(&self, lock: impl Into<LockName>) -> Result<LockGuard<T>, ClientError> {
        self.acquire(lock.into(), Wait::Forever, Mode::Exclusive)
            .await
    }

    /// Takes `lock` if it is free, else fails with [`ClientError::Busy`].
    pub async fn try_lock(&self, lock: impl Into<LockName>) -> Result<LockGuard<T>, ClientError> {
        self.acquire(lock.into(), Wait::Try, Mode::Exclusive).await
    }

    /// Waits at most `wait` for `lock` (the whole call, reaching the service included), else
    /// fails with [`ClientError::TimedOut`] (or [`ClientError::Unavailable`] if no leader was
    /// reached at all).
    pub async fn lock_timeout(
        &self,
        lock: impl Into<LockName>,
        wait: Duration,
    ) -> Result<LockGuard<T>, ClientError> {
        self.acquire(lock.into(), Wait::For(wait), Mode::Exclusive)
            .await
    }

    /// Takes `lock` in `mode`, waiting as `wait` says: every kind's acquire.
    async fn acquire(
        &self,
        lock: LockName,
        wait: Wait,
        mode: Mode,
    ) -> Result<LockGuard<T>, ClientError> {
        let op = CallOp::Acquire {
            lock: lock.clone(),
            wait,
            mode,
        };
        match self.call(op).await? {
            (Done::Granted { .. }, Some(held)) => Ok(LockGuard::new(self.clone(), lock, held)),
            (other, _) => Err(unexpected(&other)),
        }
    }

    /// Appends `data` to `file` under `guard`; returns the offset it landed at.
    pub async fn append(
        &self,
        guard: &LockGuard<T>,
        file: impl Into<FileName>,
        data: Vec<u8>,
    ) -> Result<u64, ClientError> {
        let op = CallOp::Append {
            lock: guard.name().clone(),
            token: guard.token(),
            file: file.into(),
            data,
        };
        match self.call(op).await? {
            (Done::Appended { offset }, _) => Ok(offset),
            (other, _) => Err(unexpected(&other)),
        }
    }

    /// Reads the whole of `file` (in as many chunks as needed). Each chunk is linearizable: it
    /// shows every append acknowledged before it was asked for. The leader answers after one
    /// round trip to its followers, without a log entry or a sync (read-index); a read whose
    /// session the leader has not applied yet (a client's first request) goes through the log,
    /// to open it. A file longer than one
    /// chunk (`Limits::max_read`) may grow between chunks.
    pub async fn read(&self, file: impl Into<FileName>) -> Result<Vec<u8>, ClientError> {
        let file = file.into();
        let mut out = Vec::new();
        loop {
            let (data, len) = self.read_at(file.clone(), out.len() as u64).await?;
            let done = data.is_empty() || out.len() as u64 + data.len() as u64 >= len;
            out.extend_from_slice(&data);
            if done {
                return Ok(out);
            }
        }
    }

    /// One chunk of `file` from byte `offset` (at most `Limits::max_read` bytes, empty at or
    /// past the end), with the file's length, linearizable as [`Client::read`]. A file no one
    /// has appended to is [`Rejection::NoSuchFile`](crate::Rejection::NoSuchFile).
    pub async fn read_at(
        &self,
        file: impl Into<FileName>,
        offset: u64,
    ) -> Result<(Vec<u8>, u64), ClientError> {
        let op = CallOp::Read {
            file: file.into(),
            offset,
        };
        match self.call(op).await? {
            (Done::Data { data, len }, _) => Ok((data, len)),
            (other, _) => Err(unexpected(&other)),
        }
    }

    /// Gives the lock back; the next waiter is granted at once.
    pub async fn release(&self, mut guard: LockGuard<T>) -> Result<(), ClientError> {
        guard.disarm();
        let op = CallOp::Release {
            lock: guard.name().clone(),
            token: guard.token(),
        };
        match self.call(op).await? {
            (Done::Released, _) => Ok(()),
            (other, _) => Err(unexpected(&other)),
        }
    }

    /// What `node` says of itself (answered by any node at once, not through the log).
    pub async fn status(&self, node: NodeId) -> Result<NodeStatus, ClientError> {
        match self.call(CallOp::Status { node }).await? {
            (Done::Status(status), _) => Ok(status),
            (other, _) => Err(unexpected(&other)),
        }
    }

    /// Every node's [`Client::status`], asked at once.
    pub async fn cluster_status(&self) -> Vec<(NodeId, Result<NodeStatus, ClientError>)> {
        let nodes = self.shared.cfg.nodes.clone();
        let asks = nodes.iter().map(|node| self.status(*node));
        let answers = futures::future::join_all(asks).await;
        nodes.into_iter().zip(answers).collect()
    }
}

fn unexpected(done: &Done) -> ClientError {
    ClientError::Protocol(format!("unexpected answer {done:?}"))
}
