//! JWTs that clients sign and we verify (RFC 7523): the JWT bearer grant's `assertion` (§2.1)
//! and `private_key_jwt` client assertions (§2.2, OIDC Core §9), with the key registered on the
//! app (`keys/public.rs`).
//!
//! RFC 7523 §3, in order, with Salesforce's leniencies (salesforce-reference.md §5):
//! 1. The JWS: `alg` RS256 or ES256 and the registered key's; never `none`, never an HMAC (a
//!    public key used as an HMAC secret, RFC 8725 §2.1); no `crit` we do not understand.
//! 2. The signature, with a registered key of that algorithm (the one its `kid` names, when
//!    both name one).
//! 3. `iss`, `sub`, `aud` (a string or an array; one value must be ours).
//! 4. `exp`: seconds since the epoch, or milliseconds (sfdx-core sends `Date.now() + 300`), as a
//!    number or a numeric string (simple-salesforce) — never past, and never more than
//!    [`MAX_LIFETIME_S`] ahead whatever the unit; `nbf` and `iat`, when present, not ahead.
//! 5. `jti`, when present (required for client assertions): used once, remembered until the
//!    latest instant the assertion could still be accepted.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{Map, Value};

use crate::core::config::Ctx;
use crate::core::keys::{parse_public_keys, PublicKey};
use crate::core::secret::{hex, sha256, SecretHash};
use crate::core::storage::{Store, StoreError};

/// The longest an assertion may be valid ahead: Salesforce's is 3 minutes, but clients send up
/// to 5 (sfdx-core's `+ 300`) and libraries default higher; 10 minutes bounds what a stolen
/// assertion is worth and how long a `jti` is remembered.
pub const MAX_LIFETIME_S: u64 = 600;
/// Clock skew tolerated on `exp`, `nbf` and `iat` (RFC 7519 §4.1.4 "some small leeway").
pub const LEEWAY_S: u64 = 30;
/// A numeric `exp` above this is in milliseconds: as seconds it would be after the year 5000.
const MILLIS_ABOVE: f64 = 1e11;

/// Why an assertion was refused; the description is safe to show the caller.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    Invalid(String),
    Replayed,
    Store(StoreError),
}

impl From<StoreError> for Refusal {
    fn from(e: StoreError) -> Self {
        Refusal::Store(e)
    }
}

fn invalid(why: impl Into<String>) -> Refusal {
    Refusal::Invalid(why.into())
}

/// What the assertion must satisfy besides its signature.
pub struct Expect<'a> {
    /// `aud` values accepted (any one of them).
    pub audiences: &'a [String],
    /// Client assertions must carry a `jti` (OIDC Core §9); bearer assertions may.
    pub require_jti: bool,
}

/// A verified assertion's claims.
#[derive(Debug)]
pub struct Verified {
    pub iss: String,
    pub sub: String,
    pub claims: Map<String, Value>,
}

/// A compact JWS split, its header and claims decoded, nothing verified.
pub struct Untrusted<'a> {
    header: Map<String, Value>,
    claims: Map<String, Value>,
    signing_input: &'a str,
    signature: Vec<u8>,
}

impl<'a> Untrusted<'a> {
    pub fn parse(jwt: &'a str) -> Result<Self, Refusal> {
        let mut parts = jwt.trim().split('.');
        let (Some(h), Some(c), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid("the assertion is not a signed JWT (three parts)"));
        };
        let object = |part: &str, what: &str| -> Result<Map<String, Value>, Refusal> {
            URL_SAFE_NO_PAD
                .decode(part)
                .ok()
                .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
                .and_then(|v| match v {
                    Value::Object(m) => Some(m),
                    _ => None,
                })
                .ok_or_else(|| invalid(format!("the assertion's {what} is not a JSON object")))
        };
        let header = object(h, "header")?;
        let claims = object(c, "claims")?;
        let signature = URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|_| invalid("the assertion's signature is not base64url"))?;
        let signing_input = &jwt.trim()[..h.len() + 1 + c.len()];
        Ok(Self {
            header,
            claims,
            signing_input,
            signature,
        })
    }

    /// The header's `typ`.
    pub fn typ(&self) -> Option<&str> {
        self.header.get("typ").and_then(Value::as_str)
    }

    /// The header's `alg` (empty when absent).
    pub fn kid(&self) -> Option<&str> {
        self.header.get("kid").and_then(Value::as_str)
    }

    pub fn alg(&self) -> &str {
        self.header.get("alg").and_then(Value::as_str).unwrap_or("")
    }

    /// The claims, unverified.
    pub fn claims(&self) -> &Map<String, Value> {
        &self.claims
    }

    /// A string claim, before verification (to find the app whose key verifies it).
    pub fn claim(&self, name: &str) -> Option<&str> {
        self.claims.get(name).and_then(Value::as_str)
    }
}

/// Steps 1 and 2: the JWS header, and a signature by one of `keys` (the one its `kid` names,
/// when both name one) of the header's algorithm.
pub async fn check_signature<S: Store>(
    ctx: &Ctx<'_, S>,
    jwt: &Untrusted<'_>,
    keys: &[PublicKey],
) -> Result<(), Refusal> {
    let alg = jwt.alg();
    match alg {
        "RS256" | "ES256" => {}
        "none" | "" => return Err(invalid("unsigned assertions (alg none) are refused")),
        a if a.starts_with("HS") => {
            return Err(invalid(
                "HMAC-signed assertions are refused: sign with the private key",
            ))
        }
        other => return Err(invalid(format!("assertion alg {other} is not supported"))),
    }
    if jwt.header.contains_key("crit") {
        return Err(invalid("the assertion's crit header is not understood"));
    }
    let kid = jwt.header.get("kid").and_then(Value::as_str);
    let candidates: Vec<&PublicKey> = keys
        .iter()
        .filter(|k| k.alg.name() == alg)
        .filter(|k| match (kid, &k.kid) {
            (Some(want), Some(have)) => want == have,
            _ => true,
        })
        .collect();
    if candidates.is_empty() {
        return Err(invalid(format!(
            "no registered key verifies {alg} assertions"
        )));
    }
    let verifier = &ctx.config.signatures.0;
    for key in candidates {
        let ok = verifier
            .verify(key, jwt.signing_input.as_bytes(), &jwt.signature)
            .await
            .map_err(|e| Refusal::Store(StoreError::Backend(e.0)))?;
        if ok {
            return Ok(());
        }
    }
    Err(invalid("invalid assertion signature"))
}

/// Verifies `jwt` against the keys registered in `certificate` (RFC 7523 §3) and, when it has
/// a `jti`, claims it.
pub async fn verify<S: Store>(
    ctx: &Ctx<'_, S>,
    jwt: &Untrusted<'_>,
    certificate: Option<&str>,
    expect: &Expect<'_>,
) -> Result<Verified, Refusal> {
    let keys = certificate
        .map(parse_public_keys)
        .transpose()
        .map_err(|_| invalid("the app's registered certificate is unusable"))?
        .ok_or_else(|| invalid("the app has no certificate to verify assertions with"))?;
    check_signature(ctx, jwt, &keys).await?;
    // 3. Who issued it, about whom, for whom.
    let c = &jwt.claims;
    let string = |name: &str| -> Result<String, Refusal> {
        c.get(name)
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| invalid(format!("the assertion has no {name}")))
    };
    let iss = string("iss")?;
    let sub = string("sub")?;
    let ours = |v: &Value| {
        v.as_str()
            .is_some_and(|a| expect.audiences.iter().any(|e| e == a))
    };
    let aud_ok = match c.get("aud") {
        Some(Value::Array(values)) => values.iter().any(ours),
        Some(v) => ours(v),
        None => false,
    };
    if !aud_ok {
        return Err(invalid(format!(
            "the assertion's audience must be {}",
            expect
                .audiences
                .first()
                .map_or("this server", String::as_str)
        )));
    }
    // 4. When.
    let now_ms = ctx.clock.now_ms();
    let exp_ms =
        instant_ms(c.get("exp")).ok_or_else(|| invalid("the assertion has no valid exp"))?;
    if exp_ms + LEEWAY_S * 1000 <= now_ms {
        return Err(invalid("the assertion has expired"));
    }
    if exp_ms > now_ms + (MAX_LIFETIME_S + LEEWAY_S) * 1000 {
        return Err(invalid(format!(
            "the assertion's exp is more than {} minutes ahead",
            MAX_LIFETIME_S / 60
        )));
    }
    for name in ["nbf", "iat"] {
        match c.get(name) {
            None => {}
            Some(v) => match instant_ms(Some(v)) {
                Some(at) if at <= now_ms + LEEWAY_S * 1000 => {}
                Some(_) => return Err(invalid(format!("the assertion's {name} is in the future"))),
                None => return Err(invalid(format!("the assertion's {name} is not a time"))),
            },
        }
    }
    // 5. Used once.
    match c.get("jti") {
        Some(Value::String(jti)) if !jti.is_empty() && jti.len() <= 256 => {
            let key = jti_key(&iss, jti);
            let keep_until_s = exp_ms.div_ceil(1000) + LEEWAY_S;
            if !ctx.store.claim_jti(&key, keep_until_s).await? {
                return Err(Refusal::Replayed);
            }
        }
        None if !expect.require_jti => {}
        None => return Err(invalid("the assertion has no jti")),
        Some(_) => {
            return Err(invalid(
                "the assertion's jti must be a string of 1 to 256 characters",
            ))
        }
    }
    Ok(Verified {
        iss,
        sub,
        claims: c.clone(),
    })
}

/// The marker of `jti` from `iss`: distinct issuers' `jti`s never collide.
fn jti_key(iss: &str, jti: &str) -> SecretHash {
    let mut input = Vec::with_capacity(iss.len() + jti.len() + 1);
    input.extend_from_slice(iss.as_bytes());
    input.push(0);
    input.extend_from_slice(jti.as_bytes());
    SecretHash(hex(&sha256(&input)))
}

/// A NumericDate (RFC 7519 §2) as milliseconds, from seconds or milliseconds, a number or a
/// numeric string; `None` for anything else or a negative time.
pub fn instant_ms(v: Option<&Value>) -> Option<u64> {
    let n = match v? {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    if !n.is_finite() || n < 0.0 {
        return None;
    }
    let ms = if n > MILLIS_ABOVE { n } else { n * 1000.0 };
    // Far beyond any accepted time; saturates rather than overflows.
    Some(ms.min(u64::MAX as f64 / 2.0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_in_seconds_milliseconds_and_strings_is_read_as_one_instant() {
        let at = 1_790_000_000u64;
        for v in [
            serde_json::json!(at),
            serde_json::json!(at as f64 + 0.5),
            serde_json::json!(at * 1000),
            serde_json::json!(at.to_string()),
            serde_json::json!(format!("{}", at * 1000)),
        ] {
            let ms = instant_ms(Some(&v)).unwrap();
            assert!(ms / 1000 == at, "{v}: {ms}");
        }
        for bad in [
            serde_json::json!(-5),
            serde_json::json!("soon"),
            serde_json::json!(null),
            serde_json::json!([1]),
        ] {
            assert_eq!(instant_ms(Some(&bad)), None, "{bad}");
        }
    }

    #[test]
    fn jti_markers_of_different_issuers_differ() {
        assert_ne!(jti_key("a", "bc"), jti_key("ab", "c"));
        assert_eq!(jti_key("a", "b"), jti_key("a", "b"));
    }

    #[test]
    fn only_three_part_jws_parse() {
        for bad in [
            "",
            "a.b",
            "a.b.c.d",
            "e30.e30.!!",
            "W10.e30.",
            "e30.bm90.e30",
        ] {
            assert!(Untrusted::parse(bad).is_err(), "{bad}");
        }
        let ok = Untrusted::parse("e30.eyJpc3MiOiJ4In0.").unwrap();
        assert_eq!(ok.claim("iss"), Some("x"));
    }
}
