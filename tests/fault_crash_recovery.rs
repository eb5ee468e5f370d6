//! Process-level crash recovery: a 3-node TCP cluster of real OS processes with file storage,
//! SIGKILLed one node at a time and then all at once, and restarted from its data directories.
//!
//! Server processes are this test binary re-executed: with `DLM_TEST_SERVE` set, the
//! [`serve_child`] test runs a node instead of returning (integration tests cannot start the
//! example binaries).
//!
//! What must hold after the restart: every acknowledged append is in every node's mirrored file
//! exactly once and at the offset it was acknowledged at, fencing tokens keep growing, and a lease
//! still running at the crash is still held.

use dlm::runtime::{escape_file_name, Client, ClientError};
use dlm::tcp::TcpClient;
use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// `"ID LISTEN DIR PEERS"`, PEERS as `id=addr,id=addr`.
const SERVE_ENV: &str = "DLM_TEST_SERVE";

const CLIENTS: usize = 4;
const CYCLES: usize = 25;

/// Runs a server node when re-executed by the test below; a no-op test otherwise.
#[test]
fn serve_child() {
    let Ok(spec) = std::env::var(SERVE_ENV) else {
        return;
    };
    let parts: Vec<&str> = spec.split(' ').collect();
    let [id, listen, dir, peers] = parts.as_slice() else {
        panic!("bad {SERVE_ENV}: {spec:?}");
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut builder = dlm::Server::builder().id(id.parse().unwrap()).data_dir(dir);
        for peer in peers.split(',') {
            let (pid, addr) = peer.split_once('=').unwrap();
            builder = builder.peer(pid.parse().unwrap(), addr.parse().unwrap());
        }
        let server = builder.serve_tcp(listen.parse().unwrap()).await.unwrap();
        // Normally SIGKILLed; a closed stdin means the parent test is gone, so stop too.
        let _ = tokio::task::spawn_blocking(|| {
            let mut buf = [0u8; 1];
            let _ = std::io::Read::read(&mut std::io::stdin(), &mut buf);
        })
        .await;
        let _ = server.shutdown().await;
    });
}

/// The server processes; every one still running is SIGKILLed on drop.
struct Cluster {
    members: Vec<(u64, SocketAddr)>,
    root: PathBuf,
    children: HashMap<u64, Child>,
}

impl Cluster {
    fn new(root: &Path) -> Cluster {
        // Ask the OS for free ports, then let the servers bind them (and rebind after a kill).
        let members = (1..=3u64)
            .map(|id| {
                let l = TcpListener::bind("127.0.0.1:0").unwrap();
                (id, l.local_addr().unwrap())
            })
            .collect();
        Cluster {
            members,
            root: root.to_path_buf(),
            children: HashMap::new(),
        }
    }

    fn data_dir(&self, id: u64) -> PathBuf {
        self.root.join(format!("node-{id}"))
    }

    fn start(&mut self, id: u64) {
        let addr = self.members.iter().find(|(i, _)| *i == id).unwrap().1;
        let peers: Vec<String> = self
            .members
            .iter()
            .filter(|(p, _)| *p != id)
            .map(|(p, a)| format!("{p}={a}"))
            .collect();
        let spec = format!(
            "{id} {addr} {} {}",
            self.data_dir(id).display(),
            peers.join(",")
        );
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.root.join(format!("node-{id}.log")))
            .unwrap();
        let child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "serve_child", "--nocapture", "--test-threads=1"])
            .env(SERVE_ENV, spec)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.children.insert(id, child);
    }

    /// SIGKILL (`Child::kill`), then reap.
    fn kill(&mut self, id: u64) {
        if let Some(mut child) = self.children.remove(&id) {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    fn client(&self, lease: Duration) -> Client<TcpClient> {
        dlm::connect_tcp_with(self.members.clone(), dlm::DEFAULT_CLUSTER_ID, |cfg| {
            cfg.lease = lease;
            cfg.attempt_timeout = Duration::from_millis(500);
            cfg.deadline = Duration::from_secs(20);
        })
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let ids: Vec<u64> = self.children.keys().copied().collect();
        for id in ids {
            self.kill(id);
        }
    }
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
    let root = tempfile::Builder::new()
        .prefix("dlm-crash-")
        .tempdir()
        .unwrap();
    let mut cluster = Cluster::new(root.path());
    for id in 1..=3 {
        cluster.start(id);
    }

    // A holder with a long lease, kept alive across the crash.
    let holder = cluster.client(Duration::from_secs(120));
    let held = holder.lock("held").await.unwrap();
    let rec = Arc::new(Record::default());
    rec.tokens.lock().unwrap().push(held.token().0);

    let tasks: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let client = cluster.client(Duration::from_secs(3));
            tokio::spawn(run_client(client, c, rec.clone()))
        })
        .collect();

    // SIGKILL node 1 (the preferred leader) mid-load.
    let bound = Instant::now() + Duration::from_secs(30);
    while rec.acked.load(Ordering::SeqCst) < 10 && Instant::now() < bound {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    rec.killed.store(true, Ordering::SeqCst);
    cluster.kill(1);
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
    cluster.kill(2);
    cluster.kill(3);
    assert!(!held.is_lost(), "long lease lost before the crash");
    for id in 1..=3 {
        cluster.start(id);
    }

    // Tokens keep growing across the restart.
    let after = cluster.client(Duration::from_secs(3));
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
