//! Target `v2_http`: the client port's HTTP API without gRPC (v2 keys, members, stats,
//! `/health`, `/version`, `/metrics`, and the v3 gateway's paths), called in process on a
//! one-member cluster with arbitrary methods, paths, query strings and bodies. Every request
//! gets a well-formed answer: a real status, and on the keys API a JSON body (etcd's
//! `{"errorCode","message","cause","index"}` for an error; only a 405 is plain text).

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::{Method, Uri};
use keel_net::http::{answer, Api};
use keel_net::local::LocalBackend;
use keel_net::metrics::Metrics;

use crate::exec::Exec;

/// Requests per input.
const MAX_REQUESTS: usize = 24;

/// The target's body. The input is text: requests separated by NUL bytes, each a request line
/// `METHOD /path?query`, then a newline and the body; `TICK n` lets n ticks (100 ms each) of
/// simulated time pass, so TTLs expire.
pub fn run(data: &[u8]) {
    let backend = LocalBackend::new();
    let api = Api::new(backend.clone(), Metrics::new(), true, "etcd-cluster".into());
    let exec = Exec::new();
    for raw in data.split(|b| *b == 0).take(MAX_REQUESTS) {
        let (line, body) = match raw.iter().position(|b| *b == b'\n') {
            Some(i) => (&raw[..i], &raw[i + 1..]),
            None => (raw, &[][..]),
        };
        let line = String::from_utf8_lossy(line);
        let (method, target) = line.split_once(' ').unwrap_or((&line, "/"));
        if method == "TICK" {
            backend.tick(target.trim().parse::<u64>().unwrap_or(1) % 1000);
            continue;
        }
        // hyper refuses a request line with a method or target like these before any handler
        // sees it.
        let (Ok(method), Ok(uri)) = (Method::from_bytes(method.as_bytes()), target.parse::<Uri>()) else { continue };
        request(&exec, &api, method, uri, Bytes::copy_from_slice(body));
    }
}

fn request(exec: &Exec, api: &Api<LocalBackend>, method: Method, uri: Uri, body: Bytes) {
    let mut head = hyper::Request::new(());
    *head.method_mut() = method.clone();
    *head.uri_mut() = uri.clone();
    let (parts, ()) = head.into_parts();
    let Some(response) = exec.settle(answer(api, &parts, body)) else { return };
    let status = response.status().as_u16();
    assert!((100..600).contains(&status), "{status}");
    let gateway = keel_net::v3::gateway::call_name(uri.path()).is_some();
    let body = match exec.settle(response.into_body().collect()) {
        Some(Ok(body)) => body.to_bytes(),
        // The gateway's streaming calls (watch, keep-alive, observe) answer for as long as the
        // client stays; everything else is answered whole at once.
        None if gateway => return,
        other => panic!("{method} {uri}: the answer's body did not arrive whole: {:?}", other.map(|r| r.map(|_| ()))),
    };
    let keys = uri.path() == "/v2/keys" || uri.path().starts_with("/v2/keys/");
    if keys && status != 405 {
        let json: serde_json::Value = serde_json::from_slice(&body)
            .unwrap_or_else(|e| panic!("{method} {uri}: status {status} with a body that is not JSON ({e}): {body:?}"));
        if status >= 400 {
            assert!(
                json["errorCode"].is_u64() && json["message"].is_string() && json["index"].is_u64(),
                "{method} {uri}: {json}"
            );
        } else {
            assert!(json["action"].is_string(), "{method} {uri}: {json}");
        }
    }
    if gateway && status >= 400 && &body[..] != b"Not Found\n" {
        let json: serde_json::Value = serde_json::from_slice(&body).expect("the gateway's errors are JSON");
        assert!(json["code"].is_u64() && json["message"].is_string(), "{uri}: {json}");
    }
}
