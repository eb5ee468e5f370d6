//! The checks on what clients are told: a fencing token granted once, a retried request never
//! contradicted, and clock-honest leases (no two clients' safe windows on a lock overlap).
//! Apart from the per-node checks, since they run on the simulator's client events.

use super::{Broken, Checker};
use crate::names::LockName;
use crate::protocol::{Mode, Rejection, Reply};
use crate::types::{ClientId, FencingToken, Seq};

/// A client's claim on a lock in true time, for the clock-honest lease check.
#[derive(Clone, Debug)]
pub(super) struct Window {
    client: usize,
    token: FencingToken,
    mode: Mode,
    start: u64,
    end: u64,
}

impl Checker {
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
        // Reads, watches and status are not cached (see `Op::is_cached`): a retried read is
        // answered afresh, which `read_linearizable` checks instead, a retried watch too, which
        // `watch_exactly_once` checks, and a status is news each time.
        if matches!(
            result,
            Err(Rejection::NotLeader { .. } | Rejection::SeqBelowWatermark | Rejection::NoSuchFile)
                | Ok(Reply::Data { .. } | Reply::Status(_) | Reply::Watched(_))
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

    /// Clock-honest leases: client `client` is safe on `lock` in `mode` until `until` (true
    /// time), from `now`. No two clients' safe windows on one lock overlap, unless both are
    /// readers' or both permits of one semaphore (and then no more permits than it has), or an
    /// operator revoked the older of the two grants (see [`Checker::overlap_revoked`]).
    pub fn lease_confirmed(
        &mut self,
        client: usize,
        lock: &LockName,
        (token, mode): (FencingToken, Mode),
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
        let overlapping: Vec<Window> = windows
            .iter()
            .filter(|w| w.client != client && w.end > now)
            .cloned()
            .collect();
        let shares = |other: Mode| match (mode, other) {
            (Mode::Read, Mode::Read) => true,
            (Mode::Permit { permits: a }, Mode::Permit { permits: b }) => a == b,
            _ => false,
        };
        let detail = |other: &Window| {
            format!(
                "{lock:?}: client {client} token {token} ({mode}) safe from {now} while client {} token {} ({}) is safe until {}",
                other.client, other.token, other.mode, other.end
            )
        };
        for other in overlapping.iter().filter(|w| !shares(w.mode)) {
            self.overlap_revoked(lock, other.token, token, detail(other))?;
        }
        if let Mode::Permit { permits } = mode {
            // Permits out beside this one, not counting revoked grants (their holders are told
            // late by design): all of them plus this one must fit.
            let mut sharing: Vec<&Window> = overlapping
                .iter()
                .filter(|w| shares(w.mode) && !self.revoked.contains(&w.token))
                .collect();
            if sharing.len() >= permits as usize {
                sharing.sort_by_key(|w| w.token);
                let oldest = sharing[0];
                let detail = format!("{} beside {} other permits", detail(oldest), sharing.len());
                self.overlap_revoked(lock, oldest.token, token, detail)?;
            }
        }
        let windows = self.windows.entry(lock.clone()).or_default();
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
            mode,
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
}
