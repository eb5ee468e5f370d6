//! A simulated user of the shipped client core: it decides which calls to make and when to give
//! up on them (as a dropped future would); the [`ClientCore`] does everything else (numbering,
//! retries, leader hints, long-polls, deadlines, keep-alives, lost locks, withdrawals).

mod outputs;

use super::clock::Skew;
use super::rng::SimRng;
use crate::client::{CallId, CallOp, ClientConfig, ClientCore, ClientEvent, DriftBound, Wait};
use crate::names::{FileName, LockName};
use crate::protocol::{EventPosition, Mode, WatchFrom, WatchPage};
use crate::types::{ClientId, FencingToken, NodeId};
use std::collections::BTreeMap;
use std::time::Duration;

/// Lease every simulated client asks for.
pub const LEASE: Duration = Duration::from_millis(1_000);
/// How long a simulated client waits for one attempt before trying elsewhere.
const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(400);
/// How long a simulated call may go without reaching a leader.
const DEADLINE: Duration = Duration::from_secs(5);
/// One call in this many is abandoned at a random moment, as a dropped future would be.
const ABANDON_ONE_IN: u64 = 6;
/// One call in this many (of a client holding nothing) is an operator's revoke of a random lock.
const REVOKE_ONE_IN: u64 = 25;
/// One acquire in this many asks for a mode drawn at random rather than the name's own, so that
/// acquires of the wrong kind (or a semaphore of the wrong size) meet their refusal, and a name
/// that left the table may come back as another kind.
const ODD_MODE_ONE_IN: u64 = 30;
/// One step in this many of an exclusive holder is a proclaim rather than an append.
const PROCLAIM_ONE_IN: u64 = 4;
/// One call in this many (of a client holding nothing) is a watch of a lock's events.
const WATCH_ONE_IN: u64 = 8;
/// How long a simulated watch may wait at the leader (within an attempt).
const WATCH_WAIT: Duration = Duration::from_millis(150);

/// The mode a simulated user asks for lock number `i` in (with `kinds`; else exclusive): `l0`,
/// `l3`... are exclusive, `l1`, `l4`... read-write (one acquire in three a writer's), `l2`,
/// `l5`... semaphores of 2 permits.
pub fn mode_of(i: u64, kinds: bool, rng: &mut SimRng) -> Mode {
    if !kinds {
        return Mode::Exclusive;
    }
    let i = if rng.below(ODD_MODE_ONE_IN) == 0 {
        rng.below(4)
    } else {
        i % 3
    };
    match i {
        0 => Mode::Exclusive,
        1 if rng.below(3) == 0 => Mode::Write,
        1 => Mode::Read,
        2 => Mode::Permit { permits: 2 },
        _ => Mode::Permit { permits: 3 },
    }
}

/// The user's side of a call in flight.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Calling {
    /// An acquire of `lock` in a mode.
    Acquire(LockName, Mode),
    /// An append of `data` to `file`.
    Append {
        /// The file.
        file: FileName,
        /// The data.
        data: Vec<u8>,
    },
    /// A read of `file` from 0.
    Read(FileName),
    /// A release.
    Release,
    /// An operator's revoke of `lock`.
    Revoke(LockName),
    /// A watch of `lock` from a position (or now).
    Watch(LockName, WatchFrom),
    /// A proclaim under the grant held (an election's leader saying who it is).
    Proclaim,
}

/// What the user holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holding {
    /// The lock.
    pub lock: LockName,
    /// Its token.
    pub token: FencingToken,
    /// The mode it was granted in: only an exclusive grant appends, the others read.
    pub mode: Mode,
    /// Until when (true time) it may act as holder.
    pub safe_until: u64,
    /// Appends left before releasing.
    pub appends_left: u32,
}

/// What the simulator must record after a client acted or heard something.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Send `request` to node index `node`.
    Send {
        /// Node index.
        node: usize,
        /// The request.
        request: crate::protocol::ClientRequest,
    },
    /// The client holds `lock` with `token` in `mode` until `until` (true time).
    Confirmed {
        /// The lock.
        lock: LockName,
        /// The token.
        token: FencingToken,
        /// The grant's mode.
        mode: Mode,
        /// Safe until (true time).
        until: u64,
    },
    /// The client stopped acting as holder of `lock`.
    Dropped {
        /// The lock.
        lock: LockName,
        /// The grant's token, if the client core said an operator revoked it.
        revoked: Option<FencingToken>,
    },
    /// A read of `file` from offset 0, started at `sent` (true time), returned `data`.
    Read {
        /// The file.
        file: FileName,
        /// The bytes returned.
        data: Vec<u8>,
        /// When the read was started.
        sent: u64,
    },
    /// An append was acknowledged.
    Appended {
        /// The file.
        file: FileName,
        /// Where.
        offset: u64,
        /// What.
        data: Vec<u8>,
    },
    /// An operator's revoke of `lock` took its grant `token` away.
    Revoked {
        /// The lock.
        lock: LockName,
        /// The revoked grant.
        token: FencingToken,
    },
    /// A watch of `lock` from `from` was answered `page`.
    Watched {
        /// The lock.
        lock: LockName,
        /// Where the watch started.
        from: WatchFrom,
        /// The answer.
        page: WatchPage,
    },
    /// A call was refused as below the watermark, or for too many unacknowledged answers: the
    /// client acknowledged a request it still waited on, or held acknowledgements back.
    Unacknowledged {
        /// The refusal.
        rejection: crate::protocol::Rejection,
    },
    /// An acquire of `lock` in session `session` was given up on, by the user or (failed) by
    /// the core: whatever it left must be undone.
    Abandoned {
        /// The lock.
        lock: LockName,
        /// The session it was asked in.
        session: ClientId,
    },
}

/// One simulated client: a user and the client core it drives.
#[derive(Debug)]
pub struct SimClient {
    /// Its index.
    pub idx: usize,
    /// Still running (a crashed client never sends again).
    pub alive: bool,
    core: ClientCore,
    skew: Skew,
    next_call: u64,
    /// The call in flight, when it started (true time), and when the user gives up on it.
    pub calling: Option<(CallId, Calling, u64, u64)>,
    /// What it holds.
    pub holding: Option<Holding>,
    /// When the user next wants to act.
    pub wake_at: u64,
    /// When the core wants its next tick (true time), as of its last event.
    core_wake: u64,
    /// Calls answered.
    pub calls: u64,
    /// Per lock it watched: where its watch is (it goes on from there next time).
    watching: BTreeMap<LockName, EventPosition>,
}

impl SimClient {
    /// A fresh client whose clock runs at `skew`, counting leases with the drift bound `drift`.
    pub fn new(idx: usize, nodes: usize, skew: Skew, drift: DriftBound, rng: &mut SimRng) -> Self {
        let mut cfg = ClientConfig::new((1..=nodes as u64).map(NodeId));
        cfg.lease = LEASE;
        cfg.attempt_timeout = ATTEMPT_TIMEOUT;
        cfg.deadline = DEADLINE;
        cfg.backoff_base = Duration::from_millis(5);
        cfg.backoff_cap = Duration::from_millis(200);
        cfg.drift = drift;
        SimClient {
            idx,
            alive: true,
            core: ClientCore::new(cfg, rng.next_u64()),
            skew,
            next_call: 1,
            calling: None,
            holding: None,
            wake_at: rng.below(50_000_000),
            core_wake: u64::MAX,
            calls: 0,
            watching: BTreeMap::new(),
        }
    }

    /// Requests the service answered (calls, keep-alives, withdrawals, give-backs).
    pub fn ops(&self) -> u64 {
        self.core.answered()
    }

    /// The current session.
    pub fn id(&self) -> ClientId {
        self.core.session()
    }

    /// The data of an append: unique per (client, n), so a file can be checked byte by byte.
    pub fn append_data(idx: usize, n: u64) -> Vec<u8> {
        format!("<{idx}:{n}>").into_bytes()
    }

    /// When the simulator must wake this client (true time).
    pub fn next_wake(&self) -> u64 {
        if !self.alive {
            return u64::MAX;
        }
        self.wake_at.min(self.core_wake)
    }

    /// Whether the user has a call in flight.
    pub fn busy(&self) -> bool {
        self.calling.is_some()
    }

    /// Acts at true time `now`: ticks the core, gives up on a call whose time has come, or
    /// starts the next call (unless `quiet` and holding nothing).
    pub fn wake(
        &mut self,
        now: u64,
        quiet: bool,
        workload: (usize, bool),
        rng: &mut SimRng,
        events: &mut Vec<Event>,
    ) {
        let local = self.skew.local(now);
        self.core.handle(local, ClientEvent::Tick);
        self.drain(now, rng, events);
        if now < self.wake_at {
            return;
        }
        self.wake_at = u64::MAX;
        if let Some((call, what, _, abandon_at)) = self.calling.clone() {
            if now >= abandon_at {
                self.calling = None;
                self.core.handle(local, ClientEvent::Abandon(call));
                if let Calling::Acquire(lock, _) = what {
                    let session = self.core.session();
                    events.push(Event::Abandoned { lock, session });
                }
                self.wake_at = now + rng.below(20_000_000);
                self.drain(now, rng, events);
            } else {
                self.wake_at = abandon_at;
            }
            return;
        }
        if quiet && self.holding.is_none() {
            return;
        }
        let (op, what) = self.next_call(now, workload, rng, events);
        let call = CallId(self.next_call);
        self.next_call += 1;
        let abandon_at = if rng.below(ABANDON_ONE_IN) == 0 {
            now + rng.below(600_000_000)
        } else {
            u64::MAX
        };
        self.calling = Some((call, what, now, abandon_at));
        self.wake_at = abandon_at;
        self.core.handle(local, ClientEvent::Start { call, op });
        self.drain(now, rng, events);
    }

    fn next_call(
        &mut self,
        now: u64,
        (locks, kinds): (usize, bool),
        rng: &mut SimRng,
        events: &mut Vec<Event>,
    ) -> (CallOp, Calling) {
        if let Some(h) = &mut self.holding {
            let (lock, token) = (h.lock.clone(), h.token);
            if now < h.safe_until && h.appends_left > 0 && !h.mode.is_exclusive() {
                // A reader or a permit holder reads what the writers wrote while it holds.
                h.appends_left -= 1;
                let file = FileName::new(format!("f{}", lock.as_str()));
                let op = CallOp::Read {
                    file: file.clone(),
                    offset: 0,
                };
                return (op, Calling::Read(file));
            }
            if now < h.safe_until && h.appends_left > 0 && rng.below(PROCLAIM_ONE_IN) == 0 {
                // The holder of an exclusive grant leads an election named after the lock.
                h.appends_left -= 1;
                let op = CallOp::Proclaim {
                    lock,
                    token,
                    value: Self::append_data(self.idx, self.next_call),
                };
                return (op, Calling::Proclaim);
            }
            if now < h.safe_until && h.appends_left > 0 {
                h.appends_left -= 1;
                let file = FileName::new(format!("f{}", lock.as_str()));
                let data = Self::append_data(self.idx, self.next_call);
                let op = CallOp::Append {
                    lock,
                    token,
                    file: file.clone(),
                    data: data.clone(),
                };
                return (op, Calling::Append { file, data });
            }
            // Done, or the lease may be gone: stop acting as holder. Releasing is still polite.
            self.holding = None;
            events.push(Event::Dropped {
                lock: lock.clone(),
                revoked: None,
            });
            return (CallOp::Release { lock, token }, Calling::Release);
        }
        let i = rng.below(locks as u64);
        let lock = LockName::new(format!("l{i}"));
        if rng.below(REVOKE_ONE_IN) == 0 {
            let op = CallOp::Revoke { lock: lock.clone() };
            return (op, Calling::Revoke(lock));
        }
        if rng.below(WATCH_ONE_IN) == 0 {
            // A watch goes on from where this client's last one on the lock stopped.
            let from = self
                .watching
                .get(&lock)
                .map_or(WatchFrom::Now, |p| WatchFrom::After(*p));
            let op = CallOp::WatchLock {
                lock: lock.clone(),
                from,
                wait: WATCH_WAIT,
            };
            return (op, Calling::Watch(lock, from));
        }
        if rng.below(5) == 0 {
            // A linearizable read must show every append acknowledged before it was sent.
            let file = FileName::new(format!("f{}", lock.as_str()));
            let op = CallOp::Read {
                file: file.clone(),
                offset: 0,
            };
            return (op, Calling::Read(file));
        }
        let wait = match rng.below(3) {
            0 => Wait::Try,
            1 => Wait::Forever,
            _ => Wait::For(Duration::from_millis(50 + rng.below(2_000))),
        };
        let mode = mode_of(i, kinds, rng);
        let op = CallOp::Acquire {
            lock: lock.clone(),
            wait,
            mode,
        };
        (op, Calling::Acquire(lock, mode))
    }

    /// Feeds an answer from node index `node`, at true time `now`.
    pub fn on_response(
        &mut self,
        now: u64,
        node: usize,
        response: crate::protocol::ClientResponse,
        rng: &mut SimRng,
        events: &mut Vec<Event>,
    ) {
        let node = NodeId(node as u64 + 1);
        let local = self.skew.local(now);
        self.core
            .handle(local, ClientEvent::Answer { node, response });
        self.drain(now, rng, events);
    }

    /// The session's grant of `lock`, if the user holds it or is acquiring it (so a grant the
    /// service lists for the session is no leftover of an abandoned acquire).
    pub fn claims(&self, lock: &LockName, token: FencingToken) -> bool {
        self.holding
            .as_ref()
            .is_some_and(|h| h.lock == *lock && h.token == token)
            || matches!(&self.calling, Some((_, Calling::Acquire(l, _), _, _)) if l == lock)
            || self.core.held().any(|(l, t, _)| l == lock && t == token)
    }
}
