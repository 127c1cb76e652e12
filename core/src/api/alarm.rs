//! Alarms as requests and answers speak of them (etcd's Maintenance.Alarm messages). What the
//! alarms do to writes, and the space quota, live with the state (`state::alarm`).

use serde::{Deserialize, Serialize};

use crate::api::request::ResponseHeader;

/// etcd's `AlarmType` (proto numbers: NONE 0, NOSPACE 1, CORRUPT 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum AlarmType {
    /// No alarm: in a GET, "every type".
    None,
    /// The key space outgrew the space quota.
    Nospace,
    /// A member's data was found corrupt.
    Corrupt,
}

/// One raised alarm: which member raised it, and of what type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AlarmMember {
    pub member_id: u64,
    pub alarm: AlarmType,
}

/// What an alarm request does (etcd's `AlarmRequest.AlarmAction`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AlarmAction {
    Get,
    Activate,
    Deactivate,
}

/// List, raise or clear alarms. `member_id` and `alarm` name the alarm to raise or clear; a
/// GET lists alarms of type `alarm` (every type for [`AlarmType::None`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlarmRequest {
    pub action: AlarmAction,
    pub member_id: u64,
    pub alarm: AlarmType,
}

/// The alarms listed, or the one raised or cleared (none when nothing changed).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlarmResponse {
    pub header: ResponseHeader,
    pub alarms: Vec<AlarmMember>,
}
