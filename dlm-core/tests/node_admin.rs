//! The operators' operations at the node: introspection is answered by read-index without a
//! log entry or a session (with lease times from the leader's timers), revoke goes through the
//! log, and bad input to either is refused with a typed answer while the node keeps serving.

mod common;

use common::*;
use dlm_core::introspection::LocksPage;
use dlm_core::*;
use std::time::Duration;

const ADMIN: u128 = 99;

fn locks(prefix: &str, limit: u32) -> Op {
    Op::Locks {
        prefix: prefix.into(),
        after: None,
        limit,
    }
}

fn page(results: Vec<Result<Reply, Rejection>>) -> LocksPage {
    match results.as_slice() {
        [Ok(Reply::Locks(page))] => page.clone(),
        other => panic!("expected one page of locks, got {other:?}"),
    }
}

/// A lock listing from a client the leader has never seen is answered at once (one node: its
/// own confirmation is a majority), writes nothing and opens no session; the lease left comes
/// from the leader's clock.
#[test]
fn a_lock_listing_is_a_read_that_opens_no_session() {
    let mut h = Harness::leader(Config::single(NodeId(1)));
    assert_eq!(
        h.request_results(1, req(1, 1, acquire("a", None))),
        vec![granted(1)]
    );
    let entries = h.entries.len();
    h.advance(Duration::from_millis(300));
    let effects = h.request(2, req(ADMIN, 1, locks("", 10)));
    assert!(!any_persist(&effects), "introspection went into the log");
    assert_eq!(h.entries.len(), entries);
    let page = page(results(&effects));
    let holder = page.locks[0].holder().cloned().unwrap();
    assert_eq!(
        (holder.client, holder.token),
        (ClientId(1), FencingToken(1))
    );
    assert_eq!(holder.lease_left, Some(LEASE - Duration::from_millis(300)));
    assert!(h.node.state_machine().session(ClientId(ADMIN)).is_none());
    let sessions = h.request_results(
        2,
        req(
            ADMIN,
            2,
            Op::Sessions {
                after: None,
                limit: 5,
            },
        ),
    );
    let [Ok(Reply::Sessions(sessions))] = sessions.as_slice() else {
        panic!("{sessions:?}");
    };
    assert_eq!(sessions.sessions.len(), 1);
    assert_eq!(sessions.sessions[0].held, vec![LockName::from("a")]);
    assert_eq!(sessions.sessions[0].idle, Some(Duration::from_millis(300)));
}

/// A revoke is committed through the log; the revoked holder's append is then refused as
/// revoked and the next grant has a newer token.
#[test]
fn a_revoke_goes_through_the_log_and_fences_the_old_holder() {
    let mut h = Harness::leader(Config::single(NodeId(1)));
    h.request(1, req(1, 1, acquire("a", None)));
    let effects = h.request(2, req(ADMIN, 1, Op::Revoke { lock: "a".into() }));
    assert!(persisted(&effects).iter().any(|c| matches!(
        c,
        Command::Client(ClientRequest {
            op: Op::Revoke { .. },
            ..
        })
    )));
    assert_eq!(
        results(&effects),
        vec![Ok(Reply::Revoked {
            client: ClientId(1),
            token: FencingToken(1)
        })]
    );
    assert_eq!(
        h.request_results(1, req(1, 2, append("a", 1, "f", b"x"))),
        vec![Err(Rejection::Revoked {
            token: FencingToken(1)
        })]
    );
    assert_eq!(
        h.request_results(3, req(3, 1, acquire("a", None))),
        vec![granted(2)]
    );
    // A retry of the revoke gets its first answer, and does not take the new grant away.
    assert_eq!(
        h.request_results(2, req(ADMIN, 1, Op::Revoke { lock: "a".into() })),
        vec![Ok(Reply::Revoked {
            client: ClientId(1),
            token: FencingToken(1)
        })]
    );
    let page = page(h.request_results(2, req(ADMIN, 2, locks("a", 1))));
    assert_eq!(
        page.locks[0].holder().map(|h| h.token),
        Some(FencingToken(2))
    );
}

/// Bad input to each new operation gets a typed refusal, and the node keeps serving.
#[test]
fn bad_admin_input_is_refused_and_the_node_keeps_serving() {
    let mut h = Harness::leader(Config::single(NodeId(1)));
    let max = Limits::default().max_name_len;
    let long = "x".repeat(max + 1);
    let cases = [
        (
            locks("", 0),
            Err(Rejection::Invalid("a page limit must be at least 1".into())),
        ),
        (locks(&long, 1), Err(Rejection::BadName { max })),
        (
            Op::Locks {
                prefix: String::new(),
                after: Some("".into()),
                limit: 1,
            },
            Err(Rejection::BadName { max }),
        ),
        (
            Op::Sessions {
                after: None,
                limit: 0,
            },
            Err(Rejection::Invalid("a page limit must be at least 1".into())),
        ),
        (
            Op::Revoke { lock: "".into() },
            Err(Rejection::BadName { max }),
        ),
        (
            Op::Revoke {
                lock: "unknown".into(),
            },
            Err(Rejection::NotHeld),
        ),
    ];
    for (seq, (op, expected)) in cases.into_iter().enumerate() {
        let seq = seq as u64 + 1;
        assert_eq!(
            h.request_results(2, req(ADMIN, seq, op.clone())),
            vec![expected],
            "{op:?}"
        );
    }
    assert_eq!(
        h.request_results(1, req(1, 1, acquire("a", None))),
        vec![granted(1)]
    );
    let page = page(h.request_results(2, req(ADMIN, 10, locks("", 10))));
    assert_eq!(page.locks.len(), 1);
}

/// A follower does not answer introspection: it names the leader, as for any other request.
#[test]
fn a_follower_refuses_introspection_as_not_leader() {
    let mut node = fresh_node_of_three();
    node.handle(
        Time::ZERO,
        Input::Client {
            conn: ConnId(1),
            request: req(ADMIN, 1, locks("", 1)),
        },
    );
    let effects = drain_unsynced(&mut node);
    assert_eq!(
        replies(&effects),
        vec![(1, Err(Rejection::NotLeader { hint: None }))]
    );
}

/// A leader holds a bounded number of introspection queries waiting for their round; more are
/// refused `Busy` at once, never queued.
#[test]
fn queries_beyond_the_bound_are_refused_busy() {
    let (mut node, now) = leader_of_three();
    let ask = |node: &mut Node, conn: u64, seq: u64, op: Op| {
        node.handle(
            now,
            Input::Client {
                conn: ConnId(conn),
                request: req(ADMIN, seq, op),
            },
        );
        replies(&drain_unsynced(node))
    };
    // Node 2 never answers the read-index round, so every query stays in flight.
    for i in 0..MAX_QUERIES_IN_FLIGHT as u64 {
        assert_eq!(ask(&mut node, 1, i + 1, locks("", 1)), vec![], "query {i}");
    }
    let over = MAX_QUERIES_IN_FLIGHT as u64 + 1;
    assert_eq!(
        ask(&mut node, 2, over, locks("", 1)),
        vec![(2, Err(Rejection::Busy))]
    );
    let sessions = Op::Sessions {
        after: None,
        limit: 1,
    };
    assert_eq!(
        ask(&mut node, 2, over + 1, sessions),
        vec![(2, Err(Rejection::Busy))]
    );
}
