//! Exact rules of the operators' operations in the state machine: `Op::Revoke` (through the log)
//! and the pages that answer `Op::Locks` and `Op::Sessions`.

use dlm_core::introspection::{MAX_LISTED, MAX_PAGE};
use dlm_core::*;
use std::time::Duration;

const LEASE: Duration = Duration::from_secs(1);
const ADMIN: u128 = 99;

fn rules() -> Rules {
    Rules {
        limits: Limits::default(),
        lock_delay: true,
    }
}

fn request(client: u128, seq: u64, op: Op) -> Command {
    Command::Client(ClientRequest {
        client: ClientId(client),
        seq: Seq(seq),
        acked_below: Seq(1),
        pending: Vec::new(),
        op,
    })
}

fn apply(sm: &mut StateMachine, command: &Command) -> Vec<Outcome> {
    let mut out = Vec::new();
    sm.apply(command, &rules(), &mut out);
    out
}

fn answer(out: &[Outcome], client: u128, seq: u64) -> Option<Result<Reply, Rejection>> {
    out.iter().find_map(|o| match o {
        Outcome::Reply(r) if r.client == ClientId(client) && r.seq == Seq(seq) => {
            Some(r.result.clone())
        }
        _ => None,
    })
}

fn acquire(lock: &str, wait: Option<Duration>) -> Op {
    Op::Acquire {
        lock: lock.into(),
        lease: LEASE,
        wait,
    }
}

fn revoke(lock: &str) -> Op {
    Op::Revoke { lock: lock.into() }
}

fn holder(sm: &StateMachine, lock: &str) -> Option<(ClientId, FencingToken)> {
    let h = sm.lock(lock)?.holder()?;
    Some((h.client, h.token))
}

/// Client 1 holds `a` under token 1 and client 2 waits for it.
fn held_with_waiter() -> StateMachine {
    let mut sm = StateMachine::new();
    apply(&mut sm, &request(1, 1, acquire("a", None)));
    let out = apply(&mut sm, &request(2, 1, acquire("a", Some(Duration::MAX))));
    assert_eq!(answer(&out, 2, 1), None, "queued");
    sm
}

/// A revoke ends the grant, grants the head of the queue under the next token in the same
/// entry (no lock-delay), and answers who held it under which token.
#[test]
fn a_revoke_grants_the_next_waiter_under_a_newer_token() {
    let mut sm = held_with_waiter();
    let out = apply(&mut sm, &request(ADMIN, 1, revoke("a")));
    assert_eq!(
        out,
        vec![
            Outcome::Touched {
                client: ClientId(ADMIN)
            },
            Outcome::Ended {
                lock: "a".into(),
                token: FencingToken(1),
            },
            Outcome::Granted {
                lock: "a".into(),
                token: FencingToken(2),
                lease: LEASE,
            },
            Outcome::Reply(ClientResponse {
                client: ClientId(2),
                seq: Seq(1),
                result: Ok(Reply::Granted {
                    token: FencingToken(2),
                    lease: LEASE,
                }),
            }),
            Outcome::Reply(ClientResponse {
                client: ClientId(ADMIN),
                seq: Seq(1),
                result: Ok(Reply::Revoked {
                    client: ClientId(1),
                    token: FencingToken(1),
                }),
            }),
        ]
    );
    assert_eq!(holder(&sm, "a"), Some((ClientId(2), FencingToken(2))));
    assert!(!sm.lock("a").is_some_and(|s| s.delayed));
    let one = sm.session(ClientId(1)).unwrap();
    assert!(one.held.is_empty());
    assert_eq!(one.revoked, vec![("a".into(), FencingToken(1))]);
}

/// A revoke of a lock without waiters frees it: it leaves the table.
#[test]
fn a_revoke_without_waiters_frees_the_lock() {
    let mut sm = StateMachine::new();
    apply(&mut sm, &request(1, 1, acquire("a", None)));
    let out = apply(&mut sm, &request(ADMIN, 1, revoke("a")));
    assert!(
        out.contains(&Outcome::Freed { lock: "a".into() }),
        "{out:?}"
    );
    assert!(sm.lock("a").is_none());
}

/// The revoked holder's append, release and keep-alive are told it was revoked, whether the
/// lock is now someone else's or free; an unrelated client still gets the usual refusals.
#[test]
fn the_revoked_holder_is_told_revoked() {
    let mut sm = held_with_waiter();
    apply(&mut sm, &request(ADMIN, 1, revoke("a")));
    let append = Op::Append {
        lock: "a".into(),
        token: FencingToken(1),
        file: "f".into(),
        data: b"x".to_vec(),
    };
    let revoked = Err(Rejection::Revoked {
        token: FencingToken(1),
    });
    let out = apply(&mut sm, &request(1, 2, append.clone()));
    assert_eq!(answer(&out, 1, 2), Some(revoked.clone()));
    assert!(sm.file("f").is_none());
    let out = apply(&mut sm, &request(1, 3, Op::KeepAlive));
    assert_eq!(
        answer(&out, 1, 3),
        Some(Ok(Reply::KeptAlive {
            held: vec![],
            revoked: vec![("a".into(), FencingToken(1))],
        }))
    );
    // Another client presenting the same old token is merely stale.
    let out = apply(&mut sm, &request(3, 1, append));
    assert_eq!(
        answer(&out, 3, 1),
        Some(Err(Rejection::StaleToken {
            presented: FencingToken(1)
        }))
    );
    // The new holder releases; the lock is free, and the old grant is still revoked.
    let release = |token| Op::Release {
        lock: "a".into(),
        token: FencingToken(token),
    };
    let out = apply(&mut sm, &request(2, 2, release(2)));
    assert_eq!(answer(&out, 2, 2), Some(Ok(Reply::Released)));
    let out = apply(&mut sm, &request(1, 4, release(1)));
    assert_eq!(answer(&out, 1, 4), Some(revoked));
}

/// Taking the lock again forgets the revocation of it: the new grant is good, the old token is
/// merely stale.
#[test]
fn a_new_grant_forgets_the_revocation() {
    let mut sm = StateMachine::new();
    apply(&mut sm, &request(1, 1, acquire("a", None)));
    apply(&mut sm, &request(ADMIN, 1, revoke("a")));
    let out = apply(&mut sm, &request(1, 2, acquire("a", None)));
    assert_eq!(
        answer(&out, 1, 2),
        Some(Ok(Reply::Granted {
            token: FencingToken(2),
            lease: LEASE
        }))
    );
    assert!(sm.session(ClientId(1)).unwrap().revoked.is_empty());
    let out = apply(&mut sm, &request(1, 3, Op::KeepAlive));
    assert_eq!(
        answer(&out, 1, 3),
        Some(Ok(Reply::KeptAlive {
            held: vec![("a".into(), FencingToken(2))],
            revoked: vec![],
        }))
    );
}

/// A session remembers its last `Session::MAX_REVOKED` revocations, oldest forgotten first.
#[test]
fn a_session_remembers_a_bounded_number_of_revocations() {
    let mut sm = StateMachine::new();
    let n = Session::MAX_REVOKED as u64 + 1;
    for i in 0..n {
        let lock = format!("l{i}");
        apply(&mut sm, &request(1, i + 1, acquire(&lock, None)));
        apply(&mut sm, &request(ADMIN, i + 1, revoke(&lock)));
    }
    let revoked = &sm.session(ClientId(1)).unwrap().revoked;
    assert_eq!(revoked.len(), Session::MAX_REVOKED);
    assert_eq!(revoked[0], ("l1".into(), FencingToken(2)));
    assert_eq!(
        revoked.last(),
        Some(&(format!("l{}", n - 1).into(), FencingToken(n)))
    );
}

/// A revoke of a lock nobody holds (never taken, or released) is refused
/// as not held and changes nothing; a retry gets the first answer from the dedup cache.
#[test]
fn a_revoke_of_an_unheld_lock_is_refused_and_deduplicated() {
    let mut sm = StateMachine::new();
    let out = apply(&mut sm, &request(ADMIN, 1, revoke("nope")));
    assert_eq!(answer(&out, ADMIN, 1), Some(Err(Rejection::NotHeld)));
    assert!(sm.lock("nope").is_none());
    // A revoke that succeeded is not applied again on a retry.
    apply(&mut sm, &request(1, 1, acquire("a", None)));
    let first = apply(&mut sm, &request(ADMIN, 2, revoke("a")));
    apply(&mut sm, &request(2, 1, acquire("a", None)));
    let retry = apply(&mut sm, &request(ADMIN, 2, revoke("a")));
    assert_eq!(answer(&retry, ADMIN, 2), answer(&first, ADMIN, 2));
    assert_eq!(holder(&sm, "a"), Some((ClientId(2), FencingToken(2))));
    // A bad name never gets as far.
    let out = apply(&mut sm, &request(ADMIN, 3, revoke("")));
    assert!(matches!(
        answer(&out, ADMIN, 3),
        Some(Err(Rejection::BadName { .. }))
    ));
}

/// Introspection is not replicated: placed in the log anyway, it is refused as invalid.
#[test]
fn introspection_in_the_log_is_refused() {
    let mut sm = StateMachine::new();
    let locks = Op::Locks {
        prefix: String::new(),
        after: None,
        limit: 10,
    };
    let out = apply(&mut sm, &request(1, 1, locks));
    assert!(matches!(
        answer(&out, 1, 1),
        Some(Err(Rejection::Invalid(_)))
    ));
    let out = apply(
        &mut sm,
        &request(
            1,
            2,
            Op::Sessions {
                after: None,
                limit: 0,
            },
        ),
    );
    assert!(matches!(
        answer(&out, 1, 2),
        Some(Err(Rejection::Invalid(_)))
    ));
}

fn with_locks(names: &[&str]) -> StateMachine {
    let mut sm = StateMachine::new();
    for (i, name) in names.iter().enumerate() {
        apply(&mut sm, &request(i as u128 + 1, 1, acquire(name, None)));
    }
    sm
}

fn names(page: &LocksPage) -> Vec<&str> {
    page.locks.iter().map(|l| l.lock.as_str()).collect()
}

/// Pages come in name order, filtered by prefix, `limit` at a time, and `next` continues
/// exactly where the last one stopped; the last page has no `next`.
#[test]
fn lock_pages_are_ordered_filtered_and_continue() {
    let sm = with_locks(&["jobs/c", "x", "jobs/a", "jobs/b", "job"]);
    let none = |_: &LockName, _| None;
    let page = sm.locks_page("jobs/", None, 2, none);
    assert_eq!(names(&page), ["jobs/a", "jobs/b"]);
    assert_eq!(page.next, Some("jobs/b".into()));
    let page = sm.locks_page("jobs/", page.next.as_ref(), 2, none);
    assert_eq!(names(&page), ["jobs/c"]);
    assert_eq!(page.next, None);
    // Exactly `limit` left: no `next`.
    let page = sm.locks_page("", None, 5, none);
    assert_eq!(names(&page), ["job", "jobs/a", "jobs/b", "jobs/c", "x"]);
    assert_eq!(page.next, None);
    let page = sm.locks_page("", Some(&"x".into()), 5, none);
    assert!(page.locks.is_empty() && page.next.is_none());
}

/// A row shows the holder, its token and lease, the lease left as the caller tells it, and
/// the first waiters with their count.
#[test]
fn a_lock_row_shows_holder_lease_and_waiters() {
    let mut sm = StateMachine::new();
    apply(&mut sm, &request(1, 1, acquire("a", None)));
    let waiters = MAX_LISTED as u128 + 2;
    for c in 0..waiters {
        apply(
            &mut sm,
            &request(10 + c, 1, acquire("a", Some(Duration::MAX))),
        );
    }
    let left = Duration::from_millis(300);
    let page = sm.locks_page("", None, 10, |lock, token| {
        (lock.as_str() == "a" && token == FencingToken(1)).then_some(left)
    });
    let row = &page.locks[0];
    assert_eq!(
        row.holder().cloned(),
        Some(HolderInfo {
            client: ClientId(1),
            mode: Mode::Exclusive,
            token: FencingToken(1),
            lease: LEASE,
            lease_left: Some(left),
        })
    );
    let listed: Vec<ClientId> = (10..10 + MAX_LISTED as u128).map(ClientId).collect();
    assert_eq!(row.waiters, listed);
    assert_eq!(row.waiting, waiters as u64);
    assert!(!row.delayed);
}

/// However large the limit asked for, a page has at most `MAX_PAGE` rows.
#[test]
fn a_page_is_capped() {
    let names: Vec<String> = (0..MAX_PAGE + 3).map(|i| format!("l{i:05}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let sm = with_locks(&refs);
    let page = sm.locks_page("", None, u32::MAX, |_, _| None);
    assert_eq!(page.locks.len(), MAX_PAGE as usize);
    assert_eq!(
        page.next.as_ref().map(LockName::as_str),
        Some(refs[MAX_PAGE as usize - 1])
    );
    let rest = sm.locks_page("", page.next.as_ref(), u32::MAX, |_, _| None);
    assert_eq!(rest.locks.len(), 3);
    assert_eq!(rest.next, None);
}

/// Session rows list what each client holds and waits for, in client order, with the idle time
/// the caller tells.
#[test]
fn session_pages_show_held_and_waiting_locks() {
    let mut sm = StateMachine::new();
    apply(&mut sm, &request(1, 1, acquire("a", None)));
    apply(&mut sm, &request(1, 2, acquire("b", None)));
    apply(&mut sm, &request(2, 1, acquire("a", Some(Duration::MAX))));
    apply(&mut sm, &request(3, 1, Op::KeepAlive));
    let idle = |c: ClientId| (c == ClientId(2)).then_some(Duration::from_secs(4));
    let page = sm.sessions_page(None, 2, idle);
    assert_eq!(
        page.sessions,
        vec![
            SessionInfo {
                client: ClientId(1),
                held: vec!["a".into(), "b".into()],
                holding: 2,
                waiting_for: vec![],
                waiting: 0,
                idle: None,
            },
            SessionInfo {
                client: ClientId(2),
                held: vec![],
                holding: 0,
                waiting_for: vec!["a".into()],
                waiting: 1,
                idle: Some(Duration::from_secs(4)),
            },
        ]
    );
    assert_eq!(page.next, Some(ClientId(2)));
    let page = sm.sessions_page(page.next, 2, idle);
    assert_eq!(page.sessions.len(), 1);
    assert_eq!(page.sessions[0].client, ClientId(3));
    assert_eq!(page.next, None);
}
