//! The lease check excuses an overlap only where a revoke took the older grant, and the fence
//! check refuses an append applied after its grant's revoke.

use super::*;
use crate::protocol::Mode;

const T1: FencingToken = FencingToken(1);
const T2: FencingToken = FencingToken(2);

fn lock() -> LockName {
    LockName::from("l")
}

/// Client 0 holds `lock` under T1 until 100; client 1 is then told it holds it under T2 from 50.
fn overlap(checker: &mut Checker) -> Result<(), Broken> {
    checker.lease_confirmed(0, &lock(), (T1, Mode::Exclusive), 0, 100)?;
    checker.lease_confirmed(1, &lock(), (T2, Mode::Exclusive), 50, 150)
}

#[test]
fn an_overlap_with_no_revoke_is_a_broken_lease() {
    let mut checker = Checker::new(3);
    let (name, _) = overlap(&mut checker).unwrap_err();
    assert_eq!(name, "clock_honest_leases");
}

#[test]
fn an_overlap_is_excused_when_the_older_grant_was_revoked() {
    let mut checker = Checker::new(3);
    checker.note_revoke_sent(&lock());
    checker.note_revoked(T1);
    overlap(&mut checker).unwrap();
    checker.overlaps_explained().unwrap();
}

#[test]
fn an_overlap_set_aside_is_explained_by_a_revoke_seen_later() {
    let mut checker = Checker::new(3);
    checker.note_revoke_sent(&lock());
    overlap(&mut checker).unwrap();
    checker.note_revoked(T1);
    checker.overlaps_explained().unwrap();
}

#[test]
fn a_revoke_of_the_newer_grant_excuses_nothing() {
    let mut checker = Checker::new(3);
    checker.note_revoke_sent(&lock());
    overlap(&mut checker).unwrap();
    checker.note_revoked(T2);
    let (name, _) = checker.overlaps_explained().unwrap_err();
    assert_eq!(name, "clock_honest_leases");
}

#[test]
fn a_revoke_of_another_lock_excuses_nothing() {
    let mut checker = Checker::new(3);
    checker.note_revoke_sent(&LockName::from("other"));
    let (name, _) = overlap(&mut checker).unwrap_err();
    assert_eq!(name, "clock_honest_leases");
}

#[test]
fn an_append_applied_after_its_grants_revoke_is_refused_only_on_that_node() {
    let mut checker = Checker::new(3);
    checker.revoked_on[1].insert(T1);
    let (name, _) = checker.append_not_revoked(1, b"x", T1).unwrap_err();
    assert_eq!(name, "revoked_appends_refused");
    checker.append_not_revoked(0, b"x", T1).unwrap();
    checker.append_not_revoked(1, b"x", T2).unwrap();
}

#[test]
fn a_holder_told_of_a_revoke_no_revoke_took_is_a_false_reason() {
    let mut checker = Checker::new(3);
    let (name, _) = checker.told_revoked(T1).unwrap_err();
    assert_eq!(name, "loss_reasons_true");
    checker.note_revoked(T1);
    checker.told_revoked(T1).unwrap();
}
