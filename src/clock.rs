//! Injected time: backends never read the system time themselves, so tests
//! can drive expiry, delays and continuous intervals by hand.

use std::fmt;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::model::{Duration, Time};

/// A source of "now".
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current instant.
    fn now(&self) -> Time;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Time {
        chrono::Utc::now()
    }
}

/// A clock that starts at the Unix epoch and only moves when told to.
///
/// Clones share one time, so a test keeps a clone and advances the clock a
/// backend reads.
///
/// ```
/// use coordinate::{Clock, MockClock, Duration};
/// let clock = MockClock::new();
/// let seen_by_backend = clock.clone();
/// clock.advance(Duration::seconds(90));
/// assert_eq!(seen_by_backend.now().timestamp(), 90);
/// ```
#[derive(Clone, Default)]
pub struct MockClock {
    now: Arc<Mutex<Time>>,
}

impl MockClock {
    /// A clock at the Unix epoch.
    pub fn new() -> Self {
        Self::starting_at(Time::UNIX_EPOCH)
    }

    /// A clock at `start`.
    pub fn starting_at(start: Time) -> Self {
        MockClock {
            now: Arc::new(Mutex::new(start)),
        }
    }

    /// Moves the clock by `by` (which may be negative, for tests of clock skew).
    ///
    /// Saturates at the end of the representable range instead of panicking.
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock();
        *now += by;
    }

    /// Sets the clock to `to`.
    pub fn set(&self, to: Time) {
        *self.now.lock() = to;
    }
}

impl Clock for MockClock {
    fn now(&self) -> Time {
        *self.now.lock()
    }
}

impl fmt::Debug for MockClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockClock")
            .field("now", &self.now())
            .finish()
    }
}

/// A shared clock, as backends hold it.
pub type SharedClock = Arc<dyn Clock>;

/// `time + by`, or [`Error::TimeOutOfRange`](crate::Error::TimeOutOfRange)
/// instead of the panic of `+` and for any sum outside the stored time range
/// (see [`limits::time_after`](crate::rules::limits::time_after)).
pub fn checked_add(time: Time, by: Duration) -> crate::Result<Time> {
    crate::rules::limits::time_after(time, by)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mock_clock_starts_at_epoch_and_clones_share_time() {
        let a = MockClock::new();
        let b = a.clone();
        assert_eq!(a.now(), Time::UNIX_EPOCH);
        a.advance(Duration::milliseconds(1500));
        assert_eq!(b.now().timestamp_millis(), 1500);
        b.set(Time::UNIX_EPOCH);
        assert_eq!(a.now(), Time::UNIX_EPOCH);
    }

    #[test]
    fn mock_clock_saturates_instead_of_panicking() {
        let c = MockClock::new();
        c.advance(Duration::MAX);
        assert_eq!(c.now(), Time::MAX_UTC);
    }

    #[test]
    fn checked_add_reports_overflow() {
        assert!(checked_add(Time::MAX_UTC, Duration::seconds(1)).is_err());
        assert_eq!(
            checked_add(Time::UNIX_EPOCH, Duration::seconds(2))
                .unwrap()
                .timestamp(),
            2
        );
    }

    #[test]
    fn system_clock_is_recent() {
        assert!(SystemClock.now().timestamp() > 1_600_000_000);
    }
}
