//! Leases of a shared lock at a single-node leader: each grant has its own lease timer, so a
//! reader's expiry takes only that reader's grant, a keep-alive renews only its sender's grant,
//! and the writer waiting behind them is granted when the last one ends.

mod common;

use common::*;
use dlm_core::*;
use std::time::Duration;

fn acquire_as(lock: &str, mode: Mode, wait: Option<Duration>) -> Op {
    Op::acquire(lock.into(), LEASE, wait, mode)
}

fn holders(h: &Harness, lock: &str) -> Vec<u64> {
    h.node.state_machine().lock(lock).map_or(Vec::new(), |s| {
        s.holders.iter().map(|x| x.token.0).collect()
    })
}

#[test]
fn each_grant_of_a_shared_lock_expires_on_its_own_lease() {
    let mut h = Harness::leader(Config::single(NodeId(1)));
    let start = h.now;
    h.request(1, req(1, 1, acquire_as("rw", Mode::Read, None)));
    h.advance_to(start + Duration::from_millis(300));
    h.request(2, req(2, 1, acquire_as("rw", Mode::Read, None)));
    let writer = acquire_as("rw", Mode::Write, Some(Duration::MAX));
    assert!(h.request_results(3, req(3, 1, writer)).is_empty());
    assert_eq!(holders(&h, "rw"), vec![1, 2]);

    // The first reader's lease ends alone; the writer still waits for the second.
    let effects = h.advance_to(start + LEASE);
    assert_eq!(
        persisted(&effects),
        vec![Command::Expire {
            lock: "rw".into(),
            token: FencingToken(1),
            renewals: 0,
        }]
    );
    assert!(replies(&effects).is_empty());
    assert_eq!(holders(&h, "rw"), vec![2]);

    let effects = h.advance_to(start + Duration::from_millis(300) + LEASE);
    assert_eq!(
        persisted(&effects),
        vec![Command::Expire {
            lock: "rw".into(),
            token: FencingToken(2),
            renewals: 0,
        }]
    );
    assert_eq!(replies(&effects), vec![(3, granted(3))]);
    assert_eq!(holders(&h, "rw"), vec![3]);
}

#[test]
fn a_keep_alive_renews_only_its_senders_grant_of_a_semaphore() {
    let mut h = Harness::leader(Config::single(NodeId(1)));
    let start = h.now;
    let permit = Mode::Permit { permits: 2 };
    h.request(1, req(1, 1, acquire_as("s", permit, None)));
    h.request(2, req(2, 1, acquire_as("s", permit, None)));
    h.advance_to(start + LEASE / 2);
    let renewed = h.request_results(2, req(2, 2, Op::KeepAlive));
    assert_eq!(
        renewed,
        vec![Ok(Reply::KeptAlive {
            held: vec![("s".into(), FencingToken(2))],
            revoked: vec![],
        })]
    );
    let effects = h.advance_to(start + LEASE);
    let expired: Vec<Command> = persisted(&effects)
        .into_iter()
        .filter(|c| matches!(c, Command::Expire { .. }))
        .collect();
    assert_eq!(
        expired,
        vec![Command::Expire {
            lock: "s".into(),
            token: FencingToken(1),
            renewals: 0,
        }]
    );
    assert_eq!(holders(&h, "s"), vec![2]);
}
