//! `--kind` for loadgen: which kind of lock the clients cycle through, and how a client takes
//! one in that kind.

use dlm::runtime::ClientTransport;
use dlm::{Client, ClientError, LockGuard};
use std::time::Duration;

/// The kind of lock a load phase cycles through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `lock_timeout` on lock `i % locks`.
    Exclusive,
    /// A reader's grant of read-write lock `i % locks` (readers never wait for each other).
    Shared,
    /// A permit of a semaphore of N; `locks / N` semaphores (at least one), so that a phase
    /// has as many holders at once as an exclusive phase with the same `--locks`.
    Semaphore(u32),
    /// A campaign in election `i % locks` (the grant, then a proclaim of the client's
    /// number); releasing the guard resigns.
    Election,
}

impl Kind {
    /// How many names the clients spread over, for `locks` given.
    pub fn names(self, locks: usize) -> usize {
        match self {
            Kind::Semaphore(n) => (locks / n as usize).max(1),
            _ => locks.max(1),
        }
    }

    /// Whether each name has one holder at a time, so that tokens seen on it must grow.
    pub fn is_exclusive(self) -> bool {
        matches!(self, Kind::Exclusive | Kind::Election)
    }

    /// Takes `name` in this kind, waiting at most `wait`.
    pub async fn take<T: ClientTransport>(
        self,
        client: &Client<T>,
        name: &str,
        wait: Duration,
    ) -> Result<LockGuard<T>, ClientError> {
        match self {
            Kind::Exclusive => client.lock_timeout(name, wait).await,
            Kind::Shared => client.rwlock(name).read_timeout(wait).await,
            Kind::Semaphore(n) => client.semaphore(name, n).acquire_timeout(wait).await,
            Kind::Election => {
                let value = client.id().to_string().into_bytes();
                let election = client.election(name);
                match tokio::time::timeout(wait, election.campaign(value)).await {
                    Ok(won) => won.map(dlm::Leadership::into_guard),
                    Err(_) => Err(ClientError::TimedOut),
                }
            }
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Kind::Exclusive => write!(f, "exclusive"),
            Kind::Shared => write!(f, "shared"),
            Kind::Semaphore(n) => write!(f, "semaphore:{n}"),
            Kind::Election => write!(f, "election"),
        }
    }
}

/// Parses `exclusive`, `shared` or `semaphore:N`, comma-separated for phases run one after
/// the other against the same cluster.
pub fn parse_kinds(s: &str) -> Result<Kinds, String> {
    let kinds = s
        .split(',')
        .map(|k| match k.trim() {
            "exclusive" => Ok(Kind::Exclusive),
            "shared" => Ok(Kind::Shared),
            "election" => Ok(Kind::Election),
            other => match other.strip_prefix("semaphore:").map(str::parse::<u32>) {
                Some(Ok(n)) if n > 0 => Ok(Kind::Semaphore(n)),
                _ => Err(format!(
                    "expected exclusive, shared, election or semaphore:N (N > 0), got {other:?}"
                )),
            },
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Kinds(kinds))
}

/// The phases' kinds (a newtype, so clap takes the whole list as one value).
#[derive(Clone, Debug)]
pub struct Kinds(pub Vec<Kind>);
