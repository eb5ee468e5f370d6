//! `dlm lock NAME -- CMD ARGS...`: run a command while holding a lock, as `etcdctl lock` and
//! `consul lock` do. The command sees the grant's fencing token in `DLM_FENCING_TOKEN` (and the
//! lock's name in `DLM_LOCK`) to present to whatever the lock protects; the client keeps the
//! lease alive while it runs; if the lock is lost anyway (the cluster unreachable for a lease)
//! the command gets SIGTERM, then SIGKILL after a grace period, because it must not go on
//! believing it holds the lock.
//!
//! `--read` and `--write` take a read-write lock's shared or exclusive grant, `--permits N` one
//! permit of a semaphore of N: several readers, or N permit holders, run their commands at once,
//! each with its own token. `DLM_LOCK_MODE` tells the command which it got.

use crate::client_cmds::ClusterArgs;
use clap::Args;
use dlm::Mode;
use std::process::ExitStatus;
use std::time::Duration;
use tokio::process::{Child, Command};

/// Exit status when the lock was lost while the command ran (EX_TEMPFAIL: try again later).
pub const LOST: i32 = 75;

#[derive(Args, Debug)]
pub struct LockArgs {
    #[command(flatten)]
    cluster: ClusterArgs,
    /// The lock.
    lock: String,
    /// A reader's grant of a read-write lock: shared with other readers, never with a writer.
    #[arg(long, group = "mode")]
    read: bool,
    /// A writer's grant of a read-write lock: alone, after the readers that came before it.
    #[arg(long, group = "mode")]
    write: bool,
    /// One permit of a semaphore of N permits (the name's first acquire fixes N; another N is
    /// refused while anyone holds or waits for it).
    #[arg(long, group = "mode", value_name = "N")]
    permits: Option<u32>,
    /// Wait at most this long for the lock, in milliseconds (default: a day).
    #[arg(long, default_value_t = 86_400_000)]
    wait_ms: u64,
    #[command(flatten)]
    hold: HoldArgs,
}

/// What `dlm lock` and `dlm campaign` share: the lease kept while the command runs, the grace
/// it gets once the grant is lost, and the command.
#[derive(Args, Debug)]
pub struct HoldArgs {
    /// Lease in milliseconds, renewed every third of it while the command runs.
    #[arg(long, default_value_t = 10_000)]
    lease_ms: u64,
    /// Once the grant is lost, how long the command has to exit after SIGTERM before SIGKILL.
    #[arg(long, default_value_t = 2_000)]
    grace_ms: u64,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "CMD")]
    command: Vec<String>,
}

impl HoldArgs {
    /// The lease to ask for.
    pub fn lease(&self) -> Duration {
        Duration::from_millis(self.lease_ms)
    }

    /// The program and its arguments.
    pub fn program(&self) -> Result<(&String, &[String]), String> {
        self.command
            .split_first()
            .ok_or_else(|| "no command given after --".to_string())
    }

    /// Runs the command while `guard` is held ([`run_holding`]), with `env` besides.
    pub async fn run(
        &self,
        client: &dlm::Client<dlm::tcp::TcpClient>,
        guard: dlm::LockGuard<dlm::tcp::TcpClient>,
        env: &[(&str, String)],
    ) -> Result<i32, String> {
        let grace = Duration::from_millis(self.grace_ms);
        run_holding(client, guard, env, self.program()?, grace).await
    }
}

/// Runs the command under the lock. Returns the command's exit status, [`LOST`] if the lock
/// was lost, or 130 after SIGINT/SIGTERM (the command is stopped and the lock released).
pub async fn run(args: LockArgs) -> Result<i32, String> {
    args.hold.program()?;
    let client = args.cluster.connect(args.hold.lease()).await?;
    let wait = Duration::from_millis(args.wait_ms);
    let name = args.lock.as_str();
    let mode = if args.read {
        Mode::Read
    } else if args.write {
        Mode::Write
    } else if let Some(permits) = args.permits {
        Mode::Permit { permits }
    } else {
        Mode::Exclusive
    };
    let guard = match mode {
        Mode::Read => client.rwlock(name).read_timeout(wait).await,
        Mode::Write => client.rwlock(name).write_timeout(wait).await,
        Mode::Permit { permits } => client.semaphore(name, permits).acquire_timeout(wait).await,
        _ => client.lock_timeout(name, wait).await,
    }
    .map_err(|e| format!("cannot take {name} ({mode}): {e}"))?;
    let mode_name = match mode {
        Mode::Read => "read",
        Mode::Write => "write",
        Mode::Permit { .. } => "permit",
        _ => "exclusive",
    };
    let env = [
        ("DLM_LOCK", args.lock.clone()),
        ("DLM_LOCK_MODE", mode_name.to_string()),
    ];
    args.hold.run(&client, guard, &env).await
}

/// Runs `program` with `rest` while `guard` is held, with the grant's token in
/// `DLM_FENCING_TOKEN` and `env` besides; stops it if the lock is lost (returning [`LOST`]) or
/// on SIGINT/SIGTERM (130); releases the lock after it exits and returns its exit code.
async fn run_holding(
    client: &dlm::Client<dlm::tcp::TcpClient>,
    guard: dlm::LockGuard<dlm::tcp::TcpClient>,
    env: &[(&str, String)],
    (program, rest): (&String, &[String]),
    grace: Duration,
) -> Result<i32, String> {
    let lock = guard.name().to_string();
    let mut command = Command::new(program);
    // Its own process group, so that stopping it stops what it started too (a shell's
    // children), and a Ctrl-C reaches it through us, after which we release the lock.
    #[cfg(unix)]
    command.process_group(0);
    let mut child = command
        .args(rest)
        .env("DLM_FENCING_TOKEN", guard.token().get().to_string())
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    let code = tokio::select! {
        status = child.wait() => match status {
            Ok(status) => exit_code(status),
            Err(e) => {
                let _ = client.release(guard).await;
                return Err(format!("waiting for {program}: {e}"));
            }
        },
        reason = guard.lost() => {
            eprintln!(
                "dlm: lock {lock} lost (token {}): {reason}; stopping {program}",
                guard.token()
            );
            stop(&mut child, grace).await;
            return Ok(LOST);
        }
        () = interrupted() => {
            stop(&mut child, grace).await;
            130
        }
    };
    client
        .release(guard)
        .await
        .map_err(|e| format!("release {lock}: {e}"))?;
    Ok(code)
}

/// The shell's convention: the exit code, or 128 plus the signal that ended the command.
fn exit_code(status: ExitStatus) -> i32 {
    if let Some(code) = status.code() {
        return code;
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return 128 + signal;
        }
    }
    1
}

/// SIGTERM to the command's process group, then SIGKILL if the command is still running after
/// `grace`.
async fn stop(child: &mut Child, grace: Duration) {
    #[cfg(unix)]
    if let Some(pid) = child.id().and_then(|pid| libc::pid_t::try_from(pid).ok()) {
        signal_group(pid, libc::SIGTERM);
        if tokio::time::timeout(grace, child.wait()).await.is_ok() {
            return;
        }
        signal_group(pid, libc::SIGKILL);
    }
    let _ = child.kill().await;
}

/// Sends `signal` to the process group `pid` leads.
#[cfg(unix)]
fn signal_group(pid: libc::pid_t, signal: libc::c_int) {
    // SAFETY: kill(2) takes plain integers. `pid` is our own child, not yet reaped (we still
    // hold it), so neither its id nor its group's can have been reused.
    #[allow(unsafe_code)]
    unsafe {
        libc::kill(-pid, signal);
    }
}

pub async fn interrupted() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
