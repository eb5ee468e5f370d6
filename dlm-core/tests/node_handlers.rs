//! Handler tests of a single node: the exact effects each kind of request emits, and that a
//! refused request leaves the replicated state as it was.

mod common;

use common::*;
use dlm_core::message::PeerBody;
use dlm_core::*;
use std::time::Duration;

fn single() -> Config {
    Config::single(NodeId(1))
}

#[test]
fn acquire_on_fresh_leader_persists_then_replies_granted() {
    let mut h = Harness::leader(single());
    let term = h.node.term();
    let index = h.node.last_log().index.next();
    let request = req(7, 1, acquire("a", None));
    let effects = h.request(3, request.clone());
    assert_eq!(
        effects,
        vec![
            Effect::Persist(Persist::Entries(vec![Entry {
                term,
                index,
                command: Command::Client(request),
            }])),
            Effect::Reply {
                conn: ConnId(3),
                response: ClientResponse {
                    client: ClientId(7),
                    seq: Seq(1),
                    result: granted(1),
                },
            },
        ]
    );
    let holder = h
        .node
        .state_machine()
        .lock("a")
        .unwrap()
        .holder()
        .cloned()
        .unwrap();
    assert_eq!(
        (holder.client, holder.token),
        (ClientId(7), FencingToken(1))
    );
}

#[test]
fn retry_of_answered_request_gets_cached_reply_without_persist() {
    let mut h = Harness::leader(single());
    assert_eq!(
        h.request_results(1, req(7, 1, acquire("a", None))),
        vec![granted(1)]
    );
    let before = h.node.state_machine().clone();
    let last = h.node.last_log();
    let effects = h.request(2, req(7, 1, acquire("a", None)));
    assert_eq!(
        effects,
        vec![Effect::Reply {
            conn: ConnId(2),
            response: ClientResponse {
                client: ClientId(7),
                seq: Seq(1),
                result: granted(1),
            },
        }]
    );
    assert_eq!(h.node.state_machine(), &before);
    assert_eq!(h.node.last_log(), last);
}

#[test]
fn retry_of_queued_acquire_is_not_enqueued_twice_and_newest_conn_is_answered() {
    let mut h = Harness::leader(single());
    h.request(1, req(1, 1, acquire("a", None)));
    let forever = Some(Duration::MAX);
    let effects = h.request(2, req(2, 1, acquire("a", forever)));
    assert_eq!(persisted(&effects).len(), 1);
    assert!(replies(&effects).is_empty());
    // The retry arrives on another connection: nothing is proposed, nothing answered yet.
    let effects = h.request(3, req(2, 1, acquire("a", forever)));
    assert_eq!(effects, vec![]);
    assert_eq!(h.node.state_machine().lock("a").unwrap().waiters.len(), 1);
    let effects = h.request(1, req(1, 2, release("a", 1)));
    assert_eq!(
        replies(&effects),
        vec![(3, granted(2)), (1, Ok(Reply::Released))]
    );
}

#[test]
fn follower_before_election_answers_not_leader_only() {
    let cfg = Config::new(NodeId(1), [NodeId(1), NodeId(2), NodeId(3)]);
    let mut h = Harness::fresh(cfg);
    let before = h.node.state_machine().clone();
    let effects = h.request(4, req(9, 1, acquire("a", None)));
    assert_eq!(
        effects,
        vec![Effect::Reply {
            conn: ConnId(4),
            response: ClientResponse {
                client: ClientId(9),
                seq: Seq(1),
                result: Err(Rejection::NotLeader { hint: None }),
            },
        }]
    );
    assert_eq!(h.node.state_machine(), &before);
}

#[test]
fn status_is_answered_by_any_node_without_the_log() {
    let cfg = Config::new(NodeId(2), [NodeId(1), NodeId(2), NodeId(3)]);
    let mut h = Harness::fresh(cfg);
    let effects = h.request(1, req(9, 1, Op::Status));
    let [Effect::Reply { response, .. }] = effects.as_slice() else {
        panic!("{effects:?}")
    };
    let Ok(Reply::Status(status)) = &response.result else {
        panic!("{response:?}")
    };
    assert_eq!((status.id, status.role), (NodeId(2), Role::Follower));
}

/// A request the node refuses before the log: exactly one reply, no persist, same state.
fn assert_refused_up_front(h: &mut Harness, request: ClientRequest, refusal: Rejection) {
    let before = h.node.state_machine().clone();
    let last = h.node.last_log();
    let effects = h.request(5, request.clone());
    assert_eq!(
        effects,
        vec![Effect::Reply {
            conn: ConnId(5),
            response: ClientResponse {
                client: request.client,
                seq: request.seq,
                result: Err(refusal),
            },
        }],
        "{request:?}"
    );
    assert_eq!(h.node.state_machine(), &before);
    assert_eq!(h.node.last_log(), last);
}

#[test]
fn malformed_requests_are_refused_without_persist() {
    let mut cfg = single();
    cfg.limits.max_name_len = 4;
    cfg.limits.max_append = 8;
    let mut h = Harness::leader(cfg);
    let bad_name = Rejection::BadName { max: 4 };
    assert_refused_up_front(
        &mut h,
        req(1, 1, acquire("toolong", None)),
        bad_name.clone(),
    );
    assert_refused_up_front(&mut h, req(1, 1, acquire("", None)), bad_name.clone());
    assert_refused_up_front(&mut h, req(1, 1, release("toolong", 1)), bad_name.clone());
    assert_refused_up_front(
        &mut h,
        req(1, 1, append("a", 1, "toolong", b"x")),
        bad_name.clone(),
    );
    assert_refused_up_front(
        &mut h,
        req(
            1,
            1,
            Op::Read {
                file: "".into(),
                offset: 0,
            },
        ),
        bad_name,
    );
    assert_refused_up_front(
        &mut h,
        req(1, 1, append("a", 1, "f", &[0; 9])),
        Rejection::AppendTooLarge { max: 8 },
    );
    let limits = Limits::default();
    let bad_lease = Rejection::BadLease {
        min: limits.min_lease,
        max: limits.max_lease,
    };
    for lease in [Duration::ZERO, limits.min_lease / 2, limits.max_lease * 2] {
        let op = Op::Acquire {
            lock: "a".into(),
            lease,
            wait: None,
        };
        assert_refused_up_front(&mut h, req(1, 1, op), bad_lease.clone());
    }
}

#[test]
fn seq_below_watermark_is_refused_without_persist() {
    let mut h = Harness::leader(single());
    h.request(1, req(1, 1, acquire("a", None)));
    let mut second = req(1, 5, release("a", 1));
    second.acked_below = Seq(5);
    assert_eq!(h.request_results(1, second), vec![Ok(Reply::Released)]);
    assert_refused_up_front(
        &mut h,
        req(1, 2, acquire("a", None)),
        Rejection::SeqBelowWatermark,
    );
}

/// A request refused by the state machine: it goes through the log (so a retry gets the same
/// answer) but changes no lock, file or token.
fn assert_refused_in_log(h: &mut Harness, request: ClientRequest, refusal: Rejection) {
    let before = h.node.state_machine().clone();
    let effects = h.request(6, request.clone());
    assert_eq!(persisted(&effects), vec![Command::Client(request.clone())]);
    assert_eq!(replies(&effects), vec![(6, Err(refusal))], "{request:?}");
    let after = h.node.state_machine();
    assert!(after.locks().eq(before.locks()));
    assert!(after.files().eq(before.files()));
    assert_eq!(after.last_token(), before.last_token());
}

#[test]
fn release_and_append_by_non_holders_are_refused() {
    let mut h = Harness::leader(single());
    assert_refused_in_log(
        &mut h,
        req(1, 1, release("nolock", 1)),
        Rejection::NotHolder,
    );
    // An unknown lock leaves no entry behind.
    assert!(h.node.state_machine().lock("nolock").is_none());
    assert_eq!(
        h.request_results(1, req(1, 2, acquire("a", None))),
        vec![granted(1)]
    );
    assert_eq!(
        h.request_results(1, req(1, 3, release("a", 1))),
        vec![Ok(Reply::Released)]
    );
    assert_eq!(
        h.request_results(2, req(2, 1, acquire("a", None))),
        vec![granted(2)]
    );
    // Client 1's old grant is stale; a token from the future is simply not the holder's.
    let stale = Rejection::StaleToken {
        presented: FencingToken(1),
    };
    assert_refused_in_log(&mut h, req(1, 4, release("a", 1)), stale.clone());
    assert_refused_in_log(&mut h, req(1, 5, append("a", 1, "f", b"x")), stale);
    assert_refused_in_log(&mut h, req(2, 2, release("a", 9)), Rejection::NotHolder);
    assert_refused_in_log(&mut h, req(3, 1, release("a", 2)), Rejection::NotHolder);
    assert_refused_in_log(
        &mut h,
        req(2, 3, acquire("a", None)),
        Rejection::AlreadyHeld {
            token: FencingToken(2),
        },
    );
}

#[test]
fn try_lock_on_held_lock_is_busy() {
    let mut h = Harness::leader(single());
    h.request(1, req(1, 1, acquire("a", None)));
    assert_refused_in_log(&mut h, req(2, 1, acquire("a", None)), Rejection::Busy);
    // A zero wait is a try-lock that says so.
    assert_refused_in_log(
        &mut h,
        req(2, 2, acquire("a", Some(Duration::ZERO))),
        Rejection::TimedOut,
    );
}

#[test]
fn waiter_limit_session_limit_and_unacked_limit() {
    let mut cfg = single();
    cfg.limits.max_waiters = 1;
    cfg.limits.max_sessions = 3;
    cfg.limits.max_unacked = 2;
    let mut h = Harness::leader(cfg);
    let wait = Some(Duration::from_secs(5));
    h.request(1, req(1, 1, acquire("a", None)));
    assert!(h
        .request_results(2, req(2, 1, acquire("a", wait)))
        .is_empty());
    assert_refused_in_log(
        &mut h,
        req(3, 1, acquire("a", wait)),
        Rejection::TooManyWaiters { max: 1 },
    );
    // Clients 1, 2 and 3 have sessions; a fourth is refused.
    assert_refused_in_log(
        &mut h,
        req(4, 1, acquire("b", None)),
        Rejection::TooManySessions { max: 3 },
    );
    assert!(h.node.state_machine().session(ClientId(4)).is_none());
    // Client 3 has one answered slot; a second fills the cache, a third is refused.
    h.request(3, req(3, 2, acquire("c", None)));
    assert_refused_in_log(
        &mut h,
        req(3, 3, acquire("d", None)),
        Rejection::TooManyUnacked { max: 2 },
    );
}

#[test]
fn file_limits_binding_and_reads_in_chunks() {
    let mut cfg = single();
    cfg.limits.max_file = 10;
    cfg.limits.max_read = 4;
    let mut h = Harness::leader(cfg);
    let read = |seq, offset| {
        req(
            1,
            seq,
            Op::Read {
                file: "f".into(),
                offset,
            },
        )
    };
    assert_refused_in_log(&mut h, read(1, 0), Rejection::NoSuchFile);
    h.request(1, req(1, 2, acquire("a", None)));
    h.request(1, req(1, 3, acquire("b", None)));
    let effects = h.request(1, req(1, 4, append("a", 1, "f", b"0123456")));
    assert_eq!(results(&effects), vec![Ok(Reply::Appended { offset: 0 })]);
    assert!(effects.contains(&Effect::Applied(Applied::Appended {
        file: "f".into(),
        offset: 0,
        data: b"0123456".to_vec(),
    })));
    assert_refused_in_log(
        &mut h,
        req(1, 5, append("b", 2, "f", b"x")),
        Rejection::WrongLock { guard: "a".into() },
    );
    assert_refused_in_log(
        &mut h,
        req(1, 6, append("a", 1, "f", b"abcd")),
        Rejection::FileTooLarge { max: 10 },
    );
    assert_refused_in_log(
        &mut h,
        req(1, 7, append("a", 1, "g", &[0; 11])),
        Rejection::FileTooLarge { max: 10 },
    );
    assert_eq!(
        h.request_results(1, req(1, 8, append("a", 1, "f", b"789"))),
        vec![Ok(Reply::Appended { offset: 7 })]
    );
    let mut data = Vec::new();
    let mut chunks = Vec::new();
    for (seq, offset) in [(9, 0), (10, 4), (11, 8), (12, 10), (13, 99)] {
        let results = h.request_results(1, read(seq, offset));
        let [Ok(Reply::Data { data: chunk, len })] = results.as_slice() else {
            panic!("read at {offset}")
        };
        assert_eq!(*len, 10);
        chunks.push(chunk.len());
        data.extend_from_slice(chunk);
    }
    assert_eq!(chunks, vec![4, 4, 2, 0, 0]);
    assert_eq!(data, b"0123456789");
}

/// A single node that grants leases of at most `cap`.
fn capped(cap: Duration) -> Config {
    let mut cfg = single();
    cfg.lease_cap = Some(cap);
    cfg
}

fn acquire_for(lock: &str, lease: Duration, wait: Option<Duration>) -> Op {
    Op::Acquire {
        lock: lock.into(),
        lease,
        wait,
    }
}

#[test]
fn lease_above_the_cap_is_refused_up_front_naming_the_cap() {
    let cap = LEASE / 2;
    let mut h = Harness::leader(capped(cap));
    let limits = Limits::default();
    let refusal = Rejection::BadLease {
        min: limits.min_lease,
        max: cap,
    };
    // Above the cap but within the replicated limits, and outside those limits at either end:
    // the refusal always names the range this node accepts.
    let leases = [
        cap + Duration::from_millis(1),
        LEASE,
        limits.max_lease * 2,
        limits.min_lease / 2,
    ];
    for lease in leases {
        let op = acquire_for("a", lease, None);
        assert_refused_up_front(&mut h, req(1, 1, op), refusal.clone());
    }
    // A request that would queue is refused before it queues.
    h.request(2, req(2, 1, acquire_for("a", cap, None)));
    let queued = acquire_for("a", LEASE, Some(Duration::MAX));
    assert_refused_up_front(&mut h, req(1, 1, queued), refusal);
    assert!(h.node.state_machine().session(ClientId(1)).is_none());
}

#[test]
fn lease_at_the_cap_is_granted() {
    let mut h = Harness::leader(capped(LEASE));
    assert_eq!(
        h.request_results(1, req(1, 1, acquire("a", None))),
        vec![granted(1)]
    );
}

/// A leader with a tighter cap than the one that granted a request (here the same node,
/// restarted with a cap) answers a retry of it from the dedup cache, with its first answer.
#[test]
fn retry_of_an_acquire_granted_before_the_cap_gets_its_first_answer() {
    let mut h = Harness::leader(single());
    assert_eq!(
        h.request_results(1, req(7, 1, acquire("a", None))),
        vec![granted(1)]
    );
    let cap = LEASE / 2;
    let mut restarted = Harness::fresh(capped(cap));
    restarted.node = Node::new(restarted.node.config().clone(), h.recovered()).unwrap();
    restarted.now = h.now;
    restarted.elect();
    assert_eq!(
        restarted.request_results(2, req(7, 1, acquire("a", None))),
        vec![granted(1)]
    );
    let refusal = Rejection::BadLease {
        min: Limits::default().min_lease,
        max: cap,
    };
    assert_refused_up_front(&mut restarted, req(7, 2, acquire("b", None)), refusal);
}

#[test]
fn a_lease_cap_outside_the_lease_limits_is_refused() {
    let limits = Limits::default();
    for cap in [limits.min_lease, LEASE, limits.max_lease] {
        assert_eq!(capped(cap).validate(), Ok(()), "{cap:?}");
    }
    let nano = Duration::from_nanos(1);
    for cap in [
        Duration::ZERO,
        limits.min_lease - nano,
        limits.max_lease + nano,
    ] {
        let result = capped(cap).validate();
        assert!(
            matches!(&result, Err(ConfigError::Invalid(why)) if why.contains("lease_cap")),
            "{cap:?}: {result:?}"
        );
        let node = Node::new(capped(cap), Recovered::default());
        assert!(
            matches!(node, Err(NodeError::Config(ConfigError::Invalid(_)))),
            "{cap:?}"
        );
    }
}

/// The cap is the leader's alone: a follower whose own cap is tighter applies a committed acquire
/// for a longer lease exactly as the replicated rules say, so the members do not diverge.
#[test]
fn follower_with_a_tighter_cap_applies_the_leaders_committed_acquire() {
    let limits = Limits::default();
    let mut cfg = Config::new(NodeId(2), [NodeId(1), NodeId(2), NodeId(3)]);
    cfg.lease_cap = Some(limits.min_lease);
    let mut h = Harness::fresh(cfg);
    let commands = [
        Command::Noop,
        Command::Client(req(7, 1, acquire("a", None))),
    ];
    let entries = commands
        .iter()
        .zip(1..)
        .map(|(command, index)| Entry {
            term: Term(1),
            index: LogIndex(index),
            command: command.clone(),
        })
        .collect();
    let append = message::PeerMessage {
        from: NodeId(1),
        to: NodeId(2),
        term: Term(1),
        body: message::PeerBody::AppendEntries {
            prev: LogPosition::default(),
            entries,
            commit: LogIndex(2),
        },
    };
    h.node.handle(h.now, Input::Peer(append));
    h.drain();
    assert_eq!(h.node.applied_index(), LogIndex(2));
    let holder = h
        .node
        .state_machine()
        .lock("a")
        .and_then(|state| state.holder().cloned());
    let holder = holder.map(|holder| (holder.client, holder.token, holder.lease));
    assert_eq!(holder, Some((ClientId(7), FencingToken(1), LEASE)));
    let mut expected = StateMachine::new();
    let rules = Rules {
        limits,
        lock_delay: false,
    };
    for command in &commands {
        expected.apply(command, &rules, &mut Vec::new());
    }
    assert_eq!(h.node.state_machine(), &expected);
}

/// A retry whose first try an uncapped earlier leader already put in this node's log is not
/// refused by this node's tighter cap: that entry may still commit and grant the lock, and the
/// client must then hear `Granted`, not `BadLease` (found in review).
#[test]
fn a_retry_of_an_acquire_already_in_the_log_is_not_refused_by_the_cap() {
    let ids = [NodeId(1), NodeId(2), NodeId(3)];
    let mut cfg = Config::new(NodeId(1), ids);
    cfg.lease_cap = Some(LEASE / 2);
    let mut node = Node::new(cfg, Recovered::default()).unwrap();
    let mut now = Time::from_millis(10);
    node.handle(now, Input::Tick);
    // Leader 2 of term 1, without a cap, replicated client 9's acquire; it is not committed.
    let first = req(9, 1, acquire("a", None));
    let entries = vec![
        Entry {
            term: Term(1),
            index: LogIndex(1),
            command: Command::Noop,
        },
        Entry {
            term: Term(1),
            index: LogIndex(2),
            command: Command::Client(first.clone()),
        },
    ];
    let append = PeerBody::AppendEntries {
        prev: LogPosition::default(),
        entries,
        commit: LogIndex(0),
    };
    node.handle(now, peer(2, 1, append));
    while poll_synchronously(&mut node, now).is_some() {}
    // Node 2 is gone: node 1 stands and wins term 2 with node 3's vote.
    while node.role() != Role::PreCandidate {
        now = node.next_deadline().max(now);
        node.handle(now, Input::Tick);
        while poll_synchronously(&mut node, now).is_some() {}
    }
    for pre in [true, false] {
        node.handle(
            now,
            peer(3, 2, PeerBody::VoteResponse { pre, granted: true }),
        );
        while poll_synchronously(&mut node, now).is_some() {}
    }
    assert!(node.is_leader());

    let conn = ConnId(5);
    node.handle(
        now,
        Input::Client {
            conn,
            request: first,
        },
    );
    let retried: Vec<Effect> = std::iter::from_fn(|| poll_synchronously(&mut node, now)).collect();
    assert!(results(&retried).is_empty(), "{:?}", results(&retried));
    let ack = PeerBody::AppendResponse {
        prev_index: LogIndex(0),
        outcome: message::AppendOutcome::Accepted {
            match_index: LogIndex(3),
        },
    };
    node.handle(now, peer(3, 2, ack));
    let effects: Vec<Effect> = std::iter::from_fn(|| poll_synchronously(&mut node, now)).collect();
    assert_eq!(replies(&effects), vec![(5, granted(1))]);
}
