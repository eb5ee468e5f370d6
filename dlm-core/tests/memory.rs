//! Memory use of the state machine and of a single node, measured with a counting allocator.
//!
//! The quick tests run in every `cargo test`; the long one (ten million cycles) is ignored:
//! `cargo test -p dlm-core --release --test memory -- --ignored --nocapture`.

mod common;

use common::poll_synchronously;
use dlm_core::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Live heap bytes of the whole test binary.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; only a counter is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The counter is global, so measurements must not overlap.
static SERIAL: Mutex<()> = Mutex::new(());

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

fn rules() -> Rules {
    Rules {
        limits: Limits::default(),
        lock_delay: false,
    }
}

fn request(client: u128, seq: u64, op: Op) -> Command {
    Command::Client(ClientRequest {
        client: ClientId(client),
        seq: Seq(seq),
        acked_below: Seq(seq),
        pending: Vec::new(),
        op,
    })
}

const N: u128 = 10_000;

/// Bytes per idle session (a read is not cached, so the session's cache stays empty), per cached
/// answer, and per held lock (named `lock-NNNNN`, one per client), in the state machine alone.
#[test]
fn bytes_per_idle_session_cached_answer_and_held_lock() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let rules = rules();
    let mut sm = StateMachine::new();
    let mut out = Vec::with_capacity(16);
    let names: Vec<LockName> = (0..N)
        .map(|i| LockName::new(format!("lock-{i:05}")))
        .collect();
    let phase = |seq: u64, op: &dyn Fn(u128) -> Op| -> Vec<Command> {
        (0..N).map(|c| request(c, seq, op(c))).collect()
    };
    let reads = phase(1, &|_| Op::Read {
        file: "none".into(),
        offset: 0,
    });
    let keep_alives = phase(2, &|_| Op::KeepAlive);
    // acked_below = 3 forgets the keep-alive's answer, so the cache keeps one answer throughout.
    let acquires = phase(3, &|c| Op::Acquire {
        lock: names[c as usize].clone(),
        lease: Duration::from_secs(1),
        wait: None,
    });
    let releases = phase(4, &|c| Op::Release {
        lock: names[c as usize].clone(),
        token: FencingToken(c as u64 + 1),
    });
    let run = |sm: &mut StateMachine, out: &mut Vec<Outcome>, commands: &[Command]| -> f64 {
        let before = live();
        for command in commands {
            sm.apply(command, &rules, out);
            out.clear();
        }
        (live() - before) as f64 / N as f64
    };
    let per_session = run(&mut sm, &mut out, &reads);
    let per_answer = run(&mut sm, &mut out, &keep_alives);
    let per_lock = run(&mut sm, &mut out, &acquires);
    assert_eq!(sm.locks().count(), N as usize);
    run(&mut sm, &mut out, &releases);
    // Releasing every lock takes it out of the table (the table's capacity is kept).
    assert_eq!(sm.locks().count(), 0);
    assert_eq!(sm.sessions().count(), N as usize);
    println!("state machine, {N} clients:");
    println!("  {per_session:.0} B per idle session (empty cache)");
    println!("  {per_answer:.0} B per session for its first cached answer");
    println!("  {per_lock:.0} B per held lock (table entry, name, holder's list)");
    assert!(per_lock <= 256.0, "{per_lock} B per held lock");
}

/// The same at a single-node leader: the state machine plus the leader's timers (lease deadline,
/// idle clock), the in-memory log tail and the latest snapshot (which holds a serialised copy
/// of the state machine).
#[test]
fn bytes_per_session_and_held_lock_at_a_node() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut cfg = Config::single(NodeId(1));
    cfg.snapshot_every = 1_000;
    cfg.log_retain = 0;
    let mut node = Node::new(cfg, Recovered::default()).unwrap();
    let mut now = Time::ZERO;
    while !node.is_leader() {
        node.handle(now, Input::Tick);
        while poll_synchronously(&mut node, now).is_some() {}
        now = node.next_deadline().max(now);
    }
    let names: Vec<LockName> = (0..N)
        .map(|i| LockName::new(format!("lock-{i:05}")))
        .collect();
    let mut run = |seq: u64, op: &dyn Fn(u128) -> Op| -> f64 {
        let requests: Vec<ClientRequest> = (0..N)
            .map(|c| ClientRequest {
                client: ClientId(c),
                seq: Seq(seq),
                acked_below: Seq(seq),
                pending: Vec::new(),
                op: op(c),
            })
            .collect();
        let before = live();
        for request in requests {
            let conn = ConnId(1);
            node.handle(now, Input::Client { conn, request });
            while let Some(effect) = poll_synchronously(&mut node, now) {
                if let Effect::Reply { response, .. } = effect {
                    assert!(response.result.is_ok(), "{response:?}");
                }
            }
        }
        (live() - before) as f64 / N as f64
    };
    let per_session = run(1, &|_| Op::KeepAlive);
    let per_lock = run(2, &|c| Op::Acquire {
        lock: names[c as usize].clone(),
        lease: Duration::from_secs(10),
        wait: None,
    });
    println!("single-node leader, {N} clients (incl. timers, log tail and snapshot copy):");
    println!("  {per_session:.0} B per session with one cached answer");
    println!("  {per_lock:.0} B per held lock");
}

/// A lock with no holder and no waiters leaves the table, however it got there.
#[test]
fn a_free_lock_leaves_the_table() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let rules = rules();
    let mut sm = StateMachine::new();
    let mut out = Vec::new();
    let acquire = |wait| Op::Acquire {
        lock: "a".into(),
        lease: Duration::from_secs(1),
        wait,
    };
    sm.apply(&request(1, 1, acquire(None)), &rules, &mut out);
    sm.apply(
        &request(2, 1, acquire(Some(Duration::MAX))),
        &rules,
        &mut out,
    );
    sm.apply(
        &request(
            2,
            2,
            Op::Cancel {
                lock: "a".into(),
                seq: Seq(1),
            },
        ),
        &rules,
        &mut out,
    );
    let expire = Command::Expire {
        lock: "a".into(),
        token: FencingToken(1),
        renewals: 0,
    };
    sm.apply(&expire, &rules, &mut out);
    assert!(sm.lock("a").is_none());
    // A refused try-lock on a free lock is not possible; a refused release leaves nothing.
    let release = Op::Release {
        lock: "b".into(),
        token: FencingToken(1),
    };
    sm.apply(&request(1, 2, release), &rules, &mut out);
    assert_eq!(sm.locks().count(), 0);
}

/// Drives one node through `cycles` acquire→release cycles of one client, time advancing
/// `step` per cycle, and samples heap and log length every `every` cycles.
fn run_cycles(cycles: u64, every: u64, step: Duration) -> Vec<(u64, isize, usize)> {
    let base = live();
    let mut cfg = Config::single(NodeId(1));
    cfg.snapshot_every = 10_000;
    cfg.log_retain = 1_000;
    let bound = (cfg.snapshot_every + cfg.log_retain) as usize;
    let mut node = Node::new(cfg, Recovered::default()).unwrap();
    let mut now = Time::ZERO;
    while !node.is_leader() {
        node.handle(now, Input::Tick);
        while poll_synchronously(&mut node, now).is_some() {}
        now = node.next_deadline().max(now);
    }
    let lock = LockName::new("lock");
    let lease = Duration::from_millis(100);
    let mut seq = 0;
    let mut token = FencingToken(0);
    let mut samples = Vec::new();
    for cycle in 1..=cycles {
        for op in [0, 1] {
            seq += 1;
            let op = if op == 0 {
                Op::Acquire {
                    lock: lock.clone(),
                    lease,
                    wait: None,
                }
            } else {
                Op::Release {
                    lock: lock.clone(),
                    token,
                }
            };
            let request = ClientRequest {
                client: ClientId(1),
                seq: Seq(seq),
                acked_below: Seq(seq),
                pending: Vec::new(),
                op,
            };
            node.handle(
                now,
                Input::Client {
                    conn: ConnId(1),
                    request,
                },
            );
            while let Some(effect) = poll_synchronously(&mut node, now) {
                if let Effect::Reply { response, .. } = effect {
                    match response.result {
                        Ok(Reply::Granted { token: t, .. }) => token = t,
                        Ok(Reply::Released) => {}
                        other => panic!("cycle {cycle}: {other:?}"),
                    }
                }
            }
        }
        now = now + step;
        if node.next_deadline() <= now {
            node.handle(now, Input::Tick);
            while poll_synchronously(&mut node, now).is_some() {}
        }
        assert!(node.log_len() <= bound, "log of {} entries", node.log_len());
        if cycle % every == 0 {
            samples.push((cycle, live() - base, node.log_len()));
        }
    }
    samples
}

/// A short run in every test: the log stays bounded and the heap does not grow between the
/// first and the last sample once the lease timers are in steady state.
#[test]
fn memory_is_flat_over_many_cycles() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let samples = run_cycles(100_000, 20_000, Duration::from_micros(10));
    let (_, first, _) = samples[0];
    let (_, last, _) = samples[samples.len() - 1];
    println!("{samples:?}");
    assert!(last - first < 256 << 10, "heap grew {} B", last - first);
}

/// Ten million cycles (release build recommended).
#[test]
#[ignore = "long: run with --release -- --ignored --nocapture"]
fn memory_is_flat_over_ten_million_cycles() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let samples = run_cycles(10_000_000, 1_000_000, Duration::from_micros(1));
    for (cycle, heap, log) in &samples {
        println!("cycle {cycle:>9}: heap {heap:>10} B above start, log {log} entries");
    }
    let (_, first, _) = samples[0];
    let max = samples.iter().map(|s| s.1).max().unwrap_or(first);
    assert!(max - first < 1 << 20, "heap grew {} B", max - first);
}
