//! Revokes in the checks. A revoke takes a lock from a holder that still believes it safe, on
//! purpose: the fence, not the lease, keeps that holder out. So the safe window of a revoked
//! grant may overlap those of later grants of its lock (and only those: against earlier grants it
//! is checked as any other), and in exchange no append under a revoked token may be applied on a
//! node after that node applied the revoke.

use super::{Broken, Checker};
use crate::names::LockName;
use crate::node::Node;
use crate::types::FencingToken;

impl Checker {
    /// Records the revoked grants node `idx` remembers (called when its state moves).
    pub(super) fn revocations_seen(&mut self, idx: usize, node: &Node) {
        for (_, session) in node.state_machine().sessions() {
            for (_, token) in &session.revoked {
                self.revoked_on[idx].insert(*token);
                self.revoked.insert(*token);
            }
        }
    }

    /// An operator's revoke answered that it took grant `token`.
    pub fn note_revoked(&mut self, token: FencingToken) {
        self.revoked.insert(token);
    }

    /// A client sent a revoke of `lock`.
    pub fn note_revoke_sent(&mut self, lock: &LockName) {
        self.revokes_sent.insert(lock.clone());
    }

    /// A holder was told its grant `token` was revoked; true only if some node's state or a
    /// revoke's answer says so.
    pub fn told_revoked(&mut self, token: FencingToken) -> Result<(), Broken> {
        if self.revoked.contains(&token) {
            return Ok(());
        }
        Err((
            "loss_reasons_true",
            format!("a holder was told grant {token} was revoked, which no revoke took"),
        ))
    }

    /// Grants revoked, as seen so far.
    pub fn revoked_grants(&self) -> usize {
        self.revoked.len()
    }

    /// The append under `token` applied on node `idx` came after no revoke of that grant the
    /// node had applied.
    pub(super) fn append_not_revoked(
        &self,
        idx: usize,
        data: &[u8],
        token: FencingToken,
    ) -> Result<(), Broken> {
        if self.revoked_on[idx].contains(&token) {
            return Err((
                "revoked_appends_refused",
                format!(
                    "node {}: {data:?} applied under {token}, after that grant was revoked",
                    idx + 1
                ),
            ));
        }
        Ok(())
    }

    /// The safe windows of grants `one` and `other` of `lock` overlap (`detail` says how). That
    /// is a broken lease unless the older grant was revoked: its holder is then told late, and
    /// the fence keeps it out meanwhile. An overlap with a grant not yet known revoked is set
    /// aside if some client sent a revoke of `lock` (its answer, or the node that applied it,
    /// may not have been seen yet), for [`Checker::overlaps_explained`] to judge at the end.
    pub(super) fn overlap_revoked(
        &mut self,
        lock: &LockName,
        one: FencingToken,
        other: FencingToken,
        detail: String,
    ) -> Result<(), Broken> {
        let older = one.min(other);
        if one != other && self.revoked.contains(&older) {
            return Ok(());
        }
        if one == other || !self.revokes_sent.contains(lock) {
            return Err(("clock_honest_leases", detail));
        }
        self.unexplained_overlaps.entry(older).or_insert(detail);
        Ok(())
    }

    /// At the end of a run: every overlap set aside had its older grant revoked.
    pub fn overlaps_explained(&self) -> Result<(), Broken> {
        let mut unexplained = self
            .unexplained_overlaps
            .iter()
            .filter(|(older, _)| !self.revoked.contains(older));
        match unexplained.next() {
            Some((_, detail)) => Err(("clock_honest_leases", detail.clone())),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
#[path = "revokes_tests.rs"]
mod tests;
