//! The memory backend's change feed: an in-process tokio broadcast channel.
//!
//! Events are published under the state lock, right after the change, so
//! they are in the order of the changes. A subscriber that falls more than
//! the channel's capacity behind sees a [`FeedGap::Lagged`](crate::feed::FeedGap).

use std::fmt;

use async_trait::async_trait;
use tokio::sync::broadcast;

use crate::error::Result;
use crate::feed::{ChangeEvent, ChangeFeed, PurgeScope, Subscription};

/// The default number of events a subscriber may fall behind by.
pub(crate) const DEFAULT_FEED_CAPACITY: usize = 4096;

/// The in-process feed of one memory backend (shared by its clones).
pub(crate) struct MemoryFeed {
    tx: broadcast::Sender<ChangeEvent>,
}

impl MemoryFeed {
    pub(crate) fn new(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity.max(1));
        MemoryFeed { tx }
    }

    /// True if anyone listens: events are only built then.
    pub(crate) fn wanted(&self) -> bool {
        self.tx.receiver_count() > 0
    }

    /// Publishes `event`; without subscribers it is dropped.
    pub(crate) fn publish(&self, event: ChangeEvent) {
        // An error only means there is no subscriber right now.
        let _ = self.tx.send(event);
    }
}

impl fmt::Debug for MemoryFeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryFeed")
            .field("subscribers", &self.tx.receiver_count())
            .finish()
    }
}

#[async_trait]
impl ChangeFeed for MemoryFeed {
    async fn subscribe(&self) -> Result<Subscription> {
        Ok(Subscription::new(self.tx.subscribe()))
    }

    async fn broadcast_purge(&self, scope: PurgeScope, reason: &str) -> Result<()> {
        self.publish(ChangeEvent::Purge {
            scope,
            reason: reason.to_string(),
        });
        Ok(())
    }
}
