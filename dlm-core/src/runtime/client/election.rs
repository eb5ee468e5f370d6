//! Leader election for applications, on the lock queue: candidates win in the order they
//! campaigned, the leader holds an ordinary grant (fencing token, lease, keep-alives), and
//! observers follow who leads through a watch of the lock.

use super::watch::{LockWatch, WatchUpdate};
use super::{unexpected, Client, ClientError, LockGuard};
use crate::client::{CallOp, Done};
use crate::names::LockName;
use crate::protocol::{LockChange, LockView};
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
    pub async fn campaign(&self, value: Vec<u8>) -> Result<Leadership<T>, ClientError> {
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
    pub async fn next(&mut self) -> Result<Option<Leader>, ClientError> {
        loop {
            let before = self.leader.clone();
            match self.watch.next().await? {
                WatchUpdate::State { view, .. } => self.leader = leader_of(&view),
                WatchUpdate::Event(event) => {
                    // One entry's events together (a resignation and the next grant, say), so
                    // that observers see where the entry left the election, not a gap.
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
                }
            }
            if !self.started || self.leader != before {
                self.started = true;
                return Ok(self.leader.clone());
            }
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
