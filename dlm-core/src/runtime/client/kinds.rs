//! Shared (read-write) locks and counting semaphores: handles over one name that take it in a
//! mode, with the same three waits as [`Client::lock`], [`Client::try_lock`] and
//! [`Client::lock_timeout`], and the same [`LockGuard`] (its own fencing token and lease per
//! grant, renewed by the client's keep-alives, released on drop).
//!
//! A name keeps its kind while anyone holds or waits for it: taking a name held as another
//! kind, or a semaphore with another number of permits, fails with [`ClientError::Rejected`]
//! carrying [`Rejection::WrongKind`](crate::Rejection::WrongKind). Only a writer's guard may
//! append to the files the lock guards ([`Rejection::NotExclusive`](crate::Rejection::NotExclusive)
//! otherwise).

use super::{Client, ClientError, LockGuard};
use crate::client::Wait;
use crate::names::LockName;
use crate::protocol::Mode;
use crate::runtime::transport::ClientTransport;
use std::time::Duration;

/// A read-write lock: many readers together or one writer alone, granted in arrival order (a
/// waiting writer holds back the readers that come after it, so writers never starve). Made by
/// [`Client::rwlock`]; cheap to clone.
#[derive(Clone, Debug)]
pub struct RwLock<T: ClientTransport> {
    client: Client<T>,
    name: LockName,
}

impl<T: ClientTransport> RwLock<T> {
    /// The lock's name.
    pub fn name(&self) -> &LockName {
        &self.name
    }

    /// Waits for a reader's grant (as [`Client::lock`] waits).
    pub async fn read(&self) -> Result<LockGuard<T>, ClientError> {
        self.take(Wait::Forever, Mode::Read).await
    }

    /// A reader's grant if one is free now (no writer holds or waits), else
    /// [`ClientError::Busy`].
    pub async fn try_read(&self) -> Result<LockGuard<T>, ClientError> {
        self.take(Wait::Try, Mode::Read).await
    }

    /// Waits at most `wait` for a reader's grant, else [`ClientError::TimedOut`].
    pub async fn read_timeout(&self, wait: Duration) -> Result<LockGuard<T>, ClientError> {
        self.take(Wait::For(wait), Mode::Read).await
    }

    /// Waits for the writer's grant.
    pub async fn write(&self) -> Result<LockGuard<T>, ClientError> {
        self.take(Wait::Forever, Mode::Write).await
    }

    /// The writer's grant if the lock is free now, else [`ClientError::Busy`].
    pub async fn try_write(&self) -> Result<LockGuard<T>, ClientError> {
        self.take(Wait::Try, Mode::Write).await
    }

    /// Waits at most `wait` for the writer's grant, else [`ClientError::TimedOut`].
    pub async fn write_timeout(&self, wait: Duration) -> Result<LockGuard<T>, ClientError> {
        self.take(Wait::For(wait), Mode::Write).await
    }

    async fn take(&self, wait: Wait, mode: Mode) -> Result<LockGuard<T>, ClientError> {
        self.client.acquire(self.name.clone(), wait, mode).await
    }
}

/// A counting semaphore of `permits` permits: at most that many holders at once, each with one
/// permit, granted in arrival order; a permit given back (or lost) goes to exactly one waiter.
/// Made by [`Client::semaphore`]; cheap to clone.
#[derive(Clone, Debug)]
pub struct Semaphore<T: ClientTransport> {
    client: Client<T>,
    name: LockName,
    permits: u32,
}

impl<T: ClientTransport> Semaphore<T> {
    /// The semaphore's name.
    pub fn name(&self) -> &LockName {
        &self.name
    }

    /// How many permits it has.
    pub fn permits(&self) -> u32 {
        self.permits
    }

    /// Waits for a permit (as [`Client::lock`] waits).
    pub async fn acquire(&self) -> Result<LockGuard<T>, ClientError> {
        self.take(Wait::Forever).await
    }

    /// A permit if one is free now and nobody waits, else [`ClientError::Busy`].
    pub async fn try_acquire(&self) -> Result<LockGuard<T>, ClientError> {
        self.take(Wait::Try).await
    }

    /// Waits at most `wait` for a permit, else [`ClientError::TimedOut`].
    pub async fn acquire_timeout(&self, wait: Duration) -> Result<LockGuard<T>, ClientError> {
        self.take(Wait::For(wait)).await
    }

    async fn take(&self, wait: Wait) -> Result<LockGuard<T>, ClientError> {
        let mode = Mode::Permit {
            permits: self.permits,
        };
        self.client.acquire(self.name.clone(), wait, mode).await
    }
}

impl<T: ClientTransport> Client<T> {
    /// The read-write lock `name`.
    pub fn rwlock(&self, name: impl Into<LockName>) -> RwLock<T> {
        RwLock {
            client: self.clone(),
            name: name.into(),
        }
    }

    /// The semaphore `name` of `permits` permits (at least 1; the first acquire while nobody
    /// holds or waits for the name fixes the number).
    pub fn semaphore(&self, name: impl Into<LockName>, permits: u32) -> Semaphore<T> {
        Semaphore {
            client: self.clone(),
            name: name.into(),
            permits,
        }
    }
}
