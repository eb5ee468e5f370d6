//! The async runtime (feature `tokio`): the driver that runs a [`crate::Node`] over a
//! [`Transport`] and a [`Storage`], and the async [`Client`]. Everything with IO lives here; the
//! rest of the crate stays sans-IO.
//!
//! - [`spawn_server`] recovers a [`Storage`] ([`FileStorage`] on disk, [`MemStorage`] in tests),
//!   starts the node and returns a [`ServerHandle`] (status channel, `shutdown`). Its loop waits
//!   for input or the node's next deadline, takes everything else already queued, and executes
//!   the effects with one sync for all the persists of the batch (group commit).
//! - [`Client`] finds the leader, retries under a deadline with the same seq, and hands out
//!   [`LockGuard`]s whose leases it renews in the background.
//!
//! The driver races [`Transport::recv`] against timers and polls it without waiting to batch,
//! so `recv` must be cancel-safe (an mpsc receiver is).

pub mod client;
mod driver;
mod files;
pub mod storage;
mod transport;

pub use client::{
    Client, ClientConfig, ClientError, DriftBound, LockGuard, NodeCause, Unreachable,
};
pub use driver::{spawn_server, ServerError, ServerHandle, ServerOptions};
pub use files::{escape_file_name, FileMirror};
pub use storage::{FileStorage, FileStorageOptions, MemStorage, Storage, StorageError};
pub use transport::{ClientTransport, Incoming, Transport, TransportError};
