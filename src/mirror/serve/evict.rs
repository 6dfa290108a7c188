//! Making room at the connection limit.
//!
//! Connections that have not sent a byte yet are listed oldest first. When
//! every connection slot is taken, the oldest of these is closed to make
//! room: a reader's connection sends its request at once and leaves this
//! list, so thousands of idle connections cannot keep readers out.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

#[derive(Default)]
pub struct Waiting {
    next: AtomicU64,
    list: Mutex<VecDeque<(u64, Instant, Arc<Notify>)>>,
}

impl Waiting {
    /// Lists a new connection; the `Notify` fires if it is chosen to close.
    pub fn register(&self) -> (u64, Arc<Notify>) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let n = Arc::new(Notify::new());
        self.list.lock().unwrap_or_else(|p| p.into_inner()).push_back((id, Instant::now(), n.clone()));
        (id, n)
    }

    /// The connection sent its first byte (or ended): no longer a candidate.
    pub fn remove(&self, id: u64) {
        self.list.lock().unwrap_or_else(|p| p.into_inner()).retain(|(i, _, _)| *i != id);
    }

    /// Closes the oldest silent connection, if it has been silent a while: a
    /// reader's fresh connection sends its request within milliseconds and
    /// must not be the one closed. Returns whether one was closed.
    pub fn evict_oldest(&self) -> bool {
        let mut list = self.list.lock().unwrap_or_else(|p| p.into_inner());
        if list.front().is_some_and(|(_, t, _)| t.elapsed() < Duration::from_millis(500)) {
            return false;
        }
        match list.pop_front() {
            Some((_, _, n)) => {
                // notify_one keeps the wake-up even if the task is not waiting yet.
                n.notify_one();
                true
            }
            None => false,
        }
    }
}
