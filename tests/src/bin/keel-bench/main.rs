//! keel-bench: load a Keel cluster over the v2 HTTP API and print throughput and latency.
//!
//! `keel-bench` starts its own 3-member cluster of real `keel` processes on loopback (fsync
//! on) and runs puts at 1, 16 and 256 concurrent clients; `--endpoints URL,...` loads a
//! running cluster instead; `--members N`, `--clients 1,16,256`, `--seconds S` and `--keys K`
//! adjust it. Each client keeps one HTTP/1.1 connection and sends one request at a time.
//!
//! `keel-bench --v3` compares Keel with etcd 3.4 over the v3 API instead (see `v3.rs`), at 1
//! and 3 members (or `--members N`); `keel-bench --v3 --large N` runs the large-data row (see
//! `large.rs`), `keel-bench --v3 --catch-up MB` a follower MB megabytes behind catching up
//! (see `catchup.rs`), `keel-bench --v3 --auth` logins per second and puts with auth on and off
//! (see `auth.rs`). With `KEEL_BENCH_LOG_DIR=D`, the members of the last two log to
//! `D/<name>.log`.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test support: a failed step is a failed test")]

mod auth;
mod catchup;
mod large;
mod v3;

use std::time::{Duration, Instant};

use hyper::Method;
use keel_client::tls::Dial;
use keel_client::{Call, Connection, Endpoint};
use keel_tests::{curl, ProcessCluster};

/// The value every put writes (32 bytes).
const VALUE: &str = "0123456789abcdef0123456789abcdef";

/// What the command line asked for.
pub struct Options {
    endpoints: Vec<String>,
    members: usize,
    /// Whether `--members` was given (the v3 comparison otherwise runs 1 and 3).
    members_given: bool,
    v3: bool,
    clients: Vec<usize>,
    seconds: u64,
    keys: u64,
    /// `--large N`: the large-data row instead (see `large.rs`).
    large: Option<u64>,
    /// `--catch-up MB`: the catch-up row instead (see `catchup.rs`).
    catch_up: Option<usize>,
    /// `--auth`: the auth rows instead (see `auth.rs`).
    auth: bool,
}

fn options() -> Options {
    let mut o = Options {
        endpoints: vec![],
        members: 3,
        members_given: false,
        v3: false,
        clients: vec![1, 16, 256],
        seconds: 5,
        keys: 10_000,
        large: None,
        catch_up: None,
        auth: false,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        if flag == "--auth" {
            o.auth = true;
            continue;
        }
        if flag == "--v3" {
            o.v3 = true;
            continue;
        }
        let value = it.next().cloned().unwrap_or_default();
        match flag.as_str() {
            "--endpoints" => o.endpoints = value.split(',').map(String::from).collect(),
            "--members" => {
                o.members = value.parse().unwrap_or(3);
                o.members_given = true;
            }
            "--clients" => o.clients = value.split(',').filter_map(|c| c.parse().ok()).collect(),
            "--seconds" => o.seconds = value.parse().unwrap_or(5),
            "--keys" => o.keys = value.parse().unwrap_or(10_000),
            "--large" => o.large = value.parse().ok(),
            "--catch-up" => o.catch_up = value.parse().ok(),
            other => {
                eprintln!("keel-bench: unknown flag {other} (see the source's header)");
                std::process::exit(2);
            }
        }
    }
    o
}

/// One client: a connection, then puts until `until`; returns each request's latency.
async fn client(endpoint: String, id: usize, keys: u64, until: Instant) -> Result<Vec<Duration>, String> {
    let endpoint = Endpoint::parse(&endpoint, &Dial::default())?;
    let mut conn = Connection::open(&endpoint, Duration::from_secs(5)).await.map_err(|e| e.message().to_string())?;
    let mut latencies = Vec::new();
    let mut n = id as u64;
    while Instant::now() < until {
        n = n.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let call = Call::form(Method::PUT, format!("/v2/keys/bench/{}", n % keys), &[("value", VALUE)]);
        let started = Instant::now();
        let reply = conn.send(&call, Duration::from_secs(60)).await.map_err(|e| e.message().to_string())?;
        if !(200..300).contains(&reply.status) {
            return Err(format!("put answered {}", reply.status));
        }
        latencies.push(started.elapsed());
    }
    Ok(latencies)
}

fn fsyncs(endpoints: &[String]) -> f64 {
    endpoints
        .iter()
        .filter_map(|e| {
            let (_, body) = curl(&[&format!("{e}/metrics")]);
            body.lines()
                .find(|l| l.starts_with("keel_disk_fsync_duration_seconds_count"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .sum()
}

/// The `p` quantile of sorted latencies.
/// Every latency the client tasks measured, once they are all done.
pub async fn latencies_of(tasks: Vec<tokio::task::JoinHandle<Vec<Duration>>>) -> Vec<Duration> {
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap_or_default());
    }
    all
}

pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let o = options();
    if let Some(megabytes) = o.catch_up {
        return catchup::compare(megabytes);
    }
    if let Some(keys) = o.large {
        return large::compare(keys);
    }
    if o.v3 && o.auth {
        return auth::compare(&o);
    }
    if o.v3 {
        return v3::compare(&o);
    }
    let _cluster;
    let endpoints = if o.endpoints.is_empty() {
        let c = ProcessCluster::start(o.members);
        let urls = (0..o.members).map(|i| c.url(i).to_string()).collect();
        _cluster = Some(c);
        urls
    } else {
        _cluster = None;
        o.endpoints.clone()
    };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    println!(
        "keel-bench: v2 PUT, 36-byte values over {} keys, {} member(s), {} s per row",
        o.keys,
        endpoints.len(),
        o.seconds
    );
    println!("{:>8} {:>12} {:>10} {:>10} {:>12}", "clients", "puts/s", "p50 ms", "p99 ms", "fsyncs/s");
    for &clients in &o.clients {
        let syncs_before = fsyncs(&endpoints);
        let started = Instant::now();
        let until = started + Duration::from_secs(o.seconds);
        let results: Vec<Result<Vec<Duration>, String>> = rt.block_on(async {
            let tasks: Vec<_> = (0..clients)
                .map(|i| tokio::spawn(client(endpoints[i % endpoints.len()].clone(), i, o.keys, until)))
                .collect();
            let mut out = Vec::new();
            for t in tasks {
                out.push(t.await.unwrap_or_else(|e| Err(e.to_string())));
            }
            out
        });
        let elapsed = started.elapsed().as_secs_f64();
        let syncs = (fsyncs(&endpoints) - syncs_before) / elapsed;
        let mut all = Vec::new();
        for r in results {
            match r {
                Ok(l) => all.extend(l),
                Err(e) => eprintln!("client failed: {e}"),
            }
        }
        all.sort();
        println!(
            "{clients:>8} {:>12.0} {:>10.2} {:>10.2} {syncs:>12.0}",
            all.len() as f64 / elapsed,
            percentile(&all, 0.5).as_secs_f64() * 1000.0,
            percentile(&all, 0.99).as_secs_f64() * 1000.0
        );
    }
}
