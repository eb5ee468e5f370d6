//! A 3-node cluster on the in-memory network, under paused tokio time: the loss of the leader, a
//! partitioned leader, lost messages and duplicated messages.
#![cfg(feature = "mem")]

mod support;

use dlm::mem::{Endpoint, LinkFaults, MemClient, MemNetwork};
use dlm::{Client, ClientConfig, ClientError, NodeId, Rejection, Role, Server};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use support::{Harness, LeaderLog, Ledger};

const MEMBERS: [u64; 3] = [1, 2, 3];

struct MemCluster {
    net: MemNetwork,
    servers: BTreeMap<u64, Server>,
}

impl MemCluster {
    async fn start(seed: u64) -> MemCluster {
        let net = MemNetwork::new(seed);
        let servers = support::serve_mem(&net, &MEMBERS).await;
        MemCluster { net, servers }
    }

    /// A client of the nodes `nodes`, tuned by `tweak` after the shared test tuning.
    fn client_of(
        &self,
        nodes: &[u64],
        seed: u64,
        tweak: impl FnOnce(&mut ClientConfig),
    ) -> Client<MemClient> {
        let mut cfg = ClientConfig::new(nodes.iter().copied().map(NodeId));
        cfg.seed = Some(seed);
        support::tune(&mut cfg);
        tweak(&mut cfg);
        Client::new(self.net.client(), cfg)
    }

    /// Checks every file through the leader against its acknowledged appends; returns the lines
    /// read.
    async fn check_files(&self, ledger: &Ledger) -> usize {
        let reader = self.client_of(&MEMBERS, 9, |_| {});
        let mut lines = 0;
        for (file, appends) in ledger.files() {
            let expected = support::expected_content(&file, &appends);
            let content = reader.read(file.as_str()).await.unwrap();
            assert_eq!(
                String::from_utf8_lossy(&content),
                String::from_utf8_lossy(&expected),
                "{file} differs from its acknowledged appends"
            );
            lines += content.iter().filter(|b| **b == b'\n').count();
        }
        lines
    }

    async fn shutdown(self) {
        for server in self.servers.into_values() {
            server.shutdown().await.unwrap();
        }
    }
}

impl Harness for MemCluster {
    type Transport = MemClient;

    fn servers(&mut self) -> &mut BTreeMap<u64, Server> {
        &mut self.servers
    }

    fn client(&self, seed: u64) -> Client<MemClient> {
        self.client_of(&MEMBERS, seed, |_| {})
    }
}

#[tokio::test(start_paused = true)]
async fn mem_cluster_survives_the_loss_of_its_leader() {
    let mut cluster = MemCluster::start(1).await;
    // A little latency, so a cycle takes (virtual) time and the leader dies mid-run.
    cluster.net.set_default_faults(LinkFaults {
        delay: (Duration::from_millis(1), Duration::from_millis(3)),
        ..LinkFaults::NONE
    });
    let (ledger, dead, new_leader) = support::leader_loss(&mut cluster, 6, 2, 20).await;
    assert!(!cluster.servers.contains_key(&dead));
    assert!(cluster.servers.contains_key(&new_leader));
    // The survivors have applied the same commit index (leader_loss waited for it); the
    // leader's files hold every acknowledged append once, in token order.
    assert_eq!(cluster.check_files(&ledger).await, 6 * 20);
    cluster.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn mem_partitioned_leader_grants_nothing() {
    let cluster = MemCluster::start(2).await;
    let log = LeaderLog::default();
    for server in cluster.servers.values() {
        log.watch(server);
    }
    let old = support::wait_until_settled(&cluster.servers, Duration::from_secs(10)).await;
    let old_term = cluster.servers[&old].status().term;
    let others: Vec<u64> = MEMBERS.iter().copied().filter(|id| *id != old).collect();

    // A client that can reach only the old leader, and one of the whole cluster. Only the peer
    // links are cut: the first client's link to the old leader stays up.
    let stranded = cluster.client_of(&[old], 20, |c| c.deadline = Duration::from_secs(2));
    let majority = cluster.client_of(&MEMBERS, 21, |_| {});
    for other in &others {
        cluster
            .net
            .cut_both(Endpoint::Node(NodeId(old)), Endpoint::Node(NodeId(*other)));
    }

    let not_granted = |r: &Result<_, ClientError>| {
        matches!(
            r,
            Err(ClientError::Unavailable(_) | ClientError::Rejected(Rejection::NotLeader { .. }))
        )
    };
    // Sent while it may still think it leads: it cannot commit the grant.
    let early = stranded.try_lock("P").await;
    assert!(
        not_granted(&early),
        "the cut-off leader answered {:?}",
        early.as_ref().map(|g| g.token())
    );

    // Check-quorum makes it step down within an election time-out or so.
    let mut rx = cluster.servers[&old].watch_status();
    tokio::time::timeout(
        Duration::from_secs(5),
        rx.wait_for(|s| s.role != Role::Leader),
    )
    .await
    .expect("the cut-off leader did not step down")
    .unwrap();

    // The majority side elects a leader of its own and grants.
    let mut majority_side: BTreeMap<u64, Server> = BTreeMap::new();
    let mut cluster = cluster;
    for id in &others {
        majority_side.insert(*id, cluster.servers.remove(id).unwrap());
    }
    let (new_leader, new_term) =
        support::wait_for_leader(&majority_side, Duration::from_secs(10)).await;
    assert!(new_term > old_term.get());
    let guard = majority.try_lock("P").await.unwrap();

    let late = stranded.try_lock("P").await;
    assert!(
        not_granted(&late),
        "the deposed leader answered {:?}",
        late.as_ref().map(|g| g.token())
    );
    assert_ne!(cluster.servers[&old].status().role, Role::Leader);

    // Heal: the cluster settles on exactly one leader, and the lock moves on in token order.
    cluster.net.heal_all();
    cluster.servers.append(&mut majority_side);
    let settled = support::wait_until_settled(&cluster.servers, Duration::from_secs(10)).await;
    let leaders: Vec<u64> = cluster
        .servers
        .iter()
        .filter(|(_, s)| s.status().role == Role::Leader)
        .map(|(id, _)| *id)
        .collect();
    assert_eq!(leaders, vec![settled], "exactly one leader after the heal");
    let terms = log.check();
    assert_eq!(terms.get(&new_term), Some(&new_leader));

    let first = guard.token();
    majority.release(guard).await.unwrap();
    let after = cluster.client_of(&MEMBERS, 22, |_| {});
    let next = after.try_lock("P").await.unwrap();
    assert!(next.token() > first, "tokens grow across the partition");
    after.release(next).await.unwrap();
    cluster.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn mem_every_cycle_completes_with_a_fifth_of_messages_dropped() {
    let cluster = MemCluster::start(3).await;
    support::wait_until_settled(&cluster.servers, Duration::from_secs(10)).await;
    cluster.net.set_default_faults(LinkFaults {
        drop: 0.2,
        ..LinkFaults::NONE
    });
    let ledger = Ledger::default();
    let (clients, cycles) = (4, 10);
    let mut tasks = Vec::new();
    for i in 0..clients {
        // A long lease, so a run of lost keep-alives does not cost a lock mid-cycle.
        let client = cluster.client_of(&MEMBERS, 30 + i as u64, |c| {
            c.lease = Duration::from_secs(10);
            c.deadline = Duration::from_secs(30);
        });
        let lock = format!("drop-{}", i % 2);
        tasks.push(tokio::spawn(support::run_cycles(
            client,
            i,
            lock,
            cycles,
            ledger.clone(),
        )));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let stats = cluster.net.stats();
    assert!(stats.dropped > 0, "the network dropped nothing: {stats:?}");
    assert_eq!(ledger.count(), (clients * cycles) as u64);
    cluster.net.heal_all();
    cluster.net.set_default_faults(LinkFaults::NONE);
    assert_eq!(cluster.check_files(&ledger).await, clients * cycles);
    println!(
        "{} cycles completed; network: {} sent, {} dropped",
        ledger.count(),
        stats.sent,
        stats.dropped
    );
    cluster.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn mem_duplicated_messages_never_append_twice() {
    let cluster = MemCluster::start(4).await;
    support::wait_until_settled(&cluster.servers, Duration::from_secs(10)).await;
    cluster.net.set_default_faults(LinkFaults {
        duplicate: 1.0,
        ..LinkFaults::NONE
    });
    let ledger = Ledger::default();
    let (clients, cycles) = (3, 10);
    let mut tasks = Vec::new();
    for i in 0..clients {
        let client = cluster.client_of(&MEMBERS, 40 + i as u64, |_| {});
        tasks.push(tokio::spawn(support::run_cycles(
            client,
            i,
            "dup".to_owned(),
            cycles,
            ledger.clone(),
        )));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let stats = cluster.net.stats();
    assert!(stats.duplicated > 0, "the network duplicated nothing");

    let n = clients * cycles;
    let reader = cluster.client_of(&MEMBERS, 49, |_| {});
    let content = String::from_utf8(reader.read("dup.log").await.unwrap()).unwrap();
    let lines: Vec<&str> = content.lines().collect();
    assert_eq!(lines.len(), n, "{n} appends, {} lines", lines.len());
    let distinct: BTreeSet<&str> = lines.iter().copied().collect();
    assert_eq!(distinct.len(), n, "a line appears twice");
    assert_eq!(cluster.check_files(&ledger).await, n);
    cluster.shutdown().await;
}

/// A leader that is shut down hands leadership over first: a successor leads one term later
/// within a fraction of the election time-out (300 ms, tokio's paused clock), where an election
/// after a silent leader could start only once that time-out had passed. A lock is then granted.
#[tokio::test(start_paused = true)]
async fn mem_shutdown_of_the_leader_hands_leadership_over() {
    let mut cluster = MemCluster::start(4).await;
    cluster.net.set_default_faults(LinkFaults {
        delay: (Duration::from_millis(1), Duration::from_millis(2)),
        ..LinkFaults::NONE
    });
    let old = support::wait_until_settled(&cluster.servers, Duration::from_secs(10)).await;
    let term = cluster.servers[&old].status().term;
    let started = tokio::time::Instant::now();
    let leaving = cluster.servers.remove(&old).unwrap();
    leaving.shutdown().await.unwrap();
    let (new, new_term) = support::wait_for_leader(&cluster.servers, Duration::from_secs(5)).await;
    let took = started.elapsed();
    assert_ne!(new, old);
    assert_eq!(new_term, term.next().get(), "more than one election");
    assert!(
        took < Duration::from_millis(150),
        "the successor took {took:?} of virtual time: no hand-over"
    );
    let client = cluster.client_of(&MEMBERS, 40, |_| {});
    let guard = client.lock("after").await.unwrap();
    client.release(guard).await.unwrap();
    cluster.shutdown().await;
}

/// Reads through the real client go without the log: after a client's first request, reading
/// a file many times adds no log entry on the leader, and every read shows the appends
/// acknowledged before it.
#[tokio::test(start_paused = true)]
async fn mem_reads_see_acknowledged_appends_and_write_no_log_entry() {
    let cluster = MemCluster::start(5).await;
    let leader = support::wait_until_settled(&cluster.servers, Duration::from_secs(10)).await;
    let writer = cluster.client_of(&MEMBERS, 50, |_| {});
    let reader = cluster.client_of(&MEMBERS, 51, |_| {});
    // The reader's first request opens its session through the log.
    assert!(matches!(
        reader.read("f.log").await,
        Err(ClientError::Rejected(Rejection::NoSuchFile))
    ));
    let mut expected = Vec::new();
    for i in 0..5 {
        let guard = writer.lock("w").await.unwrap();
        let line = format!("line {i}\n").into_bytes();
        writer.append(&guard, "f.log", line.clone()).await.unwrap();
        writer.release(guard).await.unwrap();
        expected.extend_from_slice(&line);
        let last_before = cluster.servers[&leader].status().last_index;
        for _ in 0..10 {
            assert_eq!(reader.read("f.log").await.unwrap(), expected);
        }
        assert_eq!(
            cluster.servers[&leader].status().last_index,
            last_before,
            "a read went through the log"
        );
    }
    cluster.shutdown().await;
}
