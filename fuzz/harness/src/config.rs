//! Target `config`: the `keel` command line, `--initial-cluster` strings and YAML configuration
//! files. Whatever the input, parsing ends in a configuration or in a [`ConfigError`] with a
//! message, and an accepted configuration is one the server can start from.

use clap::Parser;
use keel_server::config::{parse_initial_cluster, ConfigError, Flags, ServerConfig};

/// The target's body. The first byte chooses what the rest is: `0` a command line (one
/// argument per line), `1` an `--initial-cluster` value, `2` a YAML configuration file.
pub fn run(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else { return };
    let text = String::from_utf8_lossy(rest);
    match mode % 3 {
        0 => {
            let args = std::iter::once("keel").chain(text.split('\n'));
            if let Ok(flags) = Flags::try_parse_from(args) {
                check(ServerConfig::from_flags(&flags));
            }
        }
        1 => match parse_initial_cluster(&text) {
            Ok(members) => {
                assert!(!members.is_empty(), "an accepted --initial-cluster names a member");
                for (_, urls) in &members {
                    assert!(urls.iter().all(|u| keel_net::peer::host_port(u).is_some()), "{urls:?}");
                }
            }
            Err(e) => explained(&e),
        },
        _ => {
            let dir = tempfile::tempdir().expect("a temporary directory");
            let path = dir.path().join("keel.yaml");
            std::fs::write(&path, text.as_bytes()).expect("writing the config file");
            let flags = Flags::try_parse_from(["keel", "--config-file", path.to_str().expect("a UTF-8 path")])
                .expect("a plain command line");
            match flags.with_config_file() {
                Ok((flags, _ignored)) => check(ServerConfig::from_flags(&flags)),
                Err(e) => explained(&e),
            }
        }
    }
}

/// An accepted configuration is usable; a refused one says why.
fn check(config: Result<ServerConfig, ConfigError>) {
    match config {
        Ok(c) => {
            assert!(c.tick_ms > 0 && c.election_ticks >= 5, "{c:?}");
            assert!(c.member_id != 0, "{c:?}");
            assert!(c.peers.iter().any(|m| m.id == c.member_id), "the member is one of its peers: {c:?}");
            assert!(!c.listen_client.is_empty() && !c.advertise_client_urls.is_empty(), "{c:?}");
        }
        Err(e) => explained(&e),
    }
}

fn explained(e: &ConfigError) {
    assert!(!e.0.trim().is_empty(), "a configuration error says what is wrong");
}
