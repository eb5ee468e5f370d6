//! Client sessions and the dedup cache: the state machine remembers the answer to each recent
//! `(client, seq)`, so a retried request gets its first answer and is never applied twice.

use crate::names::LockName;
use crate::protocol::{Rejection, Reply};
use crate::types::{FencingToken, Seq};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// What the session knows about one of its requests.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Slot {
    /// An acquire queued on this lock; it is answered when granted or cancelled.
    Waiting(LockName),
    /// Answered; a retry gets this answer again.
    Done(Result<Reply, Rejection>),
    /// Not seen yet, though below the watermark: the client named it pending
    /// ([`crate::protocol::ClientRequest::pending`]), so it is applied when it arrives.
    Expected,
}

/// One client's session.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The client has acknowledged every answer below this seq but those with a slot.
    pub acked_below: Seq,
    /// Requests that are waiting, answered or expected and not acknowledged: those at or above
    /// the watermark, and below it those the client named pending (and waiting acquires).
    pub slots: Slots,
    /// Locks this client holds (a handful at most, so a vector beats a set).
    pub held: Vec<LockName>,
    /// Grants of this client an operator revoked, oldest first, so that their later use is
    /// refused as revoked rather than as merely not held. At most [`Session::MAX_REVOKED`]; a
    /// lock's entry goes when the client is granted that lock again.
    pub revoked: Vec<(LockName, FencingToken)>,
}

impl Session {
    /// Most revoked grants a session remembers (the oldest is forgotten first).
    pub const MAX_REVOKED: usize = 8;

    /// Records that an operator revoked this client's grant `token` of `lock`.
    pub fn record_revoked(&mut self, lock: &LockName, token: FencingToken) {
        self.forget_revoked(lock);
        if self.revoked.len() >= Self::MAX_REVOKED {
            self.revoked.remove(0);
        }
        self.revoked.push((lock.clone(), token));
    }

    /// Forgets a revocation of `lock` (the client was granted it again).
    pub fn forget_revoked(&mut self, lock: &LockName) {
        self.revoked.retain(|(l, _)| l != lock);
    }

    /// Whether the grant `token` of `lock` was revoked.
    pub fn was_revoked(&self, lock: &LockName, token: FencingToken) -> bool {
        self.revoked.iter().any(|(l, t)| l == lock && *t == token)
    }

    /// Takes a request's acknowledgement: every seq below `acked_below` but those in `pending`
    /// (sorted). The acknowledged set only grows, so a request that arrives late, or a copy of
    /// one, cannot take an acknowledgement back: a seq below the old watermark without a slot
    /// stays acknowledged, and one with a slot loses it once any request acknowledges it.
    /// Pending seqs the watermark now passes without a slot become [`Slot::Expected`], so that
    /// they are applied when they arrive. Waiting slots stay whatever the client says: a queued
    /// acquire must still be answered or cancelled cleanly.
    pub fn acknowledge(&mut self, acked_below: Seq, pending: &[Seq]) {
        let was = self.acked_below;
        for seq in pending {
            if (was..acked_below).contains(seq) && !self.slots.contains_key(seq) {
                self.slots.insert(*seq, Slot::Expected);
            }
        }
        self.acked_below = was.max(acked_below);
        self.slots.prune_acknowledged(acked_below, pending);
    }

    /// Whether the client acknowledged `seq`'s answer: the service forgot it, and refuses the
    /// seq as [`Rejection::SeqBelowWatermark`].
    pub fn is_acked(&self, seq: Seq) -> bool {
        seq < self.acked_below && !self.slots.contains_key(&seq)
    }

    /// Records that this client now holds `lock`.
    pub fn add_held(&mut self, lock: &LockName) {
        if !self.held.contains(lock) {
            // Most sessions hold one lock: room for one, not the four a first push makes.
            self.held.reserve_exact(1);
            self.held.push(lock.clone());
        }
    }

    /// Records that this client no longer holds `lock`.
    pub fn remove_held(&mut self, lock: &LockName) {
        self.held.retain(|l| l != lock);
    }

    /// Whether the session has nothing going on (holds nothing, waits for nothing).
    pub fn is_quiet(&self) -> bool {
        self.held.is_empty() && !self.slots.values().any(|s| matches!(s, Slot::Waiting(_)))
    }
}

/// A session's slots, ordered by seq. Clients number requests in order and acknowledge them in
/// order, so slots are added at the back and dropped from the front: a deque beats a tree here
/// (no node allocation for a session's first answer, no rebalancing per request).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slots(VecDeque<(Seq, Slot)>);

impl Slots {
    fn position(&self, seq: Seq) -> Result<usize, usize> {
        self.0.binary_search_by_key(&seq, |(s, _)| *s)
    }

    /// The slot of `seq`.
    pub fn get(&self, seq: &Seq) -> Option<&Slot> {
        let at = self.position(*seq).ok()?;
        self.0.get(at).map(|(_, slot)| slot)
    }

    /// Whether `seq` has a slot.
    pub fn contains_key(&self, seq: &Seq) -> bool {
        self.position(*seq).is_ok()
    }

    /// Sets the slot of `seq`.
    pub fn insert(&mut self, seq: Seq, slot: Slot) {
        // A session usually has one answer cached at a time (each request acknowledges the
        // last): room for one, not the four a first push makes. Bursts still grow it as usual.
        if self.0.capacity() == 0 {
            self.0.reserve_exact(1);
        }
        if self.0.back().is_none_or(|(last, _)| *last < seq) {
            self.0.push_back((seq, slot));
            return;
        }
        match self.position(seq) {
            Ok(at) => self.0[at].1 = slot,
            Err(at) => self.0.insert(at, (seq, slot)),
        }
    }

    /// Number of slots.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every slot, in seq order.
    pub fn values(&self) -> impl Iterator<Item = &Slot> {
        self.0.iter().map(|(_, slot)| slot)
    }

    /// Drops the answered and expected slots below `below` that are not in `pending`
    /// (sorted); waiting ones stay until they are answered.
    fn prune_acknowledged(&mut self, below: Seq, pending: &[Seq]) {
        let acknowledged = |seq: Seq, slot: &Slot| {
            seq < below && !matches!(slot, Slot::Waiting(_)) && pending.binary_search(&seq).is_err()
        };
        while self
            .0
            .front()
            .is_some_and(|(s, slot)| acknowledged(*s, slot))
        {
            self.0.pop_front();
        }
        if self.0.front().is_some_and(|(s, _)| *s < below) {
            self.0.retain(|(s, slot)| !acknowledged(*s, slot));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Rejection, Reply};

    fn done() -> Slot {
        Slot::Done(Ok(Reply::Released))
    }

    fn waiting() -> Slot {
        Slot::Waiting("l".into())
    }

    fn seqs(slots: &Slots) -> Vec<u64> {
        slots.0.iter().map(|(s, _)| s.0).collect()
    }

    /// Slots stay in seq order whatever order they are set in, and setting one again replaces it.
    #[test]
    fn insert_keeps_seq_order_and_replaces() {
        let mut slots = Slots::default();
        for seq in [3, 5, 4, 1] {
            slots.insert(Seq(seq), waiting());
        }
        assert_eq!(seqs(&slots), [1, 3, 4, 5]);
        slots.insert(Seq(4), done());
        assert_eq!(slots.get(&Seq(4)), Some(&done()));
        assert_eq!(slots.len(), 4);
        assert!(slots.contains_key(&Seq(3)) && !slots.contains_key(&Seq(2)));
    }

    /// A session answered one request at a time, each acknowledging the last, keeps room for
    /// one answer and one held lock, not the four a first push would make.
    #[test]
    fn one_answer_and_one_lock_at_a_time_keep_room_for_one() {
        let mut session = Session::default();
        session.add_held(&"l".into());
        for seq in 1..10 {
            session.acknowledge(Seq(seq), &[]);
            session.slots.insert(Seq(seq), done());
        }
        assert_eq!(seqs(&session.slots), [9]);
        assert_eq!(session.slots.0.capacity(), 1);
        assert_eq!(session.held.capacity(), 1);
        // A burst still grows the cache.
        for seq in 10..14 {
            session.slots.insert(Seq(seq), done());
        }
        assert_eq!(session.slots.len(), 5);
    }

    /// Acknowledging drops answered slots below the watermark but keeps waiting ones (a queued
    /// acquire is answered later, whatever the client acknowledged).
    #[test]
    fn the_watermark_drops_answers_but_not_waiting_acquires() {
        let mut session = Session::default();
        session.slots.insert(Seq(1), done());
        session.slots.insert(Seq(2), waiting());
        session
            .slots
            .insert(Seq(3), Slot::Done(Err(Rejection::Busy)));
        session.slots.insert(Seq(4), done());
        session.acknowledge(Seq(4), &[]);
        assert_eq!(seqs(&session.slots), [2, 4]);
        assert_eq!(session.acked_below, Seq(4));
        session.acknowledge(Seq(2), &[]);
        assert_eq!(session.acked_below, Seq(4), "the watermark went back");
    }
}
