//! Commands from end users' sockets: NATS request/reply on `<root>_cmd.<tenant>.<verb>` in the
//! queue group `parley-command-svc` (one instance answers each request). Bodies and replies
//! are [`platform::rpc`]; each runs through the same validation and executor as its REST twin,
//! so a socket `send` is decided and appended exactly like `POST /v1/messages`.

use crate::api::{messages, reads, AppState};
use events::subject::{CommandVerb, Subjects};
use events::TenantId;
use futures::StreamExt;
use platform::error::ApiError;
use platform::rpc::{ReadSet, Reply, SendMessage, Sent, SetRead};

/// Requests handled at once by one instance.
const CONCURRENCY: usize = 1024;

/// The queue group every command-svc instance joins.
pub const QUEUE_GROUP: &str = "parley-command-svc";

/// Joins the command queue group.
///
/// # Errors
/// NATS refuses the subscription.
pub async fn subscribe(
    client: &async_nats::Client,
    subjects: &Subjects,
) -> anyhow::Result<async_nats::Subscriber> {
    Ok(client
        .queue_subscribe(subjects.commands(), QUEUE_GROUP.into())
        .await?)
}

/// Answers the commands arriving on `sub` until `stop` resolves, then unsubscribes and finishes
/// those in flight.
pub async fn serve(
    client: async_nats::Client,
    sub: async_nats::Subscriber,
    subjects: Subjects,
    state: AppState,
    stop: impl std::future::Future<Output = ()> + Send,
) {
    let (client, subjects, state) = (&client, &subjects, &state);
    sub.take_until(stop)
        .for_each_concurrent(CONCURRENCY, |msg| async move {
            let Some(reply_to) = msg.reply.clone() else {
                return;
            };
            let body = match subjects.parse_command(&msg.subject) {
                Some((tenant, verb)) => handle(state, &tenant, verb, &msg.payload).await,
                None => reply_error(ApiError::bad_request(
                    "UNKNOWN_COMMAND",
                    "unknown command subject",
                )),
            };
            if let Err(e) = client.publish(reply_to, body.into()).await {
                tracing::warn!(error = %e, "command reply not sent");
            }
        })
        .await;
    tracing::info!("socket commands stopped");
}

async fn handle(state: &AppState, tenant: &TenantId, verb: CommandVerb, body: &[u8]) -> Vec<u8> {
    match verb {
        CommandVerb::Send => match serde_json::from_slice::<SendMessage>(body) {
            Ok(c) => reply(send(state, tenant, c).await),
            Err(e) => reply_error(ApiError::bad_request("INVALID_JSON", e.to_string())),
        },
        CommandVerb::Read => match serde_json::from_slice::<SetRead>(body) {
            Ok(c) => reply(
                reads::set_read(
                    state,
                    tenant,
                    &c.uid,
                    c.channel_type,
                    &c.channel_id,
                    c.message_seq,
                )
                .await
                .map(|r| ReadSet {
                    message_seq: r.message_seq,
                    event_seq: r.event_seq,
                }),
            ),
            Err(e) => reply_error(ApiError::bad_request("INVALID_JSON", e.to_string())),
        },
    }
}

async fn send(state: &AppState, tenant: &TenantId, c: SendMessage) -> Result<Sent, ApiError> {
    let req = messages::SendMessageRequest {
        channel_id: c.channel_id,
        channel_type: c.channel_type,
        from_uid: c.from_uid,
        payload: c.payload,
        client_msg_no: c.client_msg_no,
    };
    let valid = messages::validate(state, tenant, req, "")?;
    let r = messages::send(state, valid).await?;
    Ok(Sent {
        message_id: r.message_id,
        message_seq: r.message_seq,
        client_msg_no: r.client_msg_no,
        timestamp: r.timestamp,
        event_seq: r.event_seq,
    })
}

fn reply<T: serde::Serialize>(r: Result<T, ApiError>) -> Vec<u8> {
    match r {
        Ok(ok) => serde_json::to_vec(&Reply::Ok { ok }).unwrap_or_default(),
        Err(e) => reply_error(e),
    }
}

fn reply_error(e: ApiError) -> Vec<u8> {
    let r: Reply<()> = Reply::Err {
        status: e.status(),
        error: e.body().error.clone(),
    };
    serde_json::to_vec(&r).unwrap_or_default()
}
