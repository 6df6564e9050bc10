//! The channel aggregate.
//!
//! State is a fold of the events on the channel's subject. `decide` turns a command into events
//! (or a domain error) and holds every rule; `apply` folds one event in and holds none.

use super::moderation::{self, Act, Authority, Moderation};
use events::event::*;
use events::{ChannelId, ChannelKey, Event, Uid};
use std::collections::{BTreeSet, HashMap};

/// What a retry with a known `client_msg_no` gets back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    /// The original message id.
    pub message_id: uuid::Uuid,
    /// Its seq.
    pub message_seq: u64,
    /// SHA-256 of the original payload's base64 text.
    pub payload_sha256: Vec<u8>,
    /// Original acceptance time, ms.
    pub timestamp: i64,
    /// Stream sequence of the original event.
    pub event_seq: u64,
}

/// The state of one channel as of `last_event_seq`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChannelState {
    /// A group has been created (personal channels need no creation).
    pub created: bool,
    /// The group was disbanded.
    pub disbanded: bool,
    /// Group members.
    pub members: BTreeSet<String>,
    /// The channel's last message_seq (0 = none).
    pub last_msg_seq: u64,
    /// Stream sequence of the last event on the channel's subject (0 = none); the expected
    /// last subject sequence of the next append.
    pub last_event_seq: u64,
    /// Idempotency keys `(from_uid, client_msg_no)` known in memory (those not yet in, or
    /// looked up from, the `message_keys` read model).
    pub keys: HashMap<(String, String), KeyRecord>,
    /// Messages up to this `message_seq` came in with the snapshot, so their idempotency keys
    /// are in the `message_keys` read model (same projection and transaction as the snapshot),
    /// not necessarily in `keys`; every later message's key is in `keys`. 0 = `keys` is
    /// complete and a key missing from it was never used.
    pub snapshot_msg_seq: u64,
    /// How many keys `keys` held right after the state was loaded (the cache compares growth
    /// against it before dropping a state to shed keys the snapshot now covers).
    pub loaded_keys: usize,
    /// Roles, mutes, bans, send lists (groups) and blocks (personal channels).
    pub moderation: Moderation,
}

/// A command on a channel.
#[derive(Debug, Clone)]
pub enum Command {
    /// Send a message. `message_id` and `timestamp` are chosen by the caller (the shell), so
    /// `decide` stays pure.
    Send {
        /// Sender.
        from: Uid,
        /// Idempotency key.
        client_msg_no: Option<String>,
        /// Base64 payload, validated.
        payload: String,
        /// SHA-256 of `payload`.
        payload_sha256: Vec<u8>,
        /// New UUIDv7.
        message_id: uuid::Uuid,
        /// Now, ms.
        timestamp: i64,
    },
    /// Create a group.
    CreateGroup {
        /// Name.
        name: Option<String>,
        /// Initial members (deduplicated by `decide`).
        members: Vec<Uid>,
        /// Most members the group may have (the tenant's `max_group_members`), if limited.
        max_members: Option<u32>,
        /// The owner asked for (default: `actor`, else the first member); added to the
        /// members if missing.
        owner: Option<Uid>,
        /// The acting user, if any.
        actor: Option<Uid>,
    },
    /// Add members (idempotent: known members are ignored).
    AddMembers {
        /// Who.
        uids: Vec<Uid>,
        /// Most members the group may have, if limited.
        max_members: Option<u32>,
        /// The acting member (`None`: an operator call).
        actor: Option<Uid>,
        /// Now, ms (bans may end).
        now: i64,
    },
    /// Remove a member.
    RemoveMember {
        /// Who.
        uid: Uid,
        /// The acting member (`None`: an operator call).
        actor: Option<Uid>,
    },
    /// Disband the group.
    Disband {
        /// The acting member (`None`: an operator call).
        actor: Option<Uid>,
    },
    /// A moderation command on a group.
    Moderate {
        /// What.
        act: Act,
        /// The acting member (`None`: an operator call).
        actor: Option<Uid>,
        /// Now, ms.
        now: i64,
    },
    /// `uid` blocks (`block: true`) or unblocks the other user of a personal channel.
    Block {
        /// Who blocks.
        uid: Uid,
        /// Block or unblock.
        block: bool,
    },
    /// Move `uid`'s read position.
    SetRead {
        /// Reader.
        uid: Uid,
        /// Requested position.
        message_seq: u64,
    },
}

pub use super::error::DomainError;

/// What `decide` concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Append these events (possibly none: a no-op such as re-adding members).
    Append(Vec<Event>),
    /// A retry of a send already accepted: answer with the original.
    Duplicate(KeyRecord),
}

fn is_live_group(state: &ChannelState) -> bool {
    state.created && !state.disbanded
}

/// Every rule of the channel aggregate.
///
/// # Errors
/// [`DomainError`] when the command is not allowed in `state`.
pub fn decide(
    state: &ChannelState,
    key: &ChannelKey,
    cmd: Command,
) -> Result<Decision, DomainError> {
    let group_id = |key: &ChannelKey| match key {
        ChannelKey::Group { id } => Some(id.clone()),
        ChannelKey::Personal { .. } => None,
    };
    match cmd {
        Command::Send {
            from,
            client_msg_no,
            payload,
            payload_sha256,
            message_id,
            timestamp,
        } => {
            match key {
                ChannelKey::Group { .. } => {
                    if !is_live_group(state) {
                        return Err(DomainError::ChannelNotFound);
                    }
                    if state.moderation.banned(from.as_str(), timestamp) {
                        return Err(DomainError::Banned {
                            uid: from.to_string(),
                            field: "from_uid",
                        });
                    }
                    if !state.members.contains(from.as_str()) {
                        return Err(DomainError::NotAMember(from.to_string()));
                    }
                }
                ChannelKey::Personal { .. } => {
                    if !key.is_pair_member(from.as_str()) {
                        return Err(DomainError::NotAMember(from.to_string()));
                    }
                }
            }
            // A retry of an accepted send answers with the original, whatever changed since.
            if let Some(no) = &client_msg_no {
                if let Some(prev) = state.keys.get(&(from.to_string(), no.clone())) {
                    return if prev.payload_sha256 == payload_sha256 {
                        Ok(Decision::Duplicate(prev.clone()))
                    } else {
                        Err(DomainError::IdempotencyConflict)
                    };
                }
            }
            match key {
                ChannelKey::Group { .. } => {
                    moderation::may_send(&state.moderation, from.as_str(), timestamp)?;
                }
                ChannelKey::Personal { .. } => {
                    if moderation::blocked(&state.moderation, key, from.as_str()) {
                        return Err(DomainError::Blocked(from.to_string()));
                    }
                }
            }
            Ok(Decision::Append(vec![Event::MessageSent(MessageSent {
                channel: key.clone(),
                message_id,
                message_seq: state.last_msg_seq + 1,
                from_uid: from,
                client_msg_no,
                payload,
                timestamp,
            })]))
        }
        Command::CreateGroup {
            name,
            members,
            max_members,
            owner,
            actor,
        } => {
            let Some(channel_id) = group_id(key) else {
                return Err(DomainError::ChannelNotFound);
            };
            if state.disbanded {
                return Err(DomainError::ChannelRetired);
            }
            if state.created {
                return Err(DomainError::ChannelExists);
            }
            let owner = owner.or(actor).or_else(|| members.first().cloned());
            let mut seen = BTreeSet::new();
            let lead: Vec<Uid> = owner
                .iter()
                .filter(|o| !members.contains(o))
                .cloned()
                .collect();
            let members: Vec<Uid> = lead
                .into_iter()
                .chain(members)
                .filter(|m| seen.insert(m.clone()))
                .collect();
            full(max_members, members.len())?;
            Ok(Decision::Append(vec![Event::GroupCreated(GroupCreated {
                channel_id,
                name,
                members,
                owner,
            })]))
        }
        Command::AddMembers {
            uids,
            max_members,
            actor,
            now,
        } => {
            let channel_id = live_group(state, key)?;
            Authority::of(&state.members, &state.moderation, actor.as_ref())?
                .moderator("add members")?;
            if let Some(u) = uids
                .iter()
                .find(|u| state.moderation.banned(u.as_str(), now))
            {
                return Err(DomainError::Banned {
                    uid: u.to_string(),
                    field: "uids",
                });
            }
            let mut seen = BTreeSet::new();
            let uids: Vec<Uid> = uids
                .into_iter()
                .filter(|u| !state.members.contains(u.as_str()) && seen.insert(u.clone()))
                .collect();
            if uids.is_empty() {
                return Ok(Decision::Append(vec![]));
            }
            full(max_members, state.members.len() + uids.len())?;
            Ok(Decision::Append(vec![Event::MembersAdded(MembersAdded {
                channel_id,
                uids,
            })]))
        }
        Command::RemoveMember { uid, actor } => {
            let channel_id = live_group(state, key)?;
            let auth = Authority::of(&state.members, &state.moderation, actor.as_ref())?;
            if !state.members.contains(uid.as_str()) {
                return Err(DomainError::MemberNotFound(uid.to_string()));
            }
            if auth.uid() == Some(uid.as_str()) {
                if moderation::last_owner(&state.members, &state.moderation, uid.as_str()) {
                    return Err(DomainError::LastOwner(uid.to_string()));
                }
            } else {
                auth.over(&state.moderation, uid.as_str(), "remove")?;
            }
            Ok(Decision::Append(vec![Event::MemberRemoved(
                MemberRemoved { channel_id, uid },
            )]))
        }
        Command::Disband { actor } => {
            let channel_id = live_group(state, key)?;
            Authority::of(&state.members, &state.moderation, actor.as_ref())?
                .moderator("disband the group")?;
            Ok(Decision::Append(vec![Event::GroupDisbanded(
                GroupDisbanded { channel_id },
            )]))
        }
        Command::Moderate { act, actor, now } => {
            let channel_id = live_group(state, key)?;
            moderation::decide(
                &state.members,
                &state.moderation,
                channel_id,
                act,
                actor.as_ref(),
                now,
            )
            .map(Decision::Append)
        }
        Command::Block { uid, block } => {
            let ChannelKey::Personal { low, high } = key else {
                return Err(DomainError::ChannelNotFound);
            };
            let other = if *low == uid { high } else { low };
            let pair = (uid.to_string(), other.to_string());
            if state.moderation.blocks.contains(&pair) == block {
                return Ok(Decision::Append(vec![]));
            }
            let (uid, blocked_uid) = (uid, other.clone());
            Ok(Decision::Append(vec![if block {
                Event::UserBlocked(UserBlocked { uid, blocked_uid })
            } else {
                Event::UserUnblocked(UserUnblocked { uid, blocked_uid })
            }]))
        }
        Command::SetRead { uid, message_seq } => {
            match key {
                ChannelKey::Group { .. } => {
                    live_group(state, key)?;
                    if !state.members.contains(uid.as_str()) {
                        return Err(DomainError::NotAMember(uid.to_string()));
                    }
                }
                ChannelKey::Personal { .. } => {
                    if state.last_msg_seq == 0 || !key.is_pair_member(uid.as_str()) {
                        return Err(DomainError::ConversationNotFound);
                    }
                }
            }
            Ok(Decision::Append(vec![Event::ReadPositionSet(
                ReadPositionSet {
                    uid,
                    channel: key.clone(),
                    message_seq: message_seq.min(state.last_msg_seq),
                },
            )]))
        }
    }
}

/// [`DomainError::GroupFull`] when `would` members exceed `max`.
fn full(max: Option<u32>, would: usize) -> Result<(), DomainError> {
    match max {
        Some(max) if would > max as usize => Err(DomainError::GroupFull { max, would }),
        _ => Ok(()),
    }
}

fn live_group(state: &ChannelState, key: &ChannelKey) -> Result<ChannelId, DomainError> {
    match key {
        ChannelKey::Group { id } if is_live_group(state) => Ok(id.clone()),
        _ => Err(DomainError::ChannelNotFound),
    }
}

/// Folds one event of the channel's subject, at stream sequence `event_seq`, into `state`.
/// `read_position_set` lives on another subject and leaves the state as it is.
pub fn apply(mut state: ChannelState, event: &Event, event_seq: u64) -> ChannelState {
    match event {
        Event::MessageSent(m) => {
            state.last_msg_seq = state.last_msg_seq.max(m.message_seq);
            if let Some(no) = &m.client_msg_no {
                state.keys.insert(
                    (m.from_uid.to_string(), no.clone()),
                    KeyRecord {
                        message_id: m.message_id,
                        message_seq: m.message_seq,
                        payload_sha256: events::payload_digest(&m.payload),
                        timestamp: m.timestamp,
                        event_seq,
                    },
                );
            }
        }
        Event::GroupCreated(e) => {
            state.created = true;
            state.members = e.members.iter().map(ToString::to_string).collect();
        }
        Event::MembersAdded(e) => state.members.extend(e.uids.iter().map(ToString::to_string)),
        Event::MemberRemoved(e) => {
            state.members.remove(e.uid.as_str());
        }
        Event::GroupDisbanded(_) => {
            state.disbanded = true;
            state.members.clear();
        }
        Event::ReadPositionSet(_) => return state,
        Event::MemberUpdated(_)
        | Event::ChannelUpdated(_)
        | Event::MemberBanned(_)
        | Event::MemberUnbanned(_)
        | Event::SendListChanged(_)
        | Event::UserBlocked(_)
        | Event::UserUnblocked(_) => {}
    }
    moderation::apply(&mut state.members, &mut state.moderation, event);
    state.last_event_seq = state.last_event_seq.max(event_seq);
    state
}

#[cfg(test)]
#[path = "channel_tests.rs"]
mod tests;
