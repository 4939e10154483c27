//! The scenario run at each size: load one spec, then time each operation.
//!
//! One spec of namespace `coordscale` gets `size` units named `u0…0`
//! to `u…` (fixed width, so name order is load order) with data `{"i": i}`,
//! loaded with `add_work_units` in batches. Then:
//!
//! * every `5 · stride`-th unit (at most 200; `stride` is `size / 1000`,
//!   at least 2) gets an attempt of a worker that holds it, so pending
//!   units are spread over the whole spec;
//! * reads (`work_unit` and `status` of random units among 1,000, each
//!   looked up once before either is timed; counts, the counted meta, the
//!   namespace's summary, the first 100 pending units);
//! * `delete_work_units` of 1,000 names (`size / stride` below 2,000
//!   units) of non-pending units, each call a set other than the previous
//!   call's (except below 3,000 units, where `stride` is 2 and every call
//!   deletes the same set), re-added untimed after each call so the spec
//!   keeps its size; 100 executions before the timed ones, on one
//!   connection where the backend has any;
//! * `request_attempts` of 10 units by a second worker, and `finish` of
//!   every attempt it hands out.
//!
//! Time stands still (`MockClock`), so no lease expires while measuring.

use std::time::{Duration as StdDuration, Instant};

use coordinate::{
    data, AttemptRequest, Backend, Duration, NewWorkUnit, WorkSpecRef, WorkUnitQuery,
    WorkUnitStatus,
};

use crate::footprint::Footprint;
use crate::report::Figures;
use crate::sampler::{median_us, Plan, Sampler};

/// `delete_work_units` executions before the timed ones: past the point
/// where a server may switch a prepared statement to a generic plan.
const DELETE_PRE_RUNS: usize = 100;
/// Names per `delete_work_units` call at full size.
const DELETE_NAMES: usize = 1_000;
/// Pending units at full size.
const PENDING_UNITS: usize = 200;
/// Units per `request_attempts` call.
pub const REQUEST_UNITS: i64 = 10;
/// Distinct units the lookups pick from.
const LOOKUP_UNITS: usize = 1_000;

/// How a size is loaded and sampled.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Units per `add_work_units` call.
    pub batch: usize,
    /// Calls per operation.
    pub plan: Plan,
}

/// The units of one spec and where the scenario's units sit among them.
#[derive(Debug, Clone, Copy)]
struct Layout {
    size: usize,
    /// Name width in digits.
    width: usize,
    /// Distance between two deleted names of one call.
    stride: usize,
}

impl Layout {
    fn new(size: usize) -> Self {
        Layout {
            size,
            width: size.to_string().len(),
            stride: (size / DELETE_NAMES).max(2),
        }
    }

    fn name(&self, i: usize) -> String {
        format!("u{i:0width$}", width = self.width)
    }

    fn unit(&self, i: usize) -> NewWorkUnit {
        NewWorkUnit::new(self.name(i), data!({ "i": i }))
    }

    /// Indexes of the units held pending: multiples of `5 · stride`.
    fn pending(&self) -> impl Iterator<Item = usize> {
        (0..self.size).step_by(5 * self.stride).take(PENDING_UNITS)
    }

    /// The indexes deleted by call `round`: one per stride, at an offset
    /// in `1..stride` that moves with the round, so never a pending unit.
    /// With a stride of 2 (below 3,000 units) the offset is always 1, so
    /// every round deletes the same indexes.
    fn deleted(&self, round: usize) -> Vec<usize> {
        let offset = 1 + round % (self.stride - 1);
        (0..self.size / self.stride)
            .take(DELETE_NAMES)
            .map(|k| k * self.stride + offset)
            .collect()
    }
}

/// How many units of a spec of `size` are left for `request_attempts`,
/// once the scenario holds some pending.
pub fn requestable(size: usize) -> usize {
    size - Layout::new(size).pending().count()
}

/// Runs the scenario at `size` units on `backend`, whose size `footprint`
/// reads, in the namespace `namespace`; answers the figures.
pub async fn measure(
    backend: &dyn Backend,
    footprint: &Footprint,
    namespace: &str,
    size: usize,
    settings: Settings,
) -> Result<Figures, String> {
    let layout = Layout::new(size);
    let plan = settings.plan;
    let ns = backend
        .namespace(namespace)
        .await
        .map_err(failed("namespace"))?;
    let spec = ns
        .set_work_spec(data!({"name": "scale"}))
        .await
        .map_err(failed("set_work_spec"))?;

    progress(size, "loading");
    let before = footprint.bytes().await?;
    let adding = load(&spec, layout, settings.batch).await?;
    footprint.settle().await?;
    let after = footprint.bytes().await?;
    let bulk_add_units_per_sec = (size as f64 / adding.as_secs_f64()).round();
    let bytes_per_unit = (after.saturating_sub(before) as f64 / size as f64 * 10.0).round() / 10.0;

    let holder = ns.worker("holder").await.map_err(failed("worker"))?;
    for i in layout.pending() {
        let unit = spec
            .work_unit(&layout.name(i))
            .await
            .map_err(failed("work_unit"))?;
        holder
            .make_attempt(&unit, Duration::days(1))
            .await
            .map_err(failed("make_attempt"))?;
    }

    progress(size, "reads");
    let mut rng = fastrand::Rng::with_seed(size as u64);
    let lookup: Vec<String> = (0..LOOKUP_UNITS)
        .map(|_| layout.name(rng.usize(..size)))
        .collect();
    // Each looked up once first, untimed: both reads below are then timed
    // on the same warm working set.
    let mut units = Vec::with_capacity(LOOKUP_UNITS);
    for name in &lookup {
        units.push(spec.work_unit(name).await.map_err(failed("work_unit"))?);
    }
    let mut sampler = Sampler::new("work_unit", plan);
    while sampler.more() {
        let name = &lookup[rng.usize(..lookup.len())];
        let start = Instant::now();
        spec.work_unit(name).await.map_err(failed("work_unit"))?;
        sampler.record(start.elapsed());
    }
    let work_unit = sampler.finish();

    let mut sampler = Sampler::new("status", plan);
    while sampler.more() {
        let unit = &units[rng.usize(..units.len())];
        let start = Instant::now();
        unit.status().await.map_err(failed("status"))?;
        sampler.record(start.elapsed());
    }
    let status = sampler.finish();
    drop(units);

    let mut sampler = Sampler::new("count_work_unit_status", plan);
    while sampler.more() {
        let start = Instant::now();
        spec.count_work_unit_status()
            .await
            .map_err(failed("count_work_unit_status"))?;
        sampler.record(start.elapsed());
    }
    let count_work_unit_status = sampler.finish();

    let mut sampler = Sampler::new("meta_counted", plan);
    while sampler.more() {
        let start = Instant::now();
        spec.meta(true).await.map_err(failed("meta"))?;
        sampler.record(start.elapsed());
    }
    let meta_counted = sampler.finish();

    let mut sampler = Sampler::new("summarize", plan);
    while sampler.more() {
        let start = Instant::now();
        ns.summarize().await.map_err(failed("summarize"))?;
        sampler.record(start.elapsed());
    }
    let summarize = sampler.finish();

    let pending_query = WorkUnitQuery {
        statuses: vec![WorkUnitStatus::Pending],
        limit: 100,
        ..WorkUnitQuery::default()
    };
    let expected = layout.pending().count().min(100);
    let mut sampler = Sampler::new("work_units_pending_100", plan);
    while sampler.more() {
        let start = Instant::now();
        let found = spec
            .work_units(&pending_query)
            .await
            .map_err(failed("work_units"))?;
        sampler.record(start.elapsed());
        if found.len() != expected {
            return Err(format!(
                "work_units(pending, limit 100) found {} units, not {expected}",
                found.len()
            ));
        }
    }
    let work_units_pending_100 = sampler.finish();

    progress(size, "deletes");
    let delete_plan = Plan {
        warmup: DELETE_PRE_RUNS,
        ..plan
    };
    let mut sampler = Sampler::new("delete_1000_names", delete_plan);
    let mut round = 0;
    while sampler.more() {
        let indexes = layout.deleted(round);
        let query = WorkUnitQuery::names(indexes.iter().map(|&i| layout.name(i)));
        let start = Instant::now();
        let deleted = spec
            .delete_work_units(&query)
            .await
            .map_err(failed("delete_work_units"))?;
        sampler.record(start.elapsed());
        if deleted != indexes.len() as u64 {
            return Err(format!(
                "delete_work_units deleted {deleted} units, not {}",
                indexes.len()
            ));
        }
        let units = indexes.into_iter().map(|i| layout.unit(i)).collect();
        spec.add_work_units(units)
            .await
            .map_err(failed("add_work_units"))?;
        round += 1;
    }
    let delete_1000_names = sampler.finish();

    progress(size, "attempts");
    let worker = ns.worker("worker").await.map_err(failed("worker"))?;
    let mut sampler = Sampler::new("request_attempts_10", plan);
    let mut finishes = Vec::new();
    while sampler.more() {
        let start = Instant::now();
        let attempts = worker
            .request_attempts(&AttemptRequest::units(REQUEST_UNITS))
            .await
            .map_err(failed("request_attempts"))?;
        sampler.record(start.elapsed());
        if attempts.len() != REQUEST_UNITS as usize {
            return Err(format!(
                "request_attempts handed out {} units, not {REQUEST_UNITS}: \
                 too few units for this many samples",
                attempts.len()
            ));
        }
        let timed = sampler.measuring();
        for attempt in attempts {
            let start = Instant::now();
            attempt.finish(None).await.map_err(failed("finish"))?;
            if timed {
                finishes.push(start.elapsed());
            }
        }
    }
    let request_attempts_10 = sampler.finish();
    let finish = median_us(finishes);

    Ok(Figures {
        work_unit,
        status,
        count_work_unit_status,
        meta_counted,
        summarize,
        work_units_pending_100,
        delete_1000_names,
        request_attempts_10,
        finish,
        bulk_add_units_per_sec,
        bytes_per_unit,
    })
}

/// Adds every unit of the layout in batches; answers the time spent
/// inside `add_work_units` (building each batch is not counted).
async fn load(spec: &WorkSpecRef, layout: Layout, batch: usize) -> Result<StdDuration, String> {
    let mut adding = StdDuration::ZERO;
    let mut next = 0;
    while next < layout.size {
        let end = (next + batch).min(layout.size);
        let units: Vec<NewWorkUnit> = (next..end).map(|i| layout.unit(i)).collect();
        let start = Instant::now();
        let added = spec
            .add_work_units(units)
            .await
            .map_err(failed("add_work_units"))?;
        adding += start.elapsed();
        drop(added);
        next = end;
    }
    Ok(adding)
}

fn failed(operation: &'static str) -> impl Fn(coordinate::Error) -> String {
    move |e| format!("{operation} failed: {e}")
}

fn progress(size: usize, what: &str) {
    eprintln!("coordscale: {size} units: {what}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deleted_names_never_touch_pending_units_and_move_each_round() {
        for size in [200, 10_000, 1_000_000] {
            let layout = Layout::new(size);
            let pending: std::collections::BTreeSet<usize> = layout.pending().collect();
            assert_eq!(pending.len(), (size / (5 * layout.stride)).min(200));
            for round in 0..3 {
                let deleted = layout.deleted(round);
                assert_eq!(deleted.len(), (size / layout.stride).min(1_000));
                assert!(deleted.iter().all(|i| *i < size && !pending.contains(i)));
                if layout.stride > 2 {
                    assert_ne!(deleted, layout.deleted(round + 1));
                }
            }
        }
    }

    #[test]
    fn names_sort_in_load_order() {
        let layout = Layout::new(1_000_000);
        assert_eq!(layout.name(42), "u0000042");
        assert!(layout.name(999_999) > layout.name(100_000));
    }
}
