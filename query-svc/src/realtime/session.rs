//! One end user's live connection apart from its transport: the user, its [`Delivery`] (the
//! seam cursor, catch-up and resume), and the realtime services its client frames reach
//! ([`super::dispatch`]). The transports ([`super::ws`], [`super::sse`]) run the loop.

use super::delivery::Delivery;
use super::Realtime;
use platform::token::UserClaims;
use std::time::Duration;

pub use super::sink::{End, Sink};

/// See the module docs.
pub struct Session<'a> {
    pub(super) rt: &'a Realtime,
    pub(super) claims: UserClaims,
    /// The connection's stream of frames.
    pub delivery: Delivery,
}

impl<'a> Session<'a> {
    /// A session of the token's user that holds live items until its first `sync`, for at most
    /// `hold` (then they go out as they come), keeping at most `capacity` of them.
    pub fn new(rt: &'a Realtime, claims: UserClaims, hold: Duration, capacity: usize) -> Self {
        let delivery = Delivery::new(
            rt.catch_up.clone(),
            claims.tenant.clone(),
            claims.uid.clone(),
            super::catchup::PAGE,
            hold,
            capacity,
        );
        Self {
            rt,
            claims,
            delivery,
        }
    }
}
