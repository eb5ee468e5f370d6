//! Property tests of the replicated state machine, applied directly: random interleavings of
//! client requests, retries and leader-proposed commands must keep the lock invariants.

use dlm_core::*;
use proptest::prelude::*;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

const CLIENTS: u8 = 4;
const LOCKS: [&str; 3] = ["a", "b", "c"];
/// The modes an acquire picks from: any mode on any name, so that names change kind as they
/// leave the table and mismatched modes are refused.
const MODES: [Mode; 5] = [
    Mode::Exclusive,
    Mode::Read,
    Mode::Write,
    Mode::Permit { permits: 2 },
    Mode::Permit { permits: 3 },
];
const FILES: [&str; 2] = ["f", "g"];

#[derive(Clone, Debug)]
enum Action {
    Acquire {
        client: u8,
        lock: u8,
        wait: bool,
        mode: u8,
    },
    Release {
        client: u8,
        lock: u8,
        right: bool,
        wrong: u8,
    },
    Append {
        client: u8,
        lock: u8,
        file: u8,
        len: u8,
        right: bool,
    },
    Cancel {
        client: u8,
        lock: u8,
        right: bool,
    },
    KeepAlive {
        client: u8,
    },
    Read {
        client: u8,
        file: u8,
        offset: u8,
    },
    Expire {
        lock: u8,
        stale: bool,
        which: u8,
    },
    LiftDelay {
        lock: u8,
    },
    CancelWait {
        pick: u8,
    },
    ExpireSession {
        client: u8,
    },
    Retry {
        pick: u16,
    },
}

fn action() -> impl Strategy<Value = Action> {
    let c = 0..CLIENTS;
    let l = 0..LOCKS.len() as u8;
    let f = 0..FILES.len() as u8;
    prop_oneof![
        4 => (c.clone(), l.clone(), any::<bool>(), 0..MODES.len() as u8)
            .prop_map(|(client, lock, wait, mode)| Action::Acquire { client, lock, wait, mode }),
        3 => (c.clone(), l.clone(), prop::bool::weighted(0.8), any::<u8>()).prop_map(
            |(client, lock, right, wrong)| Action::Release { client, lock, right, wrong }
        ),
        3 => (c.clone(), l.clone(), f.clone(), 0..20u8, prop::bool::weighted(0.8)).prop_map(
            |(client, lock, file, len, right)| Action::Append { client, lock, file, len, right }
        ),
        1 => (c.clone(), l.clone(), any::<bool>())
            .prop_map(|(client, lock, right)| Action::Cancel { client, lock, right }),
        1 => c.clone().prop_map(|client| Action::KeepAlive { client }),
        1 => (c.clone(), f, any::<u8>())
            .prop_map(|(client, file, offset)| Action::Read { client, file, offset }),
        2 => (l.clone(), any::<bool>(), any::<u8>())
            .prop_map(|(lock, stale, which)| Action::Expire { lock, stale, which }),
        1 => l.prop_map(|lock| Action::LiftDelay { lock }),
        1 => any::<u8>().prop_map(|pick| Action::CancelWait { pick }),
        1 => c.prop_map(|client| Action::ExpireSession { client }),
        3 => any::<u16>().prop_map(|pick| Action::Retry { pick }),
    ]
}

/// What the test knows besides the state machine itself.
#[derive(Default)]
struct Model {
    /// Each client slot's current id generation (a client whose session expired starts anew).
    generation: [u128; CLIENTS as usize],
    next_seq: HashMap<ClientId, u64>,
    /// Every request sent by a client that is still live, for retries.
    sent: Vec<ClientRequest>,
    /// The first answer to each request.
    answers: HashMap<(ClientId, Seq), Result<Reply, Rejection>>,
    /// Acquires queued per lock, in order of enqueue.
    queues: HashMap<LockName, Vec<(ClientId, Seq)>>,
    /// Queued acquires that were answered or whose session went away.
    resolved: std::collections::HashSet<(ClientId, Seq)>,
    /// The acknowledged appends, per file, in offset order.
    files: BTreeMap<FileName, Vec<u8>>,
    last_granted: u64,
}

impl Model {
    fn client(&self, slot: u8) -> ClientId {
        ClientId(u128::from(slot) + 1 + 1000 * self.generation[slot as usize])
    }

    fn request(&mut self, slot: u8, op: Op) -> ClientRequest {
        let client = self.client(slot);
        let seq = self.next_seq.entry(client).or_insert(0);
        *seq += 1;
        let request = ClientRequest {
            client,
            seq: Seq(*seq),
            acked_below: Seq(1),
            pending: Vec::new(),
            op,
        };
        self.sent.push(request.clone());
        request
    }

    /// The token `client` would present for `lock`: its grant if it holds it, else the newest
    /// token granted (which is not its own).
    fn token(&self, sm: &StateMachine, client: ClientId, lock: &str) -> FencingToken {
        match sm.lock(lock).and_then(|s| s.holder_of(client)) {
            Some(h) => h.token,
            None => FencingToken(self.last_granted),
        }
    }
}

fn rules(lock_delay: bool) -> Rules {
    Rules {
        limits: Limits {
            max_waiters: 3,
            max_append: 16,
            max_file: 96,
            max_read: 32,
            ..Limits::default()
        },
        lock_delay,
    }
}

fn build(model: &mut Model, sm: &StateMachine, a: &Action) -> (Command, Option<ClientRequest>) {
    let lease = Duration::from_secs(1);
    let op = match *a {
        Action::Acquire {
            client,
            lock,
            wait,
            mode,
        } => {
            let wait = wait.then_some(Duration::from_secs(5));
            let lock = LOCKS[lock as usize].into();
            (client, Op::acquire(lock, lease, wait, MODES[mode as usize]))
        }
        Action::Release {
            client,
            lock,
            right,
            wrong,
        } => {
            let name = LOCKS[lock as usize];
            let token = if right {
                model.token(sm, model.client(client), name)
            } else {
                FencingToken(u64::from(wrong) % (model.last_granted + 3))
            };
            (
                client,
                Op::Release {
                    lock: name.into(),
                    token,
                },
            )
        }
        Action::Append {
            client,
            lock,
            file,
            len,
            right,
        } => {
            let name = LOCKS[lock as usize];
            let mut token = model.token(sm, model.client(client), name);
            if !right {
                token = FencingToken(token.0.wrapping_sub(1));
            }
            let data = vec![len; len as usize];
            let file = FILES[file as usize].into();
            (
                client,
                Op::Append {
                    lock: name.into(),
                    token,
                    file,
                    data,
                },
            )
        }
        Action::Cancel {
            client,
            lock,
            right,
        } => {
            let name = LOCKS[lock as usize];
            // The seq of the client's queued acquire, or one that names no acquire of it.
            let queued = sm.lock(name).and_then(|s| {
                let id = model.client(client);
                s.waiters.iter().find(|w| w.client == id).map(|w| w.seq)
            });
            let seq = if right { queued } else { None }.unwrap_or(Seq(u64::MAX));
            (
                client,
                Op::Cancel {
                    lock: name.into(),
                    seq,
                },
            )
        }
        Action::KeepAlive { client } => (client, Op::KeepAlive),
        Action::Read {
            client,
            file,
            offset,
        } => {
            let offset = u64::from(offset);
            (
                client,
                Op::Read {
                    file: FILES[file as usize].into(),
                    offset,
                },
            )
        }
        Action::Expire { lock, stale, which } => {
            let name = LOCKS[lock as usize];
            let holder = sm.lock(name).and_then(|s| {
                let at = which as usize % s.holders.len().max(1);
                s.holders.get(at)
            });
            let (token, renewals) = match holder {
                Some(h) if stale => (h.token, h.renewals + 1),
                Some(h) => (h.token, h.renewals),
                None => (FencingToken(model.last_granted), 0),
            };
            let lock = name.into();
            return (
                Command::Expire {
                    lock,
                    token,
                    renewals,
                },
                None,
            );
        }
        Action::LiftDelay { lock } => {
            return (
                Command::LiftDelay {
                    lock: LOCKS[lock as usize].into(),
                },
                None,
            )
        }
        Action::CancelWait { pick } => {
            let waiters: Vec<(LockName, ClientId, Seq)> = sm
                .locks()
                .flat_map(|(l, s)| s.waiters.iter().map(move |w| (l.clone(), w.client, w.seq)))
                .collect();
            let Some((lock, client, seq)) =
                waiters.get(pick as usize % waiters.len().max(1)).cloned()
            else {
                return (Command::Noop, None);
            };
            return (Command::CancelWait { lock, client, seq }, None);
        }
        Action::ExpireSession { client } => {
            let id = model.client(client);
            return (Command::ExpireSession { client: id }, None);
        }
        Action::Retry { pick } => {
            let live: Vec<&ClientRequest> = model
                .sent
                .iter()
                .filter(|r| (0..CLIENTS).any(|c| model.client(c) == r.client))
                .collect();
            let Some(request) = live.get(pick as usize % live.len().max(1)) else {
                return (Command::Noop, None);
            };
            let request = (*request).clone();
            return (Command::Client(request.clone()), Some(request));
        }
    };
    let request = model.request(op.0, op.1);
    (Command::Client(request.clone()), Some(request))
}

fn check_invariants(sm: &StateMachine, model: &Model) {
    let mut holders = 0;
    for (name, state) in sm.locks() {
        assert!(!state.is_idle(), "idle lock {name} left in the table");
        let exclusive = state.holders.iter().any(|h| h.mode.is_exclusive());
        assert!(!exclusive || state.holders.len() == 1, "{name}: {state:?}");
        if let LockKind::Semaphore { permits } = state.kind {
            assert!(state.holders.len() <= permits as usize, "{name}: {state:?}");
        }
        let modes = state.holders.iter().map(|h| h.mode);
        let mut modes = modes.chain(state.waiters.iter().map(|w| w.mode));
        assert!(modes.all(|m| m.kind() == state.kind), "{name}: {state:?}");
        // Maximal: whenever a grant ends, every waiter the holders then admit is granted.
        assert!(
            state.delayed || state.waiters.front().is_none_or(|w| !state.admits(w.mode)),
            "{name}: a waiter could be granted: {state:?}"
        );
        assert!(state.holders.windows(2).all(|w| w[0].token < w[1].token));
        for h in &state.holders {
            holders += 1;
            let session = sm.session(h.client).expect("holder has a session");
            assert!(
                session.held.contains(name),
                "{name} not in holder's session"
            );
            assert!(h.token <= sm.last_token());
        }
        for w in &state.waiters {
            assert_eq!(sm.slot(w.client, w.seq), Some(&Slot::Waiting(name.clone())));
        }
    }
    let held: usize = sm.sessions().map(|(_, s)| s.held.len()).sum();
    assert_eq!(held, holders, "sessions and lock table disagree on holders");
    assert_eq!(sm.last_token().0, model.last_granted);
    for (name, file) in sm.files() {
        assert_eq!(Some(&file.data), model.files.get(name), "file {name}");
    }
    assert_eq!(sm.files().count(), model.files.len());
}

fn step(sm: &mut StateMachine, model: &mut Model, rules: &Rules, a: &Action) {
    let (command, request) = build(model, sm, a);
    let before = sm.clone();
    // A retry of a request the session remembers must change nothing.
    let remembered = request
        .as_ref()
        .filter(|_| matches!(a, Action::Retry { .. }))
        .and_then(|r| sm.slot(r.client, r.seq).cloned());
    let mut out = Vec::new();
    sm.apply(&command, rules, &mut out);

    if remembered.is_some() {
        assert_eq!(*sm, before, "retry of {request:?} changed the state");
    }
    if let Command::Expire {
        lock,
        token,
        renewals,
    } = &command
    {
        let current = before
            .lock(lock)
            .and_then(|s| s.holder_with(*token))
            .is_some_and(|h| h.renewals == *renewals);
        if !current {
            assert_eq!(*sm, before, "stale expiry changed the state");
            assert!(out.is_empty());
        } else {
            assert!(sm.lock(lock).and_then(|s| s.holder_with(*token)).is_none());
        }
    }
    if let Command::ExpireSession { client } = &command {
        assert!(sm.session(*client).is_none());
        for q in model.queues.values() {
            for key in q.iter().filter(|(c, _)| c == client) {
                model.resolved.insert(*key);
            }
        }
        let slot = ((client.0 - 1) % 1000) as u8;
        if slot < CLIENTS && model.client(slot) == *client {
            model.generation[slot as usize] += 1;
        }
    }

    let lock_of = |model: &Model, key: (ClientId, Seq)| {
        model
            .sent
            .iter()
            .find(|r| (r.client, r.seq) == key)
            .and_then(|r| r.op.as_acquire().map(|a| a.lock.clone()))
    };
    for outcome in &out {
        match outcome {
            Outcome::Granted { token, .. } => {
                assert!(
                    token.0 > model.last_granted,
                    "token {token} not above {}",
                    model.last_granted
                );
                model.last_granted = token.0;
            }
            Outcome::Queued {
                lock, client, seq, ..
            } => {
                model
                    .queues
                    .entry(lock.clone())
                    .or_default()
                    .push((*client, *seq));
            }
            Outcome::Reply(response) => {
                let key = (response.client, response.seq);
                if let Some(first) = model.answers.get(&key) {
                    let was_cached = remembered.is_some()
                        || !matches!(command, Command::Client(_))
                        || request.as_ref().is_some_and(|r| (r.client, r.seq) != key);
                    if was_cached {
                        assert_eq!(
                            first, &response.result,
                            "retry of {key:?} answered differently"
                        );
                    }
                    continue;
                }
                model.answers.insert(key, response.result.clone());
                if let Some(lock) = lock_of(model, key) {
                    if let Some(queue) = model.queues.get(&lock) {
                        if let Some(at) = queue.iter().position(|k| *k == key) {
                            if response.result.is_ok() {
                                for earlier in &queue[..at] {
                                    assert!(
                                        model.resolved.contains(earlier),
                                        "{key:?} granted {lock} before {earlier:?}"
                                    );
                                }
                            }
                            model.resolved.insert(key);
                        }
                    }
                }
                if let Ok(Reply::Appended { offset }) = &response.result {
                    let Some(Op::Append { file, data, .. }) = model
                        .sent
                        .iter()
                        .find(|r| (r.client, r.seq) == key)
                        .map(|r| r.op.clone())
                    else {
                        panic!("appended answer to a non-append {key:?}")
                    };
                    let contents = model.files.entry(file).or_default();
                    assert_eq!(*offset, contents.len() as u64);
                    contents.extend_from_slice(&data);
                }
            }
            _ => {}
        }
    }
    check_invariants(sm, model);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_histories_keep_the_lock_invariants(
        lock_delay in any::<bool>(),
        actions in prop::collection::vec(action(), 1..200),
    ) {
        let rules = rules(lock_delay);
        let mut sm = StateMachine::new();
        let mut model = Model::default();
        for a in &actions {
            step(&mut sm, &mut model, &rules, a);
        }
        // The snapshot encoding carries the whole state.
        prop_assert_eq!(StateMachine::from_bytes(&sm.to_bytes().unwrap()).unwrap(), sm);
    }

    #[test]
    fn watermark_keeps_waiting_slots_and_prunes_done_below(
        seqs in prop::collection::btree_map(1..100u64, any::<bool>(), 0..40),
        marks in prop::collection::vec(0..120u64, 1..6),
    ) {
        let mut session = Session::default();
        for (seq, waiting) in &seqs {
            let slot = if *waiting { Slot::Waiting("a".into()) } else { Slot::Done(Ok(Reply::Released)) };
            session.slots.insert(Seq(*seq), slot);
        }
        let mut high = Seq(0);
        for mark in marks {
            session.acknowledge(Seq(mark), &[]);
            high = high.max(Seq(mark));
            prop_assert_eq!(session.acked_below, high);
            for (seq, waiting) in &seqs {
                let kept = session.slots.contains_key(&Seq(*seq));
                prop_assert_eq!(kept, *waiting || Seq(*seq) >= high, "seq {}", seq);
            }
        }
    }
}

/// A fixed history: expiring the session of a holder releases its lock to the next waiter.
#[test]
fn expire_session_releases_locks_to_waiters() {
    let rules = rules(false);
    let mut sm = StateMachine::new();
    let mut out = Vec::new();
    let acq = |client, wait: Option<Duration>| {
        Command::Client(ClientRequest {
            client: ClientId(client),
            seq: Seq(1),
            acked_below: Seq(1),
            pending: Vec::new(),
            op: Op::Acquire {
                lock: "a".into(),
                lease: Duration::from_secs(1),
                wait,
            },
        })
    };
    sm.apply(&acq(1, None), &rules, &mut out);
    sm.apply(&acq(2, Some(Duration::MAX)), &rules, &mut out);
    out.clear();
    sm.apply(
        &Command::ExpireSession {
            client: ClientId(1),
        },
        &rules,
        &mut out,
    );
    assert!(sm.session(ClientId(1)).is_none());
    let holder = sm.lock("a").unwrap().holder().cloned().unwrap();
    assert_eq!(
        (holder.client, holder.token),
        (ClientId(2), FencingToken(2))
    );
    assert!(out.contains(&Outcome::Reply(ClientResponse {
        client: ClientId(2),
        seq: Seq(1),
        result: Ok(Reply::Granted {
            token: FencingToken(2),
            lease: Duration::from_secs(1)
        }),
    })));
}
