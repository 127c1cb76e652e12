//! GET: files, listings, the root, hidden keys, markers, paths and v3 interplay.

use keel_core::api::request::{PutRequest, RangeRequest, Request, Response};

use crate::{expect, get, put, LocalBackend};
use keel_net::local::CLUSTER_ID;

#[tokio::test]
async fn set_then_get_exact_bytes_and_headers() {
    let b = LocalBackend::new();
    let r = put(&b, "/foo", "value=bar").await;
    expect(
        &r,
        201,
        "{\"action\":\"set\",\"node\":{\"key\":\"/foo\",\"value\":\"bar\",\"modifiedIndex\":2,\"createdIndex\":2}}\n",
    );
    assert_eq!(r.header("Content-Type"), "application/json");
    assert_eq!(r.header("X-Etcd-Index"), "2");
    assert_eq!(r.header("X-Etcd-Cluster-Id"), format!("{CLUSTER_ID:x}"));
    assert!(r.header("X-Raft-Index").parse::<u64>().unwrap() >= 2);
    assert!(r.header("X-Raft-Term").parse::<u64>().unwrap() >= 1);

    let r = get(&b, "/foo", "").await;
    expect(
        &r,
        200,
        "{\"action\":\"get\",\"node\":{\"key\":\"/foo\",\"value\":\"bar\",\"modifiedIndex\":2,\"createdIndex\":2}}\n",
    );
    assert_eq!(r.index(), 2);

    // Overwriting keeps the key's create revision (the key space's createdIndex).
    let r = put(&b, "/foo", "value=baz").await;
    expect(&r, 200, "{\"action\":\"set\",\"node\":{\"key\":\"/foo\",\"value\":\"baz\",\"modifiedIndex\":3,\"createdIndex\":2},\"prevNode\":{\"key\":\"/foo\",\"value\":\"bar\",\"modifiedIndex\":2,\"createdIndex\":2}}\n");
    assert_eq!(r.index(), 3);

    // Empty values and HTML-sensitive characters, as Go encodes them.
    let r = put(&b, "/empty", "value=").await;
    assert_eq!(r.json["node"]["value"], "");
    let r = put(&b, "/html", "value=%3Ca%26b%3E").await;
    assert!(r.body.contains("\"value\":\"\\u003ca\\u0026b\\u003e\""), "{}", r.body);
    assert_eq!(r.json["node"]["value"], "<a&b>");
}

#[tokio::test]
async fn listings_hidden_markers_and_the_root() {
    let b = LocalBackend::new();
    put(&b, "/dir/a", "value=1").await; // 2
    put(&b, "/dir/b/c", "value=2").await; // 3
    put(&b, "/dir/_h", "value=3").await; // 4
    let r = put(&b, "/dir/e", "dir=true").await; // 5
    expect(
        &r,
        201,
        "{\"action\":\"set\",\"node\":{\"key\":\"/dir/e\",\"dir\":true,\"modifiedIndex\":5,\"createdIndex\":5}}\n",
    );

    let listing = "{\"action\":\"get\",\"node\":{\"key\":\"/dir\",\"dir\":true,\"nodes\":[{\"key\":\"/dir/a\",\"value\":\"1\",\"modifiedIndex\":2,\"createdIndex\":2},{\"key\":\"/dir/b\",\"dir\":true,\"modifiedIndex\":3,\"createdIndex\":3},{\"key\":\"/dir/e\",\"dir\":true,\"modifiedIndex\":5,\"createdIndex\":5}],\"modifiedIndex\":5,\"createdIndex\":2}}\n";
    expect(&get(&b, "/dir", "").await, 200, listing);
    expect(&get(&b, "/dir", "sorted=true").await, 200, listing);
    expect(&get(&b, "/dir/", "quorum=true").await, 200, listing);

    let r = get(&b, "/dir", "recursive=true&sorted=true").await;
    assert_eq!(r.status, 200);
    let nodes = r.json["node"]["nodes"].as_array().unwrap();
    assert_eq!(nodes[1]["nodes"][0]["key"], "/dir/b/c");
    assert_eq!(nodes[1]["nodes"][0]["value"], "2");
    assert!(nodes[2].get("nodes").is_none(), "an empty directory has no nodes field");

    // Hidden: not listed, but readable.
    expect(
        &get(&b, "/dir/_h", "").await,
        200,
        "{\"action\":\"get\",\"node\":{\"key\":\"/dir/_h\",\"value\":\"3\",\"modifiedIndex\":4,\"createdIndex\":4}}\n",
    );
    // An explicitly created empty directory.
    expect(
        &get(&b, "/dir/e", "").await,
        200,
        "{\"action\":\"get\",\"node\":{\"key\":\"/dir/e\",\"dir\":true,\"modifiedIndex\":5,\"createdIndex\":5}}\n",
    );
    // The root has no key and no indexes.
    expect(&get(&b, "/", "").await, 200, "{\"action\":\"get\",\"node\":{\"dir\":true,\"nodes\":[{\"key\":\"/dir\",\"dir\":true,\"modifiedIndex\":5,\"createdIndex\":2}]}}\n");
    expect(&get(&b, "", "").await, 200, "{\"action\":\"get\",\"node\":{\"dir\":true,\"nodes\":[{\"key\":\"/dir\",\"dir\":true,\"modifiedIndex\":5,\"createdIndex\":2}]}}\n");
}

#[tokio::test]
async fn empty_root_and_siblings_sharing_a_prefix() {
    let b = LocalBackend::new();
    expect(&get(&b, "/", "").await, 200, "{\"action\":\"get\",\"node\":{\"dir\":true}}\n");
    put(&b, "/a!", "value=bang").await;
    put(&b, "/a/x", "value=1").await;
    put(&b, "/a.txt", "value=t").await;
    let r = get(&b, "/a", "").await;
    assert_eq!(r.json["node"]["nodes"].as_array().unwrap().len(), 1);
    let r = get(&b, "/", "").await;
    let keys: Vec<&str> =
        r.json["node"]["nodes"].as_array().unwrap().iter().map(|n| n["key"].as_str().unwrap()).collect();
    assert_eq!(keys, vec!["/a", "/a!", "/a.txt"]);
}

#[tokio::test]
async fn v2_and_v3_see_one_key_space() {
    let b = LocalBackend::new();
    b.core(Request::Put(PutRequest { key: b"/v3/k".to_vec(), value: b"from v3".to_vec(), ..Default::default() }))
        .unwrap();
    b.core(Request::Put(PutRequest { key: b"plain".to_vec(), value: b"x".to_vec(), ..Default::default() })).unwrap();
    let r = get(&b, "/v3/k", "").await;
    assert_eq!(r.json["node"]["value"], "from v3");
    let r = get(&b, "/", "").await;
    assert_eq!(r.json["node"]["nodes"].as_array().unwrap().len(), 1, "keys without a leading slash are not v2 keys");

    put(&b, "/mk", "dir=true").await;
    put(&b, "/v2", "value=from%20v2").await;
    let range =
        |key: &[u8]| match b.core(Request::Range(RangeRequest { key: key.to_vec(), ..Default::default() })).unwrap() {
            Response::Range(r) => r.kvs,
            other => panic!("{other:?}"),
        };
    assert_eq!(range(b"/v2")[0].value, b"from v2");
    let marker = range(b"/mk/");
    assert_eq!((marker.len(), marker[0].value.len()), (1, 0), "an empty directory is a marker key");

    // A key that is both a file and a prefix (only v3 can do that): it is a file; the keys
    // below stay readable directly but cannot be written through v2.
    b.core(Request::Put(PutRequest { key: b"/v3".to_vec(), value: b"file".to_vec(), ..Default::default() })).unwrap();
    let r = get(&b, "/v3", "").await;
    assert_eq!(r.json["node"]["value"], "file");
    assert_eq!(get(&b, "/v3/k", "").await.json["node"]["value"], "from v3");
    assert_eq!(put(&b, "/v3/k", "value=x").await.code(), 104);
    let r = get(&b, "/", "").await;
    assert_eq!(r.json["node"]["nodes"][2]["key"], "/v3");
    assert_eq!(r.json["node"]["nodes"][2]["value"], "file");
}

#[tokio::test]
async fn paths_are_normalized() {
    let b = LocalBackend::new();
    let r = put(&b, "//a///b/", "value=1").await;
    assert_eq!(r.json["node"]["key"], "/a/b");
    assert_eq!(get(&b, "/a/./b", "").await.json["node"]["value"], "1");
    assert_eq!(get(&b, "/x/../a/b", "").await.json["node"]["value"], "1");
    let r = put(&b, "/ü/%zz 1", "value=odd").await;
    assert_eq!(r.json["node"]["key"], "/ü/%zz 1");
    assert_eq!(get(&b, "/ü/%zz 1", "").await.json["node"]["value"], "odd");
}

#[tokio::test]
async fn missing_keys_and_files_in_the_way() {
    let b = LocalBackend::new();
    expect(
        &get(&b, "/nope", "").await,
        404,
        "{\"errorCode\":100,\"message\":\"Key not found\",\"cause\":\"/nope\",\"index\":1}\n",
    );
    // etcd names the first missing component.
    assert_eq!(get(&b, "/a/b/c", "").await.json["cause"], "/a");
    put(&b, "/a/x", "value=1").await; // 2
    assert_eq!(get(&b, "/a/b/c", "").await.json["cause"], "/a/b");
    put(&b, "/f", "value=1").await; // 3
    let r = get(&b, "/f/g", "").await;
    expect(&r, 400, "{\"errorCode\":104,\"message\":\"Not a directory\",\"cause\":\"/f\",\"index\":3}\n");
    assert_eq!(r.index(), 3);
    let r = put(&b, "/f/g/h", "value=1").await;
    expect(&r, 400, "{\"errorCode\":104,\"message\":\"Not a directory\",\"cause\":\"/f\",\"index\":3}\n");
    let r = crate::post(&b, "/f", "value=1").await;
    assert_eq!((r.status, r.code()), (400, 104));
    // A value on a directory.
    let r = put(&b, "/a", "value=1").await;
    expect(&r, 403, "{\"errorCode\":102,\"message\":\"Not a file\",\"cause\":\"/a\",\"index\":3}\n");
}
