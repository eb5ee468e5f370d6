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
