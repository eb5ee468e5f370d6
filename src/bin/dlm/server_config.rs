//! `dlm server`'s settings: command-line flags over an optional TOML file (`--config`), so a
//! deployment can keep one file per node and still override a setting for one run.
//!
//! ```toml
//! id = 1
//! listen = "0.0.0.0:7001"
//! peers = ["2=node2:7001", "3=node3:7001"]
//! data_dir = "/var/lib/dlm"
//! # optional: cluster_id, election_ms, heartbeat_ms, lock_delay_ms, lease_ms,
//! # secret_file, peer_secret_file
//! ```

use crate::addr::{self, Member};
use dlm::DEFAULT_CLUSTER_ID;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The file's contents; every key optional, unknown keys refused (a typo must not pass as a
/// default).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSettings {
    pub id: Option<u64>,
    pub listen: Option<String>,
    #[serde(default)]
    pub peers: Vec<String>,
    pub data_dir: Option<PathBuf>,
    pub cluster_id: Option<u64>,
    pub election_ms: Option<u64>,
    pub heartbeat_ms: Option<u64>,
    pub lock_delay_ms: Option<u64>,
    pub lease_ms: Option<u64>,
    pub secret_file: Option<PathBuf>,
    pub peer_secret_file: Option<PathBuf>,
}

impl FileSettings {
    /// Reads and parses `path`; the error names the file and, for a syntax error, the place.
    pub fn load(path: &Path) -> Result<FileSettings, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the config file {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("config file {}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> Result<FileSettings, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }
}

/// Everything a node needs, after flags and file are merged.
#[derive(Debug, PartialEq, Eq)]
pub struct Settings {
    pub id: u64,
    pub listen: String,
    pub peers: Vec<Member>,
    pub data_dir: PathBuf,
    pub cluster_id: u64,
    pub election_ms: u64,
    pub heartbeat_ms: u64,
    pub lock_delay_ms: u64,
    pub lease_ms: Option<u64>,
    pub secret_file: Option<PathBuf>,
    pub peer_secret_file: Option<PathBuf>,
}

/// What the flags said (each `None` or empty when not given).
#[derive(Debug, Default)]
pub struct FlagSettings {
    pub id: Option<u64>,
    pub listen: Option<String>,
    pub peers: Vec<Member>,
    pub data_dir: Option<PathBuf>,
    pub cluster_id: Option<u64>,
    pub election_ms: Option<u64>,
    pub heartbeat_ms: Option<u64>,
    pub lock_delay_ms: Option<u64>,
    pub lease_ms: Option<u64>,
    pub secret_file: Option<PathBuf>,
    pub peer_secret_file: Option<PathBuf>,
}

/// A flag wins over the file; the peer list is taken whole from the flags if any `--peer` is
/// given, else from the file.
pub fn merge(flags: FlagSettings, file: FileSettings) -> Result<Settings, String> {
    let missing = |what: &str| format!("{what} is not set (give the flag or put it in --config)");
    let peers = if flags.peers.is_empty() {
        file.peers
            .iter()
            .map(|p| addr::parse_member(p).map_err(|e| format!("peers: {e}")))
            .collect::<Result<_, _>>()?
    } else {
        flags.peers
    };
    Ok(Settings {
        id: flags.id.or(file.id).ok_or_else(|| missing("--id"))?,
        listen: flags
            .listen
            .or(file.listen)
            .ok_or_else(|| missing("--listen"))?,
        peers,
        data_dir: flags
            .data_dir
            .or(file.data_dir)
            .ok_or_else(|| missing("--data-dir"))?,
        cluster_id: flags
            .cluster_id
            .or(file.cluster_id)
            .unwrap_or(DEFAULT_CLUSTER_ID),
        election_ms: flags.election_ms.or(file.election_ms).unwrap_or(300),
        heartbeat_ms: flags.heartbeat_ms.or(file.heartbeat_ms).unwrap_or(50),
        lock_delay_ms: flags.lock_delay_ms.or(file.lock_delay_ms).unwrap_or(0),
        lease_ms: flags.lease_ms.or(file.lease_ms),
        secret_file: flags.secret_file.or(file.secret_file),
        peer_secret_file: flags.peer_secret_file.or(file.peer_secret_file),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
        id = 1
        listen = "0.0.0.0:7001"
        peers = ["2=node2:7001", "3=node3:7001"]
        data_dir = "/var/lib/dlm"
        election_ms = 600
    "#;

    #[test]
    fn the_file_fills_in_what_the_flags_leave_out() {
        let flags = FlagSettings {
            election_ms: Some(900),
            ..FlagSettings::default()
        };
        let s = merge(flags, FileSettings::parse(FILE).unwrap()).unwrap();
        assert_eq!((s.id, s.listen.as_str()), (1, "0.0.0.0:7001"));
        assert_eq!(s.peers.len(), 2);
        assert_eq!(s.peers[1].host_port, "node3:7001");
        assert_eq!(s.election_ms, 900, "a flag wins over the file");
        assert_eq!((s.heartbeat_ms, s.cluster_id), (50, DEFAULT_CLUSTER_ID));
    }

    #[test]
    fn bad_files_and_missing_settings_are_named() {
        let typo = FileSettings::parse("id = 1\nelection_msec = 5\n").unwrap_err();
        assert!(typo.contains("election_msec"), "{typo}");
        let syntax = FileSettings::parse("id = \n").unwrap_err();
        assert!(syntax.contains("line 1"), "{syntax}");
        let wrong_type = FileSettings::parse("id = \"one\"\n").unwrap_err();
        assert!(wrong_type.contains("id"), "{wrong_type}");
        let bad_peer = FileSettings::parse("peers = [\"2-node2\"]").unwrap();
        assert!(merge(FlagSettings::default(), bad_peer)
            .unwrap_err()
            .contains("peers"));
        let none = merge(FlagSettings::default(), FileSettings::default()).unwrap_err();
        assert!(none.contains("--id"), "{none}");
    }
}
