//! One "host" per member: a network namespace with its own address on a bridge, so a partition
//! is real packet loss — nftables rules inside a namespace drop what comes from the cut-off
//! peers — rather than a flag inside Keel. Clients stay in the root namespace, on the bridge,
//! and reach every member throughout (as Jepsen's clients do).

use std::net::Ipv4Addr;
use std::process::Command;

/// Names and addresses all start with this, so a run cleans up what a killed run left behind.
const PREFIX: &str = "keelj";
/// The bridge joining the hosts and the root namespace.
const BRIDGE: &str = "keelj-br";
/// The nftables table each namespace filters with.
const TABLE: &str = "keelj";

/// Member `i`'s namespace.
pub fn namespace(i: usize) -> String {
    format!("{PREFIX}-n{i}")
}

/// Member `i`'s address.
pub fn ip(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 213, 0, i as u8 + 1)
}

/// The root namespace's address on the bridge (where clients and the nemesis are).
const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(10, 213, 0, 254);

/// Run a command; an error says which one failed and what it printed.
fn sh(program: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(program).args(args).output().map_err(|e| format!("{program}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{program} {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// `nft` inside member `i`'s namespace.
fn nft(i: usize, rule: &str) -> Result<(), String> {
    let ns = namespace(i);
    let mut args = vec!["netns", "exec", ns.as_str(), "nft"];
    args.extend(rule.split_whitespace());
    sh("ip", &args)
}

/// Why this machine cannot host the suite, if it cannot: it needs root, iproute2 and nftables.
pub fn unavailable() -> Option<String> {
    let root = Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if !root {
        return Some("the partition suite needs root (network namespaces and nftables)".into());
    }
    for (tool, package) in [("ip", "iproute2"), ("nft", "nftables")] {
        if Command::new(tool).arg("-V").output().is_err() {
            return Some(format!("`{tool}` is missing: install Debian's {package} (scripts/deps does)"));
        }
    }
    None
}

/// The hosts of one run; dropping it removes the namespaces and the bridge.
pub struct Hosts {
    count: usize,
}

impl Hosts {
    /// Create `count` namespaces on a fresh bridge, each with an empty filter table.
    pub fn create(count: usize) -> Result<Hosts, String> {
        remove_leftovers();
        let hosts = Hosts { count };
        let cidr = format!("{CLIENT_IP}/24");
        sh("ip", &["link", "add", BRIDGE, "type", "bridge"])?;
        // Where br_netfilter is loaded (Docker hosts), bridged packets would also pass the host's
        // iptables, whose FORWARD policy may drop them: keep this bridge out of it (older
        // kernels lack the option; there the host's rules decide).
        let _ = sh("ip", &["link", "set", BRIDGE, "type", "bridge", "nf_call_iptables", "0"]);
        sh("ip", &["addr", "add", &cidr, "dev", BRIDGE])?;
        sh("ip", &["link", "set", BRIDGE, "up"])?;
        for i in 0..count {
            let (ns, outside, inside) = (namespace(i), format!("{PREFIX}-h{i}"), format!("{PREFIX}-v{i}"));
            sh("ip", &["netns", "add", &ns])?;
            sh("ip", &["link", "add", &outside, "type", "veth", "peer", "name", &inside])?;
            sh("ip", &["link", "set", &inside, "netns", &ns])?;
            sh("ip", &["link", "set", &outside, "master", BRIDGE])?;
            sh("ip", &["link", "set", &outside, "up"])?;
            let addr = format!("{}/24", ip(i));
            sh("ip", &["netns", "exec", &ns, "ip", "addr", "add", &addr, "dev", &inside])?;
            sh("ip", &["netns", "exec", &ns, "ip", "link", "set", &inside, "up"])?;
            sh("ip", &["netns", "exec", &ns, "ip", "link", "set", "lo", "up"])?;
            nft(i, &format!("add table inet {TABLE}"))?;
            nft(i, &format!("add chain inet {TABLE} input {{ type filter hook input priority 0 ; }}"))?;
        }
        Ok(hosts)
    }

    /// Drop every packet `from` sends to `to` (one way; cut both ways for a full partition).
    pub fn drop_packets(&self, from: usize, to: usize) -> Result<(), String> {
        nft(to, &format!("add rule inet {TABLE} input ip saddr {} drop", ip(from)))
    }

    /// Cut every link between the two groups, both ways.
    pub fn partition(&self, a: &[usize], b: &[usize]) -> Result<(), String> {
        for &x in a {
            for &y in b {
                self.drop_packets(x, y)?;
                self.drop_packets(y, x)?;
            }
        }
        Ok(())
    }

    /// Remove every rule: the network is whole again.
    pub fn heal(&self) -> Result<(), String> {
        (0..self.count).try_for_each(|i| nft(i, &format!("flush chain inet {TABLE} input")))
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        remove_leftovers();
    }
}

/// Remove this suite's namespaces, veths and bridge, whoever made them, and the processes a
/// killed run left in them (some perhaps stopped with SIGSTOP).
fn remove_leftovers() {
    if let Ok(out) = Command::new("ip").args(["netns", "list"]).output() {
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let name = line.split_whitespace().next().unwrap_or_default();
            if name.starts_with(&format!("{PREFIX}-")) {
                if let Ok(pids) = Command::new("ip").args(["netns", "pids", name]).output() {
                    for pid in String::from_utf8_lossy(&pids.stdout).split_whitespace() {
                        let _ = sh("kill", &["-CONT", pid]);
                        let _ = sh("kill", &["-KILL", pid]);
                    }
                }
                let _ = sh("ip", &["netns", "del", name]);
            }
        }
    }
    // A namespace outlives its deletion while the kernel still holds sockets of it (connections
    // of killed members, cut off mid-close), and its veth with it: delete the veths directly.
    if let Ok(out) = Command::new("ip").args(["-o", "link", "show"]).output() {
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let name = line.split(':').nth(1).unwrap_or_default().trim().split('@').next().unwrap_or_default();
            if name.starts_with(&format!("{PREFIX}-")) {
                let _ = sh("ip", &["link", "del", name]);
            }
        }
    }
}
