//! A local cluster of server processes (TCP, file storage with fsync) in a temporary directory,
//! for the examples and the process-level tests.
//!
//! A node is the current executable re-executed with [`SERVE_ENV`] set: an example calls
//! [`serve_if_spawned`] first thing in `main`; a test binary calls it from a test that the
//! cluster names in its `args` (integration tests cannot start the example binaries).

use std::collections::{BTreeMap, BTreeSet};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};

/// Set on a spawned node: `ID|LISTEN|PEERS|METRICS|DIR`, PEERS as `id=addr,id=addr`, METRICS
/// the metrics listener's address or nothing.
pub const SERVE_ENV: &str = "DLM_SERVE";
/// Set on a spawned node that serves TLS: the directory of `support::tls::make_certificates`.
pub const SERVE_TLS_ENV: &str = "DLM_SERVE_TLS";

/// What one spawned node runs.
#[derive(Clone, Debug)]
pub struct NodeSpec {
    pub id: u64,
    pub listen: SocketAddr,
    pub peers: Vec<(u64, SocketAddr)>,
    /// Where to serve metrics, if anywhere.
    pub metrics: Option<SocketAddr>,
    pub dir: PathBuf,
}

impl NodeSpec {
    fn encode(&self) -> String {
        let peers: Vec<String> = self.peers.iter().map(|(p, a)| format!("{p}={a}")).collect();
        // The directory goes last, so that it may contain any character.
        let metrics = self.metrics.map(|a| a.to_string()).unwrap_or_default();
        format!(
            "{}|{}|{}|{}|{}",
            self.id,
            self.listen,
            peers.join(","),
            metrics,
            self.dir.display()
        )
    }

    fn decode(s: &str) -> Result<NodeSpec, String> {
        let mut parts = s.splitn(5, '|');
        let (Some(id), Some(listen), Some(peers), Some(metrics), Some(dir)) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(format!(
                "{SERVE_ENV}: expected ID|LISTEN|PEERS|METRICS|DIR, got {s:?}"
            ));
        };
        let metrics = match metrics {
            "" => None,
            at => Some(
                at.parse()
                    .map_err(|e| format!("bad metrics address {at:?}: {e}"))?,
            ),
        };
        Ok(NodeSpec {
            id: id.parse().map_err(|e| format!("bad node id {id:?}: {e}"))?,
            listen: listen
                .parse()
                .map_err(|e| format!("bad address {listen:?}: {e}"))?,
            peers: super::parse_members(peers).map(|m| m.0).unwrap_or_default(),
            metrics,
            dir: PathBuf::from(dir),
        })
    }
}

/// When this process was spawned as a node of a [`ProcessCluster`], runs that node until the
/// parent goes away and returns how it ended; `None` otherwise.
pub fn serve_if_spawned() -> Option<Result<(), String>> {
    let spec = std::env::var(SERVE_ENV).ok()?;
    super::init_tracing();
    Some(serve_spec(&spec))
}

/// For an example's `main`: when this process was spawned as a node, runs the node and exits
/// (non-zero, naming `tool`, if it failed); otherwise returns to go on as `tool` itself.
pub fn exit_when_served(tool: &str) {
    if let Some(served) = serve_if_spawned() {
        if let Err(e) = served {
            eprintln!("{tool} node: {e}");
            std::process::exit(1);
        }
        std::process::exit(0);
    }
}

fn serve_spec(spec: &str) -> Result<(), String> {
    let spec = NodeSpec::decode(spec)?;
    // A node is one driver task plus its connections: a single-threaded runtime spares it the
    // cross-thread wake-ups that cost a quarter of its CPU on a multi-threaded one (BENCHMARKS.md).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    runtime.block_on(serve(spec))
}

async fn serve(spec: NodeSpec) -> Result<(), String> {
    let mut builder = dlm::Server::builder().id(spec.id).data_dir(&spec.dir);
    #[cfg(feature = "tls")]
    if let Some(dir) = std::env::var_os(SERVE_TLS_ENV) {
        builder = builder.tls(super::tls::node_tls(Path::new(&dir), spec.id)?);
    }
    for (peer, addr) in spec.peers {
        builder = builder.peer(peer, addr);
    }
    if let Some(at) = spec.metrics {
        #[cfg(feature = "metrics")]
        {
            builder = builder.metrics(at);
        }
        #[cfg(not(feature = "metrics"))]
        return Err(format!("metrics asked for at {at}, but built without them"));
    }
    let server = builder
        .serve_tcp(spec.listen)
        .await
        .map_err(|e| format!("node {}: {e}", spec.id))?;
    // Normally SIGKILLed; a closed stdin means the parent is gone, so stop too.
    let _ = tokio::task::spawn_blocking(|| {
        let mut buf = [0u8; 1];
        let _ = std::io::Read::read(&mut std::io::stdin(), &mut buf);
    })
    .await;
    server.shutdown().await.map_err(|e| e.to_string())
}

/// The server processes and their directory; every process still running is SIGKILLed on drop.
pub struct ProcessCluster {
    members: Vec<(u64, SocketAddr)>,
    dir: Option<tempfile::TempDir>,
    root: PathBuf,
    args: Vec<String>,
    children: BTreeMap<u64, Child>,
    stopped: BTreeSet<u64>,
    /// Per node, where it serves metrics (empty: nowhere).
    metrics: BTreeMap<u64, SocketAddr>,
    /// Run node `k` with group id [`super::netfault::gid_of`]`(k)`, so that nftables can tell
    /// its sockets apart (see `support::netfault`).
    tag_gids: bool,
    /// Where the nodes' certificates are, if they serve TLS.
    tls_dir: Option<PathBuf>,
}

impl ProcessCluster {
    /// Picks `n` free ports and a temporary directory named `prefix...`; starts nothing yet.
    /// Nodes run the current executable with `args` (and [`SERVE_ENV`] set).
    pub fn new(n: u64, prefix: &str, args: &[&str]) -> std::io::Result<ProcessCluster> {
        let dir = tempfile::Builder::new().prefix(prefix).tempdir()?;
        // Ask the OS for free ports, then let the servers bind them (and rebind after a kill).
        let members = (1..=n)
            .map(|id| Ok((id, TcpListener::bind("127.0.0.1:0")?.local_addr()?)))
            .collect::<std::io::Result<_>>()?;
        Ok(ProcessCluster {
            members,
            root: dir.path().to_path_buf(),
            dir: Some(dir),
            args: args.iter().map(|a| a.to_string()).collect(),
            children: BTreeMap::new(),
            stopped: BTreeSet::new(),
            metrics: BTreeMap::new(),
            tag_gids: false,
            tls_dir: None,
        })
    }

    /// Has every node started from now on serve metrics, each on a free port; returns where.
    pub fn serve_metrics(&mut self) -> std::io::Result<BTreeMap<u64, SocketAddr>> {
        for (id, _) in &self.members {
            let at = TcpListener::bind("127.0.0.1:0")?.local_addr()?;
            self.metrics.insert(*id, at);
        }
        Ok(self.metrics.clone())
    }

    /// The process id of node `id`, if it runs.
    pub fn pid(&self, id: u64) -> Option<u32> {
        self.children.get(&id).map(Child::id)
    }

    /// Makes certificates for every node and a client (see `support::tls`); nodes started
    /// from now on serve mutual TLS. Returns the clients' TLS.
    #[cfg(feature = "tls")]
    pub fn use_tls(&mut self) -> Result<dlm::ClientTls, String> {
        let dir = self.root.join("tls");
        let client = super::tls::make_certificates(&dir, &self.ids())?;
        self.tls_dir = Some(dir);
        Ok(client)
    }

    /// Runs each node under its own group id from now on (see `support::netfault`; needs root).
    pub fn tag_gids(&mut self) {
        self.tag_gids = true;
    }

    /// Starts every node.
    pub fn start_all(&mut self) -> std::io::Result<()> {
        let ids: Vec<u64> = self.members.iter().map(|(id, _)| *id).collect();
        ids.into_iter().try_for_each(|id| self.start(id))
    }

    /// The members and where they listen.
    pub fn members(&self) -> &[(u64, SocketAddr)] {
        &self.members
    }

    /// The node ids.
    pub fn ids(&self) -> Vec<u64> {
        self.members.iter().map(|(id, _)| *id).collect()
    }

    /// The cluster's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Node `id`'s data directory.
    pub fn data_dir(&self, id: u64) -> PathBuf {
        self.root.join(format!("node-{id}"))
    }

    /// Where node `id`'s guarded file `file` is mirrored.
    pub fn file_path(&self, id: u64, file: &str) -> PathBuf {
        self.data_dir(id)
            .join("files")
            .join(dlm::runtime::escape_file_name(file))
    }

    /// Node `id`'s log (stderr, appended to across restarts).
    pub fn log_path(&self, id: u64) -> PathBuf {
        self.root.join(format!("node-{id}.log"))
    }

    /// Keeps the directory after the cluster is gone (for a post-mortem) and returns it.
    pub fn keep(&mut self) -> PathBuf {
        if let Some(dir) = self.dir.take() {
            let _ = dir.keep();
        }
        self.root.clone()
    }

    /// Starts node `id` (from its data directory, if it ran before).
    pub fn start(&mut self, id: u64) -> std::io::Result<()> {
        let listen = self
            .members
            .iter()
            .find(|(m, _)| *m == id)
            .map(|(_, a)| *a)
            .ok_or_else(|| std::io::Error::other(format!("node {id} is not a member")))?;
        let spec = NodeSpec {
            id,
            listen,
            peers: self
                .members
                .iter()
                .filter(|(p, _)| *p != id)
                .copied()
                .collect(),
            metrics: self.metrics.get(&id).copied(),
            dir: self.data_dir(id),
        };
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(id))?;
        let mut command = Command::new(std::env::current_exe()?);
        if self.tag_gids {
            std::os::unix::process::CommandExt::gid(&mut command, super::netfault::gid_of(id));
        }
        if let Some(dir) = &self.tls_dir {
            command.env(SERVE_TLS_ENV, dir);
        }
        let child = command
            .args(&self.args)
            .env(SERVE_ENV, spec.encode())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?;
        self.children.insert(id, child);
        Ok(())
    }

    /// SIGKILLs node `id` (stopped or not) and reaps it.
    pub fn kill(&mut self, id: u64) -> std::io::Result<()> {
        self.stopped.remove(&id);
        if let Some(mut child) = self.children.remove(&id) {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    /// SIGSTOPs node `id`: it keeps its sockets but answers nothing until [`Self::resume`].
    pub fn stop(&mut self, id: u64) -> std::io::Result<()> {
        self.signal(id, libc::SIGSTOP)?;
        self.stopped.insert(id);
        Ok(())
    }

    /// SIGCONTs node `id`.
    pub fn resume(&mut self, id: u64) -> std::io::Result<()> {
        self.signal(id, libc::SIGCONT)?;
        self.stopped.remove(&id);
        Ok(())
    }

    /// Whether node `id` is running (started, not killed, not stopped).
    pub fn is_up(&self, id: u64) -> bool {
        self.children.contains_key(&id) && !self.stopped.contains(&id)
    }

    /// Nodes that exited without being killed, with how they ended (each reported once).
    pub fn exited(&mut self) -> Vec<(u64, ExitStatus)> {
        let mut out = Vec::new();
        for (id, child) in &mut self.children {
            if let Ok(Some(status)) = child.try_wait() {
                out.push((*id, status));
            }
        }
        for (id, _) in &out {
            self.children.remove(id);
            self.stopped.remove(id);
        }
        out
    }

    fn signal(&self, id: u64, signal: libc::c_int) -> std::io::Result<()> {
        let child = self
            .children
            .get(&id)
            .ok_or_else(|| std::io::Error::other(format!("node {id} is not running")))?;
        let pid = libc::pid_t::try_from(child.id()).map_err(std::io::Error::other)?;
        // SAFETY: kill(2) only takes plain integers; `pid` is our own unreaped child, so it
        // cannot have been recycled for another process.
        let rc = unsafe { libc::kill(pid, signal) };
        if rc == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }
}

impl Drop for ProcessCluster {
    fn drop(&mut self) {
        for id in self.ids() {
            let _ = self.kill(id);
        }
    }
}
