//! Real `keel` processes on loopback, for end-to-end tests: start 1, 3 or 5 members on free
//! ports, kill -9 and restart them, and talk to them with the real `curl`. The partition suite
//! ([`jepsen`]) runs them in network namespaces instead.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test support: a failed step is a failed test")]

pub mod jepsen;

use std::collections::BTreeSet;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, PoisonError};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// The `keel` binary built alongside these tests (`KEEL_BIN` overrides).
pub fn keel_binary() -> PathBuf {
    server_binary("keel", "KEEL_BIN")
}

/// The `keelctl` binary built alongside these tests (`KEELCTL_BIN` overrides).
pub fn keelctl_binary() -> PathBuf {
    server_binary("keelctl", "KEELCTL_BIN")
}

/// A binary of keel-server called `name`, found next to the running executable; the
/// environment variable `override_var` names one elsewhere.
fn server_binary(name: &str, override_var: &str) -> PathBuf {
    if let Ok(bin) = std::env::var(override_var) {
        return PathBuf::from(bin);
    }
    let exe = std::env::current_exe().expect("executable path");
    // Tests run from target/<profile>/deps, binaries (keel-bench) from target/<profile>.
    let dir = exe.parent().expect("executable directory");
    let candidates = [dir.join(name), dir.parent().map(|d| d.join(name)).unwrap_or_default()];
    let found = candidates.iter().find(|p| p.is_file()).cloned();
    found.unwrap_or_else(|| {
        panic!("no {name} binary next to {}: build it first (cargo build -p keel-server)", exe.display())
    })
}

/// Poll `ready` every 100 ms until it holds (true) or `timeout` has passed (false): how tests
/// wait for processes without waiting forever.
pub fn wait_until(timeout: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if ready() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        sleep(Duration::from_millis(100));
    }
}

/// A port nobody listens on right now, and never handed out before in this process: the kernel
/// may give a just-released port again, and two members of one cluster (or two tests running
/// side by side) must not be told to listen on the same one.
pub fn free_port() -> u16 {
    static GIVEN: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    loop {
        let port =
            TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port");
        if GIVEN.lock().unwrap_or_else(PoisonError::into_inner).insert(port) {
            return port;
        }
    }
}

/// One member process and how to reach it.
pub struct Member {
    pub name: String,
    pub client_url: String,
    pub peer_url: String,
    pub data_dir: PathBuf,
    args: Vec<String>,
    log: PathBuf,
    child: Option<Child>,
}

impl Member {
    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).expect("log file");
        let child = Command::new(keel_binary())
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start keel");
        self.child = Some(child);
    }

    /// Whether the process is running.
    pub fn running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// What the member logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// A cluster of member processes sharing one temporary directory.
pub struct ProcessCluster {
    pub members: Vec<Member>,
    /// `--initial-cluster` entries (`name=url`) of every member started so far.
    initial: Vec<String>,
    token: String,
    extra: Vec<String>,
    dir: tempfile::TempDir,
}

impl ProcessCluster {
    /// Found an `n`-member cluster and wait until every member answers /health.
    pub fn start(n: usize) -> ProcessCluster {
        Self::start_with(n, &[])
    }

    /// Like [`ProcessCluster::start`], with extra flags for every member.
    pub fn start_with(n: usize, extra: &[&str]) -> ProcessCluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let ports: Vec<(u16, u16)> = (0..n).map(|_| (free_port(), free_port())).collect();
        let initial: Vec<String> =
            ports.iter().enumerate().map(|(i, (_, p))| format!("m{i}=http://127.0.0.1:{p}")).collect();
        let token = format!("test-{}", ports[0].0);
        let mut cluster = ProcessCluster {
            members: Vec::new(),
            initial: initial.clone(),
            token,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            dir,
        };
        for (i, (c, p)) in ports.into_iter().enumerate() {
            let member = cluster.member(&format!("m{i}"), c, p, "new");
            cluster.members.push(member);
        }
        for m in &mut cluster.members {
            m.spawn();
        }
        cluster.wait_healthy(Duration::from_secs(20));
        cluster
    }

    /// A one-member cluster started on the data directory packed in `tarball` (a `NAME.keel`
    /// folder, such as a fixture written by an earlier release), with the name, peer port and
    /// token it was founded with; waits until it answers /health.
    pub fn adopt(tarball: &Path, name: &str, peer_port: u16, token: &str) -> ProcessCluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let unpacked =
            Command::new("tar").arg("-xzf").arg(tarball).arg("-C").arg(dir.path()).status().expect("run tar");
        assert!(unpacked.success(), "tar -xzf {}", tarball.display());
        let initial = vec![format!("{name}=http://127.0.0.1:{peer_port}")];
        let mut cluster = ProcessCluster { members: Vec::new(), initial, token: token.into(), extra: Vec::new(), dir };
        let mut member = cluster.member(name, free_port(), peer_port, "new");
        member.spawn();
        cluster.members.push(member);
        cluster.wait_healthy(Duration::from_secs(20));
        cluster
    }

    /// A member's process description (not yet started).
    fn member(&self, name: &str, client_port: u16, peer_port: u16, state: &str) -> Member {
        let client_url = format!("http://127.0.0.1:{client_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        let data_dir = self.dir.path().join(format!("{name}.keel"));
        let mut args: Vec<String> = vec![
            "--name".into(),
            name.into(),
            "--data-dir".into(),
            data_dir.display().to_string(),
            "--listen-client-urls".into(),
            client_url.clone(),
            "--advertise-client-urls".into(),
            client_url.clone(),
            "--listen-peer-urls".into(),
            peer_url.clone(),
            "--initial-advertise-peer-urls".into(),
            peer_url.clone(),
            "--initial-cluster".into(),
            self.initial.join(","),
            "--initial-cluster-token".into(),
            self.token.clone(),
            "--initial-cluster-state".into(),
            state.into(),
        ];
        args.extend(self.extra.iter().cloned());
        let log = self.dir.path().join(format!("{name}.log"));
        Member { name: name.into(), client_url, peer_url, data_dir, args, log, child: None }
    }

    /// Add a member the way an operator does: announce it through `/v2/members` on member 0,
    /// then start it with `--initial-cluster-state existing`. Returns its index.
    pub fn add_member(&mut self) -> usize {
        let (c, p) = (free_port(), free_port());
        let name = format!("m{}", self.members.len());
        let peer_url = format!("http://127.0.0.1:{p}");
        let body = format!(r#"{{"peerURLs":["{peer_url}"]}}"#);
        let (code, answer) = curl(&[
            "-X",
            "POST",
            &format!("{}/v2/members", self.url(0)),
            "-H",
            "Content-Type: application/json",
            "-d",
            &body,
        ]);
        assert_eq!(code, 201, "member add: {answer}");
        self.initial.push(format!("{name}={peer_url}"));
        let mut member = self.member(&name, c, p, "existing");
        member.spawn();
        self.members.push(member);
        self.members.len() - 1
    }

    /// The client URL of member `i`.
    pub fn url(&self, i: usize) -> &str {
        &self.members[i].client_url
    }

    /// Wait until every running member reports a leader and lists every member by name (each
    /// has published itself); panics (with logs) on timeout.
    pub fn wait_healthy(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let running: Vec<usize> = (0..self.members.len()).filter(|i| self.members[*i].child.is_some()).collect();
            let published = |i: usize| {
                let (code, body) = curl(&[&format!("{}/v2/members", self.url(i))]);
                code == 200 && !body.contains(r#""name":"""#)
            };
            if running.iter().all(|i| curl(&[&format!("{}/health", self.url(*i))]).0 == 200 && published(*i)) {
                return;
            }
            if Instant::now() > deadline {
                let logs: Vec<String> =
                    self.members.iter().map(|m| format!("--- {} ---\n{}", m.name, m.log())).collect();
                panic!("cluster not healthy in {timeout:?}\n{}", logs.join("\n"));
            }
            sleep(Duration::from_millis(50));
        }
    }

    /// The index of the member that leads (from `/v2/stats/self`).
    pub fn leader(&self) -> Option<usize> {
        (0..self.members.len()).filter(|i| self.members[*i].child.is_some()).find(|i| {
            let (_, body) = curl(&[&format!("{}/v2/stats/self", self.url(*i))]);
            body.contains("StateLeader")
        })
    }

    /// Add member `i` back after it was removed, the way an operator does: announce its peer
    /// URL again through `/v2/members`, wipe its data directory and start it with
    /// `--initial-cluster-state existing`.
    pub fn add_back(&mut self, i: usize) {
        self.kill(i);
        let body = format!(r#"{{"peerURLs":["{}"]}}"#, self.members[i].peer_url);
        let survivor =
            (0..self.members.len()).find(|j| *j != i && self.members[*j].child.is_some()).expect("a running member");
        let (code, answer) = curl(&[
            "-X",
            "POST",
            &format!("{}/v2/members", self.url(survivor)),
            "-H",
            "Content-Type: application/json",
            "-d",
            &body,
        ]);
        assert_eq!(code, 201, "member add: {answer}");
        let member = &mut self.members[i];
        let state = member.args.iter().position(|a| a == "--initial-cluster-state").expect("state flag") + 1;
        member.args[state] = "existing".into();
        self.restart_with_lost_data(i);
    }

    /// `kill -9` member `i`.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.members[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start member `i` again with the same flags but an empty data directory: a lost disk.
    pub fn restart_with_lost_data(&mut self, i: usize) {
        self.kill(i);
        let _ = std::fs::remove_dir_all(&self.members[i].data_dir);
        self.members[i].spawn();
    }

    /// Member `i`'s exit code once it exits, within `timeout` (None: still running).
    pub fn exit_code(&mut self, i: usize, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        let child = self.members[i].child.as_mut()?;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return status.code();
            }
            sleep(Duration::from_millis(50));
        }
        None
    }

    /// Start member `i` again with the same flags and data directory.
    pub fn restart(&mut self, i: usize) {
        self.kill(i);
        self.members[i].spawn();
    }
}

impl Drop for ProcessCluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
    }
}

/// What one client command run left behind.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Run a prepared command to its end.
pub fn run(command: &mut Command) -> Run {
    let out = command.output().unwrap_or_else(|e| panic!("{command:?} does not run: {e}"));
    Run::from(out)
}

impl From<std::process::Output> for Run {
    fn from(out: std::process::Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// Whether `program` is on the PATH; when not, explain that `scripts/deps` installs it.
pub fn require_program(program: &str) {
    let found = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
        .unwrap_or(false);
    assert!(found, "{program} is not installed: run ./scripts/deps (Debian's etcd-client and etcd-server)");
}

/// A command line of the real `etcdctl` (3.4, v3 API) against `endpoints` (comma-separated).
pub fn etcdctl_command(endpoints: &str) -> Command {
    require_program("etcdctl");
    let mut command = Command::new("etcdctl");
    command.env("ETCDCTL_API", "3").arg("--endpoints").arg(endpoints);
    command
}

/// Run etcdctl against `endpoints` to its end, with `input` on stdin.
pub fn etcdctl(endpoints: &str, args: &[&str], input: &str) -> Run {
    let mut child = etcdctl_command(endpoints)
        .arg("--command-timeout=10s")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("etcdctl starts");
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input.as_bytes());
    }
    Run::from(child.wait_with_output().expect("etcdctl finishes"))
}

/// etcd 3.4 itself (Debian's etcd-server), the reference Keel's answers and speed are
/// compared with: one member, or a cluster on loopback; killed on drop.
pub struct ReferenceEtcd {
    /// The first member's client URL.
    pub client_url: String,
    /// Every member's client URL.
    pub client_urls: Vec<String>,
    _children: Processes,
    _dir: tempfile::TempDir,
}

impl ReferenceEtcd {
    /// Start one etcd member on free ports and wait until it is healthy.
    pub fn start() -> ReferenceEtcd {
        Self::start_with(&[])
    }

    /// Like [`ReferenceEtcd::start`], with extra flags.
    pub fn start_with(extra: &[&str]) -> ReferenceEtcd {
        Self::cluster(1, extra)
    }

    /// Start an `n`-member etcd cluster (with extra flags for each) and wait until every
    /// member is healthy.
    pub fn cluster(n: usize, extra: &[&str]) -> ReferenceEtcd {
        require_program("etcd");
        let dir = tempfile::tempdir().expect("temp dir");
        let ports: Vec<(u16, u16)> = (0..n).map(|_| (free_port(), free_port())).collect();
        let initial: Vec<String> =
            ports.iter().enumerate().map(|(i, (_, p))| format!("ref{i}=http://127.0.0.1:{p}")).collect();
        let token = format!("ref-{}", ports[0].0);
        let mut client_urls = Vec::new();
        let mut children = Vec::new();
        for (i, (c, p)) in ports.iter().enumerate() {
            let client_url = format!("http://127.0.0.1:{c}");
            let peer_url = format!("http://127.0.0.1:{p}");
            let child = Command::new("etcd")
                .args(["--name", &format!("ref{i}"), "--data-dir"])
                .arg(dir.path().join(format!("ref{i}.etcd")))
                .args(["--listen-client-urls", &client_url, "--advertise-client-urls", &client_url])
                .args(["--listen-peer-urls", &peer_url, "--initial-advertise-peer-urls", &peer_url])
                .args(["--initial-cluster", &initial.join(","), "--initial-cluster-token", &token])
                .args(extra)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start etcd");
            client_urls.push(client_url);
            children.push(child);
        }
        let etcd = ReferenceEtcd {
            client_url: client_urls[0].clone(),
            client_urls,
            _children: Processes(children),
            _dir: dir,
        };
        let healthy = wait_until(Duration::from_secs(30), || {
            etcd.client_urls.iter().all(|u| curl(&[&format!("{u}/health")]).0 == 200)
        });
        assert!(healthy, "reference etcd did not become healthy");
        etcd
    }
}

/// Processes killed (and reaped) when this is dropped, however a test ends.
pub struct Processes(pub Vec<Child>);

impl Drop for Processes {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Run `curl -s` with `args`; returns (HTTP status, body). Status 0 when nothing answered.
pub fn curl(args: &[&str]) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-s", "--max-time", "15", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("curl runs");
    parse_curl(&String::from_utf8_lossy(&out.stdout))
}

fn parse_curl(out: &str) -> (u16, String) {
    let (body, code) = out.rsplit_once('\n').unwrap_or(("", out));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

/// Start `curl -s` in the background (for `?wait=true` watches); read it with [`finish`].
pub fn curl_background(args: &[&str]) -> Child {
    Command::new("curl")
        .args(["-s", "--max-time", "30", "-w", "\n%{http_code}"])
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("curl runs")
}

/// Wait for a background curl and return (status, body).
pub fn finish(child: Child) -> (u16, String) {
    let out = child.wait_with_output().expect("curl finishes");
    parse_curl(&String::from_utf8_lossy(&out.stdout))
}

/// The JSON body of a response.
pub fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// Write `bytes` to a file in `dir` (for bodies too large for a command line).
pub fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::File::create(&path).and_then(|mut f| f.write_all(bytes)).expect("write file");
    path
}
