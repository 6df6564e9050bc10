//! API keys minted by the admin API: `pk_<key_id>_<secret>`.
//!
//! `key_id` is 16 lowercase hex digits (8 random bytes) and names the key in the log, in lists
//! and in revocations; `secret` is 32 random bytes, base64url without padding (43 characters),
//! from the operating system's generator. Only the SHA-256 digest of the whole key is logged;
//! a presented key is found by its `key_id` and compared by digest in constant time
//! (`subtle`), so neither a lookup nor a comparison leaks how much of a guess was right.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use events::tenancy::ApiKeyRecord;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Length of the public prefix `pk_<key_id>`.
pub const PREFIX_LEN: usize = 3 + 16;

/// A freshly minted key: the secret (shown once) and what the log records.
#[derive(Debug, Clone)]
pub struct Minted {
    /// The whole key, `pk_<key_id>_<secret>`.
    pub key: String,
    /// The log's record of it.
    pub record: ApiKeyRecord,
}

/// SHA-256 of a key.
pub fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// Mints a key labelled `label`, expiring at `expires_at` (ms since the Unix epoch).
pub fn mint(label: Option<String>, expires_at: Option<i64>) -> Minted {
    let mut rng = rand::rngs::OsRng;
    let mut id = [0u8; 8];
    rng.fill_bytes(&mut id);
    let mut secret = [0u8; 32];
    rng.fill_bytes(&mut secret);
    let key_id = hex::encode(id);
    let key = format!("pk_{key_id}_{}", URL_SAFE_NO_PAD.encode(secret));
    let record = ApiKeyRecord {
        prefix: key[..PREFIX_LEN].to_owned(),
        sha256: hex::encode(digest(&key)),
        key_id,
        label,
        expires_at,
    };
    Minted { key, record }
}

/// The `key_id` inside a key of this format; `None` for anything else (a bootstrap key, a
/// token, garbage).
pub fn key_id_of(key: &str) -> Option<&str> {
    let rest = key.strip_prefix("pk_")?;
    let (id, secret) = (rest.get(..16)?, rest.get(16..)?);
    let valid_id = id
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    (valid_id && secret.len() == 44 && secret.starts_with('_')).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_keys_parse_and_carry_their_digest() {
        let m = mint(Some("ci".into()), None);
        assert_eq!(key_id_of(&m.key), Some(m.record.key_id.as_str()));
        assert_eq!(m.record.sha256, hex::encode(digest(&m.key)));
        assert!(m.key.starts_with(&m.record.prefix));
        assert_ne!(mint(None, None).key, m.key);
        for bad in [
            "",
            "pk_",
            "pk_0123456789abcdef",
            "sk_0123456789abcdef_x",
            "pk_0123456789ABCDEF_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        ] {
            assert_eq!(key_id_of(bad), None, "{bad}");
        }
    }
}
