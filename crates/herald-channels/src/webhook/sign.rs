//! Standard Webhooks signatures (`v1`): base64 HMAC-SHA256 over `{id}.{timestamp}.{body}`,
//! keyed with the base64-decoded `whsec_` secret, one `v1,<sig>` entry per secret so receivers
//! keep verifying while a secret is rotated.

use base64::Engine;
use base64::alphabet;
use base64::engine::general_purpose::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use hmac::{Hmac, Mac};
use sha2::Sha256;

const SECRET_PREFIX: &str = "whsec_";

/// Decodes secrets the way the reference libraries do: the `whsec_` prefix stripped, standard
/// base64 with or without padding (and lenient about unused trailing bits, like Python's).
const SECRET_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// The key bytes of a `whsec_` secret; `None` when it is not base64 or empty.
pub fn secret_key(secret: &str) -> Option<Vec<u8>> {
    let encoded = secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret).trim();
    SECRET_BASE64
        .decode(encoded.trim_end_matches('='))
        .ok()
        .filter(|key| !key.is_empty())
}

/// One `v1,<base64 signature>` entry.
pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// The `webhook-signature` header value: one entry per key, space-separated.
pub fn signature_header(keys: &[Vec<u8>], id: &str, timestamp: i64, body: &[u8]) -> String {
    keys.iter()
        .map(|key| sign(key, id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Rust reference library's `test_sign` vector (notes/protocols.md §4).
    const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    const ID: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
    const TS: i64 = 1_649_367_553;
    const BODY: &[u8] = br#"{"email":"test@example.com","username":"test_user"}"#;
    const EXPECTED: &str = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";

    #[test]
    fn the_reference_vector_signs_the_same() {
        let key = secret_key(SECRET).expect("the vector's secret decodes");
        assert_eq!(sign(&key, ID, TS, BODY), EXPECTED);
    }

    #[test]
    fn secrets_decode_with_or_without_prefix_and_padding() {
        let key = secret_key(SECRET).unwrap();
        assert_eq!(
            secret_key("C2FVsBQIhrscChlQIMV+b5sSYspob7oD").as_deref(),
            Some(&key[..])
        );
        // 4 bytes: "AAECAw==" padded, "AAECAw" unpadded.
        assert_eq!(secret_key("whsec_AAECAw==").unwrap(), [0, 1, 2, 3]);
        assert_eq!(secret_key("whsec_AAECAw").unwrap(), [0, 1, 2, 3]);
        assert_eq!(secret_key("whsec_"), None, "empty");
        assert_eq!(secret_key("whsec_not base64!"), None);
    }

    #[test]
    fn every_secret_gets_its_own_entry() {
        let keys = vec![secret_key(SECRET).unwrap(), vec![7u8; 32]];
        let header = signature_header(&keys, ID, TS, BODY);
        let entries: Vec<&str> = header.split(' ').collect();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0], EXPECTED);
        assert!(entries[1].starts_with("v1,") && entries[1] != EXPECTED);
    }
}
