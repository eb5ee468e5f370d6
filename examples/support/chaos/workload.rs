//! The clients: each loops acquire → append one unique line → release on its lock, and records
//! every grant and every append attempt with how it ended.

use dlm::tcp::TcpClient;
use dlm::{Client, ClientError};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::time::Instant;

/// The name of lock `k`, and of the file it guards.
pub fn lock_name(k: usize) -> String {
    format!("lock-{k}")
}

/// The file lock `k` guards.
pub fn file_name(k: usize) -> String {
    format!("lock-{k}.log")
}

/// Who made a request: a workload client, or the final probe.
pub type Who = String;

/// One acknowledged grant.
#[derive(Clone, Debug)]
pub struct Grant {
    pub lock: usize,
    pub token: u64,
    /// When the acquire was sent, and when its grant came back.
    pub sent: Instant,
    pub acked: Instant,
}

/// How an append ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Acknowledged at this offset: it must be in the file, once, there.
    Acked(u64),
    /// A definite refusal (stale token, not the holder, ...): it must not be in the file.
    Refused(ClientError),
    /// No answer (the deadline passed): it may be in the file, at most once.
    Unsure(ClientError),
}

impl Outcome {
    fn of(result: Result<u64, ClientError>) -> Outcome {
        match result {
            Ok(offset) => Outcome::Acked(offset),
            Err(e @ (ClientError::Unavailable(_) | ClientError::Protocol(_))) => Outcome::Unsure(e),
            Err(e) => Outcome::Refused(e),
        }
    }
}

/// One append attempt.
#[derive(Clone, Debug)]
pub struct Attempt {
    pub lock: usize,
    pub token: u64,
    pub data: Vec<u8>,
    pub outcome: Outcome,
}

/// What one client did.
#[derive(Debug, Default)]
pub struct ClientLog {
    pub who: Who,
    /// In acknowledgement order.
    pub grants: Vec<Grant>,
    pub attempts: Vec<Attempt>,
    /// Complete acquire → append → release cycles.
    pub cycles: u64,
    /// Errors by `"<operation>: <kind>"`.
    pub errors: BTreeMap<String, u64>,
}

impl ClientLog {
    fn error(&mut self, op: &str, e: &ClientError) {
        *self.errors.entry(format!("{op}: {}", kind(e))).or_default() += 1;
    }
}

/// A short, stable name for an error (no tokens or hints in it, so that counts add up).
pub fn kind(e: &ClientError) -> String {
    match e {
        ClientError::Busy => "Busy".into(),
        ClientError::TimedOut => "TimedOut".into(),
        ClientError::NotHolder => "NotHolder".into(),
        ClientError::StaleToken => "StaleToken".into(),
        ClientError::Unavailable(_) => "Unavailable".into(),
        ClientError::Protocol(_) => "Protocol".into(),
        ClientError::GrantExpired => "GrantExpired".into(),
        ClientError::Refused(_) => "Refused".into(),
        ClientError::Rejected(r) => {
            let name = format!("{r:?}");
            let end = name.find([' ', '(', '{']).unwrap_or(name.len());
            format!("Rejected({})", &name[..end])
        }
        other => format!("{other:?}"),
    }
}

/// Client settings: short enough that a failover is retried well within a run; `deadline`
/// bounds each call (shorter means more calls end unanswered).
pub fn connect(nodes: &[(u64, SocketAddr)], seed: u64, deadline: Duration) -> Client<TcpClient> {
    dlm::connect_tcp_with(nodes.to_vec(), dlm::DEFAULT_CLUSTER_ID, |c| {
        c.lease = Duration::from_secs(2);
        c.attempt_timeout = Duration::from_millis(300);
        c.deadline = deadline;
        c.backoff_base = Duration::from_millis(10);
        c.backoff_cap = Duration::from_millis(200);
        c.seed = Some(seed);
    })
}

/// Longest wait for a lock in one cycle.
const WAIT: Duration = Duration::from_secs(3);

/// Cycles on lock `lock` until `until`, as client `who`.
pub async fn run_client(
    client: Client<TcpClient>,
    who: Who,
    lock: usize,
    until: Instant,
) -> ClientLog {
    let mut log = ClientLog {
        who,
        ..ClientLog::default()
    };
    let mut line = 0u64;
    while Instant::now() < until {
        if one_cycle(&client, &mut log, lock, &mut line).await.is_err() {
            // Some refusals come back at once; do not spin on them.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    log
}

/// One acquire → append → release; Err if any step failed (already counted in `log`).
pub async fn one_cycle(
    client: &Client<TcpClient>,
    log: &mut ClientLog,
    lock: usize,
    line: &mut u64,
) -> Result<(), ()> {
    let sent = Instant::now();
    let guard = match client.lock_timeout(lock_name(lock), WAIT).await {
        Ok(guard) => guard,
        Err(e) => {
            log.error("acquire", &e);
            return Err(());
        }
    };
    let token = guard.token().get();
    log.grants.push(Grant {
        lock,
        token,
        sent,
        acked: Instant::now(),
    });
    *line += 1;
    let data = format!("{} line {} token {token}\n", log.who, *line).into_bytes();
    let result = client.append(&guard, file_name(lock), data.clone()).await;
    let appended = result.is_ok();
    if let Err(e) = &result {
        log.error("append", e);
    }
    log.attempts.push(Attempt {
        lock,
        token,
        data,
        outcome: Outcome::of(result),
    });
    match client.release(guard).await {
        Ok(()) if appended => {
            log.cycles += 1;
            Ok(())
        }
        Ok(()) => Err(()),
        Err(e) => {
            log.error("release", &e);
            Err(())
        }
    }
}
