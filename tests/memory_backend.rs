//! Behaviour of `MemoryBackend` beyond the shared conformance suite: its
//! indexes stay consistent through every kind of transition.

use std::sync::{mpsc, Arc, Mutex};

use coordinate::memory::MemoryBackend;
use coordinate::ObjectKind;
use coordinate::{
    data, AttemptRequest, AttemptStatus, Backend, Clock, Duration, Error, MockClock, WorkUnitMeta,
    WorkUnitQuery, WorkUnitStatus,
};

mod common {
    pub mod chaining;
    pub mod gone;
    pub mod scheduling;
}

use common::chaining::chained_specs;
use common::gone::gone;
use common::scheduling::{request, unit_names};

#[tokio::test]
async fn smoke_lifecycle_through_every_index() {
    let clock = MockClock::new();
    let backend = MemoryBackend::with_clock(clock.clone());
    let ns = backend.namespace("n").await.unwrap();
    let (spec, next) = chained_specs(&ns, "s", "t").await;
    for (name, prio) in [("b", 0.0), ("a", 0.0), ("c", 5.0)] {
        spec.add_work_unit(name, data!({}), WorkUnitMeta::with_priority(prio))
            .await
            .unwrap();
    }
    let worker = ns.worker("w").await.unwrap();
    let got = request(&worker, AttemptRequest::units(2)).await;
    let names = unit_names(&got);
    assert_eq!(names, ["c", "a"]);
    let counts = spec.count_work_unit_status().await.unwrap();
    assert_eq!(counts[&WorkUnitStatus::Pending], 2);
    assert_eq!(counts[&WorkUnitStatus::Available], 1);

    got[0]
        .finish(Some(data!({"output": ["x", ["y", {"k": 1}]]})))
        .await
        .unwrap();
    assert_eq!(
        next.work_units(&WorkUnitQuery::all()).await.unwrap().len(),
        2
    );
    got[1].retry(None, Duration::seconds(60)).await.unwrap();
    assert_eq!(
        got[1].work_unit().status().await.unwrap(),
        WorkUnitStatus::Delayed
    );
    clock.advance(Duration::seconds(60));
    assert_eq!(
        got[1].work_unit().status().await.unwrap(),
        WorkUnitStatus::Available
    );

    let again = request(&worker, AttemptRequest::units(5)).await;
    assert_eq!(again.len(), 2);
    clock.advance(Duration::minutes(16));
    assert_eq!(again[0].status().await.unwrap(), AttemptStatus::Expired);
    assert_eq!(again[0].finish(None).await, Err(Error::NotPending));
    assert!(worker.active_attempts().await.unwrap().is_empty());
    let meta = spec.meta(true).await.unwrap();
    assert_eq!((meta.available_count, meta.pending_count), (2, 0));

    assert_eq!(
        spec.delete_work_units(&WorkUnitQuery::all()).await.unwrap(),
        3
    );
    assert_eq!(again[0].status().await, Err(gone(ObjectKind::Attempt)));
    assert!(spec.count_work_unit_status().await.unwrap().is_empty());
    ns.destroy().await.unwrap();
    assert_eq!(
        spec.meta(false).await.unwrap_err(),
        gone(ObjectKind::WorkSpec)
    );
}

/// Specs are found by hash, yet every summary lists its records sorted
/// (namespace, spec, status), as PostgreSQL's do.
#[tokio::test]
async fn summaries_come_sorted() {
    let clock = MockClock::new();
    let backend = MemoryBackend::with_clock(clock.clone());
    for ns_name in ["n2", "n1"] {
        let ns = backend.namespace(ns_name).await.unwrap();
        for i in (0..20).rev() {
            let spec = ns
                .set_work_spec(data!({"name": format!("s{i:02}")}))
                .await
                .unwrap();
            spec.add_work_unit("u", data!({}), WorkUnitMeta::default())
                .await
                .unwrap();
            let later = WorkUnitMeta {
                not_before: Some(clock.now() + Duration::hours(1)),
                ..WorkUnitMeta::default()
            };
            spec.add_work_unit("v", data!({}), later).await.unwrap();
        }
    }
    let all = backend.summarize().await.unwrap();
    assert_eq!(all.len(), 80);
    let mut sorted = all.clone();
    sorted.sort();
    assert_eq!(all, sorted);
    let one = backend
        .namespace("n2")
        .await
        .unwrap()
        .summarize()
        .await
        .unwrap();
    assert_eq!(one.len(), 40);
    assert!(one.windows(2).all(|w| w[0] < w[1]), "{one:?}");
}

/// A clock that, once stalled, holds its next reader until told to go (at
/// most 200 ms) after reporting the read: the reader's instant is then
/// older than whatever another caller does meanwhile.
#[derive(Debug, Clone)]
struct StallingClock {
    now: MockClock,
    /// Where the next reader reports its read, and where it waits.
    stall: Arc<Mutex<Option<Stall>>>,
}

type Stall = (mpsc::Sender<()>, mpsc::Receiver<()>);

impl Clock for StallingClock {
    fn now(&self) -> coordinate::Time {
        let now = self.now.now();
        let stall = self.stall.lock().unwrap().take();
        if let Some((read, go)) = stall {
            read.send(()).unwrap();
            let _ = go.recv_timeout(std::time::Duration::from_millis(200));
        }
        now
    }
}

/// Operations apply in the order of the instants they read: a status read
/// whose now was taken before a retry never sees that retry's not-before
/// time as ahead of it (a unit retried without delay is never Delayed).
#[test]
fn operations_apply_in_the_order_of_their_nows() {
    use futures::executor::block_on;
    let clock = StallingClock {
        now: MockClock::new(),
        stall: Arc::default(),
    };
    let backend = MemoryBackend::with_clock(clock.clone());
    let (unit, attempt) = block_on(async {
        let ns = backend.namespace("n").await.unwrap();
        let spec = ns.set_work_spec(data!({"name": "s"})).await.unwrap();
        let unit = spec
            .add_work_unit("u", data!({}), WorkUnitMeta::default())
            .await
            .unwrap();
        let worker = ns.worker("w").await.unwrap();
        let attempt = request(&worker, AttemptRequest::default()).await.remove(0);
        (unit, attempt)
    });

    let (read, has_read) = mpsc::channel();
    let (go, wait) = mpsc::channel();
    *clock.stall.lock().unwrap() = Some((read, wait));
    let status = std::thread::spawn(move || block_on(unit.status()));
    has_read.recv().unwrap();
    // The status read has its now; the retry comes a second later.
    clock.now.advance(Duration::seconds(1));
    block_on(attempt.retry(None, Duration::zero())).unwrap();
    let _ = go.send(());
    assert_eq!(status.join().unwrap().unwrap(), WorkUnitStatus::Pending);
}
