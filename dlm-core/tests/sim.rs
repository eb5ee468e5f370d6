#![cfg(feature = "sim")]
//! The deterministic simulator: replay, a sweep of seeds with every fault on, and scenarios named
//! after the properties they exercise.

use dlm_core::sim::{run_checked, Faults, Sim, SimConfig};
use std::time::Duration;

const MS: u64 = 1_000_000;

fn short(seed: u64, nodes: usize) -> SimConfig {
    SimConfig {
        chaos: Duration::from_secs(4),
        heal: Duration::from_secs(12),
        ..SimConfig::new(seed, nodes, 6)
    }
}

fn quiet(seed: u64, nodes: usize) -> Sim {
    let cfg = SimConfig {
        faults: Faults::none(),
        ..SimConfig::new(seed, nodes, 4)
    };
    Sim::new(cfg).unwrap()
}

#[test]
fn same_seed_same_fingerprint() {
    let a = run_checked(short(7, 3)).unwrap();
    let b = run_checked(short(7, 3)).unwrap();
    assert_eq!(a, b);
    let c = run_checked(short(8, 3)).unwrap();
    assert_ne!(a.fingerprint, c.fingerprint);
}

#[test]
fn sweep_three_nodes_all_faults() {
    for seed in 0..48 {
        if let Err(v) = run_checked(short(seed, 3)) {
            panic!("{v}");
        }
    }
}

#[test]
fn sweep_five_nodes_all_faults() {
    for seed in 100..124 {
        if let Err(v) = run_checked(short(seed, 5)) {
            panic!("{v}");
        }
    }
}

/// Membership changes among the faults (start with three voters of five nodes; add, promote,
/// remove, the leader too, crashes right after): no invariant breaks, and the runs did change
/// the membership, the leader's own included.
#[test]
fn sweep_five_nodes_membership_changes() {
    let (mut changes, mut leaders_removed) = (0, 0);
    for seed in 300..324 {
        let mut cfg = short(seed, 5);
        cfg.faults.membership = true;
        match run_checked(cfg) {
            Ok(summary) => {
                changes += summary.reconfigured;
                leaders_removed += summary.leaders_removed;
            }
            Err(v) => panic!("{v}"),
        }
    }
    assert!(changes >= 24, "only {changes} changes committed");
    assert!(leaders_removed > 0, "no leader removed itself");
}

#[test]
fn single_node_all_faults() {
    for seed in 200..204 {
        if let Err(v) = run_checked(short(seed, 1)) {
            panic!("{v}");
        }
    }
}

fn with_faults(seed: u64, nodes: usize, faults: Faults) -> SimConfig {
    SimConfig {
        faults,
        ..short(seed, nodes)
    }
}

#[test]
fn election_safety() {
    // Partitions, pauses and crashes with heavy loss: many elections, never two leaders a term.
    let faults = Faults {
        max_loss: 0.3,
        client_crashes: false,
        ..Faults::default()
    };
    for seed in 300..304 {
        if let Err(v) = run_checked(with_faults(seed, 5, faults.clone())) {
            panic!("{v}");
        }
    }
}

#[test]
fn log_matching() {
    // Crashes that lose unpersisted effects, duplicates and reordering: committed prefixes agree.
    let faults = Faults {
        partitions: false,
        pauses: false,
        ..Faults::default()
    };
    for seed in 400..404 {
        if let Err(v) = run_checked(with_faults(seed, 3, faults.clone())) {
            panic!("{v}");
        }
    }
}

#[test]
fn leader_completeness() {
    // Leaders change under crashes and partitions while snapshots compact the log.
    let faults = Faults {
        reorder: false,
        duplicate: false,
        ..Faults::default()
    };
    for seed in 500..504 {
        let cfg = SimConfig {
            snapshot_every: 16,
            log_retain: 4,
            ..with_faults(seed, 5, faults.clone())
        };
        if let Err(v) = run_checked(cfg) {
            panic!("{v}");
        }
    }
}

#[test]
fn partitioned_old_leader_grants_nothing() {
    let mut sim = quiet(1, 3);
    sim.run_until(2_000 * MS).unwrap();
    let old = sim.leader().unwrap();
    sim.isolate(old);
    // Messages already in flight may still complete what was committed before the cut.
    sim.run_until(2_050 * MS).unwrap();
    let granted = sim.grants_sent(old);
    sim.run_until(6_000 * MS).unwrap();
    assert_eq!(sim.grants_sent(old), granted, "the cut-off leader granted");
    assert!(
        !sim.node(old).unwrap().is_leader(),
        "check-quorum did not depose it"
    );
    let new = sim.leader().unwrap();
    assert_ne!(new, old);
    let before = sim.grants_sent(new);
    sim.run_until(9_000 * MS).unwrap();
    assert!(sim.grants_sent(new) > before, "the new leader grants");
    sim.reconnect();
    sim.run_until(14_000 * MS).unwrap();
}

#[test]
fn snapshot_install() {
    let cfg = SimConfig {
        faults: Faults::none(),
        snapshot_every: 20,
        log_retain: 5,
        ..SimConfig::new(2, 3, 6)
    };
    let mut sim = Sim::new(cfg).unwrap();
    sim.run_until(1_000 * MS).unwrap();
    sim.crash(2);
    let applied_before = sim.node(0).unwrap().applied_index();
    sim.run_until(6_000 * MS).unwrap();
    assert!(sim.node(0).unwrap().applied_index().0 > applied_before.0 + 40);
    sim.restart(2).unwrap();
    sim.run_until(9_000 * MS).unwrap();
    assert!(
        sim.snapshots_installed(2) >= 1,
        "the lagging follower got no snapshot"
    );
    let leader = sim.leader().unwrap();
    let commit = sim.node(leader).unwrap().commit_index();
    let follower = sim.node(2).unwrap();
    assert!(
        follower.applied_index().0 + 20 >= commit.0,
        "follower did not catch up"
    );
}

#[test]
fn lowest_id_preference() {
    let mut sim = quiet(3, 3);
    sim.run_until(3_000 * MS).unwrap();
    assert_eq!(sim.leader(), Some(0));
    sim.crash(0);
    sim.run_until(6_000 * MS).unwrap();
    let other = sim.leader().unwrap();
    assert_ne!(other, 0);
    sim.restart(0).unwrap();
    sim.run_until(12_000 * MS).unwrap();
    assert_eq!(sim.leader(), Some(0), "node 1 did not take leadership back");
    assert!(sim.client_ops() > 0);
}

/// Seed 3 used to stop virtual time: during a leadership transfer the leader reported a lease
/// deadline it would not fire, so the driver woke it at the same instant forever (caught by the
/// `progress` check).
#[test]
fn transfer_does_not_spin() {
    if let Err(v) = run_checked(SimConfig::new(3, 3, 8)) {
        panic!("{v}");
    }
}

/// Every disk slow, so acknowledgements, votes and the leader's own copy wait long for their
/// syncs: a leader that counted its copy before its sync finished would commit entries a crash
/// can take back (leader completeness breaks).
#[test]
fn sweep_three_nodes_slow_background_disks() {
    for seed in 500..524 {
        let cfg = SimConfig {
            disk_latency: Some(Duration::from_millis(20)),
            ..short(seed, 3)
        };
        if let Err(v) = run_checked(cfg) {
            panic!("{v}");
        }
    }
}

/// Node 1 leads on a slow disk while node 3 is cut off, so each commit needs node 2's quick
/// acknowledgement and node 1's own copy. That copy counts only once node 1's sync is done: its
/// commit index never passes what it has synced, and when it crashes in the middle of a sync and
/// node 2 is then cut off, the leader elected from nodes 1 and 3 still has every committed entry.
#[test]
fn leader_counts_its_own_copy_only_once_synced() {
    let mut sim = quiet(5, 3);
    sim.run_until(2_000 * MS).unwrap();
    assert_eq!(sim.leader(), Some(0));
    sim.set_disk_latency(0, Duration::from_millis(50));
    sim.set_disk_latency(1, Duration::from_millis(1));
    sim.cut(0, 2, true);
    let commit_before = sim.node(0).unwrap().commit_index();
    for ms in 2_001..=2_537 {
        sim.run_until(ms * MS).unwrap();
        let leader = sim.node(0).unwrap();
        assert!(
            leader.commit_index() <= leader.durable_index(),
            "at {ms} ms node 1 committed {} with only {} synced",
            leader.commit_index(),
            leader.durable_index()
        );
    }
    assert!(
        sim.node(0).unwrap().commit_index() > commit_before,
        "nothing was committed: the test exercised nothing"
    );
    sim.crash(0);
    sim.reconnect();
    sim.isolate(1);
    sim.restart(0).unwrap();
    sim.run_until(5_000 * MS).unwrap();
    assert!(
        sim.leader().is_some_and(|l| l != 1),
        "nodes 1 and 3 elect no leader"
    );
}

/// A leader told it is about to stop hands over to a caught-up member, which leads one term
/// later well within an election time-out (300 ms); the old leader, still running, follows.
#[test]
fn a_leader_that_hands_over_is_succeeded_without_waiting_for_an_election() {
    let mut sim = quiet(3, 3);
    sim.run_until(3_000 * MS).unwrap();
    assert_eq!(sim.leader(), Some(0));
    let term = sim.node(0).unwrap().term();
    sim.hand_over(0).unwrap();
    // Well inside the 300 ms election time-out an election after a silent leader would wait
    // for: the target first catches up, then campaigns at once (its disk may take 20 ms a sync).
    sim.run_until(3_150 * MS).unwrap();
    let new = sim.leader().expect("no leader 150 ms after the hand-over");
    assert_ne!(new, 0, "the old leader kept leading");
    assert_eq!(sim.node(new).unwrap().term(), term.next());
    assert!(!sim.node(0).unwrap().is_leader());
}

/// A holder left alone with the old leader, which stalls, is deposed, and wakes to the holder's
/// keep-alive before its timers tell it that it has lost its quorum (`Sim::strand`). Answering
/// from memory would extend the holder's lease past the moment the new leader hands the lock on;
/// `clock_honest_leases` must see that. Swept over the moment of the cut.
#[test]
fn a_deposed_leader_hearing_keep_alives_extends_no_lease() {
    let mut stranded = 0;
    for start in 0..24u64 {
        let mut sim = quiet(11, 3);
        sim.run_until(2_000 * MS + start * 23 * MS).unwrap();
        let Some(holder) = (0..4).find(|c| sim.holding(*c).is_some()) else {
            continue;
        };
        if !sim.strand(holder) {
            continue;
        }
        stranded += 1;
        let end = sim.now() + 4_000 * MS;
        if let Err(v) = sim.run_until(end) {
            panic!("cut at {start}: {v}");
        }
        sim.reconnect();
        sim.run_until(end + 3_000 * MS).unwrap();
    }
    assert!(
        stranded >= 18,
        "only {stranded} runs had a holder to strand"
    );
}

#[test]
fn operators_revoke_and_the_fence_holds() {
    let mut revoked = 0;
    for seed in 300..306 {
        match run_checked(short(seed, 3)) {
            Ok(summary) => revoked += summary.revoked,
            Err(v) => panic!("{v}"),
        }
    }
    // The clients' revokes took grants: the fencing and lease checks had revokes to judge.
    assert!(revoked > 0);
}
