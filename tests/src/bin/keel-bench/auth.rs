//! The auth rows: Authenticate calls per second (bcrypt at etcd's default cost, so this measures
//! that the check runs off the member's driver and in parallel), and puts with auth off and then
//! on (every put checked against the user's permissions), against Keel and etcd 3.4 on the same
//! machine, through the same client. The bar: Keel loses at most 10% of its put rate
//! with auth on.

use etcd_client::{Client, ConnectOptions};
use keel_tests::{ProcessCluster, ReferenceEtcd};

use crate::v3::{load, Row};
use crate::Options;

const USER: &str = "root";
const PASSWORD: &str = "bench-password";
/// 36 bytes, as the other v3 rows write.
const VALUE: &str = "0123456789abcdef0123456789abcdef0123";

/// Run the rows on Keel, then on etcd, and print them side by side.
pub fn compare(o: &Options) {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let members = if o.members_given { o.members } else { 1 };
    let keel = {
        let cluster = ProcessCluster::start(members);
        let endpoints: Vec<String> = (0..members).map(|i| cluster.url(i).to_string()).collect();
        rt.block_on(rows(&endpoints, o))
    };
    let etcd = {
        let cluster = ReferenceEtcd::cluster(members, &[]);
        rt.block_on(rows(&cluster.client_urls, o))
    };
    println!("keel-bench --v3 --auth: {members} member(s), {} s per row, 36-byte values, bcrypt cost 10", o.seconds);
    println!("columns: ops/s, p50 ms, p99 ms, max ms; ratio: Keel ÷ etcd ops/s");
    println!("{:<38} {:>34} {:>34} {:>6}", "workload", "keel", "etcd 3.4", "ratio");
    for ((name, k), (_, e)) in keel.iter().zip(&etcd) {
        let ratio = k.ops_per_s / e.ops_per_s.max(f64::MIN_POSITIVE);
        println!("{name:<38} {} {} {ratio:>6.2}", k.cell(), e.cell());
    }
    for (system, measured) in [("keel", &keel), ("etcd", &etcd)] {
        let on_off: Vec<String> = measured
            .chunks(3)
            .map(|c| format!("{:.2}", c[1].1.ops_per_s / c[0].1.ops_per_s.max(f64::MIN_POSITIVE)))
            .collect();
        println!("{system}: put/s with auth on ÷ off, per client count: {}", on_off.join(", "));
    }
}

/// For each client count: puts with auth off, then (auth enabled once) puts as root and
/// Authenticate calls; named rows in that order.
async fn rows(endpoints: &[String], o: &Options) -> Vec<(String, Row)> {
    let put = |mut c: Client, n: u64| async move { c.put(format!("bench/{n}"), VALUE, None).await.map(|_| c) };
    let mut off = Vec::new();
    for &clients in &o.clients {
        off.push(load(endpoints, None, clients, o, put).await);
    }
    let mut setup = Client::connect(endpoints, None).await.expect("connect");
    setup.user_add(USER, PASSWORD, None).await.expect("user add");
    setup.user_grant_role(USER, "root").await.expect("grant root");
    setup.auth_enable().await.expect("auth enable");
    let login = Some(ConnectOptions::new().with_user(USER, PASSWORD));
    let mut out = Vec::new();
    for (&clients, off) in o.clients.iter().zip(off) {
        let on = load(endpoints, login.clone(), clients, o, put).await;
        let logins = load(endpoints, login.clone(), clients, o, |c, _| async move {
            c.auth_client().authenticate(USER.into(), PASSWORD.into()).await.map(|_| c)
        })
        .await;
        out.push((format!("put, {clients} clients, auth off"), off));
        out.push((format!("put, {clients} clients, auth on"), on));
        out.push((format!("authenticate, {clients} clients"), logins));
    }
    out
}
