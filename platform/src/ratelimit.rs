//! Rate limits per tenant and per user, with the headers of the IETF draft
//! (draft-ietf-httpapi-ratelimit-headers: `RateLimit-Policy`, `RateLimit`), `Retry-After`
//! (RFC 9110 §10.2.3) and the legacy `X-RateLimit-Limit`/`-Remaining`/`-Reset` (epoch seconds,
//! as GitHub sends them).
//!
//! Three scopes, each a GCRA bucket (`governor`) refilled continuously, whose burst is one
//! second's quota:
//! - `tenant`: every request of a tenant (all its keys and users) on this service;
//! - `user-sends`: messages sent per user (a batch counts each item);
//! - `user-reads`: reads per user (history, conversations, channels, read positions).
//!
//! Quotas are the tenant's settings (admin API) or the deployment's defaults
//! (`PARLEY_RATE_LIMIT_*`; 0 turns a scope off). They hold **for the deployment**: each
//! instance enforces `ceil(quota / n)`, where `n` is the number of live instances of the
//! service ([`crate::instances`]), so with a round-robin balancer the instances together
//! admit about the quota. While NATS is unreachable an instance keeps the last `n` it knew.
//!
//! Headers report the deployment-wide quota (`q`) and the local remainder scaled by `n` (`r`).

use crate::live::LiveTenancy;
use events::{TenantId, Uid};
use governor::middleware::{StateInformationMiddleware, StateSnapshot};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::state::{InMemoryState, NotKeyed};
use governor::{clock::DefaultClock, Quota, RateLimiter};
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

type Direct = RateLimiter<NotKeyed, InMemoryState, DefaultClock, StateInformationMiddleware>;
type Keyed =
    RateLimiter<Uid, DefaultKeyedStateStore<Uid>, DefaultClock, StateInformationMiddleware>;

/// What a limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Every request of a tenant.
    Tenant,
    /// Messages sent per user.
    UserSends,
    /// Reads per user.
    UserReads,
}

impl Scope {
    /// The policy name in the headers and the metric's `scope` label.
    pub fn name(self) -> &'static str {
        match self {
            Scope::Tenant => "tenant",
            Scope::UserSends => "user-sends",
            Scope::UserReads => "user-reads",
        }
    }
}

/// The deployment's default quotas, per second (0: the scope is off).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Defaults {
    /// `PARLEY_RATE_LIMIT_TENANT_PER_S`, default 100 (ChatAPI's figure).
    pub tenant_per_s: u32,
    /// `PARLEY_RATE_LIMIT_USER_SENDS_PER_S`, default 20.
    pub user_sends_per_s: u32,
    /// `PARLEY_RATE_LIMIT_USER_READS_PER_S`, default 60.
    pub user_reads_per_s: u32,
}

impl Default for Defaults {
    fn default() -> Self {
        Self {
            tenant_per_s: 100,
            user_sends_per_s: 20,
            user_reads_per_s: 60,
        }
    }
}

/// One scope's verdict on one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The scope.
    pub scope: Scope,
    /// The quota per second, deployment-wide.
    pub quota: u32,
    /// Requests left in the current second (deployment-wide estimate).
    pub remaining: u32,
    /// Seconds until the bucket is full again (0 when it is).
    pub reset_s: u64,
    /// `Some` when refused: how long until one more would pass.
    pub retry_after: Option<Duration>,
}

impl Outcome {
    /// Whether the request may go on.
    pub fn allowed(&self) -> bool {
        self.retry_after.is_none()
    }

    /// What a refusal says: `rate limit <scope> of <quota>/s exceeded; retry in <ms> ms`.
    pub fn message(&self) -> String {
        format!(
            "rate limit {} of {}/s exceeded; retry in {} ms",
            self.scope.name(),
            self.quota,
            self.retry_after_ms().unwrap_or(1)
        )
    }

    /// A refusal as the API's 429 `RATE_LIMIT_EXCEEDED` (with `retry_after_ms`); the headers
    /// come from [`headers`].
    pub fn error(&self) -> crate::error::ApiError {
        crate::error::ApiError::with_status(
            429,
            crate::error::ErrorDetail {
                code: "RATE_LIMIT_EXCEEDED".into(),
                message: self.message(),
                field: None,
                retry_after_ms: self.retry_after_ms(),
            },
        )
    }

    /// `retry_after` in whole milliseconds (at least 1 when refused).
    pub fn retry_after_ms(&self) -> Option<u64> {
        self.retry_after
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1))
    }
}

pub use crate::instances::Share;

struct Bucket<L> {
    local: u32,
    limiter: Arc<L>,
}

/// The limiter of one service instance.
pub struct Limiter {
    service: &'static str,
    defaults: Defaults,
    live: Option<Arc<dyn LiveTenancy>>,
    share: Arc<Share>,
    tenants: RwLock<HashMap<TenantId, Bucket<Direct>>>,
    users: RwLock<HashMap<(TenantId, Scope), Bucket<Keyed>>>,
    /// Serialises bucket replacement (so two requests do not both rebuild one).
    rebuild: Mutex<()>,
}

impl std::fmt::Debug for Limiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limiter")
            .field("service", &self.service)
            .field("defaults", &self.defaults)
            .field("instances", &self.share.get())
            .finish()
    }
}

fn quota_of(per_s: u32) -> Quota {
    Quota::per_second(NonZeroU32::new(per_s).unwrap_or(NonZeroU32::MIN))
}

fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Limiter {
    /// A limiter for `service` (`command_svc`, `query_svc`: the metric's prefix) with
    /// `defaults`, tenant settings from `live`, and the instance count in `share`.
    pub fn new(
        service: &'static str,
        defaults: Defaults,
        live: Option<Arc<dyn LiveTenancy>>,
        share: Arc<Share>,
    ) -> Self {
        Self {
            service,
            defaults,
            live,
            share,
            tenants: RwLock::default(),
            users: RwLock::default(),
            rebuild: Mutex::new(()),
        }
    }

    /// The quota of `scope` for `tenant`, deployment-wide (0: off).
    pub fn quota(&self, tenant: &TenantId, scope: Scope) -> u32 {
        let own = self.live.as_ref().map(|l| l.rate_settings(tenant));
        match scope {
            Scope::Tenant => own
                .and_then(|s| s.tenant_per_s)
                .unwrap_or(self.defaults.tenant_per_s),
            Scope::UserSends => own
                .and_then(|s| s.user_sends_per_s)
                .unwrap_or(self.defaults.user_sends_per_s),
            Scope::UserReads => own
                .and_then(|s| s.user_reads_per_s)
                .unwrap_or(self.defaults.user_reads_per_s),
        }
    }

    fn outcome(
        &self,
        scope: Scope,
        quota: u32,
        n: u32,
        verdict: Result<StateSnapshot, governor::NotUntil<governor::clock::QuantaInstant>>,
        tenant: &TenantId,
    ) -> Outcome {
        match verdict {
            Ok(state) => {
                let remaining = state
                    .remaining_burst_capacity()
                    .saturating_mul(n)
                    .min(quota);
                Outcome {
                    scope,
                    quota,
                    remaining,
                    reset_s: u64::from(remaining < quota),
                    retry_after: None,
                }
            }
            Err(not_until) => {
                let wait =
                    not_until.wait_time_from(governor::clock::Clock::now(&DefaultClock::default()));
                metrics::counter!(format!("{}_rate_limited_total", self.service), "tenant" => tenant.as_str().to_owned(), "scope" => scope.name())
                    .increment(1);
                Outcome {
                    scope,
                    quota,
                    remaining: 0,
                    reset_s: wait.as_secs_f64().ceil().max(1.0) as u64,
                    retry_after: Some(wait.max(Duration::from_millis(1))),
                }
            }
        }
    }

    /// Counts one request of `tenant`; `None` when the scope is off.
    pub fn tenant(&self, tenant: &TenantId) -> Option<Outcome> {
        let quota = self.quota(tenant, Scope::Tenant);
        if quota == 0 {
            return None;
        }
        let n = self.share.get();
        let limiter = self.bucket(&self.tenants, tenant.clone(), quota.div_ceil(n), |q| {
            RateLimiter::direct(q).with_middleware()
        });
        Some(self.outcome(Scope::Tenant, quota, n, limiter.check(), tenant))
    }

    /// Counts `count` units of `scope` (a user scope) for `uid` of `tenant`; `None` when the
    /// scope is off. A `count` above the whole quota is refused.
    pub fn user(&self, tenant: &TenantId, uid: &Uid, scope: Scope, count: u32) -> Option<Outcome> {
        let quota = self.quota(tenant, scope);
        if quota == 0 || count == 0 {
            return None;
        }
        let n = self.share.get();
        let limiter = self.bucket(
            &self.users,
            (tenant.clone(), scope),
            quota.div_ceil(n),
            |q| RateLimiter::keyed(q).with_middleware(),
        );
        let verdict = match NonZeroU32::new(count).map(|c| limiter.check_key_n(uid, c)) {
            Some(Ok(v)) => v,
            // More than the bucket holds at all: refused, retry after a full second.
            Some(Err(_)) | None => {
                return Some(Outcome {
                    scope,
                    quota,
                    remaining: 0,
                    reset_s: 1,
                    retry_after: Some(Duration::from_secs(1)),
                })
            }
        };
        Some(self.outcome(scope, quota, n, verdict, tenant))
    }

    /// The limiter of `key` in `map` built for `local` per second, replaced by `build` when
    /// missing or built for another quota (the tenant's setting or the instance count moved).
    fn bucket<K: std::hash::Hash + Eq, L>(
        &self,
        map: &RwLock<HashMap<K, Bucket<L>>>,
        key: K,
        local: u32,
        build: impl Fn(Quota) -> L,
    ) -> Arc<L> {
        let found = map
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            .filter(|b| b.local == local)
            .map(|b| b.limiter.clone());
        if let Some(l) = found {
            return l;
        }
        let _one = self.rebuild.lock().unwrap_or_else(|p| p.into_inner());
        let mut map = map.write().unwrap_or_else(|p| p.into_inner());
        let b = map.entry(key).or_insert_with(|| Bucket {
            local,
            limiter: Arc::new(build(quota_of(local))),
        });
        if b.local != local {
            *b = Bucket {
                local,
                limiter: Arc::new(build(quota_of(local))),
            };
        }
        b.limiter.clone()
    }

    /// Drops per-user buckets that have fully refilled (call every few seconds).
    pub fn sweep(&self) {
        for b in self
            .users
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
        {
            b.limiter.retain_recent();
            b.limiter.shrink_to_fit();
        }
    }
}

/// The headers of `outcomes` (one per scope that applied): `RateLimit-Policy` and `RateLimit`
/// listing each, `X-RateLimit-*` for the most restrictive, `Retry-After` (whole seconds,
/// rounded up) when one refused.
pub fn headers(outcomes: &[Outcome]) -> Vec<(&'static str, String)> {
    if outcomes.is_empty() {
        return Vec::new();
    }
    let policy = outcomes
        .iter()
        .map(|o| format!("\"{}\";q={};w=1", o.scope.name(), o.quota))
        .collect::<Vec<_>>()
        .join(", ");
    let state = outcomes
        .iter()
        .map(|o| format!("\"{}\";r={};t={}", o.scope.name(), o.remaining, o.reset_s))
        .collect::<Vec<_>>()
        .join(", ");
    let tightest = outcomes
        .iter()
        .min_by_key(|o| (o.allowed(), o.remaining))
        .unwrap_or(&outcomes[0]);
    let mut out = vec![
        ("ratelimit-policy", policy),
        ("ratelimit", state),
        ("x-ratelimit-limit", tightest.quota.to_string()),
        ("x-ratelimit-remaining", tightest.remaining.to_string()),
        (
            "x-ratelimit-reset",
            (now_s() + tightest.reset_s.max(1)).to_string(),
        ),
    ];
    if let Some(wait) = outcomes.iter().filter_map(|o| o.retry_after).max() {
        out.push((
            "retry-after",
            (wait.as_secs_f64().ceil().max(1.0) as u64).to_string(),
        ));
    }
    out
}

/// The outcomes gathered while one request ran, for the response's headers: the
/// [`crate::edge::Edge`] puts one in every request's extensions, the authentication and the
/// handlers add to it, and the edge writes [`headers`] of it on the answer.
#[derive(Debug, Default, Clone)]
pub struct Slot(Arc<Mutex<Vec<Outcome>>>);

impl Slot {
    /// Adds an outcome.
    pub fn push(&self, o: Outcome) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(o);
    }

    /// The outcomes so far.
    pub fn take(&self) -> Vec<Outcome> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// The 429 answer of refused `outcomes`: `{"error": {"code": "RATE_LIMIT_EXCEEDED", …}}` with
/// every header.
pub fn too_many(outcomes: &[Outcome]) -> poem::Response {
    use poem::IntoResponse as _;
    let refused = outcomes.iter().find(|o| !o.allowed());
    let mut resp = match refused {
        Some(o) => o.error(),
        None => crate::error::ApiError::with_status(
            429,
            crate::error::ErrorDetail {
                code: "RATE_LIMIT_EXCEEDED".into(),
                message: "rate limit exceeded".into(),
                field: None,
                retry_after_ms: None,
            },
        ),
    }
    .into_response();
    for (name, value) in headers(outcomes) {
        if let Ok(v) = poem::http::HeaderValue::from_str(&value) {
            resp.headers_mut().insert(name, v);
        }
    }
    resp
}

/// A [`Limiter`] for `service` (`command_svc`, `query_svc`) with its two background tasks on
/// `tasks` until `stop`: this instance's heartbeat in `<root>_instances`
/// ([`crate::instances`]) and the sweep of idle users' buckets every 10 s.
pub fn start(
    js: async_nats::jetstream::Context,
    root: String,
    service: &'static str,
    defaults: Defaults,
    live: Option<Arc<dyn LiveTenancy>>,
    tasks: &crate::shutdown::Tasks,
    stop: &crate::shutdown::Shutdown,
) -> Arc<Limiter> {
    let share = Arc::new(Share::default());
    tasks.spawn(
        "instance heartbeat",
        crate::instances::run(js, root, service, share.clone(), stop.clone().wait()),
    );
    let limiter = Arc::new(Limiter::new(service, defaults, live, share));
    let (sweeping, stopped) = (limiter.clone(), stop.clone().wait());
    tasks.spawn("rate-limit sweep", async move {
        let mut tick = tokio::time::interval(Duration::from_secs(10));
        tokio::pin!(stopped);
        loop {
            tokio::select! {
                () = &mut stopped => return,
                _ = tick.tick() => sweeping.sweep(),
            }
        }
    });
    limiter
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> TenantId {
        TenantId::parse(s).expect("tenant")
    }

    #[test]
    fn a_burst_of_the_quota_passes_then_refusals_say_when() {
        let l = Limiter::new(
            "test",
            Defaults {
                tenant_per_s: 5,
                user_sends_per_s: 3,
                user_reads_per_s: 0,
            },
            None,
            Arc::default(),
        );
        let acme = t("acme");
        let passed: Vec<u32> = (0..5)
            .map(|_| l.tenant(&acme).expect("on").remaining)
            .collect();
        assert_eq!(passed, vec![4, 3, 2, 1, 0]);
        let refused = l.tenant(&acme).expect("on");
        assert!(!refused.allowed());
        assert!(refused.retry_after.expect("wait") <= Duration::from_millis(200));
        // Tenants do not share buckets.
        assert!(l.tenant(&t("globex")).expect("on").allowed());
        // A batch of 3 fills the user's bucket; one more is refused; reads are off.
        let u = Uid::parse("u").expect("uid");
        assert!(l
            .user(&acme, &u, Scope::UserSends, 3)
            .expect("on")
            .allowed());
        assert!(!l
            .user(&acme, &u, Scope::UserSends, 1)
            .expect("on")
            .allowed());
        assert!(!l
            .user(&acme, &Uid::parse("v").expect("uid"), Scope::UserSends, 4)
            .expect("on")
            .allowed());
        assert!(l.user(&acme, &u, Scope::UserReads, 1).is_none());
    }

    #[test]
    fn two_instances_each_admit_half() {
        let share = Arc::new(Share::default());
        share.set(2);
        let l = Limiter::new(
            "test",
            Defaults {
                tenant_per_s: 10,
                ..Defaults::default()
            },
            None,
            share,
        );
        let acme = t("acme");
        let admitted = (0..20)
            .filter(|_| l.tenant(&acme).expect("on").allowed())
            .count();
        assert_eq!(admitted, 5);
    }

    #[test]
    fn headers_follow_the_draft() {
        let o = Outcome {
            scope: Scope::Tenant,
            quota: 100,
            remaining: 0,
            reset_s: 1,
            retry_after: Some(Duration::from_millis(300)),
        };
        let h: HashMap<_, _> = headers(&[o]).into_iter().collect();
        assert_eq!(h["ratelimit-policy"], "\"tenant\";q=100;w=1");
        assert_eq!(h["ratelimit"], "\"tenant\";r=0;t=1");
        assert_eq!(h["retry-after"], "1");
        assert_eq!(h["x-ratelimit-limit"], "100");
        assert_eq!(h["x-ratelimit-remaining"], "0");
    }
}
