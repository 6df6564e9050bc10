//! The domain events, past tense, each with a type name and a schema version.
//!
//! A published version is never edited: a change is a new version plus a pure upcast from the
//! old one in [`crate::codec`], and `events/tests/fixtures/` freezes the JSON of every version.

use crate::ids::{ChannelId, ChannelKey, TenantId, Uid};
pub use crate::moderation::*;
use serde::{Deserialize, Serialize};

/// One event as it sits in the log: who it belongs to, when it was decided, and what happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The tenant the event belongs to; also encoded in the subject.
    pub tenant: TenantId,
    /// When the command service decided the event, ms since the Unix epoch.
    pub occurred_at: i64,
    /// What happened.
    pub event: Event,
}

/// Every event Parley writes, at its current schema version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A message was accepted into a channel.
    MessageSent(MessageSent),
    /// A group channel was created.
    GroupCreated(GroupCreated),
    /// Users joined a group channel.
    MembersAdded(MembersAdded),
    /// A user left (or was removed from) a group channel.
    MemberRemoved(MemberRemoved),
    /// A group channel was disbanded; its id is never reused.
    GroupDisbanded(GroupDisbanded),
    /// A user moved their read position in a conversation.
    ReadPositionSet(ReadPositionSet),
    /// A member's role or mute changed.
    MemberUpdated(MemberUpdated),
    /// A group's send settings (channel mute, whitelist mode) changed.
    ChannelUpdated(ChannelUpdated),
    /// A user was banned from a group (and removed, if a member).
    MemberBanned(MemberBanned),
    /// A ban was lifted.
    MemberUnbanned(MemberUnbanned),
    /// A group's blacklist or whitelist changed.
    SendListChanged(SendListChanged),
    /// A user blocked another (personal channels).
    UserBlocked(UserBlocked),
    /// A user unblocked another.
    UserUnblocked(UserUnblocked),
}

impl Event {
    /// The event's type name as written to the log (`message_sent`, …).
    pub fn event_type(&self) -> &'static str {
        match self {
            Event::MessageSent(_) => "message_sent",
            Event::GroupCreated(_) => "group_created",
            Event::MembersAdded(_) => "members_added",
            Event::MemberRemoved(_) => "member_removed",
            Event::GroupDisbanded(_) => "group_disbanded",
            Event::ReadPositionSet(_) => "read_position_set",
            Event::MemberUpdated(_) => "member_updated",
            Event::ChannelUpdated(_) => "channel_updated",
            Event::MemberBanned(_) => "member_banned",
            Event::MemberUnbanned(_) => "member_unbanned",
            Event::SendListChanged(_) => "send_list_changed",
            Event::UserBlocked(_) => "user_blocked",
            Event::UserUnblocked(_) => "user_unblocked",
        }
    }

    /// The schema version written for this type today: `message_sent` is at v2 (its send
    /// time moved from `data.timestamp` to the envelope's `at`), `group_created` at v2 (it
    /// gained `owner`), every other type at v1.
    pub fn event_version(&self) -> u32 {
        match self {
            Event::MessageSent(_) | Event::GroupCreated(_) => 2,
            _ => 1,
        }
    }

    /// The channel the event belongs to (every event has one; a block's is the personal
    /// channel of the two users).
    pub fn channel(&self) -> ChannelKey {
        match self {
            Event::MessageSent(e) => e.channel.clone(),
            Event::GroupCreated(GroupCreated { channel_id, .. })
            | Event::MembersAdded(MembersAdded { channel_id, .. })
            | Event::MemberRemoved(MemberRemoved { channel_id, .. })
            | Event::GroupDisbanded(GroupDisbanded { channel_id })
            | Event::MemberUpdated(MemberUpdated { channel_id, .. })
            | Event::ChannelUpdated(ChannelUpdated { channel_id, .. })
            | Event::MemberBanned(MemberBanned { channel_id, .. })
            | Event::MemberUnbanned(MemberUnbanned { channel_id, .. })
            | Event::SendListChanged(SendListChanged { channel_id, .. }) => ChannelKey::Group {
                id: channel_id.clone(),
            },
            Event::ReadPositionSet(e) => e.channel.clone(),
            Event::UserBlocked(UserBlocked { uid, blocked_uid })
            | Event::UserUnblocked(UserUnblocked { uid, blocked_uid }) => {
                ChannelKey::personal(uid, blocked_uid)
            }
        }
    }
}

/// `message_sent` v1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageSent {
    /// The channel; for a personal channel the sorted pair of users.
    pub channel: ChannelKey,
    /// Time-ordered unique id (UUIDv7; hyphenated lowercase text in the log). An event whose
    /// id is not a UUID does not decode, so every projection parks it the same way.
    pub message_id: uuid::Uuid,
    /// Position in the channel: starts at 1, gap-free, strictly increasing.
    pub message_seq: u64,
    /// The sender.
    pub from_uid: Uid,
    /// The sender's idempotency key, if the command carried one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_msg_no: Option<String>,
    /// The payload, base64 (standard alphabet, padded), exactly as the client sent it.
    pub payload: String,
    /// Acceptance time, ms since the Unix epoch.
    pub timestamp: i64,
}

/// `group_created` v2 (v1 had no `owner`; its upcast makes the first member the owner:
/// [`crate::codec::upcast_group_created_v1`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupCreated {
    /// The new group's id.
    pub channel_id: ChannelId,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Initial members, deduplicated, in request order; the owner among them.
    pub members: Vec<Uid>,
    /// The owner (role `owner`; every other member starts as `member`); absent for a group
    /// created with no member.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<Uid>,
}

/// `members_added` v1. Only uids that were not members yet are listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembersAdded {
    /// The group.
    pub channel_id: ChannelId,
    /// The users who joined.
    pub uids: Vec<Uid>,
}

/// `member_removed` v1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberRemoved {
    /// The group.
    pub channel_id: ChannelId,
    /// The user who left.
    pub uid: Uid,
}

/// `group_disbanded` v1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupDisbanded {
    /// The group.
    pub channel_id: ChannelId,
}

/// `read_position_set` v1: `uid` has read `channel` up to `message_seq` (lower = mark unread).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadPositionSet {
    /// The reader.
    pub uid: Uid,
    /// The conversation's channel.
    pub channel: ChannelKey,
    /// The new read position; at most the channel's last `message_seq` when decided.
    pub message_seq: u64,
}
