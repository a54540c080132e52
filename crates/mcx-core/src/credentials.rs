//! Password credentials: Argon2id PHC strings (RFC 9106, the PHC string format), verified
//! in constant work whether or not the user exists.

use std::sync::OnceLock;

use argon2::{Argon2, PasswordHash, PasswordHasher as _, PasswordVerifier as _};

/// A password as an Argon2id PHC string with the crate's recommended parameters and a
/// random salt: what `mcx passwd` prints and a configuration holds.
pub fn hash_password(password: &str) -> Result<String, String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| format!("cannot hash the password: {e}"))
}

/// A password hashed with explicit Argon2id costs (memory in KiB, passes). Cheaper than
/// the default only where many log-ons are the point and the credentials are throwaway
/// (`mcx bench`); a deployment uses [`hash_password`].
pub fn hash_password_with_cost(
    password: &str,
    memory_kib: u32,
    passes: u32,
) -> Result<String, String> {
    let params = argon2::Params::new(memory_kib, passes, 1, None)
        .map_err(|e| format!("invalid Argon2 parameters: {e}"))?;
    Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| format!("cannot hash the password: {e}"))
}

/// Whether `text` is an Argon2 PHC string this build can verify.
pub fn is_password_hash(text: &str) -> bool {
    text.starts_with("$argon2") && PasswordHash::new(text).is_ok()
}

/// Whether `password` matches the PHC string `hash`. A malformed hash matches nothing.
pub fn verify_password(hash: &str, password: &str) -> bool {
    match PasswordHash::new(hash) {
        // The parameters come from the PHC string itself.
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Spends the work of one verification against a fixed hash: an unknown user costs what
/// a known one does, so the answer's timing does not tell who exists.
pub fn verify_nobody(password: &str) {
    static DUMMY: OnceLock<String> = OnceLock::new();
    // Hashing a constant with the default parameters cannot fail.
    let hash = DUMMY.get_or_init(|| hash_password("mcx: no such user").unwrap_or_default());
    let _ = verify_password(hash, password);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only() {
        let hash = hash_password("correct horse").expect("hashes");
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(is_password_hash(&hash));
        assert!(verify_password(&hash, "correct horse"));
        assert!(!verify_password(&hash, "correct horse "));
        assert!(!verify_password("not a hash", "correct horse"));
        assert!(!is_password_hash("alice"));
        assert_ne!(
            hash,
            hash_password("correct horse").expect("hashes"),
            "salted"
        );
    }
}
