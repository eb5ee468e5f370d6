//! How a node's run ended, for whoever supervises it: an embedder that must stop serving, or a
//! `server` process that must exit non-zero so that systemd or a container runtime restarts
//! it. (A node whose disk filled up once logged the error and left its process running, deaf,
//! until someone sent SIGTERM.)

use super::driver::ServerError;
use super::storage::StorageError;

/// Why a node stopped; see [`crate::runtime::ServerHandle::stopped`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Stopped {
    /// It was asked to: [`crate::runtime::ServerHandle::shutdown`], or its handle was dropped.
    #[error("the node was asked to stop")]
    Asked,
    /// Its data disk is full. Nothing it acknowledged is lost (it stops rather than answer
    /// without a durable copy); restarted with room on the disk it recovers and catches up.
    #[error("the node stopped: its data disk is full ({0})")]
    DiskFull(String),
    /// Its transport closed, so nothing more could reach it.
    #[error("the node stopped: its transport closed")]
    TransportClosed,
    /// Any other error (the message says which).
    #[error("the node stopped on an error: {0}")]
    Failed(String),
    /// Its task ended without reporting: killed ([`crate::runtime::ServerHandle::kill`]), or a
    /// panic.
    #[error("the node's task ended without reporting why")]
    Vanished,
}

impl Stopped {
    /// Whether the node stopped because it was asked to; anything else is a failure a
    /// supervisor should act on.
    pub fn was_asked(&self) -> bool {
        matches!(self, Stopped::Asked)
    }

    /// How a run that returned `result` ended; `asked` says whether a stop had been requested.
    pub(crate) fn of(result: &Result<(), ServerError>, asked: bool) -> Stopped {
        match result {
            Ok(()) if asked => Stopped::Asked,
            Ok(()) => Stopped::TransportClosed,
            Err(e) if disk_full(e) => Stopped::DiskFull(e.to_string()),
            Err(e) => Stopped::Failed(e.to_string()),
        }
    }
}

/// Whether `e` is the data disk running out of space, in the log or the file mirror.
fn disk_full(e: &ServerError) -> bool {
    let io = match e {
        ServerError::Storage(StorageError::Io { source, .. }) | ServerError::Mirror(source) => {
            source
        }
        _ => return false,
    };
    io.kind() == std::io::ErrorKind::StorageFull
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Error, ErrorKind};
    use std::path::PathBuf;

    fn io(kind: ErrorKind) -> StorageError {
        StorageError::Io {
            path: PathBuf::from("wal"),
            source: Error::from(kind),
        }
    }

    #[test]
    fn each_ending_is_named() {
        assert_eq!(Stopped::of(&Ok(()), true), Stopped::Asked);
        assert_eq!(Stopped::of(&Ok(()), false), Stopped::TransportClosed);
        let full = Stopped::of(&Err(ServerError::Storage(io(ErrorKind::StorageFull))), true);
        assert!(
            matches!(&full, Stopped::DiskFull(m) if m.contains("wal")),
            "{full:?}"
        );
        let mirror = Stopped::of(
            &Err(ServerError::Mirror(Error::from(ErrorKind::StorageFull))),
            false,
        );
        assert!(matches!(mirror, Stopped::DiskFull(_)), "{mirror:?}");
        let other = Stopped::of(
            &Err(ServerError::Storage(io(ErrorKind::PermissionDenied))),
            false,
        );
        assert!(matches!(other, Stopped::Failed(_)), "{other:?}");
        assert!(!other.was_asked() && Stopped::Asked.was_asked());
    }
}
