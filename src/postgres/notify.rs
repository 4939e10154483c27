//! The PostgreSQL change feed: `LISTEN`/`NOTIFY` on channel
//! `coordinate_feed`.
//!
//! Notifications are sent by triggers (migration 2) in the deleting
//! transaction itself, so they are delivered on commit and never on
//! rollback, to every job server on the database. Each backend keeps one
//! dedicated listening connection, outside the pool, made on the first
//! subscription and shared by every subscriber; when it is lost every
//! subscription ends with a gap, and the next subscription connects again.
//! A listening connection only ever reads, so one that died without closing
//! (a failover, an idle connection dropped by the network) would look alive
//! for hours: a heartbeat probes it, and one that does not answer in time
//! is taken for lost.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::Pool;
use futures::StreamExt;
use tokio::sync::{broadcast, Mutex};
use tokio::task::{AbortHandle, JoinHandle};
use tokio_postgres::AsyncMessage;

use super::conn::{Conn, GivenUp};
use super::connector::{Connector, Settings};
use super::error::{db, pool, PostgresError};
use super::execute;
use crate::error::{Error, Result};
use crate::feed::{ChangeEvent, ChangeFeed, DeletedUnits, PurgeScope, Subscription};

/// The channel every notification goes to.
const CHANNEL: &str = "coordinate_feed";

/// How many events a subscriber may fall behind by before it sees a gap.
const CAPACITY: usize = 16_384;

/// Purge payloads stay below this (PostgreSQL refuses 8000 bytes and more).
const MAX_PAYLOAD: usize = 7_000;

/// How the listening connection is made and watched.
pub(crate) struct Listening {
    /// How the connection is made, as the backend's.
    pub(crate) connector: Arc<Connector>,
    /// How often the connection is probed.
    pub(crate) heartbeat: Duration,
    /// How long `LISTEN`, and each probe, may take.
    pub(crate) timeout: Duration,
}

/// The feed of one backend.
pub(crate) struct PgFeed {
    listening: Listening,
    pool: Pool,
    /// Where the pool's give-ups are counted.
    given_up: Arc<GivenUp>,
    listener: Mutex<Option<Listener>>,
}

/// The live listening connection.
struct Listener {
    /// Makes new subscriptions. The connection's task owns the only strong
    /// sender, so its end closes every subscription; and no receiver is
    /// kept here, which would hold the last events in memory unread.
    events: broadcast::WeakSender<ChangeEvent>,
    /// The server process id of the connection.
    pid: i32,
    /// Reads the connection's notifications.
    task: Aborting,
    /// Owns the client and probes the connection; ends `task` when a probe
    /// fails. Held to end with the listener.
    _heartbeat: Aborting,
}

impl Listener {
    /// A new subscription, unless the connection has ended.
    fn subscribe(&self) -> Option<Subscription> {
        if self.task.0.is_finished() {
            return None;
        }
        let sender = self.events.upgrade()?;
        Some(Subscription::new(sender.subscribe()))
    }
}

/// A task that ends when its handle is dropped: with its listener, or when
/// a `subscribe` making one is cancelled.
struct Aborting(JoinHandle<()>);

impl Drop for Aborting {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The channel of a listening connection's events: the sender for its
/// task, and the weak one the listener keeps.
fn event_channel() -> (
    broadcast::Sender<ChangeEvent>,
    broadcast::WeakSender<ChangeEvent>,
) {
    let (tx, _) = broadcast::channel(CAPACITY);
    let events = tx.downgrade();
    (tx, events)
}

impl PgFeed {
    pub(crate) fn new(listening: Listening, pool: Pool, given_up: Arc<GivenUp>) -> Self {
        PgFeed {
            listening,
            pool,
            given_up,
            listener: Mutex::new(None),
        }
    }

    /// The server pid of the listening connection, if one is up.
    pub(crate) async fn listener_pid(&self) -> Option<i32> {
        let guard = self.listener.lock().await;
        guard
            .as_ref()
            .filter(|l| !l.task.0.is_finished())
            .map(|l| l.pid)
    }

    /// Opens the listening connection and starts `LISTEN`ing.
    async fn connect(&self) -> Result<Listener> {
        let Listening {
            connector,
            heartbeat,
            timeout,
        } = &self.listening;
        let Settings { config, tls } = connector.settings();
        // The driver's own connect timeout covers opening the socket only: a
        // server that accepts and never answers would hold this for ever.
        let (client, mut connection) = tokio::time::timeout(*timeout, config.connect(tls))
            .await
            .map_err(|_| unanswered(*timeout))?
            .map_err(db)?;
        let (tx, events) = event_channel();
        let task = Aborting(tokio::spawn(async move {
            let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
            while let Some(message) = messages.next().await {
                match message {
                    Ok(AsyncMessage::Notification(n)) => {
                        if let Some(event) = decode(n.payload()) {
                            // No receiver only means no cache listens now.
                            let _ = tx.send(event);
                        }
                    }
                    Ok(_) => {}
                    Err(error) => {
                        tracing::warn!(%error, "change feed connection lost");
                        return;
                    }
                }
            }
            tracing::warn!("change feed connection closed by the server");
        }));
        let listening = async {
            client
                .batch_execute(&format!("LISTEN {CHANNEL}"))
                .await
                .map_err(db)?;
            let row = client
                .query_one("SELECT pg_backend_pid()", &[])
                .await
                .map_err(db)?;
            row.try_get::<_, i32>(0).map_err(db)
        };
        let listened = tokio::time::timeout(*timeout, listening).await;
        // On failure, or if this call is dropped, `task` ends with it.
        let pid = listened.unwrap_or_else(|_| Err(unanswered(*timeout)))?;
        tracing::info!(pid, "change feed listening");
        let heartbeat = Aborting(tokio::spawn(probe(
            client,
            *heartbeat,
            *timeout,
            task.0.abort_handle(),
        )));
        Ok(Listener {
            events,
            pid,
            task,
            _heartbeat: heartbeat,
        })
    }
}

/// The error of a listening connection that did not answer in time.
fn unanswered(timeout: Duration) -> Error {
    PostgresError::FeedTimeout(timeout).into()
}

/// Probes the listening connection of `client` every `every` (zero:
/// never, holding the client until aborted); when a probe fails or is not
/// answered within `timeout`, ends the connection's task (`reader`), which
/// ends every subscription with a gap.
async fn probe(
    client: tokio_postgres::Client,
    every: Duration,
    timeout: Duration,
    reader: AbortHandle,
) {
    if every.is_zero() {
        let _client = client;
        return std::future::pending().await;
    }
    loop {
        tokio::time::sleep(every).await;
        match tokio::time::timeout(timeout, client.simple_query("SELECT 1")).await {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => {
                tracing::warn!(%error, "change feed connection failed its probe");
                break;
            }
            Err(_) => {
                tracing::warn!(?timeout, "change feed connection did not answer its probe");
                break;
            }
        }
    }
    reader.abort();
}

impl fmt::Debug for PgFeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgFeed").finish_non_exhaustive()
    }
}

#[async_trait]
impl ChangeFeed for PgFeed {
    async fn subscribe(&self) -> Result<Subscription> {
        let mut guard = self.listener.lock().await;
        if let Some(subscription) = guard.as_ref().and_then(Listener::subscribe) {
            return Ok(subscription);
        }
        let listener = self.connect().await?;
        let subscription = listener
            .subscribe()
            .ok_or_else(|| Error::backend("the change feed connection closed as it opened"))?;
        *guard = Some(listener);
        Ok(subscription)
    }

    async fn broadcast_purge(&self, scope: PurgeScope, reason: &str) -> Result<()> {
        let reason: String = reason.chars().take(200).collect();
        let mut payload = encode_purge(&scope, &reason)?;
        if payload.len() > MAX_PAYLOAD {
            // A scope too long to send: everyone purges everything.
            payload = encode_purge(&PurgeScope::Everything, &reason)?;
        }
        let client = Conn::new(self.pool.get().await.map_err(pool)?, &self.given_up);
        execute(&client, "SELECT pg_notify($1, $2)", &[&CHANNEL, &payload]).await?;
        Ok(())
    }
}

fn encode_purge(scope: &PurgeScope, reason: &str) -> Result<String> {
    serde_json::to_string(&serde_json::json!({"e": "purge", "scope": scope, "reason": reason}))
        .map_err(Error::backend)
}

/// A hex-encoded name.
fn name(value: &serde_json::Value, key: &str) -> Option<String> {
    let hex = value.get(key)?.as_str()?;
    if hex.len() % 2 != 0 {
        return None;
    }
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    String::from_utf8(bytes).ok()
}

/// The event a payload describes. An unreadable payload becomes a purge of
/// everything: a possibly stale entry is never kept.
pub(crate) fn decode(payload: &str) -> Option<ChangeEvent> {
    let everything = |why: &str| ChangeEvent::Purge {
        scope: PurgeScope::Everything,
        reason: why.to_string(),
    };
    let Ok(v) = serde_json::from_str::<serde_json::Value>(payload) else {
        return Some(everything("unreadable change notification"));
    };
    let event = match v.get("e").and_then(|e| e.as_str()) {
        Some("none") => return None,
        Some("all") => Some(everything("large change")),
        Some("ns") => name(&v, "ns").map(|namespace| ChangeEvent::NamespaceDestroyed { namespace }),
        Some("spec") => name(&v, "ns")
            .zip(name(&v, "spec"))
            .map(|(namespace, work_spec)| ChangeEvent::WorkSpecDestroyed {
                namespace,
                work_spec,
            }),
        Some("redef") => name(&v, "ns")
            .zip(name(&v, "spec"))
            .map(|(namespace, work_spec)| ChangeEvent::WorkSpecRedefined {
                namespace,
                work_spec,
            }),
        Some("units") => {
            let units = match v.get("units") {
                Some(serde_json::Value::Array(items)) => items
                    .iter()
                    .map(|item| name(&serde_json::json!({ "n": item }), "n"))
                    .collect::<Option<Vec<String>>>()
                    .map(DeletedUnits::Names),
                _ => Some(DeletedUnits::All),
            };
            name(&v, "ns").zip(name(&v, "spec")).zip(units).map(
                |((namespace, work_spec), units)| ChangeEvent::WorkUnitsDeleted {
                    namespace,
                    work_spec,
                    units,
                },
            )
        }
        Some("worker") => name(&v, "ns")
            .zip(name(&v, "worker"))
            .map(|(namespace, worker)| ChangeEvent::WorkerChanged { namespace, worker }),
        Some("purge") => v
            .get("scope")
            .and_then(|s| serde_json::from_value::<PurgeScope>(s.clone()).ok())
            .map(|scope| ChangeEvent::Purge {
                scope,
                reason: v
                    .get("reason")
                    .and_then(|r| r.as_str())
                    .unwrap_or_default()
                    .to_string(),
            }),
        _ => None,
    };
    Some(event.unwrap_or_else(|| everything("unknown change notification")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_no_subscriber_reads_are_not_kept() {
        let (tx, events) = event_channel();
        let purge = || ChangeEvent::Purge {
            scope: PurgeScope::Everything,
            reason: "test".into(),
        };
        for _ in 0..100 {
            let _ = tx.send(purge());
        }
        assert_eq!(tx.len(), 0);
        let mut rx = events.upgrade().expect("sender alive").subscribe();
        for _ in 0..100 {
            tx.send(purge()).expect("a subscriber");
        }
        assert_eq!(tx.len(), 100);
        while rx.try_recv().is_ok() {}
        assert_eq!(tx.len(), 0);
        // The task's sender gone, no subscription can be made.
        drop(tx);
        assert!(events.upgrade().is_none());
    }

    #[test]
    fn payloads_decode() {
        assert_eq!(
            decode(r#"{"e":"units","ns":"6e","spec":"7300","units":["61","62"]}"#),
            Some(ChangeEvent::WorkUnitsDeleted {
                namespace: "n".into(),
                work_spec: "s\0".into(),
                units: DeletedUnits::Names(vec!["a".into(), "b".into()]),
            })
        );
        assert_eq!(
            decode(r#"{"e":"units","ns":"6e","spec":"73","units":null}"#),
            Some(ChangeEvent::WorkUnitsDeleted {
                namespace: "n".into(),
                work_spec: "s".into(),
                units: DeletedUnits::All,
            })
        );
        assert_eq!(decode(r#"{"e":"none"}"#), None);
        assert!(matches!(
            decode("garbage"),
            Some(ChangeEvent::Purge {
                scope: PurgeScope::Everything,
                ..
            })
        ));
        assert!(matches!(
            decode(r#"{"e":"ns","ns":"zz"}"#),
            Some(ChangeEvent::Purge {
                scope: PurgeScope::Everything,
                ..
            })
        ));
        let purge = encode_purge(
            &PurgeScope::Worker {
                namespace: "n".into(),
                worker: "w".into(),
            },
            "why",
        )
        .unwrap();
        assert_eq!(
            decode(&purge),
            Some(ChangeEvent::Purge {
                scope: PurgeScope::Worker {
                    namespace: "n".into(),
                    worker: "w".into()
                },
                reason: "why".into()
            })
        );
    }
}
