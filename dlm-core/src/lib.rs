//! # dlm-core
//!
//! The sans-IO core of dlm, an embeddable distributed lock service: named locks granted in FIFO
//! order under leases, fencing tokens that only grow, and guarded files whose appends are checked
//! against the token, all replicated by a Raft-family protocol.
//!
//! The core never reads a clock, touches a socket or a file, spawns, sleeps, or draws OS
//! randomness. A [`Node`] takes inputs ([`Input`]) with the current [`Time`], and queues
//! [`Effect`]s for its driver: persist, send, reply, applied. The same inputs give the same
//! effects, which is what lets the simulator (feature `sim`) replay any run from its seed.
//!
//! The drive loop and the durability contract are on [`Node`] and [`Effect`]: only promises
//! about local storage wait for a sync, and the driver reports each finished sync back with
//! [`Input::Persisted`]; [`PersistQueue`] does that bookkeeping for a driver that syncs in the
//! background.
//!
//! The replicated state is [`StateMachine`]; the wire types are
//! in [`protocol`] (clients) and [`message`] (peers).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod client;
pub mod command;
mod config;
pub mod frame;
pub mod introspection;
mod log;
pub mod membership;
pub mod message;
mod names;
mod node;
mod persist_queue;
pub mod protocol;
mod state_machine;
mod types;

#[cfg(feature = "tokio")]
pub mod runtime;

#[cfg(feature = "sim")]
pub mod sim;

pub use command::{Command, Entry};
pub use config::{Config, ConfigError, Limits};
pub use frame::MAX_MESSAGE;
pub use introspection::{HolderInfo, LockInfo, LocksPage, MembersInfo, SessionInfo, SessionsPage};
pub use membership::{Member, Membership, MembershipRejection};
pub use names::{FileName, LockName};
pub use node::{
    Applied, Effect, HardState, Input, Node, NodeError, Persist, Recovered, Snapshot,
    MAX_EVENTS_PER_PAGE, MAX_QUERIES_IN_FLIGHT, MAX_WATCH_WAIT,
};
pub use persist_queue::{Backlog, PersistQueue, SyncDone};
pub use protocol::{
    AcquireParts, ClientRequest, ClientResponse, EventPosition, HolderView, LockChange, LockEvent,
    LockKind, LockView, Mode, NodeStatus, Op, Rejection, Reply, Role, WatchFrom, WatchPage,
    Withdrawn, MAX_PENDING, MAX_VALUE,
};
pub use state_machine::{
    GuardedFile, Holder, LockState, Outcome, Rules, Session, Slot, Slots, StateMachine, Waiter,
};
pub use types::{
    ClientId, ClientTag, ConnId, FencingToken, LogIndex, LogPosition, NodeId, Seq, Term, Time,
};
