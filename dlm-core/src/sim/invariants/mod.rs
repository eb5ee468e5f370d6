//! The invariants, one function each, checked after every step. Each returns the name of the
//! invariant and what was wrong; the simulator turns that into a [`super::Violation`].

mod answers;
mod files;
mod membership;
mod per_node;
mod revokes;
mod watches;

pub use watches::WatchOracle;

use crate::names::{FileName, LockName};
use crate::node::Node;
use crate::protocol::{Rejection, Reply};
use crate::types::{ClientId, FencingToken, LogIndex, NodeId, Seq, Term};
use answers::Window;
use per_node::Committed;
use rustc_hash::FxHashMap as HashMap;
use rustc_hash::FxHashSet as HashSet;

/// An invariant that failed, and how.
pub type Broken = (&'static str, String);

/// Everything the invariants remember between steps.
#[derive(Debug, Default)]
pub struct Checker {
    leaders: HashMap<Term, NodeId>,
    /// The committed entry at each index (index 1 at position 0).
    committed: Vec<Committed>,
    /// Where the commit term (made non-decreasing) first reaches each value: (term, position).
    term_starts: Vec<(Term, usize)>,
    /// Per node: the highest index compared against `committed`.
    compared: Vec<LogIndex>,
    /// Per node: the applied index its state was last checked at (the state changes only when
    /// it moves, so the state checks run only then).
    state_checked: Vec<Option<LogIndex>>,
    /// A digest of the state machine after each applied index.
    applied: HashMap<LogIndex, u64>,
    /// Every grant a client was told of: token → (client id, lock).
    grants: HashMap<FencingToken, (ClientId, LockName)>,
    /// Per node, per lock: the highest holder token seen since the node last started.
    /// Per node and lock: the newest token seen, and the grants held at the last check.
    holder_tokens: Vec<HashMap<LockName, (FencingToken, Vec<FencingToken>)>>,
    /// Per node, per file: the token of the last append applied since the node last started.
    file_tokens: Vec<HashMap<FileName, FencingToken>>,
    /// First answer of every `(client, seq)`.
    answers: HashMap<(ClientId, Seq), Result<Reply, Rejection>>,
    windows: HashMap<LockName, Vec<Window>>,
    /// Every append sent: data → (client, lock, token).
    pub sent_appends: HashMap<Vec<u8>, (ClientId, LockName, FencingToken)>,
    /// Every acknowledged append: (file, offset, data).
    acked_appends: Vec<(FileName, u64, Vec<u8>)>,
    /// When each of `acked_appends` was acknowledged (true time), in the same order.
    acked_at: Vec<u64>,
    /// Per file: the positions in `acked_appends` of its appends, in the order acknowledged.
    acked_by_file: HashMap<FileName, Vec<usize>>,
    /// Acquires given up on, to check by a due time: (client index, session, lock, due).
    pub abandoned: Vec<(usize, ClientId, LockName, u64)>,
    /// The earliest due time among `abandoned` (`u64::MAX` if none).
    pub abandoned_due: u64,
    /// Every grant known revoked (by a node's state or a revoke's answer).
    revoked: HashSet<FencingToken>,
    /// Per node: the grants it has applied a revoke of since it last started.
    revoked_on: Vec<HashSet<FencingToken>>,
    /// Locks some client sent a revoke of.
    revokes_sent: HashSet<LockName>,
    /// Overlapping lease windows whose older grant may yet turn out revoked: that grant's token,
    /// and the first overlap's report.
    unexplained_overlaps: HashMap<FencingToken, String>,
    /// The committed configurations in log order, the start-up one first (at index 0).
    configs: Vec<(LogIndex, crate::Membership)>,
    /// The replay that watches are checked against (none: watches are not checked).
    pub watch_oracle: Option<WatchOracle>,
}

impl Checker {
    /// A checker for `nodes` nodes whose cluster starts with the configuration `start`.
    pub fn with_members(nodes: usize, start: crate::Membership) -> Checker {
        Checker {
            configs: vec![(LogIndex(0), start)],
            ..Checker::new(nodes)
        }
    }

    /// A checker for `nodes` nodes.
    pub fn new(nodes: usize) -> Checker {
        Checker {
            compared: vec![LogIndex(0); nodes],
            state_checked: vec![None; nodes],
            holder_tokens: vec![HashMap::default(); nodes],
            file_tokens: vec![HashMap::default(); nodes],
            revoked_on: vec![HashSet::default(); nodes],
            abandoned_due: u64::MAX,
            ..Checker::default()
        }
    }

    /// Node `idx` crashed: what it saw since it started is gone.
    pub fn on_crash(&mut self, idx: usize) {
        self.compared[idx] = LogIndex(0);
        self.state_checked[idx] = None;
        self.holder_tokens[idx].clear();
        self.file_tokens[idx].clear();
        self.revoked_on[idx].clear();
    }

    /// The highest index known committed anywhere.
    pub fn max_committed(&self) -> LogIndex {
        LogIndex(self.committed.len() as u64)
    }

    /// Runs every per-node invariant on node `idx`.
    pub fn check_node(&mut self, idx: usize, node: &Node) -> Result<(), Broken> {
        self.election_safety(node)?;
        self.log_matching(idx, node)?;
        self.configuration_in_force(node)?;
        self.leader_completeness(node)?;
        if self.state_checked[idx] == Some(node.applied_index()) {
            return Ok(());
        }
        self.state_checked[idx] = Some(node.applied_index());
        self.revocations_seen(idx, node);
        self.same_applied_sequence(node)?;
        self.tokens_grow_per_lock(idx, node)?;
        self.holders_consistent(node)
    }
}
