//! The digest a retried send is compared by.

use sha2::{Digest, Sha256};

/// SHA-256 (32 bytes) of a message payload as the API received it — its base64 text, not the
/// decoded bytes. A retry with the same `client_msg_no` and the same digest is the same send
/// (the original is returned); a different digest is a conflict. The command service computes
/// it for a send, the projector stores it beside the idempotency key, so both must use this one
/// function.
pub fn payload_digest(payload_b64: &str) -> Vec<u8> {
    Sha256::digest(payload_b64.as_bytes()).to_vec()
}

#[cfg(test)]
mod tests {
    use super::payload_digest;

    #[test]
    fn digest_is_sha256_of_the_base64_text() {
        // sha256("aGk=") — the text, not the decoded "hi".
        let hex: String = payload_digest("aGk=")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            hex,
            "96e3186af2815065fbc894de1bdadda7830527fffdba6bdd709789cf0ee79a6a"
        );
        assert_eq!(payload_digest("aGk=").len(), 32);
        assert_ne!(payload_digest("aGk="), payload_digest("aGk"));
    }
}
