//! The operators' calls: list locks and sessions, revoke a grant, see every member. Where the
//! cluster authenticates, the first three need a connection that proved the admin secret;
//! otherwise they fail with [`ClientError`] carrying [`crate::Rejection::NotAuthorized`].

use super::{unexpected, Client};
use crate::client::{CallOp, ClientError, Done};
use crate::introspection::{LockInfo, LocksPage, SessionInfo, SessionsPage, MAX_PAGE};
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
}
