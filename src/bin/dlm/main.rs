//! `dlm`: run a node, or talk to a cluster from the shell.
//!
//! ```sh
//! dlm server --id 1 --listen 0.0.0.0:7001 --peer 2=node2:7001 --peer 3=node3:7001 --data-dir /var/lib/dlm
//! export DLM_NODES=1=node1:7001,2=node2:7001,3=node3:7001
//! dlm status
//! dlm lock jobs -- sh -c 'echo "token $DLM_FENCING_TOKEN"'
//! dlm append jobs journal "hello"
//! dlm read journal
//! dlm members                      # and: dlm members add 4 node4:7001, promote 4, remove 1
//! dlm locks jobs/ && dlm sessions && dlm revoke jobs   # --admin-secret-file where nodes authenticate
//! ```

mod addr;
mod admin_cmds;
mod client_cmds;
mod lock_cmd;
mod members_cmd;
mod server_cmd;
mod server_config;
mod watch_cmds;

use clap::{Parser, Subcommand};

/// Run a dlm node, or talk to a dlm cluster.
#[derive(Parser, Debug)]
#[command(name = "dlm", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run one node of a cluster until SIGINT or SIGTERM (exits non-zero if the node stops on
    /// its own, a full disk say, so that a supervisor restarts it).
    Server(server_config::ServerArgs),
    /// Each node's role, term, leader and commit index.
    Status(client_cmds::ClusterArgs),
    /// Run a command while holding a lock: its fencing token is in `DLM_FENCING_TOKEN`, its
    /// lease is kept alive meanwhile, and the command is stopped if the lock is lost.
    Lock(lock_cmd::LockArgs),
    /// Take a lock, append TEXT (and a newline) to FILE under its token, release it.
    Append(client_cmds::AppendArgs),
    /// Print a guarded file.
    Read(client_cmds::ReadArgs),
    /// The members, one line each (address, role, term, leader, commit and applied index),
    /// and the configuration in force; `members add ID ADDR`, `members promote ID` and
    /// `members remove ID` change it, one server at a time (admin only where the nodes
    /// authenticate).
    #[command(args_conflicts_with_subcommands = true)]
    Members(members_cmd::MembersArgs),
    /// The locks that are held, queued for or delayed (optionally those starting with PREFIX):
    /// holder session, fencing token, lease left, number of waiters. Admin only where the
    /// nodes authenticate.
    Locks(admin_cmds::LocksArgs),
    /// The client sessions: locks held, acquires waiting, time since last heard. Admin only
    /// where the nodes authenticate.
    Sessions(admin_cmds::SessionsArgs),
    /// Take LOCK away from its holder: the next waiter gets it under a newer fencing token, and
    /// the old holder's appends are refused. Admin only where the nodes authenticate.
    Revoke(admin_cmds::RevokeArgs),
    /// Follow LOCK: its state now, then one line per event (granted, released, expired,
    /// revoked, proclaimed, queue length), each with its position for `--after`.
    Watch(watch_cmds::WatchArgs),
    /// Print a guarded file from --offset; with -f, every append as it commits.
    Tail(watch_cmds::TailArgs),
    /// Stand for election NAME: wait to lead (in campaign order), proclaim VALUE, run a
    /// command while leading (its fencing token in DLM_FENCING_TOKEN), then resign.
    Campaign(watch_cmds::CampaignArgs),
    /// Print who leads election NAME (client, token, proclaimed value), now and at every change.
    Observe(watch_cmds::ObserveArgs),
}

fn main() {
    let cli = Cli::parse();
    // A node runs best on one thread: no cross-thread wake-ups (BENCHMARKS.md).
    let runtime = match &cli.command {
        Command::Server(_) => tokio::runtime::Builder::new_current_thread(),
        _ => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            builder.worker_threads(2);
            builder
        }
    }
    .enable_all()
    .build();
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("dlm: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    let code = runtime.block_on(async {
        match cli.command {
            Command::Server(args) => server_cmd::run(args).await,
            Command::Status(args) => client_cmds::status(args).await,
            Command::Lock(args) => lock_cmd::run(args).await,
            Command::Append(args) => client_cmds::append(args).await,
            Command::Read(args) => client_cmds::read(args).await,
            Command::Members(args) => members_cmd::run(args).await,
            Command::Locks(args) => admin_cmds::locks(args).await,
            Command::Sessions(args) => admin_cmds::sessions(args).await,
            Command::Watch(args) => watch_cmds::watch(args).await,
            Command::Tail(args) => watch_cmds::tail(args).await,
            Command::Campaign(args) => watch_cmds::campaign(args).await,
            Command::Observe(args) => watch_cmds::observe(args).await,
            Command::Revoke(args) => admin_cmds::revoke(args).await,
        }
    });
    match code {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("dlm: {e}");
            std::process::exit(1);
        }
    }
}
