//! Helpers shared by the example binaries (included with `#[path]`, not a library API).
#![allow(dead_code)]

pub mod cluster;
pub mod event_lag;
pub mod failover;
pub mod floor;
pub mod kind;
pub mod netfault;
#[cfg(feature = "tls")]
pub mod tls;
pub mod watch;

use std::net::SocketAddr;
use std::path::Path;

/// Parses `ID=ADDR`, as in `--peer 2=127.0.0.1:7002`.
pub fn parse_member(s: &str) -> Result<(u64, SocketAddr), String> {
    let (id, addr) = s
        .split_once('=')
        .ok_or_else(|| format!("expected ID=ADDR, got {s:?}"))?;
    let id = id
        .trim()
        .parse()
        .map_err(|e| format!("bad node id {id:?}: {e}"))?;
    let addr = addr
        .trim()
        .parse()
        .map_err(|e| format!("bad address {addr:?}: {e}"))?;
    Ok((id, addr))
}

/// A list of members (a newtype, so clap takes the whole list as one value).
#[derive(Clone, Debug)]
pub struct Members(pub Vec<(u64, SocketAddr)>);

/// Parses `ID=ADDR,ID=ADDR,...`.
pub fn parse_members(s: &str) -> Result<Members, String> {
    let members: Vec<_> = s
        .split(',')
        .filter(|p| !p.trim().is_empty())
        .map(parse_member)
        .collect::<Result<_, _>>()?;
    if members.is_empty() {
        return Err("no members given".into());
    }
    Ok(Members(members))
}

/// Reads the cluster secret in `path` (see [`dlm::ClusterSecret::from_file`]).
pub fn read_secret_file(path: &Path) -> Result<dlm::ClusterSecret, String> {
    dlm::ClusterSecret::from_file(path).map_err(|e| e.to_string())
}

/// Logs to stderr, filtered by `RUST_LOG` (default: info for dlm, warn elsewhere).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,dlm=info,dlm_core=info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Latency percentiles over microsecond samples.
pub struct Percentiles {
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub max: u64,
}

impl Percentiles {
    pub fn of(samples: &mut [u64]) -> Percentiles {
        samples.sort_unstable();
        let at = |q: f64| -> u64 {
            if samples.is_empty() {
                return 0;
            }
            let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
            samples[i]
        };
        Percentiles {
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            max: samples.last().copied().unwrap_or(0),
        }
    }
}
