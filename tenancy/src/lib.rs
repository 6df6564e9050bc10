//! # tenancy — tenants, API keys and user-token revocations, live on every instance
//!
//! The admin API (command service) appends tenancy events ([`events::tenancy`]) to a stream of
//! their own, `<stream>_TENANCY`. Every instance of every service replays that stream at start
//! into a [`registry::Registry`] and follows it ([`live::Live`]), so a key created or revoked,
//! or a tenant suspended, on one instance holds on all of them within milliseconds, with no
//! restart and no database read on the request path.
//!
//! - [`keys`]: the key format (`pk_<key_id>_<secret>`), minting, digests.
//! - [`registry`]: the fold of the log (pure) and the questions requests ask of it.
//! - [`live`]: the stream, the replay and the watch; [`live::Live`] implements
//!   [`platform::live::LiveTenancy`], which `platform::auth` consults.
//! - [`usage`]: when each key was last used, shared through a key-value bucket.

pub mod keys;
pub mod live;
pub mod registry;
pub mod usage;

pub use live::Live;
pub use registry::{KeyVerdict, Registry};
