//! [`SendMessage`]: validated once into a [`PreparedSend`] (so a batch can refuse its bad
//! items before it sends any), then executed.

use super::fields::{channel_type, id};
use super::{Command, CommandError, Commands};
use crate::domain::channel::Command as Domain;
use crate::executor::Outcome;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use events::command::{MessageAccepted, SendMessage};
use events::{ChannelId, ChannelKey, Event, TenantId, Uid};

/// A send that passed validation, with its id and time chosen: execute it with
/// [`Commands::run_send`].
#[derive(Debug)]
pub struct PreparedSend {
    tenant: TenantId,
    key: ChannelKey,
    cmd: Domain,
}

impl PreparedSend {
    /// The channel it goes to (batches run each channel's items in order).
    pub fn channel(&self) -> &ChannelKey {
        &self.key
    }
}

impl Commands {
    /// Validates `c` for `tenant` ([`PreparedSend::new`] with this service's payload limit).
    ///
    /// # Errors
    /// As [`PreparedSend::new`].
    pub fn prepare_send(
        &self,
        tenant: &TenantId,
        c: SendMessage,
    ) -> Result<PreparedSend, CommandError> {
        PreparedSend::new(tenant, c, self.max_payload_for(tenant))
    }
}

impl PreparedSend {
    /// Validates `c` for `tenant`: ids, channel type, idempotency key, payload (base64, not
    /// empty, at most `max_payload_bytes` decoded); picks its UUIDv7 and timestamp.
    ///
    /// # Errors
    /// [`CommandError::Invalid`] naming the field, [`CommandError::TooLarge`] for the payload.
    pub fn new(
        tenant: &TenantId,
        c: SendMessage,
        max_payload_bytes: usize,
    ) -> Result<PreparedSend, CommandError> {
        let ct = channel_type("channel_type", c.channel_type)?;
        let channel_id = id("channel_id", c.channel_id, ChannelId::parse)?;
        let from = id("from_uid", c.from_uid, Uid::parse)?;
        if let Some(no) = &c.client_msg_no {
            events::ids::validate_id(no).map_err(|e| {
                CommandError::invalid("client_msg_no", format!("client_msg_no {e}"))
            })?;
        }
        if c.payload.is_empty() {
            return Err(CommandError::invalid(
                "payload",
                "payload must not be empty",
            ));
        }
        // Refuse before decoding anything absurdly large (base64 is 4/3 of the bytes).
        if c.payload.len() / 4 * 3 > max_payload_bytes + 3 {
            return Err(too_large(max_payload_bytes));
        }
        let decoded = STANDARD.decode(&c.payload).map_err(|e| {
            CommandError::invalid("payload", format!("payload is not valid base64: {e}"))
        })?;
        if decoded.len() > max_payload_bytes {
            return Err(too_large(max_payload_bytes));
        }
        let key = ChannelKey::for_viewer(&from, ct, &channel_id);
        let payload_sha256 = events::payload_digest(&c.payload);
        Ok(PreparedSend {
            tenant: tenant.clone(),
            key,
            cmd: Domain::Send {
                from,
                client_msg_no: c.client_msg_no,
                payload: c.payload,
                payload_sha256,
                message_id: uuid::Uuid::now_v7(),
                timestamp: platform::now_ms(),
            },
        })
    }
}

fn too_large(max_payload_bytes: usize) -> CommandError {
    CommandError::TooLarge {
        field: "payload".into(),
        message: format!("payload exceeds {max_payload_bytes} bytes decoded"),
    }
}

impl Commands {
    /// Executes a prepared send: the accepted message, or for a retry with a known
    /// `client_msg_no` and the same payload, the original.
    ///
    /// # Errors
    /// [`CommandError::RateLimited`] (the sender's `user-sends` limit; a batch counts each
    /// item), [`CommandError::Refused`] (no such group, not a member, key reused with another
    /// payload), [`CommandError::Unavailable`].
    pub async fn run_send(&self, p: PreparedSend) -> Result<MessageAccepted, CommandError> {
        let client_msg_no = match &p.cmd {
            Domain::Send {
                client_msg_no,
                from,
                ..
            } => {
                self.count(&p.tenant, from, platform::ratelimit::Scope::UserSends)?;
                client_msg_no.clone()
            }
            _ => None,
        };
        let outcome = self.executor.execute(&p.tenant, &p.key, p.cmd).await;
        if let Err(crate::executor::ExecError::Domain(d)) = &outcome {
            if d.is_moderation() {
                let (code, _) = super::error::refusal(d);
                metrics::counter!("command_svc_sends_refused_total", "code" => code).increment(1);
            }
        }
        match outcome? {
            Outcome::Appended {
                event: Event::MessageSent(m),
                event_seq,
            } => Ok(MessageAccepted {
                message_id: m.message_id,
                message_seq: m.message_seq,
                client_msg_no: m.client_msg_no,
                timestamp: m.timestamp,
                event_seq,
            }),
            Outcome::Duplicate(rec) => {
                metrics::counter!("command_svc_duplicate_sends_total").increment(1);
                Ok(MessageAccepted {
                    message_id: rec.message_id,
                    message_seq: rec.message_seq,
                    client_msg_no,
                    timestamp: rec.timestamp,
                    event_seq: rec.event_seq,
                })
            }
            other => Err(CommandError::Internal(format!("send ended in {other:?}"))),
        }
    }
}

impl Command for SendMessage {
    type Output = MessageAccepted;

    async fn run(self, on: &Commands, tenant: &TenantId) -> Result<MessageAccepted, CommandError> {
        let prepared = on.prepare_send(tenant, self)?;
        on.run_send(prepared).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send(channel_type: u8, to: &str, from: &str, payload: &str) -> SendMessage {
        SendMessage {
            from_uid: from.into(),
            channel_id: to.into(),
            channel_type,
            payload: payload.into(),
            client_msg_no: None,
        }
    }

    fn refused(c: SendMessage) -> (u16, Option<String>, String) {
        let tenant = TenantId::parse("t").expect("tenant");
        let e = PreparedSend::new(&tenant, c, 8).expect_err("should be refused");
        let (status, r) = e.within("messages[2]").into_refusal();
        (status, r.field, r.code)
    }

    #[test]
    fn each_bad_field_is_named_and_prefixed_in_a_batch() {
        let field = |s: &str| Some(format!("messages[2].{s}"));
        assert_eq!(
            refused(send(3, "bob", "alice", "aGk=")),
            (400, field("channel_type"), "VALIDATION_ERROR".into())
        );
        assert_eq!(
            refused(send(1, "b ob", "alice", "aGk=")),
            (400, field("channel_id"), "VALIDATION_ERROR".into())
        );
        assert_eq!(
            refused(send(1, "bob", "", "aGk=")),
            (400, field("from_uid"), "VALIDATION_ERROR".into())
        );
        assert_eq!(
            refused(send(1, "bob", "alice", "")),
            (400, field("payload"), "VALIDATION_ERROR".into())
        );
        assert_eq!(
            refused(send(1, "bob", "alice", "not base64!")),
            (400, field("payload"), "VALIDATION_ERROR".into())
        );
        // 9 bytes decoded, over the limit of 8.
        assert_eq!(
            refused(send(1, "bob", "alice", "MTIzNDU2Nzg5")),
            (413, field("payload"), "PAYLOAD_TOO_LARGE".into())
        );
        let mut bad_key = send(1, "bob", "alice", "aGk=");
        bad_key.client_msg_no = Some("has space".into());
        assert_eq!(
            refused(bad_key),
            (400, field("client_msg_no"), "VALIDATION_ERROR".into())
        );
    }

    #[test]
    fn a_valid_send_goes_to_the_pair_channel_with_its_digest() {
        let tenant = TenantId::parse("t").expect("tenant");
        let p = PreparedSend::new(&tenant, send(1, "bob", "alice", "aGk="), 8).expect("valid");
        let back = PreparedSend::new(&tenant, send(1, "alice", "bob", "aGk="), 8).expect("valid");
        assert_eq!(
            p.channel(),
            back.channel(),
            "one channel per unordered pair"
        );
        match p.cmd {
            Domain::Send {
                payload_sha256,
                ref message_id,
                ..
            } => {
                assert_eq!(payload_sha256, events::payload_digest("aGk="));
                assert_eq!(
                    message_id.get_version(),
                    Some(uuid::Version::SortRand),
                    "a UUIDv7"
                );
            }
            other => panic!("not a send: {other:?}"),
        }
    }
}
