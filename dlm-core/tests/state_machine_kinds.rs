//! Exact rules of shared (read-write) locks: each test drives `StateMachine::apply` with
//! fixed commands and compares the outcomes and the state left. One FIFO queue per name across
//! modes; a grant's end grants exactly as many waiters as the holders then admit.

mod kinds_support;

use dlm_core::*;
use kinds_support::*;

/// Readers share at once, each under its own token; a writer waits for them, and a reader
/// after the waiting writer waits behind it even though the holders would admit it.
#[test]
fn readers_share_and_a_waiting_writer_holds_back_later_readers() {
    let mut sm = StateMachine::new();
    assert_eq!(
        answer(&call(&mut sm, 1, 1, acquire("rw", Mode::Read, None)), 1),
        Some(granted(1))
    );
    assert_eq!(
        answer(&call(&mut sm, 2, 1, acquire("rw", Mode::Read, None)), 2),
        Some(granted(2))
    );
    assert_eq!(
        answer(&call(&mut sm, 3, 1, acquire("rw", Mode::Write, None)), 3),
        Some(Err(Rejection::Busy)),
        "a try-lock writer beside readers"
    );
    assert_eq!(
        answer(&call(&mut sm, 3, 2, acquire("rw", Mode::Write, FOREVER)), 3),
        None
    );
    assert_eq!(
        answer(&call(&mut sm, 4, 1, acquire("rw", Mode::Read, None)), 4),
        Some(Err(Rejection::Busy)),
        "a try-lock reader behind a waiting writer"
    );
    assert_eq!(
        answer(&call(&mut sm, 4, 2, acquire("rw", Mode::Read, FOREVER)), 4),
        None
    );
    assert_eq!(
        holders(&sm, "rw"),
        vec![(1, 1, Mode::Read), (2, 2, Mode::Read)]
    );
    assert_eq!(waiters(&sm, "rw"), vec![3, 4]);

    // The first reader leaves: the writer still waits for the second.
    let out = call(&mut sm, 1, 2, release("rw", 1));
    assert_eq!(
        out,
        vec![touched(1), ended("rw", 1), reply(1, 2, Ok(Reply::Released))]
    );
    // The second leaves: the writer, and only the writer, is granted.
    let out = call(&mut sm, 2, 2, release("rw", 2));
    let [g, a] = queue_grant("rw", 3, 2, 3);
    assert_eq!(
        out,
        vec![
            touched(2),
            ended("rw", 2),
            g,
            a,
            reply(2, 2, Ok(Reply::Released))
        ]
    );
    assert_eq!(holders(&sm, "rw"), vec![(3, 3, Mode::Write)]);
    assert_eq!(waiters(&sm, "rw"), vec![4]);
}

/// A writer's release grants every reader at the head of the queue in the same entry, and
/// stops at the next writer: the readers behind it wait for their turn.
#[test]
fn a_writers_release_grants_the_readers_at_the_head_together_and_stops_at_a_writer() {
    let mut sm = StateMachine::new();
    call(&mut sm, 1, 1, acquire("rw", Mode::Write, None));
    call(&mut sm, 2, 1, acquire("rw", Mode::Read, FOREVER));
    call(&mut sm, 3, 1, acquire("rw", Mode::Read, FOREVER));
    call(&mut sm, 4, 1, acquire("rw", Mode::Write, FOREVER));
    call(&mut sm, 5, 1, acquire("rw", Mode::Read, FOREVER));
    let out = call(&mut sm, 1, 2, release("rw", 1));
    let [g2, a2] = queue_grant("rw", 2, 1, 2);
    let [g3, a3] = queue_grant("rw", 3, 1, 3);
    assert_eq!(
        out,
        vec![
            touched(1),
            ended("rw", 1),
            g2,
            a2,
            g3,
            a3,
            reply(1, 2, Ok(Reply::Released))
        ]
    );
    assert_eq!(waiters(&sm, "rw"), vec![4, 5]);
    call(&mut sm, 2, 2, release("rw", 2));
    let out = call(&mut sm, 3, 2, release("rw", 3));
    assert_eq!(answer(&out, 4), Some(granted(4)));
    assert_eq!(
        answer(&out, 5),
        None,
        "the reader behind the writer still waits"
    );
    let out = call(&mut sm, 4, 2, release("rw", 4));
    assert_eq!(answer(&out, 5), Some(granted(5)));
}

/// A waiting writer at the head that leaves (cancelled or timed out) lets the readers behind
/// it join the readers that hold the lock, in the same entry.
#[test]
fn a_writer_leaving_the_head_of_the_queue_lets_the_readers_behind_it_in() {
    let mut sm = StateMachine::new();
    call(&mut sm, 1, 1, acquire("rw", Mode::Read, None));
    call(&mut sm, 2, 1, acquire("rw", Mode::Write, FOREVER));
    call(&mut sm, 3, 1, acquire("rw", Mode::Read, FOREVER));
    let cancel = Op::Cancel {
        lock: "rw".into(),
        seq: Seq(1),
    };
    let out = call(&mut sm, 2, 2, cancel);
    let [g, a] = queue_grant("rw", 3, 1, 2);
    assert_eq!(
        out,
        vec![
            touched(2),
            reply(2, 1, Err(Rejection::Cancelled)),
            g,
            a,
            reply(2, 2, Ok(Reply::Cancelled(Withdrawn::Waiting))),
        ]
    );
    assert_eq!(
        holders(&sm, "rw"),
        vec![(1, 1, Mode::Read), (3, 2, Mode::Read)]
    );

    // The same through a wait time-out.
    let mut sm = StateMachine::new();
    call(&mut sm, 1, 1, acquire("rw", Mode::Read, None));
    call(&mut sm, 2, 1, acquire("rw", Mode::Write, Some(LEASE)));
    call(&mut sm, 3, 1, acquire("rw", Mode::Read, FOREVER));
    let timeout = Command::CancelWait {
        lock: "rw".into(),
        client: ClientId(2),
        seq: Seq(1),
    };
    let mut out = Vec::new();
    sm.apply(&timeout, &rules(), &mut out);
    assert_eq!(answer(&out, 3), Some(granted(2)));
    assert_eq!(answer(&out, 2), Some(Err(Rejection::TimedOut)));
}

/// A retried acquire gets its first answer from the dedup cache, whatever the lock became
/// since; a client holds a name once.
#[test]
fn retries_are_answered_from_the_cache_and_a_client_holds_a_name_once() {
    let mut sm = StateMachine::new();
    call(&mut sm, 1, 1, acquire("rw", Mode::Read, None));
    call(&mut sm, 2, 1, acquire("rw", Mode::Read, None));
    let out = call(&mut sm, 1, 1, acquire("rw", Mode::Read, None));
    assert_eq!(out, vec![touched(1), reply(1, 1, granted(1))]);
    assert_eq!(holders(&sm, "rw").len(), 2);
    assert_eq!(
        answer(&call(&mut sm, 1, 2, acquire("rw", Mode::Read, None)), 1),
        Some(Err(Rejection::AlreadyHeld {
            token: FencingToken(1)
        }))
    );
}

/// A keep-alive renews the client's own grant of a shared lock and lists it; an expiry names
/// one grant and leaves the others.
#[test]
fn keep_alives_and_expiries_touch_one_grant_of_a_shared_lock() {
    let mut sm = StateMachine::new();
    call(&mut sm, 1, 1, acquire("rw", Mode::Read, None));
    call(&mut sm, 2, 1, acquire("rw", Mode::Read, None));
    let out = call(&mut sm, 2, 2, Op::KeepAlive);
    assert_eq!(
        answer(&out, 2),
        Some(Ok(Reply::KeptAlive {
            held: vec![("rw".into(), FencingToken(2))],
            revoked: vec![],
        }))
    );
    let renewals: Vec<u64> = sm
        .lock("rw")
        .unwrap()
        .holders
        .iter()
        .map(|h| h.renewals)
        .collect();
    assert_eq!(renewals, vec![0, 1]);
    // An expiry proposed before the renewal does nothing; one of the other grant ends it alone.
    let expire = |token, renewals| Command::Expire {
        lock: "rw".into(),
        token: FencingToken(token),
        renewals,
    };
    let mut out = Vec::new();
    sm.apply(&expire(2, 0), &rules(), &mut out);
    assert!(out.is_empty());
    sm.apply(&expire(1, 0), &rules(), &mut out);
    assert_eq!(out, vec![ended("rw", 1)]);
    assert_eq!(holders(&sm, "rw"), vec![(2, 2, Mode::Read)]);
    assert_eq!(sm.session(ClientId(1)).map(|s| s.held.len()), Some(0));
}

/// An expired session gives back its permit and leaves the queue: exactly one waiter moves up.
#[test]
fn an_expired_session_gives_back_its_grant_and_its_place() {
    let mut sm = StateMachine::new();
    call(&mut sm, 1, 1, acquire("rw", Mode::Read, None));
    call(&mut sm, 2, 1, acquire("rw", Mode::Write, FOREVER));
    call(&mut sm, 3, 1, acquire("rw", Mode::Read, FOREVER));
    let mut out = Vec::new();
    sm.apply(
        &Command::ExpireSession {
            client: ClientId(1),
        },
        &rules(),
        &mut out,
    );
    let [g, a] = queue_grant("rw", 2, 1, 2);
    assert_eq!(out, vec![ended("rw", 1), g, a]);
    assert_eq!(waiters(&sm, "rw"), vec![3]);
    sm.apply(
        &Command::ExpireSession {
            client: ClientId(2),
        },
        &rules(),
        &mut out,
    );
    assert_eq!(holders(&sm, "rw"), vec![(3, 3, Mode::Read)]);
}

/// A grant is its holder's alone: another reader presenting it (to release or append) is
/// refused, and the grant stands.
#[test]
fn a_readers_token_is_no_use_to_another_reader() {
    let mut sm = StateMachine::new();
    call(&mut sm, 1, 1, acquire("rw", Mode::Read, None));
    call(&mut sm, 2, 1, acquire("rw", Mode::Read, None));
    let out = call(&mut sm, 2, 2, release("rw", 1));
    assert_eq!(answer(&out, 2), Some(Err(Rejection::NotHolder)));
    assert_eq!(
        holders(&sm, "rw"),
        vec![(1, 1, Mode::Read), (2, 2, Mode::Read)]
    );
}

/// A revoke of a read-held lock ends its oldest reader's grant, and a writer waiting for the
/// readers is granted once the last is revoked.
#[test]
fn revokes_end_the_readers_oldest_first_then_the_writer_is_granted() {
    let mut sm = StateMachine::new();
    call(&mut sm, 1, 1, acquire("rw", Mode::Read, None));
    call(&mut sm, 2, 1, acquire("rw", Mode::Read, None));
    call(&mut sm, 3, 1, acquire("rw", Mode::Write, FOREVER));
    let revoke = || Op::Revoke { lock: "rw".into() };
    let out = call(&mut sm, 9, 1, revoke());
    let revoked = |client, token| {
        Some(Ok(Reply::Revoked {
            client: ClientId(client),
            token: FencingToken(token),
        }))
    };
    assert_eq!(answer(&out, 9), revoked(1, 1));
    assert_eq!(answer(&out, 3), None);
    let out = call(&mut sm, 9, 2, revoke());
    assert_eq!(answer(&out, 9), revoked(2, 2));
    assert_eq!(answer(&out, 3), Some(granted(3)));
    assert_eq!(holders(&sm, "rw"), vec![(3, 3, Mode::Write)]);
}
