//! The moderation part of the `channels` projection: what each roles-and-moderation event
//! changes in the rows (`channel_members.role`/`muted_until`, `channels.muted`/
//! `whitelist_only`, `channel_bans`, `channel_send_lists`, `user_blocks`).

use events::event::*;
use events::Event;

/// One moderation change, as rows see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A member's role and mute.
    Member {
        /// The member.
        uid: String,
        /// `owner`, `admin` or `member`.
        role: &'static str,
        /// Mute end, ms.
        muted_until: Option<i64>,
    },
    /// The channel's send settings.
    Channel {
        /// Channel-wide mute.
        muted: bool,
        /// Whitelist mode.
        whitelist_only: bool,
    },
    /// A ban (the member row, if any, goes).
    Banned {
        /// The user.
        uid: String,
        /// Ban end, ms.
        until: Option<i64>,
        /// The actor.
        by: Option<String>,
    },
    /// A ban lifted.
    Unbanned {
        /// The user.
        uid: String,
    },
    /// Send-list entries.
    List {
        /// `blacklist` or `whitelist`.
        list: &'static str,
        /// Listed.
        added: Vec<String>,
        /// Unlisted.
        removed: Vec<String>,
    },
}

/// A personal block or unblock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// Tenant.
    pub tenant: String,
    /// The personal channel's storage key (its row's `last_event_seq` moves).
    pub channel_key: String,
    /// Who blocks.
    pub uid: String,
    /// Who is blocked.
    pub blocked_uid: String,
    /// Block (`true`) or unblock.
    pub block: bool,
    /// Stream sequence.
    pub event_seq: i64,
    /// Time, ms.
    pub at: i64,
}

/// The group change of `event`, if it is a group moderation event: `(group id, change)`.
pub fn change(event: &Event) -> Option<(String, Change)> {
    let c = match event {
        Event::MemberUpdated(e) => (
            e.channel_id.to_string(),
            Change::Member {
                uid: e.uid.to_string(),
                role: e.role.as_str(),
                muted_until: e.muted_until,
            },
        ),
        Event::ChannelUpdated(e) => (
            e.channel_id.to_string(),
            Change::Channel {
                muted: e.muted,
                whitelist_only: e.whitelist_only,
            },
        ),
        Event::MemberBanned(e) => (
            e.channel_id.to_string(),
            Change::Banned {
                uid: e.uid.to_string(),
                until: e.until,
                by: e.by.as_ref().map(ToString::to_string),
            },
        ),
        Event::MemberUnbanned(e) => (
            e.channel_id.to_string(),
            Change::Unbanned {
                uid: e.uid.to_string(),
            },
        ),
        Event::SendListChanged(e) => (
            e.channel_id.to_string(),
            Change::List {
                list: e.list.as_str(),
                added: e.added.iter().map(ToString::to_string).collect(),
                removed: e.removed.iter().map(ToString::to_string).collect(),
            },
        ),
        _ => return None,
    };
    Some(c)
}

/// The block of `event` at `event_seq`, time `at`, if it is one.
pub fn block(tenant: &str, event: &Event, event_seq: i64, at: i64) -> Option<Block> {
    let (e, block) = match event {
        Event::UserBlocked(UserBlocked { uid, blocked_uid }) => ((uid, blocked_uid), true),
        Event::UserUnblocked(UserUnblocked { uid, blocked_uid }) => ((uid, blocked_uid), false),
        _ => return None,
    };
    Some(Block {
        tenant: tenant.to_owned(),
        channel_key: events::ChannelKey::personal(e.0, e.1).storage_key(),
        uid: e.0.to_string(),
        blocked_uid: e.1.to_string(),
        block,
        event_seq,
        at,
    })
}
