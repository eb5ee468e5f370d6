//! The async client: finds the leader, retries with back-off under a deadline (reusing the
//! request's seq, so the service applies it once), and hands out [`LockGuard`]s whose leases are
//! renewed in the background.

mod config;
mod guard;

pub use config::{ClientConfig, ClientError};
pub use guard::LockGuard;

use super::transport::{ClientTransport, TransportError};
use crate::names::{FileName, LockName};
use crate::protocol::{ClientRequest, Op, Rejection, Reply};
use crate::types::{ClientId, NodeId, Seq};
use guard::{Held, PendingAcquire};
use rand_core::{RngCore, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// A client of a dlm cluster. Cheap to clone; clones share the identity and the locks.
pub struct Client<T: ClientTransport> {
    inner: Arc<Inner<T>>,
}

impl<T: ClientTransport> Clone for Client<T> {
    fn clone(&self) -> Self {
        Client {
            inner: self.inner.clone(),
        }
    }
}

struct Inner<T> {
    transport: T,
    cfg: ClientConfig,
    state: Mutex<State>,
}

struct State {
    /// The session's id. A new session (after the service expired ours) gets a new id, and
    /// seqs start again at 1.
    id: ClientId,
    next_seq: u64,
    /// Seqs sent and not yet answered (or abandoned).
    outstanding: BTreeSet<u64>,
    /// Index into `cfg.nodes` of the node to try first.
    target: usize,
    /// Whether `target` is known to lead (it answered, or was named by a hint).
    leader_known: bool,
    rng: Xoshiro256PlusPlus,
    held: HashMap<LockName, Arc<Held>>,
    /// Acquires in flight, per lock: a keep-alive answer may list their grants before they
    /// are answered, and those grants must not be mistaken for abandoned ones.
    acquiring: HashMap<LockName, usize>,
    /// Counts grants entered into `held`; a keep-alive answer only speaks for grants entered
    /// before it was sent.
    grants: u64,
    /// Withdrawals of abandoned acquires still under way, per lock; each closes when done.
    cancelling: HashMap<LockName, watch::Receiver<()>>,
    keepalive_running: bool,
}

/// A call's place in its session: the seq it is sent under, taken out of the outstanding set
/// however the call ends (even if cancelled), unless that session has been replaced since.
struct SeqDone<'a, T> {
    inner: &'a Inner<T>,
    id: ClientId,
    seq: u64,
}

impl<'a, T> SeqDone<'a, T> {
    /// Numbers a new request in the current session.
    fn issue(inner: &'a Inner<T>) -> Self {
        let mut st = lock_state(&inner.state);
        let seq = st.next_seq;
        st.next_seq += 1;
        st.outstanding.insert(seq);
        SeqDone {
            inner,
            id: st.id,
            seq,
        }
    }
}

impl<T> Drop for SeqDone<'_, T> {
    fn drop(&mut self) {
        let mut st = lock_state(&self.inner.state);
        if st.id == self.id {
            st.outstanding.remove(&self.seq);
        }
    }
}

/// Counts an acquire as in flight until it ends (even if cancelled). It ends after the grant, if
/// any, is entered into `held`, so a keep-alive answer always finds one or the other.
struct Acquiring<'a, T> {
    inner: &'a Inner<T>,
    lock: LockName,
}

impl<'a, T> Acquiring<'a, T> {
    fn start(inner: &'a Inner<T>, lock: &LockName) -> Self {
        *lock_state(&inner.state)
            .acquiring
            .entry(lock.clone())
            .or_default() += 1;
        Acquiring {
            inner,
            lock: lock.clone(),
        }
    }
}

impl<T> Drop for Acquiring<'_, T> {
    fn drop(&mut self) {
        let mut st = lock_state(&self.inner.state);
        if let Some(n) = st.acquiring.get_mut(&self.lock) {
            *n -= 1;
            if *n == 0 {
                st.acquiring.remove(&self.lock);
            }
        }
    }
}

fn lock_state(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// How many attempt time-outs in a row a long-polled acquire sits out at the known leader
/// before it looks for another.
const LONG_POLL_PATIENCE: u32 = 3;

/// Client ids are random so that sessions of different processes never collide.
fn draw_id(rng: &mut Xoshiro256PlusPlus) -> ClientId {
    ClientId::from_random((u128::from(rng.next_u64()) << 64) | u128::from(rng.next_u64()))
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

impl<T: ClientTransport> Client<T> {
    /// A client over `transport` with a fresh random id.
    pub fn new(transport: T, cfg: ClientConfig) -> Client<T> {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(cfg.seed.unwrap_or_else(os_seed));
        let id = draw_id(&mut rng);
        Client {
            inner: Arc::new(Inner {
                transport,
                state: Mutex::new(State {
                    id,
                    next_seq: 1,
                    outstanding: BTreeSet::new(),
                    target: 0,
                    leader_known: false,
                    rng,
                    held: HashMap::new(),
                    acquiring: HashMap::new(),
                    grants: 0,
                    cancelling: HashMap::new(),
                    keepalive_running: false,
                }),
                cfg,
            }),
        }
    }

    /// This client's id: the id of its current session (a new one after the service expired
    /// the last).
    pub fn id(&self) -> ClientId {
        lock_state(&self.inner.state).id
    }

    /// Its configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.cfg
    }

    /// Waits (without limit) for `lock`.
    pub async fn lock(&self, lock: impl Into<LockName>) -> Result<LockGuard<T>, ClientError> {
        self.acquire(lock.into(), Some(Duration::MAX)).await
    }

    /// Takes `lock` if it is free, else fails with [`ClientError::Busy`].
    pub async fn try_lock(&self, lock: impl Into<LockName>) -> Result<LockGuard<T>, ClientError> {
        self.acquire(lock.into(), None).await
    }

    /// Waits at most `wait` for `lock`, else fails with [`ClientError::TimedOut`].
    pub async fn lock_timeout(
        &self,
        lock: impl Into<LockName>,
        wait: Duration,
    ) -> Result<LockGuard<T>, ClientError> {
        self.acquire(lock.into(), Some(wait)).await
    }

    /// Appends `data` to `file` under `guard`; returns the offset it landed at.
    pub async fn append(
        &self,
        guard: &LockGuard<T>,
        file: impl Into<FileName>,
        data: Vec<u8>,
    ) -> Result<u64, ClientError> {
        let op = Op::Append {
            lock: guard.name().clone(),
            token: guard.token(),
            file: file.into(),
            data,
        };
        match self.call(op, None).await? {
            Reply::Appended { offset } => Ok(offset),
            other => Err(unexpected(&other)),
        }
    }

    /// Reads the whole of `file` (in as many chunks as needed). Each chunk is linearizable: it
    /// shows every append acknowledged before it was asked for. The leader answers after one
    /// round trip to its followers, without a log entry or a sync (read-index); only a client's
    /// very first request goes through the log, to open its session. A file longer than one
    /// chunk (`Limits::max_read`) may grow between chunks.
    pub async fn read(&self, file: impl Into<FileName>) -> Result<Vec<u8>, ClientError> {
        let file = file.into();
        let mut out = Vec::new();
        loop {
            let op = Op::Read {
                file: file.clone(),
                offset: out.len() as u64,
            };
            match self.call(op, None).await? {
                Reply::Data { data, len } => {
                    let done = data.is_empty() || out.len() as u64 + data.len() as u64 >= len;
                    out.extend_from_slice(&data);
                    if done {
                        return Ok(out);
                    }
                }
                other => return Err(unexpected(&other)),
            }
        }
    }

    /// Gives the lock back.
    pub async fn release(&self, mut guard: LockGuard<T>) -> Result<(), ClientError> {
        guard.disarm();
        // Still listed as held until answered, so a keep-alive answer that crosses the release
        // confirms the grant instead of taking it for an abandoned one and releasing it again.
        let answer = self.release_op(guard.name().clone(), guard.token()).await;
        self.forget(guard.name(), &guard.held);
        match answer? {
            Reply::Released => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    async fn release_op(
        &self,
        lock: LockName,
        token: crate::types::FencingToken,
    ) -> Result<Reply, ClientError> {
        self.call(Op::Release { lock, token }, None).await
    }

    async fn acquire(
        &self,
        lock: LockName,
        wait: Option<Duration>,
    ) -> Result<LockGuard<T>, ClientError> {
        let lease = self.inner.cfg.lease;
        let mut gave_back = false;
        let (token, safe) = loop {
            let sent = Instant::now();
            let answer = self.acquire_once(&lock, lease, wait).await;
            match answer {
                Ok(Reply::Granted { token, lease }) => {
                    // The lease runs from when the grant was applied, after we sent the request.
                    break (token, self.safe_until(sent, lease));
                }
                Err(ClientError::Rejected(Rejection::AlreadyHeld { token }))
                    if !gave_back && self.untracked(&lock) =>
                {
                    // A grant no guard of ours has: an acquire we gave up on that was granted
                    // after all, or one whose release went unanswered. Give it back (by its
                    // token, so nothing newer can be hit) and ask again: every guard carries a
                    // token no earlier `lock` call returned.
                    tracing::info!(%lock, %token, "releasing a grant no guard holds");
                    let _ = self.release_op(lock.clone(), token).await;
                    gave_back = true;
                }
                Ok(other) => return Err(unexpected(&other)),
                Err(e) => return Err(e),
            }
        };
        let held = {
            let mut st = lock_state(&self.inner.state);
            st.grants += 1;
            let held = Arc::new(Held::new(token, safe, st.grants));
            st.held.insert(lock.clone(), held.clone());
            held
        };
        let guard = LockGuard::new(self.clone(), lock, held);
        if safe <= Instant::now() + lease / 2 {
            // A long wait, or answers lost for long, ate into a conservatively-timed lease:
            // confirm it now, and never hand out a guard already known to be lost.
            self.keep_alive_once().await;
            if guard.is_lost() {
                // Dropping it releases the grant by its token, in case it is in fact still ours.
                drop(guard);
                return Err(ClientError::GrantExpired);
            }
        }
        self.ensure_keepalive();
        Ok(guard)
    }

    /// One acquire request, withdrawn in the background if it is given up before an answer.
    async fn acquire_once(
        &self,
        lock: &LockName,
        lease: Duration,
        wait: Option<Duration>,
    ) -> Result<Reply, ClientError> {
        let op = Op::Acquire {
            lock: lock.clone(),
            lease,
            wait,
        };
        // A new acquire while the abandoned one is still queued would be refused AlreadyWaiting.
        self.cancelled(lock).await;
        let mut pending = PendingAcquire {
            client: self.clone(),
            lock: wait.is_some().then(|| lock.clone()),
            sent_as: Mutex::new(None),
        };
        let _acquiring = Acquiring::start(&self.inner, lock);
        let answer = self.call_tracked(op, wait, Some(&pending.sent_as)).await;
        if answer != Err(ClientError::Unavailable) {
            // Answered: nothing is left queued at the service.
            pending.lock = None;
        }
        answer
    }

    /// Until when a lease granted or renewed by a request sent at `sent` is certainly still in
    /// force: it ran from no earlier than `sent`, and the servers' clocks may run a little fast.
    fn safe_until(&self, sent: Instant, lease: Duration) -> Instant {
        (sent + lease)
            .checked_sub(self.inner.cfg.drift_bound)
            .unwrap_or(sent)
    }

    /// Waits until no withdrawal of an abandoned acquire of `lock` is under way.
    async fn cancelled(&self, lock: &LockName) {
        let pending = lock_state(&self.inner.state).cancelling.get(lock).cloned();
        if let Some(mut done) = pending {
            // Closed (never sent to) when the withdrawal ends.
            let _ = done.changed().await;
        }
    }

    /// Whether a grant of `lock` the service says we hold is one no guard of ours has (and no
    /// other acquire of it is in flight, whose grant it could be).
    fn untracked(&self, lock: &LockName) -> bool {
        let st = lock_state(&self.inner.state);
        !st.held.contains_key(lock) && !st.acquiring.contains_key(lock)
    }

    fn forget(&self, lock: &LockName, held: &Arc<Held>) {
        let mut st = lock_state(&self.inner.state);
        if st.held.get(lock).is_some_and(|h| Arc::ptr_eq(h, held)) {
            st.held.remove(lock);
        }
    }

    fn acked_below(st: &State) -> Seq {
        Seq(st.outstanding.first().copied().unwrap_or(st.next_seq))
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let cfg = &self.inner.cfg;
        let ceiling = cfg
            .backoff_base
            .saturating_mul(1u32 << attempt.min(20))
            .min(cfg.backoff_cap);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        let draw = lock_state(&self.inner.state).rng.next_u64();
        Duration::from_nanos(if nanos == 0 { 0 } else { draw % (nanos + 1) })
    }

    /// Sends one request until it is answered, the answer is final, or the deadline passes.
    async fn call(&self, op: Op, wait: Option<Duration>) -> Result<Reply, ClientError> {
        self.call_tracked(op, wait, None).await
    }

    /// [`Client::call`], noting in `sent_as` the session and seq of each attempt, so that a
    /// queued acquire can be named when it is withdrawn.
    async fn call_tracked(
        &self,
        op: Op,
        wait: Option<Duration>,
        sent_as: Option<&Mutex<Option<(ClientId, Seq)>>>,
    ) -> Result<Reply, ClientError> {
        let inner = &*self.inner;
        let cfg = &inner.cfg;
        if cfg.nodes.is_empty() {
            return Err(ClientError::Unavailable);
        }
        let mut ticket = SeqDone::issue(inner);
        // One fresh session per call at most: a second expiry in a row is reported.
        let mut renewed = false;
        let budget = cfg.deadline.saturating_add(wait.unwrap_or_default());
        let deadline = Instant::now().checked_add(budget);
        let mut attempt = 0u32;
        let mut hops = 0usize;
        // Consecutive attempts the known leader left unanswered.
        let mut silent = 0u32;
        // Nodes whose latest answer in this call was a handshake refusal, and why.
        let mut refused: HashMap<NodeId, String> = HashMap::new();
        loop {
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return Err(ClientError::Unavailable);
            }
            if lock_state(&inner.state).id != ticket.id {
                // Another call replaced the session: this request was never applied under it.
                ticket = SeqDone::issue(inner);
            }
            if let Some(sent_as) = sent_as {
                *sent_as.lock().unwrap_or_else(PoisonError::into_inner) =
                    Some((ticket.id, Seq(ticket.seq)));
            }
            let (node, request) = {
                let st = lock_state(&inner.state);
                let node = cfg.nodes[st.target % cfg.nodes.len()];
                let request = ClientRequest {
                    client: ticket.id,
                    seq: Seq(ticket.seq),
                    acked_below: Self::acked_below(&st),
                    op: op.clone(),
                };
                (node, request)
            };
            let limit = deadline.map_or(cfg.attempt_timeout, |d| {
                cfg.attempt_timeout.min(d.saturating_duration_since(now))
            });
            let outcome = tokio::time::timeout(limit, inner.transport.call(node, request)).await;
            match &outcome {
                Ok(Err(TransportError::Handshake(reason))) => {
                    refused.insert(node, reason.clone());
                    if cfg.nodes.iter().all(|n| refused.contains_key(n)) {
                        return Err(ClientError::Refused(reason.clone()));
                    }
                }
                _ => {
                    refused.remove(&node);
                }
            }
            match outcome {
                Ok(Ok(resp)) => {
                    if resp.client != ticket.id || resp.seq != Seq(ticket.seq) {
                        return Err(ClientError::Protocol(format!(
                            "answer for {}/{} to request {}/{}",
                            resp.client, resp.seq, ticket.id, ticket.seq
                        )));
                    }
                    match resp.result {
                        Err(Rejection::NotLeader { hint }) => {
                            silent = 0;
                            let followed = self.follow_hint(node, hint);
                            hops += 1;
                            if followed && hops <= cfg.nodes.len() {
                                continue;
                            }
                        }
                        Ok(reply) => {
                            self.mark_leader(node);
                            return Ok(reply);
                        }
                        Err(Rejection::SessionExpired) if !renewed => {
                            // The service forgot us (idle past its session TTL, or our first
                            // request was refused before it opened a session). Nothing of this
                            // request was applied; it is sent again in a fresh session.
                            self.mark_leader(node);
                            self.new_session(ticket.id);
                            renewed = true;
                            continue;
                        }
                        Err(other) => {
                            self.mark_leader(node);
                            return Err(other.into());
                        }
                    }
                }
                Ok(Err(e)) => {
                    tracing::debug!(%node, error = %e, "client call failed");
                    self.next_node(node);
                }
                Err(_) => {
                    tracing::debug!(%node, "client call timed out");
                    // Silence from the known leader is retried there at once: a waiting acquire
                    // is long-polled, so silence is what a busy lock sounds like, and moving on
                    // would miss the grant's answer. Only a longer silence means it is gone.
                    let patience = if wait.is_some() {
                        LONG_POLL_PATIENCE
                    } else {
                        1
                    };
                    if lock_state(&inner.state).leader_known && silent < patience {
                        silent += 1;
                        continue;
                    }
                    self.next_node(node);
                }
            }
            hops = 0;
            silent = 0;
            let pause = self.backoff(attempt);
            attempt = attempt.saturating_add(1);
            match deadline {
                Some(d) => tokio::time::sleep_until((Instant::now() + pause).min(d)).await,
                None => tokio::time::sleep(pause).await,
            }
        }
    }

    /// Replaces the session `expired` (unless another call already has): a new id, seqs from
    /// 1, and every lock held in the old session lost, since the service released them when it
    /// expired the session.
    fn new_session(&self, expired: ClientId) {
        let mut st = lock_state(&self.inner.state);
        if st.id != expired {
            return;
        }
        let id = draw_id(&mut st.rng);
        tracing::info!(old = %expired, new = %id, "session expired; starting a new one");
        st.id = id;
        st.next_seq = 1;
        st.outstanding.clear();
        for (name, held) in st.held.drain() {
            tracing::info!(lock = %name, "lock lost with the expired session");
            held.mark_lost();
        }
    }

    fn position(&self, node: NodeId) -> Option<usize> {
        self.inner.cfg.nodes.iter().position(|n| *n == node)
    }

    fn mark_leader(&self, node: NodeId) {
        if let Some(i) = self.position(node) {
            let mut st = lock_state(&self.inner.state);
            st.target = i;
            st.leader_known = true;
        }
    }

    /// Moves to the hinted leader; false if there is no usable hint (then try the next node).
    fn follow_hint(&self, asked: NodeId, hint: Option<NodeId>) -> bool {
        match hint.filter(|h| *h != asked).and_then(|h| self.position(h)) {
            Some(i) => {
                let mut st = lock_state(&self.inner.state);
                st.target = i;
                st.leader_known = true;
                true
            }
            None => {
                self.next_node(asked);
                false
            }
        }
    }

    fn next_node(&self, failed: NodeId) {
        let mut st = lock_state(&self.inner.state);
        let n = self.inner.cfg.nodes.len();
        if self.inner.cfg.nodes[st.target % n] == failed {
            st.target = (st.target + 1) % n;
        }
        st.leader_known = false;
    }
}

fn unexpected(reply: &Reply) -> ClientError {
    ClientError::Protocol(format!("unexpected answer {reply:?}"))
}
