//! The async runtime (feature `tokio`): the driver that runs a [`crate::Node`] over a
//! [`Transport`] and a [`Storage`], and the async [`Client`]. Everything with IO lives here; the
//! rest of the crate stays sans-IO.
//!
//! - [`spawn_server`] recovers a [`Storage`] ([`FileStorage`] on disk, [`MemStorage`] in tests),
//!   starts the node and returns a [`ServerHandle`] (status channel, `shutdown`). Its loop waits
//!   for input, the node's next deadline or the sync under way, takes everything else already
//!   queued, sends messages and replies at once, and gathers the batch's persists into the next
//!   sync, run on a blocking thread (group commit through [`crate::PersistQueue`]). Only
//!   promises about local storage (votes, acknowledgements) wait for the syncs before them; past
//!   65,536 unsynced entries it stops reading input until the disk catches up.
//! - [`Client`] is a one-task driver over the sans-IO [`crate::client::ClientCore`] (leader
//!   finding, retries with the same seq, keep-alives, cancellation), and hands out
//!   [`LockGuard`]s whose leases it renews in the background.
//!
//! The driver races [`Transport::recv`] against timers and polls it without waiting to batch,
//! so `recv` must be cancel-safe (an mpsc receiver is).

pub mod client;
mod deadline;
mod driver;
mod files;
pub mod metrics;
mod stopped;
pub mod storage;
mod transport;

pub use client::{
    Client, ClientConfig, ClientError, DriftBound, Election, Leader, LeaderObserver, Leadership,
    LockGuard, LockWatch, LossReason, NodeCause, ReplaceError, ReplaceStep, Unreachable,
    WatchUpdate, REPLACE_CATCH_UP,
};
pub use deadline::deadline_after;
pub use driver::{spawn_server, ServerError, ServerHandle, ServerOptions, PROBE_TARGET};
pub use files::{escape_file_name, FileMirror};
pub use metrics::{MetricsReader, MetricsSnapshot};
pub use stopped::Stopped;
pub use storage::{
    FileStorage, FileStorageOptions, MemStorage, Storage, StorageError, STORAGE_FORMAT,
};
pub use transport::{ClientTransport, Incoming, PeerLinkState, Transport, TransportError};
