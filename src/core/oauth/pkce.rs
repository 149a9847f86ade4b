//! PKCE (RFC 7636), S256 only.
//!
//! Salesforce clients send `code_challenge` without `code_challenge_method`, meaning S256
//! (salesforce-reference.md §1.1), and 171-character verifiers (§1.2), past RFC 7636's 128.
//! `plain` is refused: it would let an attacker who sees the authorization request downgrade
//! the protection (RFC 9700 §2.1.1).

use super::error::OAuthError;
use crate::core::config::Ctx;
use crate::core::model::App;
use crate::core::org::org_settings;
use crate::core::secret::{b64url, ct_eq, sha256};
use crate::core::storage::{Store, StoreError};

/// Longest verifier accepted: Salesforce's 171 characters with room to spare.
const MAX_VERIFIER_LEN: usize = 256;

/// Validates the authorization request's PKCE parameters; returns the challenge to bind.
pub fn parse_challenge(
    challenge: Option<&str>,
    method: Option<&str>,
) -> Result<Option<String>, OAuthError> {
    match (challenge, method) {
        (None, None) => Ok(None),
        (None, Some(_)) => Err(OAuthError::invalid_request(
            "code_challenge_method without code_challenge",
        )),
        (Some(_), Some(m)) if m != "S256" => Err(OAuthError::invalid_request(
            "code_challenge_method must be S256",
        )),
        (Some(c), _) => {
            // base64url(SHA-256(...)) without padding is always 43 characters.
            if c.len() != 43 || !c.bytes().all(is_b64url) {
                return Err(OAuthError::invalid_request(
                    "code_challenge is not a base64url SHA-256 value",
                ));
            }
            Ok(Some(c.to_owned()))
        }
    }
}

/// RFC 7636 §4.6 at the token endpoint. A verifier without a bound challenge fails too: a
/// client that sends one expected PKCE protection that was never in place.
pub fn verify(challenge: Option<&str>, verifier: Option<&str>) -> Result<(), OAuthError> {
    match (challenge, verifier) {
        (None, None) => Ok(()),
        (Some(_), None) => Err(OAuthError::invalid_grant("code_verifier required")),
        (None, Some(_)) => Err(OAuthError::invalid_grant(
            "code_verifier sent but the authorization request had no code_challenge",
        )),
        (Some(challenge), Some(verifier)) => {
            if verifier.len() < 43
                || verifier.len() > MAX_VERIFIER_LEN
                || !verifier.bytes().all(is_unreserved)
            {
                return Err(OAuthError::invalid_grant("invalid code verifier"));
            }
            if ct_eq(&b64url(&sha256(verifier.as_bytes())), challenge) {
                Ok(())
            } else {
                Err(OAuthError::invalid_grant("invalid code verifier"))
            }
        }
    }
}

/// Whether PKCE is required (app `pkce_required` or org `require_pkce`) but `challenge` is
/// missing. Reads the org settings only when it has to: with a challenge, nothing is missing.
pub async fn missing_but_required<S: Store>(
    ctx: &Ctx<'_, S>,
    app: &App,
    challenge: Option<&str>,
) -> Result<bool, StoreError> {
    if challenge.is_some() {
        return Ok(false);
    }
    Ok(app.policy.pkce_required || org_settings(ctx).await?.require_pkce)
}

fn is_b64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// RFC 7636 §4.1: `[A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~"`.
fn is_unreserved(b: u8) -> bool {
    is_b64url(b) || b == b'.' || b == b'~'
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7636 Appendix B.
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn rfc7636_appendix_b_vector_verifies() {
        assert!(verify(Some(CHALLENGE), Some(VERIFIER)).is_ok());
        assert!(parse_challenge(Some(CHALLENGE), None).unwrap().is_some());
    }

    #[test]
    fn mismatch_and_missing_verifier_fail() {
        assert!(verify(Some(CHALLENGE), Some(&VERIFIER.replace('d', "e"))).is_err());
        assert!(verify(Some(CHALLENGE), None).is_err());
        assert!(verify(None, Some(VERIFIER)).is_err());
    }

    #[test]
    fn salesforce_171_character_verifier_is_accepted() {
        let verifier = "a".repeat(171);
        let challenge = b64url(&sha256(verifier.as_bytes()));
        assert!(verify(Some(&challenge), Some(&verifier)).is_ok());
    }

    #[test]
    fn plain_method_is_a_refused_downgrade() {
        assert!(parse_challenge(Some(VERIFIER), Some("plain")).is_err());
    }
}
