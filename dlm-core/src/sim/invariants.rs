//! The invariants, one function each, checked after every step. Each returns the name of the
//! invariant and what was wrong; the simulator turns that into a [`super::Violation`].

use crate::command::Command;
use crate::names::{FileName, LockName};
use crate::node::Node;
use crate::protocol::{Rejection, Reply};
use crate::types::{ClientId, FencingToken, LogIndex, NodeId, Seq, Term};
use rustc_hash::{FxHashMap as HashMap, FxHasher};
use std::hash::{Hash, Hasher};

/// An invariant that failed, and how.
pub type Broken = (&'static str, String);

/// A client's claim on a lock in true time, for the clock-honest lease check.
#[derive(Clone, Debug)]
struct Window {
    client: usize,
    token: FencingToken,
    start: u64,
    end: u64,
}

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
    holder_tokens: Vec<HashMap<LockName, FencingToken>>,
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
}

/// What the checker keeps of a committed entry.
#[derive(Debug)]
struct Committed {
    /// The entry's term.
    term: Term,
    /// The entry's command, kept whole so that a divergence is found by comparison, never missed
    /// through a hash collision.
    command: Command,
    /// The term of the node first seen committing it (the leader that committed it, or later).
    seen_in: Term,
}

impl Committed {
    fn same(&self, term: Term, command: &Command) -> bool {
        self.term == term && self.command == *command
    }
}

/// One item's share of a state digest.
fn item_hash(item: impl Hash) -> u64 {
    let mut h = FxHasher::default();
    item.hash(&mut h);
    h.finish()
}

/// A digest of the replicated state that does not depend on map iteration order (which differs
/// between nodes whose maps grew differently): each item is hashed alone and the hashes summed.
fn sm_digest(node: &Node) -> u64 {
    let sm = node.state_machine();
    let files = sm.files().map(|(name, f)| item_hash((name, f.data.len())));
    let locks = sm.locks().map(|(lock, state)| {
        item_hash((
            lock,
            state.holder.as_ref().map(|h| h.token),
            state.waiters.len(),
        ))
    });
    files.chain(locks).fold(
        item_hash((sm.last_token(), sm.sessions().count())),
        u64::wrapping_add,
    )
}

impl Checker {
    /// A checker for `nodes` nodes.
    pub fn new(nodes: usize) -> Checker {
        Checker {
            compared: vec![LogIndex(0); nodes],
            state_checked: vec![None; nodes],
            holder_tokens: vec![HashMap::default(); nodes],
            file_tokens: vec![HashMap::default(); nodes],
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
    }

    /// The highest index known committed anywhere.
    pub fn max_committed(&self) -> LogIndex {
        LogIndex(self.committed.len() as u64)
    }

    /// Runs every per-node invariant on node `idx`.
    pub fn check_node(&mut self, idx: usize, node: &Node) -> Result<(), Broken> {
        self.election_safety(node)?;
        self.log_matching(idx, node)?;
        self.leader_completeness(node)?;
        if self.state_checked[idx] == Some(node.applied_index()) {
            return Ok(());
        }
        self.state_checked[idx] = Some(node.applied_index());
        self.same_applied_sequence(node)?;
        self.tokens_grow_per_lock(idx, node)?;
        self.holders_consistent(node)
    }

    /// At most one leader per term.
    pub fn election_safety(&mut self, node: &Node) -> Result<(), Broken> {
        if !node.is_leader() {
            return Ok(());
        }
        let leader = *self.leaders.entry(node.term()).or_insert(node.id());
        if leader != node.id() {
            return Err((
                "election_safety",
                format!("term {}: leaders {} and {}", node.term(), leader, node.id()),
            ));
        }
        Ok(())
    }

    /// Committed prefixes never diverge: every committed entry a node has is the same as every
    /// other node's at that index.
    pub fn log_matching(&mut self, idx: usize, node: &Node) -> Result<(), Broken> {
        let commit = node.commit_index();
        let mut i = self.compared[idx].next();
        while i <= commit {
            if let Some(entry) = node.entry(i) {
                let pos = (i.0 - 1) as usize;
                match self.committed.get(pos) {
                    Some(known) if !known.same(entry.term, &entry.command) => {
                        return Err((
                            "log_matching",
                            format!(
                                "node {} committed {:?} at {} where another committed term {}",
                                node.id(),
                                entry,
                                i,
                                known.term
                            ),
                        ));
                    }
                    Some(_) => {}
                    None if pos == self.committed.len() => {
                        let seen_in = self
                            .committed
                            .last()
                            .map_or(node.term(), |c| c.seen_in.max(node.term()));
                        if self.term_starts.last().is_none_or(|(t, _)| *t < seen_in) {
                            self.term_starts.push((seen_in, pos));
                        }
                        self.committed.push(Committed {
                            term: entry.term,
                            command: entry.command.clone(),
                            seen_in,
                        })
                    }
                    // A gap: an earlier index was compacted away everywhere we looked; the
                    // digest is recorded once some node shows it.
                    None => {}
                }
            }
            i = i.next();
        }
        self.compared[idx] = commit;
        Ok(())
    }

    /// Leader completeness: a leader of term `t` holds every entry committed in a term before
    /// `t` (a stale leader of an older term may lack later commits).
    pub fn leader_completeness(&mut self, node: &Node) -> Result<(), Broken> {
        if !node.is_leader() {
            return Ok(());
        }
        // The first position committed in the leader's term or later; the one before it is the
        // newest the leader must hold.
        let later = self.term_starts.partition_point(|(t, _)| *t < node.term());
        let end = self
            .term_starts
            .get(later)
            .map_or(self.committed.len(), |(_, pos)| *pos);
        let Some(pos) = end.checked_sub(1) else {
            return Ok(());
        };
        let index = LogIndex(pos as u64 + 1);
        let known = &self.committed[pos];
        if node.last_log().index < index {
            return Err((
                "leader_completeness",
                format!(
                    "leader {} term {} ends at {} but {} was committed in term {}",
                    node.id(),
                    node.term(),
                    node.last_log().index,
                    index,
                    known.seen_in
                ),
            ));
        }
        if let Some(entry) = node.entry(index) {
            if !known.same(entry.term, &entry.command) {
                return Err((
                    "leader_completeness",
                    format!(
                        "leader {} has another entry at committed {}",
                        node.id(),
                        index
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Every node applies the same sequence: its state after applying index `i` is the same as
    /// every other node's after `i`.
    pub fn same_applied_sequence(&mut self, node: &Node) -> Result<(), Broken> {
        let applied = node.applied_index();
        if applied > node.commit_index() {
            return Err((
                "same_applied_sequence",
                format!("node {} applied {} past commit", node.id(), applied),
            ));
        }
        let digest = sm_digest(node);
        let known = *self.applied.entry(applied).or_insert(digest);
        if known != digest {
            return Err((
                "same_applied_sequence",
                format!("node {} state after {} differs", node.id(), applied),
            ));
        }
        Ok(())
    }

    /// Tokens of each lock only grow on every node.
    pub fn tokens_grow_per_lock(&mut self, idx: usize, node: &Node) -> Result<(), Broken> {
        let seen = &mut self.holder_tokens[idx];
        for (lock, state) in node.state_machine().locks() {
            let Some(holder) = &state.holder else {
                continue;
            };
            if holder.token > node.state_machine().last_token() {
                return Err(("token_unique", format!("{lock:?} token above the counter")));
            }
            let prev = seen.entry(lock.clone()).or_insert(holder.token);
            if holder.token < *prev {
                return Err((
                    "token_grows_per_lock",
                    format!(
                        "node {} {lock:?}: {} after {}",
                        node.id(),
                        holder.token,
                        prev
                    ),
                ));
            }
            *prev = holder.token;
        }
        Ok(())
    }

    /// A lock has at most one holder, and the holder's session agrees it holds it.
    pub fn holders_consistent(&mut self, node: &Node) -> Result<(), Broken> {
        let sm = node.state_machine();
        for (client, session) in sm.sessions() {
            for lock in &session.held {
                let holder = sm.lock(lock).and_then(|s| s.holder.as_ref());
                if holder.is_none_or(|h| h.client != *client) {
                    return Err((
                        "one_holder",
                        format!("node {}: {client:?} thinks it holds {lock:?}", node.id()),
                    ));
                }
            }
        }
        Ok(())
    }

    /// A fencing token is never granted twice (to another client or lock).
    pub fn token_granted_once(
        &mut self,
        client: ClientId,
        lock: &LockName,
        token: FencingToken,
    ) -> Result<(), Broken> {
        let known = self
            .grants
            .entry(token)
            .or_insert_with(|| (client, lock.clone()));
        if known.0 != client || known.1 != *lock {
            return Err((
                "token_granted_once",
                format!(
                    "{token} granted to {client:?}/{lock:?} and {:?}/{:?}",
                    known.0, known.1
                ),
            ));
        }
        Ok(())
    }

    /// A retried `(client, seq)` never gets an answer contradicting an earlier one.
    pub fn dedup_consistent(
        &mut self,
        client: ClientId,
        seq: Seq,
        result: &Result<Reply, Rejection>,
    ) -> Result<(), Broken> {
        // Reads and status are not cached (see `Op::is_cached`): a retried read is answered
        // afresh, which `read_linearizable` checks instead, and a status is news each time.
        if matches!(
            result,
            Err(Rejection::NotLeader { .. } | Rejection::SeqBelowWatermark | Rejection::NoSuchFile)
                | Ok(Reply::Data { .. } | Reply::Status(_))
        ) {
            return Ok(());
        }
        let first = self
            .answers
            .entry((client, seq))
            .or_insert_with(|| result.clone());
        if first != result {
            return Err((
                "dedup_consistent",
                format!("{client:?} seq {seq}: {first:?} then {result:?}"),
            ));
        }
        Ok(())
    }

    /// Clock-honest leases: client `client` is safe on `lock` until `until` (true time), from
    /// `now`. No two clients' safe windows on one lock overlap.
    pub fn lease_confirmed(
        &mut self,
        client: usize,
        lock: &LockName,
        token: FencingToken,
        now: u64,
        until: u64,
    ) -> Result<(), Broken> {
        let windows = self.windows.entry(lock.clone()).or_default();
        windows.retain(|w| w.end > now || w.client == client);
        if until <= now {
            return Ok(());
        }
        // A renewal claims the lock from now as much as a grant does: checked against the
        // others alike (a deposed leader's renewal can arrive after the lock went to another).
        if let Some(other) = windows.iter().find(|w| w.client != client && w.end > now) {
            return Err((
                "clock_honest_leases",
                format!(
                    "{lock:?}: client {} token {token} safe from {now} while client {} token {} is safe until {}",
                    client, other.client, other.token, other.end
                ),
            ));
        }
        if let Some(w) = windows
            .iter_mut()
            .find(|w| w.client == client && w.token == token && w.end > now)
        {
            w.end = w.end.max(until);
            return Ok(());
        }
        windows.retain(|w| w.client != client);
        windows.push(Window {
            client,
            token,
            start: now,
            end: until,
        });
        Ok(())
    }

    /// Client `client` stopped acting as holder of `lock` at `now` (it sent a release or gave up).
    pub fn lease_dropped(&mut self, client: usize, lock: &LockName, now: u64) {
        if let Some(windows) = self.windows.get_mut(lock) {
            for w in windows.iter_mut().filter(|w| w.client == client) {
                w.end = w.end.min(now).max(w.start);
            }
        }
    }

    /// No append is applied whose token is not the holder's current one: the token was granted
    /// to the appending client for that lock, and no later grant of the lock had been applied
    /// on that node, and a file's tokens never go down.
    pub fn append_fenced(
        &mut self,
        idx: usize,
        file: &FileName,
        data: &[u8],
    ) -> Result<(), Broken> {
        let Some((client, lock, token)) = self.sent_appends.get(data).cloned() else {
            return Err((
                "append_fenced",
                format!("unknown append {data:?} in {file:?}"),
            ));
        };
        match self.grants.get(&token) {
            Some((c, l)) if *c == client && *l == lock => {}
            other => {
                return Err((
                    "append_fenced",
                    format!("{data:?} carried {token} of {other:?}, not granted to {client:?}"),
                ))
            }
        }
        if let Some(seen) = self.holder_tokens[idx].get(&lock) {
            if *seen > token {
                return Err((
                    "append_fenced",
                    format!("{data:?} with {token} applied after grant {seen} of {lock:?}"),
                ));
            }
        }
        let last = self.file_tokens[idx].entry(file.clone()).or_insert(token);
        if *last > token {
            return Err((
                "append_fenced",
                format!("{data:?} with {token} applied after {last} in {file:?}"),
            ));
        }
        *last = token;
        Ok(())
    }

    /// A read of `file` from offset 0, first sent at `sent`, returned `data`: every append
    /// acknowledged before `sent` must be in it at its offset. A stale leader answering from
    /// its own state would miss what a newer leader acknowledged.
    pub fn read_linearizable(&self, file: &FileName, data: &[u8], sent: u64) -> Result<(), Broken> {
        let Some(positions) = self.acked_by_file.get(file) else {
            return Ok(());
        };
        // Acknowledgements are recorded in true-time order: stop at the first one not before.
        for &p in positions {
            let at = self.acked_at[p];
            if at >= sent {
                break;
            }
            let (_, offset, appended) = &self.acked_appends[p];
            let start = *offset as usize;
            if data.get(start..start + appended.len()) != Some(&appended[..]) {
                return Err((
                    "read_linearizable",
                    format!(
                        "read of {file:?} sent at {} ms returned {} bytes without {appended:?} \
                         (at {offset}, acknowledged at {} ms)",
                        sent / 1_000_000,
                        data.len(),
                        at / 1_000_000
                    ),
                ));
            }
        }
        Ok(())
    }

    /// A client was told its append of `data` landed at `offset` in `file`, at true time `at`
    /// (never earlier than the previous acknowledgement recorded).
    pub fn append_acked(&mut self, file: FileName, offset: u64, data: Vec<u8>, at: u64) {
        self.acked_by_file
            .entry(file.clone())
            .or_default()
            .push(self.acked_appends.len());
        self.acked_appends.push((file, offset, data));
        self.acked_at.push(at);
    }

    /// After heal: every acknowledged append is in the node's file exactly once, at its offset.
    pub fn acked_appends_durable(&self, node: &Node) -> Result<(), Broken> {
        let sm = node.state_machine();
        // Every append's data is `<client:seq>`, unique: count each piece of every file once.
        let mut pieces: HashMap<(&FileName, &[u8]), usize> = HashMap::default();
        for (name, file) in sm.files() {
            for piece in file.data.split_inclusive(|b| *b == b'>') {
                *pieces.entry((name, piece)).or_default() += 1;
            }
        }
        for (file, offset, data) in &self.acked_appends {
            let Some(f) = sm.file(file) else {
                return Err((
                    "acked_appends_durable",
                    format!("node {}: {file:?} missing", node.id()),
                ));
            };
            let start = *offset as usize;
            if f.data.get(start..start + data.len()) != Some(&data[..]) {
                return Err((
                    "acked_appends_durable",
                    format!("node {}: {data:?} not at {offset} in {file:?}", node.id()),
                ));
            }
            let count = pieces.get(&(file, &data[..])).copied().unwrap_or(0);
            if count != 1 {
                return Err((
                    "acked_appends_durable",
                    format!("node {}: {data:?} {count} times in {file:?}", node.id()),
                ));
            }
        }
        Ok(())
    }
}
