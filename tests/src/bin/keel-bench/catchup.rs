//! `keel-bench --v3 --catch-up MB`: a follower MB megabytes behind catching up, Keel beside
//! etcd 3.4. Three members of each, started by the same command line (`--snapshot-count 1000`,
//! so the leader's log no longer reaches back to what the follower missed); one member is
//! killed, MB megabytes of 16 KiB values are put through the other two at 32 clients, then it
//! restarts while 16 clients go on putting 256-byte values. Reported per system: how long the
//! follower took from its restart to holding every key (a serializable count on it), the puts/s,
//! p99 and worst latency of the steady writers meanwhile and how many of their puts failed, the
//! peak resident memory of the follower and of the busiest other member (`VmHWM`), and how many
//! puts of the load before it failed (each is tried until it succeeds).

use std::path::Path;
use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use etcd_client::{Client, GetOptions};
use keel_tests::{free_port, keel_binary, wait_until};

use crate::large::{memory_mb, spawn_member};
use crate::percentile;

const VALUE_BYTES: usize = 16 * 1024;
const LOADERS: usize = 32;
const STEADY_CLIENTS: usize = 16;

/// Everything measured of one system.
struct Measured {
    caught_up: Duration,
    puts_per_s: f64,
    p99: Duration,
    max: Duration,
    /// Steady puts that failed during the catch-up.
    failed: usize,
    /// Load puts that failed (and were tried again) before it.
    load_failed: usize,
    follower_peak_mb: f64,
    others_peak_mb: f64,
}

/// Three members on loopback; `urls[i]` serves member `i`.
struct Cluster {
    binary: std::path::PathBuf,
    _dir: tempfile::TempDir,
    dirs: Vec<std::path::PathBuf>,
    ports: Vec<(u16, u16)>,
    initial: String,
    children: Vec<Option<Child>>,
    urls: Vec<String>,
}

impl Cluster {
    fn start(binary: &Path) -> Cluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let ports: Vec<(u16, u16)> = (0..3).map(|_| (free_port(), free_port())).collect();
        let initial = ports
            .iter()
            .enumerate()
            .map(|(i, (_, p))| format!("m{i}=http://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",");
        let dirs = (0..3).map(|i| dir.path().join(format!("m{i}"))).collect();
        let urls = ports.iter().map(|(c, _)| format!("http://127.0.0.1:{c}")).collect();
        let mut c = Cluster {
            binary: binary.to_path_buf(),
            _dir: dir,
            dirs,
            ports,
            initial,
            children: vec![None, None, None],
            urls,
        };
        for i in 0..3 {
            c.spawn(i);
        }
        let healthy = |url: &String| keel_tests::curl(&[&format!("{url}/health")]).0 == 200;
        assert!(
            wait_until(Duration::from_secs(30), || c.urls.iter().all(healthy)),
            "{} did not start",
            binary.display()
        );
        c
    }

    fn spawn(&mut self, i: usize) {
        let (client, peer) = self.ports[i];
        let extra = ["--snapshot-count", "1000", "--initial-cluster-token", "catch-up"];
        self.children[i] =
            Some(spawn_member(&self.binary, &self.dirs[i], &format!("m{i}"), client, peer, &self.initial, &extra));
    }

    fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.children[i].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn peak_mb(&self, i: usize) -> f64 {
        self.children[i].as_ref().map_or(0.0, |c| memory_mb(c.id()).1)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..3 {
            self.kill(i);
        }
    }
}

/// Put `keys` values of [`VALUE_BYTES`] through `urls` at [`LOADERS`] clients, each put tried
/// until it succeeds (the load is not what is measured, and on 2 cores both systems time some
/// out); returns how many attempts failed.
async fn load(urls: &[String], keys: usize) -> usize {
    let value = vec![b'v'; VALUE_BYTES];
    let tasks: Vec<_> = (0..LOADERS)
        .map(|w| {
            let (url, value) = (urls[w % urls.len()].clone(), value.clone());
            tokio::spawn(async move {
                let mut client = Client::connect([url], None).await.expect("connect");
                let mut failed = 0;
                for i in (w..keys).step_by(LOADERS) {
                    while client.put(format!("big/{i:06}"), value.clone(), None).await.is_err() {
                        failed += 1;
                    }
                }
                failed
            })
        })
        .collect();
    let mut failed = 0;
    for t in tasks {
        failed += t.await.expect("a loader");
    }
    failed
}

/// Small puts through `urls` until `stop`; each put's latency (a failed put's too: the time its
/// client waited) and how many failed.
async fn steady(urls: Vec<String>, stop: Arc<AtomicBool>) -> (Vec<Duration>, usize) {
    let tasks: Vec<_> = (0..STEADY_CLIENTS)
        .map(|w| {
            let (url, stop) = (urls[w % urls.len()].clone(), stop.clone());
            tokio::spawn(async move {
                let mut client = Client::connect([url], None).await.expect("connect");
                let (mut latencies, mut failed) = (Vec::new(), 0);
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    failed += usize::from(
                        client.put(format!("steady/{w}/{}", n % 1000), vec![b's'; 256], None).await.is_err(),
                    );
                    latencies.push(started.elapsed());
                    n += 1;
                }
                (latencies, failed)
            })
        })
        .collect();
    let (mut all, mut failed) = (Vec::new(), 0);
    for t in tasks {
        let (latencies, f) = t.await.expect("a steady writer");
        all.extend(latencies);
        failed += f;
    }
    (all, failed)
}

/// Keys under `big/` that member `url` holds, read locally (serializable); 0 while it cannot answer.
async fn held(url: &str) -> i64 {
    let Ok(mut client) = Client::connect([url], None).await else { return 0 };
    let options = GetOptions::new().with_prefix().with_count_only().with_serializable();
    client.get("big/", Some(options)).await.map(|r| r.count()).unwrap_or(0)
}

fn measure(rt: &tokio::runtime::Runtime, binary: &Path, keys: usize) -> Measured {
    let mut c = Cluster::start(binary);
    let follower = 2;
    c.kill(follower);
    let others: Vec<String> = c.urls[..2].to_vec();
    let load_failed = rt.block_on(load(&others, keys));
    let stop = Arc::new(AtomicBool::new(false));
    let writers = rt.spawn(steady(others, stop.clone()));
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    c.spawn(follower);
    let follower_url = c.urls[follower].clone();
    let caught = wait_until(Duration::from_secs(600), || rt.block_on(held(&follower_url)) == keys as i64);
    let caught_up = started.elapsed();
    assert!(caught, "the {} follower did not catch up", binary.display());
    stop.store(true, Ordering::Relaxed);
    let (mut latencies, failed) = rt.block_on(writers).expect("the steady writers");
    let elapsed = started.elapsed();
    latencies.sort();
    Measured {
        caught_up,
        puts_per_s: latencies.len() as f64 / elapsed.as_secs_f64(),
        p99: percentile(&latencies, 0.99),
        max: latencies.last().copied().unwrap_or_default(),
        failed,
        load_failed,
        follower_peak_mb: c.peak_mb(follower),
        others_peak_mb: c.peak_mb(0).max(c.peak_mb(1)),
    }
}

/// Run the catch-up row for Keel and for etcd 3.4 and print both.
pub fn compare(megabytes: usize) {
    keel_tests::require_program("etcd");
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let keys = megabytes * 1024 * 1024 / VALUE_BYTES;
    println!(
        "keel-bench --v3 --catch-up {megabytes}: 3 members, one killed while {keys} puts of 16 KiB go to the others, \
         then restarted while {STEADY_CLIENTS} clients put 256 B"
    );
    let results = [("keel", measure(&rt, &keel_binary(), keys)), ("etcd 3.4", measure(&rt, Path::new("etcd"), keys))];
    println!(
        "{:<9} {:>12} {:>10} {:>9} {:>9} {:>7} {:>17} {:>15} {:>12}",
        "", "caught up s", "puts/s", "p99 ms", "max ms", "failed", "follower peak MB", "others peak MB", "load failed"
    );
    for (name, m) in &results {
        println!(
            "{:<9} {:>12.2} {:>10.0} {:>9.1} {:>9.1} {:>7} {:>17.0} {:>15.0} {:>12}",
            name,
            m.caught_up.as_secs_f64(),
            m.puts_per_s,
            m.p99.as_secs_f64() * 1e3,
            m.max.as_secs_f64() * 1e3,
            m.failed,
            m.follower_peak_mb,
            m.others_peak_mb,
            m.load_failed
        );
    }
}
