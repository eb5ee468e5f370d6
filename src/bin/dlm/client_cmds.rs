//! The client subcommands: status, append, read (the operators' ones are in `admin_cmds`).

use crate::addr::{self, Members};
use clap::Args;
use dlm::{ClusterAccess, DEFAULT_CLUSTER_ID};
use std::path::PathBuf;
use std::time::Duration;

/// How to reach the cluster.
#[derive(Args, Debug)]
pub struct ClusterArgs {
    /// The members, as ID=HOST:PORT,ID=HOST:PORT,...
    #[arg(long, env = "DLM_NODES", value_parser = addr::parse_members)]
    pub nodes: Members,
    /// The cluster's id, as the nodes were started with.
    #[arg(long, env = "DLM_CLUSTER_ID", default_value_t = DEFAULT_CLUSTER_ID)]
    pub cluster_id: u64,
    /// File holding the cluster's shared secret, if its nodes have one.
    #[arg(long, env = "DLM_SECRET_FILE", value_name = "PATH")]
    pub secret_file: Option<PathBuf>,
    /// File holding the cluster's admin secret, for `locks`, `sessions` and `revoke` where the
    /// nodes authenticate (proved instead of --secret-file's).
    #[arg(long, env = "DLM_ADMIN_SECRET_FILE", value_name = "PATH")]
    pub admin_secret_file: Option<PathBuf>,
    /// Give up on a call after this many milliseconds.
    #[arg(long, default_value_t = 10_000)]
    pub timeout_ms: u64,
    /// Connect with TLS, checking the nodes' certificates against this CA (PEM). Each node's
    /// certificate must name the host given for it in --nodes (or --tls-server-name).
    #[arg(long, env = "DLM_TLS_CA", value_name = "PATH")]
    pub tls_ca: Option<PathBuf>,
    /// This client's certificate (PEM), for nodes that require mutual TLS.
    #[arg(long, env = "DLM_TLS_CERT", value_name = "PATH", requires_all = ["tls_key", "tls_ca"])]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, env = "DLM_TLS_KEY", value_name = "PATH", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Check this name in every node's certificate instead of the host given in --nodes.
    #[arg(
        long,
        env = "DLM_TLS_SERVER_NAME",
        value_name = "NAME",
        requires = "tls_ca"
    )]
    pub tls_server_name: Option<String>,
}

impl ClusterArgs {
    /// A client of the cluster, with `lease` for its locks.
    pub async fn connect(
        &self,
        lease: Duration,
    ) -> Result<dlm::Client<dlm::tcp::TcpClient>, String> {
        let nodes = addr::resolve_all(&self.nodes.0).await?;
        let deadline = Duration::from_millis(self.timeout_ms);
        Ok(dlm::connect_tcp_with(nodes, self.access()?, |c| {
            c.lease = lease;
            c.deadline = deadline;
        }))
    }

    pub fn access(&self) -> Result<ClusterAccess, String> {
        let mut access = ClusterAccess::new(self.cluster_id);
        if let Some(path) = &self.secret_file {
            access = access.secret(crate::server_cmd::read_secret_file(path)?);
        }
        if let Some(path) = &self.admin_secret_file {
            access = access.admin_secret(crate::server_cmd::read_secret_file(path)?);
        }
        if let Some(tls) = self.tls()? {
            access = access.tls(tls);
        }
        Ok(access)
    }

    /// The TLS settings, if --tls-ca is given: by default each node's certificate is checked
    /// for the host it was given as.
    fn tls(&self) -> Result<Option<dlm::ClientTls>, String> {
        let Some(ca) = &self.tls_ca else {
            return Ok(None);
        };
        let tls_error = |e: dlm::tcp::TlsConfigError| format!("TLS: {e}");
        let ca = dlm::TlsRoots::from_pem_file(ca).map_err(tls_error)?;
        let mut tls = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => {
                let identity = dlm::TlsIdentity::from_pem_files(cert, key).map_err(tls_error)?;
                dlm::ClientTls::with_identity(ca, identity)
            }
            _ => dlm::ClientTls::new(ca),
        }
        .map_err(tls_error)?;
        match &self.tls_server_name {
            Some(name) => tls = tls.server_name(name).map_err(tls_error)?,
            None => {
                for member in &self.nodes.0 {
                    let host = addr::host_of(&member.host_port);
                    tls = tls
                        .node_name(dlm::NodeId(member.id), host)
                        .map_err(tls_error)?;
                }
            }
        }
        Ok(Some(tls))
    }
}

/// `dlm status`: every node, each asked at once; one that does not answer is reported with why.
pub async fn status(args: ClusterArgs) -> Result<i32, String> {
    let nodes = addr::resolve_all(&args.nodes.0).await?;
    let deadline = Duration::from_millis(args.timeout_ms.min(2_000));
    let client = dlm::connect_tcp_with(nodes.clone(), args.access()?, |c| c.deadline = deadline);
    let mut unreachable = 0;
    for ((id, addr), (_, answer)) in nodes.iter().zip(client.cluster_status().await) {
        match answer {
            Ok(s) => println!(
                "node {id} ({addr}): {:?}, term {}, leader {}, commit {}, applied {}",
                s.role,
                s.term,
                s.leader.map_or("none".to_string(), |l| l.to_string()),
                s.commit,
                s.applied
            ),
            Err(e) => {
                unreachable += 1;
                println!("node {id} ({addr}): {e}");
            }
        }
    }
    Ok(i32::from(unreachable > 0))
}

/// `dlm append`.
#[derive(Args, Debug)]
pub struct AppendArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// The lock guarding the file.
    pub lock: String,
    /// The file.
    pub file: String,
    /// The text (a newline is added).
    pub text: String,
}

pub async fn append(args: AppendArgs) -> Result<i32, String> {
    let client = args.cluster.connect(Duration::from_secs(10)).await?;
    let wait = Duration::from_millis(args.cluster.timeout_ms);
    let guard = client
        .lock_timeout(args.lock.as_str(), wait)
        .await
        .map_err(|e| format!("cannot take {}: {e}", args.lock))?;
    let token = guard.token();
    let data = format!("{}\n", args.text).into_bytes();
    let appended = client.append(&guard, args.file.as_str(), data).await;
    let released = client.release(guard).await;
    let offset = appended.map_err(|e| format!("append to {}: {e}", args.file))?;
    released.map_err(|e| format!("release {}: {e}", args.lock))?;
    println!(
        "appended to {} at offset {offset} under token {token}",
        args.file
    );
    Ok(0)
}

/// `dlm read`.
#[derive(Args, Debug)]
pub struct ReadArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// The file.
    pub file: String,
}

pub async fn read(args: ReadArgs) -> Result<i32, String> {
    let client = args.cluster.connect(Duration::from_secs(10)).await?;
    let data = client
        .read(args.file.as_str())
        .await
        .map_err(|e| format!("read {}: {e}", args.file))?;
    use std::io::Write;
    std::io::stdout()
        .write_all(&data)
        .map_err(|e| format!("stdout: {e}"))?;
    Ok(0)
}
