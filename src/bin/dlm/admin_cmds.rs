//! The operators' subcommands: locks, sessions, revoke. Where the nodes authenticate, they
//! need `--admin-secret-file`.

use crate::client_cmds::ClusterArgs;
use clap::Args;
use dlm::introspection::{LockInfo, SessionInfo, MAX_PAGE};
use dlm::Mode;
use std::future::Future;
use std::time::Duration;

/// `dlm locks`.
#[derive(Args, Debug)]
pub struct LocksArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Only locks whose names start with this.
    #[arg(default_value = "")]
    pub prefix: String,
    /// Print at most this many (0: all of them).
    #[arg(long, default_value_t = 1000)]
    pub limit: u64,
}

/// Prints the locks that are held, queued for or delayed, in name order, fetched page by page.
pub async fn locks(args: LocksArgs) -> Result<i32, String> {
    let client = args.cluster.connect(Duration::from_secs(10)).await?;
    println!(
        "{:<32} {:<32} {:>8} {:>10} WAITERS",
        "LOCK", "HOLDER", "TOKEN", "LEASE LEFT"
    );
    let (client, prefix) = (&client, args.prefix.as_str());
    let fetch = move |after, want| async move {
        let page = client
            .locks_page(prefix, after, want)
            .await
            .map_err(|e| format!("cannot list locks: {e}"))?;
        Ok((page.locks, page.next))
    };
    print_pages(args.limit, fetch, |lock: &LockInfo| {
        // One line per grant listed (a shared lock or a semaphore may have several), with
        // the mode after the holder when it is not the plain exclusive one.
        let mut rows: Vec<(String, String, String)> = lock
            .holders
            .iter()
            .map(|h| {
                let mode = match h.mode {
                    Mode::Exclusive => String::new(),
                    Mode::Read => " (read)".into(),
                    Mode::Write => " (write)".into(),
                    Mode::Permit { permits } => format!(" (1 of {permits})"),
                };
                (
                    format!("{:032x}{mode}", h.client.0),
                    h.token.to_string(),
                    h.lease_left.map_or("-".into(), |d| format!("{d:.1?}")),
                )
            })
            .collect();
        if rows.is_empty() {
            let holder = if lock.delayed { "(lock-delay)" } else { "-" };
            rows.push((holder.into(), "-".into(), "-".into()));
        }
        for (holder, token, left) in rows {
            println!(
                "{:<32} {holder:<32} {token:>8} {left:>10} {}",
                lock.lock.as_str(),
                lock.waiting
            );
        }
    })
    .await
}

/// `dlm sessions`.
#[derive(Args, Debug)]
pub struct SessionsArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Print at most this many (0: all of them).
    #[arg(long, default_value_t = 1000)]
    pub limit: u64,
}

/// Prints the client sessions, what each holds and waits for, and how long it has been idle.
pub async fn sessions(args: SessionsArgs) -> Result<i32, String> {
    let client = args.cluster.connect(Duration::from_secs(10)).await?;
    println!(
        "{:<32} {:>8} {:>8} {:>10} HELD",
        "CLIENT", "HOLDING", "WAITING", "IDLE"
    );
    let client = &client;
    let fetch = move |after, want| async move {
        let page = client
            .sessions_page(after, want)
            .await
            .map_err(|e| format!("cannot list sessions: {e}"))?;
        Ok((page.sessions, page.next))
    };
    print_pages(args.limit, fetch, |s: &SessionInfo| {
        let held: Vec<&str> = s.held.iter().map(|l| l.as_str()).collect();
        let idle = s.idle.map_or("-".into(), |d| format!("{d:.1?}"));
        println!(
            "{:<32} {:>8} {:>8} {idle:>10} {}",
            format!("{:032x}", s.client.0),
            s.holding,
            s.waiting,
            held.join(",")
        );
    })
    .await
}

/// Fetches pages (`fetch(after, at_most)` gives a page's rows and the cursor of the next) and
/// prints each row, until none is left or `limit` rows are printed (0: no limit).
async fn print_pages<Row, Cursor, Fut>(
    limit: u64,
    fetch: impl Fn(Option<Cursor>, u32) -> Fut,
    print: impl Fn(&Row),
) -> Result<i32, String>
where
    Cursor: std::fmt::Display,
    Fut: Future<Output = Result<(Vec<Row>, Option<Cursor>), String>>,
{
    let limit = if limit == 0 { u64::MAX } else { limit };
    let (mut printed, mut after) = (0u64, None);
    loop {
        let want = u32::try_from(limit - printed).unwrap_or(MAX_PAGE);
        let (rows, next) = fetch(after, want).await?;
        rows.iter().for_each(&print);
        printed += rows.len() as u64;
        match next {
            Some(next) if printed >= limit => {
                eprintln!("(stopped at --limit {limit}; more after {next})");
                return Ok(0);
            }
            Some(next) => after = Some(next),
            None => return Ok(0),
        }
    }
}

/// `dlm revoke`.
#[derive(Args, Debug)]
pub struct RevokeArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// The lock to take away from its holder.
    pub lock: String,
}

/// Force-releases a lock; the next waiter gets it under a newer token.
pub async fn revoke(args: RevokeArgs) -> Result<i32, String> {
    let client = args.cluster.connect(Duration::from_secs(10)).await?;
    let (holder, token) = client
        .revoke(args.lock.as_str())
        .await
        .map_err(|e| format!("cannot revoke {}: {e}", args.lock))?;
    println!(
        "revoked {} from client {:032x} (token {token}; appends under it are refused)",
        args.lock, holder.0
    );
    Ok(0)
}
