//! What the command service's OpenAPI document says beyond the types: the error statuses of
//! each operation ([`platform::error::ErrorSet`]s), the operation groups, and the examples of
//! path parameters. The examples form one story that runs as written, in document order
//! (alice writes to bob, creates `team`, adds carol, …), which `tests/tests/openapi.rs` does.

use platform::error_set;
use poem_openapi::Tags;

/// Operation groups.
#[derive(Tags)]
pub enum ApiTags {
    /// Sending messages, one or a batch.
    Messages,
    /// Group channels and their members.
    Channels,
    /// Group roles and moderation, and personal blocks (see `docs/moderation.md`).
    Moderation,
    /// Users' read positions.
    Reads,
    /// End-user tokens for the query service.
    Tokens,
    /// Tenants and their API keys (master key; see `docs/tenancy.md`).
    Admin,
}

error_set!(
    /// `POST /v1/messages`.
    pub SendErrors {
        400 => "A field is missing, malformed or unknown (`VALIDATION_ERROR`, `INVALID_JSON`; `field` names it).",
        401 => "Missing, unknown, revoked or expired API key (`UNAUTHORIZED`).",
        403 => "`from_uid` is not a member of the group, or not one of the personal channel's two users (`NOT_A_MEMBER`); moderation refuses the send (`MEMBER_MUTED`, `CHANNEL_MUTED`, `BANNED`, `BLACKLISTED`, `NOT_WHITELISTED`, `BLOCKED`; `field` names `from_uid` or `channel_id`); or the tenant is suspended (`TENANT_SUSPENDED`).",
        404 => "The group does not exist or was disbanded (`CHANNEL_NOT_FOUND`).",
        408 => "The request body did not arrive within the body timeout (`BODY_TIMEOUT`).",
        409 => "`client_msg_no` was used before with another payload (`IDEMPOTENCY_CONFLICT`).",
        413 => "The decoded payload exceeds `PARLEY_MAX_PAYLOAD_BYTES`, or the body its limit (`PAYLOAD_TOO_LARGE`).",
        415 => "The body is not `application/json` (`UNSUPPORTED_MEDIA_TYPE`).",
        429 => "Over a rate limit (`RATE_LIMIT_EXCEEDED`, with `retry_after_ms`; headers `Retry-After`, `RateLimit-Policy`, `RateLimit`, `X-RateLimit-*`).",
        500 => "Unexpected server fault (`INTERNAL`); logged.",
        503 => "The event log or Postgres is unavailable, or other writers keep winning on the channel (`LOG_UNAVAILABLE`, `DATABASE_UNAVAILABLE`, `CONTENTION`): retry with the same `client_msg_no`.",
    }
);

error_set!(
    /// `POST /v1/messages/batch` (each item's own error is in its result).
    pub BatchErrors {
        400 => "The body is malformed, a field of an item is malformed or unknown, or `messages` holds 0 or more than 1000 items (`field` names it).",
        401 => "Missing, unknown, revoked or expired API key (`UNAUTHORIZED`).",
        403 => "The tenant is suspended (`TENANT_SUSPENDED`).",
        408 => "The request body did not arrive within the body timeout (`BODY_TIMEOUT`).",
        413 => "The body exceeds its limit (`PAYLOAD_TOO_LARGE`).",
        415 => "The body is not `application/json` (`UNSUPPORTED_MEDIA_TYPE`).",
        429 => "Over a rate limit (`RATE_LIMIT_EXCEEDED`, with `retry_after_ms`; headers `Retry-After`, `RateLimit-Policy`, `RateLimit`, `X-RateLimit-*`).",
        500 => "Unexpected server fault (`INTERNAL`); logged.",
    }
);

error_set!(
    /// `POST /v1/channels`.
    pub CreateErrors {
        400 => "A field is missing, malformed or unknown (`field` names it).",
        401 => "Missing, unknown, revoked or expired API key (`UNAUTHORIZED`).",
        403 => "The tenant is suspended (`TENANT_SUSPENDED`).",
        408 => "The request body did not arrive within the body timeout (`BODY_TIMEOUT`).",
        409 => "The id is in use, or was used by a disbanded group: ids are never reused (`CHANNEL_EXISTS`); more members than the tenant's `max_group_members` (`GROUP_FULL`).",
        413 => "The body exceeds its limit (`PAYLOAD_TOO_LARGE`).",
        415 => "The body is not `application/json` (`UNSUPPORTED_MEDIA_TYPE`).",
        429 => "Over a rate limit (`RATE_LIMIT_EXCEEDED`, with `retry_after_ms`; headers `Retry-After`, `RateLimit-Policy`, `RateLimit`, `X-RateLimit-*`).",
        500 => "Unexpected server fault (`INTERNAL`); logged.",
        503 => "The event log or Postgres is unavailable (`LOG_UNAVAILABLE`, `DATABASE_UNAVAILABLE`, `CONTENTION`): retry.",
    }
);

error_set!(
    /// `DELETE /v1/channels/{channel_id}` and `DELETE …/members/{uid}`.
    pub GroupPathErrors {
        400 => "A path or query parameter is malformed (`field` names it).",
        401 => "Missing, unknown, revoked or expired API key (`UNAUTHORIZED`).",
        403 => "`actor_uid` is not a member (`NOT_A_MEMBER`) or its role does not allow it (`PERMISSION_DENIED`), or the tenant is suspended (`TENANT_SUSPENDED`).",
        404 => "The group does not exist or was disbanded (`CHANNEL_NOT_FOUND`), or the uid is not a member (`MEMBER_NOT_FOUND`).",
        409 => "The last owner may not leave while other members remain (`LAST_OWNER`).",
        429 => "Over a rate limit (`RATE_LIMIT_EXCEEDED`, with `retry_after_ms`; headers `Retry-After`, `RateLimit-Policy`, `RateLimit`, `X-RateLimit-*`).",
        500 => "Unexpected server fault (`INTERNAL`); logged.",
        503 => "The event log or Postgres is unavailable (`LOG_UNAVAILABLE`, `DATABASE_UNAVAILABLE`, `CONTENTION`): retry.",
    }
);

error_set!(
    /// `POST /v1/channels/{channel_id}/members`.
    pub AddErrors {
        400 => "A field is missing, malformed or unknown, or `uids` is empty or longer than 1000 (`field` names it).",
        401 => "Missing, unknown, revoked or expired API key (`UNAUTHORIZED`).",
        403 => "`actor_uid` is not a member (`NOT_A_MEMBER`) or not an owner or admin (`PERMISSION_DENIED`); a uid is banned (`BANNED`, `field` `uids`); or the tenant is suspended (`TENANT_SUSPENDED`).",
        404 => "The group does not exist or was disbanded (`CHANNEL_NOT_FOUND`).",
        408 => "The request body did not arrive within the body timeout (`BODY_TIMEOUT`).",
        409 => "The group would exceed the tenant's `max_group_members` (`GROUP_FULL`).",
        413 => "The body exceeds its limit (`PAYLOAD_TOO_LARGE`).",
        415 => "The body is not `application/json` (`UNSUPPORTED_MEDIA_TYPE`).",
        429 => "Over a rate limit (`RATE_LIMIT_EXCEEDED`, with `retry_after_ms`; headers `Retry-After`, `RateLimit-Policy`, `RateLimit`, `X-RateLimit-*`).",
        500 => "Unexpected server fault (`INTERNAL`); logged.",
        503 => "The event log or Postgres is unavailable (`LOG_UNAVAILABLE`, `DATABASE_UNAVAILABLE`, `CONTENTION`): retry.",
    }
);

error_set!(
    /// The moderation commands on a group.
    pub ModerationErrors {
        400 => "A field or path parameter is missing, malformed or unknown, or the body changes nothing it could (`VALIDATION_ERROR`; `field` names it).",
        401 => "Missing, unknown, revoked or expired API key (`UNAUTHORIZED`).",
        403 => "`actor_uid` is not a member (`NOT_A_MEMBER`) or its role does not allow it (`PERMISSION_DENIED`), or the tenant is suspended (`TENANT_SUSPENDED`).",
        404 => "The group does not exist or was disbanded (`CHANNEL_NOT_FOUND`), or the uid is not a member (`MEMBER_NOT_FOUND`).",
        408 => "The request body did not arrive within the body timeout (`BODY_TIMEOUT`).",
        409 => "The command would leave the group without an owner (`LAST_OWNER`).",
        413 => "The body exceeds its limit (`PAYLOAD_TOO_LARGE`).",
        415 => "The body is not `application/json` (`UNSUPPORTED_MEDIA_TYPE`).",
        429 => "Over a rate limit (`RATE_LIMIT_EXCEEDED`, with `retry_after_ms`; headers `Retry-After`, `RateLimit-Policy`, `RateLimit`, `X-RateLimit-*`).",
        500 => "Unexpected server fault (`INTERNAL`); logged.",
        503 => "The event log or Postgres is unavailable (`LOG_UNAVAILABLE`, `DATABASE_UNAVAILABLE`, `CONTENTION`): retry.",
    }
);

error_set!(
    /// `POST /v1/users/{uid}/blocks`, `DELETE /v1/users/{uid}/blocks/{blocked_uid}`.
    pub BlockErrors {
        400 => "A field or path parameter is missing, malformed or unknown, or a user blocks itself (`VALIDATION_ERROR`; `field` names it).",
        401 => "Missing, unknown, revoked or expired API key (`UNAUTHORIZED`).",
        403 => "The tenant is suspended (`TENANT_SUSPENDED`).",
        408 => "The request body did not arrive within the body timeout (`BODY_TIMEOUT`).",
        413 => "The body exceeds its limit (`PAYLOAD_TOO_LARGE`).",
        415 => "The body is not `application/json` (`UNSUPPORTED_MEDIA_TYPE`).",
        429 => "Over a rate limit (`RATE_LIMIT_EXCEEDED`, with `retry_after_ms`; headers `Retry-After`, `RateLimit-Policy`, `RateLimit`, `X-RateLimit-*`).",
        500 => "Unexpected server fault (`INTERNAL`); logged.",
        503 => "The event log or Postgres is unavailable (`LOG_UNAVAILABLE`, `DATABASE_UNAVAILABLE`, `CONTENTION`): retry.",
    }
);

error_set!(
    /// `POST /v1/users/{uid}/conversations/{channel_type}/{channel_id}/read`.
    pub ReadErrors {
        400 => "A field or path parameter is missing, malformed or unknown (`field` names it).",
        401 => "Missing, unknown, revoked or expired API key (`UNAUTHORIZED`).",
        403 => "`uid` is not a member of the group (`NOT_A_MEMBER`), or the tenant is suspended (`TENANT_SUSPENDED`).",
        404 => "The group does not exist (`CHANNEL_NOT_FOUND`), or the personal conversation has no message yet (`CONVERSATION_NOT_FOUND`).",
        408 => "The request body did not arrive within the body timeout (`BODY_TIMEOUT`).",
        413 => "The body exceeds its limit (`PAYLOAD_TOO_LARGE`).",
        415 => "The body is not `application/json` (`UNSUPPORTED_MEDIA_TYPE`).",
        429 => "Over a rate limit (`RATE_LIMIT_EXCEEDED`, with `retry_after_ms`; headers `Retry-After`, `RateLimit-Policy`, `RateLimit`, `X-RateLimit-*`).",
        500 => "Unexpected server fault (`INTERNAL`); logged.",
        503 => "The event log or Postgres is unavailable (`LOG_UNAVAILABLE`, `DATABASE_UNAVAILABLE`): retry.",
    }
);

error_set!(
    /// `POST /v1/users/{uid}/tokens`.
    pub TokenErrors {
        400 => "A field or the uid is malformed or unknown, or out of range (`field` names it).",
        401 => "Missing, unknown, revoked or expired API key (`UNAUTHORIZED`).",
        403 => "The tenant is suspended (`TENANT_SUSPENDED`).",
        408 => "The request body did not arrive within the body timeout (`BODY_TIMEOUT`).",
        413 => "The body exceeds its limit (`PAYLOAD_TOO_LARGE`).",
        415 => "The body is not `application/json` (`UNSUPPORTED_MEDIA_TYPE`).",
        429 => "Over a rate limit (`RATE_LIMIT_EXCEEDED`, with `retry_after_ms`; headers `Retry-After`, `RateLimit-Policy`, `RateLimit`, `X-RateLimit-*`).",
        500 => "Unexpected server fault (`INTERNAL`); logged.",
        503 => "The service has no `PARLEY_TOKEN_SECRET` (`TOKENS_DISABLED`).",
    }
);

error_set!(
    /// The admin API's tenant operations.
    pub AdminErrors {
        400 => "A field, path parameter or the cursor is malformed, unknown or out of range (`VALIDATION_ERROR`, `INVALID_CURSOR`; `field` names it).",
        401 => "Missing or wrong master key (`UNAUTHORIZED`).",
        403 => "A tenant API key was sent instead of the master key (`FORBIDDEN`).",
        404 => "No such tenant (`TENANT_NOT_FOUND`), or the admin API is off (`ADMIN_DISABLED`).",
        408 => "The request body did not arrive within the body timeout (`BODY_TIMEOUT`).",
        409 => "The tenant id is taken (`TENANT_EXISTS`).",
        413 => "The body exceeds its limit (`PAYLOAD_TOO_LARGE`).",
        415 => "The body is not `application/json` (`UNSUPPORTED_MEDIA_TYPE`).",
        429 => "Over a rate limit (`RATE_LIMIT_EXCEEDED`, with `retry_after_ms`; headers `Retry-After`, `RateLimit-Policy`, `RateLimit`, `X-RateLimit-*`).",
        500 => "Unexpected server fault (`INTERNAL`); logged.",
        503 => "The tenancy log is unavailable, or other writers kept changing the tenant (`LOG_UNAVAILABLE`, `CONTENTION`): retry.",
    }
);

error_set!(
    /// `DELETE /v1/admin/tenants/{tenant_id}/keys/{key_id}`.
    pub AdminKeyErrors {
        400 => "A path parameter is malformed (`field` names it).",
        401 => "Missing or wrong master key (`UNAUTHORIZED`).",
        403 => "A tenant API key was sent instead of the master key (`FORBIDDEN`).",
        404 => "No such tenant (`TENANT_NOT_FOUND`) or key (`KEY_NOT_FOUND`), or the admin API is off (`ADMIN_DISABLED`).",
        429 => "Over a rate limit (`RATE_LIMIT_EXCEEDED`, with `retry_after_ms`; headers `Retry-After`, `RateLimit-Policy`, `RateLimit`, `X-RateLimit-*`).",
        500 => "Unexpected server fault (`INTERNAL`); logged.",
        503 => "The tenancy log is unavailable (`LOG_UNAVAILABLE`): retry.",
    }
);

error_set!(
    /// `POST /v1/users/{uid}/tokens/revoke`.
    pub RevokeErrors {
        400 => "The uid is malformed (`field` names it).",
        401 => "Missing, unknown, revoked or expired API key (`UNAUTHORIZED`).",
        403 => "The tenant is suspended (`TENANT_SUSPENDED`).",
        429 => "Over a rate limit (`RATE_LIMIT_EXCEEDED`, with `retry_after_ms`; headers `Retry-After`, `RateLimit-Policy`, `RateLimit`, `X-RateLimit-*`).",
        500 => "Unexpected server fault (`INTERNAL`); logged.",
        503 => "The tenancy log is unavailable (`LOG_UNAVAILABLE`): retry.",
    }
);

/// Example tenant of the admin paths.
pub fn initech() -> platform::params::Id {
    platform::params::Id("initech".into())
}

/// Example key id of the admin paths.
pub fn key_id() -> String {
    "0123456789abcdef".into()
}

/// Example uid of a path: the user the examples act as.
pub fn alice() -> platform::params::Id {
    platform::params::Id("alice".into())
}

/// Example uid of a path: the peer in alice's personal channel.
pub fn bob() -> platform::params::Id {
    platform::params::Id("bob".into())
}

/// Example uid of a path: the member the examples add and remove.
pub fn carol() -> platform::params::Id {
    platform::params::Id("carol".into())
}

/// Example `actor_uid` of a query: alice, the example group's owner.
pub fn some_alice() -> Option<platform::params::Id> {
    Some(alice())
}

/// Example uid of a path: the user the examples ban, list and block.
pub fn mallory() -> platform::params::Id {
    platform::params::Id("mallory".into())
}

/// Example group id of a path.
pub fn team() -> platform::params::Id {
    platform::params::Id("team".into())
}

/// Example `channel_type` of a path: personal.
pub fn personal() -> u8 {
    1
}
