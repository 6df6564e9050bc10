//! Group roles and moderation, and personal blocks: the events and the vocabulary they share
//! (after WuKongIM's channel management: bans, blacklists, whitelists; done here as events, so
//! every read model rebuilds them from the log).
//!
//! Every group event carries `by`, the acting member (`actor_uid` of the command), or nothing
//! for an operator call (an API-key call without `actor_uid`: the internal system's
//! authority).

use crate::ids::{ChannelId, Uid};
use serde::{Deserialize, Serialize};

/// A member's role in a group. Ranks: `owner` > `admin` > `member`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A plain member (the default).
    Member,
    /// May add and remove members, mute, ban and manage the channel's lists and settings.
    Admin,
    /// An admin who may also manage admins and owners; the last owner cannot leave while
    /// other members remain.
    Owner,
}

impl Role {
    /// The wire name (`owner`, `admin`, `member`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Member => "member",
        }
    }

    /// Parses a wire name.
    ///
    /// # Errors
    /// Anything but `owner`, `admin` or `member`, with a message naming the choices.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "owner" => Ok(Role::Owner),
            "admin" => Ok(Role::Admin),
            "member" => Ok(Role::Member),
            other => Err(format!(
                "unknown role {other:?}; expected owner, admin or member"
            )),
        }
    }

    /// Owners and admins moderate.
    pub fn moderates(self) -> bool {
        self >= Role::Admin
    }
}

/// A group's per-uid send list (WuKongIM's channel blacklist and whitelist).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SendList {
    /// Listed uids may not send.
    Blacklist,
    /// With the channel's `whitelist_only`, only listed uids (and owners/admins) may send.
    Whitelist,
}

impl SendList {
    /// The wire name (`blacklist`, `whitelist`), also the REST path segment.
    pub fn as_str(self) -> &'static str {
        match self {
            SendList::Blacklist => "blacklist",
            SendList::Whitelist => "whitelist",
        }
    }
}

/// `member_updated` v1: a member's role and mute, as they are after the change (both always
/// given, so the event states the member's moderation state whole).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberUpdated {
    /// The group.
    pub channel_id: ChannelId,
    /// The member.
    pub uid: Uid,
    /// Its role.
    pub role: Role,
    /// Muted until this time, ms since the Unix epoch (absent: not muted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub muted_until: Option<i64>,
    /// The acting member; absent for an operator call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<Uid>,
}

/// `channel_updated` v1: a group's send settings as they are after the change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelUpdated {
    /// The group.
    pub channel_id: ChannelId,
    /// Channel-wide mute: only owners and admins may send.
    pub muted: bool,
    /// Whitelist mode: only whitelisted uids (and owners and admins) may send.
    pub whitelist_only: bool,
    /// The acting member; absent for an operator call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<Uid>,
}

/// `member_banned` v1: `uid` is out of the group (if it was in) and cannot be added again
/// until unbanned or `until` passes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberBanned {
    /// The group.
    pub channel_id: ChannelId,
    /// The banned user.
    pub uid: Uid,
    /// The ban ends at this time, ms since the Unix epoch (absent: until unbanned).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<i64>,
    /// The acting member; absent for an operator call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<Uid>,
}

/// `member_unbanned` v1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberUnbanned {
    /// The group.
    pub channel_id: ChannelId,
    /// The user no longer banned.
    pub uid: Uid,
    /// The acting member; absent for an operator call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<Uid>,
}

/// `send_list_changed` v1: uids added to and removed from a group's blacklist or whitelist
/// (only real changes are listed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendListChanged {
    /// The group.
    pub channel_id: ChannelId,
    /// Which list.
    pub list: SendList,
    /// Newly listed uids.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub added: Vec<Uid>,
    /// Uids no longer listed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed: Vec<Uid>,
    /// The acting member; absent for an operator call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<Uid>,
}

/// `user_blocked` v1: `uid` blocked `blocked_uid`; the latter's sends to the personal channel
/// of the two are refused. On the personal channel's subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserBlocked {
    /// Who blocks.
    pub uid: Uid,
    /// Who is blocked.
    pub blocked_uid: Uid,
}

/// `user_unblocked` v1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserUnblocked {
    /// Who had blocked.
    pub uid: Uid,
    /// Who is no longer blocked.
    pub blocked_uid: Uid,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_rank_and_round_trip() {
        assert!(Role::Owner > Role::Admin && Role::Admin > Role::Member);
        for r in [Role::Owner, Role::Admin, Role::Member] {
            assert_eq!(Role::parse(r.as_str()), Ok(r));
        }
        assert!(Role::parse("root")
            .unwrap_err()
            .contains("owner, admin or member"));
        assert!(Role::Admin.moderates() && !Role::Member.moderates());
    }
}
