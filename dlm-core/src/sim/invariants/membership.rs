//! The membership invariants: committed configurations follow one another one server at a
//! time, and every node's configuration in force is consistent with the committed history (it
//! is the one its log or its snapshot says, never one older than a configuration it has
//! committed). Together with election safety (one leader per term whatever the
//! configurations) and log matching (no committed entry lost), these are what single-server
//! changes promise.

use super::{Broken, Checker};
use crate::command::Command;
use crate::membership::Membership;
use crate::node::Node;
use crate::types::LogIndex;

/// How many nodes change role (voter, learner, outside) from `a` to `b`.
fn distance(a: &Membership, b: &Membership) -> usize {
    let role = |m: &Membership, id| (m.is_voter(id), m.is_learner(id));
    let ids = a.members().chain(b.members()).map(|m| m.id);
    let mut changed: Vec<_> = ids.filter(|id| role(a, *id) != role(b, *id)).collect();
    changed.sort();
    changed.dedup();
    changed.len()
}

impl Checker {
    /// How many membership changes were seen committed.
    pub fn reconfigurations(&self) -> usize {
        self.configs.len().saturating_sub(1)
    }

    /// A newly committed entry at `index`: if it is a configuration, it is exactly one change
    /// from the committed configuration before it.
    pub(super) fn one_change_at_a_time(
        &mut self,
        index: LogIndex,
        command: &Command,
    ) -> Result<(), Broken> {
        let Command::Membership { config, .. } = command else {
            return Ok(());
        };
        if let Some((before_at, before)) = self.configs.last() {
            if distance(before, config) != 1 {
                return Err((
                    "one_change_at_a_time",
                    format!(
                        "configuration at {index} {config:?} follows {before:?} at {before_at}"
                    ),
                ));
            }
        }
        self.configs.push((index, config.clone()));
        Ok(())
    }

    /// The configuration in force at `node` is consistent with the committed history: if its
    /// entry is committed, it is the committed configuration there; and it is never older than
    /// the latest configuration the node has committed.
    pub fn configuration_in_force(&self, node: &Node) -> Result<(), Broken> {
        let (at, config) = (node.membership_index(), node.membership());
        let commit = node.commit_index();
        if at > LogIndex(0) && at <= commit {
            let committed = self.configs.iter().find(|(i, _)| *i == at);
            if let Some((_, known)) = committed.filter(|(_, known)| known != config) {
                return Err((
                    "configuration_history",
                    format!(
                        "node {} has {config:?} at committed {at} where {known:?} was committed",
                        node.id()
                    ),
                ));
            }
        }
        // The latest committed configuration at or below this node's commit index.
        let latest = self.configs.partition_point(|(i, _)| *i <= commit);
        if let Some((index, known)) = latest.checked_sub(1).map(|k| &self.configs[k]) {
            // From the log (index known) or from the applied state (index 0, then equal).
            if at < *index && config != known {
                return Err((
                    "configuration_history",
                    format!(
                        "node {} uses {config:?} (index {at}) though it committed {known:?} at {index}",
                        node.id()
                    ),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::NodeId;

    #[test]
    fn distance_counts_nodes_that_change_role() {
        let three = Membership::bootstrap([NodeId(1), NodeId(2), NodeId(3)]);
        let learner = three.with_learner(NodeId(4), String::new()).unwrap();
        let promoted = learner.promoted(NodeId(4)).unwrap();
        assert_eq!(distance(&three, &learner), 1);
        assert_eq!(distance(&learner, &promoted), 1);
        assert_eq!(distance(&three, &promoted), 1);
        let swapped = promoted.without(NodeId(1)).unwrap();
        assert_eq!(distance(&three, &swapped), 2);
        assert_eq!(distance(&three, &three), 0);
    }

    fn change_to(config: Membership) -> Command {
        Command::Membership {
            config,
            client: crate::types::ClientId(1),
            seq: crate::types::Seq(1),
        }
    }

    /// Two changes in one committed configuration break the invariant; one at a time does not.
    #[test]
    fn committed_configurations_follow_one_change_at_a_time() {
        let three = Membership::bootstrap([NodeId(1), NodeId(2), NodeId(3)]);
        let mut checker = Checker::with_members(3, three.clone());
        let learner = three.with_learner(NodeId(4), String::new()).unwrap();
        assert!(checker
            .one_change_at_a_time(LogIndex(5), &change_to(learner.clone()))
            .is_ok());
        assert_eq!(checker.reconfigurations(), 1);
        let swapped = learner
            .promoted(NodeId(4))
            .unwrap()
            .without(NodeId(1))
            .unwrap();
        let broken = checker.one_change_at_a_time(LogIndex(9), &change_to(swapped));
        assert!(
            matches!(broken, Err(("one_change_at_a_time", _))),
            "{broken:?}"
        );
    }
}
