//! The open connections, so that a client waiting at the bound on open
//! connections can have the room of one that sits idle.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use super::Activity;

/// How long a connection must have been idle (see
/// [`super::ConnectionOptions::idle_timeout`] for what counts as idle)
/// before it may be closed for a client waiting at the bound: a newcomer
/// has this long to send its first request, a keep-alive client this long
/// between two of its requests. A connection whose response waits for its
/// client to read is not closed for room, however long it waits.
pub const IDLE_GRACE_AT_THE_BOUND: Duration = Duration::from_secs(1);

/// Connections closed for a waiting client, over every server in the
/// process.
static CLOSED_FOR_ROOM: AtomicU64 = AtomicU64::new(0);

/// How many connections have been closed for a client waiting at the
/// bound, over every server in the process.
pub fn closed_for_room() -> u64 {
    CLOSED_FOR_ROOM.load(Ordering::Acquire)
}

/// The connections a server has open. Touched when a connection opens or
/// closes, and scanned only while a client waits at the bound; never on a
/// request's path.
#[derive(Debug)]
pub(super) struct Roster {
    members: Mutex<HashMap<u64, Arc<Membership>>>,
    next_id: AtomicU64,
    /// How long a connection must have been idle to be closed for room.
    grace: Duration,
    /// Connections closed for room (also counted in [`closed_for_room`]).
    closed: AtomicU64,
}

#[derive(Debug)]
struct Membership {
    activity: Arc<Activity>,
    /// The connection's socket, to see whether a request is arriving.
    socket: Weak<TcpStream>,
    /// Set once the connection is chosen to make room, so that it is
    /// chosen once.
    chosen: AtomicBool,
    /// The connection's reads when it was chosen.
    reads_when_chosen: AtomicU64,
    closing: Notify,
}

/// What a client waiting at the bound gets.
pub(super) enum Room {
    /// A slot of its own.
    Made(OwnedSemaphorePermit),
    /// Nothing: it hung up while it waited.
    Left,
    /// Nothing: the slots' semaphore was closed (it never is).
    Closed,
}

/// An open connection's place on its server's roster, left when dropped.
pub(super) struct Member {
    roster: Arc<Roster>,
    id: u64,
    membership: Arc<Membership>,
}

impl Member {
    /// Completes once the connection is chosen to make room for a waiting
    /// client and is still idle: then it is to be closed (and is counted
    /// closed for room; polled in a `select!` beside what else may close
    /// it, this is counted only if it wins). A request that began, or
    /// began arriving, since it was chosen keeps it: it is served, and
    /// another connection is chosen later.
    pub(super) async fn chosen_to_make_room(&self) {
        loop {
            self.membership.closing.notified().await;
            if self.membership.still_idle(self.roster.grace) {
                self.roster.closed.fetch_add(1, Ordering::AcqRel);
                CLOSED_FOR_ROOM.fetch_add(1, Ordering::AcqRel);
                return;
            }
            self.membership.chosen.store(false, Ordering::Release);
        }
    }
}

impl Membership {
    /// Whether the connection chosen to make room is still idle for
    /// `grace`: no request answered since (pipelined requests read with
    /// the last one keep answering), no bytes read since it was chosen
    /// (a request arriving) nor waiting on its socket, no request in
    /// flight, and no response waiting for its client to read.
    fn still_idle(&self, grace: Duration) -> bool {
        self.activity.idle() >= grace
            && self.activity.reads() == self.reads_when_chosen.load(Ordering::Acquire)
            && !self.activity.writing()
            && !self
                .socket
                .upgrade()
                .is_some_and(|socket| super::has_unread_bytes(&socket))
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.roster.lock().remove(&self.id);
    }
}

impl Roster {
    /// No connections yet; one must have been idle for `grace` to be
    /// closed for room.
    pub(super) fn new(grace: Duration) -> Self {
        Roster {
            members: Mutex::default(),
            next_id: AtomicU64::new(0),
            grace,
            closed: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Membership>>> {
        // The map is whole after any panic: each change is one call.
        self.members.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Puts a connection with `activity` on `socket` on the roster.
    pub(super) fn join(
        self: &Arc<Self>,
        activity: Arc<Activity>,
        socket: Weak<TcpStream>,
    ) -> Member {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let membership = Arc::new(Membership {
            activity,
            socket,
            chosen: AtomicBool::new(false),
            reads_when_chosen: AtomicU64::new(0),
            closing: Notify::new(),
        });
        self.lock().insert(id, Arc::clone(&membership));
        Member {
            roster: Arc::clone(self),
            id,
            membership,
        }
    }

    /// A slot for `waiting`, a client accepted at the bound: the first to
    /// free, or else the one of the connection idle longest once it has
    /// been idle for the grace. Connections with a request in flight, or a
    /// response still being written, are never closed for it, nor is any
    /// once the waiting client has hung up: then the answer is `Left`.
    pub(super) async fn room(&self, slots: &Arc<Semaphore>, waiting: &TcpStream) -> Room {
        loop {
            if super::hung_up(waiting) {
                return Room::Left;
            }
            let wait = self.close_idlest().unwrap_or(self.grace);
            tokio::select! {
                slot = Arc::clone(slots).acquire_owned() => return match slot {
                    Ok(slot) => Room::Made(slot),
                    Err(_) => Room::Closed,
                },
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Tells the connection idle longest to close, if it has been idle for
    /// the grace, and answers `None`; else how long until one could have
    /// been.
    fn close_idlest(&self) -> Option<Duration> {
        let grace = self.grace;
        let members = self.lock();
        let idlest = members
            .values()
            .filter(|m| !m.chosen.load(Ordering::Acquire) && !m.activity.writing())
            .map(|m| (m.activity.idle(), m))
            .max_by_key(|(idle, _)| *idle);
        match idlest {
            Some((idle, member)) if idle >= grace => {
                member.chosen.store(true, Ordering::Release);
                member
                    .reads_when_chosen
                    .store(member.activity.reads(), Ordering::Release);
                member.closing.notify_one();
                None
            }
            Some((idle, _)) => Some(grace - idle),
            None => Some(grace),
        }
    }
}

#[cfg(test)]
mod tests {
    use futures::FutureExt;

    use super::*;

    fn chosen(member: &Member) -> bool {
        member.chosen_to_make_room().now_or_never().is_some()
    }

    #[tokio::test]
    async fn the_connection_idle_longest_makes_room_once_idle_for_the_grace() {
        // Far more than a pause of a busy machine between two lines.
        let grace = Duration::from_millis(200);
        let roster = Arc::new(Roster::new(grace));
        let oldest = roster.join(Arc::new(Activity::new()), Weak::new());
        tokio::time::sleep(grace / 2).await;
        let busy_activity = Arc::new(Activity::new());
        let busy = roster.join(Arc::clone(&busy_activity), Weak::new());
        let writing_activity = Arc::new(Activity::new());
        let writing = roster.join(Arc::clone(&writing_activity), Weak::new());
        let younger = roster.join(Arc::new(Activity::new()), Weak::new());

        let wait = roster.close_idlest().expect("none idle long enough");
        assert!(wait <= grace / 2, "{wait:?}");
        assert!(!chosen(&oldest));

        let _request = busy_activity.busy();
        writing_activity.write_waits();
        tokio::time::sleep(grace * 2).await;
        assert_eq!(roster.close_idlest(), None);
        // Counted once it closes.
        assert_eq!(roster.closed.load(Ordering::Acquire), 0);
        assert!(chosen(&oldest));
        assert_eq!(roster.closed.load(Ordering::Acquire), 1);
        assert_eq!(roster.close_idlest(), None);
        assert!(chosen(&younger));
        // A request in flight, or a response waiting for its client to
        // read, keeps its connection, however long.
        assert_eq!(roster.close_idlest(), Some(grace));
        assert!(!chosen(&busy));
        assert!(!chosen(&writing));

        drop((oldest, younger, busy, writing));
        assert!(roster.lock().is_empty());
    }

    #[tokio::test]
    async fn a_connection_whose_request_began_since_it_was_chosen_stays() {
        use std::io::Write;
        let grace = Duration::from_millis(50);
        let roster = Arc::new(Roster::new(grace));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let socket = Arc::new(listener.accept().await.unwrap().0);
        let activity = Arc::new(Activity::new());
        let member = roster.join(Arc::clone(&activity), Arc::downgrade(&socket));
        tokio::time::sleep(grace * 2).await;

        // A request in flight by the time the choice is acted on.
        assert_eq!(roster.close_idlest(), None);
        let request = activity.busy();
        assert!(!chosen(&member));
        drop(request);
        tokio::time::sleep(grace * 2).await;

        // A request answered meanwhile (pipelined requests read with it
        // may still wait in the connection's buffer).
        assert_eq!(roster.close_idlest(), None);
        drop(activity.busy());
        assert!(!chosen(&member));
        tokio::time::sleep(grace * 2).await;

        // Bytes read meanwhile: a request arriving.
        assert_eq!(roster.close_idlest(), None);
        activity.reads.fetch_add(1, Ordering::AcqRel);
        assert!(!chosen(&member));

        // A request arriving, not read yet.
        assert_eq!(roster.close_idlest(), None);
        client.write_all(b"GET / HTTP/1.1\r\n").unwrap();
        let mut unread = false;
        for _ in 0..100 {
            unread = super::super::has_unread_bytes(&socket);
            if unread {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(unread);
        assert!(!chosen(&member));
        let mut head = [0; 16];
        socket.try_read(&mut head).unwrap();

        // Idle at last: chosen again, and closed.
        assert_eq!(roster.close_idlest(), None);
        assert!(chosen(&member));
    }
}
