//! The Watch service: one bidirectional stream carries many watchers. The stream's task reads
//! create, cancel and progress requests; each watcher gets a task that forwards the member's
//! watch responses under the stream's own `watch_id`s (assigned from 0 as etcd does, or chosen
//! by the client).

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;

use futures_util::{Stream, StreamExt};
use keel_core::api::error::Error;
use keel_core::state::watch::WatchResponse as CoreWatchResponse;
use prost::Message;
use tokio::sync::{mpsc, oneshot};
use tonic::{Request as Call, Response as Reply, Status, Streaming};

use super::auth::as_caller;
use super::pb::etcdserverpb as pb;
use super::{channel_stream, convert, local_header, ReplyStream};
use crate::backend::{Backend, WatchStream};

/// Responses larger than this are split when the watcher asked for fragments (etcd's default
/// `--max-request-bytes`).
pub const MAX_RESPONSE_BYTES: usize = 1536 * 1024;

/// etcd's `Watch` service over a member.
pub struct WatchService<B> {
    pub backend: B,
}

/// Where a watch stream's responses go.
pub type Outgoing = mpsc::Sender<Result<pb::WatchResponse, Status>>;

#[tonic::async_trait]
impl<B: Backend> pb::watch_server::Watch for WatchService<B> {
    type WatchStream = ReplyStream<pb::WatchResponse>;

    async fn watch(&self, req: Call<Streaming<pb::WatchRequest>>) -> Result<Reply<Self::WatchStream>, Status> {
        let (tx, rx) = mpsc::channel(64);
        let backend = as_caller(&self.backend, &req);
        tokio::spawn(serve_stream(backend, req.into_inner(), tx));
        Ok(Reply::new(channel_stream(rx)))
    }
}

/// One watch stream, until the client closes it (either side); dropping `watchers` then
/// stops every watcher. `incoming` is a gRPC stream or the JSON gateway's requests.
pub async fn serve_stream<B, S>(backend: B, mut incoming: S, tx: Outgoing)
where
    B: Backend,
    S: Stream<Item = Result<pb::WatchRequest, Status>> + Unpin + Send,
{
    use pb::watch_request::RequestUnion;
    let mut watchers: BTreeMap<i64, oneshot::Sender<()>> = BTreeMap::new();
    let mut next_id = 0;
    loop {
        let next = tokio::select! {
            biased;
            _ = tx.closed() => return,
            next = incoming.next() => next,
        };
        let request = match next {
            Some(Ok(req)) => req.request_union,
            None | Some(Err(_)) => return,
        };
        let header = local_header(&backend.status());
        let reply = match request {
            Some(RequestUnion::CreateRequest(create)) => {
                let id = if create.watch_id != 0 {
                    create.watch_id
                } else {
                    while watchers.contains_key(&next_id) {
                        next_id += 1;
                    }
                    next_id
                };
                match watchers.entry(id) {
                    Entry::Occupied(_) => refused(&header, id, "mvcc: duplicate watch ID provided on the WatchStream"),
                    Entry::Vacant(slot) => {
                        let fragment = create.fragment;
                        match backend.watch(convert::watch_create(create)).await {
                            Ok(stream) => {
                                let (cancel, canceled) = oneshot::channel();
                                slot.insert(cancel);
                                tokio::spawn(forward(stream, id, fragment, header, canceled, tx.clone()));
                                continue;
                            }
                            // etcd refuses a forbidden watch under id -1, keeping the id free.
                            Err(Error::PermissionDenied) => refused(&header, -1, &Error::PermissionDenied.to_string()),
                            Err(e) => refused(&header, id, &e.to_string()),
                        }
                    }
                }
            }
            Some(RequestUnion::CancelRequest(cancel)) => {
                // Canceling a watcher this stream does not have is answered with nothing, as on etcd.
                if watchers.remove(&cancel.watch_id).is_none() {
                    continue;
                }
                pb::WatchResponse {
                    header: convert::header(&header),
                    watch_id: cancel.watch_id,
                    canceled: true,
                    ..Default::default()
                }
            }
            Some(RequestUnion::ProgressRequest(_)) => {
                // Not tied to one watcher: etcd sends it with watch_id -1 to every watcher.
                pb::WatchResponse { header: convert::header(&header), watch_id: -1, ..Default::default() }
            }
            None => continue,
        };
        if tx.send(Ok(reply)).await.is_err() {
            return;
        }
    }
}

/// A watcher that could not be created: created and canceled at once, with the reason.
fn refused(header: &keel_core::api::request::ResponseHeader, id: i64, reason: &str) -> pb::WatchResponse {
    pb::WatchResponse {
        header: convert::header(header),
        watch_id: id,
        created: true,
        canceled: true,
        cancel_reason: reason.to_string(),
        ..Default::default()
    }
}

/// Forward one watcher's responses until it is canceled (by request or by the stream ending)
/// or the member ends it. Dropping `stream` cancels the watcher on the member.
async fn forward(
    mut stream: WatchStream,
    id: i64,
    fragment: bool,
    header: keel_core::api::request::ResponseHeader,
    mut canceled: oneshot::Receiver<()>,
    tx: Outgoing,
) {
    loop {
        let next: Option<CoreWatchResponse> = tokio::select! {
            biased;
            _ = &mut canceled => return,
            next = stream.events.recv() => next,
        };
        let Some(response) = next else { return };
        let response = convert::watch_response(response, id, header.clone());
        for piece in fragments(response, fragment) {
            if tx.send(Ok(piece)).await.is_err() {
                return;
            }
        }
    }
}

/// Split `response` into pieces of at most [`MAX_RESPONSE_BYTES`] when the watcher allows it:
/// every piece but the last has `fragment` set, as etcd's clients reassemble them.
pub fn fragments(mut response: pb::WatchResponse, allowed: bool) -> Vec<pb::WatchResponse> {
    if !allowed || response.encoded_len() <= MAX_RESPONSE_BYTES || response.events.len() < 2 {
        return vec![response];
    }
    let events = std::mem::take(&mut response.events);
    let shell = response;
    let base = shell.encoded_len();
    let mut pieces = Vec::new();
    let mut current = shell.clone();
    let mut size = base;
    for event in events {
        // An event's bytes plus its field tag and length prefix.
        let len = event.encoded_len() + 8;
        if !current.events.is_empty() && size + len > MAX_RESPONSE_BYTES {
            pieces.push(std::mem::replace(&mut current, shell.clone()));
            size = base;
        }
        size += len;
        current.events.push(event);
    }
    pieces.push(current);
    let last = pieces.len() - 1;
    for (i, piece) in pieces.iter_mut().enumerate() {
        piece.fragment = i < last;
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v3::pb::mvccpb;

    fn big_event(n: u8) -> mvccpb::Event {
        let kv = mvccpb::KeyValue { key: vec![n], value: vec![n; 700 * 1024], ..Default::default() };
        mvccpb::Event { kv: Some(kv), ..Default::default() }
    }

    #[test]
    fn large_responses_are_fragmented_only_when_asked() {
        let response = pb::WatchResponse { watch_id: 3, events: (0..5).map(big_event).collect(), ..Default::default() };
        assert_eq!(fragments(response.clone(), false).len(), 1);
        let pieces = fragments(response.clone(), true);
        assert!(pieces.len() >= 3, "{} pieces", pieces.len());
        assert!(pieces.iter().all(|p| p.encoded_len() <= MAX_RESPONSE_BYTES && p.watch_id == 3));
        let flags: Vec<bool> = pieces.iter().map(|p| p.fragment).collect();
        assert_eq!(flags.last(), Some(&false));
        assert!(flags[..flags.len() - 1].iter().all(|f| *f));
        let events: Vec<_> = pieces.into_iter().flat_map(|p| p.events).collect();
        assert_eq!(events, response.events, "every event, in order");
    }
}
