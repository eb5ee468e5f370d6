//! `dlm watch`, `dlm tail`, `dlm campaign` and `dlm observe`: following a lock's events or a
//! file's appends, and leader election from the shell.

use crate::client_cmds::ClusterArgs;
use crate::lock_cmd;
use clap::Args;
use dlm::{ClientError, EventPosition, LockChange, LogIndex, Rejection, WatchUpdate};
use std::io::Write;
use std::time::Duration;

/// `dlm watch`.
#[derive(Args, Debug)]
pub struct WatchArgs {
    #[command(flatten)]
    cluster: ClusterArgs,
    /// The lock.
    lock: String,
    /// Resume after this position (INDEX.N, as printed), instead of starting from the lock's
    /// current state.
    #[arg(long, value_parser = parse_position, value_name = "INDEX.N")]
    after: Option<EventPosition>,
    /// Stop after this many lines.
    #[arg(long)]
    count: Option<u64>,
}

fn parse_position(text: &str) -> Result<EventPosition, String> {
    let (index, n) = text
        .split_once('.')
        .ok_or_else(|| format!("expected INDEX.N, got {text:?}"))?;
    let index = index.parse().map_err(|e| format!("index {index:?}: {e}"))?;
    let n = match n {
        "end" => u32::MAX,
        n => n.parse().map_err(|e| format!("event {n:?}: {e}"))?,
    };
    Ok(EventPosition {
        index: LogIndex(index),
        n,
    })
}

fn position(at: EventPosition) -> String {
    if at.is_end() {
        format!("{}.end", at.index.get())
    } else {
        format!("{}.{}", at.index.get(), at.n)
    }
}

fn describe(change: &LockChange) -> String {
    match change {
        LockChange::Granted {
            client,
            token,
            mode,
        } => format!("granted client={client} token={token} mode={mode}"),
        LockChange::Released { token } => format!("released token={token}"),
        LockChange::Expired { token } => format!("expired token={token}"),
        LockChange::Revoked { token } => format!("revoked token={token}"),
        LockChange::Proclaimed { token, value } => {
            format!(
                "proclaimed token={token} value={}",
                String::from_utf8_lossy(value)
            )
        }
        LockChange::Queue { waiting } => format!("queue waiting={waiting}"),
    }
}

/// Prints one line per update, until `--count` lines or SIGINT. A line starts with the
/// position to pass to `--after` to resume after it.
pub async fn watch(args: WatchArgs) -> Result<i32, String> {
    let client = args.cluster.connect(Duration::from_secs(10)).await?;
    let mut watch = match args.after {
        Some(after) => client.watch_lock_from(args.lock.as_str(), after),
        None => client.watch_lock(args.lock.as_str()),
    };
    let mut printed = 0;
    while args.count.is_none_or(|count| printed < count) {
        let update = tokio::select! {
            update = watch.next() => update.map_err(|e| format!("watch {}: {e}", args.lock))?,
            () = lock_cmd::interrupted() => return Ok(130),
        };
        let line = match update {
            WatchUpdate::State {
                view,
                at,
                compacted,
            } => {
                let holders: Vec<String> = view
                    .holders
                    .iter()
                    .map(|h| format!("{}:{}:{}", h.client, h.token, h.mode))
                    .collect();
                let value = view.proclaimed.as_ref().map_or(String::new(), |(_, v)| {
                    format!(" value={}", String::from_utf8_lossy(v))
                });
                format!(
                    "{} state holders=[{}] waiting={}{value}{}",
                    position(at),
                    holders.join(","),
                    view.waiting,
                    if compacted { " compacted" } else { "" }
                )
            }
            WatchUpdate::Event(event) => {
                format!("{} {}", position(event.at), describe(&event.change))
            }
        };
        println!("{line}");
        let _ = std::io::stdout().flush();
        printed += 1;
    }
    Ok(0)
}

/// `dlm tail`.
#[derive(Args, Debug)]
pub struct TailArgs {
    #[command(flatten)]
    cluster: ClusterArgs,
    /// The file.
    file: String,
    /// Start at this byte.
    #[arg(long, default_value_t = 0)]
    offset: u64,
    /// Keep waiting for appends (until SIGINT), as `tail -f`.
    #[arg(long, short = 'f')]
    follow: bool,
}

/// Prints the file from `--offset`; with `--follow`, every append as it commits. A file
/// that does not exist (none has ever appended to it) is an error without `--follow`, as for
/// `tail`; with it, a note on stderr, then the wait for its first append.
pub async fn tail(args: TailArgs) -> Result<i32, String> {
    let client = args.cluster.connect(Duration::from_secs(10)).await?;
    let mut offset = args.offset;
    // A tail reads a missing file as empty; one read tells the two apart.
    match client.read_at(args.file.as_str(), 0).await {
        Err(ClientError::Rejected(Rejection::NoSuchFile)) if args.follow => {
            eprintln!(
                "dlm tail: {} does not exist yet: waiting for its first append",
                args.file
            );
        }
        Err(ClientError::Rejected(Rejection::NoSuchFile)) => {
            return Err(format!("tail {}: no such file", args.file));
        }
        Err(e) => return Err(format!("tail {}: {e}", args.file)),
        Ok(_) => {}
    }
    loop {
        let wait = if args.follow {
            Duration::from_secs(3600)
        } else {
            Duration::ZERO
        };
        let (data, len) = tokio::select! {
            read = client.tail(args.file.as_str(), offset, wait) => {
                read.map_err(|e| format!("tail {}: {e}", args.file))?
            }
            () = lock_cmd::interrupted() => return Ok(130),
        };
        let mut out = std::io::stdout();
        out.write_all(&data)
            .and_then(|()| out.flush())
            .map_err(|e| format!("stdout: {e}"))?;
        offset += data.len() as u64;
        if !args.follow && offset >= len {
            return Ok(0);
        }
    }
}

/// `dlm campaign`.
#[derive(Args, Debug)]
pub struct CampaignArgs {
    #[command(flatten)]
    cluster: ClusterArgs,
    /// The election.
    name: String,
    /// What to proclaim once leading (an address, an id).
    value: String,
    #[command(flatten)]
    hold: lock_cmd::HoldArgs,
}

/// Waits to lead, proclaims the value, runs the command while leading (stopped if leadership
/// is lost), then resigns. Exit codes as `dlm lock`.
pub async fn campaign(args: CampaignArgs) -> Result<i32, String> {
    args.hold.program()?;
    let client = args.cluster.connect(args.hold.lease()).await?;
    let election = client.election(args.name.as_str());
    let leadership = tokio::select! {
        won = election.campaign(args.value.clone().into_bytes()) => {
            won.map_err(|e| format!("campaign {}: {e}", args.name))?
        }
        () = lock_cmd::interrupted() => return Ok(130),
    };
    let env = [
        ("DLM_ELECTION", args.name.clone()),
        ("DLM_ELECTION_VALUE", args.value.clone()),
    ];
    args.hold.run(&client, leadership.into_guard(), &env).await
}

/// `dlm observe`.
#[derive(Args, Debug)]
pub struct ObserveArgs {
    #[command(flatten)]
    cluster: ClusterArgs,
    /// The election.
    name: String,
    /// Stop after this many lines.
    #[arg(long)]
    count: Option<u64>,
}

/// Prints the leader (client, token, value) now and after every change, until SIGINT.
pub async fn observe(args: ObserveArgs) -> Result<i32, String> {
    let client = args.cluster.connect(Duration::from_secs(10)).await?;
    let mut observer = client.election(args.name.as_str()).observe();
    let mut printed = 0;
    while args.count.is_none_or(|count| printed < count) {
        let leader = tokio::select! {
            next = observer.next() => next.map_err(|e| format!("observe {}: {e}", args.name))?,
            () = lock_cmd::interrupted() => return Ok(130),
        };
        match leader {
            Some(l) => println!(
                "leader client={} token={} value={}",
                l.client,
                l.token,
                l.value
                    .as_deref()
                    .map_or("-".into(), String::from_utf8_lossy)
            ),
            None => println!("no leader"),
        }
        let _ = std::io::stdout().flush();
        printed += 1;
    }
    Ok(0)
}
