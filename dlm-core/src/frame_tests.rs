//! The frame budget's checks: the defaults pass, and each limit that sizes a message is refused
//! once that message could outgrow [`MAX_MESSAGE`].

use super::*;
use crate::types::NodeId;

fn config() -> Config {
    Config::single(NodeId(1))
}

/// What validation says of the default configuration with `change` made to it.
fn validate(change: impl FnOnce(&mut Config)) -> Result<(), ConfigError> {
    let mut cfg = config();
    change(&mut cfg);
    cfg.validate()
}

fn too_large(result: Result<(), ConfigError>, named: &str) {
    match result {
        Err(ConfigError::MessageTooLarge { what, bound, max }) => {
            assert!(what.contains(named), "{what} names {named}");
            assert!(bound > max);
            assert_eq!(max, MAX_MESSAGE);
        }
        other => panic!("expected MessageTooLarge naming {named}, got {other:?}"),
    }
}

/// Every bound of the default configuration fits, with room to spare for the defaults to be
/// raised somewhat.
#[test]
fn the_defaults_fit_the_frame() {
    assert_eq!(config().validate(), Ok(()));
    for (what, bound) in bounds(&config()) {
        assert!(bound <= MAX_MESSAGE, "{what}: {bound}");
    }
}

/// A keep-alive lists every held lock: too many locks of long names for one session would
/// make an answer the transport drops.
#[test]
fn held_locks_and_names_are_bounded_together() {
    too_large(
        validate(|c| c.limits.max_locks_per_session = 20_000),
        "keep-alive",
    );
    too_large(validate(|c| c.limits.max_name_len = 512), "keep-alive");
    // Fewer locks make room for longer names.
    assert_eq!(
        validate(|c| {
            c.limits.max_name_len = 512;
            c.limits.max_locks_per_session = 5_000;
        }),
        Ok(())
    );
    let zero = validate(|c| c.limits.max_locks_per_session = 0);
    assert!(matches!(zero, Err(ConfigError::Invalid(_))), "{zero:?}");
}

/// A read answers up to `max_read` bytes in one message; an append carries `max_append` in
/// one request and one log entry, which an AppendEntries carries whole.
#[test]
fn reads_and_appends_fit_the_frame() {
    too_large(validate(|c| c.limits.max_read = MAX_MESSAGE), "read");
    too_large(
        validate(|c| c.limits.max_append = MAX_MESSAGE),
        "AppendEntries",
    );
    assert_eq!(validate(|c| c.limits.max_append = 3 << 20), Ok(()));
}

/// The batch budget and the snapshot chunk size their messages.
#[test]
fn batches_and_snapshot_chunks_fit_the_frame() {
    too_large(
        validate(|c| c.max_batch_bytes = MAX_MESSAGE),
        "AppendEntries",
    );
    too_large(validate(|c| c.snapshot_chunk = MAX_MESSAGE), "snapshot");
}

/// A watch page may carry a lock's state, which lists every holder: one per session at most.
#[test]
fn sessions_bound_a_watch_page() {
    too_large(validate(|c| c.limits.max_sessions = 400_000), "watch");
}

/// The bound of a watch page covers its widest encoding: a page of events that each
/// proclaim the largest value, and a state with as many holders as there are sessions.
#[test]
fn a_watch_page_bound_covers_its_encoding() {
    use crate::protocol::{
        EventPosition, HolderView, LockChange, LockEvent, LockView, Mode, WatchPage,
    };
    use crate::types::{ClientTag, FencingToken, LogIndex};
    let at = EventPosition {
        index: LogIndex(u64::MAX),
        n: u32::MAX,
    };
    let proclaimed = LockEvent {
        at,
        change: LockChange::Proclaimed {
            token: FencingToken(u64::MAX),
            value: vec![7; MAX_VALUE],
        },
    };
    let events = WatchPage {
        state: None,
        state_at: at,
        compacted: true,
        events: vec![proclaimed; MAX_EVENTS_PER_PAGE],
        resume: at,
    };
    let limits = Limits {
        max_sessions: 1_000,
        ..Limits::default()
    };
    let holder = HolderView {
        client: ClientTag(u32::MAX),
        token: FencingToken(u64::MAX),
        mode: Mode::Permit { permits: u32::MAX },
    };
    let state = WatchPage {
        state: Some(LockView {
            holders: vec![holder; limits.max_sessions],
            waiting: u32::MAX,
            proclaimed: Some((FencingToken(u64::MAX), vec![7; MAX_VALUE])),
        }),
        events: Vec::new(),
        ..events.clone()
    };
    let encoded = |page: &WatchPage| postcard::to_allocvec(page).map_or(usize::MAX, |b| b.len());
    assert!(encoded(&events) <= watch_page(&limits) + MESSAGE_OVERHEAD);
    assert!(encoded(&state) <= watch_page(&limits) + MESSAGE_OVERHEAD);
}
