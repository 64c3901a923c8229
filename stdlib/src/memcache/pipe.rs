//! One pipelined connection per server, shared by every call of a client.
//!
//! memcached answers the requests of a connection in the order they came, so
//! many calls can be in flight on one connection. Each call queues its
//! request and a slot for its reply; whichever waiting call is polled writes
//! what is queued, reads what has arrived and hands each reply to its slot,
//! waking that call. The calls of many tasks that arrive in one turn of the
//! event loop go out in one write, and their replies come back in a few
//! reads: with 50 tasks on one client, a fraction of a system call per
//! request on either side instead of two or three. A lone call is written at
//! once, so a sequential loop pays nothing for this.
//!
//! There is no task of its own: the I/O is done by the callers, under the
//! server's lock and never waiting while holding it, so a call that is
//! cancelled or times out leaves nothing half-written or half-read. The
//! replies of calls that gave up are read and dropped. redis clients call
//! this a multiplexed connection; libmemcached (pylibmc) gives each client
//! handle one connection per server and does not share it between threads.

use std::collections::VecDeque;
use std::future::Future;
use std::io::ErrorKind;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use futures_util::future::BoxFuture;
use tokio::net::TcpStream;

use super::protocol::{self, Assembly, Expect, Frame};
use super::{Server, Settings, lock};
use crate::error::{Error, Kind};
use crate::runtime;

/// A server's connection and the calls waiting on it.
#[derive(Default)]
pub(super) struct Pipe {
    conn: Option<Conn>,
    connecting: Option<BoxFuture<'static, Result<Conn, Error>>>,
    /// Requests in the order they were queued, which is the order of the
    /// replies. Every one is on the wire or in `out`.
    queue: VecDeque<Entry>,
    /// The reply of the queue's first request so far.
    head: Assembly,
    /// Queued bytes not yet written.
    out: Vec<u8>,
}

/// One connection and its read buffer.
struct Conn {
    stream: TcpStream,
    buf: BytesMut,
    /// Replies read on it; a connection that has answered before and then
    /// fails was closed by the server since, and its requests are sent again
    /// once on a new one.
    answered: u64,
}

/// A queued request.
struct Entry {
    op: &'static str,
    expect: Expect,
    request: Vec<u8>,
    slot: Arc<Mutex<Slot>>,
    /// Already sent once on a connection that failed.
    retried: bool,
}

/// Where a reply lands, and who waits for it.
#[derive(Default)]
struct Slot {
    result: Option<Result<Vec<Frame>, Error>>,
    waker: Option<Waker>,
}

impl Entry {
    /// Whether its call still waits (a call that gave up dropped its slot).
    fn live(&self) -> bool {
        Arc::strong_count(&self.slot) > 1
    }

    fn complete(self, result: Result<Vec<Frame>, Error>) {
        let waker = {
            let mut slot = lock(&self.slot);
            slot.result = Some(result);
            slot.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl Conn {
    async fn connect(
        addr: std::net::SocketAddr,
        peer: String,
        op: &'static str,
        limit: Duration,
    ) -> Result<Self, Error> {
        let started = std::time::Instant::now();
        let faults = crate::faults::active();
        let connect = async move {
            crate::faults::bend(
                TcpStream::connect(addr).await?,
                faults.map(crate::faults::Control::fixed),
                crate::faults::Side::Client,
                false,
            )
            .await
        };
        let stream = match tokio::time::timeout(limit, connect).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(Error::io(op, &e).with_peer(&peer)),
            Err(_) => {
                return Err(Error::new(
                    Kind::Timeout,
                    op,
                    format!("connect timed out after {}", runtime::seconds(limit)),
                )
                .with_peer(&peer));
            }
        };
        stream.set_nodelay(true).map_err(|e| Error::io(op, &e).with_peer(&peer))?;
        crate::metrics::time("tcp_connect", &[], started.elapsed());
        Ok(Self { stream, buf: BytesMut::with_capacity(4096), answered: 0 })
    }

    /// Trace, count and capture bytes that went over this connection.
    fn moved(&self, dir: crate::capture::Dir, peer: &str, data: &[u8]) {
        let sent = matches!(dir, crate::capture::Dir::Sent);
        if crate::trace::on() {
            crate::trace::data(if sent { "send" } else { "recv" }, peer, data);
        }
        crate::metrics::count(if sent { "data_sent" } else { "data_received" }, data.len() as f64);
        if crate::capture::on()
            && let (Ok(local), Ok(remote)) = (self.stream.local_addr(), self.stream.peer_addr())
        {
            crate::capture::tcp(local, remote, dir, data);
        }
    }
}

impl Pipe {
    /// Drop the connection after `err`: calls that gave up leave the queue;
    /// a call whose connection had answered before and was then closed or
    /// reset is sent again once on a new one (`err` = `None`: every call
    /// is); the others get `err`.
    fn fail(&mut self, err: Option<Error>) {
        let answered = self.conn.take().map_or(0, |c| c.answered);
        self.head.clear();
        self.out.clear();
        let mut kept = VecDeque::with_capacity(self.queue.len());
        for mut entry in self.queue.drain(..) {
            if !entry.live() {
                continue;
            }
            match &err {
                None => {}
                Some(e) if answered > 0 && !entry.retried && matches!(e.kind(), Kind::Closed | Kind::Reset) => {
                    entry.retried = true;
                }
                Some(e) => {
                    let e = e.clone();
                    entry.complete(Err(e));
                    continue;
                }
            }
            self.out.extend_from_slice(&entry.request);
            kept.push_back(entry);
        }
        self.queue = kept;
    }

    /// Every waiting call gets `err` (the server could not be reached).
    fn fail_all(&mut self, err: &Error) {
        self.out.clear();
        for entry in self.queue.drain(..) {
            entry.complete(Err(err.clone()));
        }
    }

    /// Wake the first call still waiting (other than one giving up, whose
    /// slot is `leaving`), to carry the I/O on.
    fn wake_head(&self, leaving: Option<&Arc<Mutex<Slot>>>) {
        let waits = |e: &&Entry| e.live() && !leaving.is_some_and(|l| Arc::ptr_eq(l, &e.slot));
        if let Some(entry) = self.queue.iter().find(waits)
            && let Some(w) = lock(&entry.slot).waker.take()
        {
            w.wake();
        }
    }

    /// Hand out the reply units in the read buffer; `Err` when the server
    /// broke the protocol (the connection is then of no further use).
    fn dispatch(&mut self, peer: &str, max_value: usize) -> Result<(), Error> {
        let Some(conn) = self.conn.as_mut() else { return Ok(()) };
        while let Some(entry) = self.queue.front() {
            let bad = |bad: protocol::Malformed| {
                Error::new(Kind::Decode, entry.op, format!("the server sent {bad}")).with_peer(peer)
            };
            let Some((frame, used)) = protocol::parse(&conn.buf, max_value).map_err(bad)? else {
                return Ok(());
            };
            conn.buf.advance(used);
            if let Some(frames) = self.head.push(entry.expect, frame).map_err(bad)? {
                conn.answered += 1;
                let entry = self.queue.pop_front().expect("the queue has a first entry");
                entry.complete(Ok(frames));
            }
        }
        Ok(())
    }

    /// Connect if need be, write what is queued, read and hand out what has
    /// arrived, until the socket would block (its readiness then wakes the
    /// task of `cx`) or no call waits.
    fn pump(&mut self, server: &Server, settings: Settings, cx: &mut Context<'_>) {
        let peer = server.label.as_str();
        'conn: while !self.queue.is_empty() {
            if self.conn.is_none() {
                let op = self.queue[0].op;
                let fut = self.connecting.get_or_insert_with(|| {
                    Box::pin(Conn::connect(server.addr, server.label.clone(), op, settings.connect_timeout))
                });
                match fut.as_mut().poll(cx) {
                    Poll::Pending => return,
                    Poll::Ready(result) => {
                        self.connecting = None;
                        match result {
                            Ok(conn) => self.conn = Some(conn),
                            Err(e) => return self.fail_all(&e),
                        }
                    }
                }
            }
            let op = self.queue[0].op;
            let Some(conn) = self.conn.as_mut() else { continue };
            while !self.out.is_empty() {
                match conn.stream.try_write(&self.out) {
                    Ok(n) => {
                        conn.moved(crate::capture::Dir::Sent, peer, &self.out[..n]);
                        self.out.drain(..n);
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => match conn.stream.poll_write_ready(cx) {
                        Poll::Ready(Ok(())) => {}
                        Poll::Ready(Err(e)) => {
                            self.fail(Some(Error::io(op, &e).with_peer(peer)));
                            continue 'conn;
                        }
                        Poll::Pending => break,
                    },
                    Err(e) => {
                        self.fail(Some(Error::io(op, &e).with_peer(peer)));
                        continue 'conn;
                    }
                }
            }
            loop {
                if let Err(e) = self.dispatch(peer, settings.max_value) {
                    self.fail(Some(e));
                    continue 'conn;
                }
                if self.queue.is_empty() {
                    return;
                }
                let Some(conn) = self.conn.as_mut() else { continue 'conn };
                conn.buf.reserve(4096);
                let before = conn.buf.len();
                let op = self.queue[0].op;
                match conn.stream.try_read_buf(&mut conn.buf) {
                    Ok(0) => {
                        let e = Error::new(Kind::Closed, op, "the server closed the connection mid-reply");
                        self.fail(Some(e.with_peer(peer)));
                        continue 'conn;
                    }
                    Ok(_) => conn.moved(crate::capture::Dir::Received, peer, &conn.buf[before..]),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => match conn.stream.poll_read_ready(cx) {
                        Poll::Ready(Ok(())) => {}
                        Poll::Ready(Err(e)) => {
                            self.fail(Some(Error::io(op, &e).with_peer(peer)));
                            continue 'conn;
                        }
                        Poll::Pending => return,
                    },
                    Err(e) => {
                        self.fail(Some(Error::io(op, &e).with_peer(peer)));
                        continue 'conn;
                    }
                }
            }
        }
    }
}

/// A call on `server`'s pipe: resolves to the reply units of `request`.
pub(super) struct Call {
    server: Arc<Server>,
    settings: Settings,
    /// The request until it is queued (at the first poll).
    entry: Option<Entry>,
    slot: Arc<Mutex<Slot>>,
    /// When the call gives up (its caller's timeout).
    deadline: tokio::time::Instant,
}

impl Call {
    pub(super) fn new(
        server: Arc<Server>,
        op: &'static str,
        settings: Settings,
        request: Vec<u8>,
        expect: Expect,
        deadline: tokio::time::Instant,
    ) -> Self {
        let slot = Arc::new(Mutex::new(Slot::default()));
        let entry = Entry { op, expect, request, slot: slot.clone(), retried: false };
        Self { server, settings, entry: Some(entry), slot, deadline }
    }
}

impl Future for Call {
    type Output = Result<Vec<Frame>, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let mut pipe = lock(&this.server.pipe);
        if let Some(entry) = this.entry.take() {
            let busy = !pipe.queue.is_empty();
            pipe.out.extend_from_slice(&entry.request);
            pipe.queue.push_back(entry);
            if busy {
                // Others are in flight: let the calls of this turn queue
                // theirs too, and write them all together after it.
                lock(&this.slot).waker = Some(cx.waker().clone());
                let _ = std::pin::pin!(tokio::task::yield_now()).poll(cx);
                return Poll::Pending;
            }
        }
        pipe.pump(&this.server, this.settings, cx);
        let mut slot = lock(&this.slot);
        if let Some(result) = slot.result.take() {
            drop(slot);
            // This call may have been the one the socket wakes: pass the
            // I/O on to the next waiting call.
            pipe.wake_head(None);
            return Poll::Ready(result);
        }
        slot.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        if self.entry.is_some() || lock(&self.slot).result.is_some() {
            return;
        }
        let mut pipe = lock(&self.server.pipe);
        // A call that timed out: the server has not answered this connection
        // for that long, so it is closed, as a connection of its own would
        // have been, and the other calls on it go again on a new one (each
        // still within its own timeout). A cancelled call's reply is read
        // and dropped when it comes.
        if tokio::time::Instant::now() >= self.deadline
            && let Some(at) = pipe.queue.iter().position(|e| Arc::ptr_eq(&e.slot, &self.slot))
        {
            pipe.queue.remove(at);
            pipe.fail(None);
        }
        pipe.wake_head(Some(&self.slot));
    }
}
