//! The member processes of a run: each a real `keel` in its own namespace (see [`super::hosts`]),
//! started, `kill -9`ed, paused with SIGSTOP, restarted under a shifted clock (libfaketime), and
//! removed from and added back to the cluster through the v3 Cluster API, as an operator would.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::hosts::{ip, namespace};
use crate::{curl, keel_binary};

/// Where every member serves clients and peers (each has its own address).
const CLIENT_PORT: u16 = 2379;
const PEER_PORT: u16 = 2380;
/// Debian's libfaketime (package libfaketime), preloaded to shift a member's clocks.
fn libfaketime() -> PathBuf {
    PathBuf::from(format!("/usr/lib/{}-linux-gnu/faketime/libfaketimeMT.so.1", std::env::consts::ARCH))
}

/// Whether clock offsets can be injected on this machine.
pub fn faketime_available() -> bool {
    libfaketime().is_file()
}

/// Member `i`'s client address.
pub fn client_addr(i: usize) -> SocketAddr {
    SocketAddr::new(ip(i).into(), CLIENT_PORT)
}

fn client_url(i: usize) -> String {
    format!("http://{}", client_addr(i))
}

fn peer_url(i: usize) -> String {
    format!("http://{}:{PEER_PORT}", ip(i))
}

/// A JSON answer, or `Null` for anything else (a member mid-crash may answer anything).
fn parse(answer: &str) -> Value {
    serde_json::from_str(answer).unwrap_or(Value::Null)
}

/// Member `i`'s name (`m1`, `m2`, ...), as logs and timelines show it.
pub(crate) fn name(i: usize) -> String {
    format!("m{}", i + 1)
}

/// One member process.
struct Member {
    data_dir: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    paused: bool,
    /// Seconds its clocks are shifted by (libfaketime), 0 for none.
    clock_offset_s: i64,
    /// `--initial-cluster-state`: `new` for a founder, `existing` once it was added back.
    state: &'static str,
}

/// Every member of a run.
pub struct Members {
    members: Vec<Member>,
    /// Indexes of the members currently in the cluster's configuration.
    configured: Vec<usize>,
    token: String,
    election_ms: u64,
}

impl Members {
    /// Found a cluster of `count` members (data and logs under `dir`) and wait until it serves.
    pub fn start(count: usize, dir: &Path, election_ms: u64) -> Result<Members, String> {
        let members = (0..count)
            .map(|i| Member {
                data_dir: dir.join(format!("{}.keel", name(i))),
                log: dir.join(format!("{}.log", name(i))),
                child: None,
                paused: false,
                clock_offset_s: 0,
                state: "new",
            })
            .collect();
        let mut all = Members {
            members,
            configured: (0..count).collect(),
            token: format!("keelj-{}", std::process::id()),
            election_ms,
        };
        for i in 0..count {
            all.spawn(i)?;
        }
        all.wait_serving(Duration::from_secs(30))?;
        Ok(all)
    }

    /// How many members the run has (configured or not).
    pub fn count(&self) -> usize {
        self.members.len()
    }

    fn spawn(&mut self, i: usize) -> Result<(), String> {
        let initial: Vec<String> = self.configured.iter().map(|&j| format!("{}={}", name(j), peer_url(j))).collect();
        let heartbeat = (self.election_ms / 10).max(10);
        let m = &mut self.members[i];
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&m.log).map_err(|e| e.to_string())?;
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &namespace(i)]).arg(keel_binary());
        cmd.args(["--name", &name(i), "--data-dir", &m.data_dir.display().to_string()]);
        cmd.args(["--listen-client-urls", &client_url(i), "--advertise-client-urls", &client_url(i)]);
        cmd.args(["--listen-peer-urls", &peer_url(i), "--initial-advertise-peer-urls", &peer_url(i)]);
        cmd.args([
            "--initial-cluster",
            &initial.join(","),
            "--initial-cluster-token",
            &self.token,
            "--initial-cluster-state",
            m.state,
        ]);
        cmd.args(["--heartbeat-interval", &heartbeat.to_string(), "--election-timeout", &self.election_ms.to_string()]);
        if m.clock_offset_s != 0 {
            cmd.env("LD_PRELOAD", libfaketime()).env("FAKETIME", format!("{:+}s", m.clock_offset_s));
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .map_err(|e| format!("start {}: {e}", name(i)))?;
        m.child = Some(child);
        m.paused = false;
        Ok(())
    }

    /// Whether member `i` is running (even if paused).
    fn running(&mut self, i: usize) -> bool {
        self.members[i].child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Wait until every running member answers `/health`.
    fn wait_serving(&mut self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            let up: Vec<usize> = (0..self.count()).filter(|&i| self.running(i)).collect();
            if up.iter().all(|&i| curl(&["--max-time", "2", &format!("{}/health", client_url(i))]).0 == 200) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("members {up:?} did not all become healthy within {timeout:?}"));
            }
            sleep(Duration::from_millis(200));
        }
    }

    /// The member that believes it leads, if one answers.
    pub fn leader(&mut self) -> Option<usize> {
        (0..self.count()).filter(|&i| self.running(i) && !self.members[i].paused).find(|&i| {
            let (_, body) = curl(&["--max-time", "1", &format!("{}/v2/stats/self", client_url(i))]);
            body.contains("StateLeader")
        })
    }

    /// `kill -9` member `i`.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.members[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.members[i].paused = false;
    }

    /// Start member `i` again from its data directory, its clocks shifted by `clock_offset_s`.
    pub fn restart(&mut self, i: usize, clock_offset_s: i64) -> Result<(), String> {
        self.kill(i);
        self.members[i].clock_offset_s = clock_offset_s;
        self.spawn(i)
    }

    /// Signal member `i`'s process (quietly: it may have stopped by itself, e.g. when removed).
    fn signal(&mut self, i: usize, signal: &str) {
        if let Some(child) = &self.members[i].child {
            let _ = Command::new("kill").args([signal, &child.id().to_string()]).stderr(Stdio::null()).status();
        }
    }

    /// SIGSTOP member `i`: it stays connected but does nothing.
    pub fn pause(&mut self, i: usize) {
        self.signal(i, "-STOP");
        self.members[i].paused = true;
    }

    /// SIGCONT member `i`.
    pub fn resume(&mut self, i: usize) {
        self.signal(i, "-CONT");
        self.members[i].paused = false;
    }

    /// A v3 Cluster API call through the first member in the configuration that answers it.
    fn cluster_call(&self, call: &str, body: &Value) -> Result<Value, String> {
        let mut last = String::new();
        for _ in 0..20 {
            for &j in &self.configured {
                let (code, answer) = curl(&[
                    "--max-time",
                    "3",
                    "-X",
                    "POST",
                    &format!("{}/v3/cluster/{call}", client_url(j)),
                    "-d",
                    &body.to_string(),
                ]);
                if code == 200 {
                    return Ok(parse(&answer));
                }
                last = format!("{code} {answer}");
            }
            sleep(Duration::from_millis(500));
        }
        Err(format!("cluster/{call} {body}: {last}"))
    }

    /// Member `i`'s ID, from the member list.
    fn id_of(&self, i: usize) -> Result<String, String> {
        let list = self.cluster_call("member/list", &json!({}))?;
        let peer = peer_url(i);
        let found = list["members"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|m| m["peerURLs"].as_array().is_some_and(|u| u.iter().any(|u| u == peer.as_str())));
        found
            .and_then(|m| m["ID"].as_str().map(String::from))
            .ok_or_else(|| format!("{} is not in the member list {list}", name(i)))
    }

    /// Remove member `i` from the cluster, stop it and wipe its data; then add it back as a
    /// learner with empty storage, and promote it once it has caught up. Returns what happened.
    pub fn remove_and_rejoin(&mut self, i: usize) -> Result<String, String> {
        let id = self.id_of(i)?;
        // A change can take effect although its answer was lost; the member list tells.
        if let Err(e) = self.cluster_call("member/remove", &json!({ "ID": id })) {
            if self.id_of(i).is_ok() {
                return Err(e);
            }
        }
        self.configured.retain(|&j| j != i);
        self.kill(i);
        let _ = std::fs::remove_dir_all(&self.members[i].data_dir);
        let new_id = match self.cluster_call("member/add", &json!({ "peerURLs": [peer_url(i)], "isLearner": true })) {
            Ok(added) => added["member"]["ID"].as_str().unwrap_or_default().to_string(),
            Err(e) => self.id_of(i).map_err(|_| e)?,
        };
        self.configured.push(i);
        self.configured.sort_unstable();
        self.members[i].state = "existing";
        self.spawn(i)?;
        // A learner can be promoted once its log is close to the leader's: retry until then.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match self.cluster_call("member/promote", &json!({ "ID": new_id })) {
                Ok(_) => return Ok(format!("removed {} (ID {id}), re-added as learner {new_id}, promoted", name(i))),
                Err(e) if Instant::now() > deadline => {
                    return Err(format!("removed and re-added {} but could not promote it: {e}", name(i)))
                }
                Err(_) => sleep(Duration::from_millis(500)),
            }
        }
    }

    /// After the faults: every member resumed and running, with its clock back in step.
    pub fn restore(&mut self) -> Result<(), String> {
        for i in 0..self.count() {
            if self.members[i].paused {
                self.resume(i);
            }
            if !self.running(i) || self.members[i].clock_offset_s != 0 {
                self.restart(i, 0)?;
            }
        }
        self.wait_serving(Duration::from_secs(60))
    }

    /// Each member's key-space hash and revision (`None` where it did not answer).
    pub fn hashes(&self) -> Vec<Option<(String, String)>> {
        (0..self.count())
            .map(|i| {
                let (code, answer) = curl(&[
                    "--max-time",
                    "3",
                    "-X",
                    "POST",
                    &format!("{}/v3/maintenance/hash", client_url(i)),
                    "-d",
                    "{}",
                ]);
                let v = parse(&answer);
                (code == 200)
                    .then(|| (v["header"]["revision"].as_str().unwrap_or("0").to_string(), v["hash"].to_string()))
            })
            .collect()
    }

    /// Copy every member's log into `dir`.
    pub fn save_logs(&self, dir: &Path) {
        for (i, m) in self.members.iter().enumerate() {
            let _ = std::fs::copy(&m.log, dir.join(format!("{}.log", name(i))));
        }
    }
}

impl Drop for Members {
    fn drop(&mut self) {
        for i in 0..self.count() {
            self.resume(i);
            self.kill(i);
        }
    }
}
