//! Password hashing: Argon2id with a per-user random salt, stored as a PHC string that records
//! algorithm, version and parameters, so parameters can be raised later and old hashes still
//! verify (OWASP Password Storage Cheat Sheet; RFC 9106).

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use super::env::Rng;

/// OWASP's first recommended Argon2id configuration: 19 MiB, 2 iterations, 1 lane.
const M_COST_KIB: u32 = 19 * 1024;
const T_COST: u32 = 2;
const P_COST: u32 = 1;

pub const MIN_PASSWORD_LEN: usize = 8;

fn hasher() -> Argon2<'static> {
    let params = Params::new(M_COST_KIB, T_COST, P_COST, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

pub fn hash_password(rng: &dyn Rng, password: &str) -> Result<String, String> {
    let mut salt = [0u8; 16];
    rng.fill(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Verifies against the parameters recorded in `phc`. Constant time in the comparison.
pub fn verify_password(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Whether a stored hash was made with other (older, weaker) settings than today's: it still
/// verifies, and is replaced at the user's next successful login.
pub fn needs_rehash(phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return true;
    };
    let current = hasher();
    let p = current.params();
    let param = |name: &str| parsed.params.get_decimal(name);
    parsed.algorithm.as_str() != "argon2id"
        || parsed.version != Some(Version::V0x13 as u32)
        || param("m") != Some(p.m_cost())
        || param("t") != Some(p.t_cost())
        || param("p") != Some(p.p_cost())
}

/// Spends the same work as a real verification, so an unknown username is not told apart from a
/// wrong password by response time.
pub fn burn_verification(password: &str) {
    const DUMMY: &str =
        "$argon2id$v=19$m=19456,t=2,p=1$AAAAAAAAAAAAAAAAAAAAAA$ZvI2h6ZzE8bR3Gj3nH2v0LGmGcB1Kp6kEw2XWk1cmvw";
    let _ = verify_password(password, DUMMY);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::env::OsRng;

    #[test]
    fn hash_records_parameters_and_verifies() {
        let phc = hash_password(&OsRng, "correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify_password("correct horse", &phc));
        assert!(!verify_password("wrong horse", &phc));
        assert_ne!(
            phc,
            hash_password(&OsRng, "correct horse").unwrap(),
            "salt is per hash"
        );
    }

    #[test]
    fn old_parameters_still_verify() {
        let weak = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8, 1, 1, None).unwrap(),
        );
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        let phc = weak.hash_password(b"pw123456", &salt).unwrap().to_string();
        assert!(verify_password("pw123456", &phc));
        assert!(
            needs_rehash(&phc),
            "weaker parameters are upgraded at the next login"
        );
        assert!(!needs_rehash(&hash_password(&OsRng, "pw123456").unwrap()));
    }
}
