//! The peer transport: Raft messages (and requests forwarded to the leader) between members
//! over long-lived TCP connections. Each peer has one outgoing connection with a bounded queue
//! — a slow or dead peer costs at most that queue, and Raft retransmits what is dropped — that
//! reconnects with backoff. Snapshots travel in chunks; the driver hears whether they arrived.

mod discovery;
mod frame;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use keel_core::api::auth::Caller;
use keel_core::api::error::Error;
use keel_core::api::request::{Request, Response};
use keel_core::node::OutMessage;
use parking_lot::Mutex;
use tokio::io::{AsyncWriteExt, BufWriter};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::tls::{Accept, Dial, Stream};

pub use discovery::{check_founding, discover_identity, JoinerIdentity};
pub use frame::{snapshot_chunks, Frame, FrameError, SnapshotAssembler, MAX_FRAME_BYTES};

/// How long an accepted peer connection may take to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Frames queued for one peer before new ones are dropped.
pub const PEER_QUEUE: usize = 4096;

/// What arrives from peers (or about them) for the member's driver.
#[derive(Debug)]
pub enum Inbound {
    /// An encoded Raft message from `from`.
    Raft { from: u64, bytes: Vec<u8> },
    /// A follower asks this member (as leader) to answer a request `caller` made.
    Forward { from: u64, id: u64, caller: Caller, request: Request },
    /// The leader's answer to a request this member forwarded.
    ForwardReply { id: u64, result: Result<Response, Error> },
    /// A message to `peer` could not be queued or sent.
    Unreachable { peer: u64 },
    /// A snapshot to `peer` was sent completely (`true`) or failed.
    SnapshotSent { peer: u64, ok: bool },
    /// Peer `from` says this member has been removed from the cluster.
    Removed { from: u64 },
}

/// One item in a peer's queue.
enum Outgoing {
    Frame(Frame),
    Snapshot(OutMessage),
}

struct Link {
    addr: String,
    queue: mpsc::Sender<Outgoing>,
    task: JoinHandle<()>,
}

/// The member's connections to its peers.
#[derive(Clone)]
pub struct PeerTransport {
    id: u64,
    cluster_id: u64,
    /// The peer URL this member takes connections at, told to every peer it calls.
    url: String,
    /// Peers told they were removed: never linked again from their own calls.
    departed: Arc<Mutex<BTreeSet<u64>>>,
    links: Arc<Mutex<BTreeMap<u64, Link>>>,
    inbound: mpsc::Sender<Inbound>,
    /// The cluster's members as this member last saw them, to tell joiners who they are.
    directory: Arc<Mutex<Directory>>,
    /// Plain TCP, or TLS for `https://` peer URLs, both ways.
    accept: Accept,
    dial: Dial,
}

impl PeerTransport {
    /// A transport for member `id` of cluster `cluster_id`, delivering what arrives to `inbound`.
    pub fn new(id: u64, cluster_id: u64, inbound: mpsc::Sender<Inbound>) -> Self {
        let links = Arc::new(Mutex::new(BTreeMap::new()));
        PeerTransport {
            id,
            cluster_id,
            url: String::new(),
            departed: Arc::default(),
            links,
            inbound,
            directory: Arc::default(),
            accept: Accept::default(),
            dial: Dial::default(),
        }
    }

    /// The same transport, taking and opening connections as `accept` and `dial` say (TLS for
    /// `https://` peer URLs). Set before any peer is added.
    pub fn with_tls(self, accept: Accept, dial: Dial) -> Self {
        PeerTransport { accept, dial, ..self }
    }

    /// The same transport, telling the peers it calls that it takes connections at `url`.
    pub fn advertising(self, url: &str) -> Self {
        PeerTransport { url: url.to_string(), ..self }
    }

    /// The cluster's members, each with its peer URLs, and those of them that have served
    /// clients (`started`), as of raft index `applied`: who a joiner or a founder may be.
    pub fn set_directory(&self, members: &[(u64, Vec<String>)], started: &[u64], applied: u64) {
        let members = members.iter().map(|(id, urls)| (*id, sorted(urls))).collect();
        *self.directory.lock() = Directory { applied, members, started: started.to_vec() };
    }

    /// The answer to a joiner with these peer URLs (id 0 if no member has them).
    fn identify(&self, peer_urls: &[String]) -> Frame {
        let wanted = sorted(peer_urls);
        let directory = self.directory.lock().clone();
        let id = directory.members.iter().find(|(_, urls)| *urls == wanted).map_or(0, |(id, _)| *id);
        let started = directory.started.contains(&id);
        Frame::YouAre { id, cluster_id: self.cluster_id, members: directory.members, started, as_of: directory.applied }
    }

    /// Accept peers' connections on `listener` (in a background task).
    pub fn serve(&self, listener: TcpListener) -> JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((tcp, _)) => {
                        let this = this.clone();
                        tokio::spawn(async move {
                            match tokio::time::timeout(HANDSHAKE_TIMEOUT, this.accept.accept(tcp)).await {
                                Ok(Ok((stream, _))) => this.read_connection(stream).await,
                                Ok(Err(e)) => tracing::warn!("peer connection refused: {e}"),
                                Err(_) => tracing::warn!("peer connection refused: no TLS handshake in time"),
                            }
                        });
                    }
                    Err(e) => {
                        tracing::warn!("peer listener: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        })
    }

    async fn read_connection(&self, stream: Stream) {
        let mut stream = tokio::io::BufReader::new(stream);
        let from = match Frame::read(&mut stream).await {
            // 0 is a member joining an existing cluster, which cannot know the id yet.
            Ok(Some(Frame::Hello { from, cluster_id, peer_url }))
                if cluster_id == self.cluster_id || cluster_id == 0 || self.cluster_id == 0 =>
            {
                self.learn_peer(from, &peer_url);
                from
            }
            Ok(Some(Frame::Hello { from, cluster_id, .. })) => {
                tracing::warn!("peer {from:x} belongs to cluster {cluster_id:x}, not ours; closing");
                return;
            }
            // Another release's frames, or garbage: worth an operator's look.
            Err(e @ (FrameError::Malformed(_) | FrameError::TooLarge(_))) => {
                tracing::warn!("peer connection refused: {e}");
                return;
            }
            _ => return,
        };
        let mut snapshot = SnapshotAssembler::default();
        loop {
            let frame = match Frame::read(&mut stream).await {
                Ok(Some(f)) => f,
                Ok(None) => return,
                Err(e) => {
                    tracing::debug!("peer {from:x}: {e}");
                    return;
                }
            };
            let inbound = match frame {
                Frame::Raft(bytes) => Inbound::Raft { from, bytes },
                Frame::SnapshotChunk { total, offset, data } => match snapshot.add(total, offset, data) {
                    Ok(Some(bytes)) => Inbound::Raft { from, bytes },
                    Ok(None) => continue,
                    Err(e) => {
                        tracing::warn!("peer {from:x}: {e}");
                        return;
                    }
                },
                Frame::Forward { id, request } => Inbound::Forward { from, id, caller: Caller::Anonymous, request },
                Frame::ForwardAs { id, caller, request } => Inbound::Forward { from, id, caller, request },
                Frame::ForwardReply { id, result } => Inbound::ForwardReply { id, result },
                Frame::Removed { member } if member == self.id => Inbound::Removed { from },
                // Meant for a removed member that listened at this address before us.
                Frame::Removed { .. } => continue,
                Frame::WhoAmI { peer_urls } => {
                    let answer = self.identify(&peer_urls);
                    // Flushed: simulated streams (madsim) send only on flush.
                    let stream = stream.get_mut();
                    if answer.write(stream).await.is_err() || stream.flush().await.is_err() {
                        return;
                    }
                    continue;
                }
                Frame::Hello { .. } | Frame::YouAre { .. } => continue,
            };
            if self.inbound.send(inbound).await.is_err() {
                return;
            }
        }
    }

    /// A peer that called us from `url` can be answered there, even before this member knows it
    /// from the membership (it may lag behind the peer's addition while that peer leads, and
    /// could never catch up if it could not answer). The membership's address, once known,
    /// stays the one used.
    /// Members that left (ids are never reused) are not learned again, nor an address of
    /// another scheme than this member's own (an https cluster never dials plain http).
    fn learn_peer(&self, id: u64, url: &str) {
        let same_scheme = url.split("://").next() == self.url.split("://").next();
        if id != 0 && same_scheme && host_port(url).is_some() && !self.departed.lock().contains(&id) {
            self.link(id, url, false);
        }
    }

    /// Point peer `id` at `url` (`http://host:port`); a changed address restarts the link.
    pub fn set_peer(&self, id: u64, url: &str) {
        self.link(id, url, true);
    }

    /// Link to peer `id` at `url`, replacing a link elsewhere only if `replace` (checked and
    /// done under one lock, so a learned address never overrides the membership's).
    fn link(&self, id: u64, url: &str, replace: bool) {
        if id == self.id {
            return;
        }
        let Some(addr) = host_port(url) else {
            tracing::warn!("peer {id:x}: cannot use URL {url:?}");
            return;
        };
        let mut links = self.links.lock();
        if links.get(&id).is_some_and(|l| l.addr == addr || !replace) {
            return;
        }
        if let Some(old) = links.remove(&id) {
            old.task.abort();
        }
        let (queue, rx) = mpsc::channel(PEER_QUEUE);
        let hello = Frame::Hello { from: self.id, cluster_id: self.cluster_id, peer_url: self.url.clone() };
        let task = tokio::spawn(run_link(hello, id, addr.clone(), self.dial.for_url(url), rx, self.inbound.clone()));
        links.insert(id, Link { addr, queue, task });
    }

    /// Tell a departed peer it was removed, then forget it once the link had time to send.
    pub fn farewell(&self, id: u64) {
        self.departed.lock().insert(id);
        self.send_frame(id, Frame::Removed { member: id });
        let this = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(2)).await;
            this.remove_peer(id);
        });
    }

    /// Forget a peer (it left the cluster).
    pub fn remove_peer(&self, id: u64) {
        if let Some(old) = self.links.lock().remove(&id) {
            old.task.abort();
        }
    }

    /// Ids of the peers this member has links to.
    pub fn peers(&self) -> Vec<u64> {
        self.links.lock().keys().copied().collect()
    }

    /// Queue a Raft message (snapshots are chunked). Returns false when it had to be dropped.
    pub fn send_raft(&self, message: OutMessage) -> bool {
        let to = message.to;
        let item = match message.is_snapshot() {
            true => Outgoing::Snapshot(message),
            false => Outgoing::Frame(Frame::Raft(message.bytes)),
        };
        self.enqueue(to, item)
    }

    /// Queue a forwarded request or reply for peer `to`.
    pub fn send_frame(&self, to: u64, frame: Frame) -> bool {
        self.enqueue(to, Outgoing::Frame(frame))
    }

    fn enqueue(&self, to: u64, item: Outgoing) -> bool {
        let queued = self.links.lock().get(&to).is_some_and(|l| l.queue.try_send(item).is_ok());
        if !queued {
            let _ = self.inbound.try_send(Inbound::Unreachable { peer: to });
        }
        queued
    }
}

/// Every member's id and (sorted) peer URLs, and which have served clients, as of a raft index.
#[derive(Clone, Debug, Default)]
struct Directory {
    applied: u64,
    members: Vec<(u64, Vec<String>)>,
    started: Vec<u64>,
}

fn sorted(urls: &[String]) -> Vec<String> {
    let mut urls = urls.to_vec();
    urls.sort();
    urls
}

/// Keep one outgoing connection to `peer` alive and write its queue into it, each connection
/// opening with `hello` (who this member is).
async fn run_link(
    hello: Frame,
    peer: u64,
    addr: String,
    dial: Dial,
    mut rx: mpsc::Receiver<Outgoing>,
    inbound: mpsc::Sender<Inbound>,
) {
    let mut backoff = Duration::from_millis(20);
    loop {
        let stream = match tokio::time::timeout(Duration::from_secs(1), dial.connect(&addr)).await {
            Ok(Ok(s)) => s,
            _ => {
                let _ = inbound.try_send(Inbound::Unreachable { peer });
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        backoff = Duration::from_millis(20);
        let mut w = BufWriter::new(stream);
        if hello.write(&mut w).await.is_err() {
            continue;
        }
        // A frame whose write fails is dropped, never sent again on the next connection (the
        // peer may have read it): Raft retransmits what matters, and nothing arrives twice.
        loop {
            let Some(item) = rx.recv().await else { return };
            let written = match &item {
                Outgoing::Frame(f) => f.write(&mut w).await,
                Outgoing::Snapshot(message) => write_snapshot(&mut w, message).await,
            };
            // Flush when the queue is drained, so bursts share one syscall.
            let flushed = match written {
                Ok(()) if rx.is_empty() => w.flush().await,
                other => other,
            };
            let is_snapshot = matches!(item, Outgoing::Snapshot(_));
            if flushed.is_err() {
                if is_snapshot {
                    let _ = inbound.try_send(Inbound::SnapshotSent { peer, ok: false });
                }
                let _ = inbound.try_send(Inbound::Unreachable { peer });
                break;
            }
            if is_snapshot {
                let _ = inbound.try_send(Inbound::SnapshotSent { peer, ok: true });
            }
        }
    }
}

async fn write_snapshot<W: tokio::io::AsyncWrite + Unpin>(w: &mut W, message: &OutMessage) -> std::io::Result<()> {
    for chunk in snapshot_chunks(&message.parts()) {
        chunk.write(w).await?;
    }
    w.flush().await
}

/// `host:port` of an `http://host:port[/...]` URL (one definition, keel-client's).
pub use keel_client::endpoint::host_port;

#[cfg(test)]
mod tests {
    use super::*;
    use keel_core::node::SnapshotPayload;

    /// A plain Raft message of `bytes` for `to`.
    fn message(to: u64, bytes: Vec<u8>) -> OutMessage {
        OutMessage { to, bytes, payload: None }
    }

    #[tokio::test]
    async fn two_transports_exchange_messages_and_forwards_and_snapshots() {
        let (tx1, mut rx1) = mpsc::channel(64);
        let (tx2, mut rx2) = mpsc::channel(64);
        let t1 = PeerTransport::new(1, 5, tx1);
        let t2 = PeerTransport::new(2, 5, tx2);
        let l1 = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let l2 = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (a1, a2) = (l1.local_addr().unwrap(), l2.local_addr().unwrap());
        t1.serve(l1);
        t2.serve(l2);
        t1.set_peer(2, &format!("http://{a2}"));
        t2.set_peer(1, &format!("http://{a1}"));
        assert!(t1.send_raft(message(2, vec![1, 2, 3])));
        let big: Vec<u8> = (0..3_000_000u32).map(|i| i as u8).collect();
        let payload = SnapshotPayload {
            data: std::sync::Arc::new(big[5..2_999_990].to_vec()),
            trailer: big[2_999_990..].to_vec(),
        };
        assert!(t1.send_raft(OutMessage { to: 2, bytes: big[..5].to_vec(), payload: Some(payload) }));
        assert!(t2.send_frame(1, Frame::ForwardAs { id: 9, caller: Caller::Anonymous, request: Request::LeaseLeases }));
        let mut got = Vec::new();
        while got.len() < 2 {
            if let Inbound::Raft { from, bytes } = rx2.recv().await.unwrap() {
                got.push((from, bytes));
            }
        }
        assert_eq!(got, vec![(1, vec![1, 2, 3]), (1, big)]);
        loop {
            match rx1.recv().await.unwrap() {
                Inbound::Forward { from: 2, id: 9, caller: Caller::Anonymous, request: Request::LeaseLeases } => break,
                Inbound::SnapshotSent { peer: 2, ok } => assert!(ok),
                _ => {}
            }
        }
    }

    #[tokio::test]
    async fn a_member_answers_a_caller_it_does_not_know_yet() {
        let (tx1, mut rx1) = mpsc::channel(64);
        let (tx2, mut rx2) = mpsc::channel(64);
        let l1 = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let l2 = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (u1, u2) = (format!("http://{}", l1.local_addr().unwrap()), format!("http://{}", l2.local_addr().unwrap()));
        // Member 1 (say, a new leader) knows member 2; member 2 has not heard of member 1.
        let t1 = PeerTransport::new(1, 5, tx1).advertising(&u1);
        let t2 = PeerTransport::new(2, 5, tx2).advertising(&u2);
        t1.serve(l1);
        t2.serve(l2);
        t1.set_peer(2, &u2);
        assert!(t1.send_raft(message(2, vec![1])));
        assert!(matches!(rx2.recv().await, Some(Inbound::Raft { from: 1, .. })));
        assert!(t2.send_raft(message(1, vec![2])), "member 2 can answer");
        loop {
            if let Inbound::Raft { from, bytes } = rx1.recv().await.unwrap() {
                assert_eq!((from, bytes), (2, vec![2]));
                break;
            }
        }
    }

    #[tokio::test]
    async fn a_peer_of_another_cluster_is_refused() {
        let (tx1, _rx1) = mpsc::channel(64);
        let (tx2, mut rx2) = mpsc::channel(64);
        let t1 = PeerTransport::new(1, 5, tx1);
        let t2 = PeerTransport::new(2, 6, tx2);
        let l2 = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let a2 = l2.local_addr().unwrap();
        t2.serve(l2);
        t1.set_peer(2, &format!("http://{a2}"));
        t1.send_raft(message(2, vec![1]));
        let got = tokio::time::timeout(Duration::from_millis(300), rx2.recv()).await;
        assert!(got.is_err(), "a foreign cluster's message was delivered");
    }

    #[tokio::test]
    async fn word_of_a_removal_reaches_only_the_member_removed() {
        let (tx1, _rx1) = mpsc::channel(64);
        let (tx2, mut rx2) = mpsc::channel(64);
        let t1 = PeerTransport::new(1, 5, tx1);
        let t2 = PeerTransport::new(2, 5, tx2);
        let l2 = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let a2 = l2.local_addr().unwrap();
        t2.serve(l2);
        // Member 3 listened at member 2's address before it was removed.
        t1.set_peer(3, &format!("http://{a2}"));
        t1.farewell(3);
        let got = tokio::time::timeout(Duration::from_millis(300), rx2.recv()).await;
        assert!(got.is_err(), "member 2 took member 3's removal for its own: {got:?}");
        t1.set_peer(2, &format!("http://{a2}"));
        t1.farewell(2);
        assert!(matches!(rx2.recv().await, Some(Inbound::Removed { from: 1 })));
    }
}
