//! The command layer: typed commands in ([`events::command`]), a typed [`CommandError`] out,
//! whatever the transport. REST handlers, batch items and socket commands (over NATS, see
//! [`crate::socket`]) all call [`Command::run`]; only the shapes they are read from and
//! written to differ.
//!
//! Adding a command means: its type in `events::command`, its `decide` arm in
//! [`crate::domain::channel`], its [`Command`] impl here, its REST route in [`crate::api`] and,
//! where users act, its socket verb in `events::subject::CommandVerb`.
//!
//! - [`messages`]: send (prepared, then run, so a batch validates every item first).
//! - [`groups`]: create, disband, add and remove members.
//! - [`moderation`]: roles and mutes, channel settings, bans, send lists, personal blocks.
//! - [`reads`]: read positions.
//! - [`fields`]: the field rules they share.
//! - [`error`]: [`CommandError`] and the status and body each transport answers with.

pub mod error;
pub mod fields;
pub mod groups;
pub mod messages;
pub mod moderation;
pub mod reads;

pub use error::CommandError;
pub use messages::PreparedSend;

use crate::executor::Executor;
use events::TenantId;
use std::future::Future;
use std::sync::Arc;

/// A command any transport can run.
pub trait Command: Send + Sized + 'static {
    /// Its answer.
    type Output: Send;

    /// Validates the command (once, naming the offending field), decides and appends it.
    ///
    /// # Errors
    /// [`CommandError`].
    fn run(
        self,
        on: &Commands,
        tenant: &TenantId,
    ) -> impl Future<Output = Result<Self::Output, CommandError>> + Send;
}

/// What commands run on: the executor and the limits of validation.
#[derive(Clone)]
pub struct Commands {
    executor: Arc<Executor>,
    max_payload_bytes: usize,
    limiter: Option<Arc<platform::ratelimit::Limiter>>,
    tenancy: Option<Arc<dyn platform::live::LiveTenancy>>,
}

impl Commands {
    /// Commands on `executor`, refusing payloads over `max_payload_bytes` decoded.
    pub fn new(executor: Executor, max_payload_bytes: usize) -> Self {
        Self {
            executor: Arc::new(executor),
            max_payload_bytes,
            limiter: None,
            tenancy: None,
        }
    }

    /// These commands, applying each tenant's own limits (payload size, group size) from
    /// `tenancy`.
    pub fn with_tenancy(mut self, tenancy: Arc<dyn platform::live::LiveTenancy>) -> Self {
        self.tenancy = Some(tenancy);
        self
    }

    /// `tenant`'s own limits.
    pub fn limits(&self, tenant: &TenantId) -> platform::live::TenantLimits {
        self.tenancy
            .as_ref()
            .map(|t| t.limits(tenant))
            .unwrap_or_default()
    }

    /// The largest decoded payload for `tenant`: its own setting, capped by the service's.
    pub fn max_payload_for(&self, tenant: &TenantId) -> usize {
        self.limits(tenant)
            .max_payload_bytes
            .map_or(self.max_payload_bytes, |m| {
                (m as usize).min(self.max_payload_bytes)
            })
    }

    /// These commands, counting sends and read-position moves against each user's limits
    /// (`user-sends`, `user-reads`: [`platform::ratelimit`]) whatever the transport.
    pub fn with_limiter(mut self, limiter: Arc<platform::ratelimit::Limiter>) -> Self {
        self.limiter = Some(limiter);
        self
    }

    /// Counts one unit of `scope` for `uid`.
    ///
    /// # Errors
    /// [`CommandError::RateLimited`] when over the limit.
    pub fn count(
        &self,
        tenant: &TenantId,
        uid: &events::Uid,
        scope: platform::ratelimit::Scope,
    ) -> Result<(), CommandError> {
        match self
            .limiter
            .as_ref()
            .and_then(|l| l.user(tenant, uid, scope, 1))
        {
            Some(o) if !o.allowed() => Err(CommandError::RateLimited(o)),
            _ => Ok(()),
        }
    }

    /// Largest decoded payload, bytes.
    pub fn max_payload_bytes(&self) -> usize {
        self.max_payload_bytes
    }

    /// Runs `c` for `tenant` (shorthand for [`Command::run`]).
    ///
    /// # Errors
    /// [`CommandError`].
    pub async fn run<C: Command>(
        &self,
        tenant: &TenantId,
        c: C,
    ) -> Result<C::Output, CommandError> {
        c.run(self, tenant).await
    }
}
