//! The frame budget: the largest encoded message (postcard) a node builds or a client sends,
//! whatever clients ask within the configured [`Limits`].
//!
//! A transport carries each message whole, in one frame, and one that cannot is lost for good:
//! a retry builds the same message again. So every message must be bounded, and the bound must
//! fit the transports' frame (the TCP transport's default frame is [`MAX_MESSAGE`]).
//! [`Config::validate`] checks the bounds below against it, so a configuration that could make
//! a message too large is refused when the node starts, not when the message is dropped:
//!
//! - an AppendEntries: its entries add up (by [`crate::log`]'s upper bound of each entry) to
//!   at most `max_batch_bytes`, or are one entry, whose largest is an append of `max_append`
//!   bytes or a proclaim of [`MAX_VALUE`] bytes with names of `max_name_len` bytes;
//! - a snapshot chunk of `snapshot_chunk` bytes;
//! - a read's or a tail's answer of `max_read` bytes;
//! - a keep-alive's answer, listing up to `max_locks_per_session` held locks and
//!   [`Session::MAX_REVOKED`] revoked ones;
//! - a watch page: [`MAX_EVENTS_PER_PAGE`] events, or a lock's state, whose holders are at
//!   most one per session (`max_sessions`), with a value of at most [`MAX_VALUE`] bytes;
//! - an operator's page of locks or sessions ([`crate::introspection`]): at most
//!   [`MAX_PAGE`] rows of [`MAX_LISTED`] names each, stopped after about [`PAGE_BYTES`].
//!
//! Not bounded here: the membership list (one row per member, set by operators, not clients).

use crate::config::{Config, ConfigError, Limits};
use crate::introspection::{MAX_LISTED, MAX_PAGE, PAGE_BYTES};
use crate::log::wire;
use crate::node::MAX_EVENTS_PER_PAGE;
use crate::protocol::{MAX_PENDING, MAX_VALUE};
use crate::state_machine::Session;

/// The largest message, encoded, that a valid configuration lets the core build or a client
/// send: 4 MiB, the TCP transport's default frame (`dlm_transport_tcp::DEFAULT_MAX_FRAME`).
/// A transport must carry messages of this size.
pub const MAX_MESSAGE: usize = 4 * 1024 * 1024;

/// Room for a message's fields other than its entries, data or lists (ids, terms, positions,
/// tags, lengths), at their widest encoding, with a wide margin.
pub const MESSAGE_OVERHEAD: usize = 1024;

/// The upper bound of each kind of message that a configuration allows, by name, for
/// [`Config::validate`] and for tests.
pub(crate) fn bounds(config: &Config) -> [(&'static str, usize); 6] {
    let l = &config.limits;
    [
        (
            "an AppendEntries (max_batch_bytes, max_append, max_name_len)",
            config.max_batch_bytes.max(largest_entry(l)),
        ),
        (
            "a snapshot chunk (snapshot_chunk)",
            wire::bytes(config.snapshot_chunk),
        ),
        ("a read's answer (max_read)", wire::bytes(l.max_read)),
        (
            "a keep-alive's answer (max_locks_per_session, max_name_len)",
            keep_alive(l),
        ),
        ("a watch page (max_sessions)", watch_page(l)),
        ("an operator's page (max_name_len)", introspection_page(l)),
    ]
    .map(|(what, bound)| (what, bound.saturating_add(MESSAGE_OVERHEAD)))
}

/// Refuses a configuration under which some message could outgrow [`MAX_MESSAGE`].
pub(crate) fn check(config: &Config) -> Result<(), ConfigError> {
    for (what, bound) in bounds(config) {
        if bound > MAX_MESSAGE {
            return Err(ConfigError::MessageTooLarge {
                what,
                bound,
                max: MAX_MESSAGE,
            });
        }
    }
    Ok(())
}

/// A lock or file name of the longest length allowed.
fn name(l: &Limits) -> usize {
    wire::bytes(l.max_name_len)
}

/// The largest log entry a client's request makes, by the log's own upper bound: an append or
/// a proclaim (every other request carries names and fixed fields only).
fn largest_entry(l: &Limits) -> usize {
    // The entry's term, index and tag; the request's client, seq, watermark, pending seqs (at
    // most MAX_PENDING: more are refused at admission) and op tag.
    let pending = wire::LEN + MAX_PENDING * wire::U64;
    let fixed = 2 * wire::U64 + wire::TAG + wire::U128 + 2 * wire::U64 + pending + wire::TAG;
    let append = 2 * name(l) + wire::U64 + wire::bytes(l.max_append);
    let proclaim = name(l) + wire::U64 + wire::bytes(MAX_VALUE);
    fixed.saturating_add(append.max(proclaim))
}

/// A keep-alive's answer: the held locks with their tokens, and the revoked ones.
fn keep_alive(l: &Limits) -> usize {
    let row = name(l) + wire::U64;
    l.max_locks_per_session
        .saturating_add(Session::MAX_REVOKED)
        .saturating_mul(row)
        .saturating_add(2 * wire::LEN)
}

/// A watch page: either up to a page of events, or a lock's state (with no events).
fn watch_page(l: &Limits) -> usize {
    // A position, the change's tag, and its widest fields (a grant's client tag, token and
    // mode).
    let event = wire::U64 + wire::U32 + wire::TAG + wire::U32 + wire::U64 + wire::MODE;
    let events = MAX_EVENTS_PER_PAGE * (event + wire::bytes(MAX_VALUE));
    let holder = wire::U32 + wire::U64 + wire::MODE;
    let state = l
        .max_sessions
        .saturating_mul(holder)
        .saturating_add(wire::U64 + wire::bytes(MAX_VALUE));
    events.max(state)
}

/// A page of locks or sessions: its rows' names stop adding up at about [`PAGE_BYTES`] (the
/// last row may take it over by one row's names), and each row has its fixed fields and at
/// most [`MAX_LISTED`] holders and waiters, or held and awaited locks.
fn introspection_page(l: &Limits) -> usize {
    let rows = MAX_PAGE as usize;
    // A lock's row: holders (client, mode, token, lease, lease left), waiters, counts, kind.
    let holder = wire::U128 + wire::MODE + wire::U64 + wire::DURATION + wire::OPTION_DURATION;
    let lock_row = MAX_LISTED * (holder + wire::U128) + 6 * wire::U64 + 4 * wire::LEN;
    // A session's row: names only, besides its id and counts.
    let session_row = 2 * MAX_LISTED * wire::LEN + wire::U128 + 6 * wire::U64;
    let fixed = rows * lock_row.max(session_row) + rows * wire::LEN;
    // The names, and the page's `next` (a name).
    let names = PAGE_BYTES.saturating_add((2 * MAX_LISTED + 1) * name(l));
    fixed.saturating_add(names)
}

#[cfg(test)]
#[path = "frame_tests.rs"]
mod tests;
