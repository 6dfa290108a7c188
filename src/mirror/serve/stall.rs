//! A connection wrapper that closes connections stalled for too long, in
//! either direction.
//!
//! A slow-read client (it requests, then reads a byte now and then) would
//! otherwise hold a connection and its buffers forever: hyper has header and
//! keep-alive timeouts, but none for a response the peer will not take. And a
//! client that connects and sends nothing at all would sit in the HTTP/1-or-2
//! detection phase, which has no timeout of its own, holding a connection
//! slot: every read waiting longer than the limit ends the connection too.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use tokio::time::{Instant, Sleep};

use crate::ratelimit::RateLimit;

pub struct StallGuard<T> {
    inner: T,
    limit: Duration,
    /// One timer for both directions, made once per connection and re-armed
    /// lazily: it may fire early (armed for an earlier wait), and then only
    /// re-arms. A request on a busy keep-alive connection therefore neither
    /// allocates a timer nor touches the timer wheel (at most one reset per
    /// `limit`), where a fresh timer per wait did both for every request.
    timer: Pin<Box<Sleep>>,
    /// When the pending read started waiting; `None` while none is pending.
    read_since: Option<Instant>,
    /// When the pending write started waiting; `None` while none is pending.
    write_since: Option<Instant>,
    /// The operator's download cap, shared by every connection.
    cap: Option<Arc<RateLimit>>,
    /// Waiting for the cap's bucket to refill.
    throttle: Option<Pin<Box<Sleep>>>,
    /// Until the first byte arrives: a shorter read limit, and what to call then.
    first: Option<(Duration, Box<dyn FnOnce() + Send + Sync>)>,
}

/// Which wait ran out.
enum Stalled {
    Read(Duration),
    Write(Duration),
}

impl<T> StallGuard<T> {
    pub fn new(inner: T, limit: Duration, cap: Option<Arc<RateLimit>>) -> Self {
        StallGuard {
            inner,
            limit,
            timer: Box::pin(tokio::time::sleep(limit)),
            read_since: None,
            write_since: None,
            cap,
            throttle: None,
            first: None,
        }
    }

    /// Until the client's first byte, reads may wait only `limit`; then `seen` is called.
    pub fn first_byte_within(mut self, limit: Duration, seen: impl FnOnce() + Send + Sync + 'static) -> Self {
        self.first = Some((limit, Box::new(seen)));
        self
    }

    /// How long a pending read may wait.
    fn read_limit(&self) -> Duration {
        self.first.as_ref().map_or(self.limit, |(l, _)| *l)
    }

    /// How many of `want` bytes the cap allows now (Pending while it refills).
    fn budget(&mut self, cx: &mut Context<'_>, want: usize) -> Poll<usize> {
        let Some(cap) = self.cap.clone() else { return Poll::Ready(want) };
        loop {
            if let Some(t) = self.throttle.as_mut() {
                match t.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(()) => self.throttle = None,
                }
            }
            match cap.take(want) {
                Ok(n) => return Poll::Ready(n),
                Err(wait) => self.throttle = Some(Box::pin(tokio::time::sleep(wait))),
            }
        }
    }

    /// The earliest moment a pending wait runs out, and which.
    fn deadline(&self) -> Option<(Instant, Stalled)> {
        let r = self.read_since.map(|t| (t + self.read_limit(), Stalled::Read(self.read_limit())));
        let w = self.write_since.map(|t| (t + self.limit, Stalled::Write(self.limit)));
        [r, w].into_iter().flatten().min_by_key(|(due, _)| *due)
    }

    /// Called when an operation is pending: Ready(Err) once a wait has run
    /// out; otherwise the timer is armed no later than the earliest deadline
    /// and registered with this task.
    fn check(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            let Some((due, which)) = self.deadline() else { return Poll::Pending };
            if Instant::now() >= due {
                return Poll::Ready(Err(match which {
                    Stalled::Read(l) => io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("the client sent nothing for {l:?} (idle)"),
                    ),
                    Stalled::Write(l) => io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("the client took nothing for {l:?} (slow read)"),
                    ),
                }));
            }
            if self.timer.deadline() > due {
                self.timer.as_mut().reset(due);
            }
            match self.timer.as_mut().poll(cx) {
                Poll::Pending => return Poll::Pending,
                // Fired for an earlier wait (or just now): re-arm for this one.
                Poll::Ready(()) => self.timer.as_mut().reset(due),
            }
        }
    }

    /// After a write or flush: progress (in either direction) ends both
    /// waits; a pending one starts the write wait, which fails it when it
    /// runs out.
    fn after_write<R>(&mut self, cx: &mut Context<'_>, r: Poll<io::Result<R>>) -> Poll<io::Result<R>> {
        match r {
            Poll::Ready(r) => {
                self.write_since = None;
                self.read_since = None;
                Poll::Ready(r)
            }
            Poll::Pending => {
                self.write_since.get_or_insert_with(Instant::now);
                match self.check(cx) {
                    Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                    _ => Poll::Pending,
                }
            }
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for StallGuard<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(r) => {
                self.read_since = None;
                if buf.filled().len() > before {
                    if let Some((_, seen)) = self.first.take() {
                        seen();
                    }
                }
                Poll::Ready(r)
            }
            Poll::Pending => {
                self.read_since.get_or_insert_with(Instant::now);
                match self.check(cx) {
                    Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                    _ => Poll::Pending,
                }
            }
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for StallGuard<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let n = match self.budget(cx, data.len()) {
            Poll::Ready(n) => n,
            Poll::Pending => return Poll::Pending,
        };
        let r = Pin::new(&mut self.inner).poll_write(cx, &data[..n]);
        self.after_write(cx, r)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.cap.is_some() {
            // Capped: write the first non-empty slice through the budget.
            let first = bufs.iter().find(|b| !b.is_empty()).map_or(&[][..], |b| &b[..]);
            return self.poll_write(cx, first);
        }
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.after_write(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        self.cap.is_none() && self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_flush(cx);
        self.after_write(cx, r)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
