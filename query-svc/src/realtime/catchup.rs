//! The reads behind a connection's catch-up, as owned futures: the connection polls them beside
//! its live stream (they never hold its loop), and acts on their results when they are ready.
//!
//! [`CatchUpStore`] is all the realtime side needs of the read models — the narrow handle a
//! session gets; [`PgCatchUp`] serves it from Postgres:
//! - [`CatchUpStore::plan`]: a `sync`'s starting point per channel of the user (after waiting
//!   for the read models to reach the hub's position).
//! - [`CatchUpStore::page`]: one page of a channel's history, with each message's `event_seq`
//!   (after waiting, for a hole fill, until the messages projection has the missing events).

use crate::consistency::{Checkpoints, Projection};
use crate::store::{self, MessageRow};
use events::{ChannelKey, ChannelType, TenantId, Uid};
use futures::future::BoxFuture;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Catch-up page size (messages per query).
pub const PAGE: usize = 500;
/// Longest wait for the read models to reach a log position during catch-up or a hole fill.
pub const CATCH_UP_WAIT: Duration = Duration::from_secs(5);

/// Why a read gave nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadError {
    /// The read models did not reach the position in [`CATCH_UP_WAIT`].
    Lagging,
    /// Postgres failed.
    Store,
}

/// One of the user's channels to consider in a `sync`: where the client stands (`start`) and
/// the channel's newest `message_seq` (`head`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelStart {
    /// The channel.
    pub channel: ChannelKey,
    /// The last seq the client holds.
    pub start: u64,
    /// The channel's newest seq.
    pub head: u64,
}

/// A finished read.
pub enum Read {
    /// The result of [`plan`].
    Plan(Result<Vec<ChannelStart>, ReadError>),
    /// The result of [`page`]: rows with their `event_seq`.
    Page(Result<Vec<(MessageRow, u64)>, ReadError>),
}

/// A read in flight.
pub type Pending = BoxFuture<'static, Read>;

/// The reads of a connection's catch-up.
pub trait CatchUpStore: Send + Sync + 'static {
    /// The starting point of each of `uid`'s channels for a `sync` covering the log up to
    /// `position`: the `listed` last seqs, else (with `since_event_seq`) the last message at or
    /// before that event; channels neither listed nor changed since are left out, and so is a
    /// listed channel the user is not in. Resolves to [`Read::Plan`].
    fn plan(
        self: Arc<Self>,
        tenant: TenantId,
        uid: Uid,
        listed: HashMap<ChannelKey, u64>,
        since_event_seq: Option<u64>,
        position: u64,
    ) -> Pending;

    /// Up to `limit` messages of `channel` after `after`, ascending; with `wait_for`, first
    /// waits until the messages projection has applied that event. Resolves to
    /// [`Read::Page`].
    fn page(
        self: Arc<Self>,
        tenant: TenantId,
        channel: ChannelKey,
        after: u64,
        limit: usize,
        wait_for: Option<u64>,
    ) -> Pending;
}

/// [`CatchUpStore`] on the Postgres read models.
pub struct PgCatchUp {
    /// The read models.
    pub pool: deadpool_postgres::Pool,
    /// The checkpoints reads wait on.
    pub checkpoints: Arc<Checkpoints>,
}

async fn starts(
    state: &PgCatchUp,
    tenant: &str,
    uid: &str,
    listed: &HashMap<ChannelKey, u64>,
    since_event_seq: Option<u64>,
) -> Result<Vec<ChannelStart>, ReadError> {
    let mine = store::realtime::user_channels(&state.pool, tenant, uid)
        .await
        .map_err(|_| ReadError::Store)?;
    let mut out = Vec::new();
    for ch in mine {
        let Some(channel) = u8::try_from(ch.channel_type)
            .ok()
            .and_then(|t| ChannelType::try_from(t).ok())
            .and_then(|t| ChannelKey::from_storage(t, &ch.channel_key).ok())
        else {
            continue;
        };
        let start = if let Some(&last) = listed.get(&channel) {
            last
        } else if let Some(since) = since_event_seq {
            if ch.last_event_seq <= since || ch.last_msg_seq == 0 {
                continue;
            }
            store::realtime::seq_at_event(
                &state.pool,
                tenant,
                ch.channel_type,
                &ch.channel_key,
                ch.last_msg_seq,
                since,
            )
            .await
            .map_err(|_| ReadError::Store)?
        } else {
            continue;
        };
        out.push(ChannelStart {
            channel,
            start,
            head: ch.last_msg_seq,
        });
    }
    Ok(out)
}

impl CatchUpStore for PgCatchUp {
    fn plan(
        self: Arc<Self>,
        tenant: TenantId,
        uid: Uid,
        listed: HashMap<ChannelKey, u64>,
        since_event_seq: Option<u64>,
        position: u64,
    ) -> Pending {
        Box::pin(async move {
            let all = [
                Projection::Messages,
                Projection::Channels,
                Projection::Conversations,
            ];
            let reached = self
                .checkpoints
                .wait_for(&self.pool, &all, Some(position), CATCH_UP_WAIT)
                .await;
            if reached.is_err() {
                return Read::Plan(Err(ReadError::Lagging));
            }
            Read::Plan(
                starts(
                    &self,
                    tenant.as_str(),
                    uid.as_str(),
                    &listed,
                    since_event_seq,
                )
                .await,
            )
        })
    }

    fn page(
        self: Arc<Self>,
        tenant: TenantId,
        channel: ChannelKey,
        after: u64,
        limit: usize,
        wait_for: Option<u64>,
    ) -> Pending {
        Box::pin(async move {
            if let Some(event) = wait_for {
                let reached = self
                    .checkpoints
                    .wait_for(
                        &self.pool,
                        &[Projection::Messages],
                        Some(event),
                        CATCH_UP_WAIT,
                    )
                    .await;
                if reached.is_err() {
                    return Read::Page(Err(ReadError::Lagging));
                }
            }
            let rows = store::realtime::after(
                &self.pool,
                tenant.as_str(),
                i16::from(channel.channel_type().as_u8()),
                &channel.storage_key(),
                after,
                limit,
            )
            .await;
            Read::Page(match rows {
                Ok(rows) => Ok(rows),
                Err(e) => {
                    tracing::warn!(error = %e, "catch-up read failed");
                    Err(ReadError::Store)
                }
            })
        })
    }
}
