//! # dlm
//!
//! An embeddable distributed lock service for Rust: named locks granted in fair FIFO order, under
//! leases that expire unless kept alive, with a fencing token on every grant that only grows, and
//! guarded files whose appends are checked against the token and replicated to every node.
//!
//! This facade re-exports [`dlm_core`] (the sans-IO state machine and, with the `tokio` feature,
//! the async runtime), and, behind the `mem` and `tcp` features (both on by default), the two
//! transports and a small embedding API.
//!
//! ## Embedding a node and taking a lock
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use dlm::{connect_tcp, Server};
//!
//! // A one-node cluster keeping its data in ./dlm-data (add .peer(id, addr) for more nodes).
//! let server = Server::builder()
//!     .id(1)
//!     .data_dir("./dlm-data")
//!     .serve_tcp("127.0.0.1:7001".parse()?)
//!     .await?;
//!
//! let client = connect_tcp([(1, "127.0.0.1:7001".parse()?)]);
//! let guard = client.lock("orders").await?;           // waits in FIFO order
//! let token = guard.token();                          // hand this to the resource you guard
//! client.append(&guard, "orders.log", b"order 17 shipped\n".to_vec()).await?;
//! client.release(guard).await?;
//! # let _ = token;
//! server.shutdown().await?;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub use dlm_core::*;

#[cfg(feature = "tokio")]
mod data_dir;
#[cfg(feature = "metrics")]
pub mod metrics;
#[cfg(feature = "tokio")]
mod server;

#[cfg(feature = "tokio")]
pub use data_dir::DataDirError;
#[cfg(feature = "tokio")]
pub use dlm_core::runtime::{
    Client, ClientConfig, ClientError, DriftBound, Election, Leader, LeaderObserver, Leadership,
    LockGuard, LockWatch, LossReason, NodeCause, ReplaceError, ReplaceStep, Unreachable,
    WatchUpdate, REPLACE_CATCH_UP,
};
#[cfg(feature = "tcp")]
pub use dlm_transport_tcp::ClusterSecret;
#[cfg(feature = "tls")]
pub use dlm_transport_tcp::{ClientCerts, ClientTls, NodeTls, TlsIdentity, TlsRoots};
#[cfg(feature = "mem")]
pub use server::{connect_mem, connect_mem_with};
#[cfg(feature = "tcp")]
pub use server::{connect_tcp, connect_tcp_with, ClusterAccess, JoinError, JOIN_WITHIN};
#[cfg(feature = "tokio")]
pub use server::{Server, ServerBuilder, StartError, DEFAULT_CLUSTER_ID};

/// In-process transport with fault injection (feature `mem`).
#[cfg(feature = "mem")]
pub use dlm_transport_mem as mem;

/// TCP transport (feature `tcp`).
#[cfg(feature = "tcp")]
pub use dlm_transport_tcp as tcp;
