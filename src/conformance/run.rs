//! The harness every scenario runs in: one [`Run`] with assertion helpers
//! that name the scenario, its fixtures, and the variations a dead handle
//! may report.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{Debug, Display};

use super::{DeadLists, Identity, TestBackend};
use crate::api::{AttemptRef, Backend, NamespaceRef, WorkSpecRef, WorkUnitRef, WorkerRef};
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::model::{
    AttemptRequest, DataMap, Duration, Time, WorkUnitMeta, WorkUnitQuery, WorkUnitStatus,
};

/// An attempt compared by value: (worker, unit, spec, start time).
pub(crate) type AttemptKey = (String, String, String, Time);

/// The names a dead handle may report instead of `Gone`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Dead<'a> {
    /// `NoSuchWorkSpec { spec }` is accepted.
    pub(crate) spec: Option<&'a str>,
    /// `NoSuchWorkUnit { unit }` is accepted.
    pub(crate) unit: Option<&'a str>,
}

impl<'a> Dead<'a> {
    /// Only `Gone` is accepted.
    pub(crate) fn strict() -> Self {
        Dead::default()
    }

    /// `Gone` or `NoSuchWorkSpec { spec }`.
    pub(crate) fn spec(spec: &'a str) -> Self {
        Dead {
            spec: Some(spec),
            unit: None,
        }
    }

    /// `Gone`, `NoSuchWorkSpec { spec }` or `NoSuchWorkUnit { unit }`.
    pub(crate) fn unit(spec: &'a str, unit: &'a str) -> Self {
        Dead {
            spec: Some(spec),
            unit: Some(unit),
        }
    }

    fn accepts(&self, err: &Error) -> bool {
        match err {
            Error::Gone { .. } => true,
            Error::NoSuchWorkSpec { name } => self.spec == Some(name.as_str()),
            Error::NoSuchWorkUnit { name } => self.unit == Some(name.as_str()),
            _ => false,
        }
    }
}

/// Things a dead parent may report empty instead of failing.
pub(crate) trait MaybeEmpty {
    fn is_empty_result(&self) -> bool;
}

impl<T> MaybeEmpty for Vec<T> {
    fn is_empty_result(&self) -> bool {
        self.is_empty()
    }
}

impl<K, V> MaybeEmpty for BTreeMap<K, V> {
    fn is_empty_result(&self) -> bool {
        self.is_empty()
    }
}

impl MaybeEmpty for DataMap {
    fn is_empty_result(&self) -> bool {
        self.is_empty()
    }
}

impl<T> MaybeEmpty for Option<T> {
    fn is_empty_result(&self) -> bool {
        self.is_none()
    }
}

impl MaybeEmpty for u64 {
    fn is_empty_result(&self) -> bool {
        *self == 0
    }
}

impl MaybeEmpty for () {
    fn is_empty_result(&self) -> bool {
        true
    }
}

/// One scenario run: the backend under test plus assertion helpers that
/// name the scenario in every failure.
pub(crate) struct Run {
    pub(crate) name: &'static str,
    pub(crate) t: TestBackend,
}

impl Run {
    pub(crate) fn new(name: &'static str, t: TestBackend) -> Self {
        Run { name, t }
    }

    /// A run with a namespace named after the scenario.
    pub(crate) async fn with_ns(name: &'static str, t: TestBackend) -> (Self, NamespaceRef) {
        let r = Run::new(name, t);
        let ns = r.ns(name).await;
        (r, ns)
    }

    /// A run with [`Run::basic`] in a namespace named after the scenario.
    pub(crate) async fn with_basic(
        name: &'static str,
        t: TestBackend,
        spec_name: &str,
    ) -> (Self, NamespaceRef, WorkSpecRef, WorkerRef) {
        let r = Run::new(name, t);
        let (ns, spec, worker) = r.basic(name, spec_name).await;
        (r, ns, spec, worker)
    }

    pub(crate) fn backend(&self) -> &dyn Backend {
        self.t.backend.as_ref()
    }

    pub(crate) fn identity(&self) -> Identity {
        self.t.identity
    }

    pub(crate) fn now(&self) -> Time {
        self.t.clock.now()
    }

    pub(crate) fn advance(&self, by: Duration) {
        self.t.clock.advance(by);
    }

    pub(crate) fn advance_secs(&self, secs: i64) {
        self.advance(Duration::seconds(secs));
    }

    /// The value, or a panic naming the step and the error.
    #[track_caller]
    pub(crate) fn ok<T>(&self, res: Result<T>, step: impl Display) -> T {
        match res {
            Ok(v) => v,
            Err(e) => panic!("[{}] {step}: unexpected error {e:?} ({e})", self.name),
        }
    }

    /// The value, which must equal `want`; a panic naming the step
    /// otherwise (an error, or another value).
    #[track_caller]
    pub(crate) fn ok_eq<T, W>(&self, res: Result<T>, want: W, step: impl Display)
    where
        T: PartialEq<W> + Debug,
        W: Debug,
    {
        let got = self.ok(res, &step);
        assert_eq!(got, want, "[{}] {step}", self.name);
    }

    /// The value, which must be empty (see [`MaybeEmpty`]); a panic naming
    /// the step otherwise.
    #[track_caller]
    pub(crate) fn ok_empty<T: MaybeEmpty + Debug>(&self, res: Result<T>, step: impl Display) {
        let got = self.ok(res, &step);
        assert!(
            got.is_empty_result(),
            "[{}] {step}: expected an empty result, got {got:?}",
            self.name
        );
    }

    /// The error, or a panic naming the step and the unexpected success.
    #[track_caller]
    pub(crate) fn err<T: Debug>(&self, res: Result<T>, step: impl Display) -> Error {
        match res {
            Ok(v) => panic!("[{}] {step}: expected an error, got Ok({v:?})", self.name),
            Err(e) => e,
        }
    }

    /// Fails with exactly `expected` (names compared too).
    #[track_caller]
    pub(crate) fn fails<T: Debug>(&self, res: Result<T>, expected: Error, step: impl Display) {
        let e = self.err(res, &step);
        assert_eq!(e, expected, "[{}] {step}: wrong error", self.name);
    }

    /// Fails with an error `pred` accepts (`what` describes it).
    #[track_caller]
    pub(crate) fn fails_like<T: Debug>(
        &self,
        res: Result<T>,
        pred: impl Fn(&Error) -> bool,
        what: &str,
        step: impl Display,
    ) -> Error {
        let e = self.err(res, &step);
        assert!(
            pred(&e),
            "[{}] {step}: expected {what}, got {e:?}",
            self.name
        );
        e
    }

    /// Fails with `InvalidWorkSpecData`.
    #[track_caller]
    pub(crate) fn invalid_data<T: Debug>(&self, res: Result<T>, step: impl Display) {
        self.fails_like(
            res,
            |e| matches!(e, Error::InvalidWorkSpecData(_)),
            "InvalidWorkSpecData",
            step,
        );
    }

    /// Deletes every unit of `spec`; the number deleted.
    pub(crate) async fn delete_all(&self, spec: &WorkSpecRef) -> u64 {
        let query = WorkUnitQuery::all();
        self.ok(spec.delete_work_units(&query).await, "delete all")
    }

    /// Fails with `Gone` or one of the `NoSuch…` variations `dead`
    /// admits.
    #[track_caller]
    pub(crate) fn gone<T: Debug>(&self, res: Result<T>, dead: Dead<'_>, step: impl Display) {
        match res {
            Ok(v) => panic!(
                "[{}] {step}: expected Gone (or {dead:?}), got Ok({v:?})",
                self.name
            ),
            Err(e) => self.dead_error(&e, dead, "", step),
        }
    }

    /// Like [`Run::gone`], but an empty result is also accepted unless the
    /// backend is held to [`DeadLists::Gone`].
    #[track_caller]
    pub(crate) fn gone_or_empty<T: Debug + MaybeEmpty>(
        &self,
        res: Result<T>,
        dead: Dead<'_>,
        step: impl Display,
    ) {
        if self.t.dead_lists == DeadLists::Gone {
            return self.gone(res, dead, step);
        }
        match res {
            Ok(v) => assert!(
                v.is_empty_result(),
                "[{}] {step}: expected Gone or an empty result, got Ok({v:?})",
                self.name
            ),
            Err(e) => self.dead_error(&e, dead, " or empty", step),
        }
    }

    /// `e` must be `Gone` or a variation `dead` admits; `also` names what
    /// else the caller would have accepted instead of an error.
    #[track_caller]
    fn dead_error(&self, e: &Error, dead: Dead<'_>, also: &str, step: impl Display) {
        // The reference behaviour is `Gone` alone.
        let dead = match self.t.dead_lists {
            DeadLists::Gone => Dead::strict(),
            DeadLists::GoneOrEmpty => dead,
        };
        assert!(
            dead.accepts(e),
            "[{}] {step}: expected Gone (or {dead:?}){also}, got {e:?}",
            self.name
        );
    }

    /// The unit counts by status of `spec` must be exactly `want`.
    pub(crate) async fn counts_are<const N: usize>(
        &self,
        spec: &WorkSpecRef,
        want: [(WorkUnitStatus, u64); N],
        step: impl Display,
    ) {
        let want: BTreeMap<WorkUnitStatus, u64> = want.into();
        self.ok_eq(spec.count_work_unit_status().await, want, step);
    }

    /// The names of all units of `spec` must be exactly `want`.
    pub(crate) async fn units_are<const N: usize>(
        &self,
        spec: &WorkSpecRef,
        want: [&str; N],
        step: impl Display,
    ) {
        let got = self.unit_names(spec, &step).await;
        check_eq!(self, got, names(want), "{step}");
    }

    /// The active attempt of `unit` must be `want` (compared by
    /// [`Run::key`]), or absent for `None`.
    pub(crate) async fn active_is(
        &self,
        unit: &WorkUnitRef,
        want: Option<&AttemptRef>,
        step: impl Display,
    ) {
        let want = match want {
            Some(a) => Some(self.key(a).await),
            None => None,
        };
        check_eq!(self, self.active_key(unit).await, want, "{step}");
    }

    // --- fixtures ---------------------------------------------------------

    pub(crate) async fn ns(&self, name: &str) -> NamespaceRef {
        self.ok(
            self.backend().namespace(name).await,
            format_args!("namespace({name:?})"),
        )
    }

    /// `set_work_spec(definition)`, adding the fixture's small `min_gb`
    /// unless the definition has one.
    pub(crate) async fn spec(&self, ns: &NamespaceRef, definition: DataMap) -> WorkSpecRef {
        let mut definition = definition;
        if !definition.contains_key("min_gb") {
            definition.insert("min_gb".into(), serde_json::json!(0.1));
        }
        let step = format!("set_work_spec({definition:?})");
        self.ok(ns.set_work_spec(definition).await, step)
    }

    /// A spec with only a name (and the fixture's `min_gb`).
    pub(crate) async fn named_spec(&self, ns: &NamespaceRef, name: &str) -> WorkSpecRef {
        self.spec(ns, crate::data!({ "name": name })).await
    }

    pub(crate) async fn unit(&self, spec: &WorkSpecRef, name: &str, data: DataMap) -> WorkUnitRef {
        self.unit_meta(spec, name, data, WorkUnitMeta::default())
            .await
    }

    pub(crate) async fn unit_meta(
        &self,
        spec: &WorkSpecRef,
        name: &str,
        data: DataMap,
        meta: WorkUnitMeta,
    ) -> WorkUnitRef {
        self.ok(
            spec.add_work_unit(name, data, meta).await,
            format_args!("add_work_unit({name:?}) to {:?}", spec.name()),
        )
    }

    /// Adds a unit with empty data and the given priority.
    pub(crate) async fn unit_priority(
        &self,
        spec: &WorkSpecRef,
        name: &str,
        priority: f64,
    ) -> WorkUnitRef {
        let meta = WorkUnitMeta::with_priority(priority);
        self.unit_meta(spec, name, DataMap::new(), meta).await
    }

    /// Adds units with empty data and default meta.
    pub(crate) async fn units(&self, spec: &WorkSpecRef, names: &[&str]) -> Vec<WorkUnitRef> {
        let mut out = Vec::new();
        for name in names {
            out.push(self.unit(spec, name, DataMap::new()).await);
        }
        out
    }

    pub(crate) async fn worker(&self, ns: &NamespaceRef, name: &str) -> WorkerRef {
        self.ok(ns.worker(name).await, format_args!("worker({name:?})"))
    }

    /// A namespace, a spec with only a name, and a worker.
    pub(crate) async fn basic(
        &self,
        ns_name: &str,
        spec_name: &str,
    ) -> (NamespaceRef, WorkSpecRef, WorkerRef) {
        let ns = self.ns(ns_name).await;
        let spec = self.named_spec(&ns, spec_name).await;
        let worker = self.worker(&ns, "worker").await;
        (ns, spec, worker)
    }

    pub(crate) async fn request(
        &self,
        worker: &WorkerRef,
        req: AttemptRequest,
        step: impl Display,
    ) -> Vec<AttemptRef> {
        self.ok(worker.request_attempts(&req).await, step)
    }

    /// A default request: at most one attempt.
    pub(crate) async fn request_one(
        &self,
        worker: &WorkerRef,
        step: impl Display,
    ) -> Option<AttemptRef> {
        let mut got = self.request(worker, AttemptRequest::default(), &step).await;
        check!(
            self,
            got.len() <= 1,
            "{step}: default request returned {} attempts",
            got.len()
        );
        got.pop()
    }

    /// A default request that must return one attempt for `unit`.
    pub(crate) async fn request_unit(
        &self,
        worker: &WorkerRef,
        unit: &str,
        step: impl Display,
    ) -> AttemptRef {
        let got = self.request_one(worker, &step).await;
        let Some(attempt) = got else {
            panic!(
                "[{}] {step}: expected an attempt for {unit:?}, got none",
                self.name
            )
        };
        check_eq!(
            self,
            attempt.work_unit().name(),
            unit,
            "{step}: unit handed out"
        );
        attempt
    }

    /// A request that must hand out attempts for exactly `want`, in list
    /// order.
    pub(crate) async fn request_units(
        &self,
        worker: &WorkerRef,
        req: AttemptRequest,
        want: &[&str],
        step: impl Display,
    ) -> Vec<AttemptRef> {
        let got = self.request(worker, req, &step).await;
        check_eq!(self, unit_names_of(&got), want, "{step}");
        got
    }

    /// A default request that must return nothing.
    pub(crate) async fn request_none(&self, worker: &WorkerRef, step: impl Display) {
        self.request_nothing(worker, AttemptRequest::default(), step)
            .await;
    }

    /// A request that must return nothing.
    pub(crate) async fn request_nothing(
        &self,
        worker: &WorkerRef,
        req: AttemptRequest,
        step: impl Display,
    ) {
        let got = self.request(worker, req, &step).await;
        let names = unit_names_of(&got);
        check!(
            self,
            got.is_empty(),
            "{step}: expected no attempt, got {names:?}"
        );
    }

    /// Drains in order: advance a few seconds, request one attempt,
    /// record its unit and finish it, until a request returns nothing; the
    /// recorded names must equal `expected`.
    pub(crate) async fn drain(&self, worker: &WorkerRef, expected: &[&str], step: impl Display) {
        let mut seen: Vec<String> = Vec::new();
        // Bounded, so a backend that hands out work forever fails instead of hanging.
        for _ in 0..expected.len() + 5 {
            self.advance_secs(5);
            let Some(attempt) = self
                .request_one(worker, format_args!("{step}: drain request"))
                .await
            else {
                break;
            };
            seen.push(attempt.work_unit().name().to_string());
            self.ok(
                attempt.finish(None).await,
                format_args!("{step}: drain finish"),
            );
        }
        check_eq!(self, seen, expected, "{step}: drained units in order");
    }

    /// A namespace with spec `a` chaining to a paused spec `b`, and a worker.
    pub(crate) async fn chain_fixture(
        &self,
        ns_name: &str,
    ) -> (NamespaceRef, WorkSpecRef, WorkSpecRef, WorkerRef) {
        let ns = self.ns(ns_name).await;
        let a = self
            .spec(&ns, crate::data!({"name": "a", "then": "b"}))
            .await;
        let b = self
            .spec(&ns, crate::data!({"name": "b", "disabled": true}))
            .await;
        let worker = self.worker(&ns, "worker").await;
        (ns, a, b, worker)
    }

    // --- observations ------------------------------------------------------

    pub(crate) async fn key(&self, attempt: &AttemptRef) -> AttemptKey {
        let unit = attempt.work_unit();
        (
            attempt.worker().name().to_string(),
            unit.name().to_string(),
            unit.work_spec().name().to_string(),
            self.ok(attempt.start_time().await, "attempt.start_time"),
        )
    }

    /// Keys of a list, sorted (for order-insensitive comparison).
    pub(crate) async fn keys(&self, attempts: &[AttemptRef]) -> Vec<AttemptKey> {
        let mut out = Vec::new();
        for a in attempts {
            out.push(self.key(a).await);
        }
        out.sort();
        out
    }

    /// Keys of a list, in list order.
    pub(crate) async fn keys_ordered(&self, attempts: &[AttemptRef]) -> Vec<AttemptKey> {
        let mut out = Vec::new();
        for a in attempts {
            out.push(self.key(a).await);
        }
        out
    }

    /// The names of the units of `spec` (all of them).
    pub(crate) async fn unit_names(
        &self,
        spec: &WorkSpecRef,
        step: impl Display,
    ) -> BTreeSet<String> {
        self.ok(spec.work_units(&Default::default()).await, step)
            .into_keys()
            .collect()
    }

    /// The key of a unit's active attempt, if any.
    pub(crate) async fn active_key(&self, unit: &WorkUnitRef) -> Option<AttemptKey> {
        let active = self.ok(unit.active_attempt().await, "unit.active_attempt");
        match active {
            Some(a) => Some(self.key(&a).await),
            None => None,
        }
    }

    /// The seven-state fixture (one unit per reachable state) in a new spec of
    /// `ns`.
    pub(crate) async fn seven(&self, ns: &NamespaceRef, spec_name: &str) -> Seven {
        let spec = self.named_spec(ns, spec_name).await;
        let worker = self.worker(ns, "seven-state worker").await;
        let mut units = BTreeMap::new();
        for name in SEVEN {
            units.insert(name, self.unit(&spec, name, DataMap::new()).await);
        }
        let attempt = |name: &'static str| {
            let unit = units[name].clone();
            let worker = worker.clone();
            async move {
                self.ok(
                    worker.make_attempt(&unit, Duration::zero()).await,
                    format_args!("seven-state fixture: make_attempt({name})"),
                )
            }
        };
        let pending = attempt("pending").await;
        let a = attempt("finished").await;
        self.ok(a.finish(None).await, "seven-state fixture: finish");
        let a = attempt("failed").await;
        self.ok(a.fail(None).await, "seven-state fixture: fail");
        let a = attempt("expired").await;
        self.ok(a.expire(None).await, "seven-state fixture: expire");
        let a = attempt("retried").await;
        self.ok(
            a.retry(None, Duration::zero()).await,
            "seven-state fixture: retry",
        );
        let a = attempt("delayed").await;
        self.ok(
            a.retry(None, Duration::days(1)).await,
            "seven-state fixture: retry with delay",
        );
        Seven {
            spec,
            worker,
            units,
            pending,
        }
    }
}

/// The seven-state fixture's unit names, in sort order.
pub(crate) const SEVEN: [&str; 7] = [
    "available",
    "delayed",
    "expired",
    "failed",
    "finished",
    "pending",
    "retried",
];

/// The seven-state fixture: one unit per reachable state.
pub(crate) struct Seven {
    pub(crate) spec: WorkSpecRef,
    pub(crate) worker: WorkerRef,
    pub(crate) units: BTreeMap<&'static str, WorkUnitRef>,
    pub(crate) pending: AttemptRef,
}

/// A set of names, for order-insensitive comparisons.
pub(crate) fn names<'a>(names: impl IntoIterator<Item = &'a str>) -> BTreeSet<String> {
    names.into_iter().map(str::to_string).collect()
}

/// The unit names of a list of attempts, in list order.
pub(crate) fn unit_names_of(attempts: &[AttemptRef]) -> Vec<String> {
    attempts
        .iter()
        .map(|a| a.work_unit().name().to_string())
        .collect()
}

/// One item per name, each made by `make` after the previous one
/// (several workers or specs for a scenario, say).
pub(crate) async fn each_named<'a, T, F, const N: usize>(
    names: [&'a str; N],
    make: impl Fn(&'a str) -> F,
) -> [T; N]
where
    F: std::future::Future<Output = T>,
{
    let mut out = Vec::with_capacity(N);
    for name in names {
        out.push(make(name).await);
    }
    match out.try_into() {
        Ok(all) => all,
        Err(out) => unreachable!("{} items made for {N} names", out.len()),
    }
}

/// The instant `secs` seconds after the epoch.
pub(crate) fn at_secs(secs: i64) -> Time {
    Time::UNIX_EPOCH + Duration::seconds(secs)
}
