//! What the query service's OpenAPI document says beyond the types: the error statuses of each
//! operation ([`platform::error::ErrorSet`]s) and the examples of parameters. The examples
//! continue the command service's story (alice and bob talk, alice's group `team`), so each
//! runs as written once those commands ran (`tests/tests/openapi.rs`).

use platform::error_set;

error_set!(
    /// Reads of one channel's messages: `GET /v1/channels/{channel_type}/{channel_id}/messages`,
    /// `GET /v1/messages/{message_id}`.
    pub MessageErrors {
        400 => "A parameter is missing or malformed: `uid` with an API key, an id, a number, `limit` out of range (`VALIDATION_ERROR`; `field` names it).",
        401 => "Missing, unknown, expired, revoked or forged credentials (`UNAUTHORIZED`).",
        403 => "The viewer is not a member of the group (`NOT_A_MEMBER`), or a user token names another `uid` (`FORBIDDEN_UID`), or the tenant is suspended (`TENANT_SUSPENDED`).",
        404 => "The group, or the message, does not exist (`CHANNEL_NOT_FOUND`, `MESSAGE_NOT_FOUND`).",
        429 => "Over a rate limit (`RATE_LIMIT_EXCEEDED`, with `retry_after_ms`; headers `Retry-After`, `RateLimit-Policy`, `RateLimit`, `X-RateLimit-*`).",
        500 => "Unexpected server fault (`INTERNAL`); logged.",
        503 => "The projections did not reach `min_event_seq` in time (`PROJECTION_LAGGING`), or Postgres is unavailable (`DATABASE_UNAVAILABLE`).",
    }
);

error_set!(
    /// `GET /v1/users/{uid}/conversations`.
    pub ConversationErrors {
        400 => "A parameter is malformed, or `cursor` is not a `next_cursor` this service returned (`VALIDATION_ERROR`, `INVALID_CURSOR`; `field` names it).",
        401 => "Missing, unknown, expired, revoked or forged credentials (`UNAUTHORIZED`).",
        403 => "A user token names another `uid` (`FORBIDDEN_UID`), or the tenant is suspended (`TENANT_SUSPENDED`).",
        429 => "Over a rate limit (`RATE_LIMIT_EXCEEDED`, with `retry_after_ms`; headers `Retry-After`, `RateLimit-Policy`, `RateLimit`, `X-RateLimit-*`).",
        500 => "Unexpected server fault (`INTERNAL`); logged.",
        503 => "The projections did not reach `min_event_seq` in time (`PROJECTION_LAGGING`), or Postgres is unavailable (`DATABASE_UNAVAILABLE`).",
    }
);

error_set!(
    /// `GET /v1/channels/{channel_id}` and `…/members`.
    pub ChannelErrors {
        400 => "A parameter is malformed, or `cursor` is not a `next_cursor` this service returned (`VALIDATION_ERROR`, `INVALID_CURSOR`; `field` names it).",
        401 => "Missing, unknown, expired, revoked or forged credentials (`UNAUTHORIZED`).",
        403 => "`uid` is not a member (`NOT_A_MEMBER`), or a user token names another `uid` (`FORBIDDEN_UID`), or the tenant is suspended (`TENANT_SUSPENDED`).",
        404 => "The group does not exist or was disbanded (`CHANNEL_NOT_FOUND`).",
        429 => "Over a rate limit (`RATE_LIMIT_EXCEEDED`, with `retry_after_ms`; headers `Retry-After`, `RateLimit-Policy`, `RateLimit`, `X-RateLimit-*`).",
        500 => "Unexpected server fault (`INTERNAL`); logged.",
        503 => "The projections did not reach `min_event_seq` in time (`PROJECTION_LAGGING`), or Postgres is unavailable (`DATABASE_UNAVAILABLE`).",
    }
);

error_set!(
    /// `GET /v1/users/{uid}/blocks`.
    pub BlockListErrors {
        400 => "A parameter is malformed, or `cursor` is not a `next_cursor` this service returned (`VALIDATION_ERROR`, `INVALID_CURSOR`; `field` names it).",
        401 => "Missing, unknown, expired, revoked or forged credentials (`UNAUTHORIZED`).",
        403 => "A user token names another `uid` (`FORBIDDEN_UID`), or the tenant is suspended (`TENANT_SUSPENDED`).",
        429 => "Over a rate limit (`RATE_LIMIT_EXCEEDED`, with `retry_after_ms`; headers `Retry-After`, `RateLimit-Policy`, `RateLimit`, `X-RateLimit-*`).",
        500 => "Unexpected server fault (`INTERNAL`); logged.",
        503 => "The projections did not reach `min_event_seq` in time (`PROJECTION_LAGGING`), or Postgres is unavailable (`DATABASE_UNAVAILABLE`).",
    }
);

error_set!(
    /// `GET /v1/users/online`.
    pub OnlineErrors {
        400 => "`uids` is missing, holds a malformed uid, or more than 200 (`VALIDATION_ERROR`).",
        401 => "Missing, unknown, expired, revoked or forged credentials (`UNAUTHORIZED`).",
        403 => "The tenant is suspended (`TENANT_SUSPENDED`).",
        429 => "Over a rate limit (`RATE_LIMIT_EXCEEDED`, with `retry_after_ms`; headers `Retry-After`, `RateLimit-Policy`, `RateLimit`, `X-RateLimit-*`).",
    }
);

error_set!(
    /// `POST /v1/dev/tokens`.
    pub DevTokenErrors {
        400 => "A field is missing, malformed or unknown (`field` names it).",
        404 => "Dev tokens are off (`PARLEY_DEV_TOKENS` is not 1): the route does not exist (`NOT_FOUND`).",
        408 => "The request body did not arrive within the body timeout (`BODY_TIMEOUT`).",
        413 => "The body exceeds its limit (`PAYLOAD_TOO_LARGE`).",
        415 => "The body is not `application/json` (`UNSUPPORTED_MEDIA_TYPE`).",
        503 => "The service has no `PARLEY_TOKEN_SECRET` (`TOKENS_DISABLED`).",
    }
);

/// Example viewer.
pub fn alice() -> platform::params::Id {
    platform::params::Id("alice".into())
}

/// Example viewer, as an optional query parameter.
pub fn alice_opt() -> Option<platform::params::Id> {
    Some(alice())
}

/// Example peer of alice's personal channel.
pub fn bob() -> platform::params::Id {
    platform::params::Id("bob".into())
}

/// Example group.
pub fn team() -> platform::params::Id {
    platform::params::Id("team".into())
}

/// Example `channel_type`: personal.
pub fn personal() -> u64 {
    1
}

/// Example message id (a UUIDv7 as the command service assigns them).
pub fn message_id() -> String {
    "0193a2f8-2a4e-7c1d-9b6e-4f0a1c2d3e4f".into()
}

/// Example uids of `GET /v1/users/online`.
pub fn uids() -> String {
    "alice,bob".into()
}
