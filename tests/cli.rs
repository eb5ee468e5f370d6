//! The `dlm` command against a live node: `lock -- CMD` hands the command its fencing token,
//! passes its exit status through, and stops it when the lock is lost; `server` refuses bad
//! set-ups with a clear message and a non-zero status; TLS from the flags on both sides.
#![cfg(all(feature = "cli", unix))]

mod cli_support;
#[path = "support/ports.rs"]
mod ports;

#[path = "../dlm-transport-tcp/tests/common/pki.rs"]
mod pki;

use cli_support::{dlm, lone_node, output, text};
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_under_a_lock_gets_the_token_and_its_status_passes_through() {
    let (server, nodes) = lone_node().await;
    let script = r#"echo "token=$DLM_FENCING_TOKEN lock=$DLM_LOCK""#;
    let out = output(dlm(&[
        "lock", "--nodes", &nodes, "jobs", "--", "sh", "-c", script,
    ]))
    .await;
    assert!(out.status.success(), "{out:?}");
    let stdout = text(&out.stdout);
    let token: u64 = stdout
        .trim()
        .strip_prefix("token=")
        .and_then(|rest| rest.split(' ').next())
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("no token in {stdout:?}"));
    assert!(token > 0);
    assert!(stdout.contains("lock=jobs"), "{stdout}");

    // The lock was released: a second run gets it, with a newer token, and its exit status
    // comes back as the command's.
    let out = output(dlm(&[
        "lock", "--nodes", &nodes, "jobs", "--", "sh", "-c", "exit 3",
    ]))
    .await;
    assert_eq!(out.status.code(), Some(3), "{out:?}");

    let out = output(dlm(&["status", "--nodes", &nodes])).await;
    assert!(out.status.success(), "{out:?}");
    assert!(text(&out.stdout).contains("Leader"), "{out:?}");
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_whose_lock_is_lost_is_stopped() {
    let (server, nodes) = lone_node().await;
    let mut cmd = dlm(&[
        "lock",
        "--nodes",
        &nodes,
        "--lease-ms",
        "1000",
        "--timeout-ms",
        "500",
        "jobs",
        "--",
        "sh",
        "-c",
        "echo started; sleep 60",
        // (the whole process group is stopped, so the shell's child too)
    ]);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    // Wait until the command runs under the lock, then take the cluster away.
    let stdout = child.stdout.take().unwrap();
    let started = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        let mut line = String::new();
        let _ = std::io::BufReader::new(stdout).read_line(&mut line);
        line
    });
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(20), started)
            .await
            .unwrap()
            .unwrap(),
        "started\n"
    );
    server.kill().await;
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::task::spawn_blocking(move || child.wait_with_output().unwrap()),
    )
    .await
    .expect("the command was not stopped after its lock was lost")
    .unwrap();
    assert_eq!(out.status.code(), Some(75), "{out:?}");
    assert!(text(&out.stderr).contains("lost"), "{out:?}");
}

#[tokio::test]
async fn the_server_refuses_bad_set_ups_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let out = output(dlm(&[
        "server",
        "--id",
        "1",
        "--listen",
        "127.0.0.1:0",
        "--peer",
        "1=127.0.0.1:7001",
        "--data-dir",
        data,
    ]))
    .await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(text(&out.stderr).contains("its own peer"), "{out:?}");

    // A directory used by node 1 refuses node 2.
    let server = dlm::Server::builder()
        .id(1)
        .data_dir(dir.path())
        .serve_tcp("127.0.0.1:0".parse::<SocketAddr>().unwrap())
        .await
        .unwrap();
    server.shutdown().await.unwrap();
    let out = output(dlm(&[
        "server",
        "--id",
        "2",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        data,
    ]))
    .await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(text(&out.stderr).contains("belongs to node 1"), "{out:?}");

    let out = output(dlm(&["lock", "--nodes", "1=nowhere", "x", "--", "true"])).await;
    assert_ne!(out.status.code(), Some(0), "{out:?}");
    assert!(text(&out.stderr).contains("HOST:PORT"), "{out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_runs_from_a_config_file_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let port = ports::free_port();
    let config = dir.path().join("dlm.toml");
    let data = dir.path().join("data");
    std::fs::write(
        &config,
        format!(
            "id = 1\nlisten = \"127.0.0.1:{port}\"\ndata_dir = {:?}\n",
            data
        ),
    )
    .unwrap();
    let log = dir.path().join("server.log");
    let mut server = dlm(&["server", "--config", config.to_str().unwrap()])
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let nodes = format!("1=localhost:{port}");
    let mut leader = false;
    for _ in 0..100 {
        let out = output(dlm(&["status", "--nodes", &nodes])).await;
        if text(&out.stdout).contains("Leader") {
            leader = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // SAFETY: kill(2) on our own child, still unreaped.
    #[allow(unsafe_code)]
    unsafe {
        libc::kill(server.id() as libc::pid_t, libc::SIGTERM);
    }
    let status = tokio::task::spawn_blocking(move || server.wait().unwrap())
        .await
        .unwrap();
    assert!(leader, "the node never led");
    assert_eq!(status.code(), Some(0), "{status:?}");
    assert!(data.join("dlm-identity").exists());
    // Its log, going to a file as to the journal, is plain text.
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(log.contains("node started"), "{log}");
    assert!(
        !log.contains('\x1b'),
        "terminal colours in a log file: {log}"
    );

    // A typo in the file is refused, by name.
    std::fs::write(&config, "id = 1\nelection_msec = 5\n").unwrap();
    let out = output(dlm(&["server", "--config", config.to_str().unwrap()])).await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(text(&out.stderr).contains("election_msec"), "{out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_commands_take_the_cluster_id_from_the_environment() {
    let server = dlm::Server::builder()
        .id(1)
        .cluster_id(7)
        .serve_tcp("127.0.0.1:0".parse::<SocketAddr>().unwrap())
        .await
        .unwrap();
    let nodes = format!("1={}", server.local_addr().unwrap());
    let status = |cluster: Option<&str>| {
        let mut cmd = dlm(&["status", "--nodes", &nodes, "--timeout-ms", "3000"]);
        if let Some(id) = cluster {
            cmd.env("DLM_CLUSTER_ID", id);
        }
        output(cmd)
    };

    let wrong = status(None).await;
    assert!(
        !wrong.status.success(),
        "another cluster's node answered: {wrong:?}"
    );
    let right = status(Some("7")).await;
    assert!(right.status.success(), "{right:?}");
    server.shutdown().await.unwrap();
}

/// Sends SIGTERM to `child` and waits for it.
async fn terminate(mut child: std::process::Child) -> std::process::ExitStatus {
    // SAFETY: kill(2) on our own child, still unreaped.
    #[allow(unsafe_code)]
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_from_the_flags_serves_certified_clients_and_tells_the_others_why() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let (ca, other_ca) = (pki::Ca::new("dlm CLI CA"), pki::Ca::new("another CA"));
    let node = ca.issue(&["localhost"]);
    let client = ca.issue(&["dlm CLI client"]);
    let ca_pem = file("ca.pem", &ca.pem);
    let other_ca_pem = file("other-ca.pem", &other_ca.pem);
    let (node_pem, node_key) = (
        file("node.pem", &node.cert_pem),
        file("node.key", &node.key_pem),
    );
    let client_pem = file("client.pem", &client.cert_pem);
    let client_key = file("client.key", &client.key_pem);
    let port = ports::free_port();
    let listen = format!("127.0.0.1:{port}");
    let data = dir.path().join("data");
    let log = std::fs::File::create(dir.path().join("node.log")).unwrap();
    let server = dlm(&[
        "server",
        "--id",
        "1",
        "--listen",
        &listen,
        "--data-dir",
        data.to_str().unwrap(),
        "--tls-cert",
        &node_pem,
        "--tls-key",
        &node_key,
        "--tls-ca",
        &ca_pem,
    ])
    .stderr(log)
    .spawn()
    .unwrap();
    // Nodes given by host name: "localhost" is what the certificate names.
    let nodes = format!("1=localhost:{port}");
    let certified = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--nodes", &nodes, "--tls-ca", &ca_pem]);
        all.extend(["--tls-cert", &client_pem, "--tls-key", &client_key]);
        dlm(&all)
    };
    let mut leader = false;
    for _ in 0..100 {
        let out = output(certified(&["status"])).await;
        if text(&out.stdout).contains("Leader") {
            leader = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Garbage where a ClientHello belongs: the node closes that connection and logs it.
    let mut raw = tokio::net::TcpStream::connect(&listen).await.unwrap();
    let _ = raw
        .write_all(&[0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5])
        .await;
    let _ = raw.read_to_end(&mut Vec::new()).await;

    let appended = output(certified(&["append", "jobs", "journal", "over TLS"])).await;
    let mut no_cert = dlm(&["status", "--nodes", &nodes, "--tls-ca", &ca_pem]);
    // The CA from the environment, as a deployment would set it.
    no_cert.env("DLM_TLS_CA", &ca_pem);
    let no_cert = output(no_cert).await;
    let wrong_ca = output(dlm(&[
        "status",
        "--nodes",
        &nodes,
        "--tls-ca",
        &other_ca_pem,
    ]))
    .await;
    let plain = output(dlm(&["status", "--nodes", &nodes])).await;
    let status = terminate(server).await;

    assert!(leader, "the node never led");
    assert!(appended.status.success(), "{appended:?}");
    assert_eq!(no_cert.status.code(), Some(1), "{no_cert:?}");
    assert!(
        text(&no_cert.stdout).contains("requires a certificate"),
        "{no_cert:?}"
    );
    assert_eq!(wrong_ca.status.code(), Some(1), "{wrong_ca:?}");
    assert!(
        text(&wrong_ca.stdout).contains("certificate not trusted"),
        "{wrong_ca:?}"
    );
    assert_eq!(plain.status.code(), Some(1), "{plain:?}");
    assert!(text(&plain.stdout).contains("serves TLS only"), "{plain:?}");
    assert_eq!(status.code(), Some(0), "{status:?}");
    let log = std::fs::read_to_string(dir.path().join("node.log")).unwrap();
    let garbage: Vec<_> = log
        .lines()
        .filter(|l| l.contains("does not speak TLS"))
        .collect();
    assert_eq!(garbage.len(), 1, "{log}");
}

/// An unknown subcommand or flag is refused by name, with the usage, and runs nothing.
#[tokio::test]
async fn unknown_subcommands_and_flags_are_refused_by_name() {
    let out = output(dlm(&["frobnicate"])).await;
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        text(&out.stderr).contains("unrecognized subcommand 'frobnicate'"),
        "{out:?}"
    );
    let out = output(dlm(&["status", "--frob", "1"])).await;
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        text(&out.stderr).contains("unexpected argument '--frob'"),
        "{out:?}"
    );
}
