//! `dlm watch`, `dlm tail`, `dlm campaign` and `dlm observe` against a one-node cluster: the
//! lines a script reads, and resuming a watch from a printed position.
#![cfg(all(feature = "cli", unix))]

mod cli_support;

use cli_support::{dlm, lone_node, output, text};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_prints_the_state_then_each_event_and_resumes_from_a_position() {
    let (server, nodes) = lone_node().await;
    let ok = |out: &std::process::Output| {
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    let start = ok(&output(dlm(&["watch", "--nodes", &nodes, "--count", "1", "job"])).await);
    assert!(start.contains(" state holders=[] waiting=0"), "{start}");
    let after = start.split_whitespace().next().unwrap().to_string();
    ok(&output(dlm(&["append", "--nodes", &nodes, "job", "job.log", "one"])).await);
    let events = ok(&output(dlm(&[
        "watch", "--nodes", &nodes, "--after", &after, "--count", "2", "job",
    ]))
    .await);
    let lines: Vec<&str> = events.lines().collect();
    assert_eq!(lines.len(), 2, "{events}");
    assert!(lines[0].contains(" granted client=") && lines[0].contains("token=1"));
    assert!(lines[1].ends_with(" released token=1"), "{events}");

    let tail = ok(&output(dlm(&["tail", "--nodes", &nodes, "job.log"])).await);
    assert_eq!(tail, "one\n");
    let from = ok(&output(dlm(&[
        "tail", "--nodes", &nodes, "--offset", "2", "job.log",
    ]))
    .await);
    assert_eq!(from, "e\n");
    let missing = output(dlm(&["tail", "--nodes", &nodes, "never.log"])).await;
    assert!(
        !missing.status.success(),
        "a missing file is not an empty one"
    );
    assert!(
        text(&missing.stderr).contains("tail never.log: no such file"),
        "{}",
        text(&missing.stderr)
    );
    let bad = output(dlm(&["watch", "--nodes", &nodes, "--after", "x", "job"])).await;
    assert!(!bad.status.success());
    assert!(
        text(&bad.stderr).contains("INDEX.N"),
        "{}",
        text(&bad.stderr)
    );
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn campaign_runs_the_command_while_leading_and_observe_shows_the_value() {
    let (server, nodes) = lone_node().await;
    let script = r#"echo "$DLM_ELECTION $DLM_ELECTION_VALUE $DLM_FENCING_TOKEN""#;
    let out = output(dlm(&[
        "campaign",
        "--nodes",
        &nodes,
        "primary",
        "10.0.0.1:80",
        "--",
        "sh",
        "-c",
        script,
    ]))
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "primary 10.0.0.1:80 1\n");
    // It resigned on exit: nobody leads.
    let observed = output(dlm(&[
        "observe", "--nodes", &nodes, "--count", "1", "primary",
    ]))
    .await;
    assert_eq!(text(&observed.stdout), "no leader\n");

    // While a campaign's command runs, observers see its value.
    let dir = tempfile::tempdir().unwrap();
    let wait = format!(
        "while [ ! -e {}/go ]; do sleep 0.02; done",
        dir.path().display()
    );
    let mut leading = dlm(&[
        "campaign", "--nodes", &nodes, "primary", "node-a", "--", "sh", "-c", &wait,
    ])
    .spawn()
    .unwrap();
    let mut line = String::new();
    for _ in 0..200 {
        let out = output(dlm(&[
            "observe", "--nodes", &nodes, "--count", "1", "primary",
        ]))
        .await;
        line = text(&out.stdout);
        if line.contains("value=node-a") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        line.starts_with("leader client=") && line.contains("token=2"),
        "{line}"
    );
    std::fs::write(dir.path().join("go"), b"").unwrap();
    let status = tokio::task::spawn_blocking(move || leading.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success());
    server.shutdown().await.unwrap();
}
