//! Plain data: data maps, times, statuses, metas, queries, requests and summaries.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::StatusConversionError;

/// A data map: work spec definitions, work unit, attempt and worker data.
///
/// Nested at most 100 levels deep (see [Limits](crate#limits)).
pub type DataMap = serde_json::Map<String, serde_json::Value>;

/// An absolute instant (UTC). Stored instants lie in the years 1 to 9999,
/// at microsecond resolution (see [Limits](crate#limits)).
pub type Time = chrono::DateTime<chrono::Utc>;

pub use crate::duration::{Duration, NegativeDurationError};

/// The default lease of an attempt and the default lifetime of a new worker.
pub const DEFAULT_LIFETIME: Duration = Duration::minutes(15);

/// Builds a [`DataMap`] from a `serde_json::json!` object literal.
///
/// Anything but an object yields an empty map.
///
/// ```
/// let d = coordinate::data!({"name": "spec", "priority": 3});
/// assert_eq!(d["priority"], 3);
/// ```
#[macro_export]
macro_rules! data {
    ($($json:tt)+) => {
        match $crate::__serde_json::json!($($json)+) {
            $crate::__serde_json::Value::Object(map) => map,
            _ => $crate::DataMap::new(),
        }
    };
}

/// The status of a work unit. The ordinal order is significant:
/// summaries sort by it.
///
/// ```
/// use coordinate::WorkUnitStatus;
///
/// assert_eq!(WorkUnitStatus::Pending.ordinal(), 2);
/// assert_eq!(WorkUnitStatus::from_ordinal(5)?, WorkUnitStatus::Delayed);
/// assert_eq!(WorkUnitStatus::Failed.as_str(), "failed");
/// assert_eq!(WorkUnitStatus::text_of_ordinal(9).unwrap_err().to_string(), "invalid status (marshal, 9)");
/// assert!(WorkUnitStatus::Available < WorkUnitStatus::Finished);
/// # Ok::<(), coordinate::StatusConversionError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkUnitStatus {
    /// Query wildcard only; never the status of a real unit.
    AnyStatus,
    /// Can be handed out now.
    Available,
    /// A worker is working on it.
    Pending,
    /// Completed successfully.
    Finished,
    /// Completed unsuccessfully.
    Failed,
    /// No active attempt, but its not-before time is still in the future.
    Delayed,
}

/// The status of an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttemptStatus {
    /// In progress.
    Pending,
    /// Its lease ran out or it was explicitly expired.
    Expired,
    /// Completed successfully.
    Finished,
    /// Completed unsuccessfully.
    Failed,
    /// Completed unsuccessfully but should be tried again.
    Retryable,
}

/// Ordinal and text conversions shared by both status enumerations.
macro_rules! status_conversions {
    ($ty:ident { $($variant:ident = $ord:literal => $text:literal),+ $(,)? }) => {
        impl $ty {
            /// Every status, in ordinal order.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

            /// The ordinal of the status.
            pub fn ordinal(self) -> i64 {
                match self { $($ty::$variant => $ord),+ }
            }

            /// The status with this ordinal.
            pub fn from_ordinal(ordinal: i64) -> Result<Self, StatusConversionError> {
                match ordinal {
                    $($ord => Ok($ty::$variant),)+
                    n => Err(StatusConversionError::Marshal(n)),
                }
            }

            /// The text form of the status with this ordinal; fails with
            /// `invalid status (marshal, N)` for an unknown ordinal.
            pub fn text_of_ordinal(ordinal: i64) -> Result<&'static str, StatusConversionError> {
                Self::from_ordinal(ordinal).map(Self::as_str)
            }

            /// The text form of the status.
            pub fn as_str(self) -> &'static str {
                match self { $($ty::$variant => $text),+ }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $ty {
            type Err = StatusConversionError;

            /// Parses the text form; fails with `invalid status (unmarshal, T)`.
            fn from_str(text: &str) -> Result<Self, Self::Err> {
                match text {
                    $($text => Ok($ty::$variant),)+
                    other => Err(StatusConversionError::Unmarshal(other.to_string())),
                }
            }
        }
    };
}

status_conversions!(WorkUnitStatus {
    AnyStatus = 0 => "any",
    Available = 1 => "available",
    Pending = 2 => "pending",
    Finished = 3 => "finished",
    Failed = 4 => "failed",
    Delayed = 5 => "delayed",
});

status_conversions!(AttemptStatus {
    Pending = 0 => "pending",
    Expired = 1 => "expired",
    Finished = 2 => "finished",
    Failed = 3 => "failed",
    Retryable = 4 => "retryable",
});

/// Scheduling metadata of a work spec, derived from its definition
/// and adjustable with `set_meta`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkSpecMeta {
    /// Absolute priority: the scheduler only picks among the highest.
    pub priority: i64,
    /// Relative share among specs of equal priority.
    pub weight: i64,
    /// Never scheduled while paused (definition key `disabled`).
    pub paused: bool,
    /// Generates artificial units when idle.
    pub continuous: bool,
    /// Whether the definition allows `continuous` (not settable).
    pub can_be_continuous: bool,
    /// Memory a worker needs for this spec (definition key `min_gb`): a
    /// request with a positive [`AttemptRequest::available_gb`] below it
    /// is never given this spec's units.
    pub min_memory_gb: f64,
    /// Minimum time between two generated continuous units; 0 to 100 years
    /// (see [Limits](crate#limits)).
    pub interval: Duration,
    /// Earliest time of the next continuous unit; `None` is "no restriction".
    pub next_continuous: Option<Time>,
    /// Maximum pending units at once; 0 is unlimited.
    pub max_running: i64,
    /// Maximum attempts per request (definition key `max_getwork`); 0 is unlimited.
    pub max_attempts_returned: i64,
    /// Maximum attempts per unit before it fails; 0 is unlimited.
    pub max_retries: i64,
    /// The spec finished units chain to (definition key `then`; not settable).
    pub next_work_spec_name: String,
    /// Computed: available units (only when counts are requested).
    pub available_count: i64,
    /// Computed: pending units (only when counts are requested).
    pub pending_count: i64,
    /// Runtime requested workers must match (not settable).
    pub runtime: String,
}

impl Default for WorkSpecMeta {
    fn default() -> Self {
        WorkSpecMeta {
            priority: 0,
            weight: 20,
            paused: false,
            continuous: false,
            can_be_continuous: false,
            min_memory_gb: 0.0,
            interval: Duration::zero(),
            next_continuous: None,
            max_running: 0,
            max_attempts_returned: 0,
            max_retries: 0,
            next_work_spec_name: String::new(),
            available_count: 0,
            pending_count: 0,
            runtime: String::new(),
        }
    }
}

/// Metadata of a work unit.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct WorkUnitMeta {
    /// Higher runs first. Finite; `-0.0` is stored as `0.0` (see
    /// [Limits](crate#limits)).
    pub priority: f64,
    /// Not handed out before this instant; `None` is "no restriction".
    pub not_before: Option<Time>,
}

impl WorkUnitMeta {
    /// A meta with this priority and no delay.
    pub fn with_priority(priority: f64) -> Self {
        WorkUnitMeta {
            priority,
            not_before: None,
        }
    }
}

/// A work unit's status, data and meta read together: what
/// [`WorkUnit::snapshot`](crate::WorkUnit::snapshot) answers.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct WorkUnitSnapshot {
    /// The status, after an expiry check over the spec.
    pub status: WorkUnitStatus,
    /// The active attempt's data if there is one, else the unit's own.
    pub data: DataMap,
    /// Priority and not-before time.
    pub meta: WorkUnitMeta,
}

impl WorkUnitSnapshot {
    /// A snapshot of these three values (for backends outside this crate).
    pub fn new(status: WorkUnitStatus, data: DataMap, meta: WorkUnitMeta) -> Self {
        WorkUnitSnapshot { status, data, meta }
    }
}

/// An attempt's status, data and times read together: what
/// [`Attempt::snapshot`](crate::Attempt::snapshot) answers.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct AttemptSnapshot {
    /// The status, after an expiry check over the spec.
    pub status: AttemptStatus,
    /// The attempt's own data.
    pub data: DataMap,
    /// When the attempt was made.
    pub start_time: Time,
    /// When it left Pending; `None` while pending.
    pub end_time: Option<Time>,
    /// When its lease runs out.
    pub expiration_time: Time,
}

impl AttemptSnapshot {
    /// A snapshot of these five values (for backends outside this crate).
    pub fn new(
        status: AttemptStatus,
        data: DataMap,
        start_time: Time,
        end_time: Option<Time>,
        expiration_time: Time,
    ) -> Self {
        AttemptSnapshot {
            status,
            data,
            start_time,
            end_time,
            expiration_time,
        }
    }
}

/// A work unit to add with [`WorkSpec::add_work_units`](crate::WorkSpec::add_work_units):
/// what [`add_work_unit`](crate::WorkSpec::add_work_unit) takes, as one value.
///
/// ```
/// use coordinate::{data, NewWorkUnit, WorkUnitMeta};
///
/// let unit = NewWorkUnit::new("img-1", data!({"w": 640})).with_meta(WorkUnitMeta::with_priority(2.0));
/// assert_eq!(unit.meta.priority, 2.0);
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NewWorkUnit {
    /// The unit's name.
    pub name: String,
    /// Its data.
    pub data: DataMap,
    /// Its priority and not-before time.
    pub meta: WorkUnitMeta,
}

impl NewWorkUnit {
    /// A unit with this name and data and the default meta.
    pub fn new(name: impl Into<String>, data: DataMap) -> Self {
        NewWorkUnit {
            name: name.into(),
            data,
            meta: WorkUnitMeta::default(),
        }
    }

    /// The same unit with this meta.
    pub fn with_meta(mut self, meta: WorkUnitMeta) -> Self {
        self.meta = meta;
        self
    }
}

/// Selects work units of a spec. The default query selects every unit.
///
/// ```
/// use coordinate::{WorkUnitQuery, WorkUnitStatus};
///
/// // The second page of 100 pending or failed units, after "u0099".
/// let query = WorkUnitQuery {
///     previous_name: "u0099".into(),
///     limit: 100,
///     ..WorkUnitQuery::statuses([WorkUnitStatus::Pending, WorkUnitStatus::Failed])
/// };
/// assert!(query.admits_name("u0100") && !query.admits_name("u0099"));
/// assert!(query.admits_status(WorkUnitStatus::Failed));
/// assert!(!query.admits_status(WorkUnitStatus::Available));
/// assert_eq!(query.limit(), Some(100));
///
/// // Zero or a negative limit means no limit.
/// assert_eq!(WorkUnitQuery::names(["a", "b"]).limit(), None);
/// ```
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct WorkUnitQuery {
    /// If non-empty, only these names (missing ones are ignored).
    pub names: Vec<String>,
    /// If non-empty and without `AnyStatus`, only units with these statuses.
    pub statuses: Vec<WorkUnitStatus>,
    /// If non-empty, only names strictly greater (byte order).
    pub previous_name: String,
    /// If positive, only the first `limit` matching names in ascending order.
    pub limit: i64,
}

impl WorkUnitQuery {
    /// Every unit of the spec.
    pub fn all() -> Self {
        Self::default()
    }

    /// The units with these names.
    pub fn names<I, S>(names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        WorkUnitQuery {
            names: names.into_iter().map(Into::into).collect(),
            ..Self::default()
        }
    }

    /// The units with one of these statuses.
    pub fn statuses(statuses: impl IntoIterator<Item = WorkUnitStatus>) -> Self {
        WorkUnitQuery {
            statuses: statuses.into_iter().collect(),
            ..Self::default()
        }
    }

    /// True if the names constraint admits `name`.
    pub fn admits_name(&self, name: &str) -> bool {
        (self.names.is_empty() || self.names.iter().any(|n| n == name))
            && (self.previous_name.is_empty() || name > self.previous_name.as_str())
    }

    /// True if the statuses constraint admits `status`.
    pub fn admits_status(&self, status: WorkUnitStatus) -> bool {
        self.statuses.is_empty()
            || self
                .statuses
                .iter()
                .any(|s| *s == status || *s == WorkUnitStatus::AnyStatus)
    }

    /// True if the query constrains statuses at all.
    pub fn filters_status(&self) -> bool {
        !(self.statuses.is_empty() || self.statuses.contains(&WorkUnitStatus::AnyStatus))
    }

    /// The limit as a count, `None` when unlimited.
    pub fn limit(&self) -> Option<usize> {
        usize::try_from(self.limit).ok().filter(|l| *l > 0)
    }
}

/// A worker's request for work. The default asks for one unit of any spec.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct AttemptRequest {
    /// Memory the worker has: if greater than zero, only specs whose
    /// [`WorkSpecMeta::min_memory_gb`] is at most this are considered; zero,
    /// negative or NaN considers every spec.
    pub available_gb: f64,
    /// Lease of the returned attempts; zero or negative is the 15-minute default.
    pub lifetime: Duration,
    /// How many attempts are wanted; values below 1 mean 1, and at most
    /// [`MAX_ATTEMPTS_PER_REQUEST`](crate::rules::limits::MAX_ATTEMPTS_PER_REQUEST)
    /// are handed out.
    pub number_of_work_units: i64,
    /// If non-empty, only specs with these names.
    pub work_specs: Vec<String>,
    /// If non-empty, only specs whose runtime is one of these.
    pub runtimes: Vec<String>,
}

impl AttemptRequest {
    /// A request for up to `n` units of any spec.
    pub fn units(n: i64) -> Self {
        AttemptRequest {
            number_of_work_units: n,
            ..Self::default()
        }
    }

    /// The lease to give: the request's lifetime, or the default when it is
    /// zero or negative.
    pub fn effective_lifetime(&self) -> Duration {
        if self.lifetime > Duration::zero() {
            self.lifetime
        } else {
            DEFAULT_LIFETIME
        }
    }
}

/// One line of a summary. Records order by namespace, then work spec, then
/// status ordinal (then count), so sorting a [`Summary`] gives that order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SummaryRecord {
    /// Namespace name.
    pub namespace: String,
    /// Work spec name.
    pub work_spec: String,
    /// A status at least one unit has.
    pub status: WorkUnitStatus,
    /// How many units have it (never zero).
    pub count: u64,
}

/// A summary: records in unspecified order; `sort()` orders them by
/// namespace, work spec and status.
pub type Summary = Vec<SummaryRecord>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_text_round_trips() {
        for s in WorkUnitStatus::ALL {
            assert_eq!(s.as_str().parse::<WorkUnitStatus>(), Ok(*s));
            assert_eq!(WorkUnitStatus::from_ordinal(s.ordinal()), Ok(*s));
        }
        for s in AttemptStatus::ALL {
            assert_eq!(s.as_str().parse::<AttemptStatus>(), Ok(*s));
            assert_eq!(AttemptStatus::from_ordinal(s.ordinal()), Ok(*s));
        }
    }

    #[test]
    fn status_conversion_errors_have_exact_texts() {
        let err = WorkUnitStatus::text_of_ordinal(6).unwrap_err();
        assert_eq!(err.to_string(), "invalid status (marshal, 6)");
        let err = AttemptStatus::text_of_ordinal(-1).unwrap_err();
        assert_eq!(err.to_string(), "invalid status (marshal, -1)");
        let err = "Pending".parse::<AttemptStatus>().unwrap_err();
        assert_eq!(err.to_string(), "invalid status (unmarshal, Pending)");
        let err = " any".parse::<WorkUnitStatus>().unwrap_err();
        assert_eq!(err.to_string(), "invalid status (unmarshal,  any)");
    }

    #[test]
    fn statuses_serialize_as_text() {
        let json = serde_json::to_string(&WorkUnitStatus::Delayed).unwrap();
        assert_eq!(json, "\"delayed\"");
        let back: AttemptStatus = serde_json::from_str("\"retryable\"").unwrap();
        assert_eq!(back, AttemptStatus::Retryable);
    }

    #[test]
    fn query_constraints() {
        let q = WorkUnitQuery {
            names: vec!["a".into(), "c".into()],
            previous_name: "a".into(),
            ..Default::default()
        };
        assert!(!q.admits_name("a"));
        assert!(!q.admits_name("b"));
        assert!(q.admits_name("c"));
        let any = WorkUnitQuery::statuses([WorkUnitStatus::Pending, WorkUnitStatus::AnyStatus]);
        assert!(any.admits_status(WorkUnitStatus::Finished));
        assert!(!any.filters_status());
        let pending = WorkUnitQuery::statuses([WorkUnitStatus::Pending]);
        assert!(!pending.admits_status(WorkUnitStatus::Finished));
        assert_eq!(
            WorkUnitQuery {
                limit: -3,
                ..Default::default()
            }
            .limit(),
            None
        );
        assert_eq!(
            WorkUnitQuery {
                limit: 3,
                ..Default::default()
            }
            .limit(),
            Some(3)
        );
    }

    #[test]
    fn default_meta_matches_the_spec() {
        let m = WorkSpecMeta::default();
        assert_eq!(m.weight, 20);
        assert_eq!(m.next_continuous, None);
        assert_eq!(m.interval, Duration::zero());
    }

    #[test]
    fn effective_lifetime_defaults_non_positive() {
        assert_eq!(
            AttemptRequest::default().effective_lifetime(),
            DEFAULT_LIFETIME
        );
        let r = AttemptRequest {
            lifetime: Duration::seconds(-5),
            ..Default::default()
        };
        assert_eq!(r.effective_lifetime(), DEFAULT_LIFETIME);
        let r = AttemptRequest {
            lifetime: Duration::seconds(5),
            ..Default::default()
        };
        assert_eq!(r.effective_lifetime(), Duration::seconds(5));
    }
}
