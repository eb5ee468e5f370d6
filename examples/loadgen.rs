//! Load generator: clients loop acquire → (append) → release (or, with `--reads`, read a
//! guarded file) and report throughput, latency and fencing-token order.
//!
//! ```sh
//! # against a running cluster
//! cargo run --release --example loadgen -- --nodes 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003 \
//!     --clients 16 --locks 16 --secs 10 [--secret-file PATH]
//! # or let it start (and stop) a local 3-process cluster in a temporary directory
//! cargo run --release --example loadgen -- --spawn 3 --clients 16 --locks 1 --secs 10 --json
//! # the same, the nodes serving metrics and scraped once a second each
//! cargo run --release --example loadgen -- --spawn 3 --clients 16 --locks 16 --secs 8 --metrics
//! # the same over mutual TLS, with certificates made at start
//! cargo run --release --example loadgen -- --spawn 3 --tls --clients 16 --locks 16 --secs 10
//! # readers sharing one read-write lock; then exclusive and semaphore hand-offs, same cluster
//! cargo run --release --example loadgen -- --spawn 3 --clients 16 --locks 1 --kind shared
//! cargo run --release --example loadgen -- --spawn 3 --clients 8 --locks 4 --kind exclusive,semaphore:4
//! ```
//!
//! With `--spawn`, the servers' CPU time (user + system, from `/proc`) over the measured
//! seconds is reported too: per cycle, and in cores, in all and by node.
//!
//! Client `i` uses lock `i % locks` (with `--kind semaphore:N`, semaphore `i % (locks / N)`, so
//! that as many hold at once as in an exclusive phase). A token violation is a grant whose
//! token is not greater than the last one seen on that lock (exclusive phases only: shared
//! grants overlap, so their tokens may be seen out of order). A progress line goes to stderr every `--progress-secs`.
//! Exits non-zero on a token violation, when no cycle completed, or when errors outnumber
//! completed cycles (a dead or failing cluster is not a result).

#[path = "support/mod.rs"]
mod support;

use clap::Parser;
use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::cluster::ProcessCluster;
use support::floor::Floor;

/// Drive lock cycles against a dlm cluster.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// The members, as ID=ADDR,ID=ADDR,...
    #[arg(long, value_parser = support::parse_members, conflicts_with = "spawn")]
    nodes: Option<support::Members>,
    /// Start a local cluster of this many server processes (fsync on), and stop it at the end.
    #[arg(long)]
    spawn: Option<u64>,
    /// Concurrent clients, each with its own connection.
    #[arg(long, default_value_t = 1)]
    clients: usize,
    /// Locks; client i uses lock i % locks.
    #[arg(long, default_value_t = 1)]
    locks: usize,
    /// What each cycle takes: `exclusive`, `shared` (a reader's grant) or `semaphore:N` (a
    /// permit); several, comma-separated, run one after the other against the same cluster.
    #[arg(long, default_value = "exclusive", value_parser = support::kind::parse_kinds)]
    kind: support::kind::Kinds,
    /// Measured seconds (after the warm-up).
    #[arg(long, default_value_t = 10)]
    secs: u64,
    /// Unmeasured seconds first.
    #[arg(long, default_value_t = 1)]
    warmup_secs: u64,
    /// Append this many bytes to the lock's file in every cycle (0: no append).
    #[arg(long, default_value_t = 0)]
    append_bytes: usize,
    /// Each cycle is one linearizable read of the lock's file instead of a lock cycle (each
    /// client first writes one line to it, unmeasured).
    #[arg(long, conflicts_with = "append_bytes")]
    reads: bool,
    /// Lease asked for, in milliseconds.
    #[arg(long, default_value_t = 10_000)]
    lease_ms: u64,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Write one JSON line per acknowledged append (lock, token, file, offset, data).
    #[arg(long)]
    record: Option<PathBuf>,
    /// File holding the cluster's shared secret, for --nodes started with one (a trailing
    /// newline is ignored).
    #[arg(long, value_name = "PATH", conflicts_with = "spawn")]
    secret_file: Option<PathBuf>,
    /// With --spawn: nodes and clients over mutual TLS, with a CA and certificates made at
    /// start (rcgen) in the cluster's directory.
    #[arg(long, requires = "spawn")]
    tls: bool,
    /// Seconds between progress lines on stderr (0: none).
    #[arg(long, default_value_t = 2)]
    progress_secs: u64,
    /// Skip measuring the physical floor (a loopback round trip and a 4 KiB append +
    /// fdatasync, on the data's disk with --spawn, else the temporary directory's) before the
    /// load.
    #[arg(long)]
    no_floor: bool,
    /// With --spawn: the nodes serve metrics, and each is scraped every --scrape-ms.
    #[arg(long, requires = "spawn")]
    metrics: bool,
    /// Milliseconds between two scrapes of a node, with --metrics.
    #[arg(long, default_value_t = 1000)]
    scrape_ms: u64,
    /// Clients that watch the first lock's events meanwhile; the first of them measures how
    /// long after the holder's acknowledged release it hears of it.
    #[arg(long, default_value_t = 0)]
    watchers: usize,
}

/// The spawned servers, for watching them: their processes and metrics listeners.
#[derive(Default)]
struct Servers {
    pids: Vec<u32>,
    metrics: Vec<SocketAddr>,
}

/// Latencies from 1 µs to 10 minutes, three significant digits.
fn latency_histogram() -> hdrhistogram::Histogram<u64> {
    hdrhistogram::Histogram::new_with_bounds(1, 600_000_000, 3)
        .unwrap_or_else(|e| unreachable!("constant histogram bounds: {e}"))
}

struct Totals {
    cycles: u64,
    errors: u64,
    token_violations: u64,
    latencies_us: hdrhistogram::Histogram<u64>,
    first_error: Option<String>,
}

impl Default for Totals {
    fn default() -> Totals {
        Totals {
            cycles: 0,
            errors: 0,
            token_violations: 0,
            latencies_us: latency_histogram(),
            first_error: None,
        }
    }
}

/// Counts the clients bump as they go, for the progress lines.
#[derive(Default)]
struct Live {
    cycles: AtomicU64,
    errors: AtomicU64,
}

/// Prints what has been done so far every `every`, until aborted.
async fn report_progress(live: Arc<Live>, start: Instant, every: Duration) {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    let mut last = 0;
    loop {
        ticks.tick().await;
        let cycles = live.cycles.load(Ordering::Relaxed);
        eprintln!(
            "loadgen: {:.0} s, {cycles} cycles ({:.0}/s lately), {} errors",
            start.elapsed().as_secs_f64(),
            (cycles - last) as f64 / every.as_secs_f64(),
            live.errors.load(Ordering::Relaxed)
        );
        last = cycles;
    }
}

fn main() {
    support::cluster::exit_when_served("loadgen");
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build();
    let result = match runtime {
        Ok(rt) => rt.block_on(run(args)),
        Err(e) => Err(e.into()),
    };
    if let Err(e) = result {
        eprintln!("loadgen: {e}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    // Dropping the cluster at the end kills its processes and removes its directory.
    let mut cluster = None;
    let mut servers = Servers::default();
    #[cfg_attr(not(feature = "tls"), allow(unused_mut))]
    let mut access = dlm::ClusterAccess::new(dlm::DEFAULT_CLUSTER_ID);
    let (nodes, data_disk) = match (&args.nodes, args.spawn) {
        (Some(nodes), _) => (nodes.0.clone(), std::env::temp_dir()),
        (None, Some(n)) => {
            let mut spawned = ProcessCluster::new(n, "dlm-loadgen-", &[])?;
            if args.metrics {
                servers.metrics = spawned.serve_metrics()?.into_values().collect();
            }
            if args.tls {
                #[cfg(feature = "tls")]
                {
                    access = access.tls(spawned.use_tls()?);
                }
                #[cfg(not(feature = "tls"))]
                return Err("--tls needs loadgen built with the `tls` feature".into());
            }
            spawned.start_all()?;
            servers.pids = spawned
                .ids()
                .iter()
                .filter_map(|id| spawned.pid(*id))
                .collect();
            let nodes = spawned.members().to_vec();
            let disk = spawned.data_dir(1);
            cluster = Some(spawned);
            (nodes, disk)
        }
        (None, None) => return Err("give --nodes or --spawn N".into()),
    };
    let floor = if args.no_floor {
        None
    } else {
        let floor =
            tokio::task::spawn_blocking(move || Floor::measure(&data_disk, 5_000, 300)).await??;
        eprintln!(
            "loadgen: floor: loopback round trip {:.0} µs, 4 KiB append + fdatasync {:.0} µs (medians)",
            floor.rtt_us, floor.fsync_us
        );
        Some(floor)
    };
    let mut result = Ok(());
    for kind in args.kind.0.clone() {
        if args.kind.0.len() > 1 && !args.json {
            println!("--kind {kind}:");
        }
        result = load(&args, kind, &nodes, access.clone(), floor, &servers).await;
        if result.is_err() {
            break;
        }
    }
    drop(cluster);
    result
}

async fn load(
    args: &Args,
    kind: support::kind::Kind,
    nodes: &[(u64, SocketAddr)],
    mut access: dlm::ClusterAccess,
    floor: Option<Floor>,
    servers: &Servers,
) -> Result<(), Box<dyn std::error::Error>> {
    let lease = Duration::from_millis(args.lease_ms);
    let locks = kind.names(args.locks);
    if args.append_bytes > 0 && !kind.is_exclusive() {
        return Err(format!("--append-bytes needs an exclusive grant, not --kind {kind}").into());
    }
    if let Some(path) = &args.secret_file {
        access = access.secret(support::read_secret_file(path)?);
    }
    let record = match &args.record {
        Some(path) => Some(Arc::new(Mutex::new(std::io::BufWriter::new(
            std::fs::File::create(path)?,
        )))),
        None => None,
    };
    let last_tokens: Arc<Mutex<HashMap<usize, u64>>> = Arc::default();
    let totals: Arc<Mutex<Totals>> = Arc::default();
    let live: Arc<Live> = Arc::default();
    let start = Instant::now();
    let progress = (args.progress_secs > 0).then(|| {
        let every = Duration::from_secs(args.progress_secs);
        tokio::spawn(report_progress(live.clone(), start, every))
    });
    let measure_from = start + Duration::from_secs(args.warmup_secs);
    let end = measure_from + Duration::from_secs(args.secs);
    let scrapes: Arc<support::watch::Scrapes> = Arc::default();
    let scraper = (!servers.metrics.is_empty()).then(|| {
        let every = Duration::from_millis(args.scrape_ms.max(1));
        // From the measured window on: before, a server may not have bound its listener yet.
        tokio::spawn(support::watch::scrape_forever(
            servers.metrics.clone(),
            measure_from.into(),
            every,
            scrapes.clone(),
        ))
    });
    let cpu_window = tokio::spawn(servers_cpu(servers.pids.clone(), measure_from, end));
    let lag: Arc<support::event_lag::EventLag> = Arc::default();
    let watchers: Vec<_> = (0..args.watchers)
        .map(|w| {
            let client = dlm::connect_tcp_with(nodes.to_vec(), access.clone(), |c| c.lease = lease);
            let lag = (w == 0).then(|| lag.clone());
            tokio::spawn(watch_first_lock(
                client,
                format!("{kind}-0"),
                lag,
                measure_from,
                end,
            ))
        })
        .collect();
    let mut tasks = Vec::new();
    for i in 0..args.clients {
        let client = dlm::connect_tcp_with(nodes.to_vec(), access.clone(), |c| c.lease = lease);
        let lock_index = i % locks;
        let (last_tokens, totals, record) = (last_tokens.clone(), totals.clone(), record.clone());
        let live = live.clone();
        let lag = (lock_index == 0 && args.watchers > 0).then(|| lag.clone());
        let append_bytes = args.append_bytes;
        let reads = args.reads;
        tasks.push(tokio::spawn(async move {
            let lock = format!("{kind}-{lock_index}");
            let file = format!("lock-{lock_index}.log");
            let mut local = Totals::default();
            let mut line = 0u64;
            if reads {
                if let Err(e) = write_one_line(&client, &lock, &file, i).await {
                    local.errors += 1;
                    local.first_error = Some(e.to_string());
                }
            }
            while Instant::now() < end {
                let began = Instant::now();
                let outcome: Result<(), dlm::ClientError> = async {
                    if reads {
                        return client.read(file.as_str()).await.map(|_| ());
                    }
                    let guard = kind.take(&client, &lock, Duration::from_secs(10)).await?;
                    let token = guard.token().get();
                    if kind.is_exclusive() {
                        let mut last = last_tokens.lock().unwrap_or_else(|e| e.into_inner());
                        let previous = last.insert(lock_index, token);
                        if previous.is_some_and(|p| p >= token) {
                            local.token_violations += 1;
                        }
                    }
                    if append_bytes > 0 {
                        line += 1;
                        let mut data =
                            format!("client {i} line {line} token {token} ").into_bytes();
                        data.resize(append_bytes.max(data.len()), b'.');
                        data.push(b'\n');
                        let offset = client.append(&guard, file.as_str(), data.clone()).await?;
                        if let Some(record) = &record {
                            let entry = serde_json::json!({
                                "lock": lock, "token": token, "file": file, "offset": offset,
                                "data": String::from_utf8_lossy(&data),
                            });
                            let mut w = record.lock().unwrap_or_else(|e| e.into_inner());
                            let _ = writeln!(w, "{entry}");
                        }
                    }
                    client.release(guard).await?;
                    if let Some(lag) = &lag {
                        lag.acked(token, Instant::now());
                    }
                    Ok(())
                }
                .await;
                let done = Instant::now();
                match &outcome {
                    Ok(()) => live.cycles.fetch_add(1, Ordering::Relaxed),
                    Err(_) => live.errors.fetch_add(1, Ordering::Relaxed),
                };
                if began < measure_from || done > end {
                    continue;
                }
                match outcome {
                    Ok(()) => {
                        local.cycles += 1;
                        let micros = done.duration_since(began).as_micros();
                        local
                            .latencies_us
                            .saturating_record(u64::try_from(micros).unwrap_or(u64::MAX));
                    }
                    Err(e) => {
                        local.errors += 1;
                        local.first_error.get_or_insert_with(|| e.to_string());
                    }
                }
            }
            let mut t = totals.lock().unwrap_or_else(|e| e.into_inner());
            t.cycles += local.cycles;
            t.errors += local.errors;
            t.token_violations += local.token_violations;
            // Same bounds on both sides, so adding cannot fail.
            let _ = t.latencies_us.add(&local.latencies_us);
            if t.first_error.is_none() {
                t.first_error = local.first_error;
            }
        }));
    }
    for task in tasks {
        task.await?;
    }
    let mut watch_errors = 0;
    for watcher in watchers {
        watch_errors += watcher.await?;
    }
    let lag = lag.summary();
    if let Some(progress) = progress {
        progress.abort();
    }
    if let Some(scraper) = scraper {
        scraper.abort();
    }
    let server_cpu = cpu_window.await??;
    if let Some(record) = &record {
        record.lock().unwrap_or_else(|e| e.into_inner()).flush()?;
    }
    let t = std::mem::take(&mut *totals.lock().unwrap_or_else(|e| e.into_inner()));
    let h = &t.latencies_us;
    let p = support::Percentiles {
        p50: h.value_at_quantile(0.50),
        p90: h.value_at_quantile(0.90),
        p99: h.value_at_quantile(0.99),
        max: h.max(),
    };
    let rate = t.cycles as f64 / args.secs as f64;
    let cores_by_node: Vec<f64> = server_cpu
        .iter()
        .map(|cpu| cpu.as_secs_f64() / args.secs as f64)
        .collect();
    let total_cpu = (!server_cpu.is_empty()).then(|| server_cpu.iter().sum::<Duration>());
    let cpu_us_per_cycle = total_cpu.map(|cpu| cpu.as_secs_f64() * 1e6 / t.cycles.max(1) as f64);
    let cpu_cores = total_cpu.map(|cpu| cpu.as_secs_f64() / args.secs as f64);
    let (scrapes_ok, scrapes_failed) = (
        scrapes.ok.load(Ordering::Relaxed),
        scrapes.failed.load(Ordering::Relaxed),
    );
    let scrape_bytes = scrapes.bytes.load(Ordering::Relaxed) / scrapes_ok.max(1);
    let appends = usize::from(args.append_bytes > 0);
    let floor_rate = floor
        .filter(|_| !args.reads && kind.is_exclusive())
        .and_then(|f| f.cycles_per_sec(args.clients, locks, appends));
    if args.json {
        let out = serde_json::json!({
            "kind": kind.to_string(),
            "clients": args.clients, "locks": locks, "secs": args.secs, "append_bytes": args.append_bytes,
            "reads": args.reads, "tls": args.tls,
            "cycles": t.cycles, "cycles_per_sec": rate,
            "p50_us": p.p50, "p90_us": p.p90, "p99_us": p.p99, "max_us": p.max,
            "errors": t.errors, "token_violations": t.token_violations, "first_error": t.first_error,
            "floor_rtt_us": floor.map(|f| f.rtt_us), "floor_fsync_us": floor.map(|f| f.fsync_us),
            "floor_cycles_per_sec": floor_rate, "share_of_floor": floor_rate.map(|f| rate / f),
            "server_cpu_us_per_cycle": cpu_us_per_cycle, "server_cpu_cores": cpu_cores,
            "server_cpu_cores_by_node": cores_by_node,
            "scrapes_ok": scrapes_ok, "scrapes_failed": scrapes_failed, "scrape_bytes": scrape_bytes,
            "watchers": args.watchers, "watch_errors": watch_errors,
            "watch_lag_events": lag.map(|l| l.0), "watch_lag_p50_us": lag.map(|l| l.1),
            "watch_lag_p99_us": lag.map(|l| l.2), "watch_heard_first": lag.map(|l| l.3),
        });
        println!("{out}");
    } else {
        println!(
            "{}{} clients, {} locks, {} s: {} cycles, {:.0} cycles/s, latency p50 {:.2} ms p90 {:.2} ms p99 {:.2} ms max {:.2} ms, errors {}, token violations {}",
            if args.tls { "TLS: " } else { "" },
            args.clients, locks, args.secs, t.cycles, rate,
            p.p50 as f64 / 1e3, p.p90 as f64 / 1e3, p.p99 as f64 / 1e3, p.max as f64 / 1e3,
            t.errors, t.token_violations
        );
        if let Some(e) = &t.first_error {
            println!("first error: {e}");
        }
        if let (Some(per_cycle), Some(cores)) = (cpu_us_per_cycle, cpu_cores) {
            let each: Vec<String> = cores_by_node.iter().map(|c| format!("{c:.3}")).collect();
            println!(
                "servers' CPU: {per_cycle:.1} µs per cycle, {cores:.2} cores ({} by node)",
                each.join(" + ")
            );
        }
        if let Some((n, p50, p99, first)) = lag {
            println!(
                "watch delivery ({} watchers): {n} releases, heard {p50} µs after the holder's acknowledgement (p50), {p99} µs (p99); heard first {first} times; watch errors {watch_errors}",
                args.watchers
            );
        }
        if args.metrics {
            println!(
                "metrics: {scrapes_ok} scrapes ({scrape_bytes} bytes each), {scrapes_failed} failed"
            );
        }
        match (floor, floor_rate) {
            (Some(f), Some(at_floor)) => println!(
                "floor: {at_floor:.0} cycles/s (round trip {:.0} µs, append + fdatasync {:.0} µs); measured {:.0}% of it",
                f.rtt_us,
                f.fsync_us,
                100.0 * rate / at_floor
            ),
            (Some(_), None) => println!(
                "floor: none for this shape (several locks in parallel, or reads): the CPUs bound it"
            ),
            (None, _) => {}
        }
    }
    if t.token_violations > 0 {
        return Err("fencing tokens went backwards".into());
    }
    if t.cycles == 0 {
        return Err("no cycle completed: is the cluster up and reachable?".into());
    }
    if t.errors > t.cycles {
        return Err(format!(
            "{} errors outnumber {} completed cycles",
            t.errors, t.cycles
        )
        .into());
    }
    Ok(())
}

/// The CPU time each process of `pids` uses between `from` and `to`, in the order given.
async fn servers_cpu(pids: Vec<u32>, from: Instant, to: Instant) -> Result<Vec<Duration>, String> {
    let each = |pids: &[u32]| -> Result<Vec<Duration>, String> {
        pids.iter().map(|p| support::watch::cpu_time(*p)).collect()
    };
    tokio::time::sleep_until(from.into()).await;
    let before = each(&pids)?;
    tokio::time::sleep_until(to.into()).await;
    let after = each(&pids)?;
    Ok(after
        .iter()
        .zip(&before)
        .map(|(a, b)| a.saturating_sub(*b))
        .collect())
}

/// Watches `lock` until `end`, noting each release seen in the measured window in `lag`;
/// returns how many polls failed.
async fn watch_first_lock(
    client: dlm::Client<dlm::tcp::TcpClient>,
    lock: String,
    lag: Option<Arc<support::event_lag::EventLag>>,
    measure_from: Instant,
    end: Instant,
) -> u64 {
    let mut watch = client.watch_lock(lock.as_str());
    let mut errors = 0;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return errors;
        }
        let next = match tokio::time::timeout(left, watch.next()).await {
            Ok(next) => next,
            Err(_) => return errors,
        };
        let now = Instant::now();
        match next {
            Ok(dlm::WatchUpdate::Event(event)) => {
                if let (Some(lag), dlm::LockChange::Released { token }) = (&lag, event.change) {
                    if now >= measure_from {
                        lag.seen(token.get(), now);
                    }
                }
            }
            Ok(dlm::WatchUpdate::State { .. }) => {}
            Err(_) => errors += 1,
        }
    }
}

/// Makes sure the file a `--reads` client reads exists.
async fn write_one_line<T: dlm::runtime::ClientTransport>(
    client: &dlm::Client<T>,
    lock: &str,
    file: &str,
    i: usize,
) -> Result<(), dlm::ClientError> {
    let guard = client.lock_timeout(lock, Duration::from_secs(10)).await?;
    let line = format!("client {i} was here\n").into_bytes();
    client.append(&guard, file, line).await?;
    client.release(guard).await
}
