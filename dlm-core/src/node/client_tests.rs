//! Exact-effect tests of a leader's admission of client requests: one call, the whole list of
//! effects, and what is left to propose.

use super::*;
use crate::node::leader_timers::LeaderTimers;
use crate::node::transfer::Transfer;
use crate::node::Effect;
use crate::protocol::ClientResponse;
use crate::state_machine::Rules;
use crate::types::{ClientId, FencingToken, NodeId, Seq, Term};
use std::collections::BTreeMap;
use std::time::Duration;

const CONN: ConnId = ConnId(4);

fn request(client: u128, seq: u64, acked_below: u64, op: Op) -> ClientRequest {
    ClientRequest {
        client: ClientId(client),
        seq: Seq(seq),
        acked_below: Seq(acked_below),
        pending: Vec::new(),
        op,
    }
}

fn acquire(lock: &str, lease_secs: u64, wait: Option<Duration>) -> Op {
    Op::Acquire {
        lock: lock.into(),
        lease: Duration::from_secs(lease_secs),
        wait,
    }
}

fn read() -> Op {
    Op::Read {
        file: "f".into(),
        offset: 0,
    }
}

/// Client 9 holds "a" (seq 1, answered); client 8 waits for it (seq 1); client 7 has acked
/// everything below seq 2.
fn state() -> StateMachine {
    let mut sm = StateMachine::new();
    let rules = Rules {
        limits: Default::default(),
        lock_delay: false,
    };
    let mut outcomes = Vec::new();
    for req in [
        request(9, 1, 1, acquire("a", 10, None)),
        request(8, 1, 1, acquire("a", 10, Some(Duration::from_secs(10)))),
        request(7, 1, 1, acquire("b", 10, None)),
        request(7, 2, 2, Op::KeepAlive),
    ] {
        sm.apply(&Command::Client(req), &rules, &mut outcomes);
    }
    sm
}

struct World {
    cfg: Config,
    sm: StateMachine,
    log: Log,
    leader: Leader,
}

impl World {
    fn new() -> World {
        World {
            cfg: Config::new(NodeId(1), [NodeId(1), NodeId(2), NodeId(3)]),
            sm: state(),
            log: Log::new(crate::types::LogPosition::new(Term(1), LogIndex(4)), []),
            leader: Leader::new(
                BTreeMap::new(),
                LeaderTimers::default(),
                Time::ZERO,
                LogIndex(4),
            ),
        }
    }

    /// Admits `req` and returns the effects and what is left to propose.
    fn admit(&mut self, req: ClientRequest) -> (Vec<Effect>, Option<ClientRequest>) {
        let mut out = Output::default();
        let proposed = Admission {
            cfg: &self.cfg,
            now: Time::from_millis(100),
            sm: &self.sm,
            log: &self.log,
            applied: LogIndex(4),
            commit: LogIndex(4),
            leader: &mut self.leader,
            out: &mut out,
        }
        .admit(CONN, req);
        (std::iter::from_fn(|| out.pop()).collect(), proposed)
    }
}

fn reply(client: u128, seq: u64, result: Result<Reply, Rejection>) -> Effect {
    Effect::Reply {
        conn: CONN,
        response: ClientResponse {
            client: ClientId(client),
            seq: Seq(seq),
            result,
        },
    }
}

fn bad_lease(max_secs: u64) -> Result<Reply, Rejection> {
    Err(Rejection::BadLease {
        min: Duration::from_millis(100),
        max: Duration::from_secs(max_secs),
    })
}

#[test]
fn a_new_request_is_proposed_once_and_its_connection_remembered() {
    let mut world = World::new();
    let req = request(9, 2, 2, acquire("c", 10, None));
    assert_eq!(world.admit(req.clone()), (vec![], Some(req.clone())));
    assert_eq!(
        world.leader.waiting.get(&(ClientId(9), Seq(2))),
        Some(&CONN)
    );
    assert_eq!(world.admit(req), (vec![], None), "proposed twice");
}

#[test]
fn during_a_hand_over_requests_are_sent_to_the_successor() {
    let mut world = World::new();
    world.leader.transfer = Some(Transfer {
        to: NodeId(2),
        asked: false,
    });
    let hint = Some(NodeId(2));
    let (effects, proposed) = world.admit(request(9, 2, 2, Op::KeepAlive));
    assert_eq!(effects, [reply(9, 2, Err(Rejection::NotLeader { hint }))]);
    assert_eq!(proposed, None);
}

#[test]
fn a_malformed_request_never_reaches_the_log_and_names_the_nodes_range() {
    let mut world = World::new();
    let (effects, proposed) = world.admit(request(5, 1, 1, acquire("a", 0, None)));
    assert_eq!(
        (effects, proposed),
        (vec![reply(5, 1, bad_lease(300))], None)
    );
    world.cfg.lease_cap = Some(Duration::from_secs(20));
    let (effects, _) = world.admit(request(5, 1, 1, acquire("a", 0, None)));
    assert_eq!(effects, [reply(5, 1, bad_lease(20))]);
}

#[test]
fn a_retry_of_an_answered_request_gets_the_same_answer() {
    let mut world = World::new();
    let (effects, proposed) = world.admit(request(9, 1, 1, acquire("a", 10, None)));
    let granted = Ok(Reply::Granted {
        token: FencingToken(1),
        lease: Duration::from_secs(10),
    });
    assert_eq!((effects, proposed), (vec![reply(9, 1, granted)], None));
}

#[test]
fn a_retry_of_a_queued_request_waits_on_its_new_connection() {
    let mut world = World::new();
    let retry = request(8, 1, 1, acquire("a", 10, Some(Duration::from_secs(10))));
    assert_eq!(world.admit(retry), (vec![], None));
    assert_eq!(
        world.leader.waiting.get(&(ClientId(8), Seq(1))),
        Some(&CONN)
    );
}

#[test]
fn a_request_below_the_watermark_is_refused() {
    let mut world = World::new();
    let (effects, proposed) = world.admit(request(7, 1, 1, acquire("b", 10, None)));
    let refused = Err(Rejection::SeqBelowWatermark);
    assert_eq!((effects, proposed), (vec![reply(7, 1, refused)], None));
}

/// A queued acquire the client names pending is not below the watermark, however far the
/// watermark has moved past it: a retry waits on its new connection, and a seq the watermark
/// passed without its being named is refused.
#[test]
fn a_pending_acquire_past_the_watermark_is_admitted_and_others_are_not() {
    let mut world = World::new();
    let rules = Rules {
        limits: Default::default(),
        lock_delay: false,
    };
    let mut outcomes = Vec::new();
    for (seq, acked_below) in [(2, 2), (3, 3), (4, 4)] {
        let mut req = request(8, seq, acked_below, Op::KeepAlive);
        req.pending = vec![Seq(1)];
        world.sm.apply(&Command::Client(req), &rules, &mut outcomes);
    }
    let mut retry = request(8, 1, 4, acquire("a", 10, Some(Duration::from_secs(10))));
    retry.pending = vec![Seq(1)];
    assert_eq!(world.admit(retry), (vec![], None));
    assert_eq!(
        world.leader.waiting.get(&(ClientId(8), Seq(1))),
        Some(&CONN)
    );
    let (effects, proposed) = world.admit(request(8, 2, 4, Op::KeepAlive));
    let refused = Err(Rejection::SeqBelowWatermark);
    assert_eq!((effects, proposed), (vec![reply(8, 2, refused)], None));
}

/// Pending seqs out of order, or too many, are refused before anything else.
#[test]
fn malformed_pending_seqs_are_refused_at_admission() {
    let mut world = World::new();
    let mut req = request(6, 5, 5, acquire("c", 10, None));
    req.pending = vec![Seq(3), Seq(2)];
    let (effects, proposed) = world.admit(req);
    let refused = Err(Rejection::Invalid("malformed pending seqs".into()));
    assert_eq!((effects, proposed), (vec![reply(6, 5, refused)], None));
}

#[test]
fn a_lease_over_the_cap_is_refused_unless_an_earlier_leader_logged_it() {
    let mut world = World::new();
    world.cfg.lease_cap = Some(Duration::from_secs(20));
    let req = request(6, 1, 1, acquire("c", 30, None));
    assert_eq!(
        world.admit(req.clone()),
        (vec![reply(6, 1, bad_lease(20))], None)
    );
    world.log.push(crate::command::Entry {
        term: Term(1),
        index: LogIndex(5),
        command: Command::Client(req.clone()),
    });
    assert_eq!(world.admit(req.clone()), (vec![], Some(req)));
    // A lease of exactly the cap is within it.
    let at_cap = request(5, 1, 1, acquire("d", 20, None));
    assert_eq!(world.admit(at_cap.clone()), (vec![], Some(at_cap)));
}

#[test]
fn a_known_session_reads_without_the_log_and_a_new_one_through_it() {
    let mut world = World::new();
    assert_eq!(world.admit(request(9, 2, 2, read())), (vec![], None));
    let unsent: Vec<_> = world.leader.reads.drain().collect();
    assert_eq!(unsent, [(CONN, ClientId(9), Seq(2))]);
    let first = request(5, 1, 1, read());
    assert_eq!(world.admit(first.clone()), (vec![], Some(first)));
}
