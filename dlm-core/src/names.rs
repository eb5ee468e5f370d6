//! Names of locks and files. They are plain strings on the wire; their length is checked against
//! the configured limit where a request enters a node, and again when a command is applied.

use serde::{Deserialize, Serialize};
use std::borrow::Borrow;
use std::fmt;
use std::sync::Arc;

macro_rules! name_newtype {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Arc<str>);

        impl $name {
            /// Wraps a name. No check here: limits are configuration and are checked by the node.
            pub fn new(name: impl Into<Arc<str>>) -> Self {
                $name(name.into())
            }
            /// The name as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
            /// Length in bytes, which is what the limits count.
            pub fn len(&self) -> usize {
                self.0.len()
            }
            /// Whether `self` and `other` are one shared copy of the name.
            #[cfg(test)]
            #[allow(dead_code)] // not every name type's tests use it
            pub(crate) fn shares_with(&self, other: &Self) -> bool {
                Arc::ptr_eq(&self.0, &other.0)
            }
            /// Whether the name is empty (an empty name is always refused).
            pub fn is_empty(&self) -> bool {
                self.0.is_empty()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&*self.0, f)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                $name::new(s)
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                $name::new(s)
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }
    };
}

name_newtype!(
    /// The name of a lock. Cloning is cheap (shared), since a name is kept by the lock table, the
    /// holder's session and the leader's lease timers at once.
    LockName
);
name_newtype!(
    /// The name of a guarded file. A file is bound to the lock named by its first append.
    FileName
);
