//! The opt-in metrics listener (feature `metrics`): `GET /metrics` answers the node's counters
//! and gauges in the Prometheus text format; anything else is a 404.
//!
//! It is bounded so that scrapes cannot starve the node they watch:
//! - at most [`MAX_SCRAPES`] connections are served at once, each must send its request head
//!   within [`HEADER_TIMEOUT`] and be done within [`CONNECTION_DEADLINE`], and one request is
//!   served per connection;
//! - a connection beyond that is answered `503 Service Unavailable` with a one-line reason
//!   (at most [`MAX_REFUSALS`] of those at once; past that it is closed unanswered);
//! - at most [`MAX_ACCEPTS_PER_SECOND`] connections are taken a second: past that the
//!   listener waits for the next second and the kernel queues (or refuses) the rest;
//! - the node is asked, and the text encoded, at most once per [`MIN_REFRESH`]: scrapes
//!   closer together get the same answer.

mod encode;
mod http;

use dlm_core::runtime::MetricsReader;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Scrape connections served at once.
pub const MAX_SCRAPES: usize = 4;
/// Connections being refused (answered 503) at once; more are closed without an answer.
pub const MAX_REFUSALS: usize = 16;
/// Time a connection has to send its request head.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(2);
/// Time a connection may last in all, answer included.
pub const CONNECTION_DEADLINE: Duration = Duration::from_secs(10);
/// Connections taken a second, served or refused.
pub const MAX_ACCEPTS_PER_SECOND: u32 = 100;
/// Scrapes within this time of the last fresh one get its answer again.
pub const MIN_REFRESH: Duration = Duration::from_millis(100);
/// Time a scrape waits for the node's answer about its state machine and links; past it, the
/// scrape reports the rest with `dlm_state_available 0`.
pub const STATE_WAIT: Duration = Duration::from_secs(1);

/// Why the metrics listener could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen for metrics scrapes on {addr}: {source}")]
pub struct MetricsBindError {
    addr: SocketAddr,
    source: std::io::Error,
}

/// A bound metrics socket, not yet serving (bound before the node starts, so that a taken
/// port fails the start before anything runs).
pub(crate) struct MetricsSocket {
    listener: TcpListener,
    addr: SocketAddr,
}

impl MetricsSocket {
    pub(crate) async fn bind(addr: SocketAddr) -> Result<MetricsSocket, MetricsBindError> {
        let bound = async {
            let listener = TcpListener::bind(addr).await?;
            let local = listener.local_addr()?;
            Ok((listener, local))
        };
        let (listener, addr) = bound
            .await
            .map_err(|source| MetricsBindError { addr, source })?;
        Ok(MetricsSocket { listener, addr })
    }

    /// Starts answering scrapes of `reader`'s node.
    pub(crate) fn serve(self, reader: MetricsReader) -> MetricsListener {
        tracing::info!(addr = %self.addr, "serving metrics");
        MetricsListener {
            addr: self.addr,
            task: tokio::spawn(http::accept_loop(self.listener, reader)),
        }
    }
}

/// The running listener; dropping it stops it (connections under way end with it).
#[derive(Debug)]
pub(crate) struct MetricsListener {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl MetricsListener {
    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for MetricsListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}
