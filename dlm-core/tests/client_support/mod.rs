//! A small harness for driving a [`ClientCore`] by hand in tests: feed one event at a virtual
//! time, get back every output it queued, and build the expected outputs tersely.
#![allow(dead_code)]

use dlm_core::client::{
    CallId, CallOp, ClientConfig, ClientCore, ClientError, ClientEvent, ClientOutput, Done,
    DriftBound, LossReason, NodeCause, Wait,
};
use dlm_core::{
    ClientId, ClientRequest, ClientResponse, FencingToken, FileName, LockName, LogIndex, Mode,
    NodeId, NodeStatus, Op, Rejection, Reply, Role, Seq, Term, Time,
};
use std::time::Duration;

/// The seed every test core is built with.
pub const SEED: u64 = 7;
/// The lease every test config asks for.
pub const LEASE: Duration = Duration::from_secs(10);

/// `n` nodes numbered from 1, 10 s leases, back-off 10 ms doubling to 1 s, 1 s attempts, a
/// 10 s deadline, a 300 ms leader check and the default drift bound (2 % + 10 ms).
pub fn cfg(n: u64) -> ClientConfig {
    let mut cfg = ClientConfig::new((1..=n).map(NodeId));
    cfg.lease = LEASE;
    cfg.backoff_base = Duration::from_millis(10);
    cfg.backoff_cap = Duration::from_secs(1);
    cfg.attempt_timeout = Duration::from_secs(1);
    cfg.deadline = Duration::from_secs(10);
    cfg.leader_check = Duration::from_millis(300);
    cfg.drift = DriftBound::DEFAULT;
    cfg
}

pub fn ms(millis: u64) -> Time {
    Time::from_millis(millis)
}

pub fn lock(name: &str) -> LockName {
    LockName::from(name)
}

/// One core and the time it was last fed.
pub struct Harness {
    pub core: ClientCore,
    pub now: Time,
}

impl Harness {
    pub fn new(cfg: ClientConfig) -> Harness {
        Harness {
            core: ClientCore::new(cfg, SEED),
            now: Time::ZERO,
        }
    }

    /// Feeds `event` at `now` and drains every output.
    pub fn feed(&mut self, now: Time, event: ClientEvent) -> Vec<ClientOutput> {
        self.now = now;
        self.core.handle(now, event);
        self.drain()
    }

    pub fn drain(&mut self) -> Vec<ClientOutput> {
        std::iter::from_fn(|| self.core.poll_output()).collect()
    }

    pub fn session(&self) -> ClientId {
        self.core.session()
    }

    pub fn deadline(&self) -> Time {
        self.core.next_deadline()
    }

    pub fn start(&mut self, now: Time, call: u64, op: CallOp) -> Vec<ClientOutput> {
        let event = ClientEvent::Start {
            call: CallId(call),
            op,
        };
        self.feed(now, event)
    }

    pub fn abandon(&mut self, now: Time, call: u64) -> Vec<ClientOutput> {
        self.feed(now, ClientEvent::Abandon(CallId(call)))
    }

    /// `node` answers request `seq` of the current session.
    pub fn answer(
        &mut self,
        now: Time,
        node: u64,
        seq: u64,
        result: Result<Reply, Rejection>,
    ) -> Vec<ClientOutput> {
        let client = self.session();
        self.answer_as(now, node, client, seq, result)
    }

    /// `node` answers request `seq` of session `client`.
    pub fn answer_as(
        &mut self,
        now: Time,
        node: u64,
        client: ClientId,
        seq: u64,
        result: Result<Reply, Rejection>,
    ) -> Vec<ClientOutput> {
        let response = ClientResponse {
            client,
            seq: Seq(seq),
            result,
        };
        let event = ClientEvent::Answer {
            node: NodeId(node),
            response,
        };
        self.feed(now, event)
    }

    /// Request `seq` of the current session could not be delivered to `node`.
    pub fn fail(&mut self, now: Time, node: u64, seq: u64, cause: NodeCause) -> Vec<ClientOutput> {
        let event = ClientEvent::Failed {
            node: NodeId(node),
            client: self.session(),
            seq: Seq(seq),
            cause,
        };
        self.feed(now, event)
    }

    pub fn tick(&mut self, now: Time) -> Vec<ClientOutput> {
        self.feed(now, ClientEvent::Tick)
    }

    /// Ticks at the core's next deadline; returns that time and the outputs.
    pub fn tick_deadline(&mut self) -> (Time, Vec<ClientOutput>) {
        let at = self.deadline();
        assert_ne!(at, Time::MAX, "nothing is scheduled");
        (at, self.tick(at))
    }

    /// Starts a try-lock of `name` as `call` at `now` and has node 1 grant it at once with
    /// `token` (the core must be fresh enough for its acquire to go to node 1 as `seq`).
    pub fn hold(&mut self, now: Time, call: u64, name: &str, seq: u64, token: u64) -> Time {
        let out = self.start(now, call, try_acquire(name));
        assert!(
            matches!(&out[..], [ClientOutput::Send { node: NodeId(1), request }] if request.seq == Seq(seq)),
            "{out:?}"
        );
        let out = self.answer(now, 1, seq, granted(token));
        let safe_until = DriftBound::DEFAULT.safe_until(now, LEASE);
        assert_eq!(
            out,
            vec![done(
                call,
                Done::Granted {
                    lock: lock(name),
                    token: FencingToken(token),
                    safe_until
                }
            )]
        );
        safe_until
    }
}

pub fn try_acquire(name: &str) -> CallOp {
    CallOp::Acquire {
        lock: lock(name),
        wait: Wait::Try,
        mode: Mode::Exclusive,
    }
}

pub fn acquire(name: &str, wait: Wait) -> CallOp {
    CallOp::Acquire {
        lock: lock(name),
        wait,
        mode: Mode::Exclusive,
    }
}

pub fn read_call(file: &str) -> CallOp {
    CallOp::Read {
        file: FileName::from(file),
        offset: 0,
    }
}

pub fn append_call(name: &str, token: u64) -> CallOp {
    CallOp::Append {
        lock: lock(name),
        token: FencingToken(token),
        file: FileName::from("journal"),
        data: b"entry".to_vec(),
    }
}

/// The wire op of an acquire asked by a [`cfg`] core.
pub fn acquire_op(name: &str, wait: Option<Duration>) -> Op {
    Op::Acquire {
        lock: lock(name),
        lease: LEASE,
        wait,
    }
}

pub fn read_op(file: &str) -> Op {
    Op::Read {
        file: FileName::from(file),
        offset: 0,
    }
}

pub fn append_op(name: &str, token: u64) -> Op {
    Op::Append {
        lock: lock(name),
        token: FencingToken(token),
        file: FileName::from("journal"),
        data: b"entry".to_vec(),
    }
}

pub fn release_op(name: &str, token: u64) -> Op {
    Op::Release {
        lock: lock(name),
        token: FencingToken(token),
    }
}

pub fn cancel_op(name: &str, seq: u64) -> Op {
    Op::Cancel {
        lock: lock(name),
        seq: Seq(seq),
    }
}

/// The output sending `op` to `node` as request `seq` of `client`.
pub fn send(node: u64, client: ClientId, seq: u64, acked_below: u64, op: Op) -> ClientOutput {
    ClientOutput::Send {
        node: NodeId(node),
        request: ClientRequest {
            client,
            seq: Seq(seq),
            acked_below: Seq(acked_below),
            pending: Vec::new(),
            op,
        },
    }
}

/// [`send`] with `pending` seqs named below `acked_below`.
pub fn send_pending(
    node: u64,
    client: ClientId,
    seq: u64,
    acked_below: u64,
    pending: &[u64],
    op: Op,
) -> ClientOutput {
    let ClientOutput::Send { node, mut request } = send(node, client, seq, acked_below, op) else {
        unreachable!("send makes a Send");
    };
    request.pending = pending.iter().map(|s| Seq(*s)).collect();
    ClientOutput::Send { node, request }
}

pub fn done(call: u64, result: Done) -> ClientOutput {
    ClientOutput::Done {
        call: CallId(call),
        result: Ok(result),
    }
}

pub fn failed(call: u64, error: ClientError) -> ClientOutput {
    ClientOutput::Done {
        call: CallId(call),
        result: Err(error),
    }
}

pub fn renewed(name: &str, token: u64, safe_until: Time) -> ClientOutput {
    ClientOutput::Renewed {
        lock: lock(name),
        token: FencingToken(token),
        safe_until,
    }
}

pub fn lost(name: &str, token: u64, reason: LossReason) -> ClientOutput {
    ClientOutput::Lost {
        lock: lock(name),
        token: FencingToken(token),
        reason,
    }
}

pub fn granted(token: u64) -> Result<Reply, Rejection> {
    Ok(Reply::Granted {
        token: FencingToken(token),
        lease: LEASE,
    })
}

pub fn data(bytes: &[u8]) -> Result<Reply, Rejection> {
    Ok(Reply::Data {
        data: bytes.to_vec(),
        len: bytes.len() as u64,
    })
}

pub fn kept_alive(held: &[(&str, u64)]) -> Result<Reply, Rejection> {
    kept_alive_revoked(held, &[])
}

/// A keep-alive answer listing `held` as held and `revoked` as revoked by an operator.
pub fn kept_alive_revoked(
    held: &[(&str, u64)],
    revoked: &[(&str, u64)],
) -> Result<Reply, Rejection> {
    let grants = |list: &[(&str, u64)]| {
        list.iter()
            .map(|(name, token)| (lock(name), FencingToken(*token)))
            .collect()
    };
    Ok(Reply::KeptAlive {
        held: grants(held),
        revoked: grants(revoked),
    })
}

pub fn not_leader(hint: Option<u64>) -> Result<Reply, Rejection> {
    Err(Rejection::NotLeader {
        hint: hint.map(NodeId),
    })
}

/// The wire op of a status request (a status call, or a probe of a waiting acquire's node).
pub fn status_op() -> Op {
    Op::Status
}

/// Node `id`'s answer to a status request: its `role` and the leader it knows of.
pub fn status(id: u64, role: Role, leader: Option<u64>) -> Result<Reply, Rejection> {
    Ok(Reply::Status(NodeStatus {
        id: NodeId(id),
        role,
        term: Term(4),
        leader: leader.map(NodeId),
        commit: LogIndex(9),
        applied: LogIndex(9),
        last_index: LogIndex(9),
        leader_addr: String::new(),
    }))
}

/// Node `id` answering a status request as the leader.
pub fn leads(id: u64) -> Result<Reply, Rejection> {
    status(id, Role::Leader, Some(id))
}

/// A grant of `token` under a lease of `lease`.
pub fn granted_for(token: u64, lease: Duration) -> Result<Reply, Rejection> {
    Ok(Reply::Granted {
        token: FencingToken(token),
        lease,
    })
}
