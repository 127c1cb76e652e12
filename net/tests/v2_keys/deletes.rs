//! DELETE: files, directory rules, the root, compare-and-delete.

use keel_core::api::request::{RangeRequest, Request, Response};

use crate::{delete, expect, get, put, LocalBackend};

#[tokio::test]
async fn delete_a_file() {
    let b = LocalBackend::new();
    put(&b, "/f", "value=1").await; // 2
    let r = delete(&b, "/f", "").await;
    expect(&r, 200, "{\"action\":\"delete\",\"node\":{\"key\":\"/f\",\"modifiedIndex\":3,\"createdIndex\":2},\"prevNode\":{\"key\":\"/f\",\"value\":\"1\",\"modifiedIndex\":2,\"createdIndex\":2}}\n");
    assert_eq!(r.index(), 3);
    assert_eq!(get(&b, "/f", "").await.code(), 100);
    assert_eq!(delete(&b, "/f", "").await.code(), 100);
    // dir=true also deletes a file.
    put(&b, "/g", "value=1").await;
    assert_eq!(delete(&b, "/g", "dir=true").await.status, 200);
}

#[tokio::test]
async fn directory_rules() {
    let b = LocalBackend::new();
    put(&b, "/d/x", "value=1").await; // 2
    put(&b, "/d/y/z", "value=2").await; // 3
    expect(
        &delete(&b, "/d", "").await,
        403,
        "{\"errorCode\":102,\"message\":\"Not a file\",\"cause\":\"/d\",\"index\":3}\n",
    );
    expect(
        &delete(&b, "/d", "dir=true").await,
        403,
        "{\"errorCode\":108,\"message\":\"Directory not empty\",\"cause\":\"/d\",\"index\":3}\n",
    );
    let r = delete(&b, "/d", "recursive=true").await;
    expect(&r, 200, "{\"action\":\"delete\",\"node\":{\"key\":\"/d\",\"dir\":true,\"modifiedIndex\":4,\"createdIndex\":2},\"prevNode\":{\"key\":\"/d\",\"dir\":true,\"modifiedIndex\":3,\"createdIndex\":2}}\n");
    assert_eq!(get(&b, "/d", "").await.code(), 100);
    assert_eq!(get(&b, "/d/y/z", "").await.code(), 100);
    expect(
        &delete(&b, "/", "recursive=true").await,
        400,
        "{\"errorCode\":107,\"message\":\"Root is read only\",\"cause\":\"/\",\"index\":4}\n",
    );

    // An empty directory goes with dir=true, marker and all.
    put(&b, "/e", "dir=true").await; // 5
    let r = delete(&b, "/e", "dir=true").await;
    expect(&r, 200, "{\"action\":\"delete\",\"node\":{\"key\":\"/e\",\"dir\":true,\"modifiedIndex\":6,\"createdIndex\":5},\"prevNode\":{\"key\":\"/e\",\"dir\":true,\"modifiedIndex\":5,\"createdIndex\":5}}\n");
    match b.core(Request::Range(RangeRequest { key: b"/e/".to_vec(), ..Default::default() })).unwrap() {
        Response::Range(r) => assert!(r.kvs.is_empty()),
        other => panic!("{other:?}"),
    }
    // Hidden children make a directory non-empty too.
    put(&b, "/h/_x", "value=1").await;
    assert_eq!(delete(&b, "/h", "dir=true").await.code(), 108);
}

#[tokio::test]
async fn compare_and_delete() {
    let b = LocalBackend::new();
    put(&b, "/c", "value=v").await; // 2
    expect(
        &delete(&b, "/c", "prevValue=w").await,
        412,
        "{\"errorCode\":101,\"message\":\"Compare failed\",\"cause\":\"[w != v]\",\"index\":2}\n",
    );
    assert_eq!(delete(&b, "/c", "prevIndex=9").await.json["cause"], "[9 != 2]");
    let r = delete(&b, "/c", "prevValue=v&prevIndex=2").await;
    expect(&r, 200, "{\"action\":\"compareAndDelete\",\"node\":{\"key\":\"/c\",\"modifiedIndex\":3,\"createdIndex\":2},\"prevNode\":{\"key\":\"/c\",\"value\":\"v\",\"modifiedIndex\":2,\"createdIndex\":2}}\n");
    assert_eq!(delete(&b, "/c", "prevValue=v").await.code(), 100);
    put(&b, "/dir/a", "value=1").await;
    assert_eq!(delete(&b, "/dir", "prevValue=v").await.code(), 102);
    assert_eq!(delete(&b, "/", "prevIndex=1").await.code(), 102);
}
