//! Event counters cheap enough to bump on every cache hit.
//!
//! A counter is a row of stripes, each on a cache line of its own. A thread
//! that counts claims one of the row's first [`OWNED`] positions for itself,
//! for as long as it lives, in every counter at once: it is then the only
//! thread writing that stripe, so an increment is a plain load and store,
//! without the locked read-modify-write a shared atomic needs. Threads that
//! find every position taken share the last stripe, with atomic adds. A
//! claim is handed over with release and acquire ordering, so a thread
//! that inherits a stripe continues from its last value, and no increment
//! is lost.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Stripes a thread may own. More counting threads share one more stripe.
const OWNED: usize = 8;

/// [`OWNED`] bits: the positions claimed now.
static CLAIMED: AtomicUsize = AtomicUsize::new(0);

/// This thread's position before it has counted.
const UNCLAIMED: usize = usize::MAX;

/// The shared stripe's position: for threads that found no free position,
/// and for a thread's last counts after it gave its position back.
const SHARED: usize = OWNED;

thread_local! {
    static POSITION: Cell<usize> = const { Cell::new(UNCLAIMED) };
    static RELEASE: Release = const { Release };
}

/// Gives the thread's position back when the thread ends.
struct Release;

impl Drop for Release {
    fn drop(&mut self) {
        release(&CLAIMED, POSITION.with(|p| p.replace(SHARED)));
    }
}

/// The stripe this thread counts on: its own, claimed on first use, or
/// [`SHARED`].
fn position() -> usize {
    let position = POSITION.with(Cell::get);
    if position != UNCLAIMED {
        return position;
    }
    let mut claimed = claim(&CLAIMED);
    if claimed < OWNED && RELEASE.try_with(|_| ()).is_err() {
        // The thread is ending and can no longer register the release:
        // give the position straight back and count on the shared stripe.
        release(&CLAIMED, claimed);
        claimed = SHARED;
    }
    POSITION.with(|p| p.set(claimed));
    claimed
}

/// A free position of `bits`, taken; [`SHARED`] if there is none.
fn claim(bits: &AtomicUsize) -> usize {
    let mut claimed = bits.load(Ordering::Relaxed);
    loop {
        let free = (!claimed).trailing_zeros() as usize;
        if free >= OWNED {
            return SHARED;
        }
        match bits.compare_exchange_weak(
            claimed,
            claimed | (1 << free),
            Ordering::Acquire,
            Ordering::Relaxed,
        ) {
            Ok(_) => return free,
            Err(now) => claimed = now,
        }
    }
}

/// Frees `position` of `bits`, for the next thread to claim.
fn release(bits: &AtomicUsize, position: usize) {
    if position < OWNED {
        bits.fetch_and(!(1 << position), Ordering::Release);
    }
}

#[repr(align(128))]
#[derive(Default)]
struct Stripe(AtomicU64);

/// An event counter: increments are uncontended, reads sum the stripes.
#[derive(Default)]
pub(crate) struct Counter([Stripe; OWNED + 1]);

impl Counter {
    pub(crate) fn inc(&self) {
        self.add(1);
    }

    pub(crate) fn add(&self, n: u64) {
        let position = position();
        let stripe = &self.0[position].0;
        if position == SHARED {
            stripe.fetch_add(n, Ordering::Relaxed);
        } else {
            // This thread is the stripe's only writer.
            stripe.store(
                stripe.load(Ordering::Relaxed).wrapping_add(n),
                Ordering::Relaxed,
            );
        }
    }

    pub(crate) fn get(&self) -> u64 {
        self.0
            .iter()
            .fold(0u64, |sum, s| sum.wrapping_add(s.0.load(Ordering::Relaxed)))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Barrier};

    use super::*;

    /// More threads than positions, all counting at once, then as many
    /// again inheriting the positions of the first: every increment counts.
    #[test]
    fn no_increment_is_lost_with_more_threads_than_stripes() {
        let counter = Arc::new(Counter::default());
        for _round in 0..2 {
            let threads = 3 * OWNED;
            let start = Arc::new(Barrier::new(threads));
            let handles: Vec<_> = (0..threads)
                .map(|_| {
                    let (counter, start) = (counter.clone(), start.clone());
                    std::thread::spawn(move || {
                        start.wait();
                        (0..10_000).for_each(|_| counter.inc());
                    })
                })
                .collect();
            for h in handles {
                h.join().unwrap();
            }
        }
        counter.add(5);
        assert_eq!(counter.get(), 2 * 3 * OWNED as u64 * 10_000 + 5);
    }

    #[test]
    fn positions_are_claimed_once_and_reused_after_release() {
        let bits = AtomicUsize::new(0);
        let claimed: Vec<_> = (0..OWNED).map(|_| claim(&bits)).collect();
        assert_eq!(claimed, (0..OWNED).collect::<Vec<_>>());
        assert_eq!(claim(&bits), SHARED, "every position is taken");
        release(&bits, 3);
        release(&bits, SHARED);
        assert_eq!(claim(&bits), 3);
        assert_eq!(claim(&bits), SHARED);
    }
}
