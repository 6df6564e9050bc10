//! The JSON frames of `/v1/ws` and `/v1/events` (documented in `docs/realtime.md`): what
//! clients send ([`ClientFrame`]) and what the server pushes ([`ServerFrame`]).

use platform::error::ErrorDetail;
use serde::{Deserialize, Serialize};

/// Longest `ref` a client may attach, in bytes.
pub const MAX_REF_BYTES: usize = 64;
/// Most uids in one `presence_subscribe`.
pub const MAX_PRESENCE_UIDS: usize = 200;
/// Most channels listed in one `sync`.
pub const MAX_SYNC_CHANNELS: usize = 10_000;

/// A channel a client holds messages of, and the last `message_seq` it holds.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncChannel {
    /// 1 personal, 2 group.
    pub channel_type: u8,
    /// The group id, or the peer's uid.
    pub channel_id: String,
    /// The last `message_seq` the client has of the channel (0: none).
    pub last_seq: u64,
}

/// A frame from the client: `{"type": "<variant>", …fields}`.
///
/// [`ClientFrame::parse`] moves the fields under the variant's name before deserializing (an
/// externally tagged enum), because serde buffers internally tagged content and error paths
/// would lose the offending field.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientFrame {
    /// Resume: send what the client missed, then `synced`.
    Sync {
        /// Echoed in errors.
        #[serde(default, rename = "ref")]
        reference: Option<String>,
        /// Per channel, the last `message_seq` the client holds.
        #[serde(default)]
        channels: Vec<SyncChannel>,
        /// For channels not listed: everything whose event came after this log position.
        #[serde(default)]
        since_event_seq: Option<u64>,
    },
    /// Send a message as the token's user.
    Send {
        /// Echoed in the answer.
        #[serde(default, rename = "ref")]
        reference: Option<String>,
        /// 1 personal, 2 group.
        channel_type: u8,
        /// Group id, or the recipient's uid.
        channel_id: String,
        /// Base64 payload.
        payload: String,
        /// Idempotency key.
        #[serde(default)]
        client_msg_no: Option<String>,
    },
    /// Move the user's read position.
    Read {
        /// Echoed in an error.
        #[serde(default, rename = "ref")]
        reference: Option<String>,
        /// 1 personal, 2 group.
        channel_type: u8,
        /// Group id, or the peer's uid.
        channel_id: String,
        /// The new read position.
        message_seq: u64,
    },
    /// The token's user blocks `uid`: `uid`'s sends to it are refused (`BLOCKED`).
    Block {
        /// Echoed in an error.
        #[serde(default, rename = "ref")]
        reference: Option<String>,
        /// The user to block.
        uid: String,
    },
    /// The token's user unblocks `uid`.
    Unblock {
        /// Echoed in an error.
        #[serde(default, rename = "ref")]
        reference: Option<String>,
        /// The user to unblock.
        uid: String,
    },
    /// The token's user leaves a group (the last owner may not while others remain).
    Leave {
        /// Echoed in an error.
        #[serde(default, rename = "ref")]
        reference: Option<String>,
        /// The group.
        channel_id: String,
    },
    /// The user is typing in a channel.
    Typing {
        /// Echoed in an error.
        #[serde(default, rename = "ref")]
        reference: Option<String>,
        /// 1 personal, 2 group.
        channel_type: u8,
        /// Group id, or the peer's uid.
        channel_id: String,
    },
    /// Replace the set of users whose presence this connection follows.
    PresenceSubscribe {
        /// Echoed in an error.
        #[serde(default, rename = "ref")]
        reference: Option<String>,
        /// The uids (at most 200).
        uids: Vec<String>,
    },
    /// Application-level heartbeat.
    Ping {
        /// Echoed in the `pong`.
        #[serde(default, rename = "ref")]
        reference: Option<String>,
    },
}

/// A client frame that could not be read: the field to blame, why, and the frame's `ref`
/// when it had one that could be read (a string of at most [`MAX_REF_BYTES`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadFrame {
    /// The offending field (`type` for a frame that is not an object with a known `type`).
    pub field: String,
    /// What is wrong.
    pub message: String,
    /// The frame's `ref`, echoed in the `error` frame.
    pub reference: Option<String>,
}

impl ClientFrame {
    /// Parses a text frame; the error names the offending field (`payload`,
    /// `channels[2].last_seq`, an unknown field) and keeps the frame's `ref`.
    ///
    /// # Errors
    /// [`BadFrame`] for malformed JSON, an unknown or missing `type`, an unknown field or a bad
    /// value.
    pub fn parse(text: &str) -> Result<Self, BadFrame> {
        let bad = |field: &str, m: String, reference: Option<String>| BadFrame {
            field: field.to_owned(),
            message: m,
            reference,
        };
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| bad("type", format!("not JSON: {e}"), None))?;
        let serde_json::Value::Object(mut fields) = value else {
            return Err(bad("type", "a frame is a JSON object".into(), None));
        };
        let reference = match fields.get("ref") {
            Some(serde_json::Value::String(r)) if r.len() <= MAX_REF_BYTES => Some(r.clone()),
            _ => None,
        };
        let kind = match fields.remove("type") {
            Some(serde_json::Value::String(k)) => k,
            _ => return Err(bad("type", "missing or non-string type".into(), reference)),
        };
        let mut wrapped = serde_json::Map::new();
        wrapped.insert(kind.clone(), serde_json::Value::Object(fields));
        let frame: Self = serde_path_to_error::deserialize(serde_json::Value::Object(wrapped))
            .map_err(|e| {
                let path = e.path().to_string();
                let message = e.into_inner().to_string();
                let inner = path
                    .strip_prefix(kind.as_str())
                    .map(|p| p.trim_start_matches('.'))
                    .unwrap_or("");
                let field = if inner.is_empty() {
                    named_field(&message).unwrap_or("type").to_owned()
                } else {
                    inner.to_owned()
                };
                bad(&field, message, reference.clone())
            })?;
        let reference = match &frame {
            ClientFrame::Sync { reference, .. }
            | ClientFrame::Send { reference, .. }
            | ClientFrame::Read { reference, .. }
            | ClientFrame::Block { reference, .. }
            | ClientFrame::Unblock { reference, .. }
            | ClientFrame::Leave { reference, .. }
            | ClientFrame::Typing { reference, .. }
            | ClientFrame::PresenceSubscribe { reference, .. }
            | ClientFrame::Ping { reference } => reference.as_deref(),
        };
        if reference.is_some_and(|r| r.len() > MAX_REF_BYTES) {
            return Err(bad(
                "ref",
                format!("ref is longer than {MAX_REF_BYTES} bytes"),
                None,
            ));
        }
        let echo = reference.map(str::to_owned);
        match &frame {
            ClientFrame::PresenceSubscribe { uids, .. } if uids.len() > MAX_PRESENCE_UIDS => Err(
                bad("uids", format!("at most {MAX_PRESENCE_UIDS} uids"), echo),
            ),
            ClientFrame::Sync { channels, .. } if channels.len() > MAX_SYNC_CHANNELS => Err(bad(
                "channels",
                format!("at most {MAX_SYNC_CHANNELS} channels"),
                echo,
            )),
            _ => Ok(frame),
        }
    }
}

/// The field serde names in "missing field `x`" or "unknown field `x`".
fn named_field(message: &str) -> Option<&str> {
    ["missing field `", "unknown field `"]
        .iter()
        .find_map(|p| message.strip_prefix(p))
        .and_then(|rest| rest.split('`').next())
}

/// A range of a channel's messages a `sync` could not send in order (older than messages the
/// connection already sent): read it with `GET /v1/channels/{channel_type}/{channel_id}/messages`.
#[derive(Debug, Clone, Serialize)]
pub struct Gap<'a> {
    /// 1 personal, 2 group.
    pub channel_type: u8,
    /// The channel as the recipient sees it.
    pub channel_id: &'a str,
    /// The first missing `message_seq`.
    pub from_seq: u64,
    /// The last missing `message_seq`.
    pub to_seq: u64,
}

/// One device of an online user.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct Device {
    /// 0 app, 1 web, 2 desktop.
    pub device_flag: u8,
}

/// A frame from the server. Serialized once per audience and shared by every recipient.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame<'a> {
    /// A message, live or caught up.
    Message {
        /// The event's log position.
        event_seq: u64,
        /// UUIDv7.
        message_id: &'a str,
        /// Position in the channel.
        message_seq: u64,
        /// The sender's idempotency key.
        client_msg_no: Option<&'a str>,
        /// The sender.
        from_uid: &'a str,
        /// The group id, or the peer's uid as the recipient sees it.
        channel_id: &'a str,
        /// 1 personal, 2 group.
        channel_type: u8,
        /// Acceptance time, ms since the Unix epoch.
        timestamp: i64,
        /// Base64 payload.
        payload: &'a str,
    },
    /// Someone's read position moved.
    Read {
        /// The event's log position.
        event_seq: u64,
        /// The reader.
        uid: &'a str,
        /// 1 personal, 2 group.
        channel_type: u8,
        /// The channel as the recipient sees it.
        channel_id: &'a str,
        /// The new read position.
        message_seq: u64,
    },
    /// Users joined a group (also its creation).
    MemberAdded {
        /// The event's log position.
        event_seq: u64,
        /// The group.
        channel_id: &'a str,
        /// Always 2.
        channel_type: u8,
        /// Who joined.
        uids: Vec<&'a str>,
        /// The group's name, on creation.
        #[serde(skip_serializing_if = "Option::is_none")]
        name: Option<&'a str>,
        /// The group's owner, on creation.
        #[serde(skip_serializing_if = "Option::is_none")]
        owner: Option<&'a str>,
    },
    /// A member's role or mute changed.
    MemberUpdated {
        /// The event's log position.
        event_seq: u64,
        /// The group.
        channel_id: &'a str,
        /// Always 2.
        channel_type: u8,
        /// The member.
        uid: &'a str,
        /// `owner`, `admin` or `member`.
        role: &'a str,
        /// Muted until, ms since the Unix epoch (`null`: not muted).
        muted_until: Option<i64>,
    },
    /// A group's send settings changed.
    ChannelUpdated {
        /// The event's log position.
        event_seq: u64,
        /// The group.
        channel_id: &'a str,
        /// Always 2.
        channel_type: u8,
        /// Channel-wide mute.
        muted: bool,
        /// Whitelist mode.
        whitelist_only: bool,
    },
    /// A user was banned from a group (and removed, if a member).
    MemberBanned {
        /// The event's log position.
        event_seq: u64,
        /// The group.
        channel_id: &'a str,
        /// Always 2.
        channel_type: u8,
        /// The banned user.
        uid: &'a str,
        /// The ban ends, ms since the Unix epoch (`null`: until unbanned).
        until: Option<i64>,
    },
    /// A ban was lifted.
    MemberUnbanned {
        /// The event's log position.
        event_seq: u64,
        /// The group.
        channel_id: &'a str,
        /// Always 2.
        channel_type: u8,
        /// The user.
        uid: &'a str,
    },
    /// A group's blacklist or whitelist changed.
    SendListChanged {
        /// The event's log position.
        event_seq: u64,
        /// The group.
        channel_id: &'a str,
        /// Always 2.
        channel_type: u8,
        /// `blacklist` or `whitelist`.
        list: &'a str,
        /// Newly listed uids.
        added: Vec<&'a str>,
        /// Uids no longer listed.
        removed: Vec<&'a str>,
    },
    /// The connection's user blocked (`blocked: true`) or unblocked someone.
    BlockChanged {
        /// The event's log position.
        event_seq: u64,
        /// The user who blocks (the recipient).
        uid: &'a str,
        /// The other user.
        blocked_uid: &'a str,
        /// Blocked or unblocked.
        blocked: bool,
    },
    /// A user left a group.
    MemberRemoved {
        /// The event's log position.
        event_seq: u64,
        /// The group.
        channel_id: &'a str,
        /// Always 2.
        channel_type: u8,
        /// Who left.
        uid: &'a str,
    },
    /// A group was disbanded.
    ChannelDisbanded {
        /// The event's log position.
        event_seq: u64,
        /// The group.
        channel_id: &'a str,
        /// Always 2.
        channel_type: u8,
    },
    /// Someone is typing.
    Typing {
        /// 1 personal, 2 group.
        channel_type: u8,
        /// The channel as the recipient sees it.
        channel_id: &'a str,
        /// The typist.
        uid: &'a str,
    },
    /// A followed user's presence.
    Presence {
        /// The user.
        uid: &'a str,
        /// Whether any device is connected.
        online: bool,
        /// The connected devices.
        devices: Vec<Device>,
    },
    /// A `send` was accepted (or was a duplicate of an accepted one).
    SendAck {
        /// The `send`'s ref.
        #[serde(rename = "ref")]
        reference: Option<&'a str>,
        /// The idempotency key.
        client_msg_no: Option<&'a str>,
        /// The message's id.
        message_id: &'a str,
        /// Its position in the channel.
        message_seq: u64,
        /// Its log position.
        event_seq: u64,
    },
    /// The catch-up after `sync` is complete.
    Synced {
        /// Whether everything missed was sent (false after an `error` ended the catch-up, or
        /// with `gaps`).
        recovered: bool,
        /// The log position the catch-up covers.
        event_seq: u64,
        /// Ranges not sent because newer messages of the channel already went out on this
        /// connection (a late `sync`); omitted when empty.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        gaps: Vec<Gap<'a>>,
    },
    /// A frame was refused.
    Error {
        /// The refused frame's ref.
        #[serde(rename = "ref")]
        reference: Option<&'a str>,
        /// As the REST error body.
        #[serde(flatten)]
        error: &'a ErrorDetail,
    },
    /// Answer to `ping`.
    Pong {
        /// The ping's ref.
        #[serde(rename = "ref")]
        reference: Option<&'a str>,
    },
}

impl ServerFrame<'_> {
    /// The frame's JSON text.
    ///
    /// # Panics
    /// Never: frames hold only strings, numbers, booleans and string-keyed objects, which
    /// `serde_json` always serializes (a failure would be a bug, not a frame to send empty).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a server frame always serializes")
    }

    /// The frame's `type` (the SSE event name).
    pub fn kind(&self) -> &'static str {
        match self {
            ServerFrame::Message { .. } => "message",
            ServerFrame::Read { .. } => "read",
            ServerFrame::MemberAdded { .. } => "member_added",
            ServerFrame::MemberRemoved { .. } => "member_removed",
            ServerFrame::ChannelDisbanded { .. } => "channel_disbanded",
            ServerFrame::MemberUpdated { .. } => "member_updated",
            ServerFrame::ChannelUpdated { .. } => "channel_updated",
            ServerFrame::MemberBanned { .. } => "member_banned",
            ServerFrame::MemberUnbanned { .. } => "member_unbanned",
            ServerFrame::SendListChanged { .. } => "send_list_changed",
            ServerFrame::BlockChanged { .. } => "block_changed",
            ServerFrame::Typing { .. } => "typing",
            ServerFrame::Presence { .. } => "presence",
            ServerFrame::SendAck { .. } => "send_ack",
            ServerFrame::Synced { .. } => "synced",
            ServerFrame::Error { .. } => "error",
            ServerFrame::Pong { .. } => "pong",
        }
    }
}

/// An `error` frame's JSON.
pub fn error_json(
    reference: Option<&str>,
    code: &str,
    message: &str,
    field: Option<&str>,
) -> String {
    let detail = ErrorDetail {
        code: code.to_owned(),
        message: message.to_owned(),
        field: field.map(str::to_owned),
        retry_after_ms: None,
    };
    ServerFrame::Error {
        reference,
        error: &detail,
    }
    .to_json()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_names_the_field() {
        let ok = ClientFrame::parse(r#"{"type":"ping","ref":"a"}"#).unwrap();
        assert!(matches!(ok, ClientFrame::Ping { reference: Some(r) } if r == "a"));
        let e =
            ClientFrame::parse(r#"{"type":"send","ref":"r1","channel_type":1,"channel_id":"b"}"#)
                .unwrap_err();
        assert_eq!(
            (e.field.as_str(), e.reference.as_deref()),
            ("payload", Some("r1"))
        );
        let e = ClientFrame::parse(
            r#"{"type":"sync","ref":"r2","channels":[{"channel_type":1,"channel_id":"b","last_seq":-1}]}"#,
        )
        .unwrap_err();
        assert_eq!(
            (e.field.as_str(), e.reference.as_deref()),
            ("channels[0].last_seq", Some("r2"))
        );
        let e = ClientFrame::parse(r#"{"type":"nope","ref":"r3"}"#).unwrap_err();
        assert_eq!(
            (e.field.as_str(), e.reference.as_deref()),
            ("type", Some("r3"))
        );
        let e = ClientFrame::parse(r#"{"ref":"r4","channel_type":1}"#).unwrap_err();
        assert_eq!(
            (e.field.as_str(), e.reference.as_deref()),
            ("type", Some("r4"))
        );
        let e = ClientFrame::parse(r#"{"type":"ping","ref":"r5","extra":1}"#).unwrap_err();
        assert_eq!(
            (e.field.as_str(), e.reference.as_deref()),
            ("extra", Some("r5"))
        );
        let e = ClientFrame::parse(
            r#"{"type":"send","channel_type":1,"channel_id":"b","payload":"eA==","client_msg_num":"x"}"#,
        )
        .unwrap_err();
        assert_eq!(e.field, "client_msg_num");
        let e = ClientFrame::parse("not json").unwrap_err();
        assert_eq!((e.field.as_str(), e.reference), ("type", None));
    }

    #[test]
    fn frames_serialize_with_their_type() {
        let f = ServerFrame::Synced {
            recovered: true,
            event_seq: 7,
            gaps: vec![],
        };
        assert_eq!(
            f.to_json(),
            r#"{"type":"synced","recovered":true,"event_seq":7}"#
        );
        let e = error_json(Some("r1"), "RATE_LIMITED", "slow down", None);
        assert_eq!(
            e,
            r#"{"type":"error","ref":"r1","code":"RATE_LIMITED","message":"slow down"}"#
        );
    }
}
