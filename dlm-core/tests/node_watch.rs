//! The leader's handling of watches and tails, effect by effect: answered at once when there is
//! something to report, held until an applied entry changes the lock or grows the file, answered
//! with nothing new when the wait passes, bounded in number, answered `NotLeader` when the leader
//! steps down, and never through the log.

mod common;

use common::{
    acquire, any_persist, append, drain_unsynced, leader_of_three, peer, replies, req, Harness,
};
use dlm_core::message::PeerBody;
use dlm_core::*;
use std::time::Duration;

const WAIT: Duration = Duration::from_millis(500);

fn watch(client: u128, seq: u64, lock: &str, from: WatchFrom) -> ClientRequest {
    req(
        client,
        seq,
        Op::WatchLock {
            lock: lock.into(),
            from,
            wait: WAIT,
        },
    )
}

fn tail(client: u128, seq: u64, file: &str, offset: u64) -> ClientRequest {
    req(
        client,
        seq,
        Op::TailFile {
            file: file.into(),
            offset,
            wait: WAIT,
        },
    )
}

fn page(result: &Result<Reply, Rejection>) -> WatchPage {
    match result {
        Ok(Reply::Watched(page)) => page.clone(),
        other => panic!("expected a watch page, got {other:?}"),
    }
}

/// A leader whose one client (1) holds nothing yet; returns it and the position after its
/// first entries.
fn leader() -> (Harness, EventPosition) {
    let mut h = Harness::leader(Config::single(NodeId(1)));
    let now = h.request(9, watch(9, 1, "job", WatchFrom::Now));
    let start = page(&replies(&now)[0].1);
    assert!(!any_persist(&now), "a watch is not a log entry");
    (h, start.resume)
}

#[test]
fn a_watch_from_now_gets_the_state_and_one_with_nothing_new_waits_for_an_event() {
    let (mut h, start) = leader();
    // Nothing after `start`: held, not answered, nothing persisted.
    let held = h.request(2, watch(2, 1, "job", WatchFrom::After(start)));
    assert!(replies(&held).is_empty() && !any_persist(&held));
    // A grant of another lock does not wake it; a grant of this one does, in the same pass
    // that answers the acquire.
    let other = h.request(1, req(1, 1, acquire("other", None)));
    assert_eq!(replies(&other).len(), 1, "only the acquire's answer");
    let granted = h.request(1, req(1, 2, acquire("job", None)));
    let answers = replies(&granted);
    assert_eq!(answers.len(), 2, "{answers:?}");
    let woken = answers
        .iter()
        .find(|(conn, _)| *conn == 2)
        .expect("the watch");
    let woken = page(&woken.1);
    assert_eq!(
        woken
            .events
            .iter()
            .map(|e| e.change.clone())
            .collect::<Vec<_>>(),
        vec![LockChange::Granted {
            client: ClientId(1).tag(),
            token: FencingToken(2),
            mode: Mode::Exclusive
        }]
    );
    assert!(woken.state.is_none() && woken.resume > start);
}

#[test]
fn a_waiting_watch_is_answered_with_nothing_new_when_its_wait_passes() {
    let (mut h, start) = leader();
    h.request(2, watch(2, 1, "job", WatchFrom::After(start)));
    let before = h.advance(WAIT - Duration::from_millis(1));
    assert!(replies(&before).is_empty());
    let after = h.advance(Duration::from_millis(1));
    let answers = replies(&after);
    assert_eq!(answers.len(), 1);
    let empty = page(&answers[0].1);
    assert!(empty.events.is_empty() && empty.state.is_none());
    assert_eq!(empty.resume, start);
}

#[test]
fn a_tail_waits_for_the_file_to_grow_past_its_offset() {
    let (mut h, _) = leader();
    h.request(1, req(1, 1, acquire("job", None)));
    h.request(1, req(1, 2, append("job", 1, "f", b"ab")));
    let now = h.request(3, tail(3, 1, "f", 0));
    assert_eq!(
        replies(&now),
        vec![(
            3,
            Ok(Reply::Data {
                data: b"ab".to_vec(),
                len: 2
            })
        )]
    );
    let held = h.request(3, tail(3, 2, "f", 2));
    assert!(replies(&held).is_empty());
    let grown = h.request(1, req(1, 3, append("job", 1, "f", b"cd")));
    let tailed: Vec<_> = replies(&grown)
        .into_iter()
        .filter(|(conn, _)| *conn == 3)
        .collect();
    assert_eq!(
        tailed,
        vec![(
            3,
            Ok(Reply::Data {
                data: b"cd".to_vec(),
                len: 4
            })
        )]
    );
    // A tail of a file that does not exist waits too, and then says it is empty.
    h.request(3, tail(3, 3, "missing", 0));
    let expired = h.advance(WAIT);
    assert_eq!(
        replies(&expired),
        vec![(
            3,
            Ok(Reply::Data {
                data: Vec::new(),
                len: 0
            })
        )]
    );
}

#[test]
fn the_leader_holds_at_most_max_watches_and_releases_wake_them_in_order() {
    let mut cfg = Config::single(NodeId(1));
    cfg.max_watches = 2;
    let mut h = Harness::leader(cfg);
    let start = page(&replies(&h.request(9, watch(9, 1, "job", WatchFrom::Now)))[0].1).resume;
    h.request(2, watch(2, 1, "job", WatchFrom::After(start)));
    h.request(3, watch(3, 1, "job", WatchFrom::After(start)));
    let refused = h.request(4, watch(4, 1, "job", WatchFrom::After(start)));
    assert_eq!(
        replies(&refused),
        vec![(4, Err(Rejection::TooManyWatches { max: 2 }))]
    );
    let granted = h.request(1, req(1, 1, acquire("job", None)));
    let conns: Vec<u64> = replies(&granted).iter().map(|(c, _)| *c).collect();
    assert_eq!(conns.len(), 3, "the acquire and both watches: {conns:?}");
    // Room again.
    let again = h.request(4, watch(4, 2, "job", WatchFrom::After(start)));
    assert_eq!(
        replies(&again).len(),
        1,
        "events after start: answered at once"
    );
}

/// Copies of one poll (the client sends each request on several connections, and by datagram,
/// while the path loses packets) wait as one: they take one place among `max_watches`, and the
/// poll is answered once.
#[test]
fn copies_of_one_waiting_watch_take_one_place() {
    let mut cfg = Config::single(NodeId(1));
    cfg.max_watches = 2;
    let mut h = Harness::leader(cfg);
    let start = page(&replies(&h.request(9, watch(9, 1, "job", WatchFrom::Now)))[0].1).resume;
    for conn in [2, 20, 21] {
        let copy = h.request(conn, watch(2, 1, "job", WatchFrom::After(start)));
        assert!(
            replies(&copy).is_empty(),
            "a copy waits or is dropped, never refused"
        );
    }
    let other = h.request(3, watch(3, 1, "job", WatchFrom::After(start)));
    assert!(replies(&other).is_empty(), "room for a second watcher");
    let granted = h.request(1, req(1, 1, acquire("job", None)));
    let mut answered: Vec<u64> = replies(&granted).iter().map(|(c, _)| *c).collect();
    answered.sort_unstable();
    assert_eq!(answered, vec![1, 2, 3], "the acquire, and each poll once");
    // A retry of an answered poll (its answer lost) is served again, not taken for a copy:
    // answered at once here, and, once nothing is new, held and answered when its wait passes.
    let retry = h.request(2, watch(2, 1, "job", WatchFrom::After(start)));
    assert_eq!(replies(&retry).len(), 1);
    let resume = page(&replies(&retry)[0].1).resume;
    for _ in 0..2 {
        let waiting = h.request(2, watch(2, 2, "job", WatchFrom::After(resume)));
        assert!(replies(&waiting).is_empty());
        let due = h.advance(WAIT);
        assert_eq!(replies(&due).len(), 1, "answered when its wait passes");
    }
}

#[test]
fn a_leader_that_steps_down_sends_its_waiting_watches_elsewhere() {
    let (mut node, now) = leader_of_three();
    let from = WatchFrom::After(EventPosition::end_of(LogIndex(0)));
    node.handle(
        now,
        Input::Client {
            conn: ConnId(2),
            request: watch(2, 1, "job", from),
        },
    );
    assert!(replies(&drain_unsynced(&mut node)).is_empty());
    let newer = PeerBody::VoteResponse {
        pre: false,
        granted: false,
    };
    node.handle(now, peer(2, 2, newer));
    assert!(!node.is_leader());
    assert_eq!(
        replies(&drain_unsynced(&mut node)),
        vec![(2, Err(Rejection::NotLeader { hint: None }))]
    );
}

#[test]
fn a_watch_refused_by_a_follower_names_no_one_and_the_request_is_checked() {
    let mut h = Harness::fresh(Config::new(NodeId(1), [NodeId(1), NodeId(2), NodeId(3)]));
    let at_follower = h.request(2, watch(2, 1, "job", WatchFrom::Now));
    assert_eq!(
        replies(&at_follower),
        vec![(2, Err(Rejection::NotLeader { hint: None }))]
    );
    let (mut h, _) = leader();
    let long = "x".repeat(1000);
    let bad = h.request(2, watch(2, 1, &long, WatchFrom::Now));
    assert!(matches!(replies(&bad)[0].1, Err(Rejection::BadName { .. })));
}

#[test]
fn each_waiting_watch_runs_out_at_its_own_deadline_even_when_the_tick_comes_late() {
    let (mut h, start) = leader();
    h.request(2, watch(2, 1, "job", WatchFrom::After(start)));
    h.advance(Duration::from_millis(100));
    h.request(3, watch(3, 1, "job", WatchFrom::After(start)));
    // At the first one's deadline, only the first is answered.
    let first = h.advance(WAIT - Duration::from_millis(100));
    let conns: Vec<u64> = replies(&first).iter().map(|(c, _)| *c).collect();
    assert_eq!(conns, vec![2]);
    // A driver that ticks late (a busy runtime) still gets the overdue one answered.
    let late = h.now + Duration::from_secs(5);
    h.now = late;
    h.node.handle(late, Input::Tick);
    let conns: Vec<u64> = replies(&h.drain()).iter().map(|(c, _)| *c).collect();
    assert_eq!(conns, vec![3]);
}
