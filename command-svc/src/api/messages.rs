//! `POST /v1/messages` and `POST /v1/messages/batch`.

use super::docs::{ApiTags, BatchErrors, SendErrors};
use super::AppState;
use crate::commands::{CommandError, PreparedSend};
use events::command::{MessageAccepted, SendMessage};
use events::ChannelKey;
use futures::StreamExt;
use platform::auth::TenantAuth;
use platform::error::{ApiError, ErrorDetail, Failure};
use platform::http::{BodyRules, BoundedBody, JsonBody, SerdeJson, MAX_ID_JSON_BYTES};
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use std::collections::HashMap;

/// Most messages in one batch.
pub const MAX_BATCH: usize = 1000;

/// A message to send.
#[derive(Debug, Clone, Object, serde::Deserialize)]
#[oai(deny_unknown_fields, example)]
#[serde(deny_unknown_fields)]
pub struct SendMessageRequest {
    /// Group id, or for a personal message the recipient's uid: 1–128 bytes of UTF-8 without
    /// whitespace or control characters.
    #[oai(validator(
        min_length = 1,
        max_length = 128,
        pattern = r"^[^\s\x00-\x1f\x7f-\x9f]+$"
    ))]
    pub channel_id: String,
    /// 1 personal, 2 group.
    #[oai(validator(minimum(value = "1"), maximum(value = "2")))]
    pub channel_type: u8,
    /// The sender's uid (the id rule of `channel_id`).
    #[oai(validator(
        min_length = 1,
        max_length = 128,
        pattern = r"^[^\s\x00-\x1f\x7f-\x9f]+$"
    ))]
    pub from_uid: String,
    /// The payload, base64 (standard alphabet, padded), not empty; at most
    /// `PARLEY_MAX_PAYLOAD_BYTES` (64 KiB by default) decoded, else 413.
    #[oai(validator(min_length = 1))]
    pub payload: String,
    /// Idempotency key (the id rule of `channel_id`): a retry with the same key returns the
    /// original result, forever; the same key with another payload is 409.
    #[oai(
        nullable,
        validator(
            min_length = 1,
            max_length = 128,
            pattern = r"^[^\s\x00-\x1f\x7f-\x9f]+$"
        )
    )]
    #[serde(default)]
    pub client_msg_no: Option<String>,
}

impl poem_openapi::types::Example for SendMessageRequest {
    fn example() -> Self {
        Self {
            channel_id: "bob".into(),
            channel_type: 1,
            from_uid: "alice".into(),
            payload: "aGVsbG8=".into(),
            client_msg_no: Some("m-1".into()),
        }
    }
}

/// An accepted message.
#[derive(Debug, Clone, Object, serde::Serialize)]
pub struct SendMessageResult {
    /// Time-ordered unique id (UUIDv7).
    pub message_id: String,
    /// Position in the channel, from 1, gap-free.
    pub message_seq: u64,
    /// The idempotency key, if given.
    #[oai(nullable)]
    pub client_msg_no: Option<String>,
    /// Acceptance time, ms since the Unix epoch.
    pub timestamp: i64,
    /// Log sequence of the event; pass as `min_event_seq` to read your write.
    pub event_seq: u64,
}

impl From<SendMessageRequest> for SendMessage {
    fn from(r: SendMessageRequest) -> Self {
        SendMessage {
            from_uid: r.from_uid,
            channel_id: r.channel_id,
            channel_type: r.channel_type,
            payload: r.payload,
            client_msg_no: r.client_msg_no,
        }
    }
}

impl From<MessageAccepted> for SendMessageResult {
    fn from(m: MessageAccepted) -> Self {
        SendMessageResult {
            message_id: m.message_id.to_string(),
            message_seq: m.message_seq,
            client_msg_no: m.client_msg_no,
            timestamp: m.timestamp,
            event_seq: m.event_seq,
        }
    }
}

/// Up to 1000 messages.
#[derive(Debug, Clone, Object, serde::Deserialize)]
#[oai(deny_unknown_fields, example)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    /// The messages (1–1000), sent in order per channel.
    #[oai(validator(min_items = 1, max_items = 1000))]
    pub messages: Vec<SendMessageRequest>,
}

impl poem_openapi::types::Example for BatchRequest {
    fn example() -> Self {
        let item = |to: &str, payload: &str, no: &str| SendMessageRequest {
            channel_id: to.into(),
            channel_type: 1,
            from_uid: "alice".into(),
            payload: payload.into(),
            client_msg_no: Some(no.into()),
        };
        Self {
            messages: vec![item("bob", "aGk=", "m-2"), item("carol", "aGV5", "m-3")],
        }
    }
}

/// Largest body of one message: its base64 payload (4/3 of the decoded bytes, each `/` maybe
/// escaped as `\/`) and three ids, with room for the keys.
fn max_message_bytes(rules: &BodyRules) -> usize {
    rules.max_payload_bytes.div_ceil(3) * 4 * 2 + 3 * MAX_ID_JSON_BYTES + 256
}

impl BoundedBody for SendMessageRequest {
    fn max_body_bytes(rules: &BodyRules) -> usize {
        max_message_bytes(rules)
    }
}

impl BoundedBody for BatchRequest {
    fn max_body_bytes(rules: &BodyRules) -> usize {
        MAX_BATCH * (max_message_bytes(rules) + 2) + 64
    }
}

/// The result of one batch item: `status` 200 with `result`, or an error status with `error`.
#[derive(Debug, Clone, Object)]
pub struct BatchItemResult {
    /// HTTP status this item would have had on its own.
    pub status: u16,
    /// The accepted message.
    #[oai(skip_serializing_if_is_none)]
    pub result: Option<SendMessageResult>,
    /// Why the item was refused.
    #[oai(skip_serializing_if_is_none)]
    pub error: Option<ErrorDetail>,
}

/// One result per item, in request order.
#[derive(Debug, Clone, Object)]
pub struct BatchResponse {
    /// The results.
    pub results: Vec<BatchItemResult>,
}

/// Message endpoints.
pub struct MessagesApi {
    /// Shared state.
    pub state: AppState,
}

#[OpenApi(tag = "ApiTags::Messages")]
impl MessagesApi {
    /// Send a message.
    ///
    /// Personal (`channel_type` 1): `channel_id` is the recipient's uid. Group (2): 404 if the
    /// group does not exist, 403 if `from_uid` is not a member. With `client_msg_no`, a retry
    /// returns the original `message_id`/`message_seq` forever; the same key with another
    /// payload is 409. 413 when the payload is too large.
    #[oai(path = "/v1/messages", method = "post", operation_id = "send_message")]
    async fn send_message(
        &self,
        req: &poem::Request,
        auth: TenantAuth,
        body: JsonBody<SendMessageRequest>,
    ) -> Result<SerdeJson<SendMessageResult>, Failure<SendErrors>> {
        let commands = &self.state.commands;
        let prepared = commands.prepare_send(&auth.0, body.0.into())?;
        let sent = commands
            .run_send(prepared)
            .await
            .map_err(|e| super::errors::noted(req, e))?;
        Ok(SerdeJson(sent.into()))
    }

    /// Send up to 1000 messages; one result (or error) per item, in order.
    ///
    /// Items to the same channel are applied in request order; channels proceed concurrently.
    /// 400 (field `messages`) if the list is empty or longer than 1000.
    #[oai(
        path = "/v1/messages/batch",
        method = "post",
        operation_id = "send_batch"
    )]
    async fn send_batch(
        &self,
        auth: TenantAuth,
        body: JsonBody<BatchRequest>,
    ) -> Result<Json<BatchResponse>, Failure<BatchErrors>> {
        let items = body.0.messages;
        if items.is_empty() || items.len() > MAX_BATCH {
            return Err(ApiError::validation(
                "messages",
                format!("messages must hold 1 to {MAX_BATCH} items"),
            )
            .into());
        }
        let mut results: Vec<Option<BatchItemResult>> = vec![None; items.len()];
        let commands = &self.state.commands;
        let mut by_channel: HashMap<ChannelKey, Vec<(usize, PreparedSend)>> = HashMap::new();
        for (i, item) in items.into_iter().enumerate() {
            match commands.prepare_send(&auth.0, item.into()) {
                Ok(p) => by_channel
                    .entry(p.channel().clone())
                    .or_default()
                    .push((i, p)),
                Err(e) => results[i] = Some(item_error(e.within(&format!("messages[{i}]")))),
            }
        }
        let done: Vec<Vec<(usize, BatchItemResult)>> =
            futures::stream::iter(by_channel.into_values())
                .map(|group| async move {
                    let mut out = Vec::with_capacity(group.len());
                    for (i, p) in group {
                        let r = match commands.run_send(p).await {
                            Ok(r) => BatchItemResult {
                                status: 200,
                                result: Some(r.into()),
                                error: None,
                            },
                            Err(e) => item_error(e),
                        };
                        out.push((i, r));
                    }
                    out
                })
                .buffer_unordered(64)
                .collect()
                .await;
        for (i, r) in done.into_iter().flatten() {
            results[i] = Some(r);
        }
        let results = results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| item_error(CommandError::Internal("batch item lost".into())))
            })
            .collect();
        Ok(Json(BatchResponse { results }))
    }
}

fn item_error(e: CommandError) -> BatchItemResult {
    let (status, r) = e.into_refusal();
    BatchItemResult {
        status,
        result: None,
        error: Some(ErrorDetail {
            code: r.code,
            message: r.message,
            field: r.field,
            retry_after_ms: None,
        }),
    }
}
