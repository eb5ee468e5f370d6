//! Time at a single node: wait time-outs, lease expiry and renewal, lock-delay, idle sessions,
//! and snapshots with a restart from what was persisted.

mod common;

use common::*;
use dlm_core::*;
use std::time::Duration;

fn single() -> Config {
    Config::single(NodeId(1))
}

fn holder(h: &Harness, lock: &str) -> Option<(ClientId, FencingToken)> {
    let state = h.node.state_machine().lock(lock)?;
    state.holder().map(|x| (x.client, x.token))
}

#[test]
fn wait_times_out_after_its_deadline_through_cancel_wait() {
    let mut h = Harness::leader(single());
    h.request(1, req(1, 1, acquire("a", None)));
    let start = h.now;
    let wait = Duration::from_millis(400);
    assert!(h
        .request_results(2, req(2, 1, acquire("a", Some(wait))))
        .is_empty());
    // Just before the deadline nothing happens.
    let effects = h.advance_to(start + (wait - Duration::from_millis(1)));
    assert!(replies(&effects).is_empty());
    let effects = h.advance_to(start + wait);
    assert_eq!(
        persisted(&effects),
        vec![Command::CancelWait {
            lock: "a".into(),
            client: ClientId(2),
            seq: Seq(1),
        }]
    );
    assert_eq!(replies(&effects), vec![(2, Err(Rejection::TimedOut))]);
    assert!(h.node.state_machine().lock("a").unwrap().waiters.is_empty());
    // The retry gets the same answer from the cache.
    assert_eq!(
        h.request(3, req(2, 1, acquire("a", Some(wait)))),
        vec![Effect::Reply {
            conn: ConnId(3),
            response: ClientResponse {
                client: ClientId(2),
                seq: Seq(1),
                result: Err(Rejection::TimedOut),
            },
        }]
    );
}

#[test]
fn lease_expires_without_keep_alive_and_next_waiter_gets_the_lock() {
    let mut h = Harness::leader(single());
    h.request(1, req(1, 1, acquire("a", None)));
    let start = h.now;
    h.request(2, req(2, 1, acquire("a", Some(Duration::MAX))));
    h.advance_to(start + (LEASE - Duration::from_millis(1)));
    assert_eq!(holder(&h, "a"), Some((ClientId(1), FencingToken(1))));
    let effects = h.advance_to(start + LEASE);
    assert_eq!(
        persisted(&effects),
        vec![Command::Expire {
            lock: "a".into(),
            token: FencingToken(1),
            renewals: 0,
        }]
    );
    assert_eq!(replies(&effects), vec![(2, granted(2))]);
    assert_eq!(holder(&h, "a"), Some((ClientId(2), FencingToken(2))));
    // The old holder's release is now stale.
    assert_eq!(
        h.request_results(1, req(1, 2, release("a", 1))),
        vec![Err(Rejection::StaleToken {
            presented: FencingToken(1)
        })]
    );
}

#[test]
fn keep_alive_extends_the_lease_past_its_first_deadline() {
    let mut h = Harness::leader(single());
    h.request(1, req(1, 1, acquire("a", None)));
    let start = h.now;
    h.advance(LEASE / 2);
    assert_eq!(
        h.request_results(1, req(1, 2, Op::KeepAlive)),
        vec![Ok(Reply::KeptAlive {
            held: vec![("a".into(), FencingToken(1))],
            revoked: vec![],
        })]
    );
    let renewed = h.now;
    let effects = h.advance_to(start + LEASE + Duration::from_millis(100));
    assert!(persisted(&effects).is_empty(), "{effects:?}");
    assert_eq!(holder(&h, "a"), Some((ClientId(1), FencingToken(1))));
    let effects = h.advance_to(renewed + LEASE);
    assert_eq!(
        persisted(&effects),
        vec![Command::Expire {
            lock: "a".into(),
            token: FencingToken(1),
            renewals: 1,
        }]
    );
    assert_eq!(holder(&h, "a"), None);
    assert!(h.node.state_machine().lock("a").is_none());
}

#[test]
fn lock_delay_keeps_an_expired_lock_ungranted_until_it_passes() {
    let mut cfg = single();
    cfg.lock_delay = Duration::from_millis(300);
    let mut h = Harness::leader(cfg);
    h.request(1, req(1, 1, acquire("a", None)));
    let start = h.now;
    h.request(2, req(2, 1, acquire("a", Some(Duration::MAX))));
    let effects = h.advance_to(start + LEASE);
    assert!(replies(&effects).is_empty(), "{effects:?}");
    let state = h.node.state_machine().lock("a").unwrap();
    assert!(state.delayed && state.holder().is_none());
    // A try-lock is refused during the delay.
    assert_eq!(
        h.request_results(3, req(3, 1, acquire("a", None))),
        vec![Err(Rejection::Busy)]
    );
    let effects = h.advance_to(start + LEASE + Duration::from_millis(299));
    assert!(replies(&effects).is_empty(), "{effects:?}");
    let effects = h.advance_to(start + LEASE + Duration::from_millis(300));
    assert_eq!(
        persisted(&effects),
        vec![Command::LiftDelay { lock: "a".into() }]
    );
    assert_eq!(replies(&effects), vec![(2, granted(2))]);
}

#[test]
fn idle_session_expires_and_its_wait_is_withdrawn() {
    let mut cfg = single();
    cfg.limits.max_lease = Duration::from_secs(1);
    cfg.session_ttl = Duration::from_secs(2);
    let mut h = Harness::leader(cfg);
    h.request(1, req(1, 1, acquire("a", None)));
    h.request(2, req(2, 1, acquire("a", Some(Duration::MAX))));
    h.request(3, req(3, 1, acquire("b", None)));
    // Client 1 keeps its lock alive; clients 2 and 3 fall silent.
    for seq in 2..=12 {
        h.advance(Duration::from_millis(400));
        h.request(1, req(1, seq, Op::KeepAlive));
    }
    let sm = h.node.state_machine();
    assert!(sm.session(ClientId(1)).is_some());
    assert!(sm.session(ClientId(2)).is_none());
    assert!(sm.session(ClientId(3)).is_none());
    assert!(sm.lock("a").unwrap().waiters.is_empty());
    assert!(sm.lock("b").is_none());
    // A client that comes back after its session expired is told so.
    let mut back = req(2, 2, acquire("c", None));
    back.acked_below = Seq(2);
    assert_eq!(
        h.request_results(2, back),
        vec![Err(Rejection::SessionExpired)]
    );
}

#[test]
fn snapshot_is_persisted_and_a_restart_recovers_the_same_state() {
    let mut cfg = single();
    cfg.snapshot_every = 5;
    cfg.log_retain = 2;
    let mut h = Harness::leader(cfg.clone());
    let mut snapshots = 0;
    let mut token = 0;
    for seq in 0..20u64 {
        let effects = h.request(1, req(1, 2 * seq + 1, acquire("a", None)));
        token += 1;
        snapshots += effects
            .iter()
            .filter(|e| matches!(e, Effect::Persist(Persist::Snapshot { .. })))
            .count();
        let data = [seq as u8];
        h.request(1, req(1, 2 * seq + 2, append("a", token, "f", &data)));
        h.request(2, req(2, seq + 1, acquire("a", Some(Duration::MAX))));
        let effects = h.request(2, req(2, 100 + seq, release("a", token)));
        // Client 2 does not hold it under this token; client 1 releases instead.
        assert!(!results(&effects).is_empty());
        h.request(1, req(1, 200 + seq, release("a", token)));
        token += 1;
        h.request(2, req(2, 300 + seq, release("a", token)));
    }
    assert!(snapshots > 0);
    assert!(h.snapshot.is_some());
    assert!(h.node.log_len() as u64 <= cfg.snapshot_every + cfg.log_retain);
    let mut restarted = Harness::fresh(cfg);
    restarted.node = Node::new(restarted.node.config().clone(), h.recovered()).unwrap();
    restarted.now = h.now;
    restarted.elect();
    assert_eq!(restarted.node.state_machine(), h.node.state_machine());
    assert_eq!(
        restarted.node.state_machine().file("f").unwrap().data,
        (0..20u8).collect::<Vec<_>>()
    );
}

#[test]
fn a_followers_election_deadline_is_the_time_out_plus_its_ranks_stagger() {
    // Without jitter the deadline is exact: node 3 of 3 ranks third, two staggers behind node 1.
    let ids = [NodeId(1), NodeId(2), NodeId(3)];
    let mut cfg = Config::new(NodeId(3), ids);
    cfg.election_jitter = Duration::ZERO;
    let mut node = Node::new(cfg.clone(), Recovered::default()).unwrap();
    let start = Time::from_millis(1_000);
    node.handle(start, Input::Tick);
    let expected = cfg.election_timeout + cfg.election_stagger * 2;
    assert_eq!(node.next_deadline(), start + expected);
}
