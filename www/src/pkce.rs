//! PKCE (RFC 7636) and the random values of a login: 32 bytes from `crypto.getRandomValues`
//! (256 bits), base64url, for the verifier, `state` and `nonce` alike.

use crate::{b64, web};
use alloc::string::String;

pub fn random_token() -> web::Res<String> {
    Ok(b64::encode(&web::random_bytes(32)?))
}

/// `code_challenge` for `S256`: base64url(SHA-256(verifier)).
pub async fn challenge(verifier: &str) -> web::Res<String> {
    Ok(b64::encode(&web::sha256(verifier.as_bytes()).await?))
}
