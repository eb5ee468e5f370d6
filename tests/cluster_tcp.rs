//! A 3-node cluster over TCP on 127.0.0.1 with on-disk data: the loss of the leader. Real time
//! (sockets and blocking file I/O), generous time-outs, no timing assertions. The partition
//! scenarios run on the in-memory network only (cluster_mem.rs): TCP links cannot be cut from a
//! test.
#![cfg(feature = "tcp")]

mod support;

use dlm::tcp::TcpClient;
use dlm::{Client, Server};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use support::Harness;

struct TcpCluster {
    dir: tempfile::TempDir,
    members: Vec<(u64, SocketAddr)>,
    servers: BTreeMap<u64, Server>,
}

impl TcpCluster {
    async fn start() -> TcpCluster {
        let members = support::local_members(3);
        let mut cluster = TcpCluster {
            dir: tempfile::Builder::new()
                .prefix("dlm-cluster-tcp-")
                .tempdir()
                .unwrap(),
            members,
            servers: BTreeMap::new(),
        };
        for (id, addr) in cluster.members.clone() {
            let mut builder = Server::builder().id(id).data_dir(cluster.data_dir(id));
            for (peer, peer_addr) in &cluster.members {
                if *peer != id {
                    builder = builder.peer(*peer, *peer_addr);
                }
            }
            let server = builder.serve_tcp(addr).await.unwrap();
            cluster.servers.insert(id, server);
        }
        cluster
    }

    fn data_dir(&self, id: u64) -> PathBuf {
        self.dir.path().join(format!("node-{id}"))
    }

    fn file_on_disk(&self, id: u64, file: &str) -> Vec<u8> {
        let path = self
            .data_dir(id)
            .join("files")
            .join(dlm::runtime::escape_file_name(file));
        std::fs::read(&path).unwrap_or_else(|e| panic!("node {id}: {}: {e}", path.display()))
    }
}

impl Harness for TcpCluster {
    type Transport = TcpClient;

    fn servers(&mut self) -> &mut BTreeMap<u64, Server> {
        &mut self.servers
    }

    fn client(&self, seed: u64) -> Client<TcpClient> {
        dlm::connect_tcp_with(self.members.clone(), dlm::DEFAULT_CLUSTER_ID, |cfg| {
            cfg.seed = Some(seed);
            support::tune(cfg);
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_cluster_survives_the_loss_of_its_leader() {
    let mut cluster = TcpCluster::start().await;
    let (ledger, dead, _) = support::leader_loss(&mut cluster, 4, 2, 12).await;
    let files = ledger.files();
    assert_eq!(files.len(), 2);
    let mut lines = 0;
    for (file, appends) in &files {
        let expected = support::expected_content(file, appends);
        lines += appends.len();
        // Every survivor's mirror holds exactly the acknowledged appends (leader_loss waited
        // until both had applied the leader's commit index).
        for id in cluster.servers.keys() {
            assert_ne!(*id, dead);
            assert_eq!(
                String::from_utf8_lossy(&cluster.file_on_disk(*id, file)),
                String::from_utf8_lossy(&expected),
                "node {id}: {file} differs from its acknowledged appends"
            );
        }
    }
    assert_eq!(lines, 4 * 12);
    for server in std::mem::take(&mut cluster.servers).into_values() {
        server.shutdown().await.unwrap();
    }
}

/// The race of a cancelled `lock()` over TCP: A holds the lock, B waits under a 50 ms time-out,
/// A releases around the moment B gives up, 40 times at offsets 10 ms either side. Whoever won,
/// a third client gets the lock well within its wait (a leftover grant would hold it for the
/// 10 s lease). Prints how long that took (a figure, not an assertion).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_a_lock_call_given_up_as_it_is_granted_leaves_the_lock_free() {
    let cluster = TcpCluster::start().await;
    support::wait_until_settled(&cluster.servers, std::time::Duration::from_secs(20)).await;
    let lease = |seed: u64| {
        dlm::connect_tcp_with(
            cluster.members.clone(),
            dlm::DEFAULT_CLUSTER_ID,
            move |cfg| {
                cfg.seed = Some(seed);
                support::tune(cfg);
                cfg.lease = std::time::Duration::from_secs(10);
            },
        )
    };
    let (a, b, c) = (lease(1), lease(2), lease(3));
    let mut slowest = std::time::Duration::ZERO;
    for try_no in 0..40u64 {
        let name = format!("race-{try_no}");
        let held = a.lock(name.as_str()).await.unwrap();
        let waiting = tokio::spawn({
            let (b, name) = (b.clone(), name.clone());
            async move {
                let wait = b.lock(name.as_str());
                tokio::time::timeout(std::time::Duration::from_millis(50), wait).await
            }
        });
        let offset = std::time::Duration::from_micros(40_000 + 500 * try_no);
        tokio::time::sleep(offset).await;
        a.release(held).await.unwrap();
        let released = tokio::time::Instant::now();
        if let Ok(got) = waiting.await.unwrap() {
            b.release(got.unwrap()).await.unwrap();
        }
        let free = c
            .lock_timeout(name.as_str(), std::time::Duration::from_secs(5))
            .await;
        assert!(
            free.is_ok(),
            "try {try_no}: the lock stayed taken: {free:?}"
        );
        slowest = slowest.max(released.elapsed());
        c.release(free.unwrap()).await.unwrap();
    }
    println!("cancel race over TCP: lock free at most {slowest:?} after the holder's release");
    for server in cluster.servers.into_values() {
        server.shutdown().await.unwrap();
    }
}
