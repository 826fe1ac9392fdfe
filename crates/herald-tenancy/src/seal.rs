//! Secrets at rest. App and tenant secrets are sealed with AES-256-GCM under the master key
//! before they reach the store. The associated data binds a sealed blob to its owner
//! (`app:<tenant>:<app>`), so a blob copied onto another row does not open.
//!
//! Format: `0x01 ‖ nonce(12) ‖ ciphertext+tag`.

use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;

const VERSION: u8 = 1;

#[derive(Clone)]
pub struct Sealer {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("sealed data is corrupt or was sealed with another master key")]
    Open,
    #[error("master key: {0}")]
    Key(String),
}

impl Sealer {
    pub fn new(key: [u8; 32]) -> Self {
        Self {
            cipher: Aes256Gcm::new(&key.into()),
        }
    }

    /// The master key from config, else from `file`, generating it (mode 0600) if absent.
    pub fn load_or_create(inline: Option<&str>, file: &Path) -> Result<Sealer, SealError> {
        if let Some(inline) = inline {
            return decode_key(inline).map(Sealer::new);
        }
        if file.exists() {
            let text = std::fs::read_to_string(file)
                .map_err(|e| SealError::Key(format!("cannot read {}: {e}", file.display())))?;
            return decode_key(text.trim()).map(Sealer::new);
        }
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        crate::fsutil::write_private(file, STANDARD.encode(key).as_bytes())
            .map_err(|e| SealError::Key(format!("cannot write {}: {e}", file.display())))?;
        Ok(Sealer::new(key))
    }

    pub fn seal(&self, context: &str, plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; 12];
        rand::rng().fill_bytes(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: context.as_bytes(),
                },
            )
            .expect("AES-GCM encryption cannot fail for in-memory buffers");
        let mut out = Vec::with_capacity(1 + 12 + sealed.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    pub fn open(&self, context: &str, sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        if sealed.len() < 1 + 12 + 16 || sealed[0] != VERSION {
            return Err(SealError::Open);
        }
        let (nonce, body) = sealed[1..].split_at(12);
        self.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: body,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| SealError::Open)
    }
}

fn decode_key(text: &str) -> Result<[u8; 32], SealError> {
    let bytes = STANDARD
        .decode(text)
        .map_err(|_| SealError::Key("must be base64".into()))?;
    bytes
        .try_into()
        .map_err(|_| SealError::Key("must be 32 bytes".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_data_opens_only_in_its_context() {
        let sealer = Sealer::new([7; 32]);
        let blob = sealer.seal("app:t:a", b"secret");
        assert!(!blob.windows(6).any(|w| w == b"secret"));
        assert_eq!(sealer.open("app:t:a", &blob).unwrap(), b"secret");
        assert!(sealer.open("app:t:b", &blob).is_err());
        assert!(Sealer::new([8; 32]).open("app:t:a", &blob).is_err());
    }

    #[test]
    fn a_generated_key_is_reused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("master.key");
        let blob = Sealer::load_or_create(None, &file).unwrap().seal("c", b"x");
        assert_eq!(
            Sealer::load_or_create(None, &file)
                .unwrap()
                .open("c", &blob)
                .unwrap(),
            b"x"
        );
    }
}
