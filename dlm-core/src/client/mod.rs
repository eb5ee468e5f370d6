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
//! use dlm_core::Mode;
//! use dlm_core::{NodeId, Time};
//! let mut core = ClientCore::new(ClientConfig::new([NodeId(1)]), 7);
//! let op = CallOp::Acquire { lock: "orders".into(), wait: Wait::Forever, mode: Mode::Exclusive };
//! core.handle(Time::ZERO, ClientEvent::Start { call: CallId(1), op });
//! while let Some(output) = core.poll_output() {
//!     // Send: hand the request to the transport, feed its answer back as ClientEvent::Answer
//!     // (or ClientEvent::Failed). Done: the call's result. Renewed, Lost: a held lock's news.
//!     assert!(matches!(output, ClientOutput::Send { .. }));
//! }
//! let _wake_at = core.next_deadline();
//! ```

mod answers;
mod call;
mod config;
mod error;
mod events;
mod held;
mod keepalive;
mod probe;
mod route;
mod timers;
mod withdraw;

pub use call::{CallId, CallOp, Done, MembershipCall, Wait};
pub use config::{ClientConfig, DriftBound};
pub use error::{ClientError, NodeCause, Unreachable};
pub use events::{ClientEvent, ClientOutput, LossReason};

use crate::names::LockName;
use crate::protocol::{
    ClientRequest, ClientResponse, NodeStatus, Op, Rejection, Reply, Role, MAX_PENDING,
};
use crate::types::{ClientId, FencingToken, NodeId, Seq, Time};
use call::{op_lock, Purpose, Request};
use held::Held;
use rand_core::{RngCore, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use route::Route;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

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
    /// The highest seq of this session whose answer the service caches and the client has:
    /// nothing above it needs acknowledging (see [`ClientCore::acknowledgement`]).
    cached_answered: Seq,
}

impl std::fmt::Debug for ClientCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCore")
            .field("session", &self.session)
            .field("next_seq", &self.next_seq)
            .field("requests", &self.requests.len())
            .field("held", &self.held.iter().count())
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
            cached_answered: Seq(0),
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
            self.keepalive_due()
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
        if self.calls.contains_key(&call) || self.held.is_confirming(call) {
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
            CallOp::Acquire { lock, wait, mode } => {
                let (wait, give_up_at, contact_by) = match wait {
                    Wait::Try => (None, reach, Time::MAX),
                    Wait::For(d) => (Some(d), now + d, reach),
                    Wait::Forever => (Some(Duration::MAX), Time::MAX, reach),
                };
                let lease = self.cfg.lease;
                (
                    Op::acquire(lock, lease, wait, mode),
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
            CallOp::Locks {
                prefix,
                after,
                limit,
            } => {
                let op = Op::Locks {
                    prefix,
                    after,
                    limit,
                };
                (op, reach, Time::MAX, None)
            }
            CallOp::Sessions { after, limit } => {
                (Op::Sessions { after, limit }, reach, Time::MAX, None)
            }
            CallOp::Revoke { lock } => (Op::Revoke { lock }, reach, Time::MAX, None),
            CallOp::Membership(call) => (call.into_op(), reach, Time::MAX, None),
            CallOp::Proclaim { lock, token, value } => {
                let op = Op::Proclaim { lock, token, value };
                (op, reach, Time::MAX, None)
            }
            CallOp::WatchLock { lock, from, wait } => {
                (Op::WatchLock { lock, from, wait }, reach, Time::MAX, None)
            }
            CallOp::TailFile { file, offset, wait } => {
                (Op::TailFile { file, offset, wait }, reach, Time::MAX, None)
            }
        };
        let deferred = op.as_acquire().is_some() && self.withdrawing(op_lock(&op));
        let seq = self.number(Purpose::Call(call), op, give_up_at);
        self.calls.insert(call, seq);
        if let Some(r) = self.requests.get_mut(&seq) {
            r.contact_by = contact_by;
            r.pinned = pinned;
            r.deferred = deferred;
        }
        self.send_if_ready(seq);
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

    /// What the next request acknowledges: every seq below the watermark but the pending ones.
    ///
    /// Only requests whose answers the service caches hold the watermark back; the others
    /// (reads, watches, status, queries, membership changes) can be asked again under a new
    /// seq at no cost, and are (see [`ClientCore::send`]). Waiting acquires, which may wait for
    /// as long as the lock is held elsewhere, are named pending instead, up to
    /// [`MAX_PENDING`] of them, so that the client's other calls are acknowledged while they
    /// wait: the service keeps their slots, and their later answers, until a request no
    /// longer names them.
    ///
    /// The watermark goes no higher than the oldest request in flight unless a cached answer
    /// above it needs acknowledging, so that a request says what it said before pending seqs
    /// existed whenever nothing is held back.
    fn acknowledgement(&self) -> (Seq, Vec<Seq>) {
        let mut pending = Vec::new();
        let mut below = self.next_seq;
        for (seq, r) in &self.requests {
            if !r.op.is_cached() {
                continue;
            }
            if r.waits() && pending.len() < MAX_PENDING {
                pending.push(*seq);
                continue;
            }
            below = *seq;
            break;
        }
        let oldest = self.requests.keys().next().copied();
        let needed = oldest.map_or(below, |oldest| oldest.max(self.cached_answered.next()));
        below = below.min(needed);
        pending.retain(|seq| *seq < below);
        (below, pending)
    }

    fn send_if_ready(&mut self, seq: Seq) {
        if self.requests.get(&seq).is_some_and(|r| !r.deferred) {
            self.send(seq);
        }
    }

    fn send(&mut self, seq: Seq) {
        let (acked_below, pending) = self.acknowledgement();
        let uncached = self.requests.get(&seq).is_some_and(|r| !r.op.is_cached());
        // A request the service does not cache may be below the watermark the client has moved
        // on to: it goes under a fresh seq, which is all a retry of it needs.
        let seq = if uncached && seq < acked_below {
            self.renumber(seq)
        } else {
            seq
        };
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
        if r.pinned.is_none() && self.route.leader_known() {
            // Sent to the node that last answered as leader: the service has it.
            r.touch_leader(now, self.cfg.deadline);
        }
        if r.waits() && (r.probe_at == Time::MAX || r.probed != Some(node)) {
            // A new node to wait at gets its own probe schedule; a re-send to the same one
            // keeps the schedule it has.
            r.probe_at = now + self.cfg.leader_check;
            r.probed = Some(node);
        }
        let request = ClientRequest {
            client: r.session,
            seq,
            acked_below,
            pending,
            op: r.op.clone(),
        };
        self.out.push_back(ClientOutput::Send { node, request });
    }

    /// Schedules the next attempt after a back-off with full jitter.
    fn back_off(&mut self, seq: Seq) {
        self.back_off_within(seq, self.cfg.backoff_cap);
    }

    /// [`ClientCore::back_off`] with a ceiling of its own, for when an election is likely under
    /// way (a node answered that no leader is known, or a node cannot be reached while others
    /// can): it ends within an election time-out, so the client asks again at a short pace (a
    /// sixth of a leader check) to hear of the winner soon.
    fn back_off_election(&mut self, seq: Seq) {
        let cap = self.cfg.backoff_cap.min(self.cfg.leader_check / 6);
        self.back_off_within(seq, cap);
    }

    fn back_off_within(&mut self, seq: Seq, cap: Duration) {
        let cfg = &self.cfg;
        let Some(r) = self.requests.get_mut(&seq) else {
            return;
        };
        let ceiling = cfg
            .backoff_base
            .saturating_mul(1u32 << r.failures.min(20))
            .min(cap);
        r.failures = r.failures.saturating_add(1);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        let draw = self.rng.next_u64();
        let pause = Duration::from_nanos(if nanos == 0 { 0 } else { draw % (nanos + 1) });
        r.at = None;
        r.hops = 0;
        r.send_at = self.now + pause;
    }

    fn done(&mut self, call: CallId, result: Result<Done, ClientError>) {
        self.out.push_back(ClientOutput::Done { call, result });
    }

    /// Replaces the expired session: a new id, seqs from 1, every held lock lost, what only
    /// the old session had (keep-alives, withdrawals, give-backs) dropped, and every call
    /// numbered again and sent at once.
    fn new_session(&mut self) {
        let old = std::mem::take(&mut self.requests);
        self.session = draw_id(&mut self.rng);
        self.next_seq = Seq(1);
        self.cached_answered = Seq(0);
        for (lock, token, confirming) in self.held.clear() {
            match confirming {
                Some(call) => self.done(call, Err(ClientError::GrantExpired)),
                None => self.out.push_back(ClientOutput::Lost {
                    lock,
                    token,
                    reason: LossReason::SessionExpired,
                }),
            }
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

fn cause_of(causes: &BTreeMap<NodeId, NodeCause>, node: NodeId) -> NodeCause {
    causes.get(&node).cloned().unwrap_or(NodeCause::NotTried)
}
