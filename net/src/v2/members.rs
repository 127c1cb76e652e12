//! etcd's v2 members API (`/v2/members`): list, add, remove and update members, as JSON.

use hyper::Method;
use keel_core::api::error::Error;
use keel_core::api::request::{Member, MemberAddRequest, MemberChange, Request, Response};
use serde::Deserialize;
use serde_json::json;

use crate::backend::Backend;
use crate::http::Reply;

/// The body of a member add or update.
#[derive(Deserialize)]
struct PeerUrls {
    #[serde(rename = "peerURLs")]
    peer_urls: Vec<String>,
}

/// A member as etcd's v2 API shows it (ids in hex).
pub fn member_json(m: &Member) -> serde_json::Value {
    json!({
        "id": format!("{:x}", m.id),
        "name": m.name,
        "peerURLs": m.peer_urls,
        "clientURLs": m.client_urls,
    })
}

/// Route one `/v2/members[/<id>]` request. An added member's id is derived from its peer
/// URLs and the cluster `token` — as a founding member's is — so the new member, started with
/// those URLs and token, knows its id without asking.
pub async fn handle<B: Backend>(backend: &B, token: &str, method: &Method, path: &str, body: &[u8]) -> Reply {
    let rest = path.strip_prefix("/v2/members").unwrap_or("").trim_matches('/');
    let id = match rest {
        "" => None,
        hex => match u64::from_str_radix(hex, 16) {
            Ok(id) => Some(id),
            Err(_) => return error(404, &format!("No such member: {hex}")),
        },
    };
    match (method, id) {
        (&Method::GET, None) => {
            let members: Vec<_> = backend.status().members.iter().map(member_json).collect();
            Reply::json(200, &json!({ "members": members }))
        }
        (&Method::POST, None) => {
            let Some(urls) = peer_urls(body) else { return error(400, "bad request: expected {\"peerURLs\": [...]}") };
            let id = crate::ids::added_member_id(&urls, token, backend.status().applied_index);
            let add = MemberChange::Add(MemberAddRequest { id, peer_urls: urls, is_learner: false });
            match backend.call(Request::MemberChange(add)).await {
                Ok(Response::Member(r)) => match r.member {
                    Some(m) => Reply::json(201, &member_json(&m)),
                    None => error(500, "member added but not reported"),
                },
                Ok(_) => error(500, "unexpected response"),
                Err(e) => failure(e),
            }
        }
        (&Method::DELETE, Some(id)) => change(backend, MemberChange::Remove { id }).await,
        (&Method::PUT, Some(id)) => {
            let Some(peer_urls) = peer_urls(body) else {
                return error(400, "bad request: expected {\"peerURLs\": [...]}");
            };
            change(backend, MemberChange::Update { id, peer_urls }).await
        }
        _ => error(405, "Method Not Allowed"),
    }
}

fn peer_urls(body: &[u8]) -> Option<Vec<String>> {
    let urls: PeerUrls = serde_json::from_slice(body).ok()?;
    let valid = !urls.peer_urls.is_empty() && urls.peer_urls.iter().all(|u| crate::peer::host_port(u).is_some());
    valid.then_some(urls.peer_urls)
}

async fn change<B: Backend>(backend: &B, change: MemberChange) -> Reply {
    match backend.call(Request::MemberChange(change)).await {
        Ok(_) => Reply { status: 204, headers: vec![], body: vec![] },
        Err(e) => failure(e),
    }
}

fn failure(e: Error) -> Reply {
    let status = match e {
        Error::MemberNotFound => 404,
        Error::MemberExists | Error::Internal(_) => 409,
        Error::Timeout | Error::NoLeader | Error::NotLeader | Error::LeaderChanged => 503,
        _ => 500,
    };
    error(status, &e.to_string())
}

fn error(status: u16, message: &str) -> Reply {
    Reply::json(status, &json!({ "message": message }))
}
