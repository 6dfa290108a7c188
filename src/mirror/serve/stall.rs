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
    /// Armed while a write is pending; cleared when one succeeds.
    timer: Option<Pin<Box<Sleep>>>,
    /// Armed while a read is pending; cleared when one completes.
    read_timer: Option<Pin<Box<Sleep>>>,
    /// The operator's download cap, shared by every connection.
    cap: Option<Arc<RateLimit>>,
    /// Waiting for the cap's bucket to refill.
    throttle: Option<Pin<Box<Sleep>>>,
    /// Until the first byte arrives: a shorter read limit, and what to call then.
    first: Option<(Duration, Box<dyn FnOnce() + Send + Sync>)>,
}

impl<T> StallGuard<T> {
    pub fn new(inner: T, limit: Duration, cap: Option<Arc<RateLimit>>) -> Self {
        StallGuard { inner, limit, timer: None, read_timer: None, cap, throttle: None, first: None }
    }

    /// Until the client's first byte, reads may wait only `limit`; then `seen` is called.
    pub fn first_byte_within(mut self, limit: Duration, seen: impl FnOnce() + Send + Sync + 'static) -> Self {
        self.first = Some((limit, Box::new(seen)));
        self
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

    /// After a write or flush: progress (in either direction) disarms the
    /// timers; a pending one arms the stall timer, which fails it when it fires.
    fn after_write<R>(&mut self, cx: &mut Context<'_>, r: Poll<io::Result<R>>) -> Poll<io::Result<R>> {
        match r {
            Poll::Ready(r) => {
                self.timer = None;
                self.read_timer = None;
                Poll::Ready(r)
            }
            Poll::Pending => match self.check(cx) {
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                _ => Poll::Pending,
            },
        }
    }

    fn check(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let limit = self.limit;
        let timer =
            self.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(Instant::now() + limit)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the client took nothing for {limit:?} (slow read)"),
            ))),
            Poll::Pending => Poll::Pending,
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
                self.read_timer = None;
                if buf.filled().len() > before {
                    if let Some((_, seen)) = self.first.take() {
                        seen();
                    }
                }
                Poll::Ready(r)
            }
            Poll::Pending => {
                let limit = self.first.as_ref().map_or(self.limit, |(l, _)| *l);
                let t = self.read_timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
                match t.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("the client sent nothing for {limit:?} (idle)"),
                    ))),
                    Poll::Pending => Poll::Pending,
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
