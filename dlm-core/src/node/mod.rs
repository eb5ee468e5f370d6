//! [`Node`]: one member of the cluster as a deterministic state machine. Inputs go in through
//! [`Node::handle`] with the current time; effects come out through [`Node::poll_effect`];
//! [`Node::next_deadline`] says when to tick again. No IO, no clock, no OS randomness.

mod apply;
mod client;
mod effects;
mod election;
pub(crate) mod events;
mod follower_log;
mod leader_timers;
mod members;
mod output;
mod peer;
mod progress;
mod queries;
mod read_index;
mod reconfigure;
mod replication;
mod role;
mod sender;
mod snapshot;
mod snapshot_receiver;
mod timers;
mod transfer;
mod votes;
mod watch_serving;
mod watches;

pub use effects::{Applied, Effect, HardState, Input, Persist, Recovered, Snapshot};
pub use events::MAX_EVENTS_PER_PAGE;
pub use read_index::MAX_QUERIES_IN_FLIGHT;
pub use watches::MAX_WATCH_WAIT;

use crate::command::{Command, Entry};
use crate::config::{Config, ConfigError};
use crate::log::Log;
use crate::membership::Membership;
use crate::protocol::{NodeStatus, Rejection, Role};
use crate::state_machine::{Outcome, Rules, StateMachine};
use crate::types::{ClientId, ConnId, LogIndex, LogPosition, NodeId, Seq, Term, Time};
use events::EventHistory;
use members::Members;
use output::Output;
use rand_core::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use role::RoleState;
use snapshot_receiver::IncomingSnapshot;
use std::sync::Arc;
use timers::{Deadline, Timers};

/// Why a node could not be started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The recovered snapshot does not decode.
    #[error("recovered snapshot at index {index} does not decode: {source}")]
    Snapshot {
        /// The snapshot's last index.
        index: LogIndex,
        /// The decoding error.
        source: postcard::Error,
    },
}

/// One member of a dlm cluster, without IO.
///
/// # Driving a node
///
/// ```
/// use dlm_core::{Config, Effect, Input, Node, NodeId, Recovered, Time};
///
/// let mut node = Node::new(Config::single(NodeId(1)), Recovered::default()).unwrap();
/// let mut now = Time::ZERO;
/// for _ in 0..3 {
///     // 1. Feed whatever arrived (peer messages, client requests), or a tick when idle.
///     node.handle(now, Input::Tick);
///     // 2. Drain every effect. This driver is synchronous: it makes each persist durable on
///     //    the spot and reports it at once (see `Effect` for what an asynchronous one may do).
///     while let Some(effect) = node.poll_effect() {
///         match effect {
///             Effect::Persist(persist) => {
///                 /* write + fsync */
///                 if let Some(position) = persist.log_position() {
///                     node.handle(now, Input::Persisted(position));
///                 }
///             }
///             Effect::Send(_) => { /* transport.send */ }
///             Effect::Reply { .. } => { /* answer the client connection */ }
///             Effect::Applied(_) => { /* mirror files, if wanted */ }
///         }
///     }
///     // 3. Sleep until the next deadline or the next input, whichever is first.
///     now = node.next_deadline();
/// }
/// assert!(node.is_leader());
/// ```
///
/// # When is an entry committed?
///
/// When a majority holds it durably. A follower says so by acknowledging, which its driver sends
/// only once the entry is durable ([`Effect::waits_for_persist`]). The leader counts its own copy
/// once its driver reports it with [`Input::Persisted`]. Its AppendEntries leave before its own
/// sync, so the followers' syncs run in parallel with the leader's, and two followers can commit
/// what the leader is still syncing. A cluster of one commits an entry when its persist is
/// reported.
pub struct Node {
    cfg: Config,
    rules: Rules,
    rng: Xoshiro256PlusPlus,

    term: Term,
    voted_for: Option<NodeId>,
    log: Log,
    /// Every entry up to here is durable in this node's storage, as its driver reported.
    durable: LogIndex,

    role: RoleState,
    commit: LogIndex,
    applied: LogIndex,
    sm: StateMachine,
    /// Recent lock events, for watches.
    history: EventHistory,
    /// The configuration in force: the latest in the log, else the applied one.
    members: Members,
    snapshot: Option<Arc<Snapshot>>,
    /// A snapshot being received: from whom, in which term, which one, its size, the bytes so
    /// far. Keyed by sender and term too: two leaders' snapshots of the same index hold the same
    /// state but may serialise it in a different order, so their chunks must never be mixed.
    incoming_snapshot: Option<IncomingSnapshot>,

    /// The node's own deadlines (election, heartbeat, end of a hand-over). Empty until the
    /// first input tells us the time.
    timers: Timers,

    now: Time,
    out: Output,
    outcomes: Vec<Outcome>,
    proposals: Vec<Command>,
}

impl Node {
    /// Starts a node from its configuration and what its storage recovered.
    pub fn new(cfg: Config, recovered: Recovered) -> Result<Node, NodeError> {
        cfg.validate()?;
        let (sm, base, snapshot) = match recovered.snapshot {
            Some(snapshot) => {
                let sm = StateMachine::from_bytes(&snapshot.data).map_err(|source| {
                    NodeError::Snapshot {
                        index: snapshot.last.index,
                        source,
                    }
                })?;
                (sm, snapshot.last, Some(Arc::new(snapshot)))
            }
            None => (StateMachine::new(), LogPosition::default(), None),
        };
        let log = Log::new(base, recovered.entries);
        let bootstrap =
            Membership::bootstrap(cfg.members.iter().copied()).addressed(&cfg.addresses);
        let members = Members::recover(bootstrap, &log, &sm);
        let rules = Rules {
            limits: cfg.limits.clone(),
            lock_delay: !cfg.lock_delay.is_zero(),
        };
        Ok(Node {
            rng: Xoshiro256PlusPlus::seed_from_u64(cfg.seed),
            rules,
            term: recovered.hard_state.term,
            voted_for: recovered.hard_state.voted_for,
            // Whatever storage recovered is durable by definition.
            durable: log.last().index,
            log,
            role: RoleState::follower(None, Time::ZERO),
            commit: base.index,
            applied: base.index,
            history: EventHistory::new(base.index, cfg.watch_history),
            sm,
            members,
            snapshot,
            incoming_snapshot: None,
            timers: Timers::default(),
            now: Time::ZERO,
            out: Output::default(),
            outcomes: Vec::new(),
            proposals: Vec::new(),
            cfg,
        })
    }

    /// Feeds one input at time `now`. Effects queue up; drain them with [`Node::poll_effect`].
    pub fn handle(&mut self, now: Time, input: Input) {
        self.now = self.now.max(now);
        if self.timers.get(Deadline::Election).is_none() && !self.is_leader() {
            self.reset_election_deadline();
        }
        match input {
            Input::Tick => {}
            Input::Peer(msg) => self.on_peer(msg),
            Input::Client { conn, request } => self.on_client(conn, request),
            Input::Persisted(position) => self.on_persisted(position),
            Input::HandOver => self.hand_over(),
        }
        self.on_timers();
    }

    /// The next effect to execute, if any. Leader proposals are flushed here, so that every
    /// request that arrived since the last drain goes out in one persist and one message per
    /// follower.
    pub fn poll_effect(&mut self) -> Option<Effect> {
        if self.out.is_empty() {
            self.flush();
            self.start_read_round();
        }
        self.out.pop()
    }

    /// When the driver must call [`Node::handle`] (with [`Input::Tick`]) at the latest.
    pub fn next_deadline(&self) -> Time {
        let leader = self.role.leader();
        let locks = leader.map(|leader| &leader.timers);
        let watches = leader.map_or(Time::MAX, |leader| leader.watches.next_deadline());
        self.timers.next_deadline(locks).min(watches)
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.cfg.id
    }

    /// Its role.
    pub fn role(&self) -> Role {
        self.role.kind()
    }

    /// Whether it is the leader.
    pub fn is_leader(&self) -> bool {
        self.role.leader().is_some()
    }

    /// The leader it knows of (itself, when leading).
    pub fn leader(&self) -> Option<NodeId> {
        match &self.role {
            RoleState::Leader(_) => Some(self.cfg.id),
            role => role.followed().map(|heard| heard.id),
        }
    }

    /// Its current term.
    pub fn term(&self) -> Term {
        self.term
    }

    /// Its commit index.
    pub fn commit_index(&self) -> LogIndex {
        self.commit
    }

    /// Its last applied index.
    pub fn applied_index(&self) -> LogIndex {
        self.applied
    }

    /// The last entry of its log.
    pub fn last_log(&self) -> LogPosition {
        self.log.last()
    }

    /// The entry at `index`, if still in memory.
    pub fn entry(&self, index: LogIndex) -> Option<&Entry> {
        self.log.get(index)
    }

    /// The replicated state as applied so far.
    pub fn state_machine(&self) -> &StateMachine {
        &self.sm
    }

    /// Its configuration. Its `members` are only the voters the cluster started with; the
    /// configuration in force is [`Node::membership`].
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The cluster's configuration as this node has it: the latest in its log (a configuration
    /// takes effect when appended), else the one in its snapshot, else the one it started with.
    pub fn membership(&self) -> &Membership {
        &self.members.current
    }

    /// The log index of [`Node::membership`]'s entry; 0 if it is not from the log (the
    /// start-up configuration).
    pub fn membership_index(&self) -> LogIndex {
        self.members.index()
    }

    /// What `Op::Status` answers.
    pub fn status(&self) -> NodeStatus {
        NodeStatus {
            id: self.cfg.id,
            role: self.role(),
            term: self.term,
            leader: self.leader(),
            commit: self.commit,
            applied: self.applied,
            last_index: self.log.last().index,
            leader_addr: self
                .leader()
                .and_then(|leader| self.members.current.member(leader))
                .map(|m| m.addr.clone())
                .unwrap_or_default(),
        }
    }

    /// The last log index its driver has reported durable.
    pub fn durable_index(&self) -> LogIndex {
        self.durable
    }

    /// Entries in the in-memory log (to check that memory stays bounded).
    pub fn log_len(&self) -> usize {
        self.log.len()
    }

    fn hard_state(&self) -> HardState {
        HardState {
            term: self.term,
            voted_for: self.voted_for,
        }
    }

    fn persist_hard_state(&mut self) {
        let hs = self.hard_state();
        self.out.persist(Persist::HardState(hs));
    }

    fn reply(
        &mut self,
        conn: ConnId,
        client: ClientId,
        seq: Seq,
        result: Result<crate::protocol::Reply, Rejection>,
    ) {
        self.out.reply(conn, client, seq, result);
    }

    fn send(&mut self, to: NodeId, body: crate::message::PeerBody) {
        self.out.send(self.cfg.id, to, self.term, body);
    }

    /// The driver made the log durable up to `position`. A report about an entry that has been
    /// replaced since (the log was truncated under it) says nothing about the current log.
    fn on_persisted(&mut self, position: LogPosition) {
        if position.index <= self.durable || self.log.term_at(position.index) != Some(position.term)
        {
            return;
        }
        self.durable = position.index.min(self.log.last().index);
        self.maybe_commit();
        // A leader elected by its own vote alone speaks once its term is durable (see
        // `Leader::quiet`): its first entry is, and it was persisted after the term.
        let durable = self.durable;
        if let Some(leader) = self.role.leader_mut() {
            if leader.quiet && durable >= leader.term_start {
                leader.quiet = false;
                self.broadcast_heartbeat();
            }
        }
    }

    /// Removes the log from `index` on; what was durable there is no longer this log's.
    fn truncate_log_from(&mut self, index: LogIndex) {
        follower_log::truncate_from(&mut self.log, &mut self.durable, index);
        self.members.refresh(&self.log, &self.sm, index);
    }

    /// Appends a command to the leader's log; it goes out at the next flush.
    fn propose(&mut self, command: Command) {
        let entry = Entry {
            term: self.term,
            index: self.log.last().index.next(),
            command,
        };
        // A configuration takes effect when appended, at the leader as everywhere.
        self.members.note(&entry);
        self.log.push(entry);
    }
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("id", &self.cfg.id)
            .field("role", &self.role.kind())
            .field("term", &self.term)
            .field("commit", &self.commit)
            .field("last", &self.log.last())
            .finish_non_exhaustive()
    }
}
