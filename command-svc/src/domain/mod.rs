//! The rules, with no poem, NATS or SQL types: [`channel`] holds the channel aggregate
//! (`decide` every rule, `apply` only folds).

pub mod channel;
