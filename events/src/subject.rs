//! Subject naming.
//!
//! Every subject starts with a configurable root (default `parley`) and the tenant:
//!
//! | subject | events |
//! |---|---|
//! | `<root>.<tenant>.ch.1.<low>.<high>` | everything on the personal channel between `low` and `high` |
//! | `<root>.<tenant>.ch.2.<group>` | everything on a group channel (lifecycle, members, messages) |
//! | `<root>.<tenant>.rd.<uid>` | read positions moved by `uid` |
//!
//!
//! Outside the stream (so they are never written to the log):
//!
//! | subject | what |
//! |---|---|
//! | `<root>_cmd.<tenant>.send`, `<root>_cmd.<tenant>.read` | commands from end users' sockets, request/reply to the command service (queue group) |
//! | `<root>_rt.<tenant>.typing` | typing notices between query-svc instances (core NATS) |
//! | `<root>_tenancy.<tenant>.t`, `<root>_tenancy.<tenant>.u` | the tenancy log ([`crate::tenancy`]): tenants and keys; user-token revocations — a stream of its own |
//!
//! and the key-value bucket `<root>_presence` holds who is online.
//!
//! Each id is one token, base64url without padding (RFC 4648 §5), so no id can inject `.`, `*`
//! or `>` and the mapping is injective. One subject per channel is what makes per-channel
//! optimistic concurrency (`Nats-Expected-Last-Subject-Sequence`) and gap-free `message_seq`
//! possible.

use crate::ids::{ChannelKey, TenantId, Uid};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// Encodes one id as a subject token (base64url, no padding).
pub fn token(id: &str) -> String {
    URL_SAFE_NO_PAD.encode(id.as_bytes())
}

/// Decodes a token written by [`token`]; `None` if it is not valid base64url UTF-8.
pub fn untoken(tok: &str) -> Option<String> {
    let bytes = URL_SAFE_NO_PAD.decode(tok).ok()?;
    String::from_utf8(bytes).ok()
}

/// Builds subjects under one root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subjects {
    root: String,
}

impl Subjects {
    /// Subjects under `root`, which must itself be a valid literal subject prefix (e.g.
    /// `parley`, or `t_1234` in tests).
    pub fn new(root: impl Into<String>) -> Self {
        Self { root: root.into() }
    }

    /// The root, e.g. `parley`.
    pub fn root(&self) -> &str {
        &self.root
    }

    /// The wildcard that covers every event: `<root>.>`; the stream's subject filter.
    pub fn all(&self) -> String {
        format!("{}.>", self.root)
    }

    /// The subject that carries every event of one channel.
    pub fn channel(&self, tenant: &TenantId, key: &ChannelKey) -> String {
        match key {
            ChannelKey::Personal { low, high } => format!(
                "{}.{}.ch.1.{}.{}",
                self.root,
                token(tenant.as_str()),
                token(low.as_str()),
                token(high.as_str())
            ),
            ChannelKey::Group { id } => {
                format!(
                    "{}.{}.ch.2.{}",
                    self.root,
                    token(tenant.as_str()),
                    token(id.as_str())
                )
            }
        }
    }

    /// The subject that carries the read positions moved by `uid`.
    pub fn reads(&self, tenant: &TenantId, uid: &Uid) -> String {
        format!(
            "{}.{}.rd.{}",
            self.root,
            token(tenant.as_str()),
            token(uid.as_str())
        )
    }
}

/// A command that end users' sockets send to the command service over request/reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandVerb {
    /// Send a message (`send`).
    Send,
    /// Move a read position (`read`).
    Read,
    /// Block or unblock a user ([`crate::command::BlockUser`]; socket `block`, `unblock`).
    Block,
    /// Leave a group ([`crate::command::RemoveMember`] with `actor_uid` = `uid`; socket
    /// `leave`).
    Leave,
}

impl CommandVerb {
    /// Every verb.
    pub const ALL: [CommandVerb; 4] = [
        CommandVerb::Send,
        CommandVerb::Read,
        CommandVerb::Block,
        CommandVerb::Leave,
    ];

    /// The verb's subject token.
    pub fn as_str(self) -> &'static str {
        match self {
            CommandVerb::Send => "send",
            CommandVerb::Read => "read",
            CommandVerb::Block => "block",
            CommandVerb::Leave => "leave",
        }
    }
}

impl Subjects {
    /// The subject of `verb` commands of `tenant`: `<root>_cmd.<tenant>.<verb>`.
    pub fn command(&self, tenant: &TenantId, verb: CommandVerb) -> String {
        format!(
            "{}_cmd.{}.{}",
            self.root,
            token(tenant.as_str()),
            verb.as_str()
        )
    }

    /// What the command service subscribes to: `<root>_cmd.*.*`.
    pub fn commands(&self) -> String {
        format!("{}_cmd.*.*", self.root)
    }

    /// Every tenant's `verb` commands: `<root>_cmd.*.<verb>`.
    pub fn commands_of(&self, verb: CommandVerb) -> String {
        format!("{}_cmd.*.{}", self.root, verb.as_str())
    }

    /// Tenant and verb of a command subject; `None` if it is not one.
    pub fn parse_command(&self, subject: &str) -> Option<(TenantId, CommandVerb)> {
        let rest = subject.strip_prefix(&self.root)?.strip_prefix("_cmd.")?;
        let (tenant, verb) = rest.split_once('.')?;
        let tenant = TenantId::parse(untoken(tenant)?).ok()?;
        let verb = CommandVerb::ALL.into_iter().find(|v| v.as_str() == verb)?;
        Some((tenant, verb))
    }

    /// Typing notices of `tenant`: `<root>_rt.<tenant>.typing`.
    pub fn typing(&self, tenant: &TenantId) -> String {
        format!("{}_rt.{}.typing", self.root, token(tenant.as_str()))
    }

    /// The tenant of a typing subject; `None` if it is not one.
    pub fn parse_typing(&self, subject: &str) -> Option<TenantId> {
        let rest = subject.strip_prefix(&self.root)?.strip_prefix("_rt.")?;
        TenantId::parse(untoken(rest.strip_suffix(".typing")?)?).ok()
    }

    /// Every tenant's typing notices: `<root>_rt.*.typing`.
    pub fn all_typing(&self) -> String {
        format!("{}_rt.*.typing", self.root)
    }

    /// The tenancy log subject of `tenant`'s own record (creation, updates, API keys):
    /// `<root>_tenancy.<tenant>.t`. One subject per tenant, so creation can demand an empty
    /// subject (`Nats-Expected-Last-Subject-Sequence: 0`) and updates the one they read.
    pub fn tenancy(&self, tenant: &TenantId) -> String {
        format!("{}_tenancy.{}.t", self.root, token(tenant.as_str()))
    }

    /// The tenancy log subject of `tenant`'s user-token revocations: `<root>_tenancy.<tenant>.u`.
    pub fn tenancy_users(&self, tenant: &TenantId) -> String {
        format!("{}_tenancy.{}.u", self.root, token(tenant.as_str()))
    }

    /// Every tenancy subject, the tenancy stream's filter: `<root>_tenancy.>`.
    pub fn tenancy_all(&self) -> String {
        format!("{}_tenancy.>", self.root)
    }

    /// The presence key-value bucket: `<root>_presence`.
    pub fn presence_bucket(&self) -> String {
        format!("{}_presence", self.root)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn command_subjects_round_trip() {
        let s = Subjects::new("parley");
        let t = TenantId::parse("a.b").unwrap();
        let subj = s.command(&t, CommandVerb::Read);
        assert!(!subj.starts_with("parley."), "outside the stream: {subj}");
        assert_eq!(s.parse_command(&subj), Some((t.clone(), CommandVerb::Read)));
        assert_eq!(s.parse_command("parley_cmd.x.nope"), None);
        assert_eq!(s.parse_command("other_cmd.YQ.send"), None);
        assert_eq!(s.parse_typing(&s.typing(&t)), Some(t));
    }

    use super::*;
    use crate::ids::ChannelId;

    #[test]
    fn hostile_ids_stay_one_token() {
        let s = Subjects::new("parley");
        let t = TenantId::parse("acme").unwrap();
        for raw in ["a.b", "x*", ">", "用户7", "a.>.*"] {
            let key = ChannelKey::Group {
                id: ChannelId::parse(raw).unwrap(),
            };
            let subj = s.channel(&t, &key);
            let toks: Vec<&str> = subj.split('.').collect();
            assert_eq!(toks.len(), 5, "{subj}");
            assert!(!subj.contains('*') && !subj.contains('>'), "{subj}");
            assert_eq!(untoken(toks[4]).as_deref(), Some(raw));
        }
    }

    #[test]
    fn personal_subject_is_symmetric() {
        let s = Subjects::new("parley");
        let t = TenantId::parse("acme").unwrap();
        let a = Uid::parse("a.b").unwrap();
        let b = Uid::parse("c").unwrap();
        assert_eq!(
            s.channel(&t, &ChannelKey::personal(&a, &b)),
            s.channel(&t, &ChannelKey::personal(&b, &a))
        );
    }
}
