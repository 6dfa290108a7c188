//! Response bodies and the small response builders every route uses.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body as HttpBody, Frame};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Response, StatusCode};

/// A response body: in memory, a range of a stored file, or the output of a
/// blocking producer (bundles).
pub enum Body {
    Full(Option<Bytes>),
    /// Chunks sent by a blocking producer (a file being read, a bundle being
    /// written through [`ChannelWriter`]); an error aborts the response (the
    /// client sees a broken body, not a short one).
    Channel(tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>),
}

impl HttpBody for Body {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.get_mut() {
            Body::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Body::Channel(rx) => rx.poll_recv(cx).map(|o| o.map(|r| r.map(Frame::data))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, Body::Full(None))
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        match self {
            Body::Full(Some(b)) => hyper::body::SizeHint::with_exact(b.len() as u64),
            Body::Full(None) => hyper::body::SizeHint::with_exact(0),
            Body::Channel(_) => hyper::body::SizeHint::default(),
        }
    }
}

impl Body {
    pub fn bytes(b: impl Into<Bytes>) -> Body {
        Body::Full(Some(b.into()))
    }
    pub fn empty() -> Body {
        Body::Full(None)
    }
    /// Bytes `start..end` of an open file, read on the blocking pool in
    /// 64 KiB chunks with a 2-deep queue: one blocking task per response
    /// (not a pool hop per chunk, as `tokio::fs` would make), and memory per
    /// streaming response stays ~200 KiB however many clients download
    /// large files at once.
    /// `open` runs on that task too; if it fails, the body fails.
    pub fn file(
        open: impl FnOnce() -> std::io::Result<std::fs::File> + Send + 'static,
        start: u64,
        end: u64,
    ) -> Body {
        let (tx, rx) = tokio::sync::mpsc::channel(2);
        tokio::task::spawn_blocking(move || {
            use std::io::{Read, Seek};
            let mut f = match open() {
                Ok(f) => f,
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            };
            if let Err(e) = f.seek(std::io::SeekFrom::Start(start)) {
                let _ = tx.blocking_send(Err(e));
                return;
            }
            let mut left = end - start;
            let mut f = f.take(left);
            while left > 0 {
                let mut buf = vec![0u8; (64 * 1024).min(left as usize)];
                match f.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        buf.truncate(n);
                        left -= n as u64;
                        if tx.blocking_send(Ok(Bytes::from(buf))).is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        let _ = tx.blocking_send(Err(e));
                        return;
                    }
                }
            }
        });
        Body::Channel(rx)
    }
}

/// A `Write` that sends chunks to a [`Body::Channel`] (blocking side).
pub struct ChannelWriter {
    pub tx: tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
    pub buf: Vec<u8>,
}

impl std::io::Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= 64 * 1024 {
            self.flush()?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        if !self.buf.is_empty() {
            let chunk = Bytes::from(std::mem::take(&mut self.buf));
            self.tx
                .blocking_send(Ok(chunk))
                .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))?;
        }
        Ok(())
    }
}

const CSP: &str = "default-src 'self' data: 'unsafe-inline'; base-uri 'self'; form-action 'self'; frame-ancestors 'self'; object-src 'none'";

/// Headers on every response: no third-party loads, no sniffing, no referrer.
pub fn security_headers(h: &mut HeaderMap) {
    // A handler may set a policy of its own (the service worker's).
    h.entry(header::CONTENT_SECURITY_POLICY).or_insert(HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
}

pub fn text(status: StatusCode, msg: impl Into<String>) -> Response<Body> {
    let mut r = Response::new(Body::bytes(msg.into() + "\n"));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

pub fn allow(mut r: Response<Body>, methods: &'static str) -> Response<Body> {
    r.headers_mut().insert(header::ALLOW, HeaderValue::from_static(methods));
    r
}

pub fn html(body: String, head_only: bool) -> Response<Body> {
    let mut r = Response::new(Body::bytes(body));
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    strip_body(r, head_only)
}

/// For HEAD: keep the headers (with the GET's Content-Length), drop the body.
pub fn strip_body(mut r: Response<Body>, head_only: bool) -> Response<Body> {
    if head_only {
        if let Some(n) = r.body().size_hint().exact() {
            r.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from(n));
        }
        *r.body_mut() = Body::empty();
    }
    r
}
