//! The driver and the async client together, over the in-test network.
#![cfg(feature = "tokio")]

mod runtime_support;

use dlm_core::runtime::{
    spawn_server, Client, ClientConfig, ClientError, FileStorage, MemStorage, ServerHandle,
    ServerOptions, Storage,
};
use dlm_core::*;
use runtime_support::{ClientNet, Net};
use std::time::Duration;

fn client(net: &Net, nodes: &[u64], seed: u64) -> Client<ClientNet> {
    let mut cfg = ClientConfig::new(nodes.iter().copied().map(NodeId));
    cfg.seed = Some(seed);
    cfg.lease = Duration::from_secs(3);
    cfg.attempt_timeout = Duration::from_millis(500);
    cfg.deadline = Duration::from_secs(120);
    Client::new(net.client(), cfg)
}

async fn start<S: Storage>(
    net: &Net,
    id: u64,
    members: &[u64],
    storage: S,
    opts: ServerOptions,
) -> ServerHandle {
    let cfg = Config::new(NodeId(id), members.iter().copied().map(NodeId));
    spawn_server(cfg, storage, net.node(NodeId(id)), opts)
        .await
        .unwrap()
}

/// Waits until some node reports itself leader; returns its id.
async fn leader_of(handles: &[&ServerHandle]) -> NodeId {
    loop {
        for h in handles {
            let s = h.status().borrow().clone();
            if s.role == Role::Leader {
                return s.id;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(start_paused = true)]
async fn lock_append_read_release_on_one_node_with_files_mirrored() {
    let tmp = tempfile::tempdir().unwrap();
    let net = Net::new(1);
    let files = tmp.path().join("files");
    let opts = ServerOptions {
        files_dir: Some(files.clone()),
    };
    let storage = FileStorage::open(tmp.path().join("data")).unwrap();
    let node = start(&net, 1, &[1], storage, opts.clone()).await;
    let c = client(&net, &[1], 7);
    let guard = c.lock("L").await.unwrap();
    assert!(guard.token() > FencingToken(0));
    assert_eq!(
        c.append(&guard, "../etc/x", b"hello ".to_vec())
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        c.append(&guard, "../etc/x", b"world".to_vec())
            .await
            .unwrap(),
        6
    );
    assert_eq!(c.read("../etc/x").await.unwrap(), b"hello world");
    let other = client(&net, &[1], 8);
    assert_eq!(other.try_lock("L").await.err(), Some(ClientError::Busy));
    c.release(guard).await.unwrap();
    let g2 = other.try_lock("L").await.unwrap();
    assert_eq!(
        c.append(&g2, "../etc/x", b"!".to_vec()).await.err(),
        Some(ClientError::NotHolder)
    );
    let mirrored = files.join(dlm_core::runtime::escape_file_name("../etc/x"));
    assert_eq!(std::fs::read(&mirrored).unwrap(), b"hello world");
    assert!(!tmp.path().join("etc").exists());
    node.shutdown().await.unwrap();

    // A restart rebuilds the mirror: first from the (empty) snapshot, then by re-applying.
    std::fs::write(&mirrored, b"garbage").unwrap();
    let storage = FileStorage::open(tmp.path().join("data")).unwrap();
    let node = start(&net, 1, &[1], storage, opts).await;
    let c = client(&net, &[1], 9);
    assert_eq!(c.read("../etc/x").await.unwrap(), b"hello world");
    assert_eq!(std::fs::read(&mirrored).unwrap(), b"hello world");
    drop(g2);
    node.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn an_answer_lost_in_a_crash_is_recovered_by_the_retry() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let net = Net::new(2);
    let node = start(
        &net,
        1,
        &[1],
        FileStorage::open(&dir).unwrap(),
        ServerOptions::default(),
    )
    .await;
    let c = client(&net, &[1], 11);
    let guard = c.lock("L").await.unwrap();
    let commit_before = node.status().borrow().commit;

    net.set_drop_replies(true);
    let appender = {
        let c = c.clone();
        tokio::spawn(async move {
            c.append(&guard, "f", b"once".to_vec())
                .await
                .map(|o| (o, guard))
        })
    };
    // The append is persisted and applied; its answer is lost; then the node "crashes".
    let mut status = node.status();
    status.wait_for(|s| s.commit > commit_before).await.unwrap();
    node.shutdown().await.unwrap();

    net.set_drop_replies(false);
    let node = start(
        &net,
        1,
        &[1],
        FileStorage::open(&dir).unwrap(),
        ServerOptions::default(),
    )
    .await;
    let (offset, guard) = appender.await.unwrap().unwrap();
    assert_eq!(offset, 0);
    assert_eq!(c.read("f").await.unwrap(), b"once");
    c.release(guard).await.unwrap();
    node.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn retries_over_a_lossy_duplicating_network_append_exactly_once() {
    let net = Net::new(3);
    let members = [1, 2, 3];
    let mut nodes = Vec::new();
    for id in members {
        nodes.push(
            start(
                &net,
                id,
                &members,
                MemStorage::new(),
                ServerOptions::default(),
            )
            .await,
        );
    }
    net.set_faults(200, 200);
    let c = client(&net, &members, 21);
    let guard = c.lock("L").await.unwrap();
    let mut expected = Vec::new();
    for i in 0..20u8 {
        let data = vec![i; 3];
        let offset = c.append(&guard, "f", data.clone()).await.unwrap();
        assert_eq!(offset, expected.len() as u64, "append {i}");
        expected.extend(data);
    }
    net.set_faults(0, 0);
    assert_eq!(c.read("f").await.unwrap(), expected);
    c.release(guard).await.unwrap();
    for n in nodes {
        n.shutdown().await.unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn the_client_follows_leader_hints() {
    let net = Net::new(4);
    let members = [1, 2, 3];
    let mut nodes = Vec::new();
    for id in members {
        nodes.push(
            start(
                &net,
                id,
                &members,
                MemStorage::new(),
                ServerOptions::default(),
            )
            .await,
        );
    }
    let leader = leader_of(&nodes.iter().collect::<Vec<_>>()).await;
    // Wait until both followers know the leader, so that their refusals carry a hint.
    for n in &nodes {
        n.status()
            .wait_for(|s| s.leader == Some(leader))
            .await
            .unwrap();
    }
    let followers: Vec<u64> = members
        .iter()
        .copied()
        .filter(|id| NodeId(*id) != leader)
        .collect();
    // Round robin would ask the second follower before the leader; a hint goes straight there.
    let order = [followers[0], followers[1], leader.get()];
    let c = client(&net, &order, 31);
    let guard = c.try_lock("L").await.unwrap();
    assert_eq!(net.client_calls(NodeId(followers[0])), 1);
    assert_eq!(net.client_calls(NodeId(followers[1])), 0);
    assert_eq!(net.client_calls(leader), 1);
    c.release(guard).await.unwrap();
    for n in nodes {
        n.shutdown().await.unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn a_dropped_guard_is_released_and_a_dead_cluster_loses_the_lock() {
    let net = Net::new(5);
    let node = start(&net, 1, &[1], MemStorage::new(), ServerOptions::default()).await;
    let a = client(&net, &[1], 41);
    let b = client(&net, &[1], 42);
    drop(a.try_lock("L").await.unwrap());
    // The background release lets b wait its turn and get it.
    let guard = b.lock_timeout("L", Duration::from_secs(5)).await.unwrap();
    assert!(!guard.is_lost());
    // Keep-alives hold the lock across several leases.
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(!guard.is_lost());
    assert!(a.try_lock("L").await.is_err());
    // With the cluster gone nothing is confirmed and the lease runs out.
    node.shutdown().await.unwrap();
    guard.lost().await;
    assert!(guard.is_lost());
}

#[tokio::test(start_paused = true)]
async fn appends_survive_a_leader_crash_and_the_restarted_node_catches_up() {
    let net = Net::new(6);
    let members = [1, 2, 3];
    let stores: Vec<MemStorage> = members.iter().map(|_| MemStorage::new()).collect();
    let mut nodes = Vec::new();
    for (id, store) in members.iter().zip(&stores) {
        nodes.push(Some(
            start(&net, *id, &members, store.clone(), ServerOptions::default()).await,
        ));
    }
    net.set_faults(50, 50);
    let c = client(&net, &members, 51);
    let guard = c.lock("L").await.unwrap();
    let mut expected = Vec::new();
    for i in 0..5u8 {
        let offset = c.append(&guard, "f", vec![i; 2]).await.unwrap();
        assert_eq!(offset, expected.len() as u64);
        expected.extend([i; 2]);
    }
    let live: Vec<&ServerHandle> = nodes.iter().flatten().collect();
    let old = leader_of(&live).await;
    let slot = (old.get() - 1) as usize;
    nodes[slot].take().unwrap().shutdown().await.unwrap();
    for i in 5..10u8 {
        let offset = c.append(&guard, "f", vec![i; 2]).await.unwrap();
        assert_eq!(offset, expected.len() as u64);
        expected.extend([i; 2]);
    }
    assert_eq!(c.read("f").await.unwrap(), expected);
    let live: Vec<&ServerHandle> = nodes.iter().flatten().collect();
    let new = leader_of(&live).await;
    assert_ne!(new, old);
    let target = live
        .iter()
        .find(|h| h.status().borrow().id == new)
        .unwrap()
        .status()
        .borrow()
        .commit;

    // The old leader comes back from what it had persisted and catches up.
    let back = start(
        &net,
        old.get(),
        &members,
        stores[slot].clone(),
        ServerOptions::default(),
    )
    .await;
    back.status()
        .wait_for(|s| s.commit >= target)
        .await
        .unwrap();
    c.release(guard).await.unwrap();
    back.shutdown().await.unwrap();
    for n in nodes.into_iter().flatten() {
        n.shutdown().await.unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn an_abandoned_waiting_acquire_is_withdrawn() {
    let net = Net::new(7);
    let node = start(&net, 1, &[1], MemStorage::new(), ServerOptions::default()).await;
    let a = client(&net, &[1], 61);
    let b = client(&net, &[1], 62);
    let c = client(&net, &[1], 63);
    let guard = a.lock("L").await.unwrap();
    let waited = tokio::time::timeout(Duration::from_secs(1), b.lock("L")).await;
    assert!(waited.is_err(), "b cannot have the lock yet");
    // Let the background cancel reach the node.
    tokio::time::sleep(Duration::from_millis(100)).await;
    a.release(guard).await.unwrap();
    // Had b's acquire stayed queued, the lock would now be b's.
    let g = c.try_lock("L").await.unwrap();
    c.release(g).await.unwrap();
    node.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_node_that_installs_a_snapshot_rebuilds_its_mirrored_files() {
    let tmp = tempfile::tempdir().unwrap();
    let net = Net::new(8);
    let members = [1u64, 2, 3];
    let config = |id: u64| {
        let mut cfg = Config::new(NodeId(id), members.iter().copied().map(NodeId));
        cfg.snapshot_every = 10;
        cfg.log_retain = 2;
        cfg
    };
    let opts = |id: u64| ServerOptions {
        files_dir: Some(tmp.path().join(format!("files-{id}"))),
    };
    let mut nodes = Vec::new();
    for id in [1, 2] {
        let h = spawn_server(
            config(id),
            MemStorage::new(),
            net.node(NodeId(id)),
            opts(id),
        )
        .await
        .unwrap();
        nodes.push(h);
    }
    let c = client(&net, &members, 71);
    let guard = c.lock("L").await.unwrap();
    let mut expected = Vec::new();
    for i in 0..40u8 {
        c.append(&guard, "f", vec![i; 4]).await.unwrap();
        expected.extend([i; 4]);
    }
    assert_eq!(c.read("f").await.unwrap(), expected);
    let commit = nodes
        .iter()
        .map(|h| h.status().borrow().commit)
        .max()
        .unwrap();
    // Node 3 was never up: the leader has compacted its log and must send a snapshot.
    let late = spawn_server(config(3), MemStorage::new(), net.node(NodeId(3)), opts(3))
        .await
        .unwrap();
    late.status()
        .wait_for(|s| s.applied >= commit)
        .await
        .unwrap();
    let path = tmp
        .path()
        .join("files-3")
        .join(dlm_core::runtime::escape_file_name("f"));
    assert_eq!(std::fs::read(path).unwrap(), expected);
    c.release(guard).await.unwrap();
    late.shutdown().await.unwrap();
    for n in nodes {
        n.shutdown().await.unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn a_file_storage_node_restarted_many_times_keeps_every_append() {
    let tmp = tempfile::tempdir().unwrap();
    let net = Net::new(9);
    let mut expected = Vec::new();
    for round in 0..4u8 {
        let storage = FileStorage::open(tmp.path()).unwrap();
        let node = start(&net, 1, &[1], storage, ServerOptions::default()).await;
        let c = client(&net, &[1], 80 + u64::from(round));
        assert_eq!(c.read("f").await.ok().unwrap_or_default(), expected);
        let guard = c.lock("L").await.unwrap();
        c.append(&guard, "f", vec![round; 3]).await.unwrap();
        expected.extend([round; 3]);
        c.release(guard).await.unwrap();
        node.shutdown().await.unwrap();
    }
}
