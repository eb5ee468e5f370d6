//! Throughput and recovery figures, printed, never asserted. Run with
//! `cargo test --release -p dlm-core --all-features --test runtime_perf -- --ignored --nocapture`.
#![cfg(feature = "tokio")]

mod runtime_support;

use dlm_core::runtime::{
    spawn_server, Client, ClientConfig, FileStorage, MemStorage, ServerOptions, Storage,
};
use dlm_core::*;
use runtime_support::Net;
use std::time::Instant;

#[test]
#[ignore = "measurement; run explicitly with --ignored --nocapture"]
fn committed_commands_per_second_one_node_file_storage_64_clients() {
    let tmp = tempfile::tempdir().unwrap();
    let storage = FileStorage::open(tmp.path()).unwrap();
    throughput("FileStorage", storage, tmp.path());
}

#[test]
#[ignore = "measurement; run explicitly with --ignored --nocapture"]
fn committed_commands_per_second_one_node_mem_storage_64_clients() {
    // The same run without a disk: what the driver, the node and the client cost alone.
    let tmp = tempfile::tempdir().unwrap();
    throughput("MemStorage", MemStorage::new(), tmp.path());
}

fn throughput<S: Storage>(label: &str, storage: S, dir: &std::path::Path) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        const CLIENTS: usize = 64;
        const PER_CLIENT: usize = 1_000;
        let net = Net::new(1);
        let node = spawn_server(
            Config::single(NodeId(1)),
            storage,
            net.node(NodeId(1)),
            ServerOptions {
                files_dir: Some(dir.join("files")),
            },
        )
        .await
        .unwrap();
        let mut clients = Vec::new();
        let mut guards = Vec::new();
        for i in 0..CLIENTS {
            let mut cfg = ClientConfig::new([NodeId(1)]);
            cfg.seed = Some(i as u64 + 1);
            let c = Client::new(net.client(), cfg);
            guards.push(c.lock(format!("lock-{i}")).await.unwrap());
            clients.push(c);
        }
        let commit_before = node.status().borrow().commit;
        let started = Instant::now();
        let mut tasks = Vec::new();
        for (i, (c, g)) in clients.into_iter().zip(guards).enumerate() {
            tasks.push(tokio::spawn(async move {
                for _ in 0..PER_CLIENT {
                    c.append(&g, format!("file-{i}"), vec![7u8; 16])
                        .await
                        .unwrap();
                }
                g
            }));
        }
        for t in tasks {
            drop(t.await.unwrap());
        }
        let elapsed = started.elapsed();
        let commit_after = node.status().borrow().commit;
        let n = CLIENTS * PER_CLIENT;
        println!(
            "(a) {label}: {n} appends by {CLIENTS} clients in {:.3} s: {:.0} committed commands/s \
             (log advanced by {} entries, leader timers included)",
            elapsed.as_secs_f64(),
            n as f64 / elapsed.as_secs_f64(),
            commit_after.get() - commit_before.get(),
        );
        node.shutdown().await.unwrap();
    });
}

#[test]
#[ignore = "measurement; run explicitly with --ignored --nocapture"]
fn recovery_of_a_million_entries() {
    const N: u64 = 1_000_000;
    let tmp = tempfile::tempdir().unwrap();
    let mut s = FileStorage::open(tmp.path()).unwrap();
    s.recover().unwrap();
    let mut next = 1;
    while next <= N {
        let batch: Vec<Entry> = (next..(next + 10_000).min(N + 1))
            .map(|i| Entry {
                term: Term(1),
                index: LogIndex(i),
                command: Command::Client(ClientRequest {
                    client: ClientId(0xfeed_f00d_u128 << 64 | u128::from(i % 64)),
                    seq: Seq(i),
                    acked_below: Seq(i),
                    pending: Vec::new(),
                    op: Op::Append {
                        lock: "lock-1".into(),
                        token: FencingToken(3),
                        file: "file-1".into(),
                        data: vec![7u8; 16],
                    },
                }),
            })
            .collect();
        next += batch.len() as u64;
        s.persist(vec![Persist::Entries(batch)]).unwrap();
    }
    drop(s);
    let bytes: u64 = std::fs::read_dir(tmp.path().join("wal"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    let started = Instant::now();
    let mut s = FileStorage::open(tmp.path()).unwrap();
    let r = s.recover().unwrap();
    let elapsed = started.elapsed();
    assert_eq!(r.entries.len() as u64, N);
    println!(
        "(b) recovered {N} entries ({:.1} MB of log) in {:.3} s",
        bytes as f64 / 1e6,
        elapsed.as_secs_f64()
    );
}
