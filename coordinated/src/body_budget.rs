//! Request bodies read within one memory budget shared by every request:
//! each body is bounded on its own, but a thousand clients each sending
//! most of a large body, slowly, would otherwise hold a thousand large
//! buffers at once.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use http_body_util::BodyExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The bytes of each body read without drawing on the budget: requests
/// of the API are small, and stay unhindered while large bodies wait.
pub const FREE_BYTES_PER_BODY: usize = 64 * 1024;

/// How many bodies of the largest size accepted may be buffered at once,
/// beyond their free bytes.
pub const LARGEST_BODIES_AT_ONCE: usize = 8;

/// The memory request bodies may hold together, beyond the first
/// [`FREE_BYTES_PER_BODY`] of each. A body that finds it spent gives back
/// the room it holds and waits for all it needs (up to its request's
/// timeout) without reading more: the client's writes wait in its
/// connection, not in the server's memory, and no body waits for room
/// another waiting body holds.
#[derive(Debug, Clone)]
pub struct BodyBudget {
    room: Arc<Semaphore>,
    max_body_bytes: usize,
}

/// Why a body was not read whole.
#[derive(Debug)]
pub enum BodyError {
    /// It is longer than the bound on one body.
    TooLarge,
    /// The connection failed, or ended, before its end.
    Read(axum::Error),
}

/// A body read whole, and the room it holds in the budget until dropped.
#[derive(Debug)]
pub struct BufferedBody {
    /// The body.
    pub bytes: Bytes,
    _room: Option<OwnedSemaphorePermit>,
}

impl BodyBudget {
    /// Bodies of at most `max_body_bytes` each, [`LARGEST_BODIES_AT_ONCE`]
    /// of that size at once.
    pub fn new(max_body_bytes: usize) -> Self {
        let total = max_body_bytes
            .saturating_mul(LARGEST_BODIES_AT_ONCE)
            .clamp(1, Semaphore::MAX_PERMITS);
        BodyBudget {
            room: Arc::new(Semaphore::new(total)),
            max_body_bytes,
        }
    }

    /// The largest body accepted.
    pub fn max_body_bytes(&self) -> usize {
        self.max_body_bytes
    }

    /// Reads `body` whole, frame by frame, taking room for each frame
    /// beyond the free bytes before keeping it. The frames are kept as they
    /// came and joined once at the end (a body of one frame is not copied),
    /// so what a body holds is what it took room for. Cancel-safe: dropped,
    /// it gives back what it took. What is not read stays in `body`: on
    /// [`BodyError::TooLarge`], the rest of a body over the bound.
    pub async fn read(&self, body: &mut Body) -> Result<BufferedBody, BodyError> {
        let mut frames: Vec<Bytes> = Vec::new();
        let mut length = 0;
        let mut room: Option<OwnedSemaphorePermit> = None;
        while let Some(frame) = body.frame().await {
            let Ok(data) = frame.map_err(BodyError::Read)?.into_data() else {
                continue;
            };
            let longer = length + data.len();
            if longer > self.max_body_bytes {
                return Err(BodyError::TooLarge);
            }
            let needed = longer.saturating_sub(FREE_BYTES_PER_BODY);
            if needed > length.saturating_sub(FREE_BYTES_PER_BODY) {
                room = Some(self.grow(room, needed).await?);
            }
            length = longer;
            frames.push(data);
        }
        let bytes = match frames.len() {
            0 => Bytes::new(),
            1 => frames.swap_remove(0),
            _ => Bytes::from(frames.concat()),
        };
        Ok(BufferedBody { bytes, _room: room })
    }

    /// `held` grown to `needed` bytes of room: at once if the budget has
    /// the difference; else `held` is given back while the whole of
    /// `needed` is waited for. A body waiting for room holds none, so
    /// bodies never wait on each other's room: the budget holds any one
    /// body, and its waiters are served in turn.
    async fn grow(
        &self,
        held: Option<OwnedSemaphorePermit>,
        needed: usize,
    ) -> Result<OwnedSemaphorePermit, BodyError> {
        let has = held.as_ref().map_or(0, OwnedSemaphorePermit::num_permits);
        // Within the budget, which is within what a `u32` counts or is
        // clamped to the semaphore's largest count.
        let count = |bytes: usize| u32::try_from(bytes).map_err(|_| BodyError::TooLarge);
        let more = Arc::clone(&self.room).try_acquire_many_owned(count(needed - has)?);
        if let Ok(more) = more {
            return Ok(match held {
                Some(mut held) => {
                    held.merge(more);
                    held
                }
                None => more,
            });
        }
        drop(held);
        Arc::clone(&self.room)
            .acquire_many_owned(count(needed)?)
            .await
            .map_err(|closed| BodyError::Read(axum::Error::new(closed)))
    }

    /// Room left, in bytes (for tests).
    #[cfg(test)]
    fn available(&self) -> usize {
        self.room.available_permits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;

    fn body_of(chunks: Vec<Vec<u8>>) -> Body {
        let stream = futures::stream::iter(
            chunks
                .into_iter()
                .map(|c| Ok::<_, std::io::Error>(Bytes::from(c))),
        );
        Body::from_stream(stream)
    }

    #[tokio::test]
    async fn small_bodies_take_no_room_and_large_ones_give_it_back() {
        let budget = BodyBudget::new(200 * 1024);
        let total = budget.available();
        let small = budget
            .read(&mut body_of(vec![vec![b'a'; 1000]]))
            .await
            .unwrap();
        assert_eq!(small.bytes.len(), 1000);
        assert_eq!(budget.available(), total);
        let chunks = vec![vec![b'b'; 50 * 1024]; 3];
        let large = budget.read(&mut body_of(chunks)).await.unwrap();
        assert_eq!(large.bytes.len(), 150 * 1024);
        assert_eq!(budget.available(), total - (150 - 64) * 1024);
        drop((small, large));
        assert_eq!(budget.available(), total);
    }

    #[tokio::test]
    async fn a_body_over_the_bound_is_refused() {
        let budget = BodyBudget::new(100 * 1024);
        let chunks = vec![vec![b'c'; 60 * 1024]; 3];
        let mut body = body_of(chunks);
        let read = budget.read(&mut body).await;
        assert!(matches!(read, Err(BodyError::TooLarge)), "{read:?}");
        assert_eq!(budget.available(), 8 * 100 * 1024);
        // The rest is left unread: the third frame.
        let rest = body.collect().await.map(|rest| rest.to_bytes().len());
        assert_eq!(rest.ok(), Some(60 * 1024));
    }

    /// Twice as many largest bodies as the budget holds, arriving frame by
    /// frame in turn: a body waiting for room holds none, so the ones the
    /// budget holds are read whole, and the others after them.
    #[tokio::test]
    async fn bodies_arriving_together_never_wait_on_each_others_room() {
        let max = 1 << 20;
        let budget = BodyBudget::new(max);
        let frame = 64 * 1024;
        let mut senders = Vec::new();
        let mut reads = Vec::new();
        for _ in 0..2 * LARGEST_BODIES_AT_ONCE {
            let (send, frames) =
                futures::channel::mpsc::unbounded::<Result<Bytes, std::io::Error>>();
            senders.push(send);
            let budget = budget.clone();
            reads.push(tokio::spawn(async move {
                budget
                    .read(&mut Body::from_stream(frames))
                    .await
                    .map(|body| body.bytes.len())
            }));
        }
        for _ in 0..max / frame {
            for send in &senders {
                let _ = send.unbounded_send(Ok(Bytes::from(vec![b'g'; frame])));
            }
            tokio::task::yield_now().await;
        }
        drop(senders);
        for read in reads {
            let read = tokio::time::timeout(std::time::Duration::from_secs(10), read).await;
            assert!(matches!(read, Ok(Ok(Ok(n))) if n == max), "{read:?}");
        }
    }

    /// With the budget spent, a large body waits, and reads on once
    /// another gives its room back; a small one does not wait.
    #[tokio::test]
    async fn a_spent_budget_holds_large_bodies_back_until_room_is_freed() {
        let max = 100 * 1024;
        let budget = BodyBudget::new(max);
        let mut held = Vec::new();
        for _ in 0..LARGEST_BODIES_AT_ONCE * max / (max - FREE_BYTES_PER_BODY) {
            let mut body = body_of(vec![vec![b'd'; max]]);
            held.push(budget.read(&mut body).await.unwrap());
        }
        let mut large = body_of(vec![vec![b'e'; max]]);
        let waiting = budget.read(&mut large);
        let mut waiting = std::pin::pin!(waiting);
        assert!((&mut waiting).now_or_never().is_none(), "read without room");
        let small = budget
            .read(&mut body_of(vec![vec![b'f'; 10]]))
            .now_or_never();
        assert!(
            small.is_some_and(|read| read.is_ok()),
            "a small body waited"
        );
        held.truncate(held.len() - 1);
        let read = tokio::time::timeout(std::time::Duration::from_secs(10), waiting).await;
        assert!(matches!(read, Ok(Ok(_))), "{read:?}");
    }
}
