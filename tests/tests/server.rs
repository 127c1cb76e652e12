//! The `keel` binary as an operator meets it: the README's no-flag start, status endpoints,
//! membership listing, start-up errors and exit codes.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test support: a failed step is a failed test")]

use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use keel_tests::{curl, free_port, json, keel_binary, wait_until, ProcessCluster};

#[test]
fn with_no_flags_keel_serves_on_2379_with_data_in_default_keel() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(keel_binary()).current_dir(dir.path()).stderr(Stdio::null()).spawn().unwrap();
    let mut healthy = false;
    for _ in 0..200 {
        if curl(&["http://127.0.0.1:2379/health"]) == (200, r#"{"health":"true"}"#.to_string()) {
            healthy = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(healthy, "no healthy member on 127.0.0.1:2379");
    assert!(dir.path().join("default.keel").is_dir(), "data directory ./default.keel was not created");
}

#[test]
fn status_endpoints_answer_like_etcds() {
    let c = ProcessCluster::start(1);
    let (code, body) = curl(&[&format!("{}/version", c.url(0))]);
    assert_eq!((code, json(&body)), (200, serde_json::json!({"etcdserver": "3.4.0", "etcdcluster": "3.4.0"})));
    let (code, body) = curl(&[&format!("{}/metrics", c.url(0))]);
    assert_eq!(code, 200);
    assert!(body.contains("keel_server_has_leader 1"), "{body}");
    assert!(body.contains("keel_disk_fsync_duration_seconds_count"));
    let (code, body) = curl(&[&format!("{}/v2/members", c.url(0))]);
    assert_eq!(code, 200);
    let members = json(&body)["members"].as_array().cloned().unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!(members[0]["name"], "m0");
    assert_eq!(members[0]["clientURLs"][0], c.url(0));
    let (code, _) = curl(&[&format!("{}/no/such/path", c.url(0))]);
    assert_eq!(code, 404);
}

#[test]
fn start_up_mistakes_exit_with_a_clear_message() {
    let run = |args: &[&str]| {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(keel_binary()).args(args).current_dir(dir.path()).output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (code, err) = run(&["--no-such-flag"]);
    assert_eq!(code, Some(2), "unknown flags exit 2 (usage)");
    assert!(err.contains("--no-such-flag"), "{err}");

    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = format!("http://{}", busy.local_addr().unwrap());
    let peer = format!("http://127.0.0.1:{}", free_port());
    let (code, err) =
        run(&["--listen-client-urls", &taken, "--listen-peer-urls", &peer, "--initial-advertise-peer-urls", &peer]);
    assert_eq!(code, Some(1));
    assert!(err.contains("cannot listen for clients"), "{err}");

    let file = tempfile::NamedTempFile::new().unwrap();
    let under_file = file.path().join("data");
    let (code, err) = run(&["--data-dir", under_file.to_str().unwrap()]);
    assert_eq!(code, Some(1));
    assert!(err.contains("not writable"), "{err}");

    let (code, err) = run(&["--name", "x", "--initial-cluster", "y=http://127.0.0.1:1"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("couldn't find local name"), "{err}");
}

#[test]
fn a_founder_will_not_found_a_cluster_that_already_runs() {
    let mut c = ProcessCluster::start(3);
    // Its disk lost, a founding member restarted with the same flags would vote with an empty
    // log; like etcd, it refuses and says why.
    c.restart_with_lost_data(2);
    assert_eq!(c.exit_code(2, Duration::from_secs(10)), Some(1), "{}", c.members[2].log());
    let log = c.members[2].log();
    assert!(log.contains("has already been bootstrapped"), "{log}");

    // Flags that name this cluster's members under another cluster token.
    let own = format!("http://127.0.0.1:{}", free_port());
    let client = format!("http://127.0.0.1:{}", free_port());
    let initial = format!("m0={},x={own}", c.members[0].peer_url);
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(keel_binary())
        .args(["--name", "x", "--initial-cluster", &initial, "--initial-cluster-token", "some-other-cluster"])
        .args(["--listen-peer-urls", &own, "--initial-advertise-peer-urls", &own, "--listen-client-urls", &client])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("belongs to cluster"), "{err}");
}

/// One member on free loopback ports with its data in a temporary directory, started and
/// stopped by hand: for tests of restarts and of the process itself.
struct Lone {
    dir: tempfile::TempDir,
    client: String,
    args: Vec<String>,
}

impl Lone {
    fn new(extra: &[&str]) -> Lone {
        let client = format!("http://127.0.0.1:{}", free_port());
        let peer = format!("http://127.0.0.1:{}", free_port());
        let mut args: Vec<String> = [
            "--listen-client-urls",
            &client,
            "--advertise-client-urls",
            &client,
            "--listen-peer-urls",
            &peer,
            "--initial-advertise-peer-urls",
            &peer,
        ]
        .map(String::from)
        .to_vec();
        args.extend(extra.iter().map(|a| a.to_string()));
        Lone { dir: tempfile::tempdir().unwrap(), client, args }
    }

    /// Start it (with `extra` flags) and wait until it answers `/health`.
    fn start(&self, extra: &[&str], stderr: Stdio) -> Child {
        let mut child = Command::new(keel_binary())
            .args(&self.args)
            .args(extra)
            .current_dir(self.dir.path())
            .stderr(stderr)
            .spawn()
            .unwrap();
        if !wait_until(Duration::from_secs(10), || curl(&[&self.url("/health")]).0 == 200) {
            let _ = child.kill();
            panic!("keel did not become healthy");
        }
        child
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.client)
    }
}

/// Stop a member with SIGTERM and collect what it wrote.
fn terminate(child: Child) -> Output {
    assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
    child.wait_with_output().unwrap()
}

#[test]
fn a_data_directory_keeps_the_ids_it_was_made_with() {
    let member = Lone::new(&[]);
    let log = member.dir.path().join("keel.log");
    let log_file = || Stdio::from(std::fs::OpenOptions::new().create(true).append(true).open(&log).unwrap());
    let first = member.start(&[], log_file());
    let id = json(&curl(&[&member.url("/v2/stats/self")]).1)["id"].clone();
    assert!(matches!(curl(&["-X", "PUT", &member.url("/v2/keys/kept"), "-d", "value=yes"]).0, 200 | 201));
    terminate(first);

    // Restarted with flags that derive other ids (another token): as etcd, the data directory's
    // ids win, its data is served, and the ignored flags are reported.
    let again = member.start(&["--initial-cluster-token", "another-cluster"], log_file());
    assert_eq!(json(&curl(&[&member.url("/v2/stats/self")]).1)["id"], id);
    let (_, body) = curl(&[&member.url("/v2/keys/kept")]);
    assert_eq!(json(&body)["node"]["value"], "yes");
    terminate(again);
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("are ignored"), "{logged}");
}

#[test]
fn sigterm_stops_gracefully_and_json_logs_are_json() {
    let member = Lone::new(&["--log-format", "json"]);
    let child = member.start(&[], Stdio::piped());
    assert!(matches!(curl(&["-X", "PUT", &member.url("/v2/keys/kept"), "-d", "value=yes"]).0, 200 | 201));
    let out = terminate(child);
    assert_eq!(out.status.code(), Some(0), "SIGTERM is a clean stop");
    let logs = String::from_utf8_lossy(&out.stderr);
    let first = logs.lines().next().expect("some log lines");
    assert!(json(first).is_object(), "not a JSON log line: {first}");
    let child = member.start(&[], Stdio::piped());
    let (_, body) = curl(&[&member.url("/v2/keys/kept")]);
    assert_eq!(json(&body)["node"]["value"], "yes");
    terminate(child);
}
