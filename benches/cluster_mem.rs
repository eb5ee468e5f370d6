//! A 3-node cluster in one process on the in-memory network (MemStorage: nothing touches the
//! disk): lock cycles and guarded appends through the real client, driver and Raft, without
//! sockets or fsync. Compare with `cluster_tcp` to see what the network and the disk cost.
//!
//! `cargo bench --bench cluster_mem`
//!
//! Scenarios (see `cluster_common`): one client cycling on one lock; 16 clients on 16 locks;
//! 16 clients queued on one lock (every cycle is a hand-off); acquire → append 64 B → release
//! with 1 and 16 clients. Throughput is in cycles per second for the whole cluster.

mod cluster_common;

use criterion::{criterion_group, criterion_main, Criterion};
use dlm::mem::MemNetwork;
use dlm::{connect_mem, Server};

const MEMBERS: [u64; 3] = [1, 2, 3];

async fn start(net: &MemNetwork) -> Vec<Server> {
    let mut servers = Vec::new();
    for id in MEMBERS {
        let mut builder = Server::builder().id(id);
        for peer in MEMBERS.iter().filter(|p| **p != id) {
            builder = builder.member(*peer);
        }
        servers.push(builder.serve_mem(net).await.expect("start node"));
    }
    servers
}

fn mem_cluster(c: &mut Criterion) {
    let rt = cluster_common::runtime();
    let net = MemNetwork::new(1);
    let servers = rt.block_on(start(&net));
    let mut group = c.benchmark_group("mem");
    cluster_common::tune(&mut group);
    cluster_common::scenarios(&mut group, &rt, |_seed| connect_mem(&net, MEMBERS));
    group.finish();
    rt.block_on(async {
        for server in servers {
            server.shutdown().await.expect("shutdown");
        }
    });
}

criterion_group!(benches, mem_cluster);
criterion_main!(benches);
