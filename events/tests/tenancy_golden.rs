//! Golden fixtures of the tenancy log (`events::tenancy`): every version ever written must keep
//! decoding, and the current ones must keep encoding to exactly these bytes.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is the failure message

use events::tenancy::*;
use events::{TenantId, Uid};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let mut bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    while bytes.last() == Some(&b'\n') {
        bytes.pop();
    }
    bytes
}

fn env(at: i64, event: TenancyEvent) -> TenancyEnvelope {
    TenancyEnvelope {
        tenant: TenantId::parse("initech").unwrap(),
        occurred_at: at,
        event,
    }
}

fn key() -> ApiKeyRecord {
    ApiKeyRecord {
        key_id: "0123456789abcdef".into(),
        label: Some("billing".into()),
        prefix: "pk_0123456789abcdef".into(),
        sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into(),
        expires_at: Some(1800000000000),
    }
}

fn cases() -> Vec<(&'static str, TenancyEnvelope)> {
    vec![
        (
            "tenant_created.v1.json",
            env(
                1700000000000,
                TenancyEvent::TenantCreated(TenantCreated {
                    name: Some("Initech".into()),
                    settings: TenantSettings {
                        rate_limit_per_s: Some(200),
                        allowed_origins: Some(vec!["https://app.initech.example".into()]),
                        ..Default::default()
                    },
                    key: ApiKeyRecord {
                        label: None,
                        expires_at: None,
                        ..key()
                    },
                }),
            ),
        ),
        (
            "tenant_updated.v1.json",
            env(
                1700000000100,
                TenancyEvent::TenantUpdated(TenantUpdated {
                    name: Some("Initech".into()),
                    settings: TenantSettings {
                        user_sends_per_s: Some(5),
                        ..Default::default()
                    },
                    suspended: true,
                }),
            ),
        ),
        (
            "api_key_created.v1.json",
            env(1700000000200, TenancyEvent::ApiKeyCreated(key())),
        ),
        (
            "api_key_revoked.v1.json",
            env(
                1700000000300,
                TenancyEvent::ApiKeyRevoked(ApiKeyRevoked {
                    key_id: "0123456789abcdef".into(),
                }),
            ),
        ),
        (
            "user_tokens_revoked.v1.json",
            env(
                1700000000400,
                TenancyEvent::UserTokensRevoked(UserTokensRevoked {
                    uid: Uid::parse("alice").unwrap(),
                    before_s: 1700000000,
                }),
            ),
        ),
    ]
}

#[test]
fn current_versions_encode_to_their_fixtures_and_back() {
    for (name, env) in cases() {
        let bytes = fixture(name);
        assert_eq!(
            String::from_utf8(encode(&env).unwrap()).unwrap(),
            String::from_utf8(bytes.clone()).unwrap(),
            "{name}"
        );
        assert_eq!(decode(&bytes).unwrap(), env, "{name}");
    }
}

#[test]
fn unknown_types_and_versions_are_errors() {
    for bad in [
        br#"{"type":"tenant_created","v":2,"tenant":"a","at":1,"data":{}}"#.as_slice(),
        br#"{"type":"tenant_deleted","v":1,"tenant":"a","at":1,"data":{}}"#.as_slice(),
        br#"{"type":"api_key_revoked","v":1,"tenant":"a","at":1,"data":{}}"#.as_slice(),
        b"not json".as_slice(),
    ] {
        assert!(decode(bad).is_err(), "{}", String::from_utf8_lossy(bad));
    }
}
