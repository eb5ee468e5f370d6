//! Exact rules of the replicated state machine, one per test: each drives
//! `StateMachine::apply` with fixed commands and compares the whole list of outcomes and the
//! state it leaves. These pin down boundaries that the property tests reach only by chance
//! (they were found by mutation testing of `dlm-core/src/state_machine/`).

use dlm_core::*;
use std::time::Duration;

const LEASE: Duration = Duration::from_secs(1);

fn rules() -> Rules {
    Rules {
        limits: Limits {
            max_append: 16,
            max_file: 8,
            ..Limits::default()
        },
        lock_delay: false,
    }
}

fn request(client: u128, seq: u64, acked_below: u64, op: Op) -> Command {
    Command::Client(ClientRequest {
        client: ClientId(client),
        seq: Seq(seq),
        acked_below: Seq(acked_below),
        pending: Vec::new(),
        op,
    })
}

fn acquire(lock: &str) -> Op {
    Op::Acquire {
        lock: lock.into(),
        lease: LEASE,
        wait: None,
    }
}

fn apply(sm: &mut StateMachine, command: &Command, rules: &Rules) -> Vec<Outcome> {
    let mut out = Vec::new();
    sm.apply(command, rules, &mut out);
    out
}

fn reply(client: u128, seq: u64, result: Result<Reply, Rejection>) -> Outcome {
    Outcome::Reply(ClientResponse {
        client: ClientId(client),
        seq: Seq(seq),
        result,
    })
}

fn touched(client: u128) -> Outcome {
    Outcome::Touched {
        client: ClientId(client),
    }
}

fn append(lock: &str, token: u64, file: &str, data: &[u8]) -> Op {
    Op::Append {
        lock: lock.into(),
        token: FencingToken(token),
        file: file.into(),
        data: data.to_vec(),
    }
}

fn granted(token: u64) -> Result<Reply, Rejection> {
    Ok(Reply::Granted {
        token: FencingToken(token),
        lease: LEASE,
    })
}

fn outcome_granted(lock: &str, token: u64) -> Outcome {
    Outcome::Granted {
        lock: lock.into(),
        token: FencingToken(token),
        lease: LEASE,
    }
}

/// A session with these slots and held locks.
fn session(acked_below: u64, slots: &[(u64, Slot)], held: &[&str]) -> Session {
    let mut s = Slots::default();
    for (seq, slot) in slots {
        s.insert(Seq(*seq), slot.clone());
    }
    Session {
        acked_below: Seq(acked_below),
        slots: s,
        held: held.iter().map(|l| LockName::from(*l)).collect(),
        revoked: Vec::new(),
    }
}

/// Client 1 holds `lock` under token 1.
fn held_by_one(lock: &str, rules: &Rules) -> StateMachine {
    let mut sm = StateMachine::new();
    let out = apply(&mut sm, &request(1, 1, 1, acquire(lock)), rules);
    assert_eq!(
        out,
        vec![
            touched(1),
            outcome_granted(lock, 1),
            reply(1, 1, granted(1))
        ]
    );
    sm
}

/// The first append to a new file may fill it to exactly `max_file`; one byte more is refused.
#[test]
fn a_new_file_may_be_created_at_exactly_max_file() {
    let rules = rules();
    let mut sm = held_by_one("a", &rules);
    let full = [7u8; 8];
    let out = apply(
        &mut sm,
        &request(1, 2, 1, append("a", 1, "f", &full)),
        &rules,
    );
    assert_eq!(
        out,
        vec![
            touched(1),
            Outcome::Appended {
                file: "f".into(),
                offset: 0,
                data: full.to_vec(),
            },
            reply(1, 2, Ok(Reply::Appended { offset: 0 })),
        ]
    );
    assert_eq!(
        sm.file("f"),
        Some(&GuardedFile {
            guard: "a".into(),
            last_token: FencingToken(1),
            data: full.to_vec(),
        })
    );

    let out = apply(
        &mut sm,
        &request(1, 3, 1, append("a", 1, "g", &[7u8; 9])),
        &rules,
    );
    assert_eq!(
        out,
        vec![
            touched(1),
            reply(1, 3, Err(Rejection::FileTooLarge { max: 8 })),
        ]
    );
    assert_eq!(sm.file("g"), None);
    assert_eq!(sm.files().count(), 1);
}

/// A cancel naming an acquire at exactly the watermark that has not arrived refuses it in
/// advance (`Prevented`): only seqs below the watermark are known answered.
#[test]
fn cancel_of_an_unarrived_acquire_at_the_watermark_prevents_it() {
    let rules = rules();
    let mut sm = StateMachine::new();
    let out = apply(&mut sm, &request(1, 1, 1, Op::KeepAlive), &rules);
    assert_eq!(
        out,
        vec![
            touched(1),
            Outcome::Renewed {
                client: ClientId(1)
            },
            reply(
                1,
                1,
                Ok(Reply::KeptAlive {
                    held: vec![],
                    revoked: vec![]
                })
            ),
        ]
    );

    let cancel = Op::Cancel {
        lock: "a".into(),
        seq: Seq(2),
    };
    let out = apply(&mut sm, &request(1, 3, 2, cancel), &rules);
    assert_eq!(
        out,
        vec![
            touched(1),
            reply(1, 3, Ok(Reply::Cancelled(Withdrawn::Prevented))),
        ]
    );
    let prevented = Slot::Done(Err(Rejection::Cancelled));
    let answered = Slot::Done(Ok(Reply::Cancelled(Withdrawn::Prevented)));
    assert_eq!(
        sm.session(ClientId(1)),
        Some(&session(
            2,
            &[(2, prevented.clone()), (3, answered.clone())],
            &[]
        ))
    );

    // The acquire arrives late: the dedup cache refuses it, and nothing is granted.
    let out = apply(&mut sm, &request(1, 2, 2, acquire("a")), &rules);
    assert_eq!(
        out,
        vec![touched(1), reply(1, 2, Err(Rejection::Cancelled))]
    );
    assert_eq!(sm.lock("a"), None);
    assert_eq!(sm.last_token(), FencingToken(0));
    assert_eq!(
        sm.session(ClientId(1)),
        Some(&session(2, &[(2, prevented), (3, answered)], &[]))
    );
}

/// Answering a queued acquire whose slot is the session's newest replaces its `Waiting` slot
/// by the answer: one slot per seq, never a second one.
#[test]
fn granting_a_queued_acquire_replaces_its_waiting_slot() {
    let rules = rules();
    let mut sm = held_by_one("a", &rules);
    let wait = Duration::from_secs(5);
    let queued = Op::Acquire {
        lock: "a".into(),
        lease: LEASE,
        wait: Some(wait),
    };
    let out = apply(&mut sm, &request(2, 1, 1, queued), &rules);
    assert_eq!(
        out,
        vec![
            touched(2),
            Outcome::Queued {
                lock: "a".into(),
                client: ClientId(2),
                seq: Seq(1),
                wait,
            },
        ]
    );
    assert_eq!(
        sm.session(ClientId(2)),
        Some(&session(1, &[(1, Slot::Waiting("a".into()))], &[]))
    );

    let release = Op::Release {
        lock: "a".into(),
        token: FencingToken(1),
    };
    let out = apply(&mut sm, &request(1, 2, 1, release), &rules);
    assert_eq!(
        out,
        vec![
            touched(1),
            Outcome::Ended {
                lock: "a".into(),
                token: FencingToken(1),
            },
            outcome_granted("a", 2),
            reply(2, 1, granted(2)),
            reply(1, 2, Ok(Reply::Released)),
        ]
    );
    let only = session(1, &[(1, Slot::Done(granted(2)))], &["a"]);
    assert_eq!(only.slots.len(), 1);
    assert_eq!(sm.session(ClientId(2)), Some(&only));
    assert_eq!(
        sm.lock("a").and_then(|s| s.holder().cloned()),
        Some(Holder {
            client: ClientId(2),
            token: FencingToken(2),
            lease: LEASE,
            renewals: 0,
            mode: Mode::Exclusive,
        })
    );
}

/// A session is quiet exactly when it holds nothing and waits for nothing: answered slots do
/// not count.
#[test]
fn a_session_is_quiet_when_it_holds_and_waits_for_nothing() {
    assert!(Session::default().is_quiet());

    let rules = rules();
    let mut sm = held_by_one("a", &rules);
    // Holds "a", waits for nothing.
    assert!(!sm.session(ClientId(1)).unwrap().is_quiet());

    let queued = Op::Acquire {
        lock: "a".into(),
        lease: LEASE,
        wait: Some(Duration::from_secs(5)),
    };
    apply(&mut sm, &request(2, 1, 1, queued), &rules);
    // Waits for "a", holds nothing.
    assert!(!sm.session(ClientId(2)).unwrap().is_quiet());

    let release = Op::Release {
        lock: "a".into(),
        token: FencingToken(1),
    };
    apply(&mut sm, &request(1, 2, 1, release), &rules);
    // Only answered slots left.
    let one = sm.session(ClientId(1)).unwrap();
    assert_eq!(one.slots.len(), 2);
    assert!(one.is_quiet());
}

/// `Slots::is_empty` holds exactly when no request is remembered.
#[test]
fn slots_are_empty_exactly_when_nothing_is_remembered() {
    let mut slots = Slots::default();
    assert!(slots.is_empty());
    slots.insert(Seq(1), Slot::Done(Ok(Reply::Released)));
    assert!(!slots.is_empty());

    let rules = rules();
    let sm = held_by_one("a", &rules);
    let slots = &sm.session(ClientId(1)).unwrap().slots;
    assert_eq!(slots.len(), 1);
    assert!(!slots.is_empty());
}

/// A lock name of exactly `max_name_len` bytes is accepted; one byte longer is refused.
#[test]
fn a_name_of_exactly_max_name_len_is_accepted() {
    let rules = Rules {
        limits: Limits {
            max_name_len: 4,
            ..Limits::default()
        },
        lock_delay: false,
    };
    let mut sm = held_by_one("abcd", &rules);
    let out = apply(&mut sm, &request(1, 2, 1, acquire("abcde")), &rules);
    assert_eq!(
        out,
        vec![touched(1), reply(1, 2, Err(Rejection::BadName { max: 4 }))]
    );
    assert_eq!(sm.lock("abcde"), None);
    assert_eq!(sm.locks().count(), 1);
    assert_eq!(sm.last_token(), FencingToken(1));
}

/// A lease of exactly `min_lease` or exactly `max_lease` is accepted; one nanosecond outside
/// either bound is refused with the range.
#[test]
fn leases_at_both_bounds_are_accepted() {
    let rules = rules();
    let (min, max) = (rules.limits.min_lease, rules.limits.max_lease);
    let acquire_with = |lock: &str, lease: Duration| Op::Acquire {
        lock: lock.into(),
        lease,
        wait: None,
    };
    let mut sm = StateMachine::new();
    let bad = Err(Rejection::BadLease { min, max });
    let cases = [
        ("a", min, 1, Some(1)),
        ("b", max, 2, Some(2)),
        ("c", min - Duration::from_nanos(1), 3, None),
        ("d", max + Duration::from_nanos(1), 4, None),
    ];
    for (lock, lease, seq, token) in cases {
        let out = apply(
            &mut sm,
            &request(1, seq, 1, acquire_with(lock, lease)),
            &rules,
        );
        let expected = match token {
            Some(token) => vec![
                touched(1),
                Outcome::Granted {
                    lock: lock.into(),
                    token: FencingToken(token),
                    lease,
                },
                reply(
                    1,
                    seq,
                    Ok(Reply::Granted {
                        token: FencingToken(token),
                        lease,
                    }),
                ),
            ],
            None => vec![touched(1), reply(1, seq, bad.clone())],
        };
        assert_eq!(out, expected, "lease {lease:?}");
    }
    assert_eq!(
        sm.session(ClientId(1)).map(|s| s.held.clone()),
        Some(vec!["a".into(), "b".into()])
    );
    assert_eq!(sm.locks().count(), 2);
}

/// An append of exactly `max_append` bytes is accepted; one byte more is refused before the
/// file is looked at.
#[test]
fn an_append_of_exactly_max_append_is_accepted() {
    let rules = Rules {
        limits: Limits {
            max_append: 8,
            max_file: 64,
            ..Limits::default()
        },
        lock_delay: false,
    };
    let mut sm = held_by_one("a", &rules);
    let eight = [1u8; 8];
    let out = apply(
        &mut sm,
        &request(1, 2, 1, append("a", 1, "f", &eight)),
        &rules,
    );
    assert_eq!(
        out,
        vec![
            touched(1),
            Outcome::Appended {
                file: "f".into(),
                offset: 0,
                data: eight.to_vec(),
            },
            reply(1, 2, Ok(Reply::Appended { offset: 0 })),
        ]
    );
    let out = apply(
        &mut sm,
        &request(1, 3, 1, append("a", 1, "f", &[2u8; 9])),
        &rules,
    );
    assert_eq!(
        out,
        vec![
            touched(1),
            reply(1, 3, Err(Rejection::AppendTooLarge { max: 8 })),
        ]
    );
    assert_eq!(
        sm.file("f"),
        Some(&GuardedFile {
            guard: "a".into(),
            last_token: FencingToken(1),
            data: eight.to_vec(),
        })
    );
}

/// One session holds and waits for at most `max_locks_per_session` locks together: a wait
/// counts, since it becomes a grant without another check. The acquire past the bound is
/// refused `TooManyLocks` and leaves no trace; a release makes room again.
#[test]
fn a_session_holds_and_waits_for_at_most_its_bound_of_locks() {
    let rules = Rules {
        limits: Limits {
            max_locks_per_session: 2,
            ..Limits::default()
        },
        lock_delay: false,
    };
    let waiting = |lock: &str| Op::Acquire {
        lock: lock.into(),
        lease: LEASE,
        wait: Some(Duration::from_secs(60)),
    };
    let mut sm = StateMachine::new();
    let granted = |out: &[Outcome]| out.iter().any(|o| matches!(o, Outcome::Granted { .. }));
    assert!(granted(&apply(
        &mut sm,
        &request(2, 1, 1, acquire("b")),
        &rules
    )));
    assert!(granted(&apply(
        &mut sm,
        &request(1, 1, 1, acquire("a")),
        &rules
    )));
    // Client 1 queues for "b", which client 2 holds: one held and one awaited.
    let out = apply(&mut sm, &request(1, 2, 2, waiting("b")), &rules);
    assert!(
        out.iter().any(|o| matches!(o, Outcome::Queued { .. })),
        "{out:?}"
    );
    let out = apply(&mut sm, &request(1, 3, 2, acquire("c")), &rules);
    let refused = reply(1, 3, Err(Rejection::TooManyLocks { max: 2 }));
    assert_eq!(out, [touched(1), refused]);
    assert!(
        sm.lock("c").is_none(),
        "a refused acquire leaves no lock behind"
    );
    // Releasing "a" makes room for "c".
    let token = sm
        .lock("a")
        .and_then(|s| s.holders.first())
        .map(|h| h.token);
    let release = Op::Release {
        lock: "a".into(),
        token: token.unwrap_or_default(),
    };
    apply(&mut sm, &request(1, 4, 2, release), &rules);
    assert!(granted(&apply(
        &mut sm,
        &request(1, 5, 2, acquire("c")),
        &rules
    )));
}

/// At its bound, a session asking again for a lock it holds is told it holds it, not that it
/// has too many.
#[test]
fn a_session_at_its_bound_asking_for_a_lock_it_holds_is_told_so() {
    let rules = Rules {
        limits: Limits {
            max_locks_per_session: 1,
            ..Limits::default()
        },
        lock_delay: false,
    };
    let mut sm = StateMachine::new();
    apply(&mut sm, &request(1, 1, 1, acquire("a")), &rules);
    let out = apply(&mut sm, &request(1, 2, 2, acquire("a")), &rules);
    let token = sm
        .lock("a")
        .and_then(|s| s.holders.first())
        .map(|h| h.token);
    let held = Err(Rejection::AlreadyHeld {
        token: token.unwrap_or_default(),
    });
    assert_eq!(out, [touched(1), reply(1, 2, held)]);
}

fn request_pending(client: u128, seq: u64, acked_below: u64, pending: &[u64], op: Op) -> Command {
    Command::Client(ClientRequest {
        client: ClientId(client),
        seq: Seq(seq),
        acked_below: Seq(acked_below),
        pending: pending.iter().map(|s| Seq(*s)).collect(),
        op,
    })
}

fn wait_for(lock: &str) -> Op {
    Op::Acquire {
        lock: lock.into(),
        lease: LEASE,
        wait: Some(Duration::from_secs(60)),
    }
}

/// The answer `out` holds for `(client, seq)`.
fn answer_in(out: &[Outcome], client: u128, seq: u64) -> Option<Result<Reply, Rejection>> {
    out.iter().find_map(|o| match o {
        Outcome::Reply(r) if r.client == ClientId(client) && r.seq == Seq(seq) => {
            Some(r.result.clone())
        }
        _ => None,
    })
}

/// A pending seq below the watermark keeps its slot: a waiting acquire the watermark passed is
/// still granted, its grant is kept for a retry while requests name it pending, and the first
/// request that does not name it acknowledges it (a retry is then refused as below the
/// watermark). The answers the watermark passes meanwhile are forgotten as usual.
#[test]
fn a_pending_seq_keeps_its_answer_past_the_watermark_until_acknowledged() {
    let rules = rules();
    let mut sm = held_by_one("a", &rules);
    apply(&mut sm, &request(2, 1, 1, wait_for("a")), &rules);
    for seq in 2..=4 {
        let out = apply(
            &mut sm,
            &request_pending(2, seq, seq, &[1], acquire(&format!("l{seq}"))),
            &rules,
        );
        assert!(
            matches!(answer_in(&out, 2, seq), Some(Ok(Reply::Granted { .. }))),
            "{out:?}"
        );
    }
    let waiting = Slot::Waiting("a".into());
    let l4 = |sm: &StateMachine| {
        sm.session(ClientId(2))
            .and_then(|s| s.slots.get(&Seq(4)).cloned())
    };
    let kept = session(
        4,
        &[(1, waiting.clone()), (4, l4(&sm).unwrap())],
        &["l2", "l3", "l4"],
    );
    assert_eq!(sm.session(ClientId(2)), Some(&kept));

    // Client 1 gives a back: the acquire below the watermark is granted.
    let out = apply(
        &mut sm,
        &request(
            1,
            2,
            2,
            Op::Release {
                lock: "a".into(),
                token: FencingToken(1),
            },
        ),
        &rules,
    );
    let grant = answer_in(&out, 2, 1).expect("the waiting acquire is answered");
    assert!(matches!(grant, Ok(Reply::Granted { .. })), "{grant:?}");

    // Requests naming it pending keep its answer; a retry gets it.
    apply(
        &mut sm,
        &request_pending(2, 5, 5, &[1], Op::KeepAlive),
        &rules,
    );
    let session_slots = sm.session(ClientId(2)).map(|s| s.slots.len());
    assert_eq!(session_slots, Some(2), "seq 1's grant and seq 5's answer");
    let out = apply(
        &mut sm,
        &request_pending(2, 1, 6, &[1], wait_for("a")),
        &rules,
    );
    assert_eq!(out, vec![touched(2), reply(2, 1, grant.clone())]);

    // A request that does not name it acknowledges it.
    apply(&mut sm, &request(2, 6, 6, Op::KeepAlive), &rules);
    let out = apply(&mut sm, &request(2, 1, 6, wait_for("a")), &rules);
    assert_eq!(out, vec![reply(2, 1, Err(Rejection::SeqBelowWatermark))]);
    // And a late request that named it pending cannot take the acknowledgement back.
    apply(
        &mut sm,
        &request_pending(2, 7, 7, &[1], Op::KeepAlive),
        &rules,
    );
    let out = apply(&mut sm, &request(2, 1, 7, wait_for("a")), &rules);
    assert_eq!(out, vec![reply(2, 1, Err(Rejection::SeqBelowWatermark))]);
}

/// A pending seq the watermark passes before it arrives is expected: applied when it comes,
/// once, where without the pending name it would be refused as below the watermark.
#[test]
fn a_pending_seq_not_seen_yet_is_applied_when_it_arrives() {
    let rules = rules();
    let mut sm = StateMachine::new();
    let out = apply(
        &mut sm,
        &request_pending(3, 2, 2, &[1], acquire("y")),
        &rules,
    );
    assert!(
        matches!(answer_in(&out, 3, 2), Some(Ok(Reply::Granted { .. }))),
        "{out:?}"
    );
    apply(
        &mut sm,
        &request_pending(3, 3, 3, &[1], Op::KeepAlive),
        &rules,
    );
    let out = apply(
        &mut sm,
        &request_pending(3, 1, 3, &[1], acquire("x")),
        &rules,
    );
    let first = answer_in(&out, 3, 1);
    assert!(matches!(first, Some(Ok(Reply::Granted { .. }))), "{out:?}");
    // Applied once: a copy of it gets the same answer.
    let out = apply(
        &mut sm,
        &request_pending(3, 1, 3, &[1], acquire("x")),
        &rules,
    );
    assert_eq!(answer_in(&out, 3, 1), first);

    let mut sm = StateMachine::new();
    apply(&mut sm, &request(4, 2, 1, acquire("y")), &rules);
    apply(&mut sm, &request(4, 3, 3, Op::KeepAlive), &rules);
    let out = apply(&mut sm, &request(4, 1, 3, acquire("x")), &rules);
    assert_eq!(out, vec![reply(4, 1, Err(Rejection::SeqBelowWatermark))]);
}

/// More than `MAX_PENDING` pending seqs, or seqs out of order, are refused before anything
/// else, the same on every node.
#[test]
fn malformed_pending_seqs_are_refused() {
    let rules = rules();
    let mut sm = StateMachine::new();
    let many: Vec<u64> = (1..=MAX_PENDING as u64 + 1).collect();
    let out = apply(
        &mut sm,
        &request_pending(5, 100, 100, &many, acquire("x")),
        &rules,
    );
    assert!(
        matches!(answer_in(&out, 5, 100), Some(Err(Rejection::Invalid(_)))),
        "{out:?}"
    );
    let out = apply(
        &mut sm,
        &request_pending(5, 100, 100, &[3, 2], acquire("x")),
        &rules,
    );
    assert!(
        matches!(answer_in(&out, 5, 100), Some(Err(Rejection::Invalid(_)))),
        "{out:?}"
    );
    assert!(sm.session(ClientId(5)).is_none());
}
