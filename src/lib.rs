//! # dlm
//!
//! An embeddable distributed lock service for Rust: named locks granted in fair FIFO order, under
//! leases that expire unless kept alive, with a fencing token on every grant that only grows, and
//! guarded files whose appends are checked against the token and replicated to every node.
//!
//! This facade re-exports [`dlm_core`] (the sans-IO state machine and, with the `tokio` feature,
//! the async runtime) and, behind the `mem` and `tcp` features, the two transports.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub use dlm_core::*;

/// In-process transport with fault injection (feature `mem`).
#[cfg(feature = "mem")]
pub use dlm_transport_mem as mem;

/// TCP transport (feature `tcp`).
#[cfg(feature = "tcp")]
pub use dlm_transport_tcp as tcp;
