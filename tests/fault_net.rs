//! Silent network faults over real TCP between three server processes (this test binary
//! re-executed), with packets dropped by the kernel, so that no RST and no error ever tells
//! anyone: (a) a follower cut for 14.5 s and healed, then 1 s later the other follower cut: the
//! leader and the healed follower must commit again; (b) the leader cut while clients wait on a
//! lock: the waiting clients are granted by the new leader; (c) 20% loss on every packet of
//! every connection: the cluster keeps committing, and afterwards the chaos checks hold (every
//! acknowledged append once at its offset, fencing tokens only grow).
//!
//! How the faults are made (see `examples/support/netfault.rs`): the test thread moves into a
//! private network namespace (`unshare(CLONE_NEWNET)`), where every address is 127.0.0.1 and an
//! nftables table drops packets by connection mark (each node runs under its own group id, so
//! its connections can be told apart). Real kernel drops, rather than a userspace proxy that
//! stops forwarding, so that both TCP stacks behave as on a real network; the namespace and its
//! rules vanish with the processes in it, so nothing outlives the test. It needs Linux and root
//! (it installs `nftables`/`iproute2` with apt-get when `nft`/`ip` are missing) and skips,
//! saying why, otherwise.
//!
//! Only correctness and generous liveness bounds are asserted (a commit within 10 s of the
//! heal, waiters granted within 10 s of the cut, some cycles under loss); the speeds are
//! measured by `examples/failover.rs` and reported in BENCHMARKS.md. About 45 s.

#[path = "../examples/support/mod.rs"]
mod support;

#[path = "../examples/support/chaos/mod.rs"]
mod chaos;

use std::time::Duration;
use support::failover::{self, Lab, LeaderLoss, Waiters};
use support::netfault::NetLab;
use tokio::time::Instant;

/// Runs a server node when re-executed by the cluster below; a no-op test otherwise.
#[test]
fn serve_child() {
    if let Some(served) = support::cluster::serve_if_spawned() {
        served.unwrap();
    }
}

/// Generous: the targets are 1 s median, 2 s max (issue 12), measured by the benchmark.
const LIVENESS: Duration = Duration::from_secs(10);

#[test]
fn silent_faults_over_tcp() {
    if let Err(why) = NetLab::enter() {
        eprintln!("SKIPPED fault_net::silent_faults_over_tcp: {why}");
        return;
    }
    // Built after entering the namespace, on this thread: its workers are inside too.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let node_args = ["--exact", "serve_child", "--nocapture", "--test-threads=1"];
        let mut lab = Lab::start(3, "dlm-fault-net-", &node_args).unwrap();
        let ids = lab.ids();
        lab.settled_leader(&ids, Duration::from_secs(20))
            .await
            .unwrap();

        follower_cut_then_other_follower(&mut lab).await;
        leader_cut_while_clients_wait(&mut lab).await;
        loss_on_every_link(&mut lab).await;
    });
}

/// (a) The first report: with the healed follower's link dead from the long cut, the
/// cluster had no quorum for about 10 s after the other follower was cut.
async fn follower_cut_then_other_follower(lab: &mut Lab) {
    let ids = lab.ids();
    let (leader, _) = lab.settled_leader(&ids, LIVENESS).await.unwrap();
    let followers: Vec<u64> = ids.iter().copied().filter(|id| *id != leader).collect();
    let (a, b) = (followers[0], followers[1]);
    let load = failover::background_load(lab.client(), "a-load".into());
    lab.net.cut(a).unwrap();
    tokio::time::sleep(Duration::from_millis(14_500)).await;
    lab.net.heal(a).unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    lab.net.cut(b).unwrap();
    let cut = Instant::now();
    let took = failover::first_commit(&lab.probe, cut, LIVENESS, "a-probe").await;
    load.abort();
    println!(
        "(a) leader {leader}, {a} cut 14.5 s, healed, 1 s later {b} cut: commit {took:?} after"
    );
    assert!(
        took.is_some(),
        "(a) no commit within {LIVENESS:?} of cutting {b} (leader {leader}, {a} healed 1 s before)"
    );
    let quorum = [leader, a];
    let (now_leader, _) = lab.settled_leader(&quorum, LIVENESS).await.unwrap();
    assert!(quorum.contains(&now_leader));
    lab.net.heal(b).unwrap();
    lab.settled_leader(&ids, LIVENESS).await.unwrap();
}

/// (b) The second report: waiting clients stayed with the cut leader for about 3.6 s.
async fn leader_cut_while_clients_wait(lab: &mut Lab) {
    let clients = Waiters::new(lab, 3);
    let trial = failover::leader_loss(lab, &clients, "b-lock", LeaderLoss::Drop, LIVENESS)
        .await
        .unwrap();
    println!("(b) {trial:?}");
    assert!(trial.elected.is_some(), "(b) no new leader: {trial:?}");
    assert!(
        trial.all_granted.is_some(),
        "(b) not every waiting client was granted within {LIVENESS:?} of the cut: {trial:?}"
    );
    failover::restore(lab, trial.old_leader, LeaderLoss::Drop)
        .await
        .unwrap();
}

/// (c) The third report: 20% loss cut throughput to a few percent, with elections.
async fn loss_on_every_link(lab: &mut Lab) {
    let run = chaos::loss::run(lab, 8, 4, Duration::from_secs(5), 20, 1)
        .await
        .unwrap();
    println!(
        "(c) {} cycles/s without loss, {} with 20% loss ({:.0}%), {} appends acknowledged, violations {:?}",
        run.clean_rate.round(),
        run.lossy_rate.round(),
        run.ratio() * 100.0,
        run.acked_appends,
        run.violations
    );
    assert!(run.violations.is_empty(), "(c) {:?}", run.violations);
    assert!(
        run.probe_ok,
        "(c) the cluster did not serve after the loss stopped"
    );
    assert!(run.clean_cycles > 0, "(c) no cycles without loss");
    assert!(run.lossy_cycles > 0, "(c) no cycle at all under 20% loss");
}
