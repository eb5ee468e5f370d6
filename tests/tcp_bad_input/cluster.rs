//! A 3-node TCP cluster with data on disk, a well-behaved client whose every acknowledged append
//! is recorded, and the check run after each abuse: the node still answers, the cluster still
//! serves, and every node's file holds exactly the acknowledged appends.

use super::raw;
use super::support::{self, Ledger};
use dlm::tcp::TcpClient;
use dlm::{Client, Server};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The lock and file the well-behaved client uses.
const GOOD_LOCK: &str = "good";

pub struct Cluster {
    dir: tempfile::TempDir,
    members: Vec<(u64, SocketAddr)>,
    pub servers: BTreeMap<u64, Server>,
    ledger: Ledger,
    good: Client<TcpClient>,
    cycles: usize,
}

impl Cluster {
    /// Starts the nodes, waits for a leader, and runs a few good cycles (acknowledged appends
    /// made before the abuse, which it must not lose).
    pub async fn start() -> Cluster {
        let members = support::local_members(3);
        let dir = tempfile::Builder::new()
            .prefix("dlm-tcp-bad-input-")
            .tempdir()
            .unwrap();
        let mut servers = BTreeMap::new();
        for &(id, addr) in &members {
            let mut builder = Server::builder()
                .id(id)
                .data_dir(dir.path().join(format!("node-{id}")));
            for &(peer, peer_addr) in &members {
                if peer != id {
                    builder = builder.peer(peer, peer_addr);
                }
            }
            servers.insert(id, builder.serve_tcp(addr).await.unwrap());
        }
        let good = client_of(&members, 1);
        let mut cluster = Cluster {
            dir,
            members,
            servers,
            ledger: Ledger::default(),
            good,
            cycles: 0,
        };
        support::wait_for_leader(&cluster.servers, Duration::from_secs(10)).await;
        cluster.good_cycles(3).await;
        cluster
    }

    pub fn members(&self) -> &[(u64, SocketAddr)] {
        &self.members
    }

    /// The node to abuse: the leader (the one every client request ends up at) and its address.
    pub async fn target(&self) -> (u64, SocketAddr) {
        let (id, _) = support::wait_for_leader(&self.servers, Duration::from_secs(10)).await;
        (id, self.servers[&id].local_addr().unwrap())
    }

    /// `n` rounds of lock, append, release by the well-behaved client.
    pub async fn good_cycles(&mut self, n: usize) {
        // Cycles numbered on from earlier calls, so that every line is distinct.
        let first = self.cycles;
        for cycle in first..first + n {
            let guard = self.good.lock(GOOD_LOCK).await.unwrap();
            let token = guard.token().get();
            let data = format!("cycle {cycle} token {token}\n").into_bytes();
            let offset = self
                .good
                .append(&guard, good_file(), data.clone())
                .await
                .unwrap();
            self.ledger.record(
                good_file(),
                support::Acked {
                    token,
                    offset,
                    data,
                },
            );
            self.good.release(guard).await.unwrap();
        }
        self.cycles += n;
    }

    /// The node `id` still answers a status request on a fresh connection, the cluster still
    /// serves a good client, and every node's file holds exactly the acknowledged appends.
    pub async fn check_still_serving(&mut self, id: u64) {
        let addr = self.servers[&id].local_addr().unwrap();
        let status = raw::status(addr).await;
        assert_eq!(status.id.get(), id, "{status:?}");
        self.good_cycles(3).await;
        support::wait_until_settled(&self.servers, Duration::from_secs(10)).await;
        let appends = self.ledger.files().remove(good_file()).unwrap_or_default();
        assert_eq!(appends.len(), self.cycles);
        let expected = support::expected_content(good_file(), &appends);
        for node in self.servers.keys() {
            assert_eq!(
                String::from_utf8_lossy(&self.file_on_disk(*node, good_file())),
                String::from_utf8_lossy(&expected),
                "node {node}: {} differs from its acknowledged appends",
                good_file()
            );
        }
    }

    fn data_dir(&self, id: u64) -> PathBuf {
        self.dir.path().join(format!("node-{id}"))
    }

    /// The mirror of `file` on node `id`'s disk, if it exists.
    pub fn file_on_disk(&self, id: u64, file: &str) -> Vec<u8> {
        let path = self
            .data_dir(id)
            .join("files")
            .join(dlm::runtime::escape_file_name(file));
        std::fs::read(&path).unwrap_or_else(|e| panic!("node {id}: {}: {e}", path.display()))
    }

    /// Whether node `id` has a mirror of `file`.
    pub fn has_file(&self, id: u64, file: &str) -> bool {
        self.data_dir(id)
            .join("files")
            .join(dlm::runtime::escape_file_name(file))
            .exists()
    }

    pub async fn shutdown(mut self) {
        for server in std::mem::take(&mut self.servers).into_values() {
            server.shutdown().await.unwrap();
        }
    }
}

fn good_file() -> &'static str {
    "good.log"
}

/// A client of every member with the test tuning.
pub fn client_of(members: &[(u64, SocketAddr)], seed: u64) -> Client<TcpClient> {
    dlm::connect_tcp_with(members.to_vec(), dlm::DEFAULT_CLUSTER_ID, |cfg| {
        cfg.seed = Some(seed);
        support::tune(cfg);
    })
}
