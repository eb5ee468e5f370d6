//! What the cluster benches share, whatever the transport and storage: the scenarios, each
//! measured with `iter_custom` on a tokio runtime so that starting the cluster and the clients
//! stays outside the measured time.
//!
//! One criterion iteration is one lock cycle (or one acquire → append → release); the group's
//! throughput is one element per iteration, so criterion reports cycles per second. Concurrent
//! scenarios split an iteration count over their clients and time the whole batch: the figure is
//! the cluster's throughput, not one client's latency.

use criterion::{BenchmarkGroup, SamplingMode, Throughput};
use dlm::runtime::ClientTransport;
use dlm::Client;
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;

/// Concurrent clients in the throughput scenarios.
pub const CLIENTS: usize = 16;

/// Payload of the append scenarios.
const APPEND: [u8; 64] = [0x5a; 64];

/// A 2-worker multi-threaded runtime: the machine has 2 cores, shared by the nodes and the
/// clients.
pub fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Short settings so that a whole bench file runs in a minute or two: these iterations take
/// tens of microseconds to milliseconds, so flat sampling with few samples is enough.
pub fn tune<M: criterion::measurement::Measurement>(group: &mut BenchmarkGroup<'_, M>) {
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(1));
}

/// What one client does per iteration.
#[derive(Clone, Copy, Debug)]
enum Work {
    /// acquire → release.
    Cycle,
    /// acquire → append 64 bytes → release.
    Append,
}

async fn one<T: ClientTransport>(client: &Client<T>, lock: &str, file: &str, work: Work) {
    let guard = client.lock(lock).await.expect("lock");
    if let Work::Append = work {
        client
            .append(&guard, file, APPEND.to_vec())
            .await
            .expect("append");
    }
    client.release(guard).await.expect("release");
}

/// `clients` run `iters` iterations between them (client `i` on lock `locks[i]`), all at once;
/// returns the wall time of the batch.
async fn run<T: ClientTransport>(
    clients: &[Client<T>],
    locks: &[String],
    work: Work,
    iters: u64,
) -> Duration {
    let n = clients.len() as u64;
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(clients.len());
    for (i, client) in clients.iter().enumerate() {
        let share = iters / n + u64::from((i as u64) < iters % n);
        let client = client.clone();
        let lock = locks[i].clone();
        let file = format!("{lock}.log");
        tasks.push(tokio::spawn(async move {
            for _ in 0..share {
                one(&client, &lock, &file, work).await;
            }
        }));
    }
    for task in tasks {
        task.await.expect("bench task");
    }
    start.elapsed()
}

/// Registers every scenario in `group`, against a running cluster reached through `connect`
/// (called with a distinct seed per client).
pub fn scenarios<T, M, F>(group: &mut BenchmarkGroup<'_, M>, rt: &Runtime, connect: F)
where
    T: ClientTransport,
    M: criterion::measurement::Measurement<Value = Duration>,
    F: Fn(u64) -> Client<T>,
{
    let cases: [(&str, usize, bool, Work); 5] = [
        ("cycle/1_client", 1, false, Work::Cycle),
        ("cycle/16_clients_16_locks", CLIENTS, false, Work::Cycle),
        ("cycle/16_clients_1_lock", CLIENTS, true, Work::Cycle),
        ("append64/1_client", 1, false, Work::Append),
        ("append64/16_clients_16_locks", CLIENTS, false, Work::Append),
    ];
    for (seed_base, (name, n, shared_lock, work)) in (0u64..).step_by(100).zip(cases) {
        let clients: Vec<Client<T>> = (0..n as u64).map(|i| connect(seed_base + i)).collect();
        let locks: Vec<String> = (0..n)
            .map(|i| {
                if shared_lock {
                    format!("{name}/shared")
                } else {
                    format!("{name}/{i}")
                }
            })
            .collect();
        // Outside the measurement: every client finds the leader and opens its connection.
        rt.block_on(run(&clients, &locks, work, n as u64));
        group.bench_function(name, |b| {
            b.iter_custom(|iters| rt.block_on(run(&clients, &locks, work, iters)));
        });
    }
}
