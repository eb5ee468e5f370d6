//! `dlm members`: how each member sees itself and the configuration in force; `dlm members
//! add|promote|remove` change it, one server at a time, and `dlm members replace` does the
//! three steps of replacing a node (each skipped when already done, so it can be rerun). A
//! change the leader cannot take yet (just elected, or the previous change not committed) is
//! asked again for up to 10 s. Changes need `--admin-secret-file`
//! where the nodes authenticate.

use crate::addr;
use crate::client_cmds::ClusterArgs;
use clap::{Args, Subcommand};
use dlm::introspection::MembersInfo;
use dlm::{Membership, NodeId};
use std::time::Duration;

/// `dlm members [add|promote|remove]`.
#[derive(Args, Debug)]
pub struct MembersArgs {
    #[command(subcommand)]
    pub change: Option<Change>,
    #[command(flatten)]
    pub cluster: Option<ClusterArgs>,
}

/// A membership change.
#[derive(Subcommand, Debug)]
pub enum Change {
    /// Add node ID, reachable at ADDR, as a learner: it gets the log but no vote until promoted.
    Add {
        /// The new node's id.
        id: u64,
        /// Where the nodes reach it (HOST:PORT).
        addr: String,
        #[command(flatten)]
        cluster: ClusterArgs,
    },
    /// Make learner ID a voter, once it has caught up (else refused as not caught up).
    Promote {
        /// The learner's id.
        id: u64,
        #[command(flatten)]
        cluster: ClusterArgs,
    },
    /// Take node ID out of the configuration (a leader removing itself hands over first).
    Remove {
        /// The member's id.
        id: u64,
        #[command(flatten)]
        cluster: ClusterArgs,
    },
    /// Replace member OLD by node NEW_ID at NEW_ADDR: add it as a learner, promote it once
    /// caught up, remove OLD. Safe to run again after a failure: steps already done are
    /// skipped.
    Replace {
        /// The member to replace.
        old: u64,
        /// The new node's id.
        new_id: u64,
        /// Where the nodes reach the new node (HOST:PORT).
        new_addr: String,
        /// How long to wait for the new node to catch up, in seconds.
        #[arg(long, default_value_t = 60)]
        catch_up_secs: u64,
        #[command(flatten)]
        cluster: ClusterArgs,
    },
}

/// Runs `dlm members` or one of its changes.
pub async fn run(args: MembersArgs) -> Result<i32, String> {
    match args.change {
        None => match args.cluster {
            Some(cluster) => list(cluster).await,
            None => Err("members: --nodes (or DLM_NODES) is needed".into()),
        },
        Some(Change::Add { id, addr, cluster }) => change(cluster, id, Op::Add(addr)).await,
        Some(Change::Promote { id, cluster }) => change(cluster, id, Op::Promote).await,
        Some(Change::Remove { id, cluster }) => change(cluster, id, Op::Remove).await,
        Some(Change::Replace {
            old,
            new_id,
            new_addr,
            catch_up_secs,
            cluster,
        }) => {
            let client = cluster.connect(Duration::from_secs(10)).await?;
            let catch_up = Duration::from_secs(catch_up_secs);
            let config = client
                .replace_within(NodeId(old), NodeId(new_id), new_addr, catch_up)
                .await
                .map_err(|e| format!("cannot replace node {old} by node {new_id}: {e}"))?;
            println!("{}", configuration(&config));
            Ok(0)
        }
    }
}

/// What a change asks for.
enum Op {
    Add(String),
    Promote,
    Remove,
}

async fn change(cluster: ClusterArgs, id: u64, op: Op) -> Result<i32, String> {
    let client = cluster.connect(Duration::from_secs(10)).await?;
    let id = NodeId(id);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    // A leader just elected, or a change still committing, is asked again (for a while): the
    // refusal says "not yet", not "no".
    let (verb, result) = loop {
        let (verb, result) = match &op {
            Op::Add(addr) => ("add", client.add_learner(id, addr.clone()).await),
            Op::Promote => ("promote", client.promote(id).await),
            Op::Remove => ("remove", client.remove(id).await),
        };
        let not_yet = matches!(
            &result,
            Err(dlm::ClientError::Rejected(dlm::Rejection::Membership(
                dlm::MembershipRejection::LeaderNotReady
                    | dlm::MembershipRejection::ChangeInProgress { .. }
            )))
        );
        if !not_yet || tokio::time::Instant::now() >= deadline {
            break (verb, result);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let config = result.map_err(|e| format!("cannot {verb} node {id}: {e}"))?;
    println!("{}", configuration(&config));
    Ok(0)
}

/// One line per configured member, as it sees itself, then the configuration in force.
async fn list(args: ClusterArgs) -> Result<i32, String> {
    let nodes = addr::resolve_all(&args.nodes.0).await?;
    let deadline = Duration::from_millis(args.timeout_ms.min(2_000));
    let client = dlm::connect_tcp_with(nodes.clone(), args.access()?, |c| c.deadline = deadline);
    println!(
        "{:<4} {:<22} {:<12} {:>6} {:>6} {:>10} {:>10}",
        "ID", "ADDRESS", "ROLE", "TERM", "LEADER", "COMMIT", "APPLIED"
    );
    let mut unreachable = 0;
    for ((id, addr), (_, answer)) in nodes.iter().zip(client.members().await) {
        match answer {
            Ok(s) => println!(
                "{id:<4} {:<22} {:<12} {:>6} {:>6} {:>10} {:>10}",
                addr.to_string(),
                format!("{:?}", s.role),
                s.term.to_string(),
                s.leader.map_or("-".to_string(), |l| l.to_string()),
                s.commit.to_string(),
                s.applied.to_string()
            ),
            Err(e) => {
                unreachable += 1;
                println!("{id:<4} {:<22} unreachable: {e}", addr.to_string());
            }
        }
    }
    match client.membership().await {
        Ok(info) => println!("{}", in_force(&info)),
        Err(e) => println!("configuration: not known ({e})"),
    }
    Ok(i32::from(unreachable > 0))
}

fn in_force(info: &MembersInfo) -> String {
    let state = if info.committed {
        "committed"
    } else {
        "not yet committed"
    };
    format!(
        "{} (entry {}, {state}; leader {})",
        configuration(&info.config),
        info.index,
        info.leader
    )
}

fn configuration(config: &Membership) -> String {
    let list = |members: &[dlm::Member]| {
        let names: Vec<String> = members
            .iter()
            .map(|m| match m.addr.as_str() {
                "" => m.id.to_string(),
                addr => format!("{}={addr}", m.id),
            })
            .collect();
        if names.is_empty() {
            "none".to_string()
        } else {
            names.join(" ")
        }
    };
    format!(
        "configuration: voters {}; learners {}",
        list(config.voters()),
        list(config.learners())
    )
}
