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
    /// Users' read positions.
    Reads,
    /// End-user tokens for the query service.
    Tokens,
}

error_set!(
    /// `POST /v1/messages`.
    pub SendErrors {
        400 => "A field is missing, malformed or unknown (`VALIDATION_ERROR`, `INVALID_JSON`; `field` names it).",
        401 => "Missing or unknown API key (`UNAUTHORIZED`).",
        403 => "`from_uid` is not a member of the group, or not one of the personal channel's two users (`NOT_A_MEMBER`).",
        404 => "The group does not exist or was disbanded (`CHANNEL_NOT_FOUND`).",
        408 => "The request body did not arrive within the body timeout (`BODY_TIMEOUT`).",
        409 => "`client_msg_no` was used before with another payload (`IDEMPOTENCY_CONFLICT`).",
        413 => "The decoded payload exceeds `PARLEY_MAX_PAYLOAD_BYTES`, or the body its limit (`PAYLOAD_TOO_LARGE`).",
        415 => "The body is not `application/json` (`UNSUPPORTED_MEDIA_TYPE`).",
        500 => "Unexpected server fault (`INTERNAL`); logged.",
        503 => "The event log or Postgres is unavailable, or other writers keep winning on the channel (`LOG_UNAVAILABLE`, `DATABASE_UNAVAILABLE`, `CONTENTION`): retry with the same `client_msg_no`.",
    }
);

error_set!(
    /// `POST /v1/messages/batch` (each item's own error is in its result).
    pub BatchErrors {
        400 => "The body is malformed, a field of an item is malformed or unknown, or `messages` holds 0 or more than 1000 items (`field` names it).",
        401 => "Missing or unknown API key (`UNAUTHORIZED`).",
        408 => "The request body did not arrive within the body timeout (`BODY_TIMEOUT`).",
        413 => "The body exceeds its limit (`PAYLOAD_TOO_LARGE`).",
        415 => "The body is not `application/json` (`UNSUPPORTED_MEDIA_TYPE`).",
        500 => "Unexpected server fault (`INTERNAL`); logged.",
    }
);

error_set!(
    /// `POST /v1/channels`.
    pub CreateErrors {
        400 => "A field is missing, malformed or unknown (`field` names it).",
        401 => "Missing or unknown API key (`UNAUTHORIZED`).",
        408 => "The request body did not arrive within the body timeout (`BODY_TIMEOUT`).",
        409 => "The id is in use, or was used by a disbanded group: ids are never reused (`CHANNEL_EXISTS`).",
        413 => "The body exceeds its limit (`PAYLOAD_TOO_LARGE`).",
        415 => "The body is not `application/json` (`UNSUPPORTED_MEDIA_TYPE`).",
        500 => "Unexpected server fault (`INTERNAL`); logged.",
        503 => "The event log or Postgres is unavailable (`LOG_UNAVAILABLE`, `DATABASE_UNAVAILABLE`, `CONTENTION`): retry.",
    }
);

error_set!(
    /// `DELETE /v1/channels/{channel_id}` and `DELETE …/members/{uid}`.
    pub GroupPathErrors {
        400 => "A path parameter is malformed (`field` names it).",
        401 => "Missing or unknown API key (`UNAUTHORIZED`).",
        404 => "The group does not exist or was disbanded (`CHANNEL_NOT_FOUND`), or the uid is not a member (`MEMBER_NOT_FOUND`).",
        500 => "Unexpected server fault (`INTERNAL`); logged.",
        503 => "The event log or Postgres is unavailable (`LOG_UNAVAILABLE`, `DATABASE_UNAVAILABLE`, `CONTENTION`): retry.",
    }
);

error_set!(
    /// `POST /v1/channels/{channel_id}/members`.
    pub AddErrors {
        400 => "A field is missing, malformed or unknown, or `uids` is empty or longer than 1000 (`field` names it).",
        401 => "Missing or unknown API key (`UNAUTHORIZED`).",
        404 => "The group does not exist or was disbanded (`CHANNEL_NOT_FOUND`).",
        408 => "The request body did not arrive within the body timeout (`BODY_TIMEOUT`).",
        413 => "The body exceeds its limit (`PAYLOAD_TOO_LARGE`).",
        415 => "The body is not `application/json` (`UNSUPPORTED_MEDIA_TYPE`).",
        500 => "Unexpected server fault (`INTERNAL`); logged.",
        503 => "The event log or Postgres is unavailable (`LOG_UNAVAILABLE`, `DATABASE_UNAVAILABLE`, `CONTENTION`): retry.",
    }
);

error_set!(
    /// `POST /v1/users/{uid}/conversations/{channel_type}/{channel_id}/read`.
    pub ReadErrors {
        400 => "A field or path parameter is missing, malformed or unknown (`field` names it).",
        401 => "Missing or unknown API key (`UNAUTHORIZED`).",
        403 => "`uid` is not a member of the group (`NOT_A_MEMBER`).",
        404 => "The group does not exist (`CHANNEL_NOT_FOUND`), or the personal conversation has no message yet (`CONVERSATION_NOT_FOUND`).",
        408 => "The request body did not arrive within the body timeout (`BODY_TIMEOUT`).",
        413 => "The body exceeds its limit (`PAYLOAD_TOO_LARGE`).",
        415 => "The body is not `application/json` (`UNSUPPORTED_MEDIA_TYPE`).",
        500 => "Unexpected server fault (`INTERNAL`); logged.",
        503 => "The event log or Postgres is unavailable (`LOG_UNAVAILABLE`, `DATABASE_UNAVAILABLE`): retry.",
    }
);

error_set!(
    /// `POST /v1/users/{uid}/tokens`.
    pub TokenErrors {
        400 => "A field or the uid is malformed or unknown, or out of range (`field` names it).",
        401 => "Missing or unknown API key (`UNAUTHORIZED`).",
        408 => "The request body did not arrive within the body timeout (`BODY_TIMEOUT`).",
        413 => "The body exceeds its limit (`PAYLOAD_TOO_LARGE`).",
        415 => "The body is not `application/json` (`UNSUPPORTED_MEDIA_TYPE`).",
        500 => "Unexpected server fault (`INTERNAL`); logged.",
        503 => "The service has no `PARLEY_TOKEN_SECRET` (`TOKENS_DISABLED`).",
    }
);

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

/// Example group id of a path.
pub fn team() -> platform::params::Id {
    platform::params::Id("team".into())
}

/// Example `channel_type` of a path: personal.
pub fn personal() -> u8 {
    1
}
