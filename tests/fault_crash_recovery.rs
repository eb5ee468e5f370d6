//! Process-level crash recovery: a 3-node TCP cluster of real OS processes with file storage,
//! SIGKILLed one node at a time and then all at once, and restarted from its data directories.
//!
//! Server processes are this test binary re-executed (see `examples/support/cluster.rs`): the
//! [`serve_child`] test runs a node when asked to instead of returning (integration tests cannot
//! start the example binaries).
//!
//! What must hold after the restart: every acknowledged append is in every node's mirrored file
//! exactly once and at the offset it was acknowledged at, fencing tokens keep growing, and a lease
//! still running at the crash is still held.

#[path = "../examples/support/mod.rs"]
mod support;

use dlm::runtime::{escape_file_name, Client, ClientError};
use dlm::tcp::TcpClient;
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::cluster::ProcessCluster;

const CLIENTS: usize = 4;
const CYCLES: usize = 25;

/// Runs a server node when re-executed by the test below; a no-op test otherwise.
#[test]
fn serve_child() {
    if let Some(served) = support::cluster::serve_if_spawned() {
        served.unwrap();
    }
}

/// Three server processes, each this binary running [`serve_child`].
fn cluster() -> ProcessCluster {
    let args = ["--exact", "serve_child", "--nocapture", "--test-threads=1"];
    ProcessCluster::new(3, "dlm-crash-", &args).unwrap()
}

fn client(cluster: &ProcessCluster, lease: Duration) -> Client<TcpClient> {
    dlm::connect_tcp_with(cluster.members().to_vec(), dlm::DEFAULT_CLUSTER_ID, |cfg| {
        cfg.lease = lease;
        cfg.attempt_timeout = Duration::from_millis(500);
        cfg.deadline = Duration::from_secs(20);
    })
}

#[derive(Clone, Debug)]
struct Ack {
    file: String,
    offset: u64,
    data: Vec<u8>,
}

#[derive(Default)]
struct Record {
    acks: Mutex<Vec<Ack>>,
    /// Data of appends that failed: they may or may not have landed, but at most once.
    unsure: Mutex<Vec<(String, Vec<u8>)>>,
    tokens: Mutex<Vec<u64>>,
    acked: AtomicUsize,
    acked_after_kill: AtomicUsize,
    killed: AtomicBool,
}

async fn run_client(client: Client<TcpClient>, c: usize, rec: Arc<Record>) {
    let lock = format!("lock-{}", c % 2);
    let file = format!("data/file-{}.log", c % 2);
    for i in 0..CYCLES {
        let guard = match client.lock(lock.as_str()).await {
            Ok(g) => g,
            Err(_) => continue,
        };
        rec.tokens.lock().unwrap().push(guard.token().0);
        let data = format!("client {c} cycle {i}\n").into_bytes();
        match client.append(&guard, file.as_str(), data.clone()).await {
            Ok(offset) => {
                rec.acks.lock().unwrap().push(Ack {
                    file: file.clone(),
                    offset,
                    data,
                });
                rec.acked.fetch_add(1, Ordering::SeqCst);
                if rec.killed.load(Ordering::SeqCst) {
                    rec.acked_after_kill.fetch_add(1, Ordering::SeqCst);
                }
            }
            Err(_) => rec.unsure.lock().unwrap().push((file.clone(), data)),
        }
        let _ = client.release(guard).await;
    }
}

fn occurrences(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len()).filter(|w| *w == needle).count()
}

/// Why node `dir`'s mirror does not (yet) show every acknowledged append exactly once.
fn check_mirror(dir: &Path, rec: &Record) -> Result<(), String> {
    let mut contents: HashMap<String, Vec<u8>> = HashMap::new();
    for ack in rec.acks.lock().unwrap().iter() {
        if !contents.contains_key(&ack.file) {
            let path = dir.join("files").join(escape_file_name(&ack.file));
            let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            contents.insert(ack.file.clone(), bytes);
        }
        let bytes = &contents[&ack.file];
        let at = ack.offset as usize;
        if bytes.get(at..at + ack.data.len()) != Some(&ack.data[..]) {
            return Err(format!("{}: ack at {} missing", dir.display(), ack.offset));
        }
        let n = occurrences(bytes, &ack.data);
        if n != 1 {
            return Err(format!("{}: ack at {} found {n} times", dir.display(), at));
        }
    }
    for (file, data) in rec.unsure.lock().unwrap().iter() {
        if let Some(bytes) = contents.get(file) {
            let n = occurrences(bytes, data);
            if n > 1 {
                return Err(format!(
                    "{}: failed append applied {n} times",
                    dir.display()
                ));
            }
        }
    }
    Ok(())
}

/// Takes `lock` once, retrying through elections (bounded by the client's deadline).
async fn acquire_token(client: &Client<TcpClient>, lock: &str) -> u64 {
    let guard = client.lock(lock).await.unwrap();
    let token = guard.token().0;
    client.release(guard).await.unwrap();
    token
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_one_then_all_and_recover() {
    let mut cluster = cluster();
    cluster.start_all().unwrap();

    // A holder with a long lease, kept alive across the crash.
    let holder = client(&cluster, Duration::from_secs(120));
    let held = holder.lock("held").await.unwrap();
    let rec = Arc::new(Record::default());
    rec.tokens.lock().unwrap().push(held.token().0);

    let tasks: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let client = client(&cluster, Duration::from_secs(3));
            tokio::spawn(run_client(client, c, rec.clone()))
        })
        .collect();

    // SIGKILL node 1 (the preferred leader) mid-load.
    let bound = Instant::now() + Duration::from_secs(30);
    while rec.acked.load(Ordering::SeqCst) < 10 && Instant::now() < bound {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    rec.killed.store(true, Ordering::SeqCst);
    cluster.kill(1).unwrap();
    for t in tasks {
        t.await.unwrap();
    }
    assert!(
        rec.acked.load(Ordering::SeqCst) >= 10,
        "too few appends before the kill"
    );
    assert!(
        rec.acked_after_kill.load(Ordering::SeqCst) > 0,
        "no append acknowledged with node 1 down"
    );

    // SIGKILL everything, then restart from the data directories.
    cluster.kill(2).unwrap();
    cluster.kill(3).unwrap();
    assert!(!held.is_lost(), "long lease lost before the crash");
    cluster.start_all().unwrap();

    // Tokens keep growing across the restart.
    let after = client(&cluster, Duration::from_secs(3));
    let token = acquire_token(&after, "lock-0").await;
    let earlier = *rec.tokens.lock().unwrap().iter().max().unwrap();
    assert!(token > earlier, "token {token} after restart <= {earlier}");

    // The lease still running at the crash is still held.
    assert_eq!(
        after.try_lock("held").await.err(),
        Some(ClientError::Busy),
        "the long lease did not survive the restart"
    );

    // Every acknowledged append is on every node exactly once. Followers may still be catching
    // up, so wait (bounded) for their mirrors to converge.
    let bound = Instant::now() + Duration::from_secs(20);
    for id in 1..=3 {
        let dir = cluster.data_dir(id);
        loop {
            match check_mirror(&dir, &rec) {
                Ok(()) => break,
                Err(e) if Instant::now() > bound => panic!("{e}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }
    // And the cluster view agrees with the acknowledgements.
    for file in ["data/file-0.log", "data/file-1.log"] {
        let bytes = after.read(file).await.unwrap();
        for ack in rec.acks.lock().unwrap().iter().filter(|a| a.file == file) {
            assert_eq!(occurrences(&bytes, &ack.data), 1);
        }
    }
    drop(held);
}
