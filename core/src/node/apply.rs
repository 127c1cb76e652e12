//! Applying committed entries: client commands, configuration changes and snapshots, and
//! taking snapshots of the applied state.

use protobuf::Message as _;
use raft::eraftpb::{ConfChange, ConfChangeV2, Entry, EntryType, Snapshot};
use raft_proto::ConfChangeI as _;

use super::{LocalSnapshot, Node, SnapshotRecord};
use crate::command::{Command, Proposal};
use crate::error::Error;
use crate::request::MemberChange;
use crate::state_machine::StateMachine;

impl Node {
    /// Apply committed entries in order; entries already in the state (replayed after a
    /// restart from a snapshot) are skipped, so nothing is ever applied twice.
    pub(super) fn apply_entries(&mut self, entries: Vec<Entry>) {
        for entry in entries {
            if entry.index <= self.sm.applied_index() {
                continue;
            }
            match entry.get_entry_type() {
                EntryType::EntryNormal if entry.data.is_empty() => {}
                EntryType::EntryNormal => match Proposal::decode(&entry.data) {
                    Ok(proposal) => self.apply_proposal(proposal),
                    Err(e) => tracing::error!(index = entry.index, "skipping entry: {e}"),
                },
                EntryType::EntryConfChange => match ConfChange::parse_from_bytes(&entry.data) {
                    Ok(cc) => self.apply_conf_change(cc.into_v2()),
                    Err(e) => tracing::error!(index = entry.index, "skipping conf change: {e}"),
                },
                EntryType::EntryConfChangeV2 => match ConfChangeV2::parse_from_bytes(&entry.data) {
                    Ok(cc) => self.apply_conf_change(cc),
                    Err(e) => tracing::error!(index = entry.index, "skipping conf change: {e}"),
                },
            }
            self.sm.set_applied(entry.index, entry.term);
        }
    }

    fn apply_proposal(&mut self, proposal: Proposal) {
        let now = self.is_leader().then_some(self.now_ms);
        let result = self.sm.apply(&proposal.command, now);
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
    fn answer_origin(&mut self, proposal: &Proposal, response: crate::error::Result<crate::request::Response>) {
        let mine = proposal.origin == self.config.id && proposal.incarnation == self.incarnation;
        if mine && self.pending.remove(&proposal.request_id).is_some() {
            self.respond(proposal.request_id, response);
        }
    }

    /// A configuration change: the membership table decides whether it is valid (the same way
    /// on every member); only a valid change reaches Raft's configuration. An empty change is
    /// Raft's automatic "leave joint configuration" and is always applied.
    fn apply_conf_change(&mut self, cc: ConfChangeV2) {
        let proposal = match cc.context.is_empty() {
            true => None,
            false => Proposal::decode(&cc.context).ok(),
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
    /// the engine holds, so nothing is copied); and when a follower needs a snapshot, build one
    /// of the state for it.
    pub(super) fn maybe_snapshot(&mut self) {
        let applied = self.sm.applied_index();
        if self.raw.store().take_snapshot_wanted() {
            // On a failed read none is kept; raft-rs asks again at its next try.
            match self.sm.snapshot() {
                Ok(data) => self.raw.mut_store().set_outgoing_snapshot(applied, data),
                Err(e) => tracing::error!("cannot build a snapshot for a follower: {e}"),
            }
        }
        if applied.saturating_sub(self.last_snapshot_index) < self.config.snapshot_count {
            return;
        }
        let compact_to = applied.saturating_sub(self.config.snapshot_catchup_entries);
        let store = self.raw.mut_store();
        if store.create_snapshot(applied, compact_to) {
            self.last_snapshot_index = applied;
            self.out.snapshot = Some(LocalSnapshot {
                snapshot: SnapshotRecord::from_raft(store.snapshot_ref()),
                compact_to,
            });
        }
    }
}
