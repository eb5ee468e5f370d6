//! Which node of which cluster a data directory belongs to.
//!
//! A node's directory holds its vote and its log: started as another node (or in another
//! cluster) it would vote twice in a term, or offer a log it never had, and Raft's safety rests
//! on neither happening. Nothing in the log says whose it is, and a copy-paste slip in a
//! deployment script is all it takes (node 1's directory opened as `--id 2` used to start
//! without a word). So the first start records the owner in `<dir>/dlm-identity`, and every
//! later start checks it.

use dlm_core::NodeId;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The file, inside the data directory, that names its owner.
pub(crate) const IDENTITY_FILE: &str = "dlm-identity";

/// The owner of a data directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Owner {
    pub node: NodeId,
    pub cluster: u64,
}

/// Why a data directory cannot be used by this node.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataDirError {
    /// The directory belongs to another node, or to the same id in another cluster.
    #[error(
        "data directory {dir} belongs to node {recorded_node} of cluster {recorded_cluster:#x}, \
         not to node {node} of cluster {cluster:#x}: give every node its own directory \
         (and delete one only if its node has left the cluster for good)"
    )]
    OtherOwner {
        /// The directory.
        dir: PathBuf,
        /// The node and cluster recorded in it.
        recorded_node: NodeId,
        /// The cluster recorded in it.
        recorded_cluster: u64,
        /// The node that tried to open it.
        node: NodeId,
        /// That node's cluster.
        cluster: u64,
    },
    /// The identity file exists but does not say whose the directory is.
    #[error("{path} is damaged ({reason}); it names the node that owns the directory")]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The identity file could not be read or written.
    #[error("cannot read or write {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// Checks that `dir` belongs to `owner`, recording it as the owner if nobody is recorded yet
/// (a new directory, or one from a version before the identity file).
pub(crate) fn claim(dir: &Path, owner: Owner) -> Result<(), DataDirError> {
    let path = dir.join(IDENTITY_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let recorded = parse(&text).map_err(|reason| DataDirError::Damaged {
                path: path.clone(),
                reason,
            })?;
            if recorded == owner {
                Ok(())
            } else {
                Err(DataDirError::OtherOwner {
                    dir: dir.to_path_buf(),
                    recorded_node: recorded.node,
                    recorded_cluster: recorded.cluster,
                    node: owner.node,
                    cluster: owner.cluster,
                })
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            write_durably(dir, IDENTITY_FILE, &render(owner))
        }
        Err(source) => Err(DataDirError::Io { path, source }),
    }
}

fn render(owner: Owner) -> String {
    format!(
        "# Which dlm node owns this data directory. Written at its first start; do not edit.\n\
         node = {}\ncluster = {:#x}\n",
        owner.node.0, owner.cluster
    )
}

fn parse(text: &str) -> Result<Owner, String> {
    let (mut node, mut cluster) = (None, None);
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(format!("line {line:?} is not `key = value`"));
        };
        let value = value.trim();
        match key.trim() {
            "node" => node = Some(value.parse::<u64>().map_err(|e| format!("node: {e}"))?),
            "cluster" => {
                let hex = value.strip_prefix("0x").unwrap_or(value);
                cluster = Some(u64::from_str_radix(hex, 16).map_err(|e| format!("cluster: {e}"))?);
            }
            other => return Err(format!("unknown key {other:?}")),
        }
    }
    match (node, cluster) {
        (Some(node), Some(cluster)) => Ok(Owner {
            node: NodeId(node),
            cluster,
        }),
        _ => Err("it must name both the node and the cluster".into()),
    }
}

/// Writes `text` to `<dir>/<name>` durably: a temporary file, synced, renamed over, and the
/// directory synced, so that a crash leaves either no file or the whole of it.
pub(crate) fn write_durably(dir: &Path, name: &str, text: &str) -> Result<(), DataDirError> {
    let path = dir.join(name);
    let io = |source| DataDirError::Io {
        path: path.clone(),
        source,
    };
    let tmp = dir.join(format!("{name}.tmp"));
    let mut file = std::fs::File::create(&tmp).map_err(io)?;
    file.write_all(text.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)?;
    drop(file);
    std::fs::rename(&tmp, &path).map_err(io)?;
    #[cfg(unix)]
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE: Owner = Owner {
        node: NodeId(1),
        cluster: 0x646c_6d00_0000_0001,
    };

    #[test]
    fn the_first_claim_records_the_owner_and_later_ones_check_it() {
        let dir = tempfile::tempdir().unwrap();
        claim(dir.path(), ONE).unwrap();
        claim(dir.path(), ONE).unwrap();
        let two = Owner {
            node: NodeId(2),
            ..ONE
        };
        let err = claim(dir.path(), two).unwrap_err();
        assert!(
            matches!(
                err,
                DataDirError::OtherOwner {
                    recorded_node: NodeId(1),
                    node: NodeId(2),
                    ..
                }
            ),
            "{err:?}"
        );
        let other_cluster = Owner { cluster: 7, ..ONE };
        assert!(matches!(
            claim(dir.path(), other_cluster),
            Err(DataDirError::OtherOwner {
                recorded_cluster: 0x646c_6d00_0000_0001,
                cluster: 7,
                ..
            })
        ));
        assert!(!dir.path().join("dlm-identity.tmp").exists());
    }

    #[test]
    fn the_file_round_trips_and_damage_is_named() {
        assert_eq!(parse(&render(ONE)), Ok(ONE));
        for bad in [
            "",
            "node = 1\n",
            "node = x\ncluster = 0x1\n",
            "owner = 1\n",
            "node 1\n",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} parsed");
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(IDENTITY_FILE), "garbage").unwrap();
        assert!(matches!(
            claim(dir.path(), ONE),
            Err(DataDirError::Damaged { .. })
        ));
    }
}
