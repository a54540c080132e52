//! Group key material sealed at rest: wherever a stored JSON text carries a
//! `key-material` object (group records, client events, outbox requests, answers given to
//! partners), the object is replaced by `sealed-key-material`, its JSON encrypted with
//! AES-256-GCM under the system's storage key (a file beside the TLS key, not in the
//! database). A stolen database file alone reveals no GMK.

use base64::Engine as _;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom as _, SystemRandom};
use serde_json::Value;

use mcx_core::ports::{StoreError, StoreResult};

const PLAIN: &str = "key-material";
const SEALED: &str = "sealed-key-material";
/// Binds a sealed value to its purpose: it cannot be replayed as other data.
const AAD: &[u8] = b"mcx key-material v1";

/// Seals and opens key material; without a key, texts pass through unchanged (stores
/// opened by tools that never see key material).
pub(crate) struct Sealer {
    key: Option<LessSafeKey>,
    random: SystemRandom,
}

fn broken(what: impl std::fmt::Display) -> StoreError {
    StoreError {
        context: "sealed key material".into(),
        message: what.to_string(),
    }
}

impl Sealer {
    /// A sealer with a 32-byte key, or none.
    pub(crate) fn new(key: Option<&[u8; 32]>) -> StoreResult<Self> {
        let key = key
            .map(|k| {
                UnboundKey::new(&AES_256_GCM, k)
                    .map(LessSafeKey::new)
                    .map_err(|_| broken("the storage key is not a valid AES-256 key"))
            })
            .transpose()?;
        Ok(Self {
            key,
            random: SystemRandom::new(),
        })
    }

    /// The text to store for `json`.
    pub(crate) fn seal(&self, json: String) -> StoreResult<String> {
        let Some(key) = &self.key else {
            return Ok(json);
        };
        if !json.contains(PLAIN) {
            return Ok(json);
        }
        let mut value: Value = serde_json::from_str(&json).map_err(broken)?;
        self.seal_value(key, &mut value)?;
        serde_json::to_string(&value).map_err(broken)
    }

    fn seal_value(&self, key: &LessSafeKey, value: &mut Value) -> StoreResult<()> {
        match value {
            Value::Object(map) => {
                if let Some(plain) = map.remove(PLAIN) {
                    if plain.is_null() {
                        map.insert(PLAIN.into(), plain);
                    } else {
                        let mut data = serde_json::to_vec(&plain).map_err(broken)?;
                        let mut nonce = [0u8; NONCE_LEN];
                        self.random
                            .fill(&mut nonce)
                            .map_err(|_| broken("no randomness for a nonce"))?;
                        key.seal_in_place_append_tag(
                            Nonce::assume_unique_for_key(nonce),
                            Aad::from(AAD),
                            &mut data,
                        )
                        .map_err(|_| broken("sealing failed"))?;
                        let mut out = nonce.to_vec();
                        out.extend_from_slice(&data);
                        map.insert(
                            SEALED.into(),
                            Value::String(base64::engine::general_purpose::STANDARD.encode(out)),
                        );
                    }
                }
                for inner in map.values_mut() {
                    self.seal_value(key, inner)?;
                }
            }
            Value::Array(items) => {
                for inner in items {
                    self.seal_value(key, inner)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// The JSON a stored text stands for.
    pub(crate) fn open(&self, stored: String) -> StoreResult<String> {
        if !stored.contains(SEALED) {
            return Ok(stored);
        }
        let Some(key) = &self.key else {
            return Err(broken(
                "the data holds sealed key material but no storage key is configured",
            ));
        };
        let mut value: Value = serde_json::from_str(&stored).map_err(broken)?;
        open_value(key, &mut value)?;
        serde_json::to_string(&value).map_err(broken)
    }
}

fn open_value(key: &LessSafeKey, value: &mut Value) -> StoreResult<()> {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(sealed)) = map.remove(SEALED) {
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(sealed.as_bytes())
                    .map_err(broken)?;
                if raw.len() < NONCE_LEN {
                    return Err(broken("sealed key material is truncated"));
                }
                let (nonce, data) = raw.split_at(NONCE_LEN);
                let mut data = data.to_vec();
                let nonce = Nonce::try_assume_unique_for_key(nonce)
                    .map_err(|_| broken("a sealed nonce is malformed"))?;
                let plain = key
                    .open_in_place(nonce, Aad::from(AAD), &mut data)
                    .map_err(|_| {
                        broken("sealed key material does not open with this storage key")
                    })?;
                let plain: Value = serde_json::from_slice(plain).map_err(broken)?;
                map.insert(PLAIN.into(), plain);
            }
            for inner in map.values_mut() {
                open_value(key, inner)?;
            }
        }
        Value::Array(items) => {
            for inner in items {
                open_value(key, inner)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// A new random storage key.
pub fn new_storage_key() -> StoreResult<[u8; 32]> {
    let mut key = [0u8; 32];
    SystemRandom::new()
        .fill(&mut key)
        .map_err(|_| broken("no randomness for a storage key"))?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_material_is_sealed_wherever_it_is_and_opens_again() {
        let sealer = Sealer::new(Some(&[7u8; 32])).expect("a key");
        let text = r#"{"group":{"key-material":{"gmk":"c2VjcmV0"},"version":3},"list":[{"key-material":{"gmk":"b3RoZXI="}}]}"#;
        let stored = sealer.seal(text.to_string()).expect("sealed");
        assert!(
            !stored.contains("c2VjcmV0") && !stored.contains("b3RoZXI="),
            "{stored}"
        );
        assert!(stored.contains(SEALED));
        let opened: Value =
            serde_json::from_str(&sealer.open(stored.clone()).expect("opens")).expect("JSON");
        assert_eq!(opened, serde_json::from_str::<Value>(text).expect("JSON"));
        // Another key does not open it; nothing to seal passes through.
        let other = Sealer::new(Some(&[8u8; 32])).expect("a key");
        assert!(other.open(stored).is_err());
        assert_eq!(sealer.seal("{\"a\":1}".into()).expect("kept"), "{\"a\":1}");
    }
}
