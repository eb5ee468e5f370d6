//! Watches against an oracle: the checker applies the committed log to a state machine of its
//! own, derives every event of it without a bound, and checks that
//! - `watch_exactly_once`: every answer to a watch from a position holds exactly the events
//!   of its lock after that position and up to its resume point, in order (so a watcher that
//!   goes on from each resume point sees every committed event of its lock once), whichever
//!   leader answered and however often the request was retried; a state in place of events
//!   (a watch from now, or a compacted one) is the lock's state at its position;
//! - `events_explain_state`: replaying a lock's events gives its holders in the state
//!   machine after every entry, so no change goes unreported.

use super::{Broken, Checker};
use crate::names::LockName;
use crate::node::events::{view, EventHistory};
use crate::protocol::{LockChange, LockView, WatchFrom, WatchPage};
use crate::state_machine::{Rules, StateMachine};
use crate::types::{FencingToken, LogIndex};
use rustc_hash::FxHashMap as HashMap;
use std::collections::BTreeSet;

/// The checker's own replay of the committed log.
#[derive(Debug)]
pub struct WatchOracle {
    sm: StateMachine,
    rules: Rules,
    history: EventHistory,
    applied: LogIndex,
    /// Per lock: its view after each entry that changed it.
    views: HashMap<LockName, Vec<(LogIndex, LockView)>>,
    /// Per lock: the grants its events say are current.
    replayed: HashMap<LockName, BTreeSet<FencingToken>>,
    /// Answers checked, events in them, compacted answers.
    checked: (u64, u64, u64),
    /// Answers that reach past the entries the checker has seen committed: checked once it
    /// has (an entry compacted away on every node before the checker saw it leaves a gap that
    /// is filled only if some node shows it later; answers behind such a gap stay unchecked
    /// and are counted as such).
    pending: Vec<(LockName, WatchFrom, WatchPage)>,
}

impl WatchOracle {
    /// An oracle applying with `rules` (the cluster's).
    pub fn new(rules: Rules) -> WatchOracle {
        WatchOracle {
            sm: StateMachine::new(),
            rules,
            history: EventHistory::new(LogIndex(0), usize::MAX),
            applied: LogIndex(0),
            views: HashMap::default(),
            replayed: HashMap::default(),
            checked: (0, 0, 0),
            pending: Vec::new(),
        }
    }

    /// The lock's view at `index`.
    fn view_at(&self, lock: &LockName, index: LogIndex) -> LockView {
        let Some(views) = self.views.get(lock) else {
            return LockView::default();
        };
        let at = views.partition_point(|(i, _)| *i <= index);
        at.checked_sub(1)
            .map_or_else(LockView::default, |i| views[i].1.clone())
    }
}

impl Checker {
    /// Watch answers checked, the events they carried, how many were compacted, and how many
    /// could not be checked (past a gap in what the checker saw committed).
    pub fn watches_checked(&self) -> (u64, u64, u64, u64) {
        self.watch_oracle.as_ref().map_or((0, 0, 0, 0), |o| {
            let (answers, events, compacted) = o.checked;
            (answers, events, compacted, o.pending.len() as u64)
        })
    }

    /// Applies the committed entries the oracle has not seen yet, checking that each one's
    /// events explain the state it leaves.
    fn advance_oracle(&mut self) -> Result<(), Broken> {
        let Some(oracle) = self.watch_oracle.as_mut() else {
            return Ok(());
        };
        while (oracle.applied.get() as usize) < self.committed.len() {
            let index = oracle.applied.next();
            let command = &self.committed[oracle.applied.get() as usize].command;
            let touched = oracle.history.before(command, &oracle.sm);
            oracle.sm.apply(command, &oracle.rules, &mut Vec::new());
            oracle.applied = index;
            let changed = oracle.history.record(index, command, touched, &oracle.sm);
            for lock in &changed {
                let now = view(&oracle.sm, lock);
                oracle
                    .views
                    .entry(lock.clone())
                    .or_default()
                    .push((index, now));
            }
            let events: Vec<_> = oracle
                .history
                .all()
                .rev()
                .take_while(|(_, e)| e.at.index == index)
                .cloned()
                .collect();
            for (lock, event) in events.into_iter().rev() {
                let tokens = oracle.replayed.entry(lock).or_default();
                match event.change {
                    LockChange::Granted { token, .. } => {
                        tokens.insert(token);
                    }
                    LockChange::Released { token }
                    | LockChange::Expired { token }
                    | LockChange::Revoked { token } => {
                        tokens.remove(&token);
                    }
                    LockChange::Proclaimed { .. } | LockChange::Queue { .. } => {}
                }
            }
            let mut locks: BTreeSet<&LockName> = oracle.replayed.keys().collect();
            locks.extend(oracle.sm.locks().map(|(l, _)| l));
            for lock in locks {
                let held: BTreeSet<FencingToken> = oracle
                    .sm
                    .lock(lock)
                    .map(|s| s.holders.iter().map(|h| h.token).collect())
                    .unwrap_or_default();
                let replayed = oracle.replayed.get(lock).cloned().unwrap_or_default();
                if held != replayed {
                    return Err((
                        "events_explain_state",
                        format!(
                            "after entry {index}, {lock:?} is held by {held:?} but its events \
                             say {replayed:?}"
                        ),
                    ));
                }
            }
            oracle.replayed.retain(|_, tokens| !tokens.is_empty());
        }
        Ok(())
    }

    /// A watch of `lock` from `from` was answered `page`: checked now, or once the checker
    /// has seen every entry the answer reaches.
    pub fn watch_answered(
        &mut self,
        lock: &LockName,
        from: WatchFrom,
        page: &WatchPage,
    ) -> Result<(), Broken> {
        self.advance_oracle()?;
        let Some(oracle) = self.watch_oracle.as_mut() else {
            return Ok(());
        };
        oracle.pending.push((lock.clone(), from, page.clone()));
        let applied = oracle.applied;
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut oracle.pending)
            .into_iter()
            .partition(|(_, _, p)| p.resume.index <= applied);
        oracle.pending = waiting;
        for (lock, from, page) in ready {
            self.check_watch(&lock, from, &page)?;
        }
        Ok(())
    }

    /// Checks one answer against the oracle, which has applied every entry it reaches.
    fn check_watch(
        &mut self,
        lock: &LockName,
        from: WatchFrom,
        page: &WatchPage,
    ) -> Result<(), Broken> {
        let Some(oracle) = self.watch_oracle.as_ref() else {
            return Ok(());
        };
        let broken = |what: String| Err(("watch_exactly_once", what));
        let after = match (&page.state, from) {
            (Some(state), _) => {
                if page.compacted == matches!(from, WatchFrom::Now) {
                    return broken(format!(
                        "a watch of {lock:?} from {from:?} was answered with a state marked \
                         compacted={}",
                        page.compacted
                    ));
                }
                if let WatchFrom::After(position) = from {
                    if page.state_at < position {
                        return broken(format!(
                            "a compacted answer to {lock:?} from {position:?} went back to \
                             {:?}",
                            page.state_at
                        ));
                    }
                }
                let truth = oracle.view_at(lock, page.state_at.index);
                if *state != truth {
                    return broken(format!(
                        "{lock:?} at {:?} was reported as {state:?}, but was {truth:?}",
                        page.state_at
                    ));
                }
                page.state_at
            }
            (None, WatchFrom::After(position)) => position,
            (None, WatchFrom::Now) => {
                return broken(format!("a watch of {lock:?} from now got no state"));
            }
        };
        if page.resume < after {
            return broken(format!(
                "a watch of {lock:?} after {after:?} resumes before it, at {:?}",
                page.resume
            ));
        }
        let expected: Vec<_> = oracle
            .history
            .all()
            .filter(|(l, e)| l == lock && e.at > after && e.at <= page.resume)
            .map(|(_, e)| e.clone())
            .collect();
        if page.events != expected {
            return broken(format!(
                "a watch of {lock:?} after {after:?} up to {:?} got {:?}, but the committed \
                 events are {expected:?}",
                page.resume, page.events
            ));
        }
        if let Some(oracle) = self.watch_oracle.as_mut() {
            oracle.checked.0 += 1;
            oracle.checked.1 += page.events.len() as u64;
            oracle.checked.2 += u64::from(page.compacted);
        }
        Ok(())
    }
}
