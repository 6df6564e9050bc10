//! Group moderation and personal blocks: [`UpdateMember`], [`UpdateChannel`], [`BanUser`],
//! [`ChangeSendList`], [`BlockUser`]. Field rules here; who may do what in
//! [`crate::domain::moderation`].

use super::fields::{id, uids};
use super::groups::{actor, changed, group};
use super::{Command, CommandError, Commands};
use crate::domain::channel::Command as Domain;
use crate::domain::moderation::Act;
use events::command::{
    BanUser, BlockChanged, BlockUser, ChangeSendList, GroupChanged, UpdateChannel, UpdateMember,
};
use events::moderation::Role;
use events::{ChannelKey, TenantId, Uid};

async fn moderate(
    on: &Commands,
    tenant: &TenantId,
    channel_id: String,
    actor_uid: Option<String>,
    act: impl FnOnce() -> Result<Act, CommandError>,
) -> Result<GroupChanged, CommandError> {
    let (channel_id, key) = group(channel_id)?;
    let actor = actor(actor_uid)?;
    let cmd = Domain::Moderate {
        act: act()?,
        actor,
        now: platform::now_ms(),
    };
    let o = on.executor.execute(tenant, &key, cmd).await?;
    Ok(changed(&channel_id, &o))
}

impl Command for UpdateMember {
    type Output = GroupChanged;

    /// # Errors
    /// 400 naming `channel_id`, `uid`, `role`, `muted_until` or `actor_uid` (also when
    /// neither `role` nor `muted_until` is given); 403 `PERMISSION_DENIED` or `NOT_A_MEMBER`
    /// (the actor); 404 no such group or `MEMBER_NOT_FOUND`; 409 `LAST_OWNER`; 503.
    async fn run(self, on: &Commands, tenant: &TenantId) -> Result<GroupChanged, CommandError> {
        let UpdateMember {
            channel_id,
            uid,
            role,
            muted_until,
            actor_uid,
        } = self;
        moderate(on, tenant, channel_id, actor_uid, || {
            let uid = id("uid", uid, Uid::parse)?;
            if role.is_none() && muted_until.is_none() {
                return Err(CommandError::invalid(
                    "role",
                    "give role, muted_until or both",
                ));
            }
            let role = role
                .map(|r| Role::parse(&r).map_err(|e| CommandError::invalid("role", e)))
                .transpose()?;
            if let Some(Some(t)) = muted_until {
                if t < 0 {
                    return Err(CommandError::invalid(
                        "muted_until",
                        "muted_until is ms since the Unix epoch, not negative",
                    ));
                }
            }
            Ok(Act::UpdateMember {
                uid,
                role,
                muted_until,
            })
        })
        .await
    }
}

impl Command for UpdateChannel {
    type Output = GroupChanged;

    /// # Errors
    /// 400 naming `channel_id`, `actor_uid`, or `muted` when no setting is given; 403 when the
    /// actor is not an owner or admin; 404 no such group; 503.
    async fn run(self, on: &Commands, tenant: &TenantId) -> Result<GroupChanged, CommandError> {
        let UpdateChannel {
            channel_id,
            muted,
            whitelist_only,
            actor_uid,
        } = self;
        moderate(on, tenant, channel_id, actor_uid, || {
            if muted.is_none() && whitelist_only.is_none() {
                return Err(CommandError::invalid(
                    "muted",
                    "give muted, whitelist_only or both",
                ));
            }
            Ok(Act::UpdateChannel {
                muted,
                whitelist_only,
            })
        })
        .await
    }
}

impl Command for BanUser {
    type Output = GroupChanged;

    /// # Errors
    /// 400 naming `channel_id`, `uid`, `actor_uid` or `until` (not in the future); 403 when
    /// the actor may not ban `uid`; 404 no such group; 503.
    async fn run(self, on: &Commands, tenant: &TenantId) -> Result<GroupChanged, CommandError> {
        let BanUser {
            channel_id,
            uid,
            until,
            lift,
            actor_uid,
        } = self;
        moderate(on, tenant, channel_id, actor_uid, || {
            let uid = id("uid", uid, Uid::parse)?;
            if lift {
                return Ok(Act::Unban { uid });
            }
            if let Some(t) = until {
                if t <= platform::now_ms() {
                    return Err(CommandError::invalid(
                        "until",
                        "until must be in the future (ms since the Unix epoch)",
                    ));
                }
            }
            Ok(Act::Ban { uid, until })
        })
        .await
    }
}

impl Command for ChangeSendList {
    type Output = GroupChanged;

    /// # Errors
    /// 400 naming `channel_id`, `actor_uid`, `uids` or `uids[i]`; 403 when the actor is not an
    /// owner or admin; 404 no such group; 503.
    async fn run(self, on: &Commands, tenant: &TenantId) -> Result<GroupChanged, CommandError> {
        let ChangeSendList {
            channel_id,
            list,
            add,
            remove,
            actor_uid,
        } = self;
        moderate(on, tenant, channel_id, actor_uid, || {
            if add.is_empty() && remove.is_empty() {
                return Err(CommandError::invalid("uids", "uids must not be empty"));
            }
            Ok(Act::ChangeList {
                list,
                add: uids("uids", add)?,
                remove: uids("uids", remove)?,
            })
        })
        .await
    }
}

impl Command for BlockUser {
    type Output = BlockChanged;

    /// Idempotent: blocking a blocked user (or unblocking one not blocked) changes nothing.
    /// Counts against `uid`'s `user-sends` limit.
    ///
    /// # Errors
    /// 400 naming `uid` (the user to block: malformed, or the blocker itself); 429; 503.
    async fn run(self, on: &Commands, tenant: &TenantId) -> Result<BlockChanged, CommandError> {
        // The blocker comes from the path or the token (checked there); the user to block is
        // the `uid` of the REST body and of the socket frame, so errors name it `uid`.
        let uid = id("uid", self.uid, Uid::parse)?;
        let blocked = id("uid", self.blocked_uid, Uid::parse)?;
        if uid == blocked {
            return Err(CommandError::invalid("uid", "a user cannot block itself"));
        }
        // A write by `uid`: counted as one of its sends (so toggling cannot flood the log).
        on.count(tenant, &uid, platform::ratelimit::Scope::UserSends)?;
        let key = ChannelKey::personal(&uid, &blocked);
        let cmd = Domain::Block {
            uid: uid.clone(),
            block: !self.unblock,
        };
        let event_seq = on.executor.execute(tenant, &key, cmd).await?.event_seq();
        Ok(BlockChanged {
            uid: uid.to_string(),
            blocked_uid: blocked.to_string(),
            event_seq,
        })
    }
}
