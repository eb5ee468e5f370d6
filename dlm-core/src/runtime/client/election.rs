//! Leader election for applications, on the lock queue: candidates win in the order they
//! campaigned, the leader holds an ordinary grant (fencing token, lease, keep-alives), and
//! observers follow who leads through a watch of the lock.

use super::watch::{LockWatch, WatchUpdate};
use super::{unexpected, Client, ClientError, LockGuard};
use crate::client::{CallOp, Done};
use crate::names::LockName;
use crate::protocol::{LockChange, LockView, Rejection, MAX_VALUE};
use crate::runtime::transport::ClientTransport;
use crate::types::{ClientTag, FencingToken};

/// An election: one name, any number of candidates and observers. Made by
/// [`Client::election`]; cheap to clone.
#[derive(Clone, Debug)]
pub struct Election<T: ClientTransport> {
    client: Client<T>,
    name: LockName,
}

/// Who leads an election, as observers see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Leader {
    /// The leading client, by tag (compare with [`Client::id`]`().tag()`).
    pub client: ClientTag,
    /// Its grant's fencing token: present it to whatever the leader acts on.
    pub token: FencingToken,
    /// What it proclaimed; `None` between its grant and its first proclaim (a campaign
    /// proclaims before it returns, so only a candidate that crashed in between stays so).
    pub value: Option<Vec<u8>>,
}

/// This client leads an election. Dropping it resigns in the background, as a dropped
/// [`LockGuard`] releases.
#[derive(Debug)]
pub struct Leadership<T: ClientTransport> {
    guard: LockGuard<T>,
}

impl<T: ClientTransport> Election<T> {
    /// The election's name (the lock it runs on).
    pub fn name(&self) -> &LockName {
        &self.name
    }

    /// Stands for election and waits, in FIFO order behind earlier candidates, until this
    /// client leads; then proclaims `value` and returns. Dropping the future withdraws the
    /// candidacy (or resigns, if it had just won).
    ///
    /// A `value` over [`crate::MAX_VALUE`] bytes fails at once with
    /// [`crate::Rejection::ValueTooLarge`], before the candidate queues: it could never be
    /// proclaimed, and a candidate that waited its turn for nothing would be shown to the
    /// observers as a leader without a value.
    pub async fn campaign(&self, value: Vec<u8>) -> Result<Leadership<T>, ClientError> {
        check_value(&value)?;
        let guard = self.client.lock(self.name.clone()).await?;
        let leadership = Leadership { guard };
        leadership.proclaim(value).await?;
        Ok(leadership)
    }

    /// Follows who leads, from now: see [`LeaderObserver::next`].
    pub fn observe(&self) -> LeaderObserver<T> {
        LeaderObserver {
            watch: self.client.watch_lock(self.name.clone()),
            leader: None,
            started: false,
        }
    }
}

impl<T: ClientTransport> Leadership<T> {
    /// The grant's fencing token.
    pub fn token(&self) -> FencingToken {
        self.guard.token()
    }

    /// Until when this client certainly still leads (its lease, less the drift bound), unless
    /// renewed; acting as leader after it is unsafe without the token's fencing.
    pub fn safe_until(&self) -> std::time::Instant {
        self.guard.safe_until()
    }

    /// The grant underneath (to append under it, or to wait for its loss).
    pub fn guard(&self) -> &LockGuard<T> {
        &self.guard
    }

    /// The grant underneath, to hold (and release) as a lock: releasing it resigns.
    pub fn into_guard(self) -> LockGuard<T> {
        self.guard
    }

    /// Shows `value` (at most [`crate::MAX_VALUE`] bytes) to the observers instead of the
    /// last one. Fails with [`crate::Rejection::StaleToken`] or `NotHolder` if this client no
    /// longer leads.
    pub async fn proclaim(&self, value: Vec<u8>) -> Result<(), ClientError> {
        check_value(&value)?;
        let op = CallOp::Proclaim {
            lock: self.guard.name().clone(),
            token: self.guard.token(),
            value,
        };
        match self.guard.client().call(op).await? {
            (Done::Proclaimed, _) => Ok(()),
            (other, _) => Err(unexpected(&other)),
        }
    }

    /// Steps down: the next candidate leads at once.
    pub async fn resign(self) -> Result<(), ClientError> {
        let client = self.guard.client().clone();
        client.release(self.guard).await
    }
}

/// Follows an election's leader. Made by [`Election::observe`].
#[derive(Debug)]
pub struct LeaderObserver<T: ClientTransport> {
    watch: LockWatch<T>,
    leader: Option<Leader>,
    started: bool,
}

impl<T: ClientTransport> LeaderObserver<T> {
    /// The leader after the next change (who leads, or what it proclaimed), `None` while
    /// nobody leads. The first call returns the leader as of now. Changes come in commit
    /// order, each once, across reconnects and leader changes of the cluster.
    ///
    /// One log entry's events are taken together (a resignation and the next grant, say), so
    /// that observers see where each entry left the election, never a gap inside one: if the
    /// events fetched so far end inside an entry (a watch page holds at most
    /// [`crate::MAX_EVENTS_PER_PAGE`] events, and ends wherever that falls), the rest of the
    /// entry is fetched before anything is reported.
    pub async fn next(&mut self) -> Result<Option<Leader>, ClientError> {
        // What was last reported: an entry that leaves the election as it was is not a change.
        let before = self.leader.clone();
        loop {
            self.fetch_whole_entry().await?;
            match self.watch.next().await? {
                WatchUpdate::State { view, .. } => self.leader = leader_of(&view),
                WatchUpdate::Event(event) => {
                    let index = event.at.index;
                    self.apply(event.change);
                    while let Some(WatchUpdate::Event(next)) = self.watch.ready.front() {
                        if next.at.index != index {
                            break;
                        }
                        let change = next.change.clone();
                        self.watch.ready.pop_front();
                        self.apply(change);
                    }
                    if matches!(self.watch.ready.front(), Some(WatchUpdate::State { .. })) {
                        // The watch fell behind inside this entry: the state that follows
                        // says where the entry (and those after it) left the election.
                        continue;
                    }
                }
            }
            if !self.started || self.leader != before {
                self.started = true;
                return Ok(self.leader.clone());
            }
        }
    }

    /// Fetches on while the queued updates start with an event whose entry may have more
    /// events than are queued: the last page ended at one of its events rather than after
    /// the entry. Nothing is taken from the queue, so an error leaves the observer where it
    /// was.
    async fn fetch_whole_entry(&mut self) -> Result<(), ClientError> {
        loop {
            let Some(WatchUpdate::Event(first)) = self.watch.ready.front() else {
                return Ok(());
            };
            let index = first.at.index;
            let whole = self
                .watch
                .position()
                .is_none_or(|reached| reached.index != index || reached.is_end());
            if whole {
                return Ok(());
            }
            self.watch.poll_now().await?;
        }
    }

    /// The leader as of the last change returned.
    pub fn current(&self) -> Option<&Leader> {
        self.leader.as_ref()
    }

    /// The changes as a [`futures::Stream`]: the leader now, then after each change. An error
    /// is yielded and the stream goes on from where it was (drop it to stop).
    pub fn into_stream(self) -> impl futures::Stream<Item = Result<Option<Leader>, ClientError>> {
        futures::stream::unfold(self, |mut observer| async move {
            let next = observer.next().await;
            Some((next, observer))
        })
    }

    fn apply(&mut self, change: LockChange) {
        match change {
            LockChange::Granted { client, token, .. } => {
                self.leader = Some(Leader {
                    client,
                    token,
                    value: None,
                });
            }
            LockChange::Released { token }
            | LockChange::Expired { token }
            | LockChange::Revoked { token } => {
                if self.leader.as_ref().is_some_and(|l| l.token == token) {
                    self.leader = None;
                }
            }
            LockChange::Proclaimed { token, value } => {
                if let Some(leader) = self.leader.as_mut().filter(|l| l.token == token) {
                    leader.value = Some(value);
                }
            }
            LockChange::Queue { .. } => {}
        }
    }
}

/// Refuses a value no proclaim would accept, before anything is sent.
fn check_value(value: &[u8]) -> Result<(), ClientError> {
    if value.len() > MAX_VALUE {
        return Err(ClientError::Rejected(Rejection::ValueTooLarge {
            max: MAX_VALUE,
        }));
    }
    Ok(())
}

fn leader_of(view: &LockView) -> Option<Leader> {
    let holder = view.holders.first()?;
    let value = view
        .proclaimed
        .as_ref()
        .filter(|(token, _)| *token == holder.token)
        .map(|(_, value)| value.clone());
    Some(Leader {
        client: holder.client,
        token: holder.token,
        value,
    })
}

impl<T: ClientTransport> Client<T> {
    /// The election named `name` (an exclusive lock under the hood: do not take the same name
    /// as a lock for anything else).
    pub fn election(&self, name: impl Into<LockName>) -> Election<T> {
        Election {
            client: self.clone(),
            name: name.into(),
        }
    }
}
