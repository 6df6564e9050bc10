//! The rules, with no poem, NATS or SQL types: [`channel`] holds the channel aggregate
//! (`decide` every rule, `apply` only folds), [`moderation`] its roles, mutes, bans, send
//! lists and blocks, [`error`] why a command is refused.

pub mod channel;
pub mod error;
pub mod moderation;
