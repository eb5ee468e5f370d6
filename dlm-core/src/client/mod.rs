//! The client as a deterministic state machine: [`ClientCore`] numbers requests, retries them
//! with back-off and full jitter, follows leader hints, long-polls waiting acquires, bounds every
//! call by a deadline, renews the leases of held locks, notices lost ones, starts a new session
//! when the service expired the old one, and undoes what an abandoned call left behind.
//!
//! It has the shape of [`crate::Node`]: feed it [`ClientEvent`]s with the time through
//! [`ClientCore::handle`], drain [`ClientOutput`]s with [`ClientCore::poll_output`] after every
//! call, and call `handle` with [`ClientEvent::Tick`] no later than
//! [`ClientCore::next_deadline`]. It never reads a clock, touches a socket or draws OS
//! randomness: the tokio [`crate::runtime::Client`] and the simulator's clients both drive it.
//!
//! ```
//! use dlm_core::client::{CallId, CallOp, ClientConfig, ClientCore, ClientEvent, ClientOutput, Wait};
//! use dlm_core::{NodeId, Time};
//! let mut core = ClientCore::new(ClientConfig::new([NodeId(1)]), 7);
//! let op = CallOp::Acquire { lock: "orders".into(), wait: Wait::Forever };
//! core.handle(Time::ZERO, ClientEvent::Start { call: CallId(1), op });
//! while let Some(output) = core.poll_output() {
//!     // Send: hand the request to the transport, feed its answer back as ClientEvent::Answer
//!     // (or ClientEvent::Failed). Done: the call's result. Renewed, Lost: a held lock's news.
//!     assert!(matches!(output, ClientOutput::Send { .. }));
//! }
//! let _wake_at = core.next_deadline();
//! ```

mod call;
mod config;
mod error;
mod held;
mod route;

pub use call::{CallId, CallOp, Done, Wait};
pub use config::{ClientConfig, DriftBound};
pub use error::{ClientError, NodeCause, Unreachable};

use crate::names::LockName;
use crate::protocol::{ClientRequest, ClientResponse, Op, Rejection, Reply};
use crate::types::{ClientId, FencingToken, NodeId, Seq, Time};
use call::{Purpose, Request};
use held::Held;
use rand_core::{RngCore, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use route::Route;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

/// Something that happened to the client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientEvent {
    /// The caller starts a call under its own id.
    Start {
        /// The caller's id for it.
        call: CallId,
        /// What to do.
        op: CallOp,
    },
    /// The caller no longer waits for this call (its future was dropped or timed out). The core
    /// undoes what the call may have left at the service: an acquire is withdrawn, and given
    /// back if it was granted; a release goes on in the background; an append or read is
    /// forgotten (it may still take effect once, never twice).
    Abandon(CallId),
    /// A node answered a request.
    Answer {
        /// The node.
        node: NodeId,
        /// Its answer.
        response: ClientResponse,
    },
    /// A request could not be delivered to `node`, or its connection broke before the answer.
    Failed {
        /// The node.
        node: NodeId,
        /// The request's session.
        client: ClientId,
        /// The request's seq.
        seq: Seq,
        /// What happened.
        cause: NodeCause,
    },
    /// Time passed.
    Tick,
}

/// What the core asks of its driver, or tells it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientOutput {
    /// Send `request` to `node` and report the answer or failure.
    Send {
        /// The node.
        node: NodeId,
        /// The request.
        request: ClientRequest,
    },
    /// A call ended.
    Done {
        /// The caller's id for it.
        call: CallId,
        /// How.
        result: Result<Done, ClientError>,
    },
    /// A held lock's lease was renewed: it is certainly held until `safe_until`.
    Renewed {
        /// The lock.
        lock: LockName,
        /// The grant's token.
        token: FencingToken,
        /// The new end of its safe window.
        safe_until: Time,
    },
    /// A held lock is lost: the service no longer lists it, its lease ran out unconfirmed, or
    /// the session it was held in expired.
    Lost {
        /// The lock.
        lock: LockName,
        /// The grant's token.
        token: FencingToken,
    },
}

/// The sans-IO client. See the [module docs](self).
pub struct ClientCore {
    cfg: ClientConfig,
    rng: Xoshiro256PlusPlus,
    session: ClientId,
    next_seq: Seq,
    /// Every numbered request not yet settled, under the current session.
    requests: BTreeMap<Seq, Request>,
    /// Callers' calls in flight and their requests.
    calls: HashMap<CallId, Seq>,
    held: Held,
    route: Route,
    keepalive_at: Time,
    out: VecDeque<ClientOutput>,
    now: Time,
    /// Requests the service gave a final answer to.
    answered: u64,
}

impl std::fmt::Debug for ClientCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCore")
            .field("session", &self.session)
            .field("next_seq", &self.next_seq)
            .field("requests", &self.requests.len())
            .field("held", &self.held.len())
            .finish_non_exhaustive()
    }
}

/// Client ids are random so that sessions of different processes never collide.
fn draw_id(rng: &mut Xoshiro256PlusPlus) -> ClientId {
    ClientId::from_random((u128::from(rng.next_u64()) << 64) | u128::from(rng.next_u64()))
}

impl ClientCore {
    /// A client with a session id and jitter drawn from `seed`.
    pub fn new(cfg: ClientConfig, seed: u64) -> ClientCore {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let session = draw_id(&mut rng);
        let route = Route::new(cfg.nodes.clone());
        ClientCore {
            cfg,
            rng,
            session,
            next_seq: Seq(1),
            requests: BTreeMap::new(),
            calls: HashMap::new(),
            held: Held::default(),
            route,
            keepalive_at: Time::MAX,
            out: VecDeque::new(),
            now: Time::ZERO,
            answered: 0,
        }
    }

    /// The current session's id (a new one after the service expired the last).
    pub fn session(&self) -> ClientId {
        self.session
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.cfg
    }

    /// Whether nothing is in flight and nothing is held: a driver whose callers are all gone
    /// may stop once this is true.
    pub fn is_idle(&self) -> bool {
        self.requests.is_empty() && self.held.is_empty()
    }

    /// The locks held, with their tokens and safe windows.
    pub fn held(&self) -> impl Iterator<Item = (&LockName, FencingToken, Time)> {
        self.held.iter()
    }

    /// How many requests the service has answered finally (calls, keep-alives, withdrawals
    /// and give-backs; not refusals that only redirect).
    pub fn answered(&self) -> u64 {
        self.answered
    }

    /// The next output, if any.
    pub fn poll_output(&mut self) -> Option<ClientOutput> {
        self.out.pop_front()
    }

    /// When to call [`ClientCore::handle`] with [`ClientEvent::Tick`] at the latest.
    pub fn next_deadline(&self) -> Time {
        let requests = self.requests.values().map(Request::wake_at).min();
        let keepalive = if self.held.is_empty() {
            Time::MAX
        } else {
            self.keepalive_at
        };
        requests
            .unwrap_or(Time::MAX)
            .min(keepalive)
            .min(self.held.earliest_end())
    }

    /// Feeds one event at `now`; outputs queue up for [`ClientCore::poll_output`].
    pub fn handle(&mut self, now: Time, event: ClientEvent) {
        self.now = self.now.max(now);
        match event {
            ClientEvent::Start { call, op } => self.start(call, op),
            ClientEvent::Abandon(call) => self.abandon(call),
            ClientEvent::Answer { node, response } => self.on_answer(node, response),
            ClientEvent::Failed {
                node,
                client,
                seq,
                cause,
            } => {
                if client == self.session {
                    self.on_failed(node, seq, cause);
                }
            }
            ClientEvent::Tick => {}
        }
        self.run_timers();
    }

    fn start(&mut self, call: CallId, op: CallOp) {
        if self.calls.contains_key(&call) {
            let error = ClientError::Protocol(format!("{call} is already in flight"));
            self.done(call, Err(error));
            return;
        }
        if self.cfg.nodes.is_empty() {
            let error = ClientError::Unavailable(Unreachable { causes: Vec::new() });
            self.done(call, Err(error));
            return;
        }
        let now = self.now;
        let reach = now + self.cfg.deadline;
        let (op, give_up_at, contact_by, pinned) = match op {
            CallOp::Acquire { lock, wait } => {
                let (wait, give_up_at, contact_by) = match wait {
                    Wait::Try => (None, reach, Time::MAX),
                    Wait::For(d) => (Some(d), now + d, reach),
                    Wait::Forever => (Some(Duration::MAX), Time::MAX, reach),
                };
                let lease = self.cfg.lease;
                (
                    Op::Acquire { lock, lease, wait },
                    give_up_at,
                    contact_by,
                    None,
                )
            }
            CallOp::Release { lock, token } => {
                (Op::Release { lock, token }, reach, Time::MAX, None)
            }
            CallOp::Append {
                lock,
                token,
                file,
                data,
            } => {
                let op = Op::Append {
                    lock,
                    token,
                    file,
                    data,
                };
                (op, reach, Time::MAX, None)
            }
            CallOp::Read { file, offset } => (Op::Read { file, offset }, reach, Time::MAX, None),
            CallOp::Status { node } => (Op::Status, reach, Time::MAX, Some(node)),
        };
        let deferred = matches!(op, Op::Acquire { .. }) && self.withdrawing(op_lock(&op));
        let seq = self.number(Purpose::Call(call), op, give_up_at);
        self.calls.insert(call, seq);
        if let Some(r) = self.requests.get_mut(&seq) {
            r.contact_by = contact_by;
            r.pinned = pinned;
            r.deferred = deferred;
        }
        self.send_if_ready(seq);
    }

    /// Whether a withdrawal or give-back of `lock` is under way, which a new acquire of it
    /// must wait for (the service would refuse it as already waiting, or already held).
    fn withdrawing(&self, lock: Option<&LockName>) -> bool {
        let Some(lock) = lock else { return false };
        self.requests.values().any(|r| {
            matches!(
                r.purpose,
                Purpose::Abandoned | Purpose::Cancel { .. } | Purpose::GiveBack
            ) && r.lock() == Some(lock)
        })
    }

    /// Numbers a new request in the current session; it is sent by the caller.
    fn number(&mut self, purpose: Purpose, op: Op, give_up_at: Time) -> Seq {
        let seq = self.next_seq;
        self.next_seq = seq.next();
        let request = Request::new(purpose, op, self.session, seq, give_up_at);
        self.requests.insert(seq, request);
        seq
    }

    /// Gives request `seq` the next seq (it was never applied under the old one, or applying
    /// it twice is harmless), and returns it.
    fn renumber(&mut self, seq: Seq) -> Seq {
        let Some(mut r) = self.requests.remove(&seq) else {
            return seq;
        };
        let renumbered = self.next_seq;
        self.next_seq = renumbered.next();
        r.renumber(renumbered);
        if let Some(call) = r.call() {
            self.calls.insert(call, renumbered);
        }
        self.requests.insert(renumbered, r);
        renumbered
    }

    fn acked_below(&self) -> Seq {
        self.requests
            .keys()
            .next()
            .copied()
            .unwrap_or(self.next_seq)
    }

    fn send_if_ready(&mut self, seq: Seq) {
        if self.requests.get(&seq).is_some_and(|r| !r.deferred) {
            self.send(seq);
        }
    }

    fn send(&mut self, seq: Seq) {
        let acked_below = self.acked_below();
        let now = self.now;
        let attempt_timeout = self.cfg.attempt_timeout;
        let target = self.route.target();
        let Some(r) = self.requests.get_mut(&seq) else {
            return;
        };
        let node = r.pinned.unwrap_or(target);
        r.at = Some(node);
        r.silent_at = now + attempt_timeout;
        r.send_at = Time::MAX;
        r.first_sent.get_or_insert(now);
        let request = ClientRequest {
            client: r.session,
            seq,
            acked_below,
            op: r.op.clone(),
        };
        self.out.push_back(ClientOutput::Send { node, request });
    }

    /// Schedules the next attempt after a back-off with full jitter.
    fn back_off(&mut self, seq: Seq) {
        let cfg = &self.cfg;
        let Some(r) = self.requests.get_mut(&seq) else {
            return;
        };
        let ceiling = cfg
            .backoff_base
            .saturating_mul(1u32 << r.failures.min(20))
            .min(cfg.backoff_cap);
        r.failures = r.failures.saturating_add(1);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        let draw = self.rng.next_u64();
        let pause = Duration::from_nanos(if nanos == 0 { 0 } else { draw % (nanos + 1) });
        r.at = None;
        r.hops = 0;
        r.send_at = self.now + pause;
    }

    fn on_answer(&mut self, node: NodeId, response: ClientResponse) {
        if response.client != self.session {
            return;
        }
        let seq = response.seq;
        let Some(r) = self.requests.get_mut(&seq) else {
            return;
        };
        if r.purpose == Purpose::Abandoned {
            // Its cancel decides what becomes of it.
            return;
        }
        match response.result {
            Err(Rejection::NotLeader { hint }) => {
                if r.at != Some(node) {
                    // A late answer to an earlier attempt: the current one speaks for now.
                    return;
                }
                r.causes.remove(&node);
                let hint = hint.filter(|h| *h != node && self.cfg.nodes.contains(h));
                match hint {
                    Some(leader) if r.pinned.is_none() && r.hops < self.cfg.nodes.len() => {
                        r.hops += 1;
                        r.touch_leader(self.now, self.cfg.deadline);
                        self.route.follow(leader);
                        self.send(seq);
                    }
                    other => {
                        if other.is_none() {
                            r.causes.insert(node, NodeCause::NoLeader);
                        } else {
                            r.touch_leader(self.now, self.cfg.deadline);
                        }
                        self.route.moved_from(node);
                        self.back_off(seq);
                    }
                }
            }
            Err(Rejection::SessionExpired) if !r.renewed => {
                // The service forgot us (idle past its session TTL): nothing of this request
                // was applied. Everything goes again in a fresh session.
                r.renewed = true;
                self.route.answered_by(node);
                self.new_session();
            }
            result => {
                if r.pinned.is_none() {
                    self.route.answered_by(node);
                }
                self.settle(seq, result);
            }
        }
    }

    fn on_failed(&mut self, node: NodeId, seq: Seq, cause: NodeCause) {
        let nodes = &self.cfg.nodes;
        let Some(r) = self.requests.get_mut(&seq) else {
            return;
        };
        if r.at != Some(node) || r.purpose == Purpose::Abandoned {
            return;
        }
        r.causes.insert(node, cause.clone());
        let refused_everywhere = match r.pinned {
            Some(_) => matches!(cause, NodeCause::Refused(_)),
            None => nodes
                .iter()
                .all(|n| matches!(r.causes.get(n), Some(NodeCause::Refused(_)))),
        };
        if let (true, NodeCause::Refused(reason)) = (refused_everywhere, cause) {
            // Another cluster, protocol version or secret: retrying cannot help.
            self.fail(seq, ClientError::Refused(reason));
            return;
        }
        self.route.moved_from(node);
        self.back_off(seq);
    }

    /// Acts on every request whose time has come, the keep-alive schedule and lease ends.
    fn run_timers(&mut self) {
        let now = self.now;
        let due: Vec<Seq> = if self.requests.values().any(|r| r.wake_at() <= now) {
            let due = self.requests.iter().filter(|(_, r)| r.wake_at() <= now);
            due.map(|(seq, _)| *seq).collect()
        } else {
            Vec::new()
        };
        for seq in due {
            let Some(r) = self.requests.get_mut(&seq) else {
                continue;
            };
            if now >= r.give_up_at || now >= r.contact_by {
                self.give_up(seq);
            } else if let Some(node) = r.at.filter(|_| now >= r.silent_at) {
                r.causes.insert(node, NodeCause::Silent);
                if r.pinned.is_some() {
                    self.back_off(seq);
                    continue;
                }
                let again = r.silences == 0 && !r.waits() && self.route.leader_known();
                if again {
                    // One lost message is the likeliest cause: try the leader once more.
                    r.silences += 1;
                } else {
                    // A waiting acquire is long-polled, so the leader's silence is normal: ask
                    // another node who leads, and come back if it still does. Anything else
                    // the leader left unanswered twice goes to the next node.
                    r.silences = 0;
                    self.route.moved_from(node);
                }
                r.at = None;
                r.hops = 0;
                if matches!(r.purpose, Purpose::KeepAlive { .. }) {
                    // Renewing is idempotent, so a fresh keep-alive goes out, counting its
                    // renewal from now; the old one may still be answered (it was only slow
                    // to commit) until its answer could no longer renew anything.
                    let lease_end = r.first_sent.map_or(now, |t| t + self.cfg.lease);
                    r.give_up_at = r.give_up_at.min(lease_end);
                    r.retired = true;
                    if !self.held.is_empty() {
                        self.start_keepalive();
                    }
                    continue;
                }
                self.send(seq);
            } else if r.at.is_none() && !r.deferred && now >= r.send_at {
                self.send(seq);
            }
        }
        self.run_keepalive();
        if self.held.earliest_end() > now {
            return;
        }
        for (lock, token) in self.held.expire(now) {
            self.out.push_back(ClientOutput::Lost { lock, token });
        }
    }

    /// The call of request `seq` ends with `error`; an acquire that may have reached the
    /// service is withdrawn first.
    fn fail(&mut self, seq: Seq, error: ClientError) {
        let Some(r) = self.requests.get(&seq) else {
            return;
        };
        let call = r.call();
        self.drop_request(seq);
        if let Some(call) = call {
            self.calls.remove(&call);
            self.done(call, Err(error));
        }
    }

    /// The request `seq` reached its deadline.
    fn give_up(&mut self, seq: Seq) {
        let Some(r) = self.requests.get(&seq) else {
            return;
        };
        let error = if r.waits() && r.reached && self.now >= r.give_up_at {
            ClientError::TimedOut
        } else {
            let causes = match r.pinned {
                Some(node) => vec![(node, cause_of(&r.causes, node))],
                None => self
                    .cfg
                    .nodes
                    .iter()
                    .map(|n| (*n, cause_of(&r.causes, *n)))
                    .collect(),
            };
            ClientError::Unavailable(Unreachable { causes })
        };
        self.fail(seq, error);
    }

    /// Takes request `seq` out, undoing what it may have left: an acquire that was sent is
    /// withdrawn (its seq stays numbered until the withdrawal is answered), a release goes on
    /// as a give-back, and whatever waited for a withdrawal of its lock may go ahead.
    fn drop_request(&mut self, seq: Seq) {
        let Some(r) = self.requests.get_mut(&seq) else {
            return;
        };
        match (&r.op, r.first_sent) {
            (Op::Acquire { lock, .. }, Some(_)) if matches!(r.purpose, Purpose::Call(_)) => {
                let lock = lock.clone();
                r.purpose = Purpose::Abandoned;
                r.at = None;
                r.deferred = false;
                r.send_at = Time::MAX;
                r.give_up_at = Time::MAX;
                r.contact_by = Time::MAX;
                let cancel = Op::Cancel {
                    lock: lock.clone(),
                    seq,
                };
                let give_up_at = self.now + self.cfg.deadline;
                let purpose = Purpose::Cancel { lock, acquire: seq };
                let cancel = self.number(purpose, cancel, give_up_at);
                self.send(cancel);
            }
            _ => {
                let removed = self.requests.remove(&seq);
                if let Some(Op::Release { lock, token }) = removed.as_ref().map(|r| &r.op) {
                    // Answered or not, the caller is done with this grant: stop renewing it.
                    // If it is still ours at the service, a keep-alive finds it and gives it
                    // back, or its lease runs out.
                    self.held.remove(lock, *token);
                }
                if let Some(Purpose::Cancel { acquire, .. }) = removed.as_ref().map(|r| &r.purpose)
                {
                    self.requests.remove(acquire);
                }
                if let Some(lock) = removed.as_ref().and_then(|r| r.lock()) {
                    self.release_deferred(lock);
                }
            }
        }
    }

    /// Lets acquires of `lock` held back for a withdrawal go, once none is left.
    fn release_deferred(&mut self, lock: &LockName) {
        if self.withdrawing(Some(lock)) {
            return;
        }
        let ready: Vec<Seq> = self
            .requests
            .iter()
            .filter(|(_, r)| r.deferred && r.lock() == Some(lock))
            .map(|(seq, _)| *seq)
            .collect();
        for seq in ready {
            if let Some(r) = self.requests.get_mut(&seq) {
                r.deferred = false;
            }
            self.send(seq);
        }
    }

    fn abandon(&mut self, call: CallId) {
        let Some(seq) = self.calls.remove(&call) else {
            return;
        };
        let Some(r) = self.requests.get_mut(&seq) else {
            return;
        };
        if matches!(r.op, Op::Release { .. }) {
            // A release is finished even if nobody waits for it: the lock must not stay held.
            r.purpose = Purpose::GiveBack;
            return;
        }
        self.drop_request(seq);
    }

    fn done(&mut self, call: CallId, result: Result<Done, ClientError>) {
        self.out.push_back(ClientOutput::Done { call, result });
    }

    /// Request `seq` has its final answer.
    fn settle(&mut self, seq: Seq, result: Result<Reply, Rejection>) {
        let Some(r) = self.requests.get(&seq) else {
            return;
        };
        self.answered += 1;
        let (purpose, op, first_sent) = (r.purpose.clone(), r.op.clone(), r.first_sent);
        let sent = first_sent.unwrap_or(self.now);
        match purpose {
            Purpose::Call(call) => {
                if let (Op::Acquire { lock, .. }, Err(Rejection::AlreadyHeld { token })) =
                    (&op, &result)
                {
                    if self.retry_after_stray_grant(seq, lock, *token) {
                        return;
                    }
                }
                self.requests.remove(&seq);
                self.calls.remove(&call);
                let outcome = self.call_outcome(&op, sent, result);
                if let Some(lock) = op_lock(&op) {
                    self.release_deferred(lock);
                }
                self.done(call, outcome);
            }
            Purpose::KeepAlive { grants } => {
                self.requests.remove(&seq);
                if let Ok(Reply::KeptAlive { held }) = result {
                    self.kept_alive(sent, grants, &held);
                }
            }
            Purpose::Cancel { .. } | Purpose::GiveBack => {
                if let Op::Release { lock, token } = &op {
                    self.held.remove(lock, *token);
                }
                self.drop_request(seq);
            }
            Purpose::Abandoned => {}
        }
    }

    /// An acquire was refused because the session already holds the lock under `token`, a
    /// grant no caller has (an acquire given up on, a release whose answer was lost). Gives
    /// it back by its token and sends the acquire again, once; false if that does not apply.
    fn retry_after_stray_grant(&mut self, seq: Seq, lock: &LockName, token: FencingToken) -> bool {
        let stray = !self.held.contains(lock)
            && !self.requests.iter().any(|(s, r)| {
                *s != seq && matches!(&r.op, Op::Acquire { lock: l, .. } if l == lock)
            });
        let Some(r) = self
            .requests
            .get_mut(&seq)
            .filter(|r| stray && !r.gave_back)
        else {
            return false;
        };
        r.gave_back = true;
        r.deferred = true;
        self.renumber(seq);
        self.give_back(lock.clone(), token);
        true
    }

    fn call_outcome(
        &mut self,
        op: &Op,
        sent: Time,
        result: Result<Reply, Rejection>,
    ) -> Result<Done, ClientError> {
        let reply = result?;
        match (op, reply) {
            (Op::Acquire { lock, .. }, Reply::Granted { token, lease }) => {
                let safe_until = self.cfg.drift.safe_until(sent, lease);
                if safe_until <= self.now {
                    // Never hand out a guard already known to be lost; it may still be ours at
                    // the service, so give it back by its token.
                    self.give_back(lock.clone(), token);
                    return Err(ClientError::GrantExpired);
                }
                self.held.insert(lock.clone(), token, safe_until);
                let lease = self.cfg.lease;
                self.keepalive_at = if safe_until.saturating_since(self.now) < lease / 2 {
                    // A long wait or lost answers ate into a conservatively-timed lease.
                    self.now
                } else {
                    self.keepalive_at.min(self.now + lease / 3)
                };
                Ok(Done::Granted {
                    lock: lock.clone(),
                    token,
                    safe_until,
                })
            }
            (Op::Release { lock, token }, Reply::Released) => {
                self.held.remove(lock, *token);
                Ok(Done::Released)
            }
            (Op::Append { .. }, Reply::Appended { offset }) => Ok(Done::Appended { offset }),
            (Op::Read { .. }, Reply::Data { data, len }) => Ok(Done::Data { data, len }),
            (Op::Status, Reply::Status(status)) => Ok(Done::Status(status)),
            (_, other) => Err(ClientError::Protocol(format!(
                "unexpected answer {other:?}"
            ))),
        }
    }

    /// Releases `lock` by `token` in the background.
    fn give_back(&mut self, lock: LockName, token: FencingToken) {
        let give_up_at = self.now + self.cfg.deadline;
        let seq = self.number(Purpose::GiveBack, Op::Release { lock, token }, give_up_at);
        self.send(seq);
    }

    fn run_keepalive(&mut self) {
        if self.held.is_empty() || self.now < self.keepalive_at {
            return;
        }
        self.keepalive_at = self.now + self.cfg.lease / 3;
        let running = self
            .requests
            .values()
            .any(|r| matches!(r.purpose, Purpose::KeepAlive { .. }) && !r.retired);
        if !running {
            self.start_keepalive();
        }
    }

    fn start_keepalive(&mut self) {
        let purpose = Purpose::KeepAlive {
            grants: self.held.grants(),
        };
        let give_up_at = self.now + self.cfg.deadline;
        let seq = self.number(purpose, Op::KeepAlive, give_up_at);
        self.send(seq);
    }

    /// A keep-alive first sent at `sent`, when `grants` grants had been entered, listed `listed`.
    fn kept_alive(&mut self, sent: Time, grants: u64, listed: &[(LockName, FencingToken)]) {
        for (lock, token) in listed {
            if !self.tracks(lock, *token) {
                // A grant nobody waits for any more: give it back rather than renew it.
                self.give_back(lock.clone(), *token);
            }
        }
        let until = self.cfg.drift.safe_until(sent, self.cfg.lease);
        let (renewed, lost) = self.held.renew(grants, listed, until);
        for (lock, token, safe_until) in renewed {
            self.out.push_back(ClientOutput::Renewed {
                lock,
                token,
                safe_until,
            });
        }
        for (lock, token) in lost {
            self.out.push_back(ClientOutput::Lost { lock, token });
        }
    }

    /// Whether the grant `token` of `lock` is one the core knows of: held, being acquired,
    /// withdrawn or released.
    fn tracks(&self, lock: &LockName, token: FencingToken) -> bool {
        self.held.has(lock, token)
            || self.requests.values().any(|r| match &r.op {
                Op::Acquire { lock: l, .. } | Op::Cancel { lock: l, .. } => l == lock,
                Op::Release { lock: l, token: t } => l == lock && *t == token,
                _ => false,
            })
    }

    /// Replaces the expired session: a new id, seqs from 1, every held lock lost, what only
    /// the old session had (keep-alives, withdrawals, give-backs) dropped, and every call
    /// numbered again and sent at once.
    fn new_session(&mut self) {
        let old = std::mem::take(&mut self.requests);
        self.session = draw_id(&mut self.rng);
        self.next_seq = Seq(1);
        for (lock, token) in self.held.clear() {
            self.out.push_back(ClientOutput::Lost { lock, token });
        }
        self.keepalive_at = Time::MAX;
        for (_, mut r) in old {
            let Some(call) = r.call() else { continue };
            let seq = self.next_seq;
            self.next_seq = seq.next();
            r.renumber(seq);
            r.session = self.session;
            r.deferred = false;
            self.requests.insert(seq, r);
            self.calls.insert(call, seq);
        }
        let seqs: Vec<Seq> = self.requests.keys().copied().collect();
        for seq in seqs {
            self.send(seq);
        }
    }
}

fn op_lock(op: &Op) -> Option<&LockName> {
    match op {
        Op::Acquire { lock, .. } | Op::Release { lock, .. } | Op::Cancel { lock, .. } => Some(lock),
        _ => None,
    }
}

fn cause_of(causes: &BTreeMap<NodeId, NodeCause>, node: NodeId) -> NodeCause {
    causes.get(&node).cloned().unwrap_or(NodeCause::NotTried)
}
