//! Watching a lock's events, and tailing a guarded file.
//!
//! A [`LockWatch`] long-polls the leader: each call asks for the events after the last
//! position it reached and waits at the leader (half an attempt time-out) when there are none.
//! The position is kept by the watch, not by a connection, so after a reconnect, a leader
//! change or an error it asks the next leader from the same place: no event is lost or
//! repeated. A watch that fell behind what the leaders keep gets the lock's current state,
//! marked [`WatchUpdate::State::compacted`], and goes on from there.

use super::{unexpected, Client, ClientError};
use crate::client::{CallOp, Done};
use crate::names::{FileName, LockName};
use crate::protocol::{EventPosition, LockEvent, LockView, WatchFrom};
use crate::runtime::transport::ClientTransport;
use std::collections::VecDeque;
use std::time::Duration;

/// What a [`LockWatch`] reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatchUpdate {
    /// The lock's whole state at `at`: first for a watch from now, and whenever the watch fell
    /// behind the events the leader keeps (`compacted`), in which case the events between its
    /// last position and `at` are not reported, only their result.
    State {
        /// Holders, queue length and proclaimed value.
        view: LockView,
        /// The position it describes; events follow from there.
        at: EventPosition,
        /// Whether it stands in for events no longer kept.
        compacted: bool,
    },
    /// One event, in commit order, each exactly once.
    Event(LockEvent),
}

/// A subscription to one lock's events. Made by [`Client::watch_lock`] or
/// [`Client::watch_lock_from`]; call [`LockWatch::next`] in a loop.
#[derive(Debug)]
pub struct LockWatch<T: ClientTransport> {
    client: Client<T>,
    lock: LockName,
    position: Option<EventPosition>,
    pub(super) ready: VecDeque<WatchUpdate>,
}

/// How long one long-poll may wait at the leader: well inside an attempt, so that the client
/// does not take the wait for a silent node.
fn poll_wait(client_attempt: Duration) -> Duration {
    client_attempt / 2
}

impl<T: ClientTransport> LockWatch<T> {
    /// The next update, waiting as long as it takes for one. An error (no leader within the
    /// deadline, say) leaves the watch where it was: calling `next` again resumes from the
    /// last update returned.
    pub async fn next(&mut self) -> Result<WatchUpdate, ClientError> {
        loop {
            if let Some(update) = self.ready.pop_front() {
                return Ok(update);
            }
            self.poll(poll_wait(self.client.config().attempt_timeout))
                .await?;
        }
    }

    /// The position of the last update returned or queued; pass it to
    /// [`Client::watch_lock_from`] to resume elsewhere (in another process, say).
    pub fn position(&self) -> Option<EventPosition> {
        self.position
    }

    /// The watched lock.
    pub fn lock(&self) -> &LockName {
        &self.lock
    }

    /// The updates as a [`futures::Stream`]. An error is yielded and the stream goes on from
    /// where it was (drop it to stop).
    pub fn into_stream(self) -> impl futures::Stream<Item = Result<WatchUpdate, ClientError>> {
        futures::stream::unfold(self, |mut watch| async move {
            let next = watch.next().await;
            Some((next, watch))
        })
    }

    /// Asks the leader once, without waiting at the leader for events (it answers what it
    /// has, or nothing new, at once); queues what it reports.
    pub(super) async fn poll_now(&mut self) -> Result<(), ClientError> {
        self.poll(Duration::ZERO).await
    }

    /// Asks the leader once, letting the answer wait there up to `wait` for an event; queues
    /// what it reports.
    async fn poll(&mut self, wait: Duration) -> Result<(), ClientError> {
        let from = self.position.map_or(WatchFrom::Now, WatchFrom::After);
        let op = CallOp::WatchLock {
            lock: self.lock.clone(),
            from,
            wait,
        };
        let page = match self.client.call(op).await? {
            (Done::Watched(page), _) => page,
            (other, _) => return Err(unexpected(&other)),
        };
        if let Some(view) = page.state {
            self.ready.push_back(WatchUpdate::State {
                view,
                at: page.state_at,
                compacted: page.compacted,
            });
        }
        self.ready
            .extend(page.events.into_iter().map(WatchUpdate::Event));
        self.position = Some(page.resume);
        Ok(())
    }
}

impl<T: ClientTransport> Client<T> {
    /// Watches `lock` from now: the first update is its current state, then every event.
    pub fn watch_lock(&self, lock: impl Into<LockName>) -> LockWatch<T> {
        LockWatch {
            client: self.clone(),
            lock: lock.into(),
            position: None,
            ready: VecDeque::new(),
        }
    }

    /// Watches `lock` from the event after `position` (a [`LockWatch::position`]).
    pub fn watch_lock_from(
        &self,
        lock: impl Into<LockName>,
        position: EventPosition,
    ) -> LockWatch<T> {
        LockWatch {
            position: Some(position),
            ..self.watch_lock(lock)
        }
    }

    /// The bytes of `file` from `offset` on, as soon as there are some: waits (long-polling
    /// the leader) until the file grows past `offset`, or returns no bytes after `wait`. Returns
    /// the bytes (at most one read chunk) and the file's length. Call again from
    /// `offset + bytes.len()` for a `tail -f`; appends are never missed or repeated, because
    /// the offset is the position.
    pub async fn tail(
        &self,
        file: impl Into<FileName>,
        offset: u64,
        wait: Duration,
    ) -> Result<(Vec<u8>, u64), ClientError> {
        let file = file.into();
        let until = crate::runtime::deadline_after(wait);
        loop {
            let left = until.saturating_duration_since(tokio::time::Instant::now());
            let op = CallOp::TailFile {
                file: file.clone(),
                offset,
                wait: left.min(poll_wait(self.config().attempt_timeout)),
            };
            match self.call(op).await? {
                (Done::Data { data, len }, _) => {
                    if !data.is_empty() || left.is_zero() {
                        return Ok((data, len));
                    }
                }
                (other, _) => return Err(unexpected(&other)),
            }
        }
    }
}
