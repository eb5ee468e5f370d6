//! Exact rules of proclaimed values (elections): only the current exclusive holder proclaims,
//! a value is bounded, it is shown only while its grant lasts, and a new grant starts without
//! one.

mod kinds_support;

use dlm_core::*;
use kinds_support::*;

fn proclaim(lock: &str, token: u64, value: &[u8]) -> Op {
    Op::Proclaim {
        lock: lock.into(),
        token: FencingToken(token),
        value: value.to_vec(),
    }
}

fn shown(sm: &StateMachine, lock: &str) -> Option<(u64, Vec<u8>)> {
    sm.proclaimed(&lock.into())
        .map(|(token, value)| (token.0, value.to_vec()))
}

#[test]
fn the_holder_proclaims_and_the_value_lasts_as_long_as_its_grant() {
    let mut sm = StateMachine::new();
    call(&mut sm, 1, 1, acquire("e", Mode::Exclusive, None));
    call(&mut sm, 2, 1, acquire("e", Mode::Exclusive, FOREVER));
    let out = call(&mut sm, 1, 2, proclaim("e", 1, b"10.0.0.1"));
    assert_eq!(out, vec![touched(1), reply(1, 2, Ok(Reply::Proclaimed))]);
    assert_eq!(shown(&sm, "e"), Some((1, b"10.0.0.1".to_vec())));
    // A later proclaim replaces it.
    call(&mut sm, 1, 3, proclaim("e", 1, b"10.0.0.9"));
    assert_eq!(shown(&sm, "e"), Some((1, b"10.0.0.9".to_vec())));
    // The waiter is not the holder: refused, value unchanged.
    let refused = call(&mut sm, 2, 2, proclaim("e", 1, b"usurper"));
    assert_eq!(answer(&refused, 2), Some(Err(Rejection::NotHolder)));
    // The grant ends: the next holder starts with nothing shown.
    call(&mut sm, 1, 4, release("e", 1));
    assert_eq!(holders(&sm, "e"), vec![(2, 2, Mode::Exclusive)]);
    assert_eq!(shown(&sm, "e"), None);
    // The old holder's token is stale now.
    let stale = call(&mut sm, 1, 5, proclaim("e", 1, b"late"));
    assert_eq!(
        answer(&stale, 1),
        Some(Err(Rejection::StaleToken {
            presented: FencingToken(1)
        }))
    );
    assert_eq!(shown(&sm, "e"), None);
}

#[test]
fn only_a_grant_that_excludes_everyone_may_proclaim_a_bounded_value() {
    let mut sm = StateMachine::new();
    call(&mut sm, 1, 1, acquire("rw", Mode::Read, None));
    let reader = call(&mut sm, 1, 2, proclaim("rw", 1, b"x"));
    assert_eq!(answer(&reader, 1), Some(Err(Rejection::NotExclusive)));
    call(&mut sm, 2, 1, acquire("e", Mode::Exclusive, None));
    let big = vec![0; MAX_VALUE + 1];
    let too_large = call(&mut sm, 2, 2, proclaim("e", 2, &big));
    assert_eq!(
        answer(&too_large, 2),
        Some(Err(Rejection::ValueTooLarge { max: MAX_VALUE }))
    );
    let exact = call(&mut sm, 2, 3, proclaim("e", 2, &big[..MAX_VALUE]));
    assert_eq!(answer(&exact, 2), Some(Ok(Reply::Proclaimed)));
    assert_eq!(shown(&sm, "rw"), None);
}
