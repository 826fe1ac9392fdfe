//! RFC 8291 message encryption with the `aes128gcm` content coding (RFC 8188), as one record.
//!
//! ```text
//! ecdh_secret = ECDH(as_private, ua_public)
//! IKM   = HKDF(salt = auth_secret, ikm = ecdh_secret,
//!              info = "WebPush: info" || 0x00 || ua_public || as_public, L = 32)
//! CEK   = HKDF(salt, IKM, "Content-Encoding: aes128gcm" || 0x00, 16)
//! NONCE = HKDF(salt, IKM, "Content-Encoding: nonce" || 0x00, 12)
//! body  = salt(16) || rs(u32 BE) || idlen(1) = 65 || as_public(65)
//!         || AES-128-GCM(CEK, NONCE, plaintext || 0x02)
//! ```
//!
//! Every message has its own random salt and its own ephemeral application-server key pair
//! (never the VAPID key: RFC 8292 §3.2).

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes128Gcm, Nonce};
use hkdf::Hkdf;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::{PublicKey, SecretKey};
use rand::RngCore;
use sha2::Sha256;

/// The record size written in the header (the RFC 8291 example's value).
pub const RECORD_SIZE: u32 = 4096;
/// RFC 8291 §4: a push service need not accept more than 4096 octets of body; less the
/// 86-octet header, the padding delimiter and the 16-octet tag, that is 3993 octets of
/// plaintext.
pub const MAX_PLAINTEXT: usize = 3993;

/// The header: salt, record size, key id length and the sender's public key.
pub const HEADER_LEN: usize = 16 + 4 + 1 + 65;

/// Why a message could not be encrypted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EceError {
    #[error("the subscription's p256dh is not an uncompressed P-256 public key")]
    BadPublicKey,
    #[error("the subscription's auth secret is not 16 bytes")]
    BadAuthSecret,
    #[error("the plaintext is {0} bytes; at most 3993 fit in one Web Push message")]
    TooLong(usize),
}

/// A fresh P-256 secret key from the operating system's generator.
pub fn random_secret_key() -> SecretKey {
    loop {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        // Fails only for zero or values ≥ the group order (probability ~2^-32).
        if let Ok(key) = SecretKey::from_slice(&bytes) {
            return key;
        }
    }
}

/// Encrypts `plaintext` for the subscription's `ua_public` (65 bytes, uncompressed) and
/// `auth_secret` (16 bytes) with a random salt and a fresh ephemeral key.
pub fn encrypt(
    plaintext: &[u8],
    ua_public: &[u8],
    auth_secret: &[u8],
) -> Result<Vec<u8>, EceError> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    encrypt_with(
        plaintext,
        ua_public,
        auth_secret,
        &salt,
        &random_secret_key(),
    )
}

/// [`encrypt`] with the salt and the sender's key given (the RFC vector test injects them).
pub fn encrypt_with(
    plaintext: &[u8],
    ua_public: &[u8],
    auth_secret: &[u8],
    salt: &[u8; 16],
    as_secret: &SecretKey,
) -> Result<Vec<u8>, EceError> {
    if plaintext.len() > MAX_PLAINTEXT {
        return Err(EceError::TooLong(plaintext.len()));
    }
    if ua_public.len() != 65 || ua_public[0] != 0x04 {
        return Err(EceError::BadPublicKey);
    }
    let ua_key = PublicKey::from_sec1_bytes(ua_public).map_err(|_| EceError::BadPublicKey)?;
    if auth_secret.len() != 16 {
        return Err(EceError::BadAuthSecret);
    }
    let as_public = as_secret.public_key().to_encoded_point(false);
    let as_public = as_public.as_bytes();

    let shared = p256::ecdh::diffie_hellman(as_secret.to_nonzero_scalar(), ua_key.as_affine());

    let mut key_info = Vec::with_capacity(14 + 65 + 65);
    key_info.extend_from_slice(b"WebPush: info\0");
    key_info.extend_from_slice(ua_public);
    key_info.extend_from_slice(as_public);
    let mut ikm = [0u8; 32];
    Hkdf::<Sha256>::new(Some(auth_secret), shared.raw_secret_bytes())
        .expand(&key_info, &mut ikm)
        .expect("32 bytes is a valid HKDF-SHA-256 length");

    let prk = Hkdf::<Sha256>::new(Some(salt), &ikm);
    let mut cek = [0u8; 16];
    let mut nonce = [0u8; 12];
    prk.expand(b"Content-Encoding: aes128gcm\0", &mut cek)
        .expect("16 bytes is a valid HKDF-SHA-256 length");
    prk.expand(b"Content-Encoding: nonce\0", &mut nonce)
        .expect("12 bytes is a valid HKDF-SHA-256 length");

    // One record, the last: the plaintext and the 0x02 delimiter, no further padding.
    let mut record = Vec::with_capacity(plaintext.len() + 1);
    record.extend_from_slice(plaintext);
    record.push(0x02);
    let cipher = Aes128Gcm::new_from_slice(&cek).expect("the key is 16 bytes");
    let sealed = cipher
        .encrypt(Nonce::from_slice(&nonce), record.as_slice())
        .expect("AES-GCM encrypts any record under 64 GiB");

    let mut body = Vec::with_capacity(HEADER_LEN + sealed.len());
    body.extend_from_slice(salt);
    body.extend_from_slice(&RECORD_SIZE.to_be_bytes());
    body.push(65);
    body.extend_from_slice(as_public);
    body.extend_from_slice(&sealed);
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    fn b64(s: &str) -> Vec<u8> {
        URL_SAFE_NO_PAD.decode(s).unwrap()
    }

    /// RFC 8291 Appendix A, byte for byte.
    #[test]
    fn the_rfc_8291_example_body_is_reproduced() {
        let as_secret =
            SecretKey::from_slice(&b64("yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw")).unwrap();
        assert_eq!(
            as_secret.public_key().to_encoded_point(false).as_bytes(),
            b64(
                "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8"
            )
        );
        let salt: [u8; 16] = b64("DGv6ra1nlYgDCS1FRnbzlw").try_into().unwrap();
        let body = encrypt_with(
            b"When I grow up, I want to be a watermelon",
            &b64(
                "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4",
            ),
            &b64("BTBZMqHH6r4Tts7J_aSIgg"),
            &salt,
            &as_secret,
        )
        .unwrap();
        assert_eq!(
            URL_SAFE_NO_PAD.encode(&body),
            "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN"
        );
        assert_eq!(body.len(), 144);
    }

    #[test]
    fn every_message_has_its_own_salt_and_key_and_the_limit_is_3993_bytes() {
        let ua = random_secret_key().public_key().to_encoded_point(false);
        let auth = [7u8; 16];
        let a = encrypt(b"hi", ua.as_bytes(), &auth).unwrap();
        let b = encrypt(b"hi", ua.as_bytes(), &auth).unwrap();
        assert_ne!(a[..16], b[..16], "salt");
        assert_ne!(a[21..86], b[21..86], "ephemeral key");
        let full = encrypt(&[b'x'; MAX_PLAINTEXT], ua.as_bytes(), &auth).unwrap();
        assert_eq!(full.len(), 4096);
        assert_eq!(
            encrypt(&[b'x'; MAX_PLAINTEXT + 1], ua.as_bytes(), &auth),
            Err(EceError::TooLong(MAX_PLAINTEXT + 1))
        );
        assert_eq!(
            encrypt(b"hi", &ua.as_bytes()[..33], &auth),
            Err(EceError::BadPublicKey)
        );
        assert_eq!(
            encrypt(b"hi", ua.as_bytes(), &auth[..8]),
            Err(EceError::BadAuthSecret)
        );
    }
}
