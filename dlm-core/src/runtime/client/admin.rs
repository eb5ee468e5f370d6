//! The operators' calls: list locks and sessions, revoke a grant, see every member, change the
//! membership. Where the cluster authenticates, all but `members` need a connection that
//! proved the admin secret; otherwise they fail with [`ClientError`] carrying
//! [`crate::Rejection::NotAuthorized`].

use super::{unexpected, Client};
use crate::client::{CallOp, ClientError, Done, MembershipCall};
use crate::introspection::{LockInfo, LocksPage, MembersInfo, SessionInfo, SessionsPage, MAX_PAGE};
use crate::membership::Membership;
use crate::names::LockName;
use crate::protocol::NodeStatus;
use crate::runtime::transport::ClientTransport;
use crate::types::{ClientId, FencingToken, NodeId};

impl<T: ClientTransport> Client<T> {
    /// One page of the locks whose names start with `prefix`, in name order after `after`, at
    /// most `limit` (capped at [`MAX_PAGE`]). Linearizable: the leader answers once a majority
    /// confirmed it still leads. Pass the page's `next` as `after` for the following page.
    pub async fn locks_page(
        &self,
        prefix: &str,
        after: Option<LockName>,
        limit: u32,
    ) -> Result<LocksPage, ClientError> {
        let op = CallOp::Locks {
            prefix: prefix.to_string(),
            after,
            limit,
        };
        match self.call(op).await? {
            (Done::Locks(page), _) => Ok(page),
            (other, _) => Err(unexpected(&other)),
        }
    }

    /// Every lock whose name starts with `prefix` that is held, queued for or delayed, in name
    /// order: [`Client::locks_page`] until the last page. Each page is its own call (bounded by
    /// the deadline), so the whole is not one snapshot: a lock may change between pages.
    pub async fn locks(&self, prefix: &str) -> Result<Vec<LockInfo>, ClientError> {
        let mut all = Vec::new();
        let mut after = None;
        loop {
            let page = self.locks_page(prefix, after, MAX_PAGE).await?;
            all.extend(page.locks);
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(all),
            }
        }
    }

    /// One page of the client sessions in id order after `after`, at most `limit` (capped at
    /// [`MAX_PAGE`]); linearizable as [`Client::locks_page`].
    pub async fn sessions_page(
        &self,
        after: Option<ClientId>,
        limit: u32,
    ) -> Result<SessionsPage, ClientError> {
        match self.call(CallOp::Sessions { after, limit }).await? {
            (Done::Sessions(page), _) => Ok(page),
            (other, _) => Err(unexpected(&other)),
        }
    }

    /// Every client session, page by page (see [`Client::locks`] on consistency).
    pub async fn sessions(&self) -> Result<Vec<SessionInfo>, ClientError> {
        let mut all = Vec::new();
        let mut after = None;
        loop {
            let page = self.sessions_page(after, MAX_PAGE).await?;
            all.extend(page.sessions);
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(all),
            }
        }
    }

    /// Force-releases `lock` whatever its holder, through the log: the next waiter is granted
    /// under a newer token at once, and the old holder's appends under its token are refused
    /// with [`crate::Rejection::Revoked`]. Returns who held it under which token. A lock nobody
    /// holds fails with [`crate::Rejection::NotHeld`]. Retries are deduplicated: a revoke is
    /// applied once even if its answer is lost.
    pub async fn revoke(
        &self,
        lock: impl Into<LockName>,
    ) -> Result<(ClientId, FencingToken), ClientError> {
        let lock = lock.into();
        match self.call(CallOp::Revoke { lock }).await? {
            (Done::Revoked { client, token }, _) => Ok((client, token)),
            (other, _) => Err(unexpected(&other)),
        }
    }

    /// Every configured member's view of itself ([`Client::cluster_status`]), for `dlm
    /// members`: who leads, in which term, how far each has committed and applied.
    pub async fn members(&self) -> Vec<(NodeId, Result<NodeStatus, ClientError>)> {
        self.cluster_status().await
    }

    /// The configuration in force at the leader (voters, learners, their addresses), whether
    /// it has committed, and how far each member's log is known to match the leader's.
    /// Linearizable, as [`Client::locks_page`].
    pub async fn membership(&self) -> Result<MembersInfo, ClientError> {
        match self
            .call(CallOp::Membership(MembershipCall::Members))
            .await?
        {
            (Done::Members(info), _) => Ok(info),
            (other, _) => Err(unexpected(&other)),
        }
    }

    /// Adds node `id`, reachable at `addr`, as a learner: it receives the log and snapshots
    /// but neither votes nor counts towards a commit until [`Client::promote`]d. Resolves with
    /// the new configuration once it is applied. Refusals are typed
    /// ([`crate::Rejection::Membership`]): a change already in progress, an id already a
    /// member, a leader not ready yet. A change is not deduplicated across a lost answer: a
    /// retry then finds it done and is refused as `AlreadyMember`; check [`Client::membership`].
    pub async fn add_learner(
        &self,
        id: NodeId,
        addr: impl Into<String>,
    ) -> Result<Membership, ClientError> {
        let addr = addr.into();
        self.reconfigure(MembershipCall::AddLearner { id, addr })
            .await
    }

    /// Makes learner `id` a voter, once it holds the entry that made it a learner, was heard
    /// within an election time-out and is within `Config::promote_max_lag` of the leader's log
    /// (else `NotCaughtUp`). See [`Client::add_learner`] on refusals and retries.
    pub async fn promote(&self, id: NodeId) -> Result<Membership, ClientError> {
        self.reconfigure(MembershipCall::Promote { id }).await
    }

    /// Takes `id` out of the configuration (a leader removing itself hands over once the
    /// change commits). The last voter cannot be removed (`LastVoter`). See
    /// [`Client::add_learner`] on refusals and retries.
    pub async fn remove(&self, id: NodeId) -> Result<Membership, ClientError> {
        self.reconfigure(MembershipCall::Remove { id }).await
    }

    async fn reconfigure(&self, call: MembershipCall) -> Result<Membership, ClientError> {
        match self.call(CallOp::Membership(call)).await? {
            (Done::Reconfigured(config), _) => Ok(config),
            (other, _) => Err(unexpected(&other)),
        }
    }
}
