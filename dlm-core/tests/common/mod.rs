//! A one-node harness shared by the handler tests: drives a `Node` through `handle` and drains
//! every effect, keeping what was persisted so a test can restart the node from it.

#![allow(dead_code)]

use dlm_core::message::{AppendOutcome, PeerBody, PeerMessage};
use dlm_core::*;
use std::time::Duration;

/// The lease every test acquire asks for unless it says otherwise.
pub const LEASE: Duration = Duration::from_secs(1);

pub fn req(client: u128, seq: u64, op: Op) -> ClientRequest {
    ClientRequest {
        client: ClientId(client),
        seq: Seq(seq),
        acked_below: Seq(1),
        pending: Vec::new(),
        op,
    }
}

pub fn acquire(lock: &str, wait: Option<Duration>) -> Op {
    Op::Acquire {
        lock: lock.into(),
        lease: LEASE,
        wait,
    }
}

pub fn release(lock: &str, token: u64) -> Op {
    Op::Release {
        lock: lock.into(),
        token: FencingToken(token),
    }
}

pub fn append(lock: &str, token: u64, file: &str, data: &[u8]) -> Op {
    Op::Append {
        lock: lock.into(),
        token: FencingToken(token),
        file: file.into(),
        data: data.to_vec(),
    }
}

pub fn granted(token: u64) -> Result<Reply, Rejection> {
    Ok(Reply::Granted {
        token: FencingToken(token),
        lease: LEASE,
    })
}

/// One node and everything it persisted so far.
pub struct Harness {
    pub node: Node,
    pub now: Time,
    pub hard_state: HardState,
    pub snapshot: Option<Snapshot>,
    pub entries: Vec<Entry>,
}

impl Harness {
    /// A node that has not yet seen any input.
    pub fn fresh(cfg: Config) -> Harness {
        Harness {
            node: Node::new(cfg, Recovered::default()).unwrap(),
            now: Time::ZERO,
            hard_state: HardState::default(),
            snapshot: None,
            entries: Vec::new(),
        }
    }

    /// A single node, ticked until it leads.
    pub fn leader(cfg: Config) -> Harness {
        let mut h = Harness::fresh(cfg);
        h.elect();
        h
    }

    /// Ticks at each deadline until the node leads.
    pub fn elect(&mut self) {
        self.node.handle(self.now, Input::Tick);
        self.drain();
        for _ in 0..100 {
            if self.node.is_leader() {
                return;
            }
            self.now = self.node.next_deadline().max(self.now);
            self.node.handle(self.now, Input::Tick);
            self.drain();
        }
        panic!("node did not become leader");
    }

    /// Executes every queued effect: persists are recorded and reported durable at once.
    pub fn drain(&mut self) -> Vec<Effect> {
        let mut out = Vec::new();
        while let Some(effect) = poll_synchronously(&mut self.node, self.now) {
            match &effect {
                Effect::Persist(Persist::HardState(hs)) => self.hard_state = *hs,
                Effect::Persist(Persist::Entries(entries)) => {
                    if let Some(first) = entries.first() {
                        self.entries.retain(|e| e.index < first.index);
                    }
                    self.entries.extend(entries.iter().cloned());
                }
                Effect::Persist(Persist::Snapshot { snapshot, .. }) => {
                    self.entries.retain(|e| e.index > snapshot.last.index);
                    self.snapshot = Some((**snapshot).clone());
                }
                _ => {}
            }
            out.push(effect);
        }
        out
    }

    /// Hands the node one request on `conn` and returns the effects it produced.
    pub fn request(&mut self, conn: u64, request: ClientRequest) -> Vec<Effect> {
        self.node.handle(
            self.now,
            Input::Client {
                conn: ConnId(conn),
                request,
            },
        );
        self.drain()
    }

    /// The results of the replies among `effects`, in order.
    pub fn request_results(
        &mut self,
        conn: u64,
        request: ClientRequest,
    ) -> Vec<Result<Reply, Rejection>> {
        results(&self.request(conn, request))
    }

    /// Advances time to `t`, ticking at every deadline on the way, and returns all effects.
    pub fn advance_to(&mut self, t: Time) -> Vec<Effect> {
        let mut out = Vec::new();
        loop {
            let next = self.node.next_deadline().max(self.now).min(t);
            self.now = next;
            self.node.handle(next, Input::Tick);
            out.extend(self.drain());
            if next >= t {
                return out;
            }
        }
    }

    /// Advances time by `d`.
    pub fn advance(&mut self, d: Duration) -> Vec<Effect> {
        let t = self.now + d;
        self.advance_to(t)
    }

    /// What a restart would recover.
    pub fn recovered(&self) -> Recovered {
        Recovered {
            hard_state: self.hard_state,
            snapshot: self.snapshot.clone(),
            entries: self.entries.clone(),
        }
    }
}

/// The next effect of `node`, as a synchronous driver sees it: a persist is taken to be durable
/// the moment it is polled, and reported so at once.
pub fn poll_synchronously(node: &mut Node, now: Time) -> Option<Effect> {
    let effect = node.poll_effect()?;
    if let Effect::Persist(persist) = &effect {
        if let Some(position) = persist.log_position() {
            node.handle(now, Input::Persisted(position));
        }
    }
    Some(effect)
}

/// A message to node 1 from node `from`, in `term`.
pub fn peer(from: u64, term: u64, body: PeerBody) -> Input {
    Input::Peer(PeerMessage {
        from: NodeId(from),
        to: NodeId(1),
        term: Term(term),
        body,
    })
}

/// Node `from`'s acknowledgement, in term 1, that its log matches up to `match_index`.
pub fn accepted(from: u64, match_index: u64) -> Input {
    peer(
        from,
        1,
        PeerBody::AppendResponse {
            prev_index: LogIndex(0),
            outcome: AppendOutcome::Accepted {
                match_index: LogIndex(match_index),
            },
        },
    )
}

/// A first keep-alive from `client`, on connection number `client`.
pub fn keep_alive(client: u128) -> Input {
    Input::Client {
        conn: ConnId(client as u64),
        request: req(client, 1, Op::KeepAlive),
    }
}

/// What a keep-alive of a client holding nothing is answered, on connection `conn`.
pub fn kept_alive_nothing(conn: u64) -> Vec<(u64, Result<Reply, Rejection>)> {
    vec![(
        conn,
        Ok(Reply::KeptAlive {
            held: Vec::new(),
            revoked: Vec::new(),
        }),
    )]
}

/// Every queued effect, executed by nobody: in particular no persist is reported durable.
pub fn drain_unsynced(node: &mut Node) -> Vec<Effect> {
    std::iter::from_fn(|| node.poll_effect()).collect()
}

/// Node 1 of 3, fresh: no input yet, nothing stored.
pub fn fresh_node_of_three() -> Node {
    let ids = [NodeId(1), NodeId(2), NodeId(3)];
    Node::new(Config::new(NodeId(1), ids), Recovered::default()).unwrap()
}

/// Node 1 of 3, made leader of term 1 by hand (votes from node 2), its effects drained and
/// none of its persists reported durable.
pub fn leader_of_three() -> (Node, Time) {
    let mut node = fresh_node_of_three();
    node.handle(Time::ZERO, Input::Tick);
    let now = Time::from_millis(1_000);
    node.handle(now, Input::Tick);
    let pre = PeerBody::VoteResponse {
        pre: true,
        granted: true,
    };
    node.handle(now, peer(2, 1, pre));
    let vote = PeerBody::VoteResponse {
        pre: false,
        granted: true,
    };
    node.handle(now, peer(2, 1, vote));
    assert!(node.is_leader());
    drain_unsynced(&mut node);
    (node, now)
}

/// The replies among `effects`, as (conn, result).
pub fn replies(effects: &[Effect]) -> Vec<(u64, Result<Reply, Rejection>)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Reply { conn, response } => Some((conn.0, response.result.clone())),
            _ => None,
        })
        .collect()
}

/// The results of the replies among `effects`.
pub fn results(effects: &[Effect]) -> Vec<Result<Reply, Rejection>> {
    replies(effects).into_iter().map(|(_, r)| r).collect()
}

/// The commands persisted among `effects`.
pub fn persisted(effects: &[Effect]) -> Vec<Command> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Persist(Persist::Entries(entries)) => Some(entries.clone()),
            _ => None,
        })
        .flatten()
        .map(|e| e.command)
        .collect()
}

/// Whether any effect is a persist.
pub fn any_persist(effects: &[Effect]) -> bool {
    effects.iter().any(|e| matches!(e, Effect::Persist(_)))
}

/// The log position `(term, index)`.
pub fn pos(term: u64, index: u64) -> LogPosition {
    LogPosition::new(Term(term), LogIndex(index))
}

/// A Noop entry at `(term, index)`.
pub fn noop(term: u64, index: u64) -> Entry {
    Entry {
        term: Term(term),
        index: LogIndex(index),
        command: Command::Noop,
    }
}

/// Noop entries at each `(term, index)`.
pub fn noops(log: &[(u64, u64)]) -> Vec<Entry> {
    log.iter().map(|&(term, index)| noop(term, index)).collect()
}

/// Node 1's message to `to` in `term` (the node under test is node 1 unless a test says not).
pub fn send(to: u64, term: u64, body: PeerBody) -> Effect {
    Effect::Send(PeerMessage {
        from: NodeId(1),
        to: NodeId(to),
        term: Term(term),
        body,
    })
}

/// A state machine in which client 7 holds lock "a" (token 1, leased for `lease`, seq 1) and,
/// if `data` is given, appended it to file "f" (seq 2): what the snapshot tests restart from.
pub fn client_seven_holding(lease: Duration, data: Option<&[u8]>) -> StateMachine {
    let rules = Rules {
        limits: Limits::default(),
        lock_delay: false,
    };
    let mut sm = StateMachine::new();
    let acquire = Op::Acquire {
        lock: "a".into(),
        lease,
        wait: None,
    };
    sm.apply(
        &Command::Client(req(7, 1, acquire)),
        &rules,
        &mut Vec::new(),
    );
    if let Some(data) = data {
        let append = Op::Append {
            lock: "a".into(),
            token: FencingToken(1),
            file: "f".into(),
            data: data.to_vec(),
        };
        sm.apply(&Command::Client(req(7, 2, append)), &rules, &mut Vec::new());
    }
    sm
}

/// Makes `node` leader of the next term: its election deadline passes, and `voter` grants its
/// pre-vote and its vote. Returns when; the node's effects are left to drain.
pub fn elect(node: &mut Node, voter: u64) -> Time {
    let term = node.term().next();
    node.handle(Time::ZERO, Input::Tick);
    let now = node.next_deadline();
    node.handle(now, Input::Tick);
    for pre in [true, false] {
        let grant = PeerMessage {
            from: NodeId(voter),
            to: node.id(),
            term,
            body: PeerBody::VoteResponse { pre, granted: true },
        };
        node.handle(now, Input::Peer(grant));
    }
    assert!(node.is_leader());
    now
}
