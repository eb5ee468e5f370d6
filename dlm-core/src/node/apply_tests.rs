//! Exact-effect tests of routing what an applied entry produced.

use super::*;
use crate::node::leader_timers::LeaderTimers;
use crate::protocol::{ClientResponse, Reply};
use crate::types::{ClientId, ConnId, FencingToken, LogIndex, NodeId, Seq};
use std::collections::BTreeMap;
use std::time::Duration;

const NOW: Time = Time::from_millis(1_000);

fn leader() -> Leader {
    Leader::new(
        BTreeMap::new(),
        LeaderTimers::default(),
        Time::ZERO,
        LogIndex(1),
    )
}

/// Routes `outcomes` on a leader (`Some`) or a follower (`None`) and returns the effects.
fn route(leader: Option<&mut Leader>, outcomes: Vec<Outcome>) -> Vec<Effect> {
    let mut cfg = Config::new(NodeId(1), [NodeId(1)]);
    cfg.lock_delay = Duration::from_millis(70);
    let sm = StateMachine::new();
    let mut out = Output::default();
    let mut router = OutcomeRouter {
        cfg: &cfg,
        now: NOW,
        sm: &sm,
        leader,
        out: &mut out,
    };
    for outcome in outcomes {
        router.route(outcome);
    }
    std::iter::from_fn(|| out.pop()).collect()
}

fn answer(seq: u64) -> ClientResponse {
    ClientResponse {
        client: ClientId(5),
        seq: Seq(seq),
        result: Ok(Reply::Released),
    }
}

fn appended() -> Outcome {
    Outcome::Appended {
        file: "f".into(),
        offset: 3,
        data: b"xy".to_vec(),
    }
}

#[test]
fn every_node_mirrors_appends_and_only_the_leader_answers() {
    let mirrored = Effect::Applied(Applied::Appended {
        file: "f".into(),
        offset: 3,
        data: b"xy".to_vec(),
    });
    let effects = route(None, vec![appended(), Outcome::Reply(answer(1))]);
    assert_eq!(effects, std::slice::from_ref(&mirrored));

    let mut leader = leader();
    leader.waiting.insert((ClientId(5), Seq(1)), ConnId(8));
    let effects = route(
        Some(&mut leader),
        vec![
            Outcome::Reply(answer(1)),
            Outcome::Reply(answer(2)),
            appended(),
        ],
    );
    let replied = Effect::Reply {
        conn: ConnId(8),
        response: answer(1),
    };
    assert_eq!(effects, [replied, mirrored], "seq 2 had nobody waiting");
    assert!(leader.waiting.is_empty());
}

#[test]
fn the_leader_arms_leases_waits_and_delays_from_now() {
    let mut leader = leader();
    let effects = route(
        Some(&mut leader),
        vec![
            Outcome::Granted {
                lock: "a".into(),
                token: FencingToken(7),
                lease: Duration::from_secs(2),
            },
            Outcome::Queued {
                lock: "a".into(),
                client: ClientId(5),
                seq: Seq(3),
                wait: Duration::from_millis(500),
            },
            Outcome::Delayed { lock: "b".into() },
            Outcome::Touched {
                client: ClientId(6),
            },
        ],
    );
    assert!(effects.is_empty());
    let timers = &leader.timers;
    let lease = Some((FencingToken(7), NOW + Duration::from_secs(2)));
    assert_eq!(timers.lease_of(&"a".into()), lease);
    let wait = Some(NOW + Duration::from_millis(500));
    assert_eq!(timers.wait_of(ClientId(5), Seq(3)), wait);
    assert_eq!(
        timers.delay_of(&"b".into()),
        Some(NOW + Duration::from_millis(70))
    );
    assert_eq!(timers.seen(ClientId(6)), Some(NOW));
}

#[test]
fn an_answer_an_ended_grant_or_a_freed_lock_disarms_its_timers() {
    let mut leader = leader();
    leader.timers.arm_wait("a".into(), ClientId(5), Seq(2), NOW);
    leader.timers.arm_lease("a".into(), FencingToken(1), NOW);
    leader.timers.arm_lease("a".into(), FencingToken(2), NOW);
    leader.timers.arm_delay("a".into(), NOW);
    route(
        Some(&mut leader),
        vec![
            Outcome::Reply(answer(2)),
            Outcome::Ended {
                lock: "a".into(),
                token: FencingToken(2),
            },
        ],
    );
    // One grant of a shared lock ended: the other's lease stays.
    assert_eq!(
        leader.timers.lease_of(&"a".into()),
        Some((FencingToken(1), NOW))
    );
    let ended = Outcome::Ended {
        lock: "a".into(),
        token: FencingToken(1),
    };
    route(
        Some(&mut leader),
        vec![ended, Outcome::Freed { lock: "a".into() }],
    );
    assert_eq!(leader.timers.wait_of(ClientId(5), Seq(2)), None);
    assert_eq!(leader.timers.lease_of(&"a".into()), None);
    assert_eq!(leader.timers.delay_of(&"a".into()), None);
}
