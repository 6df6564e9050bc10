//! The group lifecycle: [`CreateGroup`], [`DisbandGroup`], [`AddMembers`], [`RemoveMember`].

use super::fields::{id, uids};
use super::{Command, CommandError, Commands};
use crate::domain::channel::Command as Domain;
use crate::executor::Outcome;
use events::command::{AddMembers, CreateGroup, DisbandGroup, GroupChanged, RemoveMember};
use events::{ChannelId, ChannelKey, Event, TenantId, Uid};

fn group(raw: String) -> Result<(ChannelId, ChannelKey), CommandError> {
    let channel_id = id("channel_id", raw, ChannelId::parse)?;
    let key = ChannelKey::Group {
        id: channel_id.clone(),
    };
    Ok((channel_id, key))
}

fn changed(channel_id: &ChannelId, o: &Outcome) -> GroupChanged {
    let event_seq = match o {
        Outcome::Appended { event_seq, .. } | Outcome::Unchanged { event_seq } => *event_seq,
        Outcome::Duplicate(r) => r.event_seq,
    };
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
        let cmd = Domain::CreateGroup {
            name: self.name,
            members,
            max_members: on.limits(tenant).max_group_members,
        };
        let o = on.executor.execute(tenant, &key, cmd).await?;
        Ok(changed(&channel_id, &o))
    }
}

impl Command for DisbandGroup {
    type Output = GroupChanged;

    /// # Errors
    /// 400 naming `channel_id`; 404 no such group; 503.
    async fn run(self, on: &Commands, tenant: &TenantId) -> Result<GroupChanged, CommandError> {
        let (channel_id, key) = group(self.channel_id)?;
        let o = on.executor.execute(tenant, &key, Domain::Disband).await?;
        Ok(changed(&channel_id, &o))
    }
}

impl Command for AddMembers {
    type Output = GroupChanged;

    /// Idempotent: current members are ignored (and not listed in `added`).
    ///
    /// # Errors
    /// 400 naming `channel_id` or `uids` (empty, too many, `uids[i]` malformed); 404; 409
    /// `GROUP_FULL` beyond the tenant's `max_group_members`; 503.
    async fn run(self, on: &Commands, tenant: &TenantId) -> Result<GroupChanged, CommandError> {
        let (channel_id, key) = group(self.channel_id)?;
        if self.uids.is_empty() {
            return Err(CommandError::invalid("uids", "uids must not be empty"));
        }
        let list = uids("uids", self.uids)?;
        let o = on
            .executor
            .execute(
                tenant,
                &key,
                Domain::AddMembers {
                    uids: list,
                    max_members: on.limits(tenant).max_group_members,
                },
            )
            .await?;
        Ok(changed(&channel_id, &o))
    }
}

impl Command for RemoveMember {
    type Output = GroupChanged;

    /// # Errors
    /// 400 naming `channel_id` or `uid`; 404 no such group or `MEMBER_NOT_FOUND`; 503.
    async fn run(self, on: &Commands, tenant: &TenantId) -> Result<GroupChanged, CommandError> {
        let (channel_id, key) = group(self.channel_id)?;
        let uid = id("uid", self.uid, Uid::parse)?;
        let o = on
            .executor
            .execute(tenant, &key, Domain::RemoveMember { uid })
            .await?;
        Ok(changed(&channel_id, &o))
    }
}
