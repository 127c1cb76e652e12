//! Applying committed entries: client commands, configuration changes and snapshots, and
//! taking snapshots of the applied state.

use protobuf::Message as _;
use raft::eraftpb::{ConfChange, ConfChangeV2, Entry, EntryType, Snapshot};
use raft_proto::ConfChangeI as _;

use super::{LocalSnapshot, Node, SnapshotRecord};
use crate::api::command::{Command, Proposal};
use crate::api::error::Error;
use crate::api::request::MemberChange;
use crate::state::machine::{ApplyResult, StateMachine};

impl Node {
    /// Apply committed entries in order; entries already in the state (replayed after a
    /// restart from a snapshot) are skipped, so nothing is ever applied twice. An entry that
    /// cannot be read stops the state before it (see [`StateMachine::failure`]): skipping it
    /// would part this member's state from every other's.
    pub(super) fn apply_entries(&mut self, entries: Vec<Entry>) {
        for entry in entries {
            if self.sm.failure().is_some() {
                return;
            }
            if entry.index <= self.sm.applied_index() {
                continue;
            }
            let applied = match entry.get_entry_type() {
                EntryType::EntryNormal if entry.data.is_empty() => Ok(()),
                EntryType::EntryNormal => Proposal::decode(&entry.data).map(|p| self.apply_proposal(p)),
                EntryType::EntryConfChange => ConfChange::parse_from_bytes(&entry.data)
                    .map_err(|e| Error::Internal(format!("a malformed configuration change: {e}")))
                    .and_then(|cc| self.apply_conf_change(cc.into_v2())),
                EntryType::EntryConfChangeV2 => ConfChangeV2::parse_from_bytes(&entry.data)
                    .map_err(|e| Error::Internal(format!("a malformed configuration change: {e}")))
                    .and_then(|cc| self.apply_conf_change(cc)),
            };
            match applied {
                Ok(()) => self.sm.set_applied(entry.index, entry.term),
                Err(e) => self.sm.fail(format!(
                    "committed entry {} (term {}) cannot be read ({e}); this keel may be older \
                     than the one that wrote it, or the log is damaged",
                    entry.index, entry.term
                )),
            }
        }
    }

    fn apply_proposal(&mut self, proposal: Proposal) {
        let now = self.is_leader().then_some(self.now_ms);
        let result = match proposal.origin != 0 && self.sm.refuses_unvouched(&proposal.command) {
            true => ApplyResult { response: Some(Err(Error::UserEmpty)), events: vec![] },
            false => self.sm.apply(&proposal.command, now),
        };
        self.track_tokens(&proposal.command, matches!(result.response, Some(Ok(_))));
        if let Some(first) = result.events.first() {
            let revision = first.kv.mod_revision;
            let responses = self.watches.on_events(&result.events, revision);
            self.out.watch_responses.extend(responses);
        }
        if let Command::LeaseRevoke(req) = &proposal.command {
            self.revoking.remove(&req.id);
            // Only the leader's expiry proposes a revocation with no origin.
            if proposal.origin == 0 {
                self.expired_keys += result.events.len() as u64;
            }
        }
        if let Some(response) = result.response {
            self.answer_origin(&proposal, response);
        }
    }

    /// Answer the client whose request this was, if it was made on this member and is still
    /// waiting (it may have timed out, or the member restarted since).
    fn answer_origin(
        &mut self,
        proposal: &Proposal,
        response: crate::api::error::Result<crate::api::request::Response>,
    ) {
        let mine = proposal.origin == self.config.id && proposal.incarnation == self.incarnation;
        if mine && self.pending.remove(&proposal.request_id).is_some() {
            self.respond(proposal.request_id, response);
        }
    }

    /// A configuration change: the membership table decides whether it is valid (the same way
    /// on every member); only a valid change reaches Raft's configuration. An empty change is
    /// Raft's automatic "leave joint configuration" and is always applied.
    /// A context that cannot be read is an error (the entry is not applied).
    fn apply_conf_change(&mut self, cc: ConfChangeV2) -> crate::api::error::Result<()> {
        let proposal = match cc.context.is_empty() {
            true => None,
            false => Some(Proposal::decode(&cc.context)?),
        };
        let change = match &proposal {
            Some(Proposal { command: Command::Member(change), .. }) => Some(change.clone()),
            _ => None,
        };
        // Both checks are deterministic (same membership and Raft configuration at the same
        // log position on every member), so every member takes the same branch.
        let checked = change.as_ref().map_or(Ok(()), |c| self.sm.check_member_change(c));
        let result = checked.and_then(|()| {
            self.raw
                .apply_conf_change(&cc)
                .map_err(|e| Error::Internal(format!("raft rejected the configuration change: {e}")))
        });
        let response = match result {
            Ok(cs) => {
                self.sm.set_conf_state(cs.write_to_bytes().unwrap_or_default());
                self.raw.mut_store().set_conf_state(cs);
                if let Some(MemberChange::Remove { id }) = &change {
                    self.removed |= *id == self.config.id;
                }
                change.map(|c| self.sm.apply(&Command::Member(c), None).response).unwrap_or(None)
            }
            Err(e) => Some(Err(e)),
        };
        if let (Some(proposal), Some(response)) = (proposal, response) {
            self.answer_origin(&proposal, response);
        }
        Ok(())
    }

    /// Replace the state machine's contents with a snapshot the leader sent (this member was
    /// too far behind to catch up from the log). `snapshot` comes without its data: the data
    /// was decoded when the message arrived.
    pub(super) fn install_snapshot(&mut self, snapshot: Snapshot) {
        let index = snapshot.get_metadata().index;
        // `step` decoded it before raft-rs saw it; a snapshot that does not decode never gets
        // this far, so the state machine and the log cannot part ways here.
        match self.incoming_snapshot.take() {
            Some((i, mut decoded)) if i == index => {
                tracing::info!(index, "installing a snapshot from the leader (too far behind for its log)");
                StateMachine::set_snapshot_index(&mut decoded, index);
                let conf_state = snapshot.get_metadata().get_conf_state().write_to_bytes().unwrap_or_default();
                self.sm.install(decoded, snapshot.get_metadata().term, conf_state);
                let responses = self.watches.resync(self.sm.store());
                self.out.watch_responses.extend(responses);
            }
            _ => tracing::error!(index, "cannot install snapshot: it was not decoded when it arrived"),
        }
        self.raw.mut_store().install_snapshot(snapshot);
        self.last_snapshot_index = index;
    }

    /// Every `snapshot_count` applied entries, compact the log behind the applied state (which
    /// the engine holds, so nothing is copied); and when a follower needs a snapshot, freeze the
    /// state for the shell to build one from.
    pub(super) fn maybe_snapshot(&mut self) {
        let applied = self.sm.applied_index();
        if !self.follower_snapshots.is_building() && self.raw.store().take_snapshot_wanted() {
            self.start_snapshot_job(applied);
        }
        if applied.saturating_sub(self.last_snapshot_index) < self.config.snapshot_count {
            return;
        }
        let mut compact_to = applied.saturating_sub(self.config.snapshot_catchup_entries);
        // While a snapshot for a follower is built, sent or installed, the log after it stays:
        // the follower continues from there.
        let outgoing = self.raw.store().outgoing_index();
        let prs = self.raw.raft.prs();
        let matched = |peer| prs.get(peer).map_or(u64::MAX, |p| p.matched);
        if let Some(index) = self.follower_snapshots.keep_log_after(self.now_ms, outgoing, matched) {
            compact_to = compact_to.min(index);
        }
        let store = self.raw.mut_store();
        if store.create_snapshot(applied, compact_to) {
            self.last_snapshot_index = applied;
            self.out.snapshot =
                Some(LocalSnapshot { snapshot: SnapshotRecord::from_raft(store.snapshot_ref()), compact_to });
        }
    }

    /// Freeze the applied state for a follower's snapshot (a view of the engine, cheap whatever
    /// the size) and hand it to the shell as [`crate::node::Ready::snapshot_job`].
    fn start_snapshot_job(&mut self, applied: u64) {
        let Some(metadata) = self.raw.store().metadata_at_index(applied) else { return };
        match self.sm.snapshot_job() {
            Ok(job) => {
                self.follower_snapshots.start(metadata);
                self.out.snapshot_job = Some(job);
            }
            Err(e) => tracing::error!("cannot take a snapshot for a follower: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::api::request::{PutRequest, Request};
    use crate::cluster::LocalCluster;

    fn put(key: &str) -> Request {
        Request::Put(PutRequest { key: key.into(), value: b"v".to_vec(), ..Default::default() })
    }

    #[test]
    fn an_unreadable_committed_entry_stops_every_member_before_it() {
        let mut c = LocalCluster::new(3, 1);
        let leader = c.wait_for_leader();
        c.call(leader, put("before")).unwrap();
        c.settle();
        let applied = c.node(leader).applied_index();
        // What a newer keel's entry would look like: a format this one does not read.
        c.node_mut(leader).raw.propose(vec![], b"\x02newer".to_vec()).unwrap();
        let after = c.submit(leader, put("after"));
        assert!(c.tick_until(200, |c| c.running().iter().all(|id| c.node(*id).failure().is_some())));
        for id in c.running() {
            let node = c.node(id);
            let failure = node.failure().unwrap();
            assert!(failure.starts_with(&format!("committed entry {} (term", applied + 1)), "{failure}");
            assert!(failure.contains("a keel log entry in format 2; this keel reads format 1"), "{failure}");
            assert_eq!(node.applied_index(), applied, "member {id} applied nothing from the bad entry on");
        }
        c.tick_until(20, |_| false);
        assert!(c.response(leader, after).is_none(), "the write after it was not applied");
    }
}
