//! A simulated client: acquire (try, wait or deadline) → keep-alive while holding → appends with
//! the token → release, retrying the same `(client, seq)` with backoff and following leader hints.

use super::rng::SimRng;
use crate::names::{FileName, LockName};
use crate::protocol::{ClientRequest, Op, Rejection, Reply};
use crate::types::{ClientId, FencingToken, Seq};
use std::time::Duration;

/// Lease every simulated client asks for.
pub const LEASE: Duration = Duration::from_millis(1_000);
/// How long a client waits for an answer before retrying elsewhere.
const RETRY_AFTER: u64 = 400_000_000;

/// The request a client is waiting on.
#[derive(Clone, Debug)]
pub struct Pending {
    /// The request (retries resend it unchanged).
    pub request: ClientRequest,
    /// True time it was first sent: leases are counted from here.
    pub first_sent: u64,
    /// When to retry if no answer came.
    pub retry_at: u64,
    /// Attempts so far.
    pub attempts: u32,
    /// The next attempt follows a leader hint (rather than a time-out).
    pub hinted: bool,
}

/// What the client is doing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Holds nothing.
    Idle,
    /// Holds `lock` with `token` until `safe_until` (true time), with appends still to do.
    Holding {
        /// The lock.
        lock: LockName,
        /// Its token.
        token: FencingToken,
        /// Until when the client may act as holder.
        safe_until: u64,
        /// Appends left before releasing.
        appends_left: u32,
    },
}

/// What a client wants the simulator to do after an answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Nothing to record.
    None,
    /// The client (now) holds `lock` with `token` until `until`.
    Confirmed {
        /// The lock.
        lock: LockName,
        /// The token.
        token: FencingToken,
        /// Safe until (true time).
        until: u64,
    },
    /// A read of `file` from offset 0, first sent at `sent` (true time), was answered.
    Read {
        /// The file.
        file: FileName,
        /// The bytes returned.
        data: Vec<u8>,
        /// When the read was first sent.
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
}

/// One simulated client.
#[derive(Clone, Debug)]
pub struct SimClient {
    /// Its index.
    pub idx: usize,
    /// Its id.
    pub id: ClientId,
    /// Still running (a crashed client never sends again).
    pub alive: bool,
    /// Next seq to use.
    pub next_seq: Seq,
    /// The outstanding request.
    pub pending: Option<Pending>,
    /// Node it believes leads.
    pub target: usize,
    /// When it next wants to act.
    pub wake_at: u64,
    /// What it holds.
    pub phase: Phase,
    /// Operations answered.
    pub ops: u64,
    drift_ppm: u64,
}

impl SimClient {
    /// A fresh client.
    pub fn new(idx: usize, id: ClientId, nodes: usize, drift_ppm: u64, rng: &mut SimRng) -> Self {
        SimClient {
            idx,
            id,
            alive: true,
            next_seq: Seq(1),
            pending: None,
            target: rng.below(nodes as u64) as usize,
            wake_at: rng.below(50_000_000),
            phase: Phase::Idle,
            ops: 0,
            drift_ppm,
        }
    }

    /// The data of an append: unique per (client, seq), so a file can be checked byte by byte.
    pub fn append_data(idx: usize, seq: Seq) -> Vec<u8> {
        format!("<{idx}:{}>", seq.0).into_bytes()
    }

    /// Acts if due: retries the outstanding request or starts the next one. Returns the node to
    /// send to and the request.
    pub fn wake(
        &mut self,
        now: u64,
        nodes: usize,
        locks: usize,
        rng: &mut SimRng,
    ) -> Option<(usize, ClientRequest)> {
        if !self.alive || now < self.wake_at {
            return None;
        }
        if let Some(p) = &mut self.pending {
            if now < p.retry_at {
                self.wake_at = p.retry_at;
                return None;
            }
            if p.hinted {
                p.hinted = false;
            } else {
                // No answer: try another node.
                self.target = (self.target + 1) % nodes;
            }
            p.attempts += 1;
            p.retry_at = now + RETRY_AFTER;
            self.wake_at = p.retry_at;
            return Some((self.target, p.request.clone()));
        }
        let op = self.next_op(now, locks, rng);
        let seq = self.next_seq;
        self.next_seq = seq.next();
        let request = ClientRequest {
            client: self.id,
            seq,
            acked_below: seq,
            op,
        };
        self.pending = Some(Pending {
            request: request.clone(),
            first_sent: now,
            retry_at: now + RETRY_AFTER,
            attempts: 1,
            hinted: false,
        });
        self.wake_at = now + RETRY_AFTER;
        Some((self.target, request))
    }

    fn next_op(&mut self, now: u64, locks: usize, rng: &mut SimRng) -> Op {
        if let Phase::Holding {
            lock,
            token,
            safe_until,
            appends_left,
        } = &self.phase
        {
            let (lock, token) = (lock.clone(), *token);
            if now >= *safe_until {
                // The lease may be gone: stop acting as holder. Releasing is still polite.
                self.phase = Phase::Idle;
                return Op::Release { lock, token };
            }
            let half = u64::try_from(LEASE.as_nanos() / 2).unwrap_or(u64::MAX);
            if safe_until.saturating_sub(now) < half {
                return Op::KeepAlive;
            }
            if *appends_left > 0 {
                let file = FileName::new(format!("f{}", lock.as_str()));
                let data = Self::append_data(self.idx, self.next_seq);
                return Op::Append {
                    lock,
                    token,
                    file,
                    data,
                };
            }
            self.phase = Phase::Idle;
            return Op::Release { lock, token };
        }
        let lock = LockName::new(format!("l{}", rng.below(locks as u64)));
        if rng.below(5) == 0 {
            // A linearizable read must show every append acknowledged before it was sent.
            let file = FileName::new(format!("f{}", lock.as_str()));
            return Op::Read { file, offset: 0 };
        }
        let wait = match rng.below(3) {
            0 => None,
            1 => Some(Duration::MAX),
            _ => Some(Duration::from_millis(50 + rng.below(2_000))),
        };
        Op::Acquire {
            lock,
            lease: LEASE,
            wait,
        }
    }

    fn safe_until(&self, first_sent: u64) -> u64 {
        let lease = u64::try_from(LEASE.as_nanos()).unwrap_or(u64::MAX);
        let margin = u64::try_from(u128::from(lease) * u128::from(self.drift_ppm) / 1_000_000)
            .unwrap_or(lease);
        first_sent + lease - margin
    }

    /// Handles the answer to the outstanding request.
    pub fn on_answer(
        &mut self,
        now: u64,
        result: &Result<Reply, Rejection>,
        nodes: usize,
        rng: &mut SimRng,
    ) -> Event {
        let Some(p) = self.pending.clone() else {
            return Event::None;
        };
        if let Err(Rejection::NotLeader { hint }) = result {
            self.target = match hint {
                Some(id) => (id.0 as usize).saturating_sub(1) % nodes,
                None => (self.target + 1) % nodes,
            };
            let backoff = 5_000_000 * u64::from(p.attempts.min(20)) + rng.below(5_000_000);
            if let Some(p) = &mut self.pending {
                p.retry_at = now + backoff;
                p.hinted = true;
            }
            self.wake_at = now + backoff;
            return Event::None;
        }
        self.pending = None;
        self.ops += 1;
        self.wake_at = now + rng.below(20_000_000);
        let until = self.safe_until(p.first_sent);
        match (&p.request.op, result) {
            (Op::Acquire { lock, .. }, Ok(Reply::Granted { token, .. })) => {
                self.phase = Phase::Holding {
                    lock: lock.clone(),
                    token: *token,
                    safe_until: until,
                    appends_left: 1 + rng.below(4) as u32,
                };
                Event::Confirmed {
                    lock: lock.clone(),
                    token: *token,
                    until,
                }
            }
            (Op::KeepAlive, Ok(Reply::KeptAlive { held })) => {
                let Phase::Holding {
                    lock,
                    token,
                    safe_until,
                    ..
                } = &mut self.phase
                else {
                    return Event::None;
                };
                if now < *safe_until && held.contains(&(lock.clone(), *token)) {
                    *safe_until = (*safe_until).max(until);
                    return Event::Confirmed {
                        lock: lock.clone(),
                        token: *token,
                        until,
                    };
                }
                self.phase = Phase::Idle;
                Event::None
            }
            (Op::Append { file, data, .. }, Ok(Reply::Appended { offset })) => {
                if let Phase::Holding { appends_left, .. } = &mut self.phase {
                    *appends_left = appends_left.saturating_sub(1);
                }
                Event::Appended {
                    file: file.clone(),
                    offset: *offset,
                    data: data.clone(),
                }
            }
            (Op::Read { file, .. }, Ok(Reply::Data { data, .. })) => Event::Read {
                file: file.clone(),
                data: data.clone(),
                sent: p.first_sent,
            },
            // No such file is a read of nothing: just as stale if something was acknowledged.
            (Op::Read { file, .. }, Err(Rejection::NoSuchFile)) => Event::Read {
                file: file.clone(),
                data: Vec::new(),
                sent: p.first_sent,
            },
            (Op::Append { .. } | Op::KeepAlive, Err(_)) => {
                // Lost the lock (expired and maybe granted to someone else).
                self.phase = Phase::Idle;
                Event::None
            }
            (Op::Acquire { .. }, Err(Rejection::SessionExpired))
            | (_, Err(Rejection::SessionExpired)) => {
                // Start over as a new client.
                self.id = ClientId(self.id.0.wrapping_add(1 << 64));
                self.next_seq = Seq(1);
                self.phase = Phase::Idle;
                Event::None
            }
            _ => Event::None,
        }
    }
}
