//! Which pooled PostgreSQL connections may have lost their backend, told
//! without a round trip.
//!
//! sqlx pings a pooled connection before handing it out, by default: a
//! round trip to the server on every request, about a sixth of the time
//! of a `me` (`bench/README.md`). Backends end in waves (a restart, a
//! failover, every backend terminated), and the first request to meet a
//! dead connection learns of it: its statement fails with a lost
//! connection, and it runs again (`store::rerun`). So the pool skips the
//! ping, and instead retires, as it would hand them out, the connections
//! opened before the last connection this process lost. After a restart
//! only the requests that took a dead connection before the first loss
//! was seen run again; without the retirement each dead connection in the
//! pool would fail a run of its own, and a request's three runs could all
//! meet one.
//!
//! Process-wide: one server has one PostgreSQL pool. Where several share
//! a process (the tests), a loss in one retires the older connections of
//! the others too, which costs them a reconnection and nothing else.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// When this process last lost a connection, in nanoseconds since
/// [`clock_start`]; 0 while it has lost none.
static LAST_LOSS: AtomicU64 = AtomicU64::new(0);

fn clock_start() -> Instant {
    static START: OnceLock<Instant> = OnceLock::new();
    *START.get_or_init(Instant::now)
}

fn nanos_since_start(at: Instant) -> u64 {
    let nanos = at.saturating_duration_since(clock_start()).as_nanos();
    u64::try_from(nanos).unwrap_or(u64::MAX)
}

/// A statement failed because its connection broke.
pub(crate) fn note_connection_lost() {
    // At least 1: 0 means "none lost".
    LAST_LOSS.fetch_max(nanos_since_start(Instant::now()).max(1), Ordering::Relaxed);
}

/// True when a connection of this `age` was opened no later than the last
/// lost connection, so its backend may have ended in the same wave.
pub(crate) fn opened_before_last_loss(age: Duration) -> bool {
    let lost = LAST_LOSS.load(Ordering::Relaxed);
    if lost == 0 {
        return false;
    }
    match Instant::now().checked_sub(age) {
        Some(opened) => nanos_since_start(opened) <= lost,
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_opened_before_a_loss_are_stale_and_later_ones_are_not() {
        // The clock starts before anything is noted: no connection can
        // be older than the start and still be told apart from it.
        clock_start();
        std::thread::sleep(Duration::from_millis(20));
        note_connection_lost();
        assert!(opened_before_last_loss(Duration::from_millis(10)));
        assert!(opened_before_last_loss(Duration::from_secs(3600)));
        std::thread::sleep(Duration::from_millis(20));
        assert!(!opened_before_last_loss(Duration::from_millis(5)));
        assert!(opened_before_last_loss(Duration::from_millis(500)));
    }
}
