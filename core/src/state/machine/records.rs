//! The state machine's own records in the engine, beside the key space's (`mvcc::layout`):
//! a format marker, the applied index, the membership, the alarms, the auth store (in `Meta`) and one record
//! per lease (in `Leases`). Every value starts with a format version and decodes strictly.

use serde::{de::DeserializeOwned, Serialize};

use crate::api::alarm::AlarmMember;
use crate::api::request::Member;
use crate::state::auth::AuthStore;
use crate::state::engine::{Batch, EngineError, EngineResult, KeyBounds, Reader, Space};

const FORMAT_KEY: &[u8] = b"state/format";
const APPLIED_KEY: &[u8] = b"state/applied_index";
const MEMBERS_KEY: &[u8] = b"state/members";
const ALARMS_KEY: &[u8] = b"state/alarms";
const CONF_STATE_KEY: &[u8] = b"state/conf_state";
const AUTH_KEY: &[u8] = b"state/auth";

/// What the format record holds: a name, then the layout's version.
const FORMAT_MAGIC: &[u8] = b"keel-state";
/// The version of the whole applied-state layout (this module's records and `mvcc::layout`'s).
pub(crate) const STATE_FORMAT_VERSION: u32 = 1;
/// The version byte of every record value here.
const RECORD: u8 = 1;

fn corrupt(what: &str) -> EngineError {
    EngineError(format!("corrupt {what} record in the state store"))
}

/// The state machine's records as the engine holds them.
#[derive(Debug, Default)]
pub(crate) struct Stored {
    pub(crate) applied_index: u64,
    /// The term of the entry at `applied_index` (0 when unknown).
    pub(crate) applied_term: u64,
    pub(crate) members: Vec<Member>,
    pub(crate) alarms: Vec<AlarmMember>,
    /// (id, granted TTL, checkpointed remaining TTL).
    pub(crate) leases: Vec<(i64, i64, i64)>,
    /// Raft's configuration after the applied entries, encoded by the node.
    pub(crate) conf_state: Option<Vec<u8>>,
    /// Users, roles and permissions (empty for a state stored before auth existed).
    pub(crate) auth: AuthStore,
}

fn format_value() -> Vec<u8> {
    let mut out = FORMAT_MAGIC.to_vec();
    out.extend_from_slice(&STATE_FORMAT_VERSION.to_be_bytes());
    out
}

fn check_format(bytes: &[u8]) -> EngineResult<()> {
    let version = bytes
        .strip_prefix(FORMAT_MAGIC)
        .and_then(|v| <[u8; 4]>::try_from(v).ok())
        .map(u32::from_be_bytes)
        .ok_or_else(|| corrupt("format"))?;
    match version {
        STATE_FORMAT_VERSION => Ok(()),
        v => Err(EngineError(format!(
            "the state store has layout version {v}, this keel reads version {STATE_FORMAT_VERSION}: \
             run the keel release that wrote it, or restore the member from a snapshot"
        ))),
    }
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = vec![RECORD];
    out.extend(postcard::to_stdvec(value).unwrap_or_default());
    out
}

fn decode<T: DeserializeOwned>(what: &str, bytes: &[u8]) -> EngineResult<T> {
    match bytes.split_first() {
        Some((&RECORD, rest)) => postcard::from_bytes(rest).map_err(|_| corrupt(what)),
        _ => Err(corrupt(what)),
    }
}

fn lease_key(id: i64) -> Vec<u8> {
    id.to_be_bytes().to_vec()
}

/// Read the records, or `None` when the engine holds no state (a new member, or a data
/// directory written before the state lived in the engine).
pub(crate) fn read(reader: &dyn Reader) -> EngineResult<Option<Stored>> {
    let Some(format) = reader.get(Space::Meta, FORMAT_KEY)? else { return Ok(None) };
    check_format(&format)?;
    let get = |key: &[u8]| reader.get(Space::Meta, key);
    let (applied_index, applied_term) =
        get(APPLIED_KEY)?.map(|b| decode("applied index", &b)).transpose()?.unwrap_or((0, 0));
    let members = get(MEMBERS_KEY)?.map(|b| decode("members", &b)).transpose()?.unwrap_or_default();
    let alarms = get(ALARMS_KEY)?.map(|b| decode("alarms", &b)).transpose()?.unwrap_or_default();
    let conf_state = get(CONF_STATE_KEY)?.map(|b| decode("configuration", &b)).transpose()?;
    let auth = get(AUTH_KEY)?.map(|b| decode("auth", &b)).transpose()?.unwrap_or_default();
    let mut leases = Vec::new();
    for pair in reader.scan(Space::Leases, KeyBounds::all(), false) {
        let (k, v) = pair?;
        let id = <[u8; 8]>::try_from(k.as_slice()).map(i64::from_be_bytes).map_err(|_| corrupt("lease"))?;
        let (ttl, remaining): (i64, i64) = decode("lease", &v)?;
        leases.push((id, ttl, remaining));
    }
    Ok(Some(Stored { applied_index, applied_term, members, alarms, leases, conf_state, auth }))
}

/// Stage the format marker (every batch that founds or replaces a state carries it).
pub(crate) fn write_format(batch: &mut Batch) {
    batch.put(Space::Meta, FORMAT_KEY.to_vec(), format_value());
}

/// Stage the applied index and the term of the entry there.
pub(crate) fn write_applied(batch: &mut Batch, index: u64, term: u64) {
    batch.put(Space::Meta, APPLIED_KEY.to_vec(), encode(&(index, term)));
}

/// Stage the membership.
pub(crate) fn write_members(batch: &mut Batch, members: &[Member]) {
    batch.put(Space::Meta, MEMBERS_KEY.to_vec(), encode(&members));
}

/// Stage the alarms.
pub(crate) fn write_alarms(batch: &mut Batch, alarms: &[AlarmMember]) {
    batch.put(Space::Meta, ALARMS_KEY.to_vec(), encode(&alarms));
}

/// Stage the auth store (whole: it is small).
pub(crate) fn write_auth(batch: &mut Batch, auth: &AuthStore) {
    batch.put(Space::Meta, AUTH_KEY.to_vec(), encode(auth));
}

/// Stage Raft's configuration (encoded by the node).
pub(crate) fn write_conf_state(batch: &mut Batch, conf_state: &[u8]) {
    batch.put(Space::Meta, CONF_STATE_KEY.to_vec(), encode(&conf_state));
}

/// Stage lease `id`'s record: (TTL, remaining TTL), or its removal.
pub(crate) fn write_lease(batch: &mut Batch, id: i64, lease: Option<(i64, i64)>) {
    match lease {
        Some(record) => batch.put(Space::Leases, lease_key(id), encode(&record)),
        None => batch.delete(Space::Leases, lease_key(id)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::engine::{Engine, MemEngine};

    #[test]
    fn records_round_trip_and_pin_their_bytes() {
        let mut batch = Batch::default();
        write_format(&mut batch);
        write_applied(&mut batch, 300, 2);
        write_members(&mut batch, &[Member { id: 7, ..Default::default() }]);
        write_lease(&mut batch, 5, Some((10, 3)));
        assert_eq!(batch.ops[&(Space::Meta, FORMAT_KEY.to_vec())], Some(b"keel-state\0\0\0\x01".to_vec()));
        assert_eq!(batch.ops[&(Space::Meta, APPLIED_KEY.to_vec())], Some(vec![1, 0xac, 0x02, 2]));
        assert_eq!(batch.ops[&(Space::Leases, lease_key(5))], Some(vec![1, 20, 6]));
        let mut engine = MemEngine::new();
        assert!(read(&engine).unwrap().is_none(), "no format record: no state");
        engine.commit(batch).unwrap();
        let stored = read(&engine).unwrap().unwrap();
        assert_eq!(
            (stored.applied_index, stored.applied_term, stored.members.len(), stored.leases),
            (300, 2, 1, vec![(5, 10, 3)])
        );
    }

    #[test]
    fn another_layout_version_is_refused_with_advice() {
        let mut engine = MemEngine::new();
        let mut batch = Batch::default();
        batch.put(Space::Meta, FORMAT_KEY.to_vec(), b"keel-state\0\0\0\x09".to_vec());
        engine.commit(batch).unwrap();
        let err = read(&engine).unwrap_err().0;
        assert!(err.contains("layout version 9"), "{err}");
        let mut batch = Batch::default();
        batch.put(Space::Meta, APPLIED_KEY.to_vec(), vec![2, 1]);
        write_format(&mut batch);
        engine.commit(batch).unwrap();
        assert!(read(&engine).is_err(), "an unknown record version is corruption");
    }
}
