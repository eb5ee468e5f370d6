//! Throughput of one node's core, without IO: a single-node cluster driven through
//! `Node::handle` and `Node::poll_effect`, every persist taken as durable at once (dropped) and
//! reported so with `Input::Persisted`, as a synchronous driver would.
//!
//! `cargo bench --bench core -- --warm-up-time 1 --measurement-time 3`
//!
//! Each group has an unbatched variant (one request, then drain: a latency-bound client) and a
//! batched one (many requests, then one drain), which is how the runtime driver works: every
//! request that arrived since the last drain shares one persist and one apply pass.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use dlm_core::{
    ClientId, ClientRequest, Config, ConnId, Effect, FencingToken, FileName, Input, LockName, Mode,
    Node, NodeId, Op, Recovered, Reply, Seq, Time,
};
use std::hint::black_box;
use std::time::Duration;

const LEASE: Duration = Duration::from_secs(10);

/// A leader of one and its clients' request counters.
struct Driver {
    node: Node,
    now: Time,
    seqs: Vec<u64>,
    /// The last token granted to each client (read from its replies).
    tokens: Vec<u64>,
}

impl Driver {
    fn new(clients: usize, cfg: Config) -> Driver {
        let mut node = Node::new(cfg, Recovered::default()).expect("valid config");
        let mut now = Time::ZERO;
        while !node.is_leader() {
            node.handle(now, Input::Tick);
            while let Some(effect) = node.poll_effect() {
                report_persisted(&mut node, now, &effect);
            }
            now = node.next_deadline().max(now);
        }
        Driver {
            node,
            now,
            seqs: vec![0; clients],
            tokens: vec![0; clients],
        }
    }

    fn send(&mut self, client: usize, op: Op) {
        self.seqs[client] += 1;
        let seq = Seq(self.seqs[client]);
        let request = ClientRequest {
            client: ClientId(client as u128 + 1),
            seq,
            // Every earlier request was answered: the session keeps one slot.
            acked_below: seq,
            pending: Vec::new(),
            op,
        };
        let conn = ConnId(client as u64);
        self.node.handle(self.now, Input::Client { conn, request });
    }

    /// Executes every effect; returns how many grants were replied.
    fn drain(&mut self) -> usize {
        let mut grants = 0;
        while let Some(effect) = self.node.poll_effect() {
            if let Effect::Reply { conn, response } = effect {
                // `cargo test --benches` runs each bench once with debug assertions: every
                // request of these workloads must succeed, or the bench measures refusals.
                debug_assert!(response.result.is_ok(), "{response:?}");
                if let Ok(Reply::Granted { token, .. }) = response.result {
                    self.tokens[conn.0 as usize] = token.0;
                    grants += 1;
                }
            } else {
                report_persisted(&mut self.node, self.now, &effect);
                let _ = black_box(effect);
            }
        }
        grants
    }

    fn acquire(&mut self, client: usize, lock: &LockName, wait: Option<Duration>) {
        let op = Op::Acquire {
            lock: lock.clone(),
            lease: LEASE,
            wait,
        };
        self.send(client, op);
    }

    fn release(&mut self, client: usize, lock: &LockName, token: u64) {
        let op = Op::Release {
            lock: lock.clone(),
            token: FencingToken(token),
        };
        self.send(client, op);
    }

    fn append(&mut self, client: usize, lock: &LockName, file: &FileName, data: &[u8]) {
        let op = Op::Append {
            lock: lock.clone(),
            token: FencingToken(self.tokens[client]),
            file: file.clone(),
            data: data.to_vec(),
        };
        self.send(client, op);
    }
}

/// A synchronous driver's persist: durable the moment it is polled.
fn report_persisted(node: &mut Node, now: Time, effect: &Effect) {
    if let Effect::Persist(persist) = effect {
        if let Some(position) = persist.log_position() {
            node.handle(now, Input::Persisted(position));
        }
    }
}

fn config() -> Config {
    let mut cfg = Config::single(NodeId(1));
    // Appends accumulate over millions of iterations.
    cfg.limits.max_file = u64::MAX;
    // DLM_BENCH_WATCH_HISTORY=0 measures the cycle without the watch window, to price it.
    if let Some(n) = std::env::var("DLM_BENCH_WATCH_HISTORY")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        cfg.watch_history = n;
    }
    cfg
}

/// Names made once, as a decoded request would carry them (the bench measures the core, not
/// the allocation of names).
fn names(n: usize) -> Vec<LockName> {
    (0..n)
        .map(|i| LockName::new(format!("lock-{i:02}")))
        .collect()
}

fn uncontended(c: &mut Criterion) {
    let mut g = c.benchmark_group("uncontended_cycle");
    g.throughput(Throughput::Elements(1));
    g.bench_function("unbatched", |b| {
        let mut d = Driver::new(1, config());
        let lock = LockName::new("lock");
        b.iter(|| {
            d.acquire(0, &lock, None);
            d.drain();
            let token = d.tokens[0];
            d.release(0, &lock, token);
            d.drain();
        });
    });
    for batch in [16usize, 64] {
        g.throughput(Throughput::Elements(batch as u64));
        g.bench_with_input(BenchmarkId::new("batched", batch), &batch, |b, &batch| {
            // One client per lock, so a batch of acquires is `batch` independent cycles.
            let mut d = Driver::new(batch, config());
            let locks = names(batch);
            b.iter(|| {
                for (client, lock) in locks.iter().enumerate() {
                    d.acquire(client, lock, None);
                }
                d.drain();
                for (client, lock) in locks.iter().enumerate() {
                    let token = d.tokens[client];
                    d.release(client, lock, token);
                }
                d.drain();
            });
        });
    }
    g.finish();
}

/// Sixteen clients queued on one lock; the holder releases (the head is granted) and queues
/// again at the back. Tokens and the next holder are deterministic (FIFO, one grant each), which
/// lets the batched variant propose a run of hand-offs before one drain.
fn hand_off(c: &mut Criterion) {
    const CLIENTS: usize = 16;
    let lock = LockName::new("lock");
    let setup = || {
        let mut d = Driver::new(CLIENTS, config());
        for client in 0..CLIENTS {
            d.acquire(client, &lock, Some(Duration::MAX));
        }
        d.drain();
        (d, 0usize, 1u64)
    };
    let mut g = c.benchmark_group("hand_off_16");
    g.throughput(Throughput::Elements(1));
    g.bench_function("unbatched", |b| {
        let (mut d, mut holder, mut token) = setup();
        b.iter(|| {
            d.release(holder, &lock, token);
            d.acquire(holder, &lock, Some(Duration::MAX));
            let grants = d.drain();
            debug_assert_eq!(grants, 1);
            holder = (holder + 1) % CLIENTS;
            token += 1;
        });
    });
    for batch in [16u64, 64] {
        g.throughput(Throughput::Elements(batch));
        g.bench_with_input(BenchmarkId::new("batched", batch), &batch, |b, &batch| {
            let (mut d, mut holder, mut token) = setup();
            b.iter(|| {
                for _ in 0..batch {
                    d.release(holder, &lock, token);
                    d.acquire(holder, &lock, Some(Duration::MAX));
                    holder = (holder + 1) % CLIENTS;
                    token += 1;
                }
                let grants = d.drain();
                debug_assert_eq!(grants as u64, batch);
            });
        });
    }
    g.finish();
}

fn guarded_append(c: &mut Criterion) {
    let data = [0x5a_u8; 64];
    let mut g = c.benchmark_group("acquire_append64_release");
    g.throughput(Throughput::Elements(1));
    g.bench_function("unbatched", |b| {
        let mut d = Driver::new(1, config());
        let (lock, file) = (LockName::new("lock"), FileName::new("file"));
        b.iter(|| {
            d.acquire(0, &lock, None);
            d.drain();
            d.append(0, &lock, &file, &data);
            d.drain();
            let token = d.tokens[0];
            d.release(0, &lock, token);
            d.drain();
        });
    });
    let batch = 64usize;
    g.throughput(Throughput::Elements(batch as u64));
    g.bench_with_input(BenchmarkId::new("batched", batch), &batch, |b, &batch| {
        let mut d = Driver::new(batch, config());
        let locks = names(batch);
        let files: Vec<FileName> = locks.iter().map(|l| FileName::new(l.as_str())).collect();
        b.iter(|| {
            for (client, lock) in locks.iter().enumerate() {
                d.acquire(client, lock, None);
            }
            d.drain();
            for (client, lock) in locks.iter().enumerate() {
                d.append(client, lock, &files[client], &data);
                let token = d.tokens[client];
                d.release(client, lock, token);
            }
            d.drain();
        });
    });
    g.finish();
}

/// One reader of a shared lock held by `readers` others releases and takes it again: what a
/// grant costs as a lock's holders grow (each entry's watch events compare the holders before
/// and after it, so this is where a cost per holder per entry would show).
fn many_readers(c: &mut Criterion) {
    let lock = LockName::new("shared");
    let mut g = c.benchmark_group("reader_cycle_among");
    g.throughput(Throughput::Elements(1));
    for readers in [1_000usize, 4_000] {
        g.bench_with_input(
            BenchmarkId::from_parameter(readers),
            &readers,
            |b, &readers| {
                let mut d = Driver::new(readers + 1, config());
                for client in 0..=readers {
                    d.send(client, Op::acquire(lock.clone(), LEASE, None, Mode::Read));
                    d.drain();
                }
                b.iter(|| {
                    let token = d.tokens[readers];
                    d.release(readers, &lock, token);
                    d.drain();
                    d.send(readers, Op::acquire(lock.clone(), LEASE, None, Mode::Read));
                    let grants = d.drain();
                    debug_assert_eq!(grants, 1);
                });
            },
        );
    }
    g.finish();
}

fn short() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
}

criterion_group! {
    name = benches;
    config = short();
    targets = uncontended, hand_off, guarded_append, many_readers
}
criterion_main!(benches);
