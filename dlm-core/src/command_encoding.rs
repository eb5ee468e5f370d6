//! How a [`Command`] is encoded in the log, in snapshots' neighbours and between nodes.
//!
//! Postcard carries no field tags, so a field added to [`ClientRequest`] would change what
//! every stored client command means. [`ClientRequest::pending`] is therefore left out of the
//! encoding of `Command::Client`, which reads and writes the four fields it always had; a
//! request with pending seqs is written as `ClientPending`, a variant after all the others,
//! which older logs never hold. Both decode to `Command::Client`.

use super::Command;
use crate::membership::Membership;
use crate::names::LockName;
use crate::protocol::{ClientRequest, Op};
use crate::types::{ClientId, FencingToken, Seq};
use serde::{Deserialize, Serialize};

/// A client request as `Command::Client` has always encoded it.
#[derive(Serialize)]
pub(super) struct RequestRef<'a> {
    client: &'a ClientId,
    seq: &'a Seq,
    acked_below: &'a Seq,
    op: &'a Op,
}

/// The encoding of a command, borrowed: the variants of [`Command`] in their order, then
/// `ClientPending`.
#[derive(Serialize)]
#[serde(rename = "Command")]
pub(super) enum StoredRef<'a> {
    Noop,
    Client(RequestRef<'a>),
    Expire {
        lock: &'a LockName,
        token: &'a FencingToken,
        renewals: &'a u64,
    },
    LiftDelay {
        lock: &'a LockName,
    },
    CancelWait {
        lock: &'a LockName,
        client: &'a ClientId,
        seq: &'a Seq,
    },
    ExpireSession {
        client: &'a ClientId,
    },
    Membership {
        config: &'a Membership,
        client: &'a ClientId,
        seq: &'a Seq,
    },
    ClientPending(&'a ClientRequest),
}

impl<'a> From<&'a Command> for StoredRef<'a> {
    fn from(command: &'a Command) -> StoredRef<'a> {
        match command {
            Command::Noop => StoredRef::Noop,
            Command::Client(request) if !request.pending.is_empty() => {
                StoredRef::ClientPending(request)
            }
            Command::Client(request) => StoredRef::Client(RequestRef {
                client: &request.client,
                seq: &request.seq,
                acked_below: &request.acked_below,
                op: &request.op,
            }),
            Command::Expire {
                lock,
                token,
                renewals,
            } => StoredRef::Expire {
                lock,
                token,
                renewals,
            },
            Command::LiftDelay { lock } => StoredRef::LiftDelay { lock },
            Command::CancelWait { lock, client, seq } => {
                StoredRef::CancelWait { lock, client, seq }
            }
            Command::ExpireSession { client } => StoredRef::ExpireSession { client },
            Command::Membership {
                config,
                client,
                seq,
            } => StoredRef::Membership {
                config,
                client,
                seq,
            },
        }
    }
}

/// A client request as `Command::Client` has always encoded it.
#[derive(Deserialize)]
pub(super) struct StoredRequest {
    client: ClientId,
    seq: Seq,
    acked_below: Seq,
    op: Op,
}

/// The encoding of a command, owned (see [`StoredRef`]).
#[derive(Deserialize)]
#[serde(rename = "Command")]
pub(super) enum Stored {
    Noop,
    Client(StoredRequest),
    Expire {
        lock: LockName,
        token: FencingToken,
        renewals: u64,
    },
    LiftDelay {
        lock: LockName,
    },
    CancelWait {
        lock: LockName,
        client: ClientId,
        seq: Seq,
    },
    ExpireSession {
        client: ClientId,
    },
    Membership {
        config: Membership,
        client: ClientId,
        seq: Seq,
    },
    ClientPending(ClientRequest),
}

impl From<Stored> for Command {
    fn from(stored: Stored) -> Command {
        match stored {
            Stored::Noop => Command::Noop,
            Stored::Client(StoredRequest {
                client,
                seq,
                acked_below,
                op,
            }) => Command::Client(ClientRequest::new(client, seq, acked_below, op)),
            Stored::ClientPending(request) => Command::Client(request),
            Stored::Expire {
                lock,
                token,
                renewals,
            } => Command::Expire {
                lock,
                token,
                renewals,
            },
            Stored::LiftDelay { lock } => Command::LiftDelay { lock },
            Stored::CancelWait { lock, client, seq } => Command::CancelWait { lock, client, seq },
            Stored::ExpireSession { client } => Command::ExpireSession { client },
            Stored::Membership {
                config,
                client,
                seq,
            } => Command::Membership {
                config,
                client,
                seq,
            },
        }
    }
}
