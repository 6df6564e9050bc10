//! [`LiveTenancy`]: what the services ask of the tenancy log on every call, as a trait so this
//! crate's authentication does not depend on how the answers are kept (the `tenancy` crate
//! implements it with a registry replayed from the log and kept current by a watch).

use events::{TenantId, Uid};

/// Why a known API key is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRefusal {
    /// Revoked through the admin API.
    Revoked,
    /// Past its `expires_at`.
    Expired,
}

/// A tenant's own rate quotas per second (`None`: the deployment's default).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateSettings {
    /// Requests of the whole tenant.
    pub tenant_per_s: Option<u32>,
    /// Sends per user.
    pub user_sends_per_s: Option<u32>,
    /// Reads per user.
    pub user_reads_per_s: Option<u32>,
}

/// A tenant's own limits on what its commands may do (`None`: the deployment's).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TenantLimits {
    /// Largest decoded message payload, bytes (capped by the deployment's).
    pub max_payload_bytes: Option<u32>,
    /// Most members of one group.
    pub max_group_members: Option<u32>,
    /// Shortest token lifetime a mint may ask for, seconds.
    pub token_ttl_min_s: Option<u32>,
    /// Longest token lifetime a mint may ask for, seconds.
    pub token_ttl_max_s: Option<u32>,
}

/// The live tenancy state: tenants and keys created, changed and revoked at run time.
pub trait LiveTenancy: Send + Sync + std::fmt::Debug + 'static {
    /// The tenant of an API key minted by the admin API: `None` if this is not such a key,
    /// `Some(Err(_))` if it is known and refused.
    fn tenant_of_key(&self, key: &str) -> Option<Result<TenantId, KeyRefusal>>;

    /// Whether `tenant` was created through the admin API (bootstrap tenants are not).
    fn knows(&self, tenant: &TenantId) -> bool;

    /// Whether every call of `tenant` is refused (403 `TENANT_SUSPENDED`).
    fn suspended(&self, tenant: &TenantId) -> bool;

    /// When `uid`'s tokens in `tenant` were last revoked, seconds since the Unix epoch: a
    /// token with `iat` at or before it is void.
    fn tokens_revoked_at(&self, tenant: &TenantId, uid: &Uid) -> Option<u64>;

    /// `tenant`'s own rate quotas.
    fn rate_settings(&self, tenant: &TenantId) -> RateSettings;

    /// `tenant`'s own command limits.
    fn limits(&self, tenant: &TenantId) -> TenantLimits;

    /// `tenant`'s own browser origins (`None`: the deployment's list applies).
    fn allowed_origins(&self, tenant: &TenantId) -> Option<Vec<String>>;

    /// Whether any tenant lists `origin` (for CORS preflights, which carry no credential).
    fn lists_origin(&self, origin: &str) -> bool;
}
