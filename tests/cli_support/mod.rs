//! Running the `dlm` binary from the CLI tests.
#![allow(dead_code)]

use std::process::{Command, Output, Stdio};

/// Every variable the `dlm` commands read a flag's default from: a test sets what it means to
/// and the developer's shell leaks none in.
const DLM_ENV: [&str; 8] = [
    "DLM_NODES",
    "DLM_CLUSTER_ID",
    "DLM_SECRET_FILE",
    "DLM_ADMIN_SECRET_FILE",
    "DLM_TLS_CA",
    "DLM_TLS_CERT",
    "DLM_TLS_KEY",
    "DLM_TLS_SERVER_NAME",
];

/// `dlm ARGS`, with no `DLM_*` variable from the environment and no stdin.
pub fn dlm(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dlm"));
    cmd.args(args).stdin(Stdio::null());
    for var in DLM_ENV {
        cmd.env_remove(var);
    }
    cmd
}

/// Runs `cmd` off the async runtime, so that the node in this process keeps serving.
pub async fn output(mut cmd: Command) -> Output {
    tokio::task::spawn_blocking(move || cmd.output().expect("dlm did not run"))
        .await
        .unwrap()
}

/// Output bytes as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A one-node cluster listening on a free loopback port, and its `--nodes` value.
pub async fn lone_node() -> (dlm::Server, String) {
    let at = "127.0.0.1:0".parse::<std::net::SocketAddr>().unwrap();
    let server = dlm::Server::builder().id(1).serve_tcp(at).await.unwrap();
    let nodes = format!("1={}", server.local_addr().unwrap());
    (server, nodes)
}
