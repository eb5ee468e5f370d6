//! A [`MetricsSnapshot`] in the Prometheus text format (version 0.0.4), through
//! prometheus-client's encoder. The README's Metrics section lists the families.

use dlm_core::runtime::metrics::HistogramSnapshot;
use dlm_core::runtime::MetricsSnapshot;
use dlm_core::Role;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use std::fmt::Error;

/// The `Content-Type` of what [`encode`] writes.
pub(crate) const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// The snapshot as Prometheus text.
pub(crate) fn encode(snapshot: MetricsSnapshot) -> Result<String, Error> {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Families(snapshot)));
    let mut text = String::with_capacity(8 << 10);
    prometheus_client::encoding::prometheus_text::encode(&mut text, &registry)?;
    Ok(text)
}

#[derive(Debug)]
struct Families(MetricsSnapshot);

const ROLES: [(Role, &str); 4] = [
    (Role::Follower, "follower"),
    (Role::PreCandidate, "pre_candidate"),
    (Role::Candidate, "candidate"),
    (Role::Leader, "leader"),
];

impl Collector for Families {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), Error> {
        let s = &self.0;
        let st = &s.status;
        gauge(&mut e, "dlm_node_id", "This node's id.", st.id.0)?;
        let mut role = e.encode_descriptor(
            "dlm_role",
            "This node's role: 1 for the role it has, 0 for the others.",
            None,
            MetricType::Gauge,
        )?;
        for (r, name) in ROLES {
            role.encode_family(&[("role", name)])?
                .encode_gauge(&u64::from(st.role == r))?;
        }
        let leader = st.leader.map_or(0, |l| l.0);
        gauge(
            &mut e,
            "dlm_leader_id",
            "The leader this node knows of (0: none).",
            leader,
        )?;
        gauge(&mut e, "dlm_term", "The current term.", st.term.0)?;
        gauge(
            &mut e,
            "dlm_commit_index",
            "Highest log index known committed.",
            st.commit.0,
        )?;
        gauge(
            &mut e,
            "dlm_applied_index",
            "Highest log index applied.",
            st.applied.0,
        )?;
        gauge(
            &mut e,
            "dlm_last_log_index",
            "This node's last log index.",
            st.last_index.0,
        )?;
        counter(
            &mut e,
            "dlm_commits",
            "Log entries committed since this node started (rate: commits per second).",
            s.commits,
        )?;
        if let Some((index, age)) = s.snapshot {
            gauge(
                &mut e,
                "dlm_snapshot_index",
                "Last index in the latest snapshot this node stored since it started.",
                index.0,
            )?;
            gauge(&mut e, "dlm_snapshot_age_seconds", "Time since this node last stored a snapshot (absent until its first since it started).", age.as_secs_f64())?;
        }
        histogram(
            &mut e,
            "dlm_fsync_duration_seconds",
            "Duration of one group-commit sync: the batch's writes plus its fdatasync.",
            &s.sync,
        )?;
        histogram(
            &mut e,
            "dlm_lock_wait_seconds",
            "From an acquire's arrival at this node to its grant going out (leader only).",
            &s.lock_wait,
        )?;
        let mut requests = e.encode_descriptor(
            "dlm_client_requests",
            "Client requests answered by this node, by op and outcome (ok, or the rejection).",
            None,
            MetricType::Counter,
        )?;
        for r in &s.requests {
            requests
                .encode_family(&[("op", r.op), ("outcome", r.outcome)])?
                .encode_counter::<NoLabelSet, _, u64>(&r.count, None)?;
        }
        counter(
            &mut e,
            "dlm_lease_expiries",
            "Expire entries applied: leases that ran out on the leader.",
            s.expiries,
        )?;
        counter(
            &mut e,
            "dlm_revokes",
            "Locks revoked by an administrator.",
            s.revokes,
        )?;
        gauge(
            &mut e,
            "dlm_state_available",
            "1 if the node answered this scrape about its state machine and links in time.",
            u64::from(s.state.is_some()),
        )?;
        if let Some(state) = &s.state {
            counter(
                &mut e,
                "dlm_grants",
                "Locks granted by the cluster since it began (the last fencing token).",
                state.grants,
            )?;
            gauge(
                &mut e,
                "dlm_held_locks",
                "Locks with a holder.",
                state.held_locks,
            )?;
            gauge(
                &mut e,
                "dlm_waiting_acquires",
                "Acquires queued behind a holder.",
                state.waiting_acquires,
            )?;
            gauge(&mut e, "dlm_sessions", "Client sessions.", state.sessions)?;
            gauge(
                &mut e,
                "dlm_log_entries",
                "Entries in the in-memory log.",
                state.log_len,
            )?;
        }
        self.encode_peers(&mut e)
    }
}

impl Families {
    fn encode_peers(&self, e: &mut DescriptorEncoder) -> Result<(), Error> {
        let peers = &self.0.peers;
        let label = |p: &dlm_core::runtime::metrics::PeerSnapshot| [("peer", p.peer.to_string())];
        if peers.iter().all(|p| p.last_contact.is_none()) {
            return self.encode_links(e);
        }
        let mut contact = e.encode_descriptor(
            "dlm_peer_last_contact_seconds",
            "Time since a message from the peer last arrived (a follower hears from the leader only).",
            None,
            MetricType::Gauge,
        )?;
        for p in peers {
            if let Some(age) = p.last_contact {
                contact
                    .encode_family(&label(p))?
                    .encode_gauge(&age.as_secs_f64())?;
            }
        }
        self.encode_links(e)
    }

    fn encode_links(&self, e: &mut DescriptorEncoder) -> Result<(), Error> {
        let label = |p: &dlm_core::runtime::metrics::PeerSnapshot| [("peer", p.peer.to_string())];
        let links: Vec<_> = self
            .0
            .peers
            .iter()
            .filter_map(|p| Some((p, p.link.as_ref()?)))
            .collect();
        if links.is_empty() {
            return Ok(());
        }
        let mut up = e.encode_descriptor(
            "dlm_peer_up",
            "1 if the transport's connection to the peer is up.",
            None,
            MetricType::Gauge,
        )?;
        for (p, link) in &links {
            up.encode_family(&label(p))?
                .encode_gauge(&u64::from(link.up))?;
        }
        let mut queued = e.encode_descriptor(
            "dlm_peer_queued_messages",
            "Messages waiting to be written to the peer.",
            None,
            MetricType::Gauge,
        )?;
        for (p, link) in &links {
            queued
                .encode_family(&label(p))?
                .encode_gauge(&link.queued)?;
        }
        let mut dropped = e.encode_descriptor(
            "dlm_peer_dropped_messages",
            "Messages to the peer dropped because its queue was full.",
            None,
            MetricType::Counter,
        )?;
        for (p, link) in &links {
            dropped
                .encode_family(&label(p))?
                .encode_counter::<NoLabelSet, _, u64>(&link.dropped, None)?;
        }
        Ok(())
    }
}

fn gauge<V: prometheus_client::encoding::EncodeGaugeValue>(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: V,
) -> Result<(), Error> {
    e.encode_descriptor(name, help, None, MetricType::Gauge)?
        .encode_gauge(&value)
}

/// `name` without `_total`: the encoder adds it.
fn counter(e: &mut DescriptorEncoder, name: &str, help: &str, value: u64) -> Result<(), Error> {
    e.encode_descriptor(name, help, None, MetricType::Counter)?
        .encode_counter::<NoLabelSet, _, u64>(&value, None)
}

fn histogram(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    h: &HistogramSnapshot,
) -> Result<(), Error> {
    // The encoder wants per-bucket counts and adds them up itself.
    let mut below = 0;
    let buckets: Vec<(f64, u64)> = h
        .buckets
        .iter()
        .map(|&(bound, cumulative)| {
            let own = cumulative - below;
            below = cumulative;
            (bound, own)
        })
        .collect();
    e.encode_descriptor(name, help, None, MetricType::Histogram)?
        .encode_histogram::<NoLabelSet>(h.sum_seconds, h.count, &buckets, None)
}
