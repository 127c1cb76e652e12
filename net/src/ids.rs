//! Member and cluster ids, derived the way etcd derives them so that a Keel cluster configured
//! like an etcd cluster gets the same ids: a member's id is the first 8 bytes (big-endian) of
//! SHA-1 over its sorted peer URLs and the cluster token; the cluster's id is the same over
//! its members' ids, sorted, as 8-byte big-endian numbers.

use sha1::{Digest, Sha1};

/// A founding member's id from its peer URLs and the `--initial-cluster-token`.
pub fn member_id(peer_urls: &[String], token: &str) -> u64 {
    first_u64(&member_digest(peer_urls, token).finalize())
}

/// The id `member add` gives a new member: its peer URLs and the token as for a founder, and
/// the raft index the cluster had applied when it was added (etcd mixes in the time). So a
/// member removed and added back at the same address gets a new id, and the old one — which
/// the log says was removed — cannot stop it.
pub fn added_member_id(peer_urls: &[String], token: &str, applied_index: u64) -> u64 {
    let mut hasher = member_digest(peer_urls, token);
    hasher.update(applied_index.to_be_bytes());
    first_u64(&hasher.finalize())
}

fn member_digest(peer_urls: &[String], token: &str) -> Sha1 {
    let mut urls = peer_urls.to_vec();
    urls.sort();
    let mut hasher = Sha1::new();
    for u in &urls {
        hasher.update(u.as_bytes());
    }
    hasher.update(token.as_bytes());
    hasher
}

/// The cluster id of a cluster founded by these members.
pub fn cluster_id(member_ids: &[u64]) -> u64 {
    let mut ids = member_ids.to_vec();
    ids.sort_unstable();
    let mut hasher = Sha1::new();
    for id in ids {
        hasher.update(id.to_be_bytes());
    }
    first_u64(&hasher.finalize())
}

fn first_u64(digest: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_match_etcds_for_its_default_single_member_cluster() {
        // etcd 3.4 started with no flags reports member 8e9e05c52164694d in cluster
        // cdf818194e3a8c32 (peer URL http://localhost:2380, token etcd-cluster).
        let id = member_id(&["http://localhost:2380".into()], "etcd-cluster");
        assert_eq!(format!("{id:x}"), "8e9e05c52164694d");
        assert_eq!(format!("{:x}", cluster_id(&[id])), "cdf818194e3a8c32");
    }

    #[test]
    fn url_order_does_not_matter_and_the_token_does() {
        let a = member_id(&["http://b:2380".into(), "http://a:2380".into()], "t");
        let b = member_id(&["http://a:2380".into(), "http://b:2380".into()], "t");
        assert_eq!(a, b);
        assert_ne!(a, member_id(&["http://a:2380".into(), "http://b:2380".into()], "u"));
    }

    #[test]
    fn a_member_added_back_at_the_same_address_gets_a_new_id() {
        let urls = vec!["http://10.0.0.3:2380".to_string()];
        let first = added_member_id(&urls, "t", 40);
        assert_ne!(first, added_member_id(&urls, "t", 97));
        assert_ne!(first, member_id(&urls, "t"));
        assert_eq!(first, added_member_id(&urls, "t", 40));
    }
}
