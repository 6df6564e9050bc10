//! Where the hub reads from: the membership snapshot it starts at, the whole log after it (a
//! JetStream ordered consumer on `<root>.>`), and the typing notices of every instance (core
//! NATS). Each is retried by [`platform::retry::RECONNECT`] until it works; the caller races
//! every wait against its shutdown.

use crate::store;
use async_nats::jetstream::consumer::{pull, DeliverPolicy};
use events::subject::Subjects;
use futures::StreamExt;
use platform::retry::{until_ok, RECONNECT};

/// Where the hub reads from.
pub struct HubSource {
    /// JetStream.
    pub jetstream: async_nats::jetstream::Context,
    /// Core NATS, for typing notices.
    pub nats: async_nats::Client,
    /// The event stream's name.
    pub stream: String,
    /// Subject naming.
    pub subjects: Subjects,
    /// The read models (membership snapshot).
    pub pool: deadpool_postgres::Pool,
}

/// The log from some position on, in order.
pub type LogStream = futures::stream::BoxStream<
    'static,
    Result<async_nats::jetstream::Message, async_nats::jetstream::consumer::pull::OrderedError>,
>;

impl HubSource {
    /// Every group membership as of one checkpoint of the channels projection, retried until
    /// Postgres answers.
    pub async fn snapshot(&self) -> store::realtime::MembershipSnapshot {
        until_ok(RECONNECT, "the hub's membership snapshot", || {
            store::realtime::membership_snapshot(&self.pool)
        })
        .await
    }

    /// An ordered consumer over every event from `from`, retried until the stream exists.
    pub async fn log(&self, from: u64) -> LogStream {
        until_ok(RECONNECT, "opening the log for the hub", || {
            self.try_log(from)
        })
        .await
    }

    async fn try_log(&self, from: u64) -> anyhow::Result<LogStream> {
        let stream = self.jetstream.get_stream_no_info(&self.stream).await?;
        let consumer = stream
            .create_consumer(pull::OrderedConfig {
                filter_subject: self.subjects.all(),
                deliver_policy: DeliverPolicy::ByStartSequence {
                    start_sequence: from.max(1),
                },
                ..Default::default()
            })
            .await?;
        Ok(consumer.messages().await?.boxed())
    }

    /// Every instance's typing notices; `None` (typing off, logged) if NATS refuses.
    pub async fn typing(&self) -> Option<futures::stream::Fuse<async_nats::Subscriber>> {
        match self.nats.subscribe(self.subjects.all_typing()).await {
            Ok(s) => Some(s.fuse()),
            Err(e) => {
                tracing::error!(error = %e, "typing subscription failed; typing notices are off");
                None
            }
        }
    }
}
