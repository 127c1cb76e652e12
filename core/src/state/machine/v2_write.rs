//! Applying a v2 write ([`crate::state::v2`]): read its path, decide, and carry the decision out in
//! the same step, lease grant and release included, so the write is one atomic change of the
//! replicated state whatever else is proposed around it. (A keep-alive changes nothing here:
//! renewing is the leader's, see [`V2Outcome::KeepAlive`].)

use crate::api::error::{Error, Result};
use crate::api::kv::Event;
use crate::api::request::{Response, TxnRequest};
use crate::api::v2::{path, V2Node, V2Outcome, V2WriteRequest, V2WriteResponse, V2Written, MAX_DEPTH};
use crate::state::v2::place::{missing_in, Place};
use crate::state::v2::plan::{self, Decision, Write};

use super::{records, ApplyResult, StateMachine};

impl StateMachine {
    /// Apply one v2 write. `now_ms` is the leader's clock on the leader (see
    /// [`StateMachine::apply`]): it only makes the TTLs in the answer exact there.
    pub(super) fn apply_v2(&mut self, req: &V2WriteRequest, now_ms: Option<u64>) -> ApplyResult {
        let (response, events) = match self.v2_write(req, now_ms) {
            Ok((outcome, events)) => {
                let revision = self.store.current_revision();
                let header = crate::api::request::ResponseHeader { revision, ..Default::default() };
                (Ok(Response::V2Write(V2WriteResponse { header, outcome })), events)
            }
            Err(e) => (Err(e), vec![]),
        };
        ApplyResult { response: Some(response), events }
    }

    fn v2_write(&mut self, req: &V2WriteRequest, now_ms: Option<u64>) -> Result<(V2Outcome, Vec<Event>)> {
        if path::ancestors(&req.path).len() > MAX_DEPTH {
            return Err(Error::TooManyOps);
        }
        let place = Place::read(&self.store, &req.path)?;
        let next_revision = self.store.current_revision().saturating_add(1);
        let lessor = &self.lessor;
        let granted_ttl = |id: i64| lessor.granted(id).map(|(ttl, _)| ttl);
        match plan::decide(&place, req, &granted_ttl, next_revision) {
            Decision::Refused(refusal) => Ok((V2Outcome::Refused(refusal), vec![])),
            Decision::Missing => Ok((V2Outcome::Refused(missing_in(&self.store, &req.path)?), vec![])),
            Decision::KeepAlive { lease, node } => Ok((self.v2_keep_alive(lease, node, now_ms), vec![])),
            Decision::Write(write) => self.v2_commit(write, now_ms),
        }
    }

    /// A keep-alive of `lease`: nothing changes here (the leader renews it when asked, see
    /// [`V2Outcome::KeepAlive`]); the node is shown as it stays, its TTL as it is now.
    fn v2_keep_alive(&self, lease: i64, node: V2Node, now_ms: Option<u64>) -> V2Outcome {
        let prev_node = V2Node { ttl: self.lessor.exact_ttl(lease, now_ms), ..node.clone() };
        let index = self.store.current_revision();
        let written = V2Written { created: false, index, node, prev_node: Some(prev_node) };
        V2Outcome::KeepAlive { lease, written }
    }

    /// Carry out a decided write: grant its lease, apply its operations in one revision, and
    /// revoke the lease its node left if no key holds that any more.
    fn v2_commit(&mut self, write: Write, now_ms: Option<u64>) -> Result<(V2Outcome, Vec<Event>)> {
        let Write { grant, ops, release, created, mut node, mut prev_node } = write;
        if let Some(prev) = prev_node.as_mut() {
            prev.ttl = self.lessor.exact_ttl(prev.lease, now_ms);
        }
        let mut granted_ttl = None;
        if let Some((id, ttl)) = grant {
            granted_ttl = Some(self.lessor.grant(id, ttl, now_ms)?.ttl);
            records::write_lease(&mut self.records, id, self.lessor.granted(id));
        }
        let txn = TxnRequest { compare: vec![], success: ops, failure: vec![] };
        let lessor = &self.lessor;
        let applied = match self.store.txn(&txn, &|id| lessor.exists(id)) {
            Ok(applied) => applied,
            Err(e) => {
                if let Some((id, _)) = grant {
                    let _ = self.lessor.revoke(id);
                    records::write_lease(&mut self.records, id, None);
                }
                return Err(e);
            }
        };
        self.track_lease_keys(&applied.events);
        if release != 0 && release != node.lease && self.lessor.is_unused(release) {
            let _ = self.lessor.revoke(release);
            records::write_lease(&mut self.records, release, None);
        }
        let revision = self.store.current_revision();
        if node.modified == 0 {
            node.modified = revision;
        }
        if node.created == 0 {
            node.created = revision;
        }
        node.ttl = granted_ttl.or_else(|| self.lessor.exact_ttl(node.lease, now_ms));
        let written = V2Written { created, index: revision, node, prev_node };
        Ok((V2Outcome::Written(written), applied.events))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::command::Command;
    use crate::api::request::Member;
    use crate::api::v2::{V2Action, V2ErrorCode, V2Refusal};

    /// A member applying as the leader, its clock at 1 s.
    const NOW: Option<u64> = Some(1_000);

    fn machine() -> StateMachine {
        StateMachine::new(vec![Member { id: 1, ..Default::default() }], 5)
    }

    fn write(action: V2Action, path: &str) -> V2WriteRequest {
        V2WriteRequest { action, path: path.into(), ..V2WriteRequest::default() }
    }

    fn apply(sm: &mut StateMachine, req: V2WriteRequest) -> (V2Outcome, usize) {
        let result = sm.apply(&Command::V2Write(req), NOW);
        match result.response {
            Some(Ok(Response::V2Write(r))) => {
                assert_eq!(r.header.revision, sm.store.current_revision());
                (r.outcome, result.events.len())
            }
            other => panic!("{other:?}"),
        }
    }

    fn written(outcome: V2Outcome) -> V2Written {
        match outcome {
            V2Outcome::Written(w) => w,
            other => panic!("{other:?}"),
        }
    }

    fn refused(outcome: V2Outcome) -> V2Refusal {
        match outcome {
            V2Outcome::Refused(r) => r,
            other => panic!("{other:?}"),
        }
    }

    fn with_ttl(mut req: V2WriteRequest, value: &str, ttl: i64, lease: i64) -> V2WriteRequest {
        req.value = value.into();
        req.ttl = Some(ttl);
        req.lease = lease;
        req
    }

    #[test]
    fn a_ttl_write_grants_its_lease_and_releases_the_one_it_replaces() {
        let mut sm = machine();
        let (first, events) = apply(&mut sm, with_ttl(write(V2Action::Set, "/k"), "1", 30, 11));
        let first = written(first);
        assert_eq!(events, 1);
        assert!(first.created);
        assert_eq!((first.node.lease, first.node.ttl, first.node.modified), (11, Some(30), first.index));
        let second = written(apply(&mut sm, with_ttl(write(V2Action::Set, "/k"), "2", 40, 12)).0);
        assert_eq!(second.index, first.index + 1, "one revision");
        assert_eq!(second.prev_node.as_ref().map(|n| (n.lease, n.ttl)), Some((11, Some(30))));
        assert_eq!(sm.lessor.leases(), vec![12], "the lease the key left went in the same step");
        written(apply(&mut sm, write(V2Action::Set, "/k")).0);
        assert!(sm.lessor.leases().is_empty());
    }

    #[test]
    fn a_refresh_with_the_same_ttl_is_a_keep_alive_left_to_the_leader() {
        let mut sm = machine();
        written(apply(&mut sm, with_ttl(write(V2Action::Set, "/k"), "v", 30, 11)).0);
        let revision = sm.store.current_revision();
        let mut refresh = with_ttl(write(V2Action::Update, "/k"), "", 30, 12);
        refresh.refresh = true;
        let (outcome, events) = apply(&mut sm, refresh.clone());
        let V2Outcome::KeepAlive { lease, written: kept } = outcome else { panic!("{outcome:?}") };
        assert_eq!((lease, events, sm.store.current_revision(), kept.index), (11, 0, revision, revision));
        assert_eq!((kept.node.lease, kept.node.value.as_deref()), (11, Some("v")));
        assert_eq!(sm.lessor.leases(), vec![11], "no lease granted for a keep-alive");
        // The lease expired before the leader could renew it: the node moves to a fresh one.
        let gone = V2WriteRequest { no_keep_alive: true, ..refresh.clone() };
        let moved = written(apply(&mut sm, gone).0);
        assert_eq!((moved.node.lease, moved.node.ttl, moved.index), (12, Some(30), revision + 1));
        refresh.lease = 13;
        refresh.ttl = Some(50);
        let moved = written(apply(&mut sm, refresh).0);
        assert_eq!((moved.node.lease, moved.node.ttl, moved.index), (13, Some(50), revision + 2));
        assert_eq!(sm.lessor.leases(), vec![13]);
    }

    #[test]
    fn refusals_name_what_is_in_the_way() {
        let mut sm = machine();
        written(apply(&mut sm, write(V2Action::Set, "/f")).0);
        let revision = sm.store.current_revision();
        let cases = [
            (write(V2Action::Create, "/f"), V2ErrorCode::NodeExist, "/f"),
            (write(V2Action::Set, "/f/x"), V2ErrorCode::NotDir, "/f"),
            (write(V2Action::Update, "/a/b/c"), V2ErrorCode::KeyNotFound, "/a"),
            (write(V2Action::Delete, "/"), V2ErrorCode::RootReadOnly, "/"),
            (
                V2WriteRequest { prev_value: Some("x".into()), ..write(V2Action::CompareAndSwap, "/f") },
                V2ErrorCode::TestFailed,
                "[x != ]",
            ),
        ];
        for (req, code, cause) in cases {
            assert_eq!(refused(apply(&mut sm, with_ttl(req, "", 5, 9)).0), V2Refusal::new(code, cause));
        }
        assert_eq!(sm.store.current_revision(), revision, "a refused write changes nothing");
        assert!(sm.lessor.leases().is_empty(), "nor grants its lease");
    }

    #[test]
    fn in_order_nodes_are_named_by_their_revision_and_inherit_the_directory_ttl() {
        let mut sm = machine();
        let mut dir = with_ttl(write(V2Action::Set, "/q"), "", 60, 7);
        dir.dir = true;
        written(apply(&mut sm, dir).0);
        let next = sm.store.current_revision() + 1;
        let post = V2WriteRequest { in_order: true, value: "job".into(), ..write(V2Action::Create, "/q") };
        let job = written(apply(&mut sm, post).0);
        assert_eq!(job.node.path, format!("/q/{next:020}"));
        assert_eq!((job.created, job.node.lease, job.node.created), (true, 7, next));
    }

    #[test]
    fn a_directory_ttl_change_moves_the_keys_that_shared_it() {
        let mut sm = machine();
        let mut dir = with_ttl(write(V2Action::Set, "/d"), "", 60, 7);
        dir.dir = true;
        written(apply(&mut sm, dir).0);
        written(apply(&mut sm, write(V2Action::Set, "/d/inherits")).0);
        written(apply(&mut sm, with_ttl(write(V2Action::Set, "/d/own"), "", 5, 8)).0);
        let mut update = with_ttl(write(V2Action::Update, "/d"), "", 90, 9);
        update.dir = true;
        let (outcome, events) = apply(&mut sm, update);
        assert_eq!((written(outcome).node.lease, events), (9, 2), "the marker and the key that shared its lease");
        assert_eq!(sm.lessor.leases(), vec![8, 9], "the old directory lease went with it");
    }
}
