//! Typing-notice rate limits: keyed GCRA limiters (`governor`), one per user and one per
//! (user, channel), over all the user's connections to this instance.

use events::{ChannelKey, TenantId, Uid};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::num::NonZeroU32;
use std::time::Duration;

/// Typing notices a user may send per second through one instance (also the burst).
pub const PER_USER_PER_SECOND: u32 = 5;
/// Typing notices a user may send per second for one channel (also the burst).
pub const PER_CHANNEL_PER_SECOND: u32 = 1;
/// How often keys whose cells have fully replenished are dropped.
pub const SWEEP_EVERY: Duration = Duration::from_secs(10);

/// The two limits a typing notice passes: per channel first (so repeating the same channel
/// does not spend the user's budget), then per user.
#[derive(Debug)]
pub struct TypingLimiter {
    users: DefaultKeyedRateLimiter<(TenantId, Uid)>,
    channels: DefaultKeyedRateLimiter<(TenantId, Uid, ChannelKey)>,
}

impl Default for TypingLimiter {
    fn default() -> Self {
        Self::new(PER_USER_PER_SECOND, PER_CHANNEL_PER_SECOND)
    }
}

impl TypingLimiter {
    /// A limiter allowing `per_user` notices per second per user and `per_channel` per
    /// second per (user, channel); 0 is taken as 1.
    #[must_use]
    pub fn new(per_user: u32, per_channel: u32) -> Self {
        let quota = |n: u32| Quota::per_second(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN));
        Self {
            users: RateLimiter::keyed(quota(per_user)),
            channels: RateLimiter::keyed(quota(per_channel)),
        }
    }

    /// Whether `uid` may send a typing notice for `channel` now (and counts it if so).
    pub fn allow(&self, tenant: &TenantId, uid: &Uid, channel: ChannelKey) -> bool {
        self.channels
            .check_key(&(tenant.clone(), uid.clone(), channel))
            .is_ok()
            && self.users.check_key(&(tenant.clone(), uid.clone())).is_ok()
    }

    /// Drops the keys whose limits have fully replenished (their state is the default one);
    /// called every [`SWEEP_EVERY`] so idle users hold no memory.
    pub fn sweep(&self) {
        self.users.retain_recent();
        self.channels.retain_recent();
        self.users.shrink_to_fit();
        self.channels.shrink_to_fit();
    }

    /// Keys held (users plus user-channel pairs).
    #[must_use]
    pub fn len(&self) -> usize {
        self.users.len() + self.channels.len()
    }

    /// Whether no key is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str) -> ChannelKey {
        ChannelKey::Group {
            id: events::ChannelId::parse(id).unwrap(),
        }
    }

    #[test]
    fn one_per_channel_and_five_per_user_per_second() {
        let l = TypingLimiter::default();
        let (t, u) = (TenantId::parse("t1").unwrap(), Uid::parse("u1").unwrap());
        assert!(l.allow(&t, &u, key("g1")));
        assert!(
            !l.allow(&t, &u, key("g1")),
            "second notice in a second for one channel"
        );
        for g in ["g2", "g3", "g4", "g5"] {
            assert!(l.allow(&t, &u, key(g)));
        }
        assert!(!l.allow(&t, &u, key("g6")), "sixth notice in a second");
        let other = Uid::parse("u2").unwrap();
        assert!(l.allow(&t, &other, key("g1")), "limits are per user");
        l.sweep();
        assert!(!l.is_empty(), "fresh keys are kept");
    }
}
