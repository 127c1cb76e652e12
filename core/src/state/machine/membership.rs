//! Membership as the state machine keeps it: which changes are valid (decided the same way on
//! every member, at apply time) and carrying them out.

use super::StateMachine;
use crate::api::error::{Error, Result};
use crate::api::request::{Member, MemberChange, MemberResponse, Response};

impl StateMachine {
    /// Check a membership change against the current members (deterministic, so every member
    /// decides the same way when the change is applied).
    pub fn check_member_change(&self, change: &MemberChange) -> Result<()> {
        match change {
            MemberChange::Add(req) => {
                if self.members.contains_key(&req.id) {
                    return Err(Error::MemberExists);
                }
                let taken = self.members.values().flat_map(|m| &m.peer_urls);
                if taken.into_iter().any(|u| req.peer_urls.contains(u)) {
                    return Err(Error::Internal("Peer URLs already exists".into()));
                }
                Ok(())
            }
            MemberChange::Remove { id } | MemberChange::Update { id, .. } | MemberChange::Publish { id, .. } => {
                self.members.get(id).map(|_| ()).ok_or(Error::MemberNotFound)
            }
            MemberChange::Promote { id } => match self.members.get(id) {
                None => Err(Error::MemberNotFound),
                Some(m) if !m.is_learner => Err(Error::MemberNotLearner),
                Some(_) => Ok(()),
            },
        }
    }

    pub(super) fn change_member(&mut self, change: &MemberChange) -> Result<Response> {
        self.check_member_change(change)?;
        let id = match change {
            MemberChange::Add(req) => {
                let member = Member {
                    id: req.id,
                    peer_urls: req.peer_urls.clone(),
                    is_learner: req.is_learner,
                    ..Default::default()
                };
                self.members.insert(req.id, member);
                req.id
            }
            MemberChange::Remove { id } => {
                let removed = self.members.remove(id);
                return Ok(Response::Member(MemberResponse {
                    member: removed,
                    members: self.members(),
                    ..Default::default()
                }));
            }
            MemberChange::Promote { id } => {
                if let Some(m) = self.members.get_mut(id) {
                    m.is_learner = false;
                }
                *id
            }
            MemberChange::Update { id, peer_urls } => {
                if let Some(m) = self.members.get_mut(id) {
                    m.peer_urls = peer_urls.clone();
                }
                *id
            }
            MemberChange::Publish { id, name, client_urls } => {
                if let Some(m) = self.members.get_mut(id) {
                    m.name = name.clone();
                    m.client_urls = client_urls.clone();
                }
                *id
            }
        };
        Ok(Response::Member(MemberResponse {
            member: self.members.get(&id).cloned(),
            members: self.members(),
            ..Default::default()
        }))
    }
}
