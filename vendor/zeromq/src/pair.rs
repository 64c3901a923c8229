//! (Patched) PAIR sockets, which upstream lacks: one peer at a time, both
//! directions, as libzmq's `ZMQ_PAIR`.
//!
//! A PAIR is a DEALER with an exclusive admission: the generic backend
//! does the queueing, writing and reconnecting, and `PairSocketBackend`
//! lets a peer in only while no other is connected. libzmq's PAIR
//! (`pair.cpp`, `xattach_pipe`) terminates the pipe of any further peer:
//! that peer completes the handshake and is then disconnected, without a
//! byte of its messages read, and once the admitted peer is gone the next
//! one to (re)connect takes its place. So does this one. (A peer this
//! socket itself connected to and refused is not tried again: its
//! reconnection task waits for a disconnection that never comes.)

use crate::backend::GenericSocketBackend;
use crate::codec::{FramedIo, Message, ZmqFramedRead};
use crate::fair_queue::FairQueue;
use crate::reconnect::Reconnects;
use crate::transport::AcceptStopHandle;
use crate::util::PeerIdentity;
use crate::{
    CaptureSocket, Endpoint, MultiPeerBackend, Socket, SocketBackend, SocketEvent, SocketOptions,
    SocketRecv, SocketSend, SocketType, ZmqError, ZmqMessage, ZmqResult,
};

use async_trait::async_trait;
use futures::channel::mpsc;
use futures::StreamExt;
use parking_lot::Mutex;

use std::collections::HashMap;
use std::sync::Arc;

pub(crate) struct PairSocketBackend {
    inner: Arc<GenericSocketBackend>,
    /// Held from the emptiness check until the admitted peer is in the
    /// peer map, so two handshakes finishing together cannot both pass.
    admission: futures::lock::Mutex<()>,
}

#[async_trait]
impl MultiPeerBackend for PairSocketBackend {
    async fn peer_connected(self: Arc<Self>, peer_id: &PeerIdentity, io: FramedIo) {
        let _admission = self.admission.lock().await;
        if self.inner.peers.is_empty() {
            self.inner.clone().peer_connected(peer_id, io).await;
        } else {
            log::debug!("PAIR already has its peer: dropping {:?}", peer_id);
            drop(io);
        }
    }

    fn peer_disconnected(&self, peer_id: &PeerIdentity) {
        self.inner.peer_disconnected(peer_id);
    }
}

impl SocketBackend for PairSocketBackend {
    fn socket_type(&self) -> SocketType {
        self.inner.socket_type()
    }

    fn socket_options(&self) -> &Arc<SocketOptions> {
        self.inner.socket_options()
    }

    fn shutdown(&self) {
        self.inner.shutdown();
    }

    fn monitor(&self) -> &Mutex<Option<mpsc::Sender<SocketEvent>>> {
        self.inner.monitor()
    }
}

pub struct PairSocket {
    backend: Arc<PairSocketBackend>,
    reconnects: Reconnects,
    fair_queue: FairQueue<ZmqFramedRead, PeerIdentity>,
    binds: HashMap<Endpoint, AcceptStopHandle>,
}

impl Drop for PairSocket {
    fn drop(&mut self) {
        self.backend.shutdown();
    }
}

#[async_trait]
impl Socket for PairSocket {
    fn with_options(options: SocketOptions) -> Self {
        let mut fair_queue = FairQueue::new(true);
        let inner = Arc::new(GenericSocketBackend::with_options(
            Some(fair_queue.inner()),
            SocketType::PAIR,
            options,
        ));

        let inner_weak = Arc::downgrade(&inner);
        fair_queue.set_on_disconnect(move |peer_id: PeerIdentity| {
            if let Some(inner) = inner_weak.upgrade() {
                inner.peer_disconnected(&peer_id);
            }
        });

        Self {
            backend: Arc::new(PairSocketBackend {
                inner,
                admission: futures::lock::Mutex::new(()),
            }),
            reconnects: Reconnects::default(),
            fair_queue,
            binds: HashMap::new(),
        }
    }

    fn backend(&self) -> Arc<dyn MultiPeerBackend> {
        self.backend.clone()
    }

    fn binds(&mut self) -> &mut HashMap<Endpoint, AcceptStopHandle> {
        &mut self.binds
    }

    /// Connects with reconnection, as libzmq does; the peer is admitted
    /// through the PAIR's backend.
    async fn connect(&mut self, endpoint: &str) -> ZmqResult<()> {
        self.backend
            .inner
            .connect_as(self.backend.clone(), &mut self.reconnects, endpoint)
            .await
    }

    fn monitor(&mut self) -> mpsc::Receiver<SocketEvent> {
        let (sender, receiver) = mpsc::channel(1024);
        self.backend.inner.socket_monitor.lock().replace(sender);
        receiver
    }
}

#[async_trait]
impl SocketRecv for PairSocket {
    async fn recv(&mut self) -> ZmqResult<ZmqMessage> {
        loop {
            match self.fair_queue.next().await {
                Some((_peer_id, Ok(Message::Message(message)))) => return Ok(message),
                Some((_peer_id, Ok(_))) => {}
                Some((peer_id, Err(e))) => {
                    // The peer broke the protocol: it goes, and its place
                    // is free for the next one.
                    self.backend.peer_disconnected(&peer_id);
                    return Err(e.into());
                }
                None => return Err(ZmqError::NoMessage),
            }
        }
    }
}

#[async_trait]
impl SocketSend for PairSocket {
    async fn send(&mut self, message: ZmqMessage) -> ZmqResult<()> {
        self.backend
            .inner
            .send_round_robin(Message::Message(message))
            .await
    }
}

impl CaptureSocket for PairSocket {}
