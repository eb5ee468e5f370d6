//! Pages of the lock table and the sessions for operators ([`crate::introspection`]).
//!
//! A page scans the whole table once and keeps the `limit` smallest names after the cursor in a
//! bounded heap: O(n log limit) per page and no index to keep up on the hot path, which suits a
//! tool run by hand. Times (lease left, idle) are the leader's volatile state, so the node passes
//! them in.

use super::{Slot, StateMachine};
use crate::introspection::{
    HolderInfo, LockInfo, LocksPage, SessionInfo, SessionsPage, MAX_LISTED, MAX_PAGE, PAGE_BYTES,
};
use crate::names::LockName;
use crate::types::{ClientId, FencingToken};
use std::collections::BinaryHeap;
use std::time::Duration;

/// Bytes a row costs besides its names, for the page's size budget.
const ROW_OVERHEAD: usize = 64;

impl StateMachine {
    /// The locks whose names start with `prefix`, in name order after `after`, at most `limit`
    /// (see [`crate::Op::Locks`]). `lease_left` tells how long a grant's lease has left.
    pub fn locks_page(
        &self,
        prefix: &str,
        after: Option<&LockName>,
        limit: u32,
        lease_left: impl Fn(&LockName, FencingToken) -> Option<Duration>,
    ) -> LocksPage {
        let matching = self
            .locks
            .keys()
            .filter(|name| name.as_str().starts_with(prefix) && after.is_none_or(|a| *name > a));
        let (names, more) = smallest(matching, page_rows(limit));
        let mut page = LocksPage::default();
        let mut bytes = 0;
        for name in &names {
            if bytes >= PAGE_BYTES {
                break;
            }
            let Some(state) = self.locks.get(*name) else {
                continue;
            };
            let holders: Vec<HolderInfo> = state
                .holders
                .iter()
                .take(MAX_LISTED)
                .map(|h| HolderInfo {
                    client: h.client,
                    mode: h.mode,
                    token: h.token,
                    lease: h.lease,
                    lease_left: lease_left(name, h.token),
                })
                .collect();
            let waiters: Vec<ClientId> = state
                .waiters
                .iter()
                .take(MAX_LISTED)
                .map(|w| w.client)
                .collect();
            bytes += ROW_OVERHEAD + name.len() + 16 * waiters.len() + 48 * holders.len();
            page.locks.push(LockInfo {
                lock: (*name).clone(),
                kind: state.kind,
                holders,
                holding: state.holders.len() as u64,
                waiters,
                waiting: state.waiters.len() as u64,
                delayed: state.delayed,
            });
        }
        if more || page.locks.len() < names.len() {
            page.next = page.locks.last().map(|l| l.lock.clone());
        }
        page
    }

    /// The sessions in client id order after `after`, at most `limit` (see
    /// [`crate::Op::Sessions`]). `idle` tells how long since the leader heard from a client.
    pub fn sessions_page(
        &self,
        after: Option<ClientId>,
        limit: u32,
        idle: impl Fn(ClientId) -> Option<Duration>,
    ) -> SessionsPage {
        let matching = self
            .sessions
            .keys()
            .filter(|client| after.is_none_or(|a| **client > a));
        let (clients, more) = smallest(matching, page_rows(limit));
        let mut page = SessionsPage::default();
        let mut bytes = 0;
        for client in &clients {
            if bytes >= PAGE_BYTES {
                break;
            }
            let Some(session) = self.sessions.get(*client) else {
                continue;
            };
            let held: Vec<LockName> = session.held.iter().take(MAX_LISTED).cloned().collect();
            let queued = || {
                session.slots.values().filter_map(|slot| match slot {
                    Slot::Waiting(lock) => Some(lock),
                    Slot::Done(_) | Slot::Expected => None,
                })
            };
            let waiting_for: Vec<LockName> = queued().take(MAX_LISTED).cloned().collect();
            let names: usize = held.iter().chain(&waiting_for).map(LockName::len).sum();
            bytes += ROW_OVERHEAD + names;
            page.sessions.push(SessionInfo {
                client: **client,
                held,
                holding: session.held.len() as u64,
                waiting_for,
                waiting: queued().count() as u64,
                idle: idle(**client),
            });
        }
        if more || page.sessions.len() < clients.len() {
            page.next = page.sessions.last().map(|s| s.client);
        }
        page
    }
}

/// How many rows a page asked for `limit` may have.
fn page_rows(limit: u32) -> usize {
    limit.clamp(1, MAX_PAGE) as usize
}

/// The `n` smallest items in ascending order, and whether there were more.
fn smallest<'a, T: Ord + ?Sized>(
    items: impl Iterator<Item = &'a T>,
    n: usize,
) -> (Vec<&'a T>, bool) {
    let mut heap = BinaryHeap::with_capacity(n);
    let mut more = false;
    for item in items {
        if heap.len() < n {
            heap.push(item);
            continue;
        }
        more = true;
        // Most items of a large table sort after the page: one comparison each, no heap work
        // (a listing runs on the leader's one thread, between its heartbeats).
        if heap.peek().is_some_and(|largest| item < *largest) {
            heap.pop();
            heap.push(item);
        }
    }
    (heap.into_sorted_vec(), more)
}

#[cfg(test)]
mod tests {
    use super::smallest;

    #[test]
    fn smallest_keeps_the_first_n_in_order_and_says_if_there_were_more() {
        let items = [5, 3, 9, 1, 7, 3];
        assert_eq!(smallest(items.iter(), 2), (vec![&1, &3], true));
        assert_eq!(smallest(items.iter(), 3), (vec![&1, &3, &3], true));
        assert_eq!(
            smallest(items.iter(), 6),
            (vec![&1, &3, &3, &5, &7, &9], false)
        );
        assert!(!smallest(items.iter(), 7).1);
        assert_eq!(smallest([2, 2, 2].iter(), 2), (vec![&2, &2], true));
        assert_eq!(smallest(std::iter::empty::<&u32>(), 3), (vec![], false));
    }

    #[test]
    fn smallest_agrees_with_a_full_sort() {
        // A fixed permutation of 0..1000 (multiplication by a unit mod 1000).
        let items: Vec<u32> = (0..1000).map(|i| (i * 37 + 11) % 1000).collect();
        for n in [1, 10, 999, 1000] {
            let (got, more) = smallest(items.iter(), n);
            let want: Vec<u32> = (0..n as u32).collect();
            assert_eq!(got.into_iter().copied().collect::<Vec<_>>(), want);
            assert_eq!(more, n < 1000);
        }
    }
}
