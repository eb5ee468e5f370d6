//! Exact rules of shared (read-write) locks and semaphores: each test drives
//! `StateMachine::apply` with fixed commands and compares the outcomes and the state left.
//! One FIFO queue per name across modes; a grant's end grants exactly as many waiters as the
//! holders then admit; a name keeps its kind while it exists.

use dlm_core::*;
use std::time::Duration;

const LEASE: Duration = Duration::from_secs(1);
const FOREVER: Option<Duration> = Some(Duration::MAX);
const SEM: Mode = Mode::Permit { permits: 2 };

fn rules() -> Rules {
    Rules {
        limits: Limits::default(),
        lock_delay: false,
    }
}

/// Applies a request of `client` (its seq, acknowledging everything before it).
fn call(sm: &mut StateMachine, client: u128, seq: u64, op: Op) -> Vec<Outcome> {
    let command = Command::Client(ClientRequest {
        client: ClientId(client),
        seq: Seq(seq),
        acked_below: Seq(1),
        op,
    });
    let mut out = Vec::new();
    sm.apply(&command, &rules(), &mut out);
    out
}

fn acquire(lock: &str, mode: Mode, wait: Option<Duration>) -> Op {
    Op::acquire(lock.into(), LEASE, wait, mode)
}

fn release(lock: &str, token: u64) -> Op {
    Op::Release {
        lock: lock.into(),
        token: FencingToken(token),
    }
}

fn reply(client: u128, seq: u64, result: Result<Reply, Rejection>) -> Outcome {
    Outcome::Reply(ClientResponse {
        client: ClientId(client),
        seq: Seq(seq),
        result,
    })
}

fn granted(token: u64) -> Result<Reply, Rejection> {
    Ok(Reply::Granted {
        token: FencingToken(token),
        lease: LEASE,
    })
}

/// The outcomes of a grant from the queue: the lease to arm, then the waiter's answer.
fn queue_grant(lock: &str, client: u128, seq: u64, token: u64) -> [Outcome; 2] {
    [
        Outcome::Granted {
            lock: lock.into(),
            token: FencingToken(token),
            lease: LEASE,
        },
        reply(client, seq, granted(token)),
    ]
}

fn ended(lock: &str, token: u64) -> Outcome {
    Outcome::Ended {
        lock: lock.into(),
        token: FencingToken(token),
    }
}

fn touched(client: u128) -> Outcome {
    Outcome::Touched {
        client: ClientId(client),
    }
}

/// The answer a request got, if any.
fn answer(out: &[Outcome], client: u128) -> Option<Result<Reply, Rejection>> {
    out.iter().find_map(|o| match o {
        Outcome::Reply(r) if r.client == ClientId(client) => Some(r.result.clone()),
        _ => None,
    })
}

/// `(client, token, mode)` of each holder of `lock`, oldest first.
fn holders(sm: &StateMachine, lock: &str) -> Vec<(u128, u64, Mode)> {
    sm.lock(lock).map_or(Vec::new(), |s| {
        s.holders
            .iter()
            .map(|h| (h.client.0, h.token.0, h.mode))
            .collect()
    })
}

fn waiters(sm: &StateMachine, lock: &str) -> Vec<u128> {
    sm.lock(lock).map_or(Vec::new(), |s| {
        s.waiters.iter().map(|w| w.client.0).collect()
    })
}

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
