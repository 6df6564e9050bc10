//! The hub's membership model: who is in each live group, exact at the hub's log position.
//! Pure: loaded from a snapshot of the channels read model, then changed by the group events
//! in log order ([`super::routing`] decides when, relative to the frames they cause).

use events::{ChannelId, TenantId, Uid};
use std::collections::{HashMap, HashSet};

/// Members of every live group, per tenant.
#[derive(Debug, Default)]
pub struct Membership {
    groups: HashMap<TenantId, HashMap<ChannelId, HashSet<Uid>>>,
}

impl Membership {
    /// The memberships of `rows` (`(tenant, group id, uid)` as stored); a row whose ids do not
    /// parse is skipped (the command service never accepts such ids).
    pub fn from_rows(rows: &[(String, String, String)]) -> Self {
        let mut m = Self::default();
        for (tenant, group, uid) in rows {
            let (Ok(t), Ok(g), Ok(u)) = (
                TenantId::parse(tenant.as_str()),
                ChannelId::parse(group.as_str()),
                Uid::parse(uid.as_str()),
            ) else {
                continue;
            };
            m.add(&t, &g, std::iter::once(u));
        }
        m
    }

    /// The members of `group`, if it is live.
    pub fn members(&self, tenant: &TenantId, group: &ChannelId) -> Option<&HashSet<Uid>> {
        self.groups.get(tenant)?.get(group)
    }

    /// Whether `uid` is a member of `group`.
    pub fn is_member(&self, tenant: &TenantId, group: &ChannelId, uid: &Uid) -> bool {
        self.members(tenant, group).is_some_and(|m| m.contains(uid))
    }

    /// `group` was created with exactly `members`.
    pub fn create(&mut self, tenant: &TenantId, group: &ChannelId, members: &[Uid]) {
        self.groups
            .entry(tenant.clone())
            .or_default()
            .insert(group.clone(), members.iter().cloned().collect());
    }

    /// `uids` joined `group`.
    pub fn add(
        &mut self,
        tenant: &TenantId,
        group: &ChannelId,
        uids: impl IntoIterator<Item = Uid>,
    ) {
        self.groups
            .entry(tenant.clone())
            .or_default()
            .entry(group.clone())
            .or_default()
            .extend(uids);
    }

    /// `uid` left `group`.
    pub fn remove(&mut self, tenant: &TenantId, group: &ChannelId, uid: &Uid) {
        if let Some(set) = self.groups.get_mut(tenant).and_then(|g| g.get_mut(group)) {
            set.remove(uid);
        }
    }

    /// `group` was disbanded: it has no members any more.
    pub fn disband(&mut self, tenant: &TenantId, group: &ChannelId) {
        if let Some(g) = self.groups.get_mut(tenant) {
            g.remove(group);
            if g.is_empty() {
                self.groups.remove(tenant);
            }
        }
    }
}
