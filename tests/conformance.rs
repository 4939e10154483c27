//! The conformance suite (`coordinate::conformance`) against every backend:
//! one `#[tokio::test]` per scenario and backend module.

mod memory {
    use std::sync::Arc;

    use coordinate::conformance::TestBackend;
    use coordinate::memory::MemoryBackend;
    use coordinate::{Backend, MockClock};

    coordinate::conformance_tests!(|| async {
        let clock = MockClock::new();
        let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::with_clock(clock.clone()));
        TestBackend::object(backend, clock)
    });
}
