//! `keel-bench --v3 --large N`: the large-data row. One member of Keel, then one of etcd 3.4,
//! each started by the same command line (Keel takes etcd's flags): N puts of 256-byte values
//! over N distinct keys at 64 clients, then the same N again (a second version of every key).
//! Reported per system: puts/s and the worst put latency of each pass, the resident memory after
//! the load and at its peak (`VmRSS`, `VmHWM`), then a third pass with a compaction of the first
//! two passes' history sent 200 ms into it (how long the Compact call took, and what the
//! deletion behind it costs the puts), and how long a `kill -9`ed member takes from its restart to
//! answering a linearizable read of the last key written.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use etcd_client::Client;
use keel_tests::{free_port, keel_binary, wait_until};

use crate::percentile;

const CLIENTS: u64 = 64;
const VALUE: [u8; 256] = [b'v'; 256];

/// One pass of puts: throughput, p99 and the worst latency.
struct Pass {
    puts_per_s: f64,
    p99: Duration,
    max: Duration,
}

/// Everything measured of one system.
struct Measured {
    passes: Vec<Pass>,
    /// How long the Compact call of the third pass took.
    compact: Duration,
    rss_mb: f64,
    peak_mb: f64,
    restart: Duration,
}

/// A member process on `dir`, listening on the given ports; the same flags for both systems.
fn spawn(binary: &Path, dir: &Path, client: u16, peer: u16) -> Child {
    let peer_url = format!("http://127.0.0.1:{peer}");
    spawn_member(binary, dir, "large", client, peer, &format!("large={peer_url}"), &[])
}

/// Member `name` of a cluster of `initial_cluster` (etcd's `name=peer-url,...`), on `dir`, with
/// an 8 GiB quota and `extra` flags: the same command line starts Keel and etcd 3.4.
pub(crate) fn spawn_member(
    binary: &Path,
    dir: &Path,
    name: &str,
    client: u16,
    peer: u16,
    initial_cluster: &str,
    extra: &[&str],
) -> Child {
    let client_url = format!("http://127.0.0.1:{client}");
    let peer_url = format!("http://127.0.0.1:{peer}");
    Command::new(binary)
        .args(["--name", name, "--data-dir"])
        .arg(dir)
        .args(["--listen-client-urls", &client_url, "--advertise-client-urls", &client_url])
        .args(["--listen-peer-urls", &peer_url, "--initial-advertise-peer-urls", &peer_url])
        .args(["--initial-cluster", initial_cluster, "--quota-backend-bytes", "8589934592"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(log_file(name))
        .spawn()
        .expect("start the member")
}

/// Where member `name` logs: nowhere, or with `KEEL_BENCH_LOG_DIR=D` set, `D/<name>.log` (appended
/// to, Keel's and etcd's runs one after the other).
fn log_file(name: &str) -> Stdio {
    let Some(dir) = std::env::var_os("KEEL_BENCH_LOG_DIR") else { return Stdio::null() };
    let path = Path::new(&dir).join(format!("{name}.log"));
    match std::fs::OpenOptions::new().create(true).append(true).open(&path) {
        Ok(file) => Stdio::from(file),
        Err(e) => panic!("cannot log to {}: {e}", path.display()),
    }
}

/// `VmRSS` and `VmHWM` of `pid`, in MB.
pub(crate) fn memory_mb(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

async fn one_pass(url: &str, keys: u64) -> Pass {
    let started = Instant::now();
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let url = url.to_string();
            tokio::spawn(async move {
                let mut client = Client::connect([url], None).await.expect("connect");
                let mut latencies = Vec::new();
                for key in (c..keys).step_by(CLIENTS as usize) {
                    let t = Instant::now();
                    client.put(format!("large/{key:08}"), VALUE.to_vec(), None).await.expect("a put");
                    latencies.push(t.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut all = crate::latencies_of(tasks).await;
    let elapsed = started.elapsed();
    all.sort();
    Pass {
        puts_per_s: all.len() as f64 / elapsed.as_secs_f64(),
        p99: percentile(&all, 0.99),
        max: all.last().copied().unwrap_or_default(),
    }
}

fn measure(rt: &tokio::runtime::Runtime, binary: &Path, keys: u64) -> Measured {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("member");
    let (client, peer) = (free_port(), free_port());
    let url = format!("http://127.0.0.1:{client}");
    let healthy = |url: &str| keel_tests::curl(&[&format!("{url}/health")]).0 == 200;
    let mut child = spawn(binary, &data, client, peer);
    assert!(wait_until(Duration::from_secs(30), || healthy(&url)), "{} did not start", binary.display());
    let mut passes = vec![rt.block_on(one_pass(&url, keys)), rt.block_on(one_pass(&url, keys))];
    let (rss_mb, peak_mb) = memory_mb(child.id());
    let (compacting, compact) = rt.block_on(async {
        let mut client = Client::connect([url.as_str()], None).await.expect("connect");
        let revision = client.get("large/", None).await.expect("a get").header().map_or(0, |h| h.revision());
        let compaction = async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let started = Instant::now();
            client.compact(revision, None).await.expect("the compaction");
            started.elapsed()
        };
        tokio::join!(one_pass(&url, keys), compaction)
    });
    passes.push(compacting);
    let _ = child.kill();
    let _ = child.wait();
    let started = Instant::now();
    let mut child = spawn(binary, &data, client, peer);
    let last = format!("large/{:08}", keys - 1);
    let answered = wait_until(Duration::from_secs(300), || {
        rt.block_on(async {
            match Client::connect([url.as_str()], None).await {
                Ok(mut c) => c.get(last.as_str(), None).await.is_ok_and(|r| r.kvs().len() == 1),
                Err(_) => false,
            }
        })
    });
    let restart = started.elapsed();
    assert!(answered, "{} did not serve after its restart", binary.display());
    let _ = child.kill();
    let _ = child.wait();
    Measured { passes, compact, rss_mb, peak_mb, restart }
}

/// Run the large-data row for Keel and for etcd 3.4 and print both.
pub fn compare(keys: u64) {
    keel_tests::require_program("etcd");
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let etcd = std::path::PathBuf::from("etcd");
    println!("keel-bench --v3 --large {keys}: 1 member, {keys} puts of 256 B over {keys} keys at {CLIENTS} clients, three times (the third while compacting the first two)");
    let results = [("keel", measure(&rt, &keel_binary(), keys)), ("etcd 3.4", measure(&rt, &etcd, keys))];
    println!(
        "{:<9} {:>26} {:>26} {:>9} {:>9} {:>26} {:>11} {:>10}",
        "",
        "pass 1 puts/s p99 max ms",
        "pass 2 puts/s p99 max ms",
        "RSS MB",
        "peak MB",
        "pass 3 puts/s p99 max ms",
        "compact ms",
        "restart s"
    );
    for (name, m) in &results {
        let pass = |p: &Pass| {
            format!("{:>9.0} {:>7.1} {:>8.1}", p.puts_per_s, p.p99.as_secs_f64() * 1e3, p.max.as_secs_f64() * 1e3)
        };
        println!(
            "{:<9} {:>26} {:>26} {:>9.0} {:>9.0} {:>26} {:>11.1} {:>10.2}",
            name,
            pass(&m.passes[0]),
            pass(&m.passes[1]),
            m.rss_mb,
            m.peak_mb,
            pass(&m.passes[2]),
            m.compact.as_secs_f64() * 1e3,
            m.restart.as_secs_f64()
        );
    }
}
