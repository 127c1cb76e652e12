//! Malformed requests: etcd's codes and texts, and no panic on anything.

use crate::{expect, get, put, req, LocalBackend};

#[tokio::test]
async fn bad_numbers_and_fields() {
    let b = LocalBackend::new();
    expect(&get(&b, "/k", "wait=true&waitIndex=abc").await, 400, "{\"errorCode\":203,\"message\":\"The given index in POST form is not a number\",\"cause\":\"invalid value for \\\"waitIndex\\\"\",\"index\":0}\n");
    assert_eq!(put(&b, "/k", "value=1&prevIndex=-1").await.code(), 203);
    assert_eq!(put(&b, "/k", "value=1&prevIndex=99999999999999999999").await.code(), 203);
    expect(&get(&b, "/k", "recursive=maybe").await, 400, "{\"errorCode\":209,\"message\":\"Invalid field\",\"cause\":\"invalid value for \\\"recursive\\\"\",\"index\":0}\n");
    assert_eq!(get(&b, "/k", "sorted").await.code(), 209);
    assert_eq!(put(&b, "/k", "value=1&prevExist=sure").await.json["cause"], "invalid value for prevExist");
    assert_eq!(put(&b, "/k", "value=1&prevValue=").await.code(), 201);
    assert_eq!(
        req(&b, "PUT", "/k", "wait=true", "value=1").await.json["cause"],
        "\"wait\" can only be used with GET requests"
    );
    let r = get(&b, "/k", "recursive=maybe").await;
    assert_eq!(r.header("X-Etcd-Index"), "0");
    assert_eq!(r.header("Content-Type"), "application/json");
}

#[tokio::test]
async fn odd_input_never_panics() {
    let b = LocalBackend::new();
    let paths =
        ["", "/", "//", "/a", "/a/b", "/_x", "/%", "/%zz", "/ä/ö", "/a/../..", "/\u{0}", "/a b", "/a/b/c/d/e/f"];
    let methods = ["GET", "PUT", "POST", "DELETE", "HEAD", "OPTIONS", ""];
    let queries = [
        "",
        "recursive=true",
        "dir=true",
        "dir=true&recursive=true",
        "prevExist=false",
        "prevExist=true",
        "prevValue=x",
        "prevIndex=1",
        "ttl=0",
        "ttl=",
        "ttl=99999999999999999999",
        "refresh=true&ttl=1",
        "sorted=true&quorum=true",
        "value=%ff%fe",
        "value",
        "=&&=x",
        "noValueOnSuccess=1",
    ];
    for p in paths {
        for m in methods {
            for q in queries {
                let r = req(&b, m, p, q, q).await;
                assert!((200..600).contains(&r.status), "{m} {p:?} {q}: {}", r.status);
                if r.status != 405 {
                    assert!(r.json.is_object(), "{m} {p:?} {q}: {}", r.body);
                    assert!(r.body.ends_with('\n'));
                }
            }
        }
    }
    // A deep path is refused rather than explored.
    let deep = "/a".repeat(200);
    let r = put(&b, &deep, "value=1").await;
    assert_eq!((r.status, r.code()), (500, 300));
    assert_eq!(get(&b, &deep, "").await.code(), 100);
}
