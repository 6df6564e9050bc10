//! Group roles and moderation, and personal blocks: the part of a channel's state they make
//! ([`Moderation`]), how events fold into it ([`apply`]), and their rules ([`Authority`],
//! [`may_send`], [`decide`]).
//!
//! Rules (docs/moderation.md is the reference):
//! - A command with `actor_uid` acts with that member's role; without it, it is an operator
//!   call (the internal system's authority) and no role rule applies.
//! - Owners and admins moderate (add and remove others, mute, ban, manage lists and channel
//!   settings, disband); a member may only remove itself. An actor acts on another member only
//!   if it outranks it (owners act on everyone), and grants at most its own role.
//! - The last owner cannot leave or step down while other members remain.
//! - Sends: a muted member, a blacklisted uid (owners excepted), anyone but owners and admins
//!   in a muted channel, and anyone unlisted (owners and admins excepted) in whitelist mode are
//!   refused, each with its own code; a blocked user's sends to the blocker are refused.

use super::error::DomainError;
use events::event::*;
use events::moderation::{Role, SendList};
use events::{ChannelId, ChannelKey, Event, Uid};
use std::collections::{BTreeMap, BTreeSet};

/// The moderation state of a channel.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Moderation {
    /// Owners and admins among the members (everyone else is a `member`).
    pub roles: BTreeMap<String, Role>,
    /// Members muted until a time, ms.
    pub muted_until: BTreeMap<String, i64>,
    /// Channel-wide mute.
    pub muted: bool,
    /// Whitelist mode.
    pub whitelist_only: bool,
    /// Banned uids and when each ban ends (ms; `None`: until unbanned).
    pub bans: BTreeMap<String, Option<i64>>,
    /// Uids that may not send.
    pub blacklist: BTreeSet<String>,
    /// Uids that may send in whitelist mode.
    pub whitelist: BTreeSet<String>,
    /// Personal channels: `(blocker, blocked)` pairs.
    pub blocks: BTreeSet<(String, String)>,
}

impl Moderation {
    /// `uid`'s role (a non-member's is `member`).
    pub fn role(&self, uid: &str) -> Role {
        self.roles.get(uid).copied().unwrap_or(Role::Member)
    }

    /// `uid` is banned at `now` (ms).
    pub fn banned(&self, uid: &str, now: i64) -> bool {
        match self.bans.get(uid) {
            Some(None) => true,
            Some(Some(until)) => *until > now,
            None => false,
        }
    }

    fn owners(&self) -> usize {
        self.roles.values().filter(|r| **r == Role::Owner).count()
    }

    fn forget(&mut self, uid: &str) {
        self.roles.remove(uid);
        self.muted_until.remove(uid);
    }

    fn listed(&self, list: SendList) -> &BTreeSet<String> {
        match list {
            SendList::Blacklist => &self.blacklist,
            SendList::Whitelist => &self.whitelist,
        }
    }

    fn list(&mut self, list: SendList) -> &mut BTreeSet<String> {
        match list {
            SendList::Blacklist => &mut self.blacklist,
            SendList::Whitelist => &mut self.whitelist,
        }
    }
}

/// Folds one event into the moderation state; `members` changes where a ban removes one.
pub fn apply(members: &mut BTreeSet<String>, m: &mut Moderation, event: &Event) {
    match event {
        Event::GroupCreated(e) => {
            m.roles.clear();
            if let Some(owner) = &e.owner {
                m.roles.insert(owner.to_string(), Role::Owner);
            }
        }
        Event::MemberRemoved(e) => m.forget(e.uid.as_str()),
        Event::GroupDisbanded(_) => {
            m.roles.clear();
            m.muted_until.clear();
        }
        Event::MemberUpdated(e) => {
            let uid = e.uid.to_string();
            match e.role {
                Role::Member => m.roles.remove(&uid),
                role => m.roles.insert(uid.clone(), role),
            };
            match e.muted_until {
                Some(t) => m.muted_until.insert(uid, t),
                None => m.muted_until.remove(&uid),
            };
        }
        Event::ChannelUpdated(e) => {
            m.muted = e.muted;
            m.whitelist_only = e.whitelist_only;
        }
        Event::MemberBanned(e) => {
            members.remove(e.uid.as_str());
            m.forget(e.uid.as_str());
            m.bans.insert(e.uid.to_string(), e.until);
        }
        Event::MemberUnbanned(e) => {
            m.bans.remove(e.uid.as_str());
        }
        Event::SendListChanged(e) => {
            let list = m.list(e.list);
            for u in &e.added {
                list.insert(u.to_string());
            }
            for u in &e.removed {
                list.remove(u.as_str());
            }
        }
        Event::UserBlocked(e) => {
            m.blocks
                .insert((e.uid.to_string(), e.blocked_uid.to_string()));
        }
        Event::UserUnblocked(e) => {
            m.blocks
                .remove(&(e.uid.to_string(), e.blocked_uid.to_string()));
        }
        Event::MessageSent(_) | Event::MembersAdded(_) | Event::ReadPositionSet(_) => {}
    }
}

/// Who carries out a group command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authority {
    /// No `actor_uid`: the internal system; no role rule applies.
    Operator,
    /// A member, with its role.
    Member {
        /// The actor.
        uid: String,
        /// Its role.
        role: Role,
    },
}

impl Authority {
    /// The authority of `actor` in a group with `members`.
    ///
    /// # Errors
    /// [`DomainError::ActorNotMember`] when `actor` is not a member.
    pub fn of(
        members: &BTreeSet<String>,
        m: &Moderation,
        actor: Option<&Uid>,
    ) -> Result<Self, DomainError> {
        match actor {
            None => Ok(Authority::Operator),
            Some(a) if members.contains(a.as_str()) => Ok(Authority::Member {
                uid: a.to_string(),
                role: m.role(a.as_str()),
            }),
            Some(a) => Err(DomainError::ActorNotMember(a.to_string())),
        }
    }

    /// The acting member's uid (none for an operator).
    pub fn uid(&self) -> Option<&str> {
        match self {
            Authority::Operator => None,
            Authority::Member { uid, .. } => Some(uid),
        }
    }

    /// Only owners and admins may `what`.
    ///
    /// # Errors
    /// [`DomainError::PermissionDenied`] for a plain member.
    pub fn moderator(&self, what: &str) -> Result<(), DomainError> {
        match self {
            Authority::Member { role, uid } if !role.moderates() => {
                Err(DomainError::PermissionDenied(format!(
                    "only owners and admins may {what}; {uid} is a member"
                )))
            }
            _ => Ok(()),
        }
    }

    /// The actor may `what` to `target`: a moderator that outranks it (owners act on
    /// everyone), never itself.
    ///
    /// # Errors
    /// [`DomainError::PermissionDenied`].
    pub fn over(&self, m: &Moderation, target: &str, what: &str) -> Result<(), DomainError> {
        self.moderator(what)?;
        match self {
            Authority::Operator => Ok(()),
            Authority::Member { uid, .. } if uid == target => Err(DomainError::PermissionDenied(
                format!("{uid} may not {what} itself"),
            )),
            Authority::Member { uid, role } => {
                let theirs = m.role(target);
                if *role == Role::Owner || *role > theirs {
                    Ok(())
                } else {
                    Err(DomainError::PermissionDenied(format!(
                        "{uid} ({}) may not {what} {target} ({})",
                        role.as_str(),
                        theirs.as_str()
                    )))
                }
            }
        }
    }
}

/// `uid` is the last owner of a group that has other members.
pub fn last_owner(members: &BTreeSet<String>, m: &Moderation, uid: &str) -> bool {
    m.role(uid) == Role::Owner && m.owners() == 1 && members.len() > 1
}

/// The group's send rules for member `from` at `now` (ms).
///
/// # Errors
/// [`DomainError::MemberMuted`], [`DomainError::Blacklisted`], [`DomainError::ChannelMuted`]
/// or [`DomainError::NotWhitelisted`], checked in that order.
pub fn may_send(m: &Moderation, from: &str, now: i64) -> Result<(), DomainError> {
    if let Some(&until) = m.muted_until.get(from) {
        if until > now {
            return Err(DomainError::MemberMuted {
                uid: from.to_owned(),
                until,
            });
        }
    }
    let role = m.role(from);
    if m.blacklist.contains(from) && role != Role::Owner {
        return Err(DomainError::Blacklisted(from.to_owned()));
    }
    if m.muted && !role.moderates() {
        return Err(DomainError::ChannelMuted);
    }
    if m.whitelist_only && !role.moderates() && !m.whitelist.contains(from) {
        return Err(DomainError::NotWhitelisted(from.to_owned()));
    }
    Ok(())
}

/// `from`'s peer in personal channel `key` blocked `from`.
pub fn blocked(m: &Moderation, key: &ChannelKey, from: &str) -> bool {
    match key {
        ChannelKey::Personal { low, high } => {
            let peer = if low.as_str() == from { high } else { low };
            m.blocks.contains(&(peer.to_string(), from.to_owned()))
        }
        ChannelKey::Group { .. } => false,
    }
}

/// A moderation command on a live group.
#[derive(Debug, Clone)]
pub enum Act {
    /// Change a member's role and/or mute (`None`: leave as is; `Some(None)`: unmute).
    UpdateMember {
        /// The member.
        uid: Uid,
        /// The new role.
        role: Option<Role>,
        /// The new mute end, ms.
        muted_until: Option<Option<i64>>,
    },
    /// Change the channel's send settings (`None`: leave as is).
    UpdateChannel {
        /// Channel-wide mute.
        muted: Option<bool>,
        /// Whitelist mode.
        whitelist_only: Option<bool>,
    },
    /// Ban (and remove) a user.
    Ban {
        /// Who.
        uid: Uid,
        /// When the ban ends, ms (`None`: until unbanned).
        until: Option<i64>,
    },
    /// Lift a ban.
    Unban {
        /// Who.
        uid: Uid,
    },
    /// Add uids to and remove uids from a send list.
    ChangeList {
        /// Which list.
        list: SendList,
        /// Uids to list.
        add: Vec<Uid>,
        /// Uids to unlist.
        remove: Vec<Uid>,
    },
}

/// The events of `act` on group `channel_id` (members `members`) by `actor` at `now` (ms);
/// none when it changes nothing.
///
/// # Errors
/// [`DomainError`]: the actor's rights, a non-member target, the last owner.
pub fn decide(
    members: &BTreeSet<String>,
    m: &Moderation,
    channel_id: ChannelId,
    act: Act,
    actor: Option<&Uid>,
    now: i64,
) -> Result<Vec<Event>, DomainError> {
    let auth = Authority::of(members, m, actor)?;
    let by = actor.cloned();
    let event = match act {
        Act::UpdateMember {
            uid,
            role,
            muted_until,
        } => {
            let target = uid.as_str();
            if !members.contains(target) {
                return Err(DomainError::MemberNotFound(uid.to_string()));
            }
            let current = m.role(target);
            if let Some(role) = role.filter(|r| *r != current) {
                if auth.uid() == Some(target) {
                    auth.moderator("change roles")?;
                } else {
                    auth.over(m, target, "change the role of")?;
                }
                if let Authority::Member { role: mine, uid } = &auth {
                    if role > *mine {
                        return Err(DomainError::PermissionDenied(format!(
                            "{uid} ({}) may not grant {}",
                            mine.as_str(),
                            role.as_str()
                        )));
                    }
                }
                if current == Role::Owner && auth != Authority::Operator && m.owners() == 1 {
                    return Err(DomainError::LastOwner(uid.to_string()));
                }
            }
            let mute_now = m.muted_until.get(target).copied();
            let mute = muted_until.map_or(mute_now, |t| t.filter(|t| *t > now));
            if muted_until.is_some() && mute != mute_now {
                auth.over(m, target, "mute")?;
            }
            let role = role.unwrap_or(current);
            if role == current && mute == mute_now {
                return Ok(vec![]);
            }
            Event::MemberUpdated(MemberUpdated {
                channel_id,
                uid,
                role,
                muted_until: mute,
                by,
            })
        }
        Act::UpdateChannel {
            muted,
            whitelist_only,
        } => {
            auth.moderator("change the channel's settings")?;
            let muted = muted.unwrap_or(m.muted);
            let whitelist_only = whitelist_only.unwrap_or(m.whitelist_only);
            if muted == m.muted && whitelist_only == m.whitelist_only {
                return Ok(vec![]);
            }
            Event::ChannelUpdated(ChannelUpdated {
                channel_id,
                muted,
                whitelist_only,
                by,
            })
        }
        Act::Ban { uid, until } => {
            if members.contains(uid.as_str()) {
                auth.over(m, uid.as_str(), "ban")?;
            } else {
                auth.moderator("ban")?;
            }
            if !members.contains(uid.as_str()) && m.bans.get(uid.as_str()) == Some(&until) {
                return Ok(vec![]);
            }
            Event::MemberBanned(MemberBanned {
                channel_id,
                uid,
                until,
                by,
            })
        }
        Act::Unban { uid } => {
            auth.moderator("unban")?;
            if !m.bans.contains_key(uid.as_str()) {
                return Ok(vec![]);
            }
            Event::MemberUnbanned(MemberUnbanned {
                channel_id,
                uid,
                by,
            })
        }
        Act::ChangeList { list, add, remove } => {
            auth.moderator(&format!("change the {}", list.as_str()))?;
            let current = m.listed(list);
            let mut seen = BTreeSet::new();
            let added: Vec<Uid> = add
                .into_iter()
                .filter(|u| !current.contains(u.as_str()) && seen.insert(u.clone()))
                .collect();
            let removed: Vec<Uid> = remove
                .into_iter()
                .filter(|u| current.contains(u.as_str()) && seen.insert(u.clone()))
                .collect();
            if added.is_empty() && removed.is_empty() {
                return Ok(vec![]);
            }
            Event::SendListChanged(SendListChanged {
                channel_id,
                list,
                added,
                removed,
                by,
            })
        }
    };
    Ok(vec![event])
}

#[cfg(test)]
#[path = "moderation_tests.rs"]
mod tests;
