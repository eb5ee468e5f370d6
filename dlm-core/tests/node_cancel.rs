//! `Op::Cancel` undoes an acquire whatever became of it: queued, granted, or not yet arrived.
//! Each test sets a state, sends one cancel, and checks its whole answer and what it left.

mod common;

use common::*;
use dlm_core::*;
use std::time::Duration;

fn cancel(lock: &str, seq: u64) -> Op {
    Op::Cancel {
        lock: lock.into(),
        seq: Seq(seq),
    }
}

fn leader() -> Harness {
    Harness::leader(Config::single(NodeId(1)))
}

#[test]
fn a_queued_acquire_leaves_the_queue_and_is_answered_cancelled() {
    let mut h = leader();
    h.request(1, req(1, 1, acquire("a", None)));
    h.request(2, req(2, 1, acquire("a", Some(Duration::MAX))));
    let effects = h.request(3, req(2, 2, cancel("a", 1)));
    assert_eq!(
        replies(&effects),
        vec![
            (2, Err(Rejection::Cancelled)),
            (3, Ok(Reply::Cancelled(Withdrawn::Waiting)))
        ]
    );
    assert!(h.node.state_machine().lock("a").unwrap().waiters.is_empty());
}

/// The race of a cancelled `lock()`: the holder released just as the waiter gave up, so the
/// waiter was granted; its cancel gives the lock back at once and grants the next in line.
#[test]
fn a_granted_acquire_is_released_and_the_next_waiter_granted() {
    let mut h = leader();
    h.request(1, req(1, 1, acquire("a", None)));
    h.request(2, req(2, 1, acquire("a", Some(Duration::MAX))));
    h.request(3, req(3, 1, acquire("a", Some(Duration::MAX))));
    let handed = h.request_results(1, req(1, 2, release("a", 1)));
    assert_eq!(handed, vec![granted(2), Ok(Reply::Released)]);
    let effects = h.request(4, req(2, 2, cancel("a", 1)));
    assert_eq!(
        replies(&effects),
        vec![
            (3, granted(3)),
            (
                4,
                Ok(Reply::Cancelled(Withdrawn::Released {
                    token: FencingToken(2)
                }))
            )
        ]
    );
    let holder = h.node.state_machine().lock("a").unwrap().holder().cloned();
    assert_eq!(holder.map(|h| h.client), Some(ClientId(3)));
}

/// A cancel that overtook its acquire refuses it in advance: the acquire, arriving later, gets
/// `Cancelled` from the dedup cache and the free lock stays free.
#[test]
fn an_acquire_that_arrives_after_its_cancel_is_never_applied() {
    let mut h = leader();
    h.request(1, req(1, 1, acquire("other", None)));
    let effects = h.request(1, req(1, 3, cancel("a", 2)));
    assert_eq!(
        replies(&effects),
        vec![(1, Ok(Reply::Cancelled(Withdrawn::Prevented)))]
    );
    let late = h.request_results(2, req(1, 2, acquire("a", None)));
    assert_eq!(late, vec![Err(Rejection::Cancelled)]);
    assert!(h
        .node
        .state_machine()
        .lock("a")
        .is_none_or(|l| l.holder().is_none()));
}

/// A cancel names its acquire: one that arrives late, after the client gave up on that acquire
/// (answered) and queued a newer one, must not withdraw the newer one.
#[test]
fn a_late_cancel_does_not_withdraw_a_newer_acquire() {
    let mut h = leader();
    h.request(1, req(1, 1, acquire("a", None)));
    h.request(2, req(2, 1, acquire("a", Some(Duration::from_secs(1)))));
    h.request(2, req(2, 2, cancel("a", 1)));
    h.request(2, req(2, 3, acquire("a", Some(Duration::MAX))));
    let effects = h.request(3, req(2, 4, cancel("a", 1)));
    assert_eq!(
        replies(&effects),
        vec![(3, Ok(Reply::Cancelled(Withdrawn::Nothing)))]
    );
    let waiters = &h.node.state_machine().lock("a").unwrap().waiters;
    assert_eq!(
        waiters.iter().map(|w| w.seq).collect::<Vec<_>>(),
        vec![Seq(3)]
    );
}

/// A grant since lost (released, then granted to another) is not the cancel's to release.
#[test]
fn a_grant_already_given_back_is_left_alone() {
    let mut h = leader();
    h.request(1, req(1, 1, acquire("a", None)));
    h.request(1, req(1, 2, release("a", 1)));
    h.request(2, req(2, 1, acquire("a", None)));
    let effects = h.request(1, req(1, 3, cancel("a", 1)));
    assert_eq!(
        replies(&effects),
        vec![(1, Ok(Reply::Cancelled(Withdrawn::Nothing)))]
    );
    let holder = h.node.state_machine().lock("a").unwrap().holder().cloned();
    assert_eq!(holder.map(|h| h.token), Some(FencingToken(2)));
}

/// Only an earlier seq can be an acquire the cancel overtook: a cancel naming itself or a later
/// seq, or one below the client's watermark, refuses nothing in advance.
#[test]
fn a_cancel_refuses_in_advance_only_earlier_unacknowledged_seqs() {
    let mut h = leader();
    h.request(1, req(1, 1, acquire("other", None)));
    for target in [3, 4] {
        let effects = h.request(1, req(1, 3, cancel("a", target)));
        assert_eq!(
            replies(&effects),
            vec![(1, Ok(Reply::Cancelled(Withdrawn::Nothing)))]
        );
    }
    let mut below = req(1, 5, cancel("a", 2));
    below.acked_below = Seq(3);
    let effects = h.request(1, below);
    assert_eq!(
        replies(&effects),
        vec![(1, Ok(Reply::Cancelled(Withdrawn::Nothing)))]
    );
    let granted_later = h.request_results(2, req(1, 4, acquire("a", None)));
    assert_eq!(granted_later, vec![granted(2)]);
}
