//! [`DomainError`]: why the channel aggregate refused a command.

/// Why a command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// The group does not exist (or was disbanded).
    #[error("channel not found")]
    ChannelNotFound,
    /// A personal conversation has no message yet.
    #[error("conversation not found")]
    ConversationNotFound,
    /// The sender or reader is not a member.
    #[error("{0} is not a member of the channel")]
    NotAMember(String),
    /// The group exists.
    #[error("channel already exists")]
    ChannelExists,
    /// The id belonged to a group that was disbanded: ids are retired, never reused.
    #[error("the id belonged to a disbanded group and is retired: ids are never reused")]
    ChannelRetired,
    /// The uid to act on is not a member.
    #[error("{0} is not a member of the channel")]
    MemberNotFound(String),
    /// The `client_msg_no` was used before with another payload.
    #[error("client_msg_no was already used with a different payload")]
    IdempotencyConflict,
    /// The group would exceed the tenant's `max_group_members`.
    #[error("the group would have {would} members; the tenant allows at most {max}")]
    GroupFull {
        /// The limit.
        max: u32,
        /// The size the command would have made.
        would: usize,
    },
    /// The command's `actor_uid` is not a member of the group.
    #[error("actor_uid {0} is not a member of the channel")]
    ActorNotMember(String),
    /// The actor's role does not allow the command (the message says which rule).
    #[error("{0}")]
    PermissionDenied(String),
    /// The command would leave a group with members but no owner: hand over first.
    #[error("{0} is the group's last owner: make another member owner first")]
    LastOwner(String),
    /// The sender is muted in the group until `until` (ms).
    #[error("{uid} is muted in the channel until {until} (ms since the Unix epoch)")]
    MemberMuted {
        /// The sender.
        uid: String,
        /// When the mute ends, ms.
        until: i64,
    },
    /// The group is muted: only owners and admins may send.
    #[error("the channel is muted: only owners and admins may send")]
    ChannelMuted,
    /// The user is banned from the group.
    #[error("{uid} is banned from the channel")]
    Banned {
        /// The banned user.
        uid: String,
        /// The field that named them (`from_uid`, `uids`).
        field: &'static str,
    },
    /// The sender is on the group's blacklist.
    #[error("{0} is on the channel's blacklist")]
    Blacklisted(String),
    /// The group is in whitelist mode and the sender is not listed.
    #[error("the channel accepts messages only from its whitelist, and {0} is not on it")]
    NotWhitelisted(String),
    /// The recipient blocked the sender.
    #[error("the recipient blocked {0}")]
    Blocked(String),
}

impl DomainError {
    /// A send refused by a moderation rule (a ban, a mute, a list, a block).
    pub fn is_moderation(&self) -> bool {
        matches!(
            self,
            DomainError::MemberMuted { .. }
                | DomainError::ChannelMuted
                | DomainError::Banned { .. }
                | DomainError::Blacklisted(_)
                | DomainError::NotWhitelisted(_)
                | DomainError::Blocked(_)
        )
    }
}
