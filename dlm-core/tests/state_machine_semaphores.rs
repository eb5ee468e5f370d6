//! Exact rules of semaphores and of what every kind shares: a name keeps its kind (and a
//! semaphore its size) while it exists, only exclusive grants append, revokes, lock-delay and
//! introspection. Each test drives `StateMachine::apply` with fixed commands.

mod kinds_support;

use dlm_core::*;
use kinds_support::*;

/// A semaphore of N admits N holders; each release or expiry grants exactly one waiter.
#[test]
fn a_semaphore_admits_its_permits_and_each_end_grants_exactly_one_waiter() {
    let mut sm = StateMachine::new();
    for client in 1..=2 {
        let out = call(&mut sm, client, 1, acquire("s", SEM, None));
        assert_eq!(answer(&out, client), Some(granted(client as u64)));
    }
    assert_eq!(
        answer(&call(&mut sm, 3, 1, acquire("s", SEM, None)), 3),
        Some(Err(Rejection::Busy))
    );
    for client in 3..=5 {
        assert_eq!(
            answer(
                &call(&mut sm, client, 2, acquire("s", SEM, FOREVER)),
                client
            ),
            None
        );
    }
    let out = call(&mut sm, 1, 2, release("s", 1));
    let [g, a] = queue_grant("s", 3, 2, 3);
    assert_eq!(
        out,
        vec![
            touched(1),
            ended("s", 1),
            g,
            a,
            reply(1, 2, Ok(Reply::Released))
        ]
    );
    assert_eq!(
        waiters(&sm, "s"),
        vec![4, 5],
        "no herd: one permit, one grant"
    );

    let expire = Command::Expire {
        lock: "s".into(),
        token: FencingToken(2),
        renewals: 0,
    };
    let mut out = Vec::new();
    sm.apply(&expire, &rules(), &mut out);
    let [g, a] = queue_grant("s", 4, 2, 4);
    assert_eq!(out, vec![ended("s", 2), g, a]);
    assert_eq!(holders(&sm, "s"), vec![(3, 3, SEM), (4, 4, SEM)]);
    assert_eq!(waiters(&sm, "s"), vec![5]);
}

/// A name keeps its kind (and a semaphore its size) while it exists; once it has left the
/// table, the next acquire may make it anything.
#[test]
fn a_name_keeps_its_kind_and_size_while_it_exists() {
    let mut sm = StateMachine::new();
    call(&mut sm, 1, 1, acquire("x", Mode::Exclusive, None));
    let wrong = |kind| Some(Err(Rejection::WrongKind { kind }));
    assert_eq!(
        answer(&call(&mut sm, 2, 1, acquire("x", Mode::Read, FOREVER)), 2),
        wrong(LockKind::Exclusive)
    );
    call(&mut sm, 3, 1, acquire("s", SEM, None));
    let three = Mode::Permit { permits: 3 };
    assert_eq!(
        answer(&call(&mut sm, 2, 2, acquire("s", three, FOREVER)), 2),
        wrong(LockKind::Semaphore { permits: 2 })
    );
    assert_eq!(
        answer(&call(&mut sm, 2, 3, acquire("s", Mode::Exclusive, None)), 2),
        wrong(LockKind::Semaphore { permits: 2 })
    );
    call(&mut sm, 4, 1, acquire("rw", Mode::Write, None));
    assert_eq!(
        answer(&call(&mut sm, 2, 4, acquire("rw", SEM, None)), 2),
        wrong(LockKind::Shared)
    );
    assert_eq!(
        answer(
            &call(
                &mut sm,
                2,
                5,
                Op::Acquire {
                    lock: "rw".into(),
                    lease: LEASE,
                    wait: None
                }
            ),
            2
        ),
        wrong(LockKind::Shared)
    );
    // Refusals leave the locks as they were.
    assert_eq!(waiters(&sm, "x"), Vec::<u128>::new());
    assert_eq!(
        sm.lock("s").map(|s| s.kind),
        Some(LockKind::Semaphore { permits: 2 })
    );

    // Released, the semaphore leaves the table; the name may now be a semaphore of 3.
    call(&mut sm, 3, 2, release("s", 2));
    assert!(sm.lock("s").is_none());
    assert_eq!(
        answer(&call(&mut sm, 2, 6, acquire("s", three, None)), 2),
        Some(granted(4))
    );
    assert_eq!(
        sm.lock("s").map(|s| s.kind),
        Some(LockKind::Semaphore { permits: 3 })
    );
}

/// A semaphore needs a permit; the refusal leaves nothing behind.
#[test]
fn a_semaphore_of_no_permits_is_refused() {
    let mut sm = StateMachine::new();
    let out = call(
        &mut sm,
        1,
        1,
        acquire("s", Mode::Permit { permits: 0 }, None),
    );
    assert!(matches!(answer(&out, 1), Some(Err(Rejection::Invalid(_)))));
    assert!(sm.lock("s").is_none());
}

/// Only a grant that excludes every other holder may append: a reader's or a permit's
/// append is refused, a writer's applies.
#[test]
fn only_an_exclusive_grant_appends() {
    let mut sm = StateMachine::new();
    let append = |lock: &str, token| Op::Append {
        lock: lock.into(),
        token: FencingToken(token),
        file: "f".into(),
        data: b"x".to_vec(),
    };
    call(&mut sm, 1, 1, acquire("rw", Mode::Read, None));
    let out = call(&mut sm, 1, 2, append("rw", 1));
    assert_eq!(answer(&out, 1), Some(Err(Rejection::NotExclusive)));
    call(
        &mut sm,
        2,
        1,
        acquire("s", Mode::Permit { permits: 1 }, None),
    );
    let out = call(&mut sm, 2, 2, append("s", 2));
    assert_eq!(answer(&out, 2), Some(Err(Rejection::NotExclusive)));
    assert!(sm.file("f").is_none());

    call(&mut sm, 1, 3, release("rw", 1));
    call(&mut sm, 3, 1, acquire("rw", Mode::Write, None));
    let out = call(&mut sm, 3, 2, append("rw", 3));
    assert_eq!(answer(&out, 3), Some(Ok(Reply::Appended { offset: 0 })));
    // The reader's old token is stale now, not merely shared.
    let out = call(&mut sm, 1, 4, append("rw", 1));
    assert_eq!(
        answer(&out, 1),
        Some(Err(Rejection::StaleToken {
            presented: FencingToken(1)
        }))
    );
}

/// A revoke ends the oldest grant; the next revoke the next one. The revoked reader is told.
#[test]
fn a_revoke_ends_the_oldest_grant() {
    let mut sm = StateMachine::new();
    call(&mut sm, 1, 1, acquire("s", SEM, None));
    call(&mut sm, 2, 1, acquire("s", SEM, None));
    call(&mut sm, 3, 1, acquire("s", SEM, FOREVER));
    let out = call(&mut sm, 9, 1, Op::Revoke { lock: "s".into() });
    assert_eq!(
        answer(&out, 9),
        Some(Ok(Reply::Revoked {
            client: ClientId(1),
            token: FencingToken(1)
        }))
    );
    assert_eq!(answer(&out, 3), Some(granted(3)));
    assert_eq!(holders(&sm, "s"), vec![(2, 2, SEM), (3, 3, SEM)]);
    let out = call(&mut sm, 1, 2, release("s", 1));
    assert_eq!(
        answer(&out, 1),
        Some(Err(Rejection::Revoked {
            token: FencingToken(1)
        }))
    );
}

/// With lock-delay, an expired reader holds back new grants until the delay is lifted, then
/// the head of the queue is granted as usual.
#[test]
fn a_delay_after_an_expiry_holds_back_every_mode() {
    let delay = Rules {
        limits: Limits::default(),
        lock_delay: true,
    };
    let mut sm = StateMachine::new();
    call(&mut sm, 1, 1, acquire("rw", Mode::Read, None));
    call(&mut sm, 2, 1, acquire("rw", Mode::Read, None));
    let mut out = Vec::new();
    let expire = Command::Expire {
        lock: "rw".into(),
        token: FencingToken(1),
        renewals: 0,
    };
    sm.apply(&expire, &delay, &mut out);
    assert_eq!(
        answer(&call(&mut sm, 3, 1, acquire("rw", Mode::Read, FOREVER)), 3),
        None
    );
    let mut out = Vec::new();
    sm.apply(&Command::LiftDelay { lock: "rw".into() }, &delay, &mut out);
    assert_eq!(answer(&out, 3), Some(granted(3)));
}

/// `Op::Locks` shows the kind and every grant with its mode and lease.
#[test]
fn introspection_lists_every_holder_with_its_mode() {
    let mut sm = StateMachine::new();
    call(&mut sm, 1, 1, acquire("rw", Mode::Read, None));
    call(&mut sm, 2, 1, acquire("rw", Mode::Read, None));
    call(&mut sm, 3, 1, acquire("rw", Mode::Write, FOREVER));
    let page = sm.locks_page("", None, 10, |_, token| {
        (token == FencingToken(2)).then_some(LEASE / 2)
    });
    let row = &page.locks[0];
    assert_eq!(row.kind, LockKind::Shared);
    assert_eq!(row.holding, 2);
    let listed: Vec<_> = row
        .holders
        .iter()
        .map(|h| (h.client, h.mode, h.token, h.lease_left))
        .collect();
    assert_eq!(
        listed,
        vec![
            (ClientId(1), Mode::Read, FencingToken(1), None),
            (ClientId(2), Mode::Read, FencingToken(2), Some(LEASE / 2)),
        ]
    );
    assert_eq!(row.waiters, vec![ClientId(3)]);
}
