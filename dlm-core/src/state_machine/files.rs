//! Guarded files: append-only byte strings, each bound to the lock named by its first append.

use crate::names::LockName;
use crate::types::FencingToken;
use serde::{Deserialize, Serialize};

/// One guarded file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuardedFile {
    /// The lock whose holder may append.
    pub guard: LockName,
    /// The highest token that has appended: anything lower is stale by definition.
    pub last_token: FencingToken,
    /// The contents.
    pub data: Vec<u8>,
}
