//! Throughput of the core with no I/O at all: a 3-member in-process cluster committing puts
//! (with 1 and 64 proposers in flight), and Range on a 1M-key store. Prints figures; it is a
//! benchmark, not a test. Run: `cargo bench -p keel-core --bench core` (add `-- puts` or
//! `-- range` for one half).

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test support: a failed step is a failed test")]

use std::time::{Duration, Instant};

use keel_core::api::request::{PutRequest, RangeRequest, Request};
use keel_core::cluster::LocalCluster;
use keel_core::state::mvcc::MvccStore;

fn put(i: u64) -> Request {
    Request::Put(PutRequest {
        key: format!("key/{:08}", i % 10_000).into_bytes(),
        value: vec![b'v'; 64],
        ..Default::default()
    })
}

/// Committed puts per second with `in_flight` proposals outstanding at all times.
fn committed_puts(in_flight: usize, total: u64) -> f64 {
    let mut c = LocalCluster::with_config(3, 1, |cfg| cfg.snapshot_count = 1_000_000);
    let leader = c.wait_for_leader();
    let start = Instant::now();
    let (mut sent, mut done, mut outstanding) = (0u64, 0u64, 0usize);
    while done < total {
        while outstanding < in_flight && sent < total {
            c.submit(leader, put(sent));
            sent += 1;
            outstanding += 1;
        }
        c.settle();
        for (_, resp) in c.take_responses(leader) {
            assert!(resp.is_ok(), "put failed: {resp:?}");
            done += 1;
            outstanding -= 1;
        }
    }
    total as f64 / start.elapsed().as_secs_f64()
}

fn ops_per_sec(min: Duration, mut op: impl FnMut(u64)) -> f64 {
    let start = Instant::now();
    let mut n = 0;
    while start.elapsed() < min {
        for _ in 0..100 {
            op(n);
            n += 1;
        }
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let filter: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let wants = |part: &str| filter.is_empty() || filter.iter().any(|f| f == part);
    println!("keel-core benchmark (no I/O, one thread)");
    if wants("puts") {
        bench_puts();
    }
    if wants("range") {
        bench_range();
    }
}

fn bench_puts() {
    for (in_flight, total) in [(1, 20_000), (64, 300_000)] {
        let rate = committed_puts(in_flight, total);
        println!("3-member cluster, {in_flight:>2} proposers in flight: {rate:>10.0} committed puts/s");
    }
}

fn bench_range() {
    const KEYS: u64 = 1_000_000;
    let mut store = MvccStore::new();
    let load = Instant::now();
    for i in 0..KEYS {
        let req = PutRequest { key: format!("key/{i:08}").into_bytes(), value: vec![b'v'; 64], ..Default::default() };
        store.put(&req, &|_| false).expect("put");
    }
    println!("loaded {KEYS} keys into the MVCC store in {:.2} s", load.elapsed().as_secs_f64());
    let point = ops_per_sec(Duration::from_secs(2), |n| {
        let key = format!("key/{:08}", (n * 7919) % KEYS).into_bytes();
        let r = store.range(&RangeRequest { key, ..Default::default() }).expect("range");
        assert_eq!(r.kvs.len(), 1);
    });
    println!("range, single key on 1M keys:     {point:>10.0} ops/s");
    let scan100 = ops_per_sec(Duration::from_secs(2), |n| {
        let first = (n * 7919) % (KEYS - 100);
        let key = format!("key/{first:08}").into_bytes();
        let range_end = format!("key/{:08}", first + 100).into_bytes();
        let req = RangeRequest { key, range_end, ..Default::default() };
        assert_eq!(store.range(&req).expect("range").kvs.len(), 100);
    });
    println!("range, 100 keys on 1M keys:       {scan100:>10.0} ops/s");
    let full = Instant::now();
    let all =
        RangeRequest { key: b"key/".to_vec(), range_end: b"key0".to_vec(), count_only: true, ..Default::default() };
    assert_eq!(store.range(&all).expect("range").count, KEYS as i64);
    println!("range, count of all 1M keys:      {:>10.1} ms", full.elapsed().as_secs_f64() * 1000.0);
}
