//! [`SetReadPosition`].

use super::fields::{channel_type, id};
use super::{Command, CommandError, Commands};
use crate::domain::channel::Command as Domain;
use crate::executor::Outcome;
use events::command::{ReadPositionMoved, SetReadPosition};
use events::{ChannelId, ChannelKey, Event, TenantId, Uid};

impl Command for SetReadPosition {
    type Output = ReadPositionMoved;

    /// Moves `uid`'s read position (capped at the channel's last seq; lower marks messages
    /// unread).
    ///
    /// # Errors
    /// 400 naming the field; 429 the user's `user-reads` limit; 404 no such group or
    /// conversation; 403 not a member; 503.
    async fn run(
        self,
        on: &Commands,
        tenant: &TenantId,
    ) -> Result<ReadPositionMoved, CommandError> {
        let uid = id("uid", self.uid, Uid::parse)?;
        let ct = channel_type("channel_type", self.channel_type)?;
        let channel_id = id("channel_id", self.channel_id, ChannelId::parse)?;
        let key = ChannelKey::for_viewer(&uid, ct, &channel_id);
        on.count(tenant, &uid, platform::ratelimit::Scope::UserReads)?;
        let cmd = Domain::SetRead {
            uid,
            message_seq: self.message_seq,
        };
        match on.executor.execute(tenant, &key, cmd).await? {
            Outcome::Appended {
                event: Event::ReadPositionSet(r),
                event_seq,
            } => Ok(ReadPositionMoved {
                message_seq: r.message_seq,
                event_seq,
            }),
            other => Err(CommandError::Internal(format!(
                "set_read ended in {other:?}"
            ))),
        }
    }
}
