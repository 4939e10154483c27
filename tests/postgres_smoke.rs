#![cfg(feature = "postgres")]
use coordinate::postgres::testing::TestCluster;
use coordinate::{data, Backend, MockClock};

#[tokio::test]
async fn smoke() {
    let Some(cluster) = TestCluster::shared_or_skip("smoke") else { return };
    let t = std::time::Instant::now();
    let b = cluster.fresh_backend(MockClock::new()).await.unwrap();
    eprintln!("fresh backend in {:?}", t.elapsed());
    let ns = b.namespace("n").await.unwrap();
    let spec = ns.set_work_spec(data!({"name": "s"})).await.unwrap();
    spec.add_work_unit("u", data!({"x": 1}), Default::default()).await.unwrap();
    let w = ns.worker("w").await.unwrap();
    let a = w.request_attempts(Default::default()).await.unwrap();
    assert_eq!(a.len(), 1);
    a[0].finish(None).await.unwrap();
    eprintln!("{:?}", b.summarize().await.unwrap());
}
