//! The projections: each has its own consumer, checkpoint and versions.

/// The read models the projector maintains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Projection {
    /// Message history: table `messages`.
    Messages,
    /// Channel state, members and idempotency keys: `channels`, `channel_members`,
    /// `message_keys`.
    Channels,
    /// Per-user conversation lists and read positions: `conversations`,
    /// `conversation_channels` (group heads).
    Conversations,
}

impl Projection {
    /// Every projection.
    pub const ALL: [Projection; 3] = [
        Projection::Messages,
        Projection::Channels,
        Projection::Conversations,
    ];

    /// The name used for checkpoints, consumers and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Projection::Messages => "messages",
            Projection::Channels => "channels",
            Projection::Conversations => "conversations",
        }
    }

    /// Position in [`Projection::ALL`] (0, 1, 2): an index for per-projection arrays.
    pub fn index(self) -> usize {
        self as usize
    }

    /// Inverse of [`Projection::name`].
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }
}
