//! Replacing a member in one call, as three single-server changes (add the new node as a
//! learner, promote it once caught up, remove the old one), and the two steps a joining node
//! takes itself. Each step is skipped when the configuration shows it done and is asked again
//! while the leader answers that it cannot take it yet, so a call that failed half-way (or
//! whose answer was lost) can simply be made again.

use super::Client;
use crate::client::ClientError;
use crate::membership::{Membership, MembershipRejection};
use crate::protocol::Rejection;
use crate::runtime::transport::ClientTransport;
use crate::types::{LogIndex, NodeId};
use std::time::Duration;
use tokio::time::Instant;

/// How long [`Client::replace`] waits for the new node to catch up before giving up.
pub const REPLACE_CATCH_UP: Duration = Duration::from_secs(60);

/// How long to wait before asking again a change the leader could not take yet.
const AGAIN_AFTER: Duration = Duration::from_millis(50);

/// The step of a replacement (or a join) that failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplaceStep {
    /// Reading the configuration in force.
    Members,
    /// Adding the new node as a learner.
    AddLearner,
    /// Promoting it to voter.
    Promote,
    /// Removing the old node.
    Remove,
}

/// Why a replacement (or a join) stopped. Every step before the failed one is done and stays
/// done; making the same call again resumes at the failed step.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplaceError {
    /// A step was refused or failed (a typed refusal is in the [`ClientError`]).
    #[error("{step:?} failed: {source}")]
    Step {
        /// The step.
        step: ReplaceStep,
        /// Why.
        source: ClientError,
    },
    /// The new id is already a member, at another address: it names another node.
    #[error("node {id} is already a member at {addr:?}, not {wanted:?}")]
    IdTaken {
        /// The id.
        id: NodeId,
        /// Its address in the configuration.
        addr: String,
        /// The address asked for.
        wanted: String,
    },
    /// The old and the new id are the same.
    #[error("node {0} cannot replace itself")]
    SameNode(NodeId),
    /// The new node did not catch up before the deadline (it is left a learner).
    #[error(
        "learner {id} did not catch up within {waited:?}: its log matches to {matched} of {last}"
    )]
    NotCaughtUp {
        /// The learner.
        id: NodeId,
        /// How far its log matched at the last refusal.
        matched: LogIndex,
        /// The leader's last index then.
        last: LogIndex,
        /// How long it was given.
        waited: Duration,
    },
}

/// Whether a change refused with `e` may be asked again soon: the leader was busy with
/// another change or not ready, or nobody answered in time (a lost answer is found out by the
/// next attempt, which then finds the change done).
fn transient(e: &ClientError) -> bool {
    matches!(
        e,
        ClientError::Rejected(Rejection::Membership(
            MembershipRejection::ChangeInProgress { .. } | MembershipRejection::LeaderNotReady
        )) | ClientError::Unavailable(_)
            | ClientError::TimedOut
    )
}

impl<T: ClientTransport> Client<T> {
    /// Replaces member `old` by node `new_id` at `new_addr`: adds it as a learner, promotes it
    /// once caught up (waiting at most [`REPLACE_CATCH_UP`]), then removes `old`. Returns the
    /// final configuration. See [`Client::replace_within`].
    pub async fn replace(
        &self,
        old: NodeId,
        new_id: NodeId,
        new_addr: impl Into<String>,
    ) -> Result<Membership, ReplaceError> {
        self.replace_within(old, new_id, new_addr, REPLACE_CATCH_UP)
            .await
    }

    /// [`Client::replace`], waiting at most `catch_up` for the new node to catch up. Safe to
    /// call again after it failed: a step the configuration shows done is skipped (the new node
    /// already a learner at that address, or a voter; `old` already gone). A cluster of three
    /// keeps tolerating one failure throughout: it is four voters between the promotion and
    /// the removal.
    pub async fn replace_within(
        &self,
        old: NodeId,
        new_id: NodeId,
        new_addr: impl Into<String>,
        catch_up: Duration,
    ) -> Result<Membership, ReplaceError> {
        if old == new_id {
            return Err(ReplaceError::SameNode(old));
        }
        let new_addr = new_addr.into();
        let deadline = crate::runtime::deadline_after(catch_up);
        let config = self.configuration(deadline).await?;
        if !config.contains(old) && !config.is_voter(new_id) {
            // Nothing of this replacement happened yet and there is nobody to replace.
            let why = MembershipRejection::UnknownMember { id: old };
            return Err(ReplaceError::Step {
                step: ReplaceStep::Remove,
                source: ClientError::Rejected(Rejection::Membership(why)),
            });
        }
        self.ensure_learner(new_id, &new_addr, deadline).await?;
        self.ensure_voter(new_id, deadline, catch_up).await?;
        self.ensure_removed(old, deadline).await
    }

    /// Makes sure `id` is a member at `addr`: adds it as a learner unless it already is one
    /// (a voter too counts). Asks again while the leader cannot take the change yet, until
    /// `deadline`. For a node joining through any member, and for [`Client::replace`].
    pub async fn ensure_learner(
        &self,
        id: NodeId,
        addr: &str,
        deadline: Instant,
    ) -> Result<Membership, ReplaceError> {
        let config = self.configuration(deadline).await?;
        if let Some(member) = config.member(id) {
            if member.addr != addr {
                return Err(ReplaceError::IdTaken {
                    id,
                    addr: member.addr.clone(),
                    wanted: addr.to_string(),
                });
            }
            return Ok(config);
        }
        // A repeated add of the same id and address is answered as done, so a lost answer
        // costs nothing.
        self.until(ReplaceStep::AddLearner, deadline, || {
            self.add_learner(id, addr)
        })
        .await
    }

    /// Makes sure `id` votes: promotes it, asking again while it has not caught up, until
    /// `deadline` (`waited` is what the error reports). Already a voter is done.
    pub async fn ensure_voter(
        &self,
        id: NodeId,
        deadline: Instant,
        waited: Duration,
    ) -> Result<Membership, ReplaceError> {
        loop {
            match self.promote(id).await {
                Ok(config) => return Ok(config),
                Err(ClientError::Rejected(Rejection::Membership(
                    MembershipRejection::AlreadyVoter { .. },
                ))) => return self.configuration(deadline).await,
                Err(ClientError::Rejected(Rejection::Membership(
                    MembershipRejection::NotCaughtUp { matched, last, .. },
                ))) if Instant::now() >= deadline => {
                    return Err(ReplaceError::NotCaughtUp {
                        id,
                        matched,
                        last,
                        waited,
                    })
                }
                Err(ClientError::Rejected(Rejection::Membership(
                    MembershipRejection::NotCaughtUp { .. },
                ))) => {}
                Err(e) if transient(&e) && Instant::now() < deadline => {}
                Err(source) => {
                    let step = ReplaceStep::Promote;
                    return Err(ReplaceError::Step { step, source });
                }
            }
            tokio::time::sleep(AGAIN_AFTER).await;
        }
    }

    /// Makes sure `id` is not a member: removes it, or finds it already gone.
    pub async fn ensure_removed(
        &self,
        id: NodeId,
        deadline: Instant,
    ) -> Result<Membership, ReplaceError> {
        let removed = self
            .until(ReplaceStep::Remove, deadline, || self.remove(id))
            .await;
        match removed {
            Err(ReplaceError::Step {
                source:
                    ClientError::Rejected(Rejection::Membership(MembershipRejection::UnknownMember {
                        ..
                    })),
                ..
            }) => self.configuration(deadline).await,
            other => other,
        }
    }

    /// The configuration in force, asked again while no leader answers, until `deadline`.
    async fn configuration(&self, deadline: Instant) -> Result<Membership, ReplaceError> {
        self.until(ReplaceStep::Members, deadline, || async {
            self.membership().await.map(|info| info.config)
        })
        .await
    }

    /// Makes `call` until it succeeds, fails for good, or `deadline` passes.
    async fn until<F, Fut>(
        &self,
        step: ReplaceStep,
        deadline: Instant,
        mut call: F,
    ) -> Result<Membership, ReplaceError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<Membership, ClientError>>,
    {
        loop {
            match call().await {
                Ok(config) => return Ok(config),
                Err(e) if transient(&e) && Instant::now() < deadline => {
                    tokio::time::sleep(AGAIN_AFTER).await;
                }
                Err(source) => return Err(ReplaceError::Step { step, source }),
            }
        }
    }
}
