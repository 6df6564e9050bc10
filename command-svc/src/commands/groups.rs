//! The group lifecycle: [`CreateGroup`], [`DisbandGroup`], [`AddMembers`], [`RemoveMember`].
//! Each may carry `actor_uid`: the member acting, whose role the rules check
//! ([`crate::domain::moderation`]); without it the call is an operator's.

use super::fields::{id, uids};
use super::{Command, CommandError, Commands};
use crate::domain::channel::Command as Domain;
use crate::executor::Outcome;
use events::command::{AddMembers, CreateGroup, DisbandGroup, GroupChanged, RemoveMember};
use events::{ChannelId, ChannelKey, Event, TenantId, Uid};

/// `actor_uid`, if given, as a uid (or 400 naming `actor_uid`).
pub(super) fn actor(raw: Option<String>) -> Result<Option<Uid>, CommandError> {
    raw.map(|a| id("actor_uid", a, Uid::parse)).transpose()
}

pub(super) fn group(raw: String) -> Result<(ChannelId, ChannelKey), CommandError> {
    let channel_id = id("channel_id", raw, ChannelId::parse)?;
    let key = ChannelKey::Group {
        id: channel_id.clone(),
    };
    Ok((channel_id, key))
}

pub(super) fn changed(channel_id: &ChannelId, o: &Outcome) -> GroupChanged {
    let event_seq = o.event_seq();
    let added = match o {
        Outcome::Appended {
            event: Event::MembersAdded(e),
            ..
        } => e.uids.iter().map(ToString::to_string).collect(),
        _ => Vec::new(),
    };
    GroupChanged {
        channel_id: channel_id.to_string(),
        event_seq,
        added,
    }
}

impl Command for CreateGroup {
    type Output = GroupChanged;

    /// # Errors
    /// 400 naming `channel_id`, `name` ([`events::text::GROUP_NAME`]) or `members[i]`; 409
    /// `CHANNEL_EXISTS` if the id is or was in use, `GROUP_FULL` beyond the tenant's
    /// `max_group_members`; 503.
    async fn run(self, on: &Commands, tenant: &TenantId) -> Result<GroupChanged, CommandError> {
        let (channel_id, key) = group(self.channel_id)?;
        if let Some(name) = &self.name {
            events::text::GROUP_NAME
                .check(name)
                .map_err(|e| CommandError::invalid("name", format!("name {e}")))?;
        }
        let members = uids("members", self.members)?;
        let owner = self.owner.map(|o| id("owner", o, Uid::parse)).transpose()?;
        let cmd = Domain::CreateGroup {
            name: self.name,
            members,
            max_members: on.limits(tenant).max_group_members,
            owner,
            actor: actor(self.actor_uid)?,
        };
        let o = on.executor.execute(tenant, &key, cmd).await?;
        Ok(changed(&channel_id, &o))
    }
}

impl Command for DisbandGroup {
    type Output = GroupChanged;

    /// # Errors
    /// 400 naming `channel_id` or `actor_uid`; 403 when the actor is not an owner or admin;
    /// 404 no such group; 503.
    async fn run(self, on: &Commands, tenant: &TenantId) -> Result<GroupChanged, CommandError> {
        let (channel_id, key) = group(self.channel_id)?;
        let cmd = Domain::Disband {
            actor: actor(self.actor_uid)?,
        };
        let o = on.executor.execute(tenant, &key, cmd).await?;
        Ok(changed(&channel_id, &o))
    }
}

impl Command for AddMembers {
    type Output = GroupChanged;

    /// Idempotent: current members are ignored (and not listed in `added`).
    ///
    /// # Errors
    /// 400 naming `channel_id`, `actor_uid` or `uids` (empty, too many, `uids[i]` malformed);
    /// 403 when the actor is not an owner or admin, or `BANNED` naming `uids`; 404; 409
    /// `GROUP_FULL` beyond the tenant's `max_group_members`; 503.
    async fn run(self, on: &Commands, tenant: &TenantId) -> Result<GroupChanged, CommandError> {
        let (channel_id, key) = group(self.channel_id)?;
        if self.uids.is_empty() {
            return Err(CommandError::invalid("uids", "uids must not be empty"));
        }
        let list = uids("uids", self.uids)?;
        let actor = actor(self.actor_uid)?;
        let o = on
            .executor
            .execute(
                tenant,
                &key,
                Domain::AddMembers {
                    uids: list,
                    max_members: on.limits(tenant).max_group_members,
                    actor,
                    now: platform::now_ms(),
                },
            )
            .await?;
        Ok(changed(&channel_id, &o))
    }
}

impl Command for RemoveMember {
    type Output = GroupChanged;

    /// # Errors
    /// 400 naming `channel_id`, `uid` or `actor_uid`; 403 when the actor may not remove `uid`;
    /// 404 no such group or `MEMBER_NOT_FOUND`; 409 `LAST_OWNER`; 503.
    async fn run(self, on: &Commands, tenant: &TenantId) -> Result<GroupChanged, CommandError> {
        let (channel_id, key) = group(self.channel_id)?;
        let uid = id("uid", self.uid, Uid::parse)?;
        let actor = actor(self.actor_uid)?;
        let o = on
            .executor
            .execute(tenant, &key, Domain::RemoveMember { uid, actor })
            .await?;
        Ok(changed(&channel_id, &o))
    }
}
