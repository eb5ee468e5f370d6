//! The physical floor of a commit on this machine, measured right before a load so that the
//! load's figures can be read as a share of it (issue 16): a loopback TCP round trip, and a
//! 4 KiB append followed by `fdatasync` on the disk that holds the data.
//!
//! A commit needs at least two round trips and one sync: client → leader → follower (sync) →
//! leader → client. One client on one lock pays that once per commit and makes `commits` of
//! them per cycle; clients queued on one lock pay it once per hand-off (the release and the
//! next grant share one commit), plus once per append.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

/// Medians of the two probes, in microseconds.
#[derive(Clone, Copy, Debug)]
pub struct Floor {
    pub rtt_us: f64,
    pub fsync_us: f64,
}

impl Floor {
    /// Measures both: `rtt_trips` round trips of 64 bytes on loopback (after a warm-up) and
    /// `syncs` appends of 4 KiB, each followed by `fdatasync`, in a scratch file in `dir`.
    pub fn measure(dir: &Path, rtt_trips: usize, syncs: usize) -> std::io::Result<Floor> {
        Ok(Floor {
            rtt_us: median(loopback_round_trips(rtt_trips)?),
            fsync_us: median(appends_with_sync(dir, syncs)?),
        })
    }

    /// One commit's floor: two round trips and one sync.
    pub fn commit(&self) -> Duration {
        Duration::from_secs_f64((2.0 * self.rtt_us + self.fsync_us) / 1e6)
    }

    /// Cycles per second at the floor for `clients` clients on `locks` locks, each cycle an
    /// acquire, a release and `appends` appends; `None` where several locks run in parallel
    /// (then the machine's CPUs, not the round trips, set the bound).
    pub fn cycles_per_sec(&self, clients: usize, locks: usize, appends: usize) -> Option<f64> {
        let commit = self.commit().as_secs_f64();
        let commits_per_cycle = match (clients, locks) {
            (1, 1) => 2 + appends,
            (_, 1) => 1 + appends,
            _ => return None,
        };
        Some(1.0 / (commits_per_cycle as f64 * commit))
    }
}

fn median(mut samples: Vec<Duration>) -> f64 {
    samples.sort_unstable();
    samples
        .get(samples.len() / 2)
        .map_or(0.0, |d| d.as_secs_f64() * 1e6)
}

fn loopback_round_trips(n: usize) -> std::io::Result<Vec<Duration>> {
    const SIZE: usize = 64;
    const WARM_UP: usize = 500;
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let echo = std::thread::spawn(move || -> std::io::Result<()> {
        let (mut stream, _) = listener.accept()?;
        stream.set_nodelay(true)?;
        let mut buf = [0u8; SIZE];
        while stream.read_exact(&mut buf).is_ok() {
            stream.write_all(&buf)?;
        }
        Ok(())
    });
    let mut stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    let mut buf = [7u8; SIZE];
    let mut samples = Vec::with_capacity(n);
    for i in 0..WARM_UP + n {
        let began = Instant::now();
        stream.write_all(&buf)?;
        stream.read_exact(&mut buf)?;
        if i >= WARM_UP {
            samples.push(began.elapsed());
        }
    }
    drop(stream);
    let _ = echo.join();
    Ok(samples)
}

fn appends_with_sync(dir: &Path, n: usize) -> std::io::Result<Vec<Duration>> {
    let path = dir.join(format!("floor-probe-{}", std::process::id()));
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)?;
    let block = [0x5au8; 4096];
    let mut samples = Vec::with_capacity(n);
    let result = (|| {
        for _ in 0..n {
            let began = Instant::now();
            file.write_all(&block)?;
            file.sync_data()?;
            samples.push(began.elapsed());
        }
        Ok(())
    })();
    let _ = std::fs::remove_file(&path);
    result.map(|()| samples)
}
