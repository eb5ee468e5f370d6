//! Deadlines made from callers' durations.

use std::time::Duration;
use tokio::time::Instant;

/// How far ahead "never" is: a year, which any `Instant` can be moved by.
pub(crate) const FAR: Duration = Duration::from_secs(86_400 * 365);

/// The instant `wait` from now, or a year from now if that is not representable. Every
/// deadline made from a caller's duration goes through here (the client's and the server's
/// join alike): `Instant + Duration` panics on overflow, and `Duration::MAX` is how a caller
/// says "as long as it takes".
pub fn deadline_after(wait: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(wait).unwrap_or(now + FAR)
}
