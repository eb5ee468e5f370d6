//! Silent network faults between local server processes: a private network namespace whose
//! packets an nftables table drops, with no RST and no ICMP, as a pulled cable or a switch that
//! black-holes traffic would.
//!
//! Why this way, rather than a userspace proxy that stops forwarding: with real kernel drops the
//! TCP stacks at both ends see what they would see on a real network (retransmission back-off,
//! a connect whose SYN goes unanswered, 20% loss that TCP recovers from with fast retransmit and
//! time-outs); a proxy ACKs everything at once and can only imitate loss with a model of TCP.
//!
//! How:
//! - [`NetLab::enter`] moves the *calling thread* into a fresh, anonymous network namespace
//!   (`unshare(CLONE_NEWNET)`) and brings its loopback up. Everything started from that thread
//!   afterwards (a tokio runtime's workers, the server processes, `nft`) lives in it, and only
//!   there: the machine's own network and its rules are never touched, and the namespace (with
//!   its rules) disappears when the last process in it exits, so nothing is left behind even
//!   after a SIGKILL. Every address is 127.0.0.1 inside that namespace.
//! - Each server process runs with its own group id ([`gid_of`], set by the cluster), so the
//!   table can tell whose socket opened a connection: the first packet of every TCP connection
//!   and of every UDP flow (the transport's datagram copies) marks it (conntrack mark, one bit
//!   per node) with the node that sent it (`meta skgid`) and the node it goes to (`th dport`).
//!   Cutting node `k` drops every packet of every connection and flow with bit `k`, both ways:
//!   peer links, client connections, datagrams and fresh dials alike.
//! - Loss drops each TCP and UDP packet, on every connection, with the given probability
//!   (`numgen random`). On loopback a packet crosses the input hook once, so that is the loss
//!   per transmission.
//! - Every drop happens at the receiving end (the input hook), after the sender's stack has
//!   sent the packet, as on a real network. A drop at the output hook would instead be reported
//!   to the sending TCP as a failed transmission: it keeps the segment as unsent and sends it
//!   again with its next write, which hides exactly the cost of loss that matters here (a lone
//!   lost message waiting for a retransmission timer), and made loss look ten times cheaper to
//!   anything that writes twice.
//!
//! Needs Linux, root (CAP_NET_ADMIN and CAP_SYS_ADMIN for `unshare`), `ip` and `nft`; [`NetLab::enter`]
//! installs `nftables`/`iproute2` with `apt-get` when they are missing (before leaving the
//! machine's namespace, where the network is), and says why when it cannot run at all.

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};

/// The first server group id; node `k` runs as group `GID_BASE + k`.
pub const GID_BASE: u32 = 61_000;

/// The group id node `id` runs as.
pub fn gid_of(id: u64) -> u32 {
    GID_BASE + u32::try_from(id).unwrap_or(0)
}

const TABLE: &str = "dlmfault";

/// A private network namespace with an nftables table that cuts nodes and drops packets.
pub struct NetLab {
    /// Node ids and listen ports, for the marking rules.
    nodes: Vec<(u64, u16)>,
    cut: BTreeSet<u64>,
    loss_percent: u32,
}

impl NetLab {
    /// Moves the calling thread into a fresh network namespace with loopback up, installing
    /// `nft`/`ip` first if needed. `Err` says why the faults cannot run here (not Linux, not
    /// root, no namespaces, no nftables); callers skip with that message.
    ///
    /// Call it before starting any runtime or process that should be inside, from the thread
    /// that will start them.
    pub fn enter() -> Result<(), String> {
        if !cfg!(target_os = "linux") {
            return Err("network namespaces and nftables need Linux".into());
        }
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err("not root: network namespaces and nftables need root".into());
        }
        ensure_tools()?;
        unshare_net()?;
        run("ip", &["link", "set", "lo", "up"], None)?;
        Ok(())
    }

    /// The table for `nodes` (`(id, listen port)`), nothing cut, no loss. Call inside the
    /// namespace ([`NetLab::enter`]) before the nodes connect, so that every connection is marked.
    pub fn new(nodes: &[(u64, u16)]) -> Result<NetLab, String> {
        let lab = NetLab {
            nodes: nodes.to_vec(),
            cut: BTreeSet::new(),
            loss_percent: 0,
        };
        if lab.nodes.iter().any(|(id, _)| *id == 0 || *id > 31) {
            return Err("node ids must be 1..=31 (one mark bit each)".into());
        }
        let mut script = format!(
            "table inet {TABLE} {{\n  chain tagconn {{\n    type filter hook output priority -150; policy accept;\n"
        );
        for (id, port) in &lab.nodes {
            let bit = 1u32 << id;
            script += &format!(
                "    meta l4proto {{ tcp, udp }} ct state new meta skgid {} ct mark set ct mark or {bit:#x}\n",
                gid_of(*id)
            );
            script +=
                &format!("    meta l4proto {{ tcp, udp }} th dport {port} ct state new ct mark set ct mark or {bit:#x}\n");
        }
        script +=
            "  }\n  chain faults {\n    type filter hook input priority 0; policy accept;\n  }\n}\n";
        nft(&format!("delete table inet {TABLE}\n")).ok();
        nft(&script)?;
        Ok(lab)
    }

    /// Silently drops every packet to and from node `id`, on every connection, from now on.
    pub fn cut(&mut self, id: u64) -> Result<(), String> {
        self.cut.insert(id);
        self.apply()
    }

    /// Lets node `id`'s packets through again.
    pub fn heal(&mut self, id: u64) -> Result<(), String> {
        self.cut.remove(&id);
        self.apply()
    }

    /// Heals `healed` and cuts `cut` in one atomic rule change.
    pub fn swap(&mut self, healed: u64, cut: u64) -> Result<(), String> {
        self.cut.remove(&healed);
        self.cut.insert(cut);
        self.apply()
    }

    /// Drops `percent`% of all TCP and UDP packets (0 turns loss off).
    pub fn set_loss(&mut self, percent: u32) -> Result<(), String> {
        self.loss_percent = percent.min(100);
        self.apply()
    }

    /// Heals everything.
    pub fn clear(&mut self) -> Result<(), String> {
        self.cut.clear();
        self.loss_percent = 0;
        self.apply()
    }

    /// Lowers TCP's minimum retransmission time-out on loopback in the namespace (Linux: 200 ms)
    /// to `ms` (call before the nodes start, so that every connection has it): shows how much of the cost of loss is TCP's
    /// RTO floor (an operator can do the same per route on a real network).
    pub fn set_rto_min(ms: u32) -> Result<(), String> {
        for dst in ["127.0.0.0/8", "127.0.0.1"] {
            run(
                "ip",
                &[
                    "route",
                    "change",
                    "local",
                    dst,
                    "dev",
                    "lo",
                    "proto",
                    "kernel",
                    "scope",
                    "host",
                    "src",
                    "127.0.0.1",
                    "table",
                    "local",
                    "rto_min",
                    &format!("{ms}ms"),
                ],
                None,
            )?;
        }
        Ok(())
    }

    /// The nodes cut now.
    pub fn cut_nodes(&self) -> &BTreeSet<u64> {
        &self.cut
    }

    fn apply(&self) -> Result<(), String> {
        // One `nft -f` is one transaction: the old rules go and the new ones come at once.
        let mut script = format!("flush chain inet {TABLE} faults\n");
        let mask: u32 = self.cut.iter().map(|id| 1u32 << id).sum();
        if mask != 0 {
            script += &format!("add rule inet {TABLE} faults ct mark and {mask:#x} != 0 drop\n");
        }
        if self.loss_percent > 0 {
            script += &format!(
                "add rule inet {TABLE} faults meta l4proto {{ tcp, udp }} numgen random mod 100 < {} drop\n",
                self.loss_percent
            );
        }
        nft(&script)
    }
}

/// Installs `nftables` and `iproute2` when `nft` or `ip` is missing (Debian/Ubuntu `apt-get`).
fn ensure_tools() -> Result<(), String> {
    let have = |tool: &str| {
        Command::new(tool)
            .arg("-V")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok()
    };
    if have("nft") && have("ip") {
        return Ok(());
    }
    eprintln!("netfault: nft or ip missing; apt-get install -y nftables iproute2");
    let installed = Command::new("apt-get")
        .args(["install", "-y", "-q", "nftables", "iproute2"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdout(Stdio::null())
        .status();
    match installed {
        Ok(s) if s.success() && have("nft") && have("ip") => Ok(()),
        Ok(s) => Err(format!(
            "apt-get install -y nftables iproute2 failed ({s}); install them to run the network faults"
        )),
        Err(e) => Err(format!(
            "nft or ip missing and apt-get could not run ({e}); install nftables and iproute2"
        )),
    }
}

fn unshare_net() -> Result<(), String> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: unshare only takes flags; CLONE_NEWNET moves the calling thread alone into a
        // new network namespace and does not need the process to be single-threaded.
        let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
        if rc != 0 {
            return Err(format!(
                "unshare(CLONE_NEWNET): {} (no CAP_SYS_ADMIN here?)",
                std::io::Error::last_os_error()
            ));
        }
        Ok(())
    }
    #[cfg(not(target_os = "linux"))]
    {
        Err("network namespaces need Linux".into())
    }
}

fn nft(script: &str) -> Result<(), String> {
    run("nft", &["-f", "-"], Some(script))
}

fn run(tool: &str, args: &[&str], stdin: Option<&str>) -> Result<(), String> {
    let mut child = Command::new(tool)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{tool}: {e}"))?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())
            .map_err(|e| format!("{tool}: writing its input: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("{tool}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{tool} {}: {}\n{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim_end()
        ))
    }
}
