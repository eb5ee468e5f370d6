//! Helpers for the exact-effect tests of lock kinds (`state_machine_kinds.rs`,
//! `state_machine_semaphores.rs`).
#![allow(dead_code)]

use dlm_core::*;
use std::time::Duration;

pub const LEASE: Duration = Duration::from_secs(1);
pub const FOREVER: Option<Duration> = Some(Duration::MAX);
pub const SEM: Mode = Mode::Permit { permits: 2 };

pub fn rules() -> Rules {
    Rules {
        limits: Limits::default(),
        lock_delay: false,
    }
}

/// Applies a request of `client` (its seq, acknowledging everything before it).
pub fn call(sm: &mut StateMachine, client: u128, seq: u64, op: Op) -> Vec<Outcome> {
    let command = Command::Client(ClientRequest {
        client: ClientId(client),
        seq: Seq(seq),
        acked_below: Seq(1),
        pending: Vec::new(),
        op,
    });
    let mut out = Vec::new();
    sm.apply(&command, &rules(), &mut out);
    out
}

pub fn acquire(lock: &str, mode: Mode, wait: Option<Duration>) -> Op {
    Op::acquire(lock.into(), LEASE, wait, mode)
}

pub fn release(lock: &str, token: u64) -> Op {
    Op::Release {
        lock: lock.into(),
        token: FencingToken(token),
    }
}

pub fn reply(client: u128, seq: u64, result: Result<Reply, Rejection>) -> Outcome {
    Outcome::Reply(ClientResponse {
        client: ClientId(client),
        seq: Seq(seq),
        result,
    })
}

pub fn granted(token: u64) -> Result<Reply, Rejection> {
    Ok(Reply::Granted {
        token: FencingToken(token),
        lease: LEASE,
    })
}

/// The outcomes of a grant from the queue: the lease to arm, then the waiter's answer.
pub fn queue_grant(lock: &str, client: u128, seq: u64, token: u64) -> [Outcome; 2] {
    [
        Outcome::Granted {
            lock: lock.into(),
            token: FencingToken(token),
            lease: LEASE,
        },
        reply(client, seq, granted(token)),
    ]
}

pub fn ended(lock: &str, token: u64) -> Outcome {
    Outcome::Ended {
        lock: lock.into(),
        token: FencingToken(token),
    }
}

pub fn touched(client: u128) -> Outcome {
    Outcome::Touched {
        client: ClientId(client),
    }
}

/// The answer a request got, if any.
pub fn answer(out: &[Outcome], client: u128) -> Option<Result<Reply, Rejection>> {
    out.iter().find_map(|o| match o {
        Outcome::Reply(r) if r.client == ClientId(client) => Some(r.result.clone()),
        _ => None,
    })
}

/// `(client, token, mode)` of each holder of `lock`, oldest first.
pub fn holders(sm: &StateMachine, lock: &str) -> Vec<(u128, u64, Mode)> {
    sm.lock(lock).map_or(Vec::new(), |s| {
        s.holders
            .iter()
            .map(|h| (h.client.0, h.token.0, h.mode))
            .collect()
    })
}

pub fn waiters(sm: &StateMachine, lock: &str) -> Vec<u128> {
    sm.lock(lock).map_or(Vec::new(), |s| {
        s.waiters.iter().map(|w| w.client.0).collect()
    })
}
