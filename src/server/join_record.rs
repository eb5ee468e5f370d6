//! What a node that joined a running cluster remembers of it: the voters it found at its first
//! join, recorded in its data directory before it first starts.
//!
//! Every later start of that directory takes them as its start-up configuration, with or
//! without `--join`. Without the record, a joined node restarted before its log held a
//! configuration would have only its flags: no peers makes it a cluster of one that elects
//! itself and grants locks the real cluster knows nothing of; and `--join` alone would wait for
//! a leader before starting, which never comes when the whole cluster restarts and this node's
//! vote is needed. A configuration recovered from the log or a snapshot still wins.

use crate::data_dir::{write_durably, DataDirError};
use dlm_core::{Membership, NodeId};
use std::collections::BTreeMap;
use std::path::Path;

/// The file, inside the data directory, that holds the record.
pub(crate) const JOINED_FILE: &str = "dlm-joined";

/// The voters a node found when it first joined, with their addresses (empty when unknown).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct JoinRecord {
    pub(crate) voters: BTreeMap<NodeId, String>,
}

impl JoinRecord {
    /// The voters of `config`.
    pub(crate) fn of(config: &Membership) -> JoinRecord {
        JoinRecord {
            voters: config
                .voters()
                .iter()
                .map(|m| (m.id, m.addr.clone()))
                .collect(),
        }
    }

    /// Reads the record of `dir`, if it has one.
    pub(crate) fn read(dir: &Path) -> Result<Option<JoinRecord>, DataDirError> {
        let path = dir.join(JOINED_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => parse(&text)
                .map(Some)
                .map_err(|reason| DataDirError::Damaged { path, reason }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(DataDirError::Io { path, source }),
        }
    }

    /// Records it in `dir` (created if missing), durably.
    pub(crate) fn write(&self, dir: &Path) -> Result<(), DataDirError> {
        std::fs::create_dir_all(dir).map_err(|source| DataDirError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        write_durably(dir, JOINED_FILE, &self.render())
    }

    fn render(&self) -> String {
        let mut text = String::from(
            "# The voters this dlm node found when it joined its cluster: its start-up\n\
             # configuration at every start (the one in its log wins). Do not edit.\n",
        );
        for (id, addr) in &self.voters {
            text.push_str(&format!("voter = {} {addr}\n", id.get()));
        }
        text
    }
}

fn parse(text: &str) -> Result<JoinRecord, String> {
    let mut voters = BTreeMap::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some(("voter", value)) = line.split_once('=').map(|(k, v)| (k.trim(), v.trim())) else {
            return Err(format!("line {line:?} is not `voter = ID ADDRESS`"));
        };
        let (id, addr) = value.split_once(' ').unwrap_or((value, ""));
        let id = id
            .parse::<u64>()
            .map_err(|e| format!("voter {id:?}: {e}"))?;
        voters.insert(NodeId(id), addr.trim().to_string());
    }
    if voters.is_empty() {
        return Err("it names no voter".into());
    }
    Ok(JoinRecord { voters })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_round_trips_through_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let inner = dir.path().join("node-4");
        assert_eq!(JoinRecord::read(&inner).unwrap(), None);
        let record = JoinRecord {
            voters: BTreeMap::from([
                (NodeId(1), "10.0.0.1:7000".to_string()),
                (NodeId(2), String::new()),
                (NodeId(3), "db-3.internal:7000".to_string()),
            ]),
        };
        record.write(&inner).unwrap();
        assert_eq!(JoinRecord::read(&inner).unwrap(), Some(record));
        assert!(!inner.join(format!("{JOINED_FILE}.tmp")).exists());
    }

    #[test]
    fn a_damaged_record_is_named_not_ignored() {
        for bad in [
            "",
            "# nothing\n",
            "voter = x 1.2.3.4:5\n",
            "node = 1\n",
            "voter 1\n",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} parsed");
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(JOINED_FILE), "voters: 1, 2\n").unwrap();
        assert!(matches!(
            JoinRecord::read(dir.path()),
            Err(DataDirError::Damaged { .. })
        ));
    }
}
