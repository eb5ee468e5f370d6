//! A 3-node cluster in one process over loopback TCP, first with MemStorage (no data
//! directory), then with FileStorage in a temporary directory (the WAL is fsynced with group
//! commit, and appended files are mirrored to disk). Same scenarios as `cluster_mem`.
//!
//! `cargo bench --bench cluster_tcp`
//!
//! Unlike `examples/loadgen --spawn 3`, the nodes and the clients share one process and one
//! 2-worker runtime.

mod cluster_common;

use criterion::{criterion_group, criterion_main, Criterion};
use dlm::{connect_tcp_with, Server, DEFAULT_CLUSTER_ID};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;

/// Three free loopback addresses (bound and released at once: the usual small race with other
/// processes picking the same port, acceptable in a bench).
fn addresses() -> Vec<(u64, SocketAddr)> {
    (1..=3)
        .map(|id| {
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
            (id, listener.local_addr().expect("local address"))
        })
        .collect()
}

/// Starts the three nodes; with `data` each keeps its data in `data/node-<id>` (FileStorage),
/// without it in memory (MemStorage).
async fn start(members: &[(u64, SocketAddr)], data: Option<&Path>) -> Vec<Server> {
    let mut servers = Vec::new();
    for &(id, addr) in members {
        let mut builder = Server::builder().id(id);
        if let Some(dir) = data {
            builder = builder.data_dir(dir.join(format!("node-{id}")));
        }
        for &(peer, peer_addr) in members {
            if peer != id {
                builder = builder.peer(peer, peer_addr);
            }
        }
        servers.push(builder.serve_tcp(addr).await.expect("start node"));
    }
    servers
}

fn bench_cluster(c: &mut Criterion, name: &str, data: Option<&Path>) {
    let rt = cluster_common::runtime();
    let members = addresses();
    let servers = rt.block_on(start(&members, data));
    let mut group = c.benchmark_group(name);
    cluster_common::tune(&mut group);
    cluster_common::scenarios(&mut group, &rt, |seed| {
        connect_tcp_with(members.clone(), DEFAULT_CLUSTER_ID, |cfg| {
            cfg.seed = Some(seed)
        })
    });
    group.finish();
    rt.block_on(async {
        for server in servers {
            server.shutdown().await.expect("shutdown");
        }
    });
}

fn tcp_mem_storage(c: &mut Criterion) {
    bench_cluster(c, "tcp_memstorage", None);
}

fn tcp_file_storage(c: &mut Criterion) {
    let dir = tempfile::Builder::new()
        .prefix("dlm-bench-tcp-")
        .tempdir()
        .expect("temporary directory");
    bench_cluster(c, "tcp_filestorage", Some(dir.path()));
}

criterion_group!(benches, tcp_mem_storage, tcp_file_storage);
criterion_main!(benches);
