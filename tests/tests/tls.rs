//! TLS, as an etcd operator sets it up: a 3-member cluster with `https://` client and peer URLs,
//! client and peer certificates required and signed by one authority. curl, the real etcdctl
//! (gRPC over TLS, HTTP/2 chosen by ALPN) and keelctl all work with the right certificates;
//! clients without one, or speaking plain HTTP, are refused; so is an https URL without a
//! certificate at start-up. The certificates are made by the test (rcgen).

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test support: a failed step is a failed test")]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use keel_tests::{etcdctl_command, free_port, json, keel_binary, keelctl_binary, run, wait_until, Processes};
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};

/// An authority and one certificate it signed for 127.0.0.1 and localhost, good for serving
/// and for client authentication (members use it both ways, as etcd's docs suggest).
struct Pki {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    dir: PathBuf,
    authority: (rcgen::Certificate, KeyPair),
}

impl Pki {
    fn new(dir: &Path) -> Pki {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(DnType::CommonName, "keel test authority");
        let ca_key = KeyPair::generate().unwrap();
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let mut params = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, "keel member");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
        let write = |name: &str, pem: String| {
            let path = dir.join(name);
            std::fs::write(&path, pem).unwrap();
            path
        };
        Pki {
            ca: write("ca.pem", ca.pem()),
            cert: write("member.pem", cert.pem()),
            key: write("member-key.pem", key.serialize_pem()),
            dir: dir.to_path_buf(),
            authority: (ca, ca_key),
        }
    }

    /// A client certificate whose common name is `user`, and its key.
    fn client(&self, user: &str) -> (PathBuf, PathBuf) {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, user);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.authority.0, &self.authority.1).unwrap();
        let (cert_path, key_path) = (self.dir.join(format!("{user}.pem")), self.dir.join(format!("{user}-key.pem")));
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        (cert_path, key_path)
    }

    fn curl_args(&self) -> Vec<String> {
        [
            "--cacert",
            &self.ca.display().to_string(),
            "--cert",
            &self.cert.display().to_string(),
            "--key",
            &self.key.display().to_string(),
        ]
        .map(String::from)
        .to_vec()
    }
}

/// `curl -s` with extra arguments: (exit code, HTTP status, body).
fn curl(args: &[String]) -> (i32, u16, String) {
    let out =
        Command::new("curl").args(["-s", "--max-time", "10", "-w", "\n%{http_code}"]).args(args).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (out.status.code().unwrap_or(-1), code.trim().parse().unwrap_or(0), body.to_string())
}

#[test]
fn a_cluster_with_tls_on_client_and_peer_urls_serves_only_clients_with_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let ports: Vec<(u16, u16)> = (0..3).map(|_| (free_port(), free_port())).collect();
    let client = |i: usize| format!("https://127.0.0.1:{}", ports[i].0);
    let initial: Vec<String> =
        ports.iter().enumerate().map(|(i, (_, p))| format!("m{i}=https://127.0.0.1:{p}")).collect();
    let path = |p: &PathBuf| p.display().to_string();
    let members = Processes(
        (0..3)
            .map(|i| {
                let peer = format!("https://127.0.0.1:{}", ports[i].1);
                Command::new(keel_binary())
                    .args(["--name", &format!("m{i}"), "--data-dir", &path(&dir.path().join(format!("m{i}.keel")))])
                    .args(["--listen-client-urls", &client(i), "--advertise-client-urls", &client(i)])
                    .args(["--listen-peer-urls", &peer, "--initial-advertise-peer-urls", &peer])
                    .args(["--initial-cluster", &initial.join(","), "--initial-cluster-token", "tls-test"])
                    .args(["--cert-file", &path(&pki.cert), "--key-file", &path(&pki.key)])
                    .args(["--trusted-ca-file", &path(&pki.ca), "--client-cert-auth"])
                    .args(["--peer-cert-file", &path(&pki.cert), "--peer-key-file", &path(&pki.key)])
                    .args(["--peer-trusted-ca-file", &path(&pki.ca), "--peer-client-cert-auth"])
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap()
            })
            .collect(),
    );
    let with_certs = |url: String, extra: &[&str]| {
        let mut args = pki.curl_args();
        args.extend(extra.iter().map(|s| s.to_string()));
        args.push(url);
        curl(&args)
    };
    // Healthy means a leader was elected, which took Raft traffic over the TLS peer links.
    let healthy = wait_until(Duration::from_secs(20), || {
        (0..3).all(|i| {
            let (_, status, body) = with_certs(format!("{}/health", client(i)), &[]);
            status == 200 && body.contains(r#""health":"true""#)
        })
    });
    assert!(healthy, "the TLS cluster did not become healthy");

    // A write on one member (forwarded to the leader over a peer link), read on another.
    let (_, status, _) = with_certs(format!("{}/v2/keys/secret", client(1)), &["-X", "PUT", "-d", "value=kept"]);
    assert!(matches!(status, 200 | 201));
    let (_, status, body) = with_certs(format!("{}/v2/keys/secret?quorum=true", client(2)), &[]);
    assert_eq!((status, json(&body)["node"]["value"].clone()), (200, "kept".into()));

    // Without a client certificate, or in plain HTTP, nothing is served.
    let (code, status, _) = curl(&["--cacert".into(), path(&pki.ca), format!("{}/v2/keys/secret", client(0))]);
    assert!(code != 0 && status == 0, "served a client without a certificate (curl exit {code}, status {status})");
    let (_, status, _) = curl(&[format!("http://127.0.0.1:{}/v2/keys/secret", ports[0].0)]);
    assert_ne!(status, 200, "served plain HTTP on an https URL");

    // The real etcdctl speaks gRPC over TLS (HTTP/2 by ALPN).
    let endpoints = format!("127.0.0.1:{},127.0.0.1:{}", ports[0].0, ports[1].0);
    let tls_args = ["--cacert", &path(&pki.ca), "--cert", &path(&pki.cert), "--key", &path(&pki.key)];
    let put = run(etcdctl_command(&endpoints).args(tls_args).args(["put", "/v3key", "over-tls"]));
    assert_eq!((put.code, put.stdout.as_str()), (0, "OK\n"), "{}", put.stderr);
    let got = run(etcdctl_command(&endpoints).args(tls_args).args(["get", "/v3key", "--print-value-only"]));
    assert_eq!((got.code, got.stdout.as_str()), (0, "over-tls\n"), "{}", got.stderr);

    // keelctl, with the same flags etcdctl takes.
    let keelctl = |args: &[&str]| {
        run(Command::new(keelctl_binary()).env_remove("KEELCTL_ENDPOINTS").args(["--endpoints", &client(2)]).args(args))
    };
    let got = keelctl(&[&tls_args[..], &["get", "/secret"]].concat());
    assert_eq!((got.code, got.stdout.as_str()), (0, "/secret\nkept\n"), "{}", got.stderr);
    let health = keelctl(&[&tls_args[..], &["endpoint", "health", "--cluster"]].concat());
    assert_eq!((health.code, health.stdout.lines().count()), (0, 3), "{}{}", health.stdout, health.stderr);
    let untrusted = keelctl(&["get", "/secret"]);
    assert_eq!(untrusted.code, 1, "a server the system does not trust was believed: {}", untrusted.stdout);
    drop(members);
}

#[test]
fn an_https_url_without_a_certificate_is_refused_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let (c, p) = (free_port(), free_port());
    let start = |client: &str, peer: &str| {
        let out = Command::new(keel_binary())
            .args(["--listen-client-urls", client, "--advertise-client-urls", client])
            .args(["--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer])
            .current_dir(dir.path())
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (https, http) = (format!("https://127.0.0.1:{c}"), format!("http://127.0.0.1:{p}"));
    let (code, err) = start(&https, &http);
    assert_eq!(code, Some(1));
    assert!(
        err.contains(&format!(
            "TLS key/cert (--cert-file, --key-file) must be provided for client url {https} with HTTPS scheme"
        )),
        "{err}"
    );
    let (code, err) = start(&format!("http://127.0.0.1:{c}"), &format!("https://127.0.0.1:{p}"));
    assert_eq!(code, Some(1));
    assert!(
        err.contains(&format!("cannot listen on TLS for 127.0.0.1:{p}: KeyFile and CertFile are not presented")),
        "{err}"
    );
}

/// With `--client-cert-auth`, a verified client certificate's common name is the user, with no
/// password, as etcd: alice's certificate gets alice's permissions; a token still wins.
#[test]
fn a_client_certificate_names_the_user_when_auth_is_on() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let (client_port, peer_port) = (free_port(), free_port());
    let client = format!("https://127.0.0.1:{client_port}");
    let peer = format!("http://127.0.0.1:{peer_port}");
    let path = |p: &PathBuf| p.display().to_string();
    let _member = Processes(vec![Command::new(keel_binary())
        .args(["--data-dir", &path(&dir.path().join("m.keel"))])
        .args(["--listen-client-urls", &client, "--advertise-client-urls", &client])
        .args(["--listen-peer-urls", &peer, "--initial-advertise-peer-urls", &peer])
        .args(["--initial-cluster", &format!("default={peer}")])
        .args(["--cert-file", &path(&pki.cert), "--key-file", &path(&pki.key)])
        .args(["--trusted-ca-file", &path(&pki.ca), "--client-cert-auth"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap()]);
    let (alice_cert, alice_key) = pki.client("alice");
    let endpoint = format!("127.0.0.1:{client_port}");
    let as_member = ["--cacert", &path(&pki.ca), "--cert", &path(&pki.cert), "--key", &path(&pki.key)];
    let as_alice = ["--cacert", &path(&pki.ca), "--cert", &path(&alice_cert), "--key", &path(&alice_key)];
    let etcdctl = |tls: &[&str], args: &[&str]| run(etcdctl_command(&endpoint).args(tls).args(args));
    let up = wait_until(Duration::from_secs(20), || etcdctl(&as_member, &["endpoint", "health"]).code == 0);
    assert!(up, "the member did not start");
    for args in [
        &["user", "add", "root", "--new-user-password=pw"][..],
        &["user", "grant-role", "root", "root"],
        &["user", "add", "alice", "--no-password"],
        &["role", "add", "app"],
        &["role", "grant-permission", "app", "readwrite", "/app/", "--prefix"],
        &["user", "grant-role", "alice", "app"],
        &["auth", "enable"],
    ] {
        let r = etcdctl(&as_member, args);
        assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
    }
    let put = etcdctl(&as_alice, &["put", "/app/x", "by-certificate"]);
    assert_eq!((put.code, put.stdout.as_str()), (0, "OK\n"), "{}", put.stderr);
    let denied = etcdctl(&as_alice, &["put", "/other", "x"]);
    assert!(denied.stderr.contains("etcdserver: permission denied"), "{}", denied.stderr);
    // The member's certificate names "keel member", who is no user: refused.
    let unknown = etcdctl(&as_member, &["get", "/app/x"]);
    assert!(unknown.stderr.contains("etcdserver: permission denied"), "{}", unknown.stderr);
    // A password login takes precedence over the certificate.
    let root = etcdctl(&as_alice, &["--user=root:pw", "get", "/other", "--print-value-only"]);
    assert_eq!(root.code, 0, "{}", root.stderr);
}
