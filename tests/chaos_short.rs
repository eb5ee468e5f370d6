//! A short chaos run (the logic of `examples/chaos.rs`): three server processes, each this test
//! binary re-executed, SIGKILLed+restarted and SIGSTOPped+SIGCONTed on a fixed seed while clients
//! append under locks; then every acknowledged append must be on every node exactly once at its
//! offset and fencing tokens must only have grown. Timing is not deterministic, so only those
//! invariants are asserted, never how much got done. Plus the checker's own tests: it must catch
//! a lost, duplicated, misplaced or refused-yet-applied append and a token that went backwards.

#[path = "../examples/support/mod.rs"]
mod support;

#[path = "../examples/support/chaos/mod.rs"]
mod chaos;

use chaos::check::{check_file, check_tokens};
use chaos::faults::FaultKind;
use chaos::workload::{Attempt, Grant, Outcome};
use dlm::ClientError;
use std::time::Duration;
use tokio::time::Instant;

/// Runs a server node when re-executed by the cluster below; a no-op test otherwise.
#[test]
fn serve_child() {
    if let Some(served) = support::cluster::serve_if_spawned() {
        served.unwrap();
    }
}

fn options() -> chaos::Options {
    chaos::Options {
        seed: 5,
        secs: 6,
        nodes: 3,
        clients: 4,
        locks: 2,
        max_fault: Duration::from_millis(1500),
        client_deadline: Duration::from_secs(5),
        crash_all: false,
        settle: Duration::from_secs(20),
        keep: false,
        node_args: ["--exact", "serve_child", "--nocapture", "--test-threads=1"]
            .map(String::from)
            .to_vec(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_run_keeps_every_acknowledged_append() {
    let opts = options();
    let plan = chaos::plan_of(&opts);
    assert!(
        plan.iter().any(|f| f.kind == FaultKind::Kill)
            && plan.iter().any(|f| f.kind == FaultKind::Stop),
        "the seed should plan both kinds of fault: {plan:?}"
    );
    let summary = chaos::run(opts).await.unwrap();
    let text = summary.text();
    println!("{text}");
    assert!(summary.violations.is_empty(), "{text}");
    assert!(summary.probe_ok, "{text}");
    let injected: u64 = summary.faults.injected.values().sum();
    assert_eq!(injected, plan.len() as u64, "{text}");
}

fn attempt(line: &str, token: u64, outcome: Outcome) -> Attempt {
    Attempt {
        lock: 0,
        token,
        data: format!("{line}\n").into_bytes(),
        outcome,
    }
}

fn kinds(file: &[u8], attempts: &[Attempt]) -> Vec<&'static str> {
    let refs: Vec<&Attempt> = attempts.iter().collect();
    check_file("f", file, &refs)
        .1
        .iter()
        .map(|v| v.kind)
        .collect()
}

#[test]
fn file_check_accepts_acked_and_committed_unsure_appends() {
    let attempts = [
        attempt("a", 1, Outcome::Acked(0)),
        attempt(
            "b",
            2,
            Outcome::Unsure(ClientError::Unavailable(dlm::runtime::Unreachable {
                causes: Vec::new(),
            })),
        ),
        attempt("c", 3, Outcome::Acked(4)),
        attempt(
            "d",
            4,
            Outcome::Unsure(ClientError::Unavailable(dlm::runtime::Unreachable {
                causes: Vec::new(),
            })),
        ),
        attempt("e", 5, Outcome::Refused(ClientError::StaleToken)),
    ];
    assert_eq!(kinds(b"a\nb\nc\n", &attempts), Vec::<&str>::new());
}

#[test]
fn file_check_catches_every_broken_promise() {
    let acked = |line, token, at| attempt(line, token, Outcome::Acked(at));
    let attempts = [acked("a", 1, 0), acked("b", 2, 2)];
    assert_eq!(kinds(b"a\n", &attempts), ["lost"]);
    assert_eq!(kinds(b"a\nb\nb\n", &attempts), ["duplicated"]);
    assert_eq!(
        kinds(b"b\na\n", &attempts),
        ["wrong-offset", "file-token-order", "wrong-offset"]
    );
    assert_eq!(
        kinds(b"a\nx\nb\n", &attempts),
        ["unknown-data", "wrong-offset"]
    );
    assert_eq!(kinds(b"a\nb\nc", &attempts), ["torn-tail"]);
    let refused = [
        acked("a", 1, 0),
        attempt("r", 2, Outcome::Refused(ClientError::StaleToken)),
    ];
    assert_eq!(kinds(b"a\nr\n", &refused), ["refused-but-applied"]);
}

#[test]
fn token_check_catches_reuse_and_regression() {
    let t0 = Instant::now();
    let at = |ms| t0 + Duration::from_millis(ms);
    let grant = |token, sent, acked| Grant {
        lock: 0,
        token,
        sent: at(sent),
        acked: at(acked),
    };
    let kinds = |clients: &[(&str, &[Grant])]| -> Vec<&'static str> {
        check_tokens(clients).iter().map(|v| v.kind).collect()
    };
    // Overlapping acquires may come back in either order.
    let a = [grant(2, 0, 10)];
    let b = [grant(1, 5, 12)];
    assert_eq!(kinds(&[("a", &a), ("b", &b)]), Vec::<&str>::new());
    // An acquire sent after token 5 came back must get more than 5.
    let b = [grant(4, 11, 20)];
    let a = [grant(5, 0, 10)];
    assert_eq!(kinds(&[("a", &a), ("b", &b)]), ["token-regression"]);
    let b = [grant(5, 0, 12)];
    assert_eq!(kinds(&[("a", &a), ("b", &b)]), ["token-granted-twice"]);
    let a = [grant(5, 0, 10), grant(3, 0, 11)];
    assert_eq!(kinds(&[("a", &a)]), ["client-token-order"]);
}
