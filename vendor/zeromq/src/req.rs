use crate::backend::DisconnectNotifier;
use crate::codec::*;
use crate::reconnect::{connect_with_reconnect, Reconnects, RegisterDisconnectFn};
use crate::endpoint::Endpoint;
use crate::error::*;
use crate::transport::AcceptStopHandle;
use crate::util::{Peer, PeerIdentity};
use crate::*;
use crate::{SocketType, ZmqResult};

use async_trait::async_trait;
use bytes::Bytes;
use crossbeam_queue::SegQueue;
use futures::{FutureExt, SinkExt, StreamExt};

use std::collections::HashMap;
use std::sync::Arc;

struct ReqSocketBackend {
    pub(crate) peers: scc::HashMap<PeerIdentity, Peer>,
    pub(crate) round_robin: SegQueue<PeerIdentity>,
    socket_monitor: Mutex<Option<mpsc::Sender<SocketEvent>>>,
    socket_options: Arc<SocketOptions>,
    /// (Patched) Notifiers of reconnection tasks, keyed by `peer_id`.
    disconnect_notifiers: Mutex<HashMap<PeerIdentity, DisconnectNotifier>>,
}

pub struct ReqSocket {
    backend: Arc<ReqSocketBackend>,
    current_request: Option<PeerIdentity>,
    binds: HashMap<Endpoint, AcceptStopHandle>,
    reconnects: Reconnects,
}

impl Drop for ReqSocket {
    fn drop(&mut self) {
        self.backend.shutdown();
    }
}

#[async_trait]
impl SocketSend for ReqSocket {
    async fn send(&mut self, mut message: ZmqMessage) -> ZmqResult<()> {
        if self.current_request.is_some() {
            return Err(ZmqError::ReturnToSender {
                reason: "Unable to send message. Request already in progress",
                message,
            });
        }
        // In normal scenario this will always be only 1 iteration
        // There can be special case when peer has disconnected and his id is still in
        // RR queue This happens because SegQueue don't have an api to delete
        // items from queue. So in such case we'll just pop item and skip it if
        // we don't have a matching peer in peers map
        loop {
            let next_peer_id = match self.backend.round_robin.pop() {
                Some(peer) => peer,
                None => {
                    return Err(ZmqError::ReturnToSender {
                        reason: "Not connected to peers. Unable to send messages",
                        message,
                    })
                }
            };
            if let Some(mut peer) = self.backend.peers.get_async(&next_peer_id).await {
                // (Patched) A server that went away since the last request
                // has left an end of stream in its read half: drop it and
                // take the next one, instead of sending it a request that
                // can never be answered. (Nothing else is pending there:
                // a REQ reads from a server only while waiting for its reply.)
                if let Some(None | Some(Err(_))) = peer.recv_queue.next().now_or_never() {
                    drop(peer);
                    self.backend.peer_disconnected(&next_peer_id);
                    continue;
                }
                self.backend.round_robin.push(next_peer_id.clone());
                message.push_front(Bytes::new());
                let sent = peer.send_queue.send(Message::Message(message)).await;
                drop(peer);
                if let Err(e) = sent {
                    self.backend.peer_disconnected(&next_peer_id);
                    return Err(e.into());
                }
                self.current_request = Some(next_peer_id);
                return Ok(());
            }
        }
    }
}

#[async_trait]
impl SocketRecv for ReqSocket {
    async fn recv(&mut self) -> ZmqResult<ZmqMessage> {
        let peer_id = match self.current_request.clone() {
            Some(peer_id) => peer_id,
            None => return Err(ZmqError::Other("Unable to recv. No request in progress")),
        };

        let Some(mut peer) = self.backend.peers.get_async(&peer_id).await else {
            self.current_request = None;
            return Err(ZmqError::Other("Server disconnected"));
        };

        let received = peer.recv_queue.next().await;
        drop(peer);
        // (Patched) The server went away: forget it (its reconnection task,
        // if it was connected to, brings it back).
        if let None | Some(Err(_)) = received {
            self.backend.peer_disconnected(&peer_id);
        }
        let result = match received {
            Some(Ok(Message::Message(mut m))) => {
                if m.len() < 2 {
                    Err(ZmqError::Other("Invalid message format: too few frames"))
                } else if !m.pop_front().unwrap().is_empty() {
                    Err(ZmqError::Other("Invalid message format: missing delimiter"))
                } else {
                    Ok(m)
                }
            }
            Some(Ok(_)) => {
                // Non-message frames should be ignored by the caller
                Err(ZmqError::Other("Received non-message frame"))
            }
            Some(Err(error)) => Err(error.into()),
            None => Err(ZmqError::NoMessage),
        };

        self.current_request = None;
        result
    }
}

#[async_trait]
impl Socket for ReqSocket {
    fn with_options(options: SocketOptions) -> Self {
        Self {
            backend: Arc::new(ReqSocketBackend {
                peers: scc::HashMap::new(),
                round_robin: SegQueue::new(),
                socket_monitor: Mutex::new(None),
                socket_options: Arc::new(options),
                disconnect_notifiers: Mutex::new(HashMap::new()),
            }),
            current_request: None,
            binds: HashMap::new(),
            reconnects: Reconnects::default(),
        }
    }

    fn backend(&self) -> Arc<dyn MultiPeerBackend> {
        self.backend.clone()
    }

    fn binds(&mut self) -> &mut HashMap<Endpoint, AcceptStopHandle> {
        &mut self.binds
    }

    /// (Patched) Connects with reconnection, as libzmq does.
    async fn connect(&mut self, endpoint: &str) -> ZmqResult<()> {
        let backend = self.backend.clone();
        let register: RegisterDisconnectFn = Box::new(move |peer_id, notifier| {
            backend.disconnect_notifiers.lock().insert(peer_id, notifier);
        });
        connect_with_reconnect(self.backend.clone(), register, &mut self.reconnects.0, endpoint)
            .await
    }

    fn monitor(&mut self) -> mpsc::Receiver<SocketEvent> {
        let (sender, receiver) = mpsc::channel(1024);
        self.backend.socket_monitor.lock().replace(sender);
        receiver
    }
}

#[async_trait]
impl MultiPeerBackend for ReqSocketBackend {
    async fn peer_connected(self: Arc<Self>, peer_id: &PeerIdentity, io: FramedIo) {
        let (recv_queue, send_queue) = io.into_parts();
        self.peers
            .upsert_async(
                peer_id.clone(),
                Peer {
                    _identity: peer_id.clone(),
                    send_queue,
                    recv_queue,
                },
            )
            .await;
        self.round_robin.push(peer_id.clone());
    }

    fn peer_disconnected(&self, peer_id: &PeerIdentity) {
        // (Patched) Also tell the monitor and the reconnection task.
        if self.peers.remove_sync(peer_id).is_some() {
            if let Some(monitor) = self.socket_monitor.lock().as_mut() {
                let _ = monitor.try_send(SocketEvent::Disconnected(peer_id.clone()));
            }
        }
        if let Some(mut notifier) = self.disconnect_notifiers.lock().remove(peer_id) {
            let _ = notifier.try_send(peer_id.clone());
        }
    }
}

impl SocketBackend for ReqSocketBackend {
    fn socket_type(&self) -> SocketType {
        SocketType::REQ
    }

    fn socket_options(&self) -> &Arc<SocketOptions> {
        &self.socket_options
    }

    fn shutdown(&self) {
        self.peers.clear_sync();
    }

    fn monitor(&self) -> &Mutex<Option<mpsc::Sender<SocketEvent>>> {
        &self.socket_monitor
    }
}
