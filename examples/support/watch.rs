//! Watching spawned servers from the load generator: their CPU time from `/proc`, and a
//! scraper that fetches each node's `/metrics` at a fixed interval, as Prometheus would.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// CPU time (user + system) process `pid` has used so far, from `/proc/<pid>/stat`.
pub fn cpu_time(pid: u32) -> Result<Duration, String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| format!("/proc/{pid}/stat: {e}"))?;
    // The command name is in parentheses and may hold spaces: count fields after it.
    let after = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or_else(|| format!("/proc/{pid}/stat: no command name"))?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| -> Result<u64, String> {
        fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| format!("/proc/{pid}/stat: field {} unreadable", i + 3))
    };
    // Fields 14 and 15 of the line (utime, stime), in clock ticks.
    let total = ticks(11)? + ticks(12)?;
    Ok(Duration::from_nanos(
        total * 1_000_000_000 / CLOCK_TICKS_PER_SEC,
    ))
}

/// `getconf CLK_TCK` (the kernel's USER_HZ): 100 on x86, ARM and the other architectures
/// this runs on; the kernel converts to it whatever its own tick rate.
const CLOCK_TICKS_PER_SEC: u64 = 100;

/// Scrapes answered 200 and failed, and the bytes of those answered.
#[derive(Default)]
pub struct Scrapes {
    pub ok: AtomicU64,
    pub failed: AtomicU64,
    pub bytes: AtomicU64,
}

/// Fetches `GET /metrics` from every address once per `every` from `from` on, until aborted.
pub async fn scrape_forever(
    addrs: Vec<SocketAddr>,
    from: tokio::time::Instant,
    every: Duration,
    scrapes: Arc<Scrapes>,
) {
    let mut ticks = tokio::time::interval_at(from, every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        for addr in &addrs {
            match tokio::time::timeout(Duration::from_secs(5), scrape(*addr)).await {
                Ok(Ok(n)) => {
                    scrapes.ok.fetch_add(1, Ordering::Relaxed);
                    scrapes.bytes.fetch_add(n, Ordering::Relaxed);
                }
                _ => {
                    scrapes.failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}

/// One scrape; the body's length if the answer was a 200.
async fn scrape(addr: SocketAddr) -> std::io::Result<u64> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nhost: loadgen\r\nconnection: close\r\n\r\n")
        .await?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await?;
    if !answer.starts_with(b"HTTP/1.1 200") {
        return Err(std::io::Error::other("not a 200"));
    }
    Ok(answer.len() as u64)
}
