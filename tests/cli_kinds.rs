//! `dlm lock --read | --write | --permits N`: readers run their commands together, a writer
//! waits for them, a semaphore admits its permits, and the wrong kind or a semaphore of no
//! permits is refused with a reason and a non-zero status.
#![cfg(all(feature = "cli", unix))]

mod cli_support;

use cli_support::{dlm, lone_node, output, text};
use std::process::Stdio;
use std::time::Duration;

/// Starts `dlm lock NAME` with `flags` running a command that says it started, then waits
/// until `dir/go` exists; returns once the command runs under the lock.
async fn hold(
    nodes: &str,
    flags: &[&str],
    name: &str,
    dir: &std::path::Path,
) -> std::process::Child {
    let script = format!(
        "echo \"started $DLM_LOCK_MODE\"; while [ ! -e {}/go ]; do sleep 0.02; done",
        dir.display()
    );
    let mut args = vec!["lock", "--nodes", nodes];
    args.extend_from_slice(flags);
    args.extend_from_slice(&[name, "--", "sh", "-c", &script]);
    let mut cmd = dlm(&args);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let started = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        let mut line = String::new();
        let _ = std::io::BufReader::new(stdout).read_line(&mut line);
        line
    });
    let line = tokio::time::timeout(Duration::from_secs(20), started)
        .await
        .unwrap()
        .unwrap();
    assert!(line.starts_with("started "), "{line:?}");
    child
}

async fn finish(child: std::process::Child) -> std::process::Output {
    tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_run_together_a_writer_waits_and_a_semaphore_counts() {
    let (server, nodes) = lone_node().await;
    let dir = tempfile::tempdir().unwrap();
    let reader = hold(&nodes, &["--read"], "rw", dir.path()).await;

    // A second reader runs at once, beside the first.
    let script = r#"echo "$DLM_LOCK_MODE $DLM_FENCING_TOKEN""#;
    let out = output(dlm(&[
        "lock",
        "--nodes",
        &nodes,
        "--read",
        "--wait-ms",
        "5000",
        "rw",
        "--",
        "sh",
        "-c",
        script,
    ]))
    .await;
    assert!(out.status.success(), "{out:?}");
    assert!(text(&out.stdout).starts_with("read "), "{out:?}");
    // A writer cannot run beside the reader: it gives up after its wait.
    let out = output(dlm(&[
        "lock",
        "--nodes",
        &nodes,
        "--write",
        "--wait-ms",
        "200",
        "rw",
        "--",
        "true",
    ]))
    .await;
    assert!(!out.status.success(), "{out:?}");
    assert!(
        text(&out.stderr).contains("cannot take rw (write)"),
        "{out:?}"
    );
    // Nor a plain lock of the same name: the name is a read-write lock while it is held.
    let out = output(dlm(&["lock", "--nodes", &nodes, "rw", "--", "true"])).await;
    assert!(!out.status.success(), "{out:?}");
    assert!(text(&out.stderr).contains("shared"), "{out:?}");

    // Two permits of a semaphore of 2 are out together; a third would wait.
    let first = hold(&nodes, &["--permits", "2"], "pool", dir.path()).await;
    let second = hold(&nodes, &["--permits", "2"], "pool", dir.path()).await;
    let out = output(dlm(&[
        "lock",
        "--nodes",
        &nodes,
        "--permits",
        "2",
        "--wait-ms",
        "200",
        "pool",
        "--",
        "true",
    ]))
    .await;
    assert!(!out.status.success(), "{out:?}");
    let out = output(dlm(&[
        "lock",
        "--nodes",
        &nodes,
        "--permits",
        "0",
        "x",
        "--",
        "true",
    ]))
    .await;
    assert!(!out.status.success(), "{out:?}");
    assert!(text(&out.stderr).contains("permit"), "{out:?}");

    // `dlm locks` lists every grant, one line each, with its mode.
    let out = output(dlm(&["locks", "--nodes", &nodes])).await;
    assert!(out.status.success(), "{out:?}");
    let listing = text(&out.stdout);
    assert_eq!(listing.matches("(1 of 2)").count(), 2, "{listing}");
    assert_eq!(listing.matches("(read)").count(), 1, "{listing}");

    std::fs::write(dir.path().join("go"), b"").unwrap();
    for child in [reader, first, second] {
        let out = finish(child).await;
        assert!(out.status.success(), "{out:?}");
    }
    // Everything was given back: the writer now runs at once.
    let out = output(dlm(&[
        "lock",
        "--nodes",
        &nodes,
        "--write",
        "--wait-ms",
        "5000",
        "rw",
        "--",
        "true",
    ]))
    .await;
    assert!(out.status.success(), "{out:?}");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn two_modes_at_once_are_refused_by_name() {
    let out = output(dlm(&[
        "lock",
        "--nodes",
        "1=127.0.0.1:1",
        "--read",
        "--write",
        "x",
        "--",
        "true",
    ]))
    .await;
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(text(&out.stderr).contains("--write"), "{out:?}");
}
