//! # events — the wire formats of Parley: the event log and the commands
//!
//! Everything that is written to NATS JetStream (the event log of record) is defined here, and
//! the commands as data (what every transport's input becomes before the command service
//! decides it). Nothing here knows about NATS, Postgres or HTTP, so every service and every
//! tool decodes the log and the commands the same way.
//!
//! ## Layout
//! - [`ids`]: validated identifiers ([`ids::Uid`], [`ids::ChannelId`], [`ids::TenantId`]) and
//!   [`ids::ChannelKey`], the internal identity of a channel (a personal channel is one channel
//!   per unordered pair of users).
//! - [`subject`]: subject naming. Ids are base64url-encoded into subject tokens, never spliced in
//!   raw, so `a.b`, `x*`, `>` or `用户7` are safe.
//! - [`event`]: the versioned, past-tense domain events and the [`event::Envelope`] around them.
//! - [`moderation`]: group roles, mutes, bans, send lists and personal blocks (the events and
//!   their vocabulary: [`moderation::Role`], [`moderation::SendList`]).
//! - [`command`]: the commands as data (what REST bodies and socket frames become) and their
//!   answers; also the wire format of socket commands over NATS request/reply.
//! - [`codec`]: JSON encoding, decoding and upcasting of old versions.
//! - [`digest`]: [`digest::payload_digest`], what a retried send is compared by.
//! - [`tenancy`]: the control-plane log (tenants, API keys, user-token revocations), its
//!   settings rules and codec.
//! - [`text`]: the rules of free-text fields (group names …) for the command edge, and
//!   [`text::storable`], which projections write every free-text value through.

pub mod codec;
pub mod command;
pub mod digest;
pub mod event;
pub mod ids;
pub mod moderation;
pub mod subject;
pub mod tenancy;
pub mod text;

pub use codec::{decode, encode, DecodeError};
pub use digest::payload_digest;
pub use event::{Envelope, Event};
pub use ids::{ChannelId, ChannelKey, ChannelType, IdError, TenantId, Uid};
