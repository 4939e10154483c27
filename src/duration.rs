//! [`Duration`]: the signed span of time every operation takes (leases,
//! renewals, retry delays, continuous intervals), convertible from and to
//! `std::time::Duration` and `chrono::TimeDelta`.

use std::fmt;
use std::ops::{Add, AddAssign, Neg, Sub, SubAssign};

use chrono::TimeDelta;
use serde::{Deserialize, Serialize};

use crate::model::Time;

/// A signed span of time with nanosecond resolution, between
/// [`Duration::MIN`] and [`Duration::MAX`] (±`i64::MAX` milliseconds, about
/// ±292 million years).
///
/// Every operation that takes a duration takes this type. It reads like
/// chrono's `TimeDelta` (`Duration::seconds(30)`, `num_seconds()`), and
/// converts from a `std::time::Duration` with `.into()`:
///
/// ```
/// use coordinate::{AttemptRequest, Duration};
///
/// let request = AttemptRequest {
///     lifetime: std::time::Duration::from_secs(300).into(),
///     ..AttemptRequest::default()
/// };
/// assert_eq!(request.lifetime, Duration::minutes(5));
/// ```
///
/// # Saturation
///
/// Nothing here panics. Constructors, conversions and arithmetic that would
/// leave the range stop at [`Duration::MIN`] or [`Duration::MAX`] (the
/// `checked_*` methods answer `None` instead), and a [`Time`] moved by a
/// duration stops at chrono's first or last instant. A saturated value is
/// far outside what the API accepts, so an operation given one answers its
/// usual typed error: [`Error::TimeOutOfRange`](crate::Error::TimeOutOfRange)
/// for a lease, renewal or delay, and
/// [`Error::InvalidWorkSpecData`](crate::Error::InvalidWorkSpecData) for a
/// continuous interval (see [Limits](crate#limits)).
///
/// ```
/// use coordinate::Duration;
///
/// let forever = std::time::Duration::MAX;
/// assert_eq!(Duration::from(forever), Duration::MAX);
/// assert_eq!(Duration::seconds(i64::MAX), Duration::MAX);
/// assert_eq!(Duration::MAX + Duration::seconds(1), Duration::MAX);
/// ```
///
/// # Formats
///
/// `Display` is ISO 8601 (`PT90S`); serde uses chrono's `TimeDelta` form,
/// a `[seconds, nanoseconds]` pair.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Duration(TimeDelta);

/// The span `TimeDelta` has for a whole number of some unit, or the end of
/// the range on the side of `count`'s sign.
const fn saturated(delta: Option<TimeDelta>, count: i64) -> Duration {
    match delta {
        Some(delta) => Duration(delta),
        None if count < 0 => Duration::MIN,
        None => Duration::MAX,
    }
}

impl Duration {
    /// The empty span.
    pub const ZERO: Duration = Duration(TimeDelta::zero());

    /// The longest span: `i64::MAX` milliseconds.
    pub const MAX: Duration = Duration(TimeDelta::MAX);

    /// The most negative span: `-i64::MAX` milliseconds, so that `-MIN == MAX`.
    pub const MIN: Duration = Duration(TimeDelta::MIN);

    /// The empty span, [`Duration::ZERO`].
    pub const fn zero() -> Duration {
        Duration::ZERO
    }

    /// `days` days of 86,400 seconds, saturated at the ends of the range.
    pub const fn days(days: i64) -> Duration {
        saturated(TimeDelta::try_days(days), days)
    }

    /// `hours` hours, saturated at the ends of the range.
    pub const fn hours(hours: i64) -> Duration {
        saturated(TimeDelta::try_hours(hours), hours)
    }

    /// `minutes` minutes, saturated at the ends of the range.
    pub const fn minutes(minutes: i64) -> Duration {
        saturated(TimeDelta::try_minutes(minutes), minutes)
    }

    /// `seconds` seconds, saturated at the ends of the range.
    ///
    /// ```
    /// use coordinate::Duration;
    ///
    /// assert_eq!(Duration::seconds(90).num_milliseconds(), 90_000);
    /// assert_eq!(Duration::seconds(i64::MIN), Duration::MIN);
    /// ```
    pub const fn seconds(seconds: i64) -> Duration {
        saturated(TimeDelta::try_seconds(seconds), seconds)
    }

    /// `seconds` seconds, or `None` outside the range.
    ///
    /// ```
    /// use coordinate::Duration;
    ///
    /// assert_eq!(Duration::try_seconds(2), Some(Duration::milliseconds(2_000)));
    /// assert_eq!(Duration::try_seconds(i64::MAX), None);
    /// ```
    pub const fn try_seconds(seconds: i64) -> Option<Duration> {
        match TimeDelta::try_seconds(seconds) {
            Some(delta) => Some(Duration(delta)),
            None => None,
        }
    }

    /// `milliseconds` milliseconds; only `i64::MIN` is outside the range
    /// and gives [`Duration::MIN`].
    pub const fn milliseconds(milliseconds: i64) -> Duration {
        saturated(TimeDelta::try_milliseconds(milliseconds), milliseconds)
    }

    /// `microseconds` microseconds (every `i64` is in range).
    pub const fn microseconds(microseconds: i64) -> Duration {
        Duration(TimeDelta::microseconds(microseconds))
    }

    /// `nanoseconds` nanoseconds (every `i64` is in range).
    pub const fn nanoseconds(nanoseconds: i64) -> Duration {
        Duration(TimeDelta::nanoseconds(nanoseconds))
    }

    /// The span from `start` to `end`: negative when `end` is earlier.
    /// Never saturates, since every two instants are less than
    /// [`Duration::MAX`] apart.
    ///
    /// ```
    /// use coordinate::{Duration, Time};
    ///
    /// let start = Time::UNIX_EPOCH;
    /// let end = start + Duration::minutes(2);
    /// assert_eq!(Duration::between(start, end), Duration::seconds(120));
    /// assert_eq!(Duration::between(end, start), Duration::seconds(-120));
    /// ```
    pub fn between(start: Time, end: Time) -> Duration {
        Duration(end.signed_duration_since(start))
    }

    /// The whole seconds, rounded towards zero.
    pub const fn num_seconds(&self) -> i64 {
        self.0.num_seconds()
    }

    /// The whole milliseconds, rounded towards zero.
    pub const fn num_milliseconds(&self) -> i64 {
        self.0.num_milliseconds()
    }

    /// The whole microseconds, rounded towards zero, or `None` beyond
    /// `i64` microseconds (about ±292,000 years).
    pub const fn num_microseconds(&self) -> Option<i64> {
        self.0.num_microseconds()
    }

    /// The nanoseconds beyond [`num_seconds`](Duration::num_seconds), with
    /// the sign of the span: `num_seconds() * 1e9 + subsec_nanos()` is the
    /// whole span in nanoseconds.
    pub const fn subsec_nanos(&self) -> i32 {
        self.0.subsec_nanos()
    }

    /// True for the empty span.
    pub const fn is_zero(&self) -> bool {
        self.0.is_zero()
    }

    /// `self + rhs`, or `None` outside the range.
    pub const fn checked_add(self, rhs: Duration) -> Option<Duration> {
        match self.0.checked_add(&rhs.0) {
            Some(delta) => Some(Duration(delta)),
            None => None,
        }
    }

    /// `self - rhs`, or `None` outside the range.
    pub const fn checked_sub(self, rhs: Duration) -> Option<Duration> {
        match self.0.checked_sub(&rhs.0) {
            Some(delta) => Some(Duration(delta)),
            None => None,
        }
    }
}

impl fmt::Display for Duration {
    /// ISO 8601, as chrono writes a `TimeDelta`: `PT90S`, `-PT0.5S`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for Duration {
    /// `Duration(PT90S)`: the ISO 8601 form of `Display`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Duration")
            .field(&format_args!("{}", self.0))
            .finish()
    }
}

impl From<std::time::Duration> for Duration {
    /// The same span, saturated at [`Duration::MAX`] (a `std::time::Duration`
    /// reaches `u64::MAX` seconds, beyond the range).
    ///
    /// ```
    /// use coordinate::Duration;
    ///
    /// let lease: Duration = std::time::Duration::from_millis(1_500).into();
    /// assert_eq!(lease, Duration::milliseconds(1_500));
    /// assert_eq!(Duration::from(std::time::Duration::MAX), Duration::MAX);
    /// ```
    fn from(std: std::time::Duration) -> Duration {
        Duration(TimeDelta::from_std(std).unwrap_or(TimeDelta::MAX))
    }
}

impl TryFrom<Duration> for std::time::Duration {
    type Error = NegativeDurationError;

    /// The same span; a negative one has no `std::time::Duration`.
    ///
    /// ```
    /// use coordinate::Duration;
    ///
    /// let lease = std::time::Duration::try_from(Duration::seconds(5));
    /// assert_eq!(lease, Ok(std::time::Duration::from_secs(5)));
    /// assert!(std::time::Duration::try_from(Duration::seconds(-5)).is_err());
    /// ```
    fn try_from(duration: Duration) -> Result<std::time::Duration, NegativeDurationError> {
        duration
            .0
            .to_std()
            .map_err(|_| NegativeDurationError(duration))
    }
}

impl From<TimeDelta> for Duration {
    fn from(delta: TimeDelta) -> Duration {
        Duration(delta)
    }
}

impl From<Duration> for TimeDelta {
    fn from(duration: Duration) -> TimeDelta {
        duration.0
    }
}

/// A negative [`Duration`] converted to a `std::time::Duration`, which
/// cannot be negative.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("negative duration {0} has no std::time::Duration")]
pub struct NegativeDurationError(Duration);

impl NegativeDurationError {
    /// The duration that was converted.
    pub fn duration(&self) -> Duration {
        self.0
    }
}

impl Neg for Duration {
    type Output = Duration;

    /// The opposite span; exact, since `-MIN == MAX`.
    fn neg(self) -> Duration {
        Duration(-self.0)
    }
}

impl Add for Duration {
    type Output = Duration;

    /// The sum, saturated at the ends of the range.
    fn add(self, rhs: Duration) -> Duration {
        match self.checked_add(rhs) {
            Some(sum) => sum,
            None if rhs < Duration::ZERO => Duration::MIN,
            None => Duration::MAX,
        }
    }
}

impl Sub for Duration {
    type Output = Duration;

    /// The difference, saturated at the ends of the range.
    fn sub(self, rhs: Duration) -> Duration {
        match self.checked_sub(rhs) {
            Some(difference) => difference,
            None if rhs > Duration::ZERO => Duration::MIN,
            None => Duration::MAX,
        }
    }
}

/// The instant `by` later (earlier if negative), or chrono's first or last
/// instant if that lies beyond.
fn moved(time: Time, by: Duration) -> Time {
    time.checked_add_signed(by.0)
        .unwrap_or(if by < Duration::ZERO {
            Time::MIN_UTC
        } else {
            Time::MAX_UTC
        })
}

impl Add<Duration> for Time {
    type Output = Time;

    /// The instant `rhs` later, saturated at chrono's last (or, for a
    /// negative span, first) instant. Operations that store a time check it
    /// against the stored range instead
    /// ([`limits::time_after`](crate::rules::limits::time_after)).
    ///
    /// ```
    /// use coordinate::{Duration, Time};
    ///
    /// assert_eq!((Time::UNIX_EPOCH + Duration::seconds(90)).timestamp(), 90);
    /// assert_eq!(Time::MAX_UTC + Duration::seconds(1), Time::MAX_UTC);
    /// ```
    fn add(self, rhs: Duration) -> Time {
        moved(self, rhs)
    }
}

impl Sub<Duration> for Time {
    type Output = Time;

    /// The instant `rhs` earlier, saturated like `Time + Duration`.
    fn sub(self, rhs: Duration) -> Time {
        moved(self, -rhs)
    }
}

impl AddAssign<Duration> for Time {
    fn add_assign(&mut self, rhs: Duration) {
        *self = *self + rhs;
    }
}

impl SubAssign<Duration> for Time {
    fn sub_assign(&mut self, rhs: Duration) {
        *self = *self - rhs;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructors_match_chrono_in_range_and_saturate_beyond() {
        assert_eq!(TimeDelta::from(Duration::days(2)), TimeDelta::days(2));
        assert_eq!(TimeDelta::from(Duration::hours(-3)), TimeDelta::hours(-3));
        assert_eq!(
            TimeDelta::from(Duration::minutes(15)),
            TimeDelta::minutes(15)
        );
        assert_eq!(TimeDelta::from(Duration::seconds(7)), TimeDelta::seconds(7));
        assert_eq!(
            TimeDelta::from(Duration::milliseconds(-1_500)),
            TimeDelta::milliseconds(-1_500)
        );
        assert_eq!(
            TimeDelta::from(Duration::microseconds(i64::MAX)),
            TimeDelta::microseconds(i64::MAX)
        );
        assert_eq!(
            TimeDelta::from(Duration::nanoseconds(i64::MIN)),
            TimeDelta::nanoseconds(i64::MIN)
        );
        for (big, small) in [
            (Duration::days(i64::MAX), Duration::days(i64::MIN)),
            (Duration::hours(i64::MAX), Duration::hours(i64::MIN)),
            (Duration::minutes(i64::MAX), Duration::minutes(i64::MIN)),
            (Duration::seconds(i64::MAX), Duration::seconds(i64::MIN)),
        ] {
            assert_eq!(big, Duration::MAX);
            assert_eq!(small, Duration::MIN);
        }
        assert_eq!(Duration::milliseconds(i64::MAX), Duration::MAX);
        assert_eq!(Duration::milliseconds(i64::MIN), Duration::MIN);
        assert_eq!(Duration::zero(), Duration::ZERO);
        assert!(Duration::ZERO.is_zero());
        assert!(!Duration::nanoseconds(1).is_zero());
    }

    #[test]
    fn accessors_round_towards_zero() {
        let d = Duration::milliseconds(-1_500);
        assert_eq!(d.num_seconds(), -1);
        assert_eq!(d.subsec_nanos(), -500_000_000);
        assert_eq!(d.num_milliseconds(), -1_500);
        assert_eq!(d.num_microseconds(), Some(-1_500_000));
        assert_eq!(Duration::MAX.num_microseconds(), None);
        assert_eq!(Duration::MAX.num_milliseconds(), i64::MAX);
    }

    #[test]
    fn std_conversion_saturates_at_max() {
        assert_eq!(
            Duration::from(std::time::Duration::new(3, 250)),
            Duration::seconds(3) + Duration::nanoseconds(250)
        );
        assert_eq!(Duration::from(std::time::Duration::ZERO), Duration::ZERO);
        assert_eq!(Duration::from(std::time::Duration::MAX), Duration::MAX);
        let just_beyond = std::time::Duration::from_millis(1 << 63);
        assert_eq!(Duration::from(just_beyond), Duration::MAX);
        let largest = std::time::Duration::try_from(Duration::MAX).unwrap();
        assert_eq!(Duration::from(largest), Duration::MAX);
    }

    #[test]
    fn negative_durations_have_no_std_duration() {
        let err = std::time::Duration::try_from(Duration::nanoseconds(-1)).unwrap_err();
        assert_eq!(err.duration(), Duration::nanoseconds(-1));
        assert_eq!(
            err.to_string(),
            "negative duration -PT0.000000001S has no std::time::Duration"
        );
        assert!(std::time::Duration::try_from(Duration::MIN).is_err());
        assert_eq!(
            std::time::Duration::try_from(Duration::ZERO),
            Ok(std::time::Duration::ZERO)
        );
    }

    #[test]
    fn conversions_round_trip() {
        for d in [
            Duration::ZERO,
            Duration::nanoseconds(1),
            Duration::milliseconds(1_500),
            Duration::days(36_525),
            Duration::MAX,
        ] {
            let std = std::time::Duration::try_from(d).unwrap();
            assert_eq!(Duration::from(std), d);
            assert_eq!(Duration::from(TimeDelta::from(d)), d);
            assert_eq!(Duration::from(TimeDelta::from(-d)), -d);
        }
    }

    #[test]
    fn arithmetic_saturates_instead_of_panicking() {
        assert_eq!(-Duration::MIN, Duration::MAX);
        assert_eq!(-Duration::MAX, Duration::MIN);
        assert_eq!(Duration::MAX + Duration::nanoseconds(1), Duration::MAX);
        assert_eq!(Duration::MIN + Duration::nanoseconds(-1), Duration::MIN);
        assert_eq!(Duration::MIN - Duration::nanoseconds(1), Duration::MIN);
        assert_eq!(Duration::MAX - Duration::nanoseconds(-1), Duration::MAX);
        assert_eq!(Duration::MAX.checked_add(Duration::nanoseconds(1)), None);
        assert_eq!(Duration::MIN.checked_sub(Duration::nanoseconds(1)), None);
        assert_eq!(
            Duration::seconds(1) + Duration::milliseconds(500) - Duration::seconds(2),
            Duration::milliseconds(-500)
        );
        assert!(Duration::seconds(-1) < Duration::ZERO);
    }

    #[test]
    fn time_arithmetic_saturates_at_the_ends_of_the_time_range() {
        let t = Time::UNIX_EPOCH;
        assert_eq!(
            t + Duration::seconds(90) - Duration::seconds(30),
            t + Duration::minutes(1)
        );
        assert_eq!(Time::MAX_UTC + Duration::nanoseconds(1), Time::MAX_UTC);
        assert_eq!(Time::MIN_UTC - Duration::nanoseconds(1), Time::MIN_UTC);
        assert_eq!(Time::MIN_UTC + Duration::MIN, Time::MIN_UTC);
        assert_eq!(t + Duration::MAX, Time::MAX_UTC);
        assert_eq!(t - Duration::MAX, Time::MIN_UTC);
        assert_eq!(t - Duration::MIN, Time::MAX_UTC);
        let mut moving = t;
        moving += Duration::MAX;
        assert_eq!(moving, Time::MAX_UTC);
        moving -= Duration::MAX;
        assert_eq!(moving, Time::MIN_UTC);
        assert_eq!(
            Duration::between(Time::MIN_UTC, Time::MAX_UTC),
            Duration::from(Time::MAX_UTC - Time::MIN_UTC)
        );
        assert!(Duration::between(Time::MIN_UTC, Time::MAX_UTC) < Duration::MAX);
    }

    #[test]
    fn formats_are_chronos() {
        let d = Duration::seconds(90);
        assert_eq!(d.to_string(), "PT90S");
        assert_eq!(format!("{d:?}"), "Duration(PT90S)");
        let json = serde_json::to_string(&Duration::milliseconds(1_500)).unwrap();
        assert_eq!(
            json,
            serde_json::to_string(&TimeDelta::milliseconds(1_500)).unwrap()
        );
        assert_eq!(json, "[1,500000000]");
        let back: Duration = serde_json::from_str(&json).unwrap();
        assert_eq!(back, Duration::milliseconds(1_500));
        assert!(serde_json::from_str::<Duration>("[9223372036854775807,0]").is_err());
    }
}
