//! The attempt state-transition table (rows: the attempt's status and
//! whether it is its unit's active attempt; columns: the state changes), one
//! scenario per row, every column (`renew`, `expire`, `finish`, `fail`,
//! `retry`) checked on its own
//! attempt: the result (`NotPending` / `LostLease` / success), the attempt's
//! status, data and end time afterwards, the unit's status, active attempt
//! and not-before time, and the worker's active list.

use super::{Run, TestBackend};
use crate::api::{AttemptRef, WorkSpecRef, WorkUnitRef, WorkerRef};
use crate::data;
use crate::error::Error;
use crate::model::{AttemptStatus, Duration, Time, WorkUnitStatus};

use AttemptStatus as A;
use WorkUnitStatus as U;

/// A row of the table: the state the attempt is in before the call.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Row {
    PendingActive,
    /// Superseded by another worker's `make_attempt`, which stays active.
    PendingNotActive,
    /// Its unit's active attempt cleared, past its deadline since.
    PendingCleared,
    /// Explicitly expired, so no longer active.
    Expired,
    Finished,
    Failed,
    Retryable,
}

/// A column of the table.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Call {
    Renew,
    Expire,
    Finish,
    Fail,
    Retry,
}

const CALLS: [Call; 5] = [
    Call::Renew,
    Call::Expire,
    Call::Finish,
    Call::Fail,
    Call::Retry,
];

/// What the unit's active attempt is after the call.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Active {
    This,
    Other,
    Nothing,
}

/// What the attempt's end time is after the call.
#[derive(Debug, Clone, Copy, PartialEq)]
enum End {
    Unset,
    /// Set to the time of the call.
    Now,
    /// Unchanged from the set-up.
    Kept,
}

/// The expected result of one cell.
#[derive(Debug)]
struct Cell {
    error: Option<Error>,
    status: AttemptStatus,
    data_replaced: bool,
    end: End,
    unit: WorkUnitStatus,
    active: Active,
    /// `retry` always sets `not_before = now + delay` when it is allowed.
    not_before_now: bool,
}

fn ok(status: AttemptStatus, unit: WorkUnitStatus, active: Active) -> Cell {
    Cell {
        error: None,
        status,
        data_replaced: true,
        end: End::Now,
        unit,
        active,
        not_before_now: false,
    }
}

fn refused(status: AttemptStatus, unit: WorkUnitStatus, active: Active) -> Cell {
    Cell {
        error: Some(Error::NotPending),
        status,
        data_replaced: false,
        end: End::Kept,
        unit,
        active,
        not_before_now: false,
    }
}

/// The state-transition table: what `call` does to an attempt in `row`.
fn expected(row: Row, call: Call) -> Cell {
    use Active::{Nothing, Other, This};
    match (row, call) {
        (Row::PendingActive, Call::Renew) => Cell {
            end: End::Unset,
            ..ok(A::Pending, U::Pending, This)
        },
        (Row::PendingActive, Call::Expire) => ok(A::Expired, U::Available, Nothing),
        (Row::PendingActive, Call::Finish) => ok(A::Finished, U::Finished, This),
        (Row::PendingActive, Call::Fail) => ok(A::Failed, U::Failed, This),
        (Row::PendingActive, Call::Retry) => Cell {
            not_before_now: true,
            ..ok(A::Retryable, U::Available, Nothing)
        },

        (Row::PendingNotActive, Call::Renew) => Cell {
            error: Some(Error::LostLease),
            ..ok(A::Expired, U::Pending, Other)
        },
        (Row::PendingNotActive, Call::Expire) => ok(A::Expired, U::Pending, Other),
        (Row::PendingNotActive, Call::Finish) => ok(A::Finished, U::Pending, Other),
        (Row::PendingNotActive, Call::Fail) => ok(A::Failed, U::Pending, Other),
        (Row::PendingNotActive, Call::Retry) => Cell {
            not_before_now: true,
            ..ok(A::Retryable, U::Pending, Other)
        },

        (Row::PendingCleared, Call::Renew) => Cell {
            error: Some(Error::LostLease),
            ..ok(A::Expired, U::Available, Nothing)
        },
        (Row::PendingCleared, Call::Expire) => ok(A::Expired, U::Available, Nothing),
        (Row::PendingCleared, Call::Finish) => ok(A::Finished, U::Available, Nothing),
        (Row::PendingCleared, Call::Fail) => ok(A::Failed, U::Available, Nothing),
        (Row::PendingCleared, Call::Retry) => Cell {
            not_before_now: true,
            ..ok(A::Retryable, U::Available, Nothing)
        },

        (Row::Expired, Call::Renew) => Cell {
            error: Some(Error::LostLease),
            ..ok(A::Expired, U::Available, Nothing)
        },
        (Row::Expired, Call::Expire) => Cell {
            error: None,
            ..refused(A::Expired, U::Available, Nothing)
        },
        (Row::Expired, _) => refused(A::Expired, U::Available, Nothing),

        (Row::Finished, _) => refused(A::Finished, U::Finished, This),

        (Row::Failed, Call::Finish) => ok(A::Finished, U::Finished, This),
        (Row::Failed, _) => refused(A::Failed, U::Failed, This),

        (Row::Retryable, _) => refused(A::Retryable, U::Available, Nothing),
    }
}

struct Table {
    spec: WorkSpecRef,
    worker: WorkerRef,
    other: WorkerRef,
}

/// Puts a fresh unit's attempt into `row`'s state; answers the unit, the
/// attempt, the other worker's attempt (if any) and the set-up end time.
async fn set_up(
    r: &Run,
    t: &Table,
    row: Row,
    name: &str,
) -> (WorkUnitRef, AttemptRef, Option<AttemptRef>, Option<Time>) {
    let unit = r.unit(&t.spec, name, data!({"unit": name})).await;
    let a = r.ok(
        t.worker.make_attempt(&unit, Duration::zero()).await,
        "set-up make_attempt",
    );
    let mut other = None;
    match row {
        Row::PendingActive => {}
        Row::PendingNotActive => {
            let b = r.ok(
                t.other.make_attempt(&unit, Duration::zero()).await,
                "supersede",
            );
            other = Some(b);
        }
        Row::PendingCleared => {
            r.ok(unit.clear_active_attempt().await, "set-up clear");
            // No expiry check expires an attempt that is not active.
            r.advance(Duration::minutes(16));
            r.ok_eq(unit.status().await, U::Available, "set-up: cleared unit");
            r.ok_eq(a.status().await, A::Pending, "set-up: cleared attempt");
        }
        Row::Expired => r.ok(a.expire(None).await, "set-up expire"),
        Row::Finished => r.ok(a.finish(None).await, "set-up finish"),
        Row::Failed => r.ok(a.fail(None).await, "set-up fail"),
        Row::Retryable => r.ok(a.retry(None, Duration::zero()).await, "set-up retry"),
    }
    let end = r.ok(a.end_time().await, "set-up end_time");
    (unit, a, other, end)
}

async fn run_row(t: TestBackend, scenario: &'static str, row: Row) {
    let r = Run::new(scenario, t);
    let ns = r.ns(scenario).await;
    let table = Table {
        spec: r.named_spec(&ns, "spec").await,
        worker: r.worker(&ns, "worker").await,
        other: r.worker(&ns, "other").await,
    };
    for call in CALLS {
        let name = format!("{call:?}");
        let step = format!("{row:?} × {call:?}");
        let (unit, a, other, setup_end) = set_up(&r, &table, row, &name).await;
        let before_meta = r.ok(unit.meta().await, "meta before");
        r.advance_secs(1);
        let now = r.now();
        let given = data!({"by": name});
        let result = match call {
            Call::Renew => a.renew(Duration::seconds(60), Some(given.clone())).await,
            Call::Expire => a.expire(Some(given.clone())).await,
            Call::Finish => a.finish(Some(given.clone())).await,
            Call::Fail => a.fail(Some(given.clone())).await,
            Call::Retry => a.retry(Some(given.clone()), Duration::zero()).await,
        };
        let cell = expected(row, call);
        match cell.error {
            None => r.ok(result, &step),
            Some(e) => r.fails(result, e, &step),
        }
        r.ok_eq(
            a.status().await,
            cell.status,
            format_args!("{step}: attempt status"),
        );
        let data = r.ok(a.data().await, format_args!("{step}: data"));
        let expected_data = if cell.data_replaced {
            given
        } else {
            data!({"unit": name})
        };
        check_eq!(r, data, expected_data, "{step}: attempt data");
        let end = r.ok(a.end_time().await, format_args!("{step}: end_time"));
        let expected_end = match cell.end {
            End::Unset => None,
            End::Now => Some(now),
            End::Kept => setup_end,
        };
        check_eq!(r, end, expected_end, "{step}: end time");
        if row == Row::PendingActive && call == Call::Renew {
            let exp = r.ok(a.expiration_time().await, "expiration");
            check_eq!(
                r,
                exp,
                now + Duration::seconds(60),
                "{step}: renewed expiration"
            );
        }
        r.ok_eq(
            unit.status().await,
            cell.unit,
            format_args!("{step}: unit status"),
        );
        let active = r.active_key(&unit).await;
        let expected_active = match cell.active {
            Active::This => Some(r.key(&a).await),
            Active::Other => match &other {
                Some(b) => Some(r.key(b).await),
                None => None,
            },
            Active::Nothing => None,
        };
        check_eq!(r, active, expected_active, "{step}: unit's active attempt");
        let meta = r.ok(unit.meta().await, "meta after");
        let expected_nb = if cell.not_before_now {
            Some(now)
        } else {
            before_meta.not_before
        };
        check_eq!(r, meta.not_before, expected_nb, "{step}: unit not_before");
        let listed = r
            .keys(&r.ok(table.worker.active_attempts().await, "active list"))
            .await;
        let key = r.key(&a).await;
        let on_list = listed.contains(&key);
        check_eq!(
            r,
            on_list,
            cell.status == A::Pending,
            "{step}: on the worker's active list"
        );
        if let Some(b) = &other {
            r.ok_eq(
                b.status().await,
                A::Pending,
                format_args!("{step}: other attempt untouched"),
            );
        }
        // The unit's own data is never modified by attempt calls.
        r.ok(unit.clear_active_attempt().await, "clear");
        let own = r.ok(unit.data().await, "own data");
        check_eq!(r, own, data!({"unit": name}), "{step}: unit's own data");
    }
}

/// Defines one public scenario per row of the transition table, each
/// running [`run_row`] under its own name.
macro_rules! row_scenarios {
    ($($(#[doc = $doc:literal])* $name:ident => $row:expr;)*) => {
        $(
            $(#[doc = $doc])*
            pub async fn $name(t: TestBackend) {
                run_row(t, stringify!($name), $row).await;
            }
        )*
    };
}

row_scenarios! {
    /// Row "Pending, active": `renew` keeps it Pending (new expiration
    /// `now + extend`, data replaced); `expire` → Expired (unit Available);
    /// `finish` → Finished; `fail` → Failed (both stay active); `retry` →
    /// Retryable (unit Available, `not_before = now`).
    transitions_pending_active => Row::PendingActive;
    /// Row "Pending, not active" (superseded by `make_attempt`): `renew`
    /// → Expired + `LostLease`; `expire`, `finish` (no chaining), `fail` and
    /// `retry` succeed; the unit stays Pending with the other attempt; `retry`
    /// still sets the unit's `not_before`.
    transitions_pending_not_active => Row::PendingNotActive;
    /// Row "Pending, not active" reached by `clear_active_attempt`, and
    /// past its deadline: no expiry check expires it; `renew` → Expired +
    /// `LostLease`; `expire`, `finish` (no chaining), `fail` and `retry`
    /// succeed; the unit stays Available without an active attempt.
    transitions_pending_cleared => Row::PendingCleared;
    /// Row "Expired": `renew` → Expired again (end time and data
    /// replaced) + `LostLease`; `expire` is a no-op success (data kept);
    /// `finish`, `fail`, `retry` → `NotPending`.
    transitions_expired => Row::Expired;
    /// Row "Finished": every call → `NotPending`, nothing changes.
    transitions_finished => Row::Finished;
    /// Row "Failed": `finish` → Finished (unit Finished); every other
    /// call → `NotPending`.
    transitions_failed => Row::Failed;
    /// Row "Retryable": every call → `NotPending`, nothing changes.
    transitions_retryable => Row::Retryable;
}
