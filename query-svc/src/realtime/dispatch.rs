//! Frame dispatch: what each client frame does on a [`Session`] (`docs/realtime.md`). `sync`
//! starts a resume of the session's [`super::delivery::Delivery`]; the frames that act go to
//! [`super::commands`] and come back as futures the connection polls beside its delivery.

use super::commands::{self, CommandFuture};
use super::frames::{error_json, ClientFrame, ServerFrame, SyncChannel};
use super::session::Session;
use super::sink::{End, Sink};
use events::{ChannelKey, Uid};
use std::collections::HashMap;

impl Session<'_> {
    /// Handles one text frame from the client; slow commands (`send`, `read`) are returned as
    /// futures producing their answer, so the connection keeps delivering meanwhile.
    ///
    /// # Errors
    /// [`End`] from the sink.
    pub async fn on_text(
        &mut self,
        text: &str,
        sink: &mut impl Sink,
    ) -> Result<Option<CommandFuture>, End> {
        let frame = match ClientFrame::parse(text) {
            Ok(f) => f,
            Err(bad) => {
                let json = error_json(
                    bad.reference.as_deref(),
                    "VALIDATION_ERROR",
                    &bad.message,
                    Some(&bad.field),
                );
                sink.send("error", None, json).await?;
                return Ok(None);
            }
        };
        let rt = self.rt;
        match frame {
            ClientFrame::Sync {
                reference,
                channels,
                since_event_seq,
            } => {
                self.begin_sync(reference, channels, since_event_seq, sink)
                    .await?;
                Ok(None)
            }
            ClientFrame::Send {
                reference,
                channel_type,
                channel_id,
                payload,
                client_msg_no,
            } => Ok(Some(commands::send(
                rt,
                &self.claims,
                reference,
                events::command::SendMessage {
                    from_uid: self.claims.uid.as_str().to_owned(),
                    channel_id,
                    channel_type,
                    payload,
                    client_msg_no,
                },
            ))),
            ClientFrame::Read {
                reference,
                channel_type,
                channel_id,
                message_seq,
            } => Ok(Some(commands::read(
                rt,
                &self.claims,
                reference,
                events::command::SetReadPosition {
                    uid: self.claims.uid.as_str().to_owned(),
                    channel_id,
                    channel_type,
                    message_seq,
                },
            ))),
            ClientFrame::Block { reference, uid } => Ok(Some(commands::block(
                rt,
                &self.claims,
                reference,
                uid,
                false,
            ))),
            ClientFrame::Unblock { reference, uid } => Ok(Some(commands::block(
                rt,
                &self.claims,
                reference,
                uid,
                true,
            ))),
            ClientFrame::Leave {
                reference,
                channel_id,
            } => Ok(Some(commands::leave(
                rt,
                &self.claims,
                reference,
                channel_id,
            ))),
            ClientFrame::Typing {
                reference,
                channel_type,
                channel_id,
            } => {
                if let Err(refused) =
                    commands::typing(rt, &self.claims, channel_type, &channel_id).await
                {
                    let json = error_json(
                        reference.as_deref(),
                        refused.code,
                        &refused.message,
                        refused.field,
                    );
                    sink.send("error", None, json).await?;
                }
                Ok(None)
            }
            ClientFrame::PresenceSubscribe { reference, uids } => {
                let mut parsed = Vec::with_capacity(uids.len());
                for (i, u) in uids.into_iter().enumerate() {
                    match Uid::parse(u) {
                        Ok(u) => parsed.push(u),
                        Err(e) => {
                            let field = format!("uids[{i}]");
                            let json = error_json(
                                reference.as_deref(),
                                "VALIDATION_ERROR",
                                &format!("{field} {e}"),
                                Some(&field),
                            );
                            return sink.send("error", None, json).await.map(|()| None);
                        }
                    }
                }
                Ok(Some(commands::follow_presence(rt, &self.claims, parsed)))
            }
            ClientFrame::Ping { reference } => {
                let json = ServerFrame::Pong {
                    reference: reference.as_deref(),
                }
                .to_json();
                sink.send("pong", None, json).await?;
                Ok(None)
            }
        }
    }

    /// Starts a resume (the `sync` frame): refused while one runs; each listed channel must
    /// parse (a bad one is an `error` naming `channels[i]`, the others still sync).
    async fn begin_sync(
        &mut self,
        reference: Option<String>,
        channels: Vec<SyncChannel>,
        since_event_seq: Option<u64>,
        sink: &mut impl Sink,
    ) -> Result<(), End> {
        if self.delivery.syncing() {
            let json = error_json(
                reference.as_deref(),
                "SYNC_IN_PROGRESS",
                "a sync is already running on this connection; wait for its synced",
                None,
            );
            return sink.send("error", None, json).await;
        }
        let mut listed: HashMap<ChannelKey, u64> = HashMap::new();
        for (i, c) in channels.iter().enumerate() {
            match commands::channel_key(&self.claims.uid, c.channel_type, &c.channel_id) {
                Ok(key) => {
                    listed.insert(key, c.last_seq);
                }
                Err(refused) => {
                    let field = format!("channels[{i}]");
                    let json = error_json(
                        reference.as_deref(),
                        "VALIDATION_ERROR",
                        &refused.message,
                        Some(&field),
                    );
                    sink.send("error", None, json).await?;
                }
            }
        }
        let position = self.rt.hub.position();
        self.delivery
            .begin_sync(reference, listed, since_event_seq, position);
        Ok(())
    }
}
