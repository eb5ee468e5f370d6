//! The async runtime (feature `tokio`): the driver that runs a [`crate::Node`] over a
//! [`Transport`] and a [`Storage`], and the async [`Client`]. Everything with IO lives here; the
//! rest of the crate stays sans-IO.

pub mod client;
mod driver;
mod files;
pub mod storage;
mod transport;

pub use client::{Client, ClientConfig, ClientError, LockGuard};
pub use driver::{spawn_server, ServerError, ServerHandle, ServerOptions};
pub use files::{escape_file_name, FileMirror};
pub use storage::{FileStorage, FileStorageOptions, MemStorage, Storage, StorageError};
pub use transport::{ClientTransport, Incoming, Transport, TransportError};
