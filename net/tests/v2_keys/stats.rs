//! `/v2/stats/store`: every store operation counted by success and failure, as etcd names
//! them, key expiries counted, and requests that never reach the store left out.

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::{Method, Uri};
use keel_net::http::{answer, Api};
use keel_net::metrics::Metrics;

use crate::LocalBackend;

async fn send(api: &Api<LocalBackend>, method: Method, uri: &str, form: &str) -> (u16, serde_json::Value) {
    let uri: Uri = uri.parse().unwrap();
    let (parts, ()) = hyper::Request::builder().method(method).uri(uri).body(()).unwrap().into_parts();
    let response = answer(api, &parts, Bytes::from(form.to_owned())).await;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null))
}

#[tokio::test]
async fn store_stats_count_each_operation_by_outcome() {
    let api = Api::new(LocalBackend::new(), Metrics::new(), true, "t".into());
    let ops: [(Method, &str, &str, u16); 14] = [
        (Method::PUT, "/v2/keys/a", "value=1", 201),                   // set
        (Method::PUT, "/v2/keys/a", "value=2&prevExist=false", 412),   // create, failed
        (Method::POST, "/v2/keys/q", "value=job", 201),                // create
        (Method::PUT, "/v2/keys/a", "value=3&prevExist=true", 200),    // update
        (Method::PUT, "/v2/keys/nope", "value=3&prevExist=true", 404), // update, failed
        (Method::PUT, "/v2/keys/a", "value=4&prevValue=3", 200),       // compare-and-swap
        (Method::PUT, "/v2/keys/a", "value=5&prevValue=zzz", 412),     // compare-and-swap, failed
        (Method::GET, "/v2/keys/a", "", 200),                          // get
        (Method::GET, "/v2/keys/nope", "", 404),                       // get, failed
        (Method::DELETE, "/v2/keys/a?prevValue=zzz", "", 412),         // compare-and-delete, failed
        (Method::DELETE, "/v2/keys/a?prevValue=4", "", 200),           // compare-and-delete
        (Method::DELETE, "/v2/keys/a", "", 404),                       // delete, failed
        (Method::PUT, "/v2/keys/a?ttl=abc", "", 400),                  // refused before the store
        (Method::GET, "/v2/keys/q?wait=true&waitIndex=1&recursive=true", "", 200), // a watch
    ];
    for (method, uri, form, status) in ops {
        let (got, body) = send(&api, method.clone(), uri, form).await;
        assert_eq!(got, status, "{method} {uri} {form}: {body}");
    }
    let (_, body) = send(&api, Method::PUT, "/v2/keys/t", "value=x&ttl=1").await;
    assert_eq!(body["action"], "set");
    api.backend.tick(100);
    let (status, stats) = send(&api, Method::GET, "/v2/stats/store", "").await;
    assert_eq!(status, 200);
    let expected = serde_json::json!({
        "getsSuccess": 1, "getsFail": 1,
        "setsSuccess": 2, "setsFail": 0,
        "deleteSuccess": 0, "deleteFail": 1,
        "updateSuccess": 1, "updateFail": 1,
        "createSuccess": 1, "createFail": 1,
        "compareAndSwapSuccess": 1, "compareAndSwapFail": 1,
        "compareAndDeleteSuccess": 1, "compareAndDeleteFail": 1,
        "expireCount": 1,
        "watchers": 0,
    });
    assert_eq!(stats, expected);
}
