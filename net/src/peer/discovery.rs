//! Asking the members named in `--initial-cluster` about this member before it starts: a joiner
//! learns the id `member add` gave it, and a founding member makes sure it is not about to found
//! a cluster that already runs (its data directory lost, or its flags naming another cluster's
//! members). Both ask with [`Frame::WhoAmI`] on a fresh peer connection.

use std::time::Duration;

use tokio::io::AsyncWriteExt;

use super::{host_port, sorted, Frame};
use crate::tls::Dial;

/// Who a joining member is, as the cluster told it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JoinerIdentity {
    /// The id `member add` gave it.
    pub id: u64,
    /// The cluster's id.
    pub cluster_id: u64,
    /// Every member's id and peer URLs when it asked.
    pub members: Vec<(u64, Vec<String>)>,
}

/// One member's answer to [`Frame::WhoAmI`].
struct Answer {
    /// The id of the member with the asker's peer URLs (0: none).
    id: u64,
    cluster_id: u64,
    members: Vec<(u64, Vec<String>)>,
    /// Whether member `id` has served clients (published its client URLs).
    started: bool,
    /// The raft index the answer's membership is as of.
    as_of: u64,
}

/// A member joining a running cluster learns its id, the cluster's and the members' from the
/// members at `peers` (peer URLs, its own among them or not): it asks all of them which member
/// has `own_urls`, and believes whoever has seen the newest membership (one that has not yet
/// applied a removal may still name a removed member at the same URLs), until one knows or
/// `patience` runs out (the operator has not run `member add` yet, or no member is reachable).
pub async fn discover_identity(
    peers: &[String],
    own_urls: &[String],
    dial: &Dial,
    patience: Duration,
) -> Result<JoinerIdentity, String> {
    let deadline = tokio::time::Instant::now() + patience;
    let own = sorted(own_urls);
    let others = others(peers, &own, dial);
    if others.is_empty() {
        return Err("--initial-cluster names no other member to join through".into());
    }
    loop {
        let answers = ask_all(&others, &own).await;
        if let Some(found) = answers.into_iter().filter(|(_, a)| a.id != 0).map(|(_, a)| a).max_by_key(|a| a.as_of) {
            return Ok(JoinerIdentity { id: found.id, cluster_id: found.cluster_id, members: found.members });
        }
        if tokio::time::Instant::now() >= deadline {
            let addrs: Vec<&str> = others.iter().map(|(addr, _)| addr.as_str()).collect();
            return Err(format!(
                "no member at {} knows a member with peer URLs {}: add it first (etcdctl member add)",
                addrs.join(","),
                own.join(",")
            ));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// A founding member with nothing stored (`member_id` of cluster `cluster_id`, as its flags
/// derive them) asks the other members named in `peers` once whether they already run: one that
/// answers for another cluster means the flags name that cluster's members, and one that knows
/// this member as having served clients means its data directory was lost — founding again with
/// an empty log could vote away acknowledged writes, so both are refused (etcd's "member ... has
/// already been bootstrapped"). Members that do not answer are still starting, as founders do.
pub async fn check_founding(
    peers: &[String],
    own_urls: &[String],
    (member_id, cluster_id): (u64, u64),
    dial: &Dial,
) -> Result<(), String> {
    let own = sorted(own_urls);
    for (addr, answer) in ask_all(&others(peers, &own, dial), &own).await {
        if answer.cluster_id != cluster_id && answer.cluster_id != 0 {
            return Err(format!(
                "the member at {addr} belongs to cluster {:x}, not to cluster {cluster_id:x} that --initial-cluster and \
                 --initial-cluster-token describe: check both flags (to join a running cluster, run `etcdctl member add` \
                 and start with --initial-cluster-state existing)",
                answer.cluster_id
            ));
        }
        if answer.id == member_id && answer.started {
            return Err(format!(
                "member {member_id:x} has already been bootstrapped: the cluster knows it, but its data directory is \
                 empty; remove it (etcdctl member remove) and add it back with --initial-cluster-state existing"
            ));
        }
    }
    Ok(())
}

/// `host:port` and how to dial each of `peers` that is not one of `own` URLs.
fn others(peers: &[String], own: &[String], dial: &Dial) -> Vec<(String, Dial)> {
    peers.iter().filter(|u| !own.contains(u)).filter_map(|u| Some((host_port(u)?, dial.for_url(u)))).collect()
}

/// Every answer from `others` to who has peer URLs `own`, by address.
async fn ask_all(others: &[(String, Dial)], own: &[String]) -> Vec<(String, Answer)> {
    let answers = futures_util::future::join_all(others.iter().map(|(addr, dial)| ask_who_am_i(addr, own, dial))).await;
    others.iter().zip(answers).filter_map(|((addr, _), answer)| Some((addr.clone(), answer?))).collect()
}

/// Ask the member at `addr` who has peer URLs `own`: its answer, if it gives one within 2 s.
async fn ask_who_am_i(addr: &str, own: &[String], dial: &Dial) -> Option<Answer> {
    let ask = async {
        let mut stream = dial.connect(addr).await.ok()?;
        (Frame::Hello { from: 0, cluster_id: 0, peer_url: String::new() }).write(&mut stream).await.ok()?;
        (Frame::WhoAmI { peer_urls: own.to_vec() }).write(&mut stream).await.ok()?;
        stream.flush().await.ok()?;
        match Frame::read(&mut stream).await {
            Ok(Some(Frame::YouAre { id, cluster_id, members, started, as_of })) => {
                Some(Answer { id, cluster_id, members, started, as_of })
            }
            _ => None,
        }
    };
    tokio::time::timeout(Duration::from_secs(2), ask).await.ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer::{Inbound, PeerTransport};
    use tokio::net::TcpListener;
    use tokio::sync::mpsc;

    /// A member `id` of cluster `cluster_id`, serving peers on a free port: it, its peer URL and
    /// what it receives.
    async fn member(id: u64, cluster_id: u64) -> (PeerTransport, String, mpsc::Receiver<Inbound>) {
        let (tx, rx) = mpsc::channel(64);
        let t = PeerTransport::new(id, cluster_id, tx);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        t.serve(listener);
        (t, url, rx)
    }

    #[tokio::test]
    async fn a_joiner_learns_its_id_once_it_has_been_added() {
        let (member, peer_url, _rx) = member(1, 5).await;
        let joiner = vec!["http://127.0.0.1:1".to_string()];
        let peers = vec![peer_url.clone(), joiner[0].clone()];
        let early = discover_identity(&peers, &joiner, &Dial::default(), Duration::from_millis(400)).await;
        assert!(early.unwrap_err().contains("member add"));
        let members = vec![(1, vec![peer_url]), (0xabc, joiner.clone())];
        member.set_directory(&members, &[1], 10);
        let found = discover_identity(&peers, &joiner, &Dial::default(), Duration::from_secs(5)).await.unwrap();
        assert_eq!(found, JoinerIdentity { id: 0xabc, cluster_id: 5, members });
        let alone = discover_identity(&joiner, &joiner, &Dial::default(), Duration::from_secs(1)).await;
        assert!(alone.unwrap_err().contains("no other member"));
    }

    #[tokio::test]
    async fn a_joiner_believes_the_member_that_saw_the_newest_membership() {
        let (one, url1, _rx1) = member(1, 5).await;
        let (two, url2, _rx2) = member(2, 5).await;
        let joiner = vec!["http://127.0.0.1:1".to_string()];
        // Member 1 has not yet applied the removal of 0x01d, the old member at these URLs;
        // member 2 has applied the add of 0x0e2 at the same URLs.
        one.set_directory(&[(1, vec![url1.clone()]), (0x01d, joiner.clone())], &[1, 0x01d], 20);
        two.set_directory(&[(2, vec![url2.clone()]), (0x0e2, joiner.clone())], &[2], 25);
        let found = discover_identity(&[url1, url2], &joiner, &Dial::default(), Duration::from_secs(5)).await.unwrap();
        assert_eq!(found.id, 0x0e2);
    }

    #[tokio::test]
    async fn a_founder_goes_ahead_while_its_peers_start_or_are_not_up_yet() {
        let (_starting, url, _rx) = member(1, 5).await;
        let own = vec!["http://127.0.0.1:1".to_string()];
        let peers = [url, own[0].clone(), "http://127.0.0.1:2".to_string()];
        check_founding(&peers, &own, (3, 5), &Dial::default()).await.unwrap();
    }

    #[tokio::test]
    async fn a_founder_refuses_peers_of_another_cluster() {
        let (_foreign, url, _rx) = member(1, 6).await;
        let own = vec!["http://127.0.0.1:1".to_string()];
        let err = check_founding(&[url, own[0].clone()], &own, (3, 5), &Dial::default()).await.unwrap_err();
        assert!(err.contains("belongs to cluster 6, not to cluster 5"), "{err}");
    }

    #[tokio::test]
    async fn a_founder_that_already_served_refuses_to_found_again() {
        let (running, url, _rx) = member(1, 5).await;
        let own = vec!["http://127.0.0.1:1".to_string()];
        let members = [(1, vec![url.clone()]), (3, own.clone())];
        // Known but never started (a founder slower than the others): it may go ahead.
        running.set_directory(&members, &[1], 7);
        check_founding(&[url.clone(), own[0].clone()], &own, (3, 5), &Dial::default()).await.unwrap();
        running.set_directory(&members, &[1, 3], 9);
        let err = check_founding(&[url, own[0].clone()], &own, (3, 5), &Dial::default()).await.unwrap_err();
        assert!(err.starts_with("member 3 has already been bootstrapped"), "{err}");
    }
}
