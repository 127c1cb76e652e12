//! The v3 comparison: the same workloads, through the same client (the Rust `etcd-client`
//! crate), against Keel and against etcd 3.4, one after the other on this machine, at 1 and 3
//! members: puts at 1/16/256 clients, linearizable and serializable ranges at 1/256 clients, and
//! the delivery latency of one writer's events to 100 watchers.

use std::time::{Duration, Instant};

use etcd_client::{Client, ConnectOptions, GetOptions};
use keel_tests::{ProcessCluster, ReferenceEtcd};

use crate::{percentile, Options};

/// 36 bytes, as the v2 rows write.
const VALUE: &str = "0123456789abcdef0123456789abcdef0123";
const WATCHERS: usize = 100;
const WATCHED_PUTS: usize = 200;

/// One measured row: operations per second, their latency percentiles and the worst latency
/// (a pause shows there, not in the percentiles).
pub(crate) struct Row {
    pub(crate) ops_per_s: f64,
    p50: Duration,
    p99: Duration,
    max: Duration,
}

impl Row {
    fn of(mut latencies: Vec<Duration>, elapsed: Duration) -> Row {
        latencies.sort();
        let max = latencies.last().copied().unwrap_or_default();
        Row {
            ops_per_s: latencies.len() as f64 / elapsed.as_secs_f64(),
            p50: percentile(&latencies, 0.5),
            p99: percentile(&latencies, 0.99),
            max,
        }
    }

    pub(crate) fn cell(&self) -> String {
        format!("{:>9.0} {:>7.2} {:>7.2} {:>8.1}", self.ops_per_s, ms(self.p50), ms(self.p99), ms(self.max))
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A workload row: what it does and at how many clients.
#[derive(Clone, Copy)]
enum Workload {
    Put(usize),
    Range { clients: usize, serializable: bool },
    Watch,
}

impl Workload {
    fn name(self) -> String {
        match self {
            Workload::Put(c) => format!("put, {c} clients"),
            Workload::Range { clients, serializable: false } => format!("range (linearizable), {clients} clients"),
            Workload::Range { clients, serializable: true } => format!("range (serializable), {clients} clients"),
            Workload::Watch => format!("watch delivery, {WATCHERS} watchers"),
        }
    }
}

/// Run the comparison and print one table per cluster size.
pub fn compare(o: &Options) {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let mut rows: Vec<Workload> = o.clients.iter().map(|c| Workload::Put(*c)).collect();
    for clients in [1, 256] {
        rows.push(Workload::Range { clients, serializable: false });
        rows.push(Workload::Range { clients, serializable: true });
    }
    rows.push(Workload::Watch);
    let sizes = if o.members_given { vec![o.members] } else { vec![1, 3] };
    println!(
        "keel-bench --v3: Keel and etcd 3.4 through the Rust etcd-client, {} s per row, {} keys, 36-byte values",
        o.seconds, o.keys
    );
    println!(
        "columns: ops/s, p50 ms, p99 ms; ratio: Keel ÷ etcd ops/s (watch: etcd ÷ Keel p99), so ≥ 1 means Keel keeps up"
    );
    for members in sizes {
        let keel = {
            let cluster = ProcessCluster::start(members);
            let endpoints: Vec<String> = (0..members).map(|i| cluster.url(i).to_string()).collect();
            rt.block_on(run_all(&endpoints, &rows, o))
        };
        let etcd = {
            let cluster = ReferenceEtcd::cluster(members, &[]);
            rt.block_on(run_all(&cluster.client_urls, &rows, o))
        };
        println!();
        println!("{members} member(s)");
        println!(
            "{:<38} {:>34} {:>34} {:>6}",
            "workload", "keel ops/s p50 p99 max (ms)", "etcd 3.4 ops/s p50 p99 max (ms)", "ratio"
        );
        for ((workload, k), e) in rows.iter().zip(&keel).zip(&etcd) {
            let ratio = match workload {
                Workload::Watch => ms(e.p99) / ms(k.p99).max(f64::MIN_POSITIVE),
                _ => k.ops_per_s / e.ops_per_s.max(f64::MIN_POSITIVE),
            };
            println!("{:<38} {} {} {:>6.2}", workload.name(), k.cell(), e.cell(), ratio);
        }
    }
}

async fn run_all(endpoints: &[String], rows: &[Workload], o: &Options) -> Vec<Row> {
    let mut setup = Client::connect(endpoints, None).await.expect("connect");
    setup.put("bench/range", VALUE, None).await.expect("a key to read");
    let mut out = Vec::new();
    for row in rows {
        let measured = match *row {
            Workload::Put(clients) => {
                load(endpoints, None, clients, o, |mut c, n| async move {
                    c.put(format!("bench/{n}"), VALUE, None).await.map(|_| c)
                })
                .await
            }
            Workload::Range { clients, serializable } => {
                load(endpoints, None, clients, o, move |mut c, _| async move {
                    let options = serializable.then(|| GetOptions::new().with_serializable());
                    c.get("bench/range", options).await.map(|_| c)
                })
                .await
            }
            Workload::Watch => watch_latency(endpoints).await,
        };
        out.push(measured);
    }
    out
}

/// `clients` clients (each with its own connections to every member, so that neither system
/// gains from which member happens to lead, and logged in when `connect` says so) each calling
/// `op` back to back for the row's duration; `op` gets a key number and hands the client back.
pub(crate) async fn load<F, Fut>(
    endpoints: &[String],
    connect: Option<ConnectOptions>,
    clients: usize,
    o: &Options,
    op: F,
) -> Row
where
    F: Fn(Client, u64) -> Fut + Copy + Send + 'static,
    Fut: std::future::Future<Output = Result<Client, etcd_client::Error>> + Send,
{
    let mut connected = Vec::new();
    for i in 0..clients {
        connected.push(Client::connect(rotated(endpoints, i), connect.clone()).await.expect("connect"));
    }
    let started = Instant::now();
    let until = started + Duration::from_secs(o.seconds);
    let keys = o.keys;
    let tasks: Vec<_> = connected
        .into_iter()
        .enumerate()
        .map(|(i, mut client)| {
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut n = i as u64;
                while Instant::now() < until {
                    n = n.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    let t = Instant::now();
                    client = match op(client, n % keys).await {
                        Ok(c) => c,
                        Err(e) => {
                            eprintln!("client {i}: {e}");
                            break;
                        }
                    };
                    latencies.push(t.elapsed());
                }
                latencies
            })
        })
        .collect();
    let all = crate::latencies_of(tasks).await;
    Row::of(all, started.elapsed())
}

/// Every endpoint, starting with the `i`-th.
fn rotated(endpoints: &[String], i: usize) -> Vec<String> {
    let mut out = endpoints.to_vec();
    out.rotate_left(i % endpoints.len());
    out
}

/// One writer puts a key every 10 ms, the value its send time; 100 watchers (each on its own
/// connection) measure how long each event took to reach them.
async fn watch_latency(endpoints: &[String]) -> Row {
    let base = Instant::now();
    let mut watchers = Vec::new();
    for i in 0..WATCHERS {
        let mut client = Client::connect([endpoints[i % endpoints.len()].clone()], None).await.expect("connect");
        let mut stream = client.watch("bench/watched", None).await.expect("watch");
        watchers.push(tokio::spawn(async move {
            let _client = client;
            let mut latencies = Vec::new();
            while latencies.len() < WATCHED_PUTS {
                let Ok(Ok(Some(response))) = tokio::time::timeout(Duration::from_secs(10), stream.message()).await
                else {
                    break;
                };
                for event in response.events() {
                    let sent = event.kv().and_then(|kv| kv.value_str().ok()?.parse::<u64>().ok()).unwrap_or(0);
                    latencies.push(base.elapsed().saturating_sub(Duration::from_nanos(sent)));
                }
            }
            latencies
        }));
    }
    let mut writer = Client::connect([endpoints[0].clone()], None).await.expect("connect");
    let started = Instant::now();
    for _ in 0..WATCHED_PUTS {
        let sent = base.elapsed().as_nanos().to_string();
        writer.put("bench/watched", sent, None).await.expect("put");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut all = Vec::new();
    for w in watchers {
        all.extend(w.await.unwrap_or_default());
    }
    Row::of(all, started.elapsed())
}
