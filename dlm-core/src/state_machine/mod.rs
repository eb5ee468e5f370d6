//! The replicated state machine: locks, leases, fencing, guarded files and client sessions.
//!
//! It is the same on every node and holds no clock: it changes only by applying committed
//! commands, in log order, and the same commands give the same state everywhere. Whatever depends
//! on time (a lease running out, a wait timing out, a session going idle) is decided by the leader
//! and proposed as a command. Applying reports [`Outcome`]s, which the node turns into replies and
//! into the leader's timers.

mod apply;
mod files;
mod grants;
mod introspect;
mod legacy;
mod lock_table;
mod proclaim;
mod revoke;
mod session;
mod validate;

pub(crate) use apply::pending_is_valid;
pub use files::GuardedFile;
pub use lock_table::{Holder, LockState, Waiter};
pub use session::{Session, Slot, Slots};
pub(crate) use validate::{bad_lease, check_request};

use crate::membership::Membership;
use crate::names::{FileName, LockName};
use crate::protocol::ClientResponse;
use crate::types::{ClientId, FencingToken, Seq};
use lock_table::LockTable;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::Duration;

/// A fast hasher with no random keys, so that map iteration order depends only on the history of
/// operations: the core must give the same effects for the same inputs on every run. (Keyed
/// SipHash would buy no protection here: with fixed keys it is as predictable as Fx, and it cost a
/// third of all instructions per lock cycle.)
pub type DetHasher = rustc_hash::FxBuildHasher;

/// What applying a command produced, for the node to act on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// An answer for the connection waiting on `(client, seq)`, if any.
    Reply(ClientResponse),
    /// `lock` was granted; the leader starts its lease.
    Granted {
        /// The lock.
        lock: LockName,
        /// The grant.
        token: FencingToken,
        /// Its lease.
        lease: Duration,
    },
    /// An acquire was queued with a finite wait; the leader arms its time-out.
    Queued {
        /// The lock.
        lock: LockName,
        /// The waiting client.
        client: ClientId,
        /// The waiting request.
        seq: Seq,
        /// How long it may wait.
        wait: Duration,
    },
    /// `lock` has no holder, no waiters and no delay any more: it left the table, and the
    /// leader drops its timers.
    Freed {
        /// The lock.
        lock: LockName,
    },
    /// `lock` entered lock-delay; the leader lifts it later.
    Delayed {
        /// The lock.
        lock: LockName,
    },
    /// Every lease `client` holds was renewed.
    Renewed {
        /// The client.
        client: ClientId,
    },
    /// The client's session saw a request (the leader resets its idle clock).
    Touched {
        /// The client.
        client: ClientId,
    },
    /// Bytes were appended to a file (drivers mirror files to disk from this).
    Appended {
        /// The file.
        file: FileName,
        /// Where the bytes start.
        offset: u64,
        /// The bytes.
        data: Vec<u8>,
    },
    /// The grant `token` of `lock` ended (released, expired, revoked or withdrawn); the leader
    /// drops its lease.
    Ended {
        /// The lock.
        lock: LockName,
        /// The grant.
        token: FencingToken,
    },
}

/// Settings the state machine needs. They must be the same on every node, like the rest of the
/// cluster configuration, or nodes would apply the same command differently.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rules {
    /// Client limits.
    pub limits: crate::config::Limits,
    /// Whether an expiry puts the lock into lock-delay.
    pub lock_delay: bool,
}

/// Every client session, by client.
type Sessions = HashMap<ClientId, Session, DetHasher>;

/// The state every node replicates.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateMachine {
    locks: LockTable,
    sessions: Sessions,
    files: HashMap<FileName, GuardedFile, DetHasher>,
    /// The last token granted; the next grant takes the one after it.
    last_token: FencingToken,
    /// The configuration of the last applied `Command::Membership`; none before the first
    /// (the cluster still runs on its bootstrap configuration). Kept here so that snapshots
    /// carry it.
    membership: Option<Membership>,
    /// The value each lock's exclusive holder last proclaimed, with the grant it belongs to
    /// (shown only while that grant is current; see [`StateMachine::proclaimed`]).
    proclaimed: HashMap<LockName, (FencingToken, Vec<u8>), DetHasher>,
}

impl StateMachine {
    /// An empty state machine.
    pub fn new() -> StateMachine {
        StateMachine::default()
    }

    /// The state of `lock`, if it is held, queued for or delayed.
    pub fn lock<Q>(&self, lock: &Q) -> Option<&LockState>
    where
        LockName: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        self.locks.get(lock)
    }

    /// Every lock that is held, queued for or delayed.
    pub fn locks(&self) -> impl Iterator<Item = (&LockName, &LockState)> {
        self.locks.iter()
    }

    /// The contents of `file`.
    pub fn file<Q>(&self, file: &Q) -> Option<&GuardedFile>
    where
        FileName: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        self.files.get(file)
    }

    /// Every guarded file.
    pub fn files(&self) -> impl Iterator<Item = (&FileName, &GuardedFile)> {
        self.files.iter()
    }

    /// The session of `client`.
    pub fn session(&self, client: ClientId) -> Option<&Session> {
        self.sessions.get(&client)
    }

    /// Every client session.
    pub fn sessions(&self) -> impl Iterator<Item = (&ClientId, &Session)> {
        self.sessions.iter()
    }

    /// The configuration as of the last applied entry, if any entry changed it.
    pub fn membership(&self) -> Option<&Membership> {
        self.membership.as_ref()
    }

    /// The last fencing token granted.
    pub fn last_token(&self) -> FencingToken {
        self.last_token
    }

    /// The answer already given to `(client, seq)`, or whether it is queued, if the session
    /// remembers it. The leader uses this to answer a retry without a new log entry.
    pub fn slot(&self, client: ClientId, seq: Seq) -> Option<&Slot> {
        self.sessions.get(&client)?.slots.get(&seq)
    }

    /// Serialises the whole state (for a snapshot), after a prefix naming its layout.
    pub fn to_bytes(&self) -> Result<Vec<u8>, postcard::Error> {
        postcard::to_extend(self, legacy::MAGIC.to_vec())
    }

    /// Restores a state serialised by [`StateMachine::to_bytes`], by a version from before
    /// election values (layout 3), or by one from before lock kinds (storage formats 1 and 2:
    /// every lock exclusive; format 1 also lacks the configuration, which is then the start-up
    /// one).
    pub fn from_bytes(bytes: &[u8]) -> Result<StateMachine, postcard::Error> {
        let mut sm = if let Some(current) = bytes.strip_prefix(&legacy::MAGIC[..]) {
            postcard::from_bytes(current)?
        } else if let Some(layout3) = bytes.strip_prefix(&legacy::MAGIC_3[..]) {
            legacy::decode_layout3(layout3)?
        } else {
            legacy::decode(bytes)?
        };
        sm.share_names();
        Ok(sm)
    }

    /// Decoding gives the lock table and the holder's session each a copy of a lock's name;
    /// applying commands gives them one shared copy. Sharing it again saves an allocation per
    /// held lock, and lets a keep-alive's lookups from the session compare names by pointer
    /// instead of reading a second copy from another cache line.
    fn share_names(&mut self) {
        for session in self.sessions.values_mut() {
            for name in &mut session.held {
                if let Some((key, _)) = self.locks.get_key_value(name) {
                    *name = key.clone();
                }
            }
        }
    }
}

/// What the crate's unit tests that apply commands share.
#[cfg(test)]
pub(crate) mod test_support {
    use super::Rules;
    use crate::command::Command;
    use crate::protocol::{ClientRequest, Op};
    use crate::types::{ClientId, Seq};

    /// Default limits, no lock-delay.
    pub(crate) fn rules() -> Rules {
        Rules {
            limits: Default::default(),
            lock_delay: false,
        }
    }

    /// Request `seq` of `client` as a command, every earlier answer unacknowledged.
    pub(crate) fn request(client: u128, seq: u64, op: Op) -> Command {
        Command::Client(ClientRequest {
            client: ClientId(client),
            seq: Seq(seq),
            acked_below: Seq(1),
            pending: Vec::new(),
            op,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::{request, rules};
    use super::*;
    use crate::command::Command;
    use crate::protocol::{ClientRequest, Op};
    use crate::types::{ClientId, NodeId, Seq};

    /// A decoded state shares each held lock's name between the table and the session, as the
    /// state it was encoded from did.
    #[test]
    fn decoding_shares_a_held_lock_name_between_table_and_session() {
        let rules = rules();
        let mut sm = StateMachine::new();
        let mut out = Vec::new();
        let acquire = Command::Client(ClientRequest {
            client: ClientId(7),
            seq: Seq(1),
            acked_below: Seq(1),
            pending: Vec::new(),
            op: Op::Acquire {
                lock: "a".into(),
                lease: Duration::from_secs(10),
                wait: None,
            },
        });
        sm.apply(&acquire, &rules, &mut out);
        let shared = |sm: &StateMachine| {
            let (key, _) = sm.locks.get_key_value("a").expect("held");
            let held = &sm.sessions[&ClientId(7)].held;
            held.len() == 1 && held[0].shares_with(key)
        };
        assert!(shared(&sm));
        let bytes = sm.to_bytes().expect("encodes");
        let decoded = StateMachine::from_bytes(&bytes).expect("decodes");
        assert_eq!(decoded, sm);
        assert!(shared(&decoded));
    }

    /// A snapshot written before membership changes still restores, with no configuration.
    #[test]
    fn a_snapshot_from_before_membership_changes_restores() {
        let mut sm = StateMachine::new();
        let acquire = ClientRequest {
            client: ClientId(7),
            seq: Seq(1),
            acked_below: Seq(1),
            pending: Vec::new(),
            op: Op::Acquire {
                lock: "a".into(),
                lease: Duration::from_secs(1),
                wait: None,
            },
        };
        sm.apply(&Command::Client(acquire), &rules(), &mut Vec::new());
        let old = legacy::Format1 {
            locks: legacy::old_locks(&sm.locks),
            sessions: sm.sessions.clone(),
            files: sm.files.clone(),
            last_token: sm.last_token,
        };
        let bytes = postcard::to_allocvec(&old).unwrap();
        assert_eq!(StateMachine::from_bytes(&bytes), Ok(sm.clone()));

        let config = Membership::bootstrap([NodeId(1), NodeId(2)]);
        let change = Command::Membership {
            config: config.clone(),
            client: ClientId(9),
            seq: Seq(1),
        };
        sm.apply(&change, &rules(), &mut Vec::new());
        let restored = StateMachine::from_bytes(&sm.to_bytes().unwrap()).unwrap();
        assert_eq!(restored.membership(), Some(&config));
        assert!(StateMachine::from_bytes(&bytes[..bytes.len() - 1]).is_err());
    }

    /// A layout-3 snapshot (before election values) restores as the same state with nothing
    /// proclaimed; a current one keeps what was proclaimed, and a value goes with its lock.
    #[test]
    fn a_snapshot_from_before_election_values_restores_with_none() {
        let mut sm = StateMachine::new();
        let acquire = Op::Acquire {
            lock: "e".into(),
            lease: Duration::from_secs(1),
            wait: None,
        };
        let mut out = Vec::new();
        sm.apply(&request(1, 1, acquire), &rules(), &mut out);
        let old = legacy::Format3 {
            locks: sm.locks.clone(),
            sessions: sm.sessions.clone(),
            files: sm.files.clone(),
            last_token: sm.last_token,
            membership: sm.membership.clone(),
        };
        let bytes = postcard::to_extend(&old, legacy::MAGIC_3.to_vec()).unwrap();
        assert_eq!(StateMachine::from_bytes(&bytes), Ok(sm.clone()));

        let proclaim = Op::Proclaim {
            lock: "e".into(),
            token: FencingToken(1),
            value: b"me".to_vec(),
        };
        sm.apply(&request(1, 2, proclaim), &rules(), &mut out);
        let restored = StateMachine::from_bytes(&sm.to_bytes().unwrap()).unwrap();
        assert_eq!(
            restored.proclaimed(&"e".into()),
            Some((FencingToken(1), &b"me"[..]))
        );
        assert_eq!(restored, sm);
        let release = Op::Release {
            lock: "e".into(),
            token: FencingToken(1),
        };
        sm.apply(&request(1, 3, release), &rules(), &mut out);
        assert!(sm.proclaimed.is_empty(), "a freed lock keeps no value");
    }

    /// A format-2 snapshot (exclusive locks, one optional holder, waiters without a mode)
    /// restores as the same state with every lock exclusive; a current one keeps its kinds.
    #[test]
    fn a_snapshot_from_before_lock_kinds_restores_as_exclusive_locks() {
        let mut sm = StateMachine::new();
        let acquire = |lock: &str, wait| Op::Acquire {
            lock: lock.into(),
            lease: Duration::from_secs(1),
            wait,
        };
        let mut out = Vec::new();
        sm.apply(&request(1, 1, acquire("a", None)), &rules(), &mut out);
        let waiting = Some(Duration::from_secs(5));
        sm.apply(&request(2, 1, acquire("a", waiting)), &rules(), &mut out);
        let config = Membership::bootstrap([NodeId(1)]);
        let change = Command::Membership {
            config,
            client: ClientId(9),
            seq: Seq(1),
        };
        sm.apply(&change, &rules(), &mut out);
        let old = legacy::Format2 {
            locks: legacy::old_locks(&sm.locks),
            sessions: sm.sessions.clone(),
            files: sm.files.clone(),
            last_token: sm.last_token,
            membership: sm.membership.clone(),
        };
        let bytes = postcard::to_allocvec(&old).unwrap();
        assert_eq!(StateMachine::from_bytes(&bytes), Ok(sm.clone()));

        let read = Op::AcquireAs {
            lock: "r".into(),
            lease: Duration::from_secs(1),
            wait: None,
            mode: crate::protocol::Mode::Read,
        };
        sm.apply(&request(3, 1, read), &rules(), &mut out);
        let restored = StateMachine::from_bytes(&sm.to_bytes().unwrap()).unwrap();
        assert_eq!(restored, sm);
        assert_eq!(
            restored.lock("r").map(|l| l.kind),
            Some(crate::protocol::LockKind::Shared)
        );
    }
}
