//! The checks [`Checker::check_node`] runs on one node after every step: election safety, log
//! matching, leader completeness, the same applied sequence everywhere, and the lock state it
//! applied. Apart from the checks on what clients see, which run on events instead.

use super::{Broken, Checker};
use crate::command::Command;
use crate::node::Node;
use crate::protocol::LockKind;
use crate::types::{LogIndex, Term};
use rustc_hash::FxHasher;
use std::hash::{Hash, Hasher};

/// What the checker keeps of a committed entry.
#[derive(Debug)]
pub(super) struct Committed {
    /// The entry's term.
    term: Term,
    /// The entry's command, kept whole so that a divergence is found by comparison, never missed
    /// through a hash collision.
    pub(super) command: Command,
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
            state.newest_token(),
            state.holders.len(),
            state.waiters.len(),
        ))
    });
    files.chain(locks).fold(
        item_hash((sm.last_token(), sm.sessions().count())),
        u64::wrapping_add,
    )
}

impl Checker {
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
                        });
                        self.one_change_at_a_time(i, &entry.command)?;
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
            if state.holders.is_empty() {
                continue;
            }
            let (newest, held) = seen.entry(lock.clone()).or_default();
            for holder in &state.holders {
                if holder.token > node.state_machine().last_token() {
                    return Err(("token_unique", format!("{lock:?} token above the counter")));
                }
                // A grant seen before may still stand; a grant not seen before must be newer
                // than every grant of the lock seen so far.
                if holder.token <= *newest && !held.contains(&holder.token) {
                    return Err((
                        "token_grows_per_lock",
                        format!(
                            "node {} {lock:?}: {} after {}",
                            node.id(),
                            holder.token,
                            newest
                        ),
                    ));
                }
            }
            held.clear();
            held.extend(state.holders.iter().map(|h| h.token));
            *newest = (*newest).max(state.newest_token().unwrap_or_default());
        }
        Ok(())
    }

    /// A lock's holders fit its kind (a writer or an exclusive holder alone, at most `permits`
    /// permits, modes of the lock's kind), its queue's head waits only for a reason (the
    /// holders do not admit it, or the lock is delayed: no lost wake-up), and each session
    /// that believes it holds a lock is one of its holders.
    pub fn holders_consistent(&mut self, node: &Node) -> Result<(), Broken> {
        let sm = node.state_machine();
        for (lock, state) in sm.locks() {
            let exclusive = state.holders.iter().any(|h| h.mode.is_exclusive());
            if exclusive && state.holders.len() > 1 {
                return Err((
                    "one_holder",
                    format!(
                        "node {}: {lock:?} has an exclusive grant beside others: {:?}",
                        node.id(),
                        state.holders
                    ),
                ));
            }
            if let LockKind::Semaphore { permits } = state.kind {
                if state.holders.len() > permits as usize {
                    return Err((
                        "permits_bounded",
                        format!(
                            "node {}: {lock:?} has {} holders of {permits} permits",
                            node.id(),
                            state.holders.len()
                        ),
                    ));
                }
            }
            let modes = state.holders.iter().map(|h| h.mode);
            if let Some(mode) = modes
                .chain(state.waiters.iter().map(|w| w.mode))
                .find(|m| m.kind() != state.kind)
            {
                return Err((
                    "one_kind",
                    format!(
                        "node {}: {lock:?} is {} but has a {mode} grant or waiter",
                        node.id(),
                        state.kind
                    ),
                ));
            }
            if !state.delayed && state.waiters.front().is_some_and(|w| state.admits(w.mode)) {
                return Err((
                    "no_stuck_waiter",
                    format!(
                        "node {}: {lock:?}'s first waiter could be granted",
                        node.id()
                    ),
                ));
            }
        }
        for (client, session) in sm.sessions() {
            for lock in &session.held {
                let holder = sm.lock(lock).and_then(|s| s.holder_of(*client));
                if holder.is_none() {
                    return Err((
                        "one_holder",
                        format!("node {}: {client:?} thinks it holds {lock:?}", node.id()),
                    ));
                }
            }
        }
        Ok(())
    }
}
