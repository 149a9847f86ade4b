//! Minting access, refresh and ID tokens, and the token response of CONTRACT §2.

use serde::Serialize;

use super::error::OAuthError;
use super::scope::ScopeSet;
use super::stamp::STAMP_LEN;
use crate::core::audit::{AuditEvent, Kind as AuditKind};
use crate::core::config::Ctx;
use crate::core::http::{Params, Request, Response};
use crate::core::keys::{TYP_ACCESS_TOKEN, TYP_ID_TOKEN};
use crate::core::model::{App, NamedRefreshPolicy, RefreshTokenPolicy};
use crate::core::secret::{b64url, salesforce_signature, sha256, Secret, SecretHash};
use crate::core::storage::{
    AccessCopy, Family, Issue, Route, Store, StoreError, TokenKind, TokenRecord, TokenState,
    UserClaims,
};

/// The identity URL of a user: `sub` of ID tokens and `id` of token responses.
pub fn identity_url<S: Store>(ctx: &Ctx<'_, S>, org_id: &str, user_id: &str) -> String {
    ctx.url(&format!("/id/{org_id}/{user_id}"))
}

/// Freshly minted tokens: the values for the response and the records (hashes) to store.
pub struct Minted {
    pub access: Secret,
    pub refresh: Option<Secret>,
    pub records: Vec<TokenRecord>,
    /// The access token's edge copy, published beside the records (see [`publish`]).
    pub copy: (SecretHash, AccessCopy),
}

/// Whether the app's policy lets a refresh token be issued for `scopes`
/// (salesforce-reference.md §1.2: `refresh_token`/`offline_access` granted, policy not `zero`),
/// and, for a client that registered itself, whether it registered the refresh grant (a token
/// it could not use is not issued).
pub fn refresh_allowed(app: &App, scopes: &ScopeSet) -> bool {
    scopes.allows_refresh()
        && app.policy.refresh_token_policy != RefreshTokenPolicy::Named(NamedRefreshPolicy::Zero)
        && app.allows_grant("refresh_token")
}

/// An access token — opaque `{org_id}!{route}{random}{stamp}` (Salesforce's shape, §0.4, with
/// 244 bits of randomness and an age stamp, see `stamp.rs`), or a JWT — and, when asked for, a
/// refresh token `{route}{random}` of 64 base62 characters (369 random bits). Every token starts
/// (after the org prefix, or in its `jti`) with its family's route (`storage/route.rs`).
pub async fn mint<S: Store>(
    ctx: &Ctx<'_, S>,
    grant: &Grant<'_>,
    family_id: &str,
    with_refresh: bool,
) -> Result<Minted, OAuthError> {
    let now = ctx.now_s();
    let app = grant.app;
    let route = Route::of_key(family_id).unwrap_or(Route(0)).encode();
    let routed = |len: usize| format!("{route}{}", Secret::random_base62(ctx.rng, len).expose());
    let access = if app.policy.jwt_access_tokens {
        jwt_access_token(ctx, grant, routed(22)).await?
    } else {
        let random = routed(41);
        Secret::new(format!(
            "{}!{random}{}",
            grant.org_id,
            age_stamp(ctx, &random)
        ))
    };
    let expires_at_s = now + app.policy.access_token_ttl_s;
    let record = |secret: &Secret, kind, expires_at_s| TokenRecord {
        hash: secret.hash(),
        family_id: family_id.to_owned(),
        kind,
        scopes: grant.scopes.to_vec(),
        created_at_s: now,
        expires_at_s,
        state: TokenState::Active,
    };
    let mut records = vec![record(&access, TokenKind::Access, Some(expires_at_s))];
    let refresh = with_refresh.then(|| Secret::new(routed(62)));
    if let Some(r) = &refresh {
        // Refresh expiry follows the app's policy at presentation time (§3), not a stored date.
        records.push(record(r, TokenKind::Refresh, None));
    }
    let copy = AccessCopy {
        family_id: family_id.to_owned(),
        client_id: app.client_id.clone(),
        user_id: grant.user_id.to_owned(),
        scopes: grant.scopes.to_vec(),
        created_at_s: now,
        expires_at_s,
        user: grant.claims.clone(),
        resource: grant.resource.map(str::to_owned),
    };
    Ok(Minted {
        copy: (access.hash(), copy),
        access,
        refresh,
        records,
    })
}

/// The age stamp of a token minted now; without usable signing keys there is no stamp key, and
/// the token gets a random tail instead (it is then never looked up in its shard, only by its
/// copy).
fn age_stamp<S: Store>(ctx: &Ctx<'_, S>, random: &str) -> String {
    match &ctx.config.stamp_key {
        Some(key) => key.stamp(random, ctx.now_s()),
        None => Secret::random_base62(ctx.rng, STAMP_LEN)
            .expose()
            .to_owned(),
    }
}

/// The new family `minted` starts (with the hybrid `web_sessions` tied to it), as its shard
/// stores it: the grant's client, user, scopes and claims, used now.
pub fn first_issue<S: Store>(
    ctx: &Ctx<'_, S>,
    grant: &Grant<'_>,
    family_id: &str,
    minted: &Minted,
    web_sessions: Vec<SecretHash>,
) -> Issue {
    Issue {
        family: Family {
            family_id: family_id.to_owned(),
            client_id: grant.app.client_id.clone(),
            user_id: grant.user_id.to_owned(),
            scopes: grant.scopes.to_vec(),
            auth_time_s: grant.auth_time_s,
            created_at_s: ctx.now_s(),
            last_used_at_ms: ctx.clock.now_ms(),
            revoked_at_s: None,
            resource: grant.resource.map(str::to_owned),
        },
        user: grant.claims.clone(),
        tokens: minted.records.clone(),
        web_sessions,
    }
}

/// Drops the edge copy of an access token that was not issued after all (nobody has seen it).
pub async fn unpublish<S: Store>(ctx: &Ctx<'_, S>, minted: &Minted) -> Result<(), StoreError> {
    ctx.store
        .drop_access_copies(std::slice::from_ref(&minted.copy.0))
        .await
}

/// Stores the edge copy of a freshly issued access token. Published before the shard write that
/// issues it (or beside it): a copy of a token that was then not issued is never seen by
/// anyone, while a token whose copy failed would stop validating once it is no longer young.
pub async fn publish<S: Store>(ctx: &Ctx<'_, S>, minted: &Minted) -> Result<(), StoreError> {
    let (hash, copy) = &minted.copy;
    ctx.store.put_access_copy(hash, copy).await
}

/// A secret of the family `family_id`, `{route}{random}`, kept in the family's shard (a hybrid
/// web session's `sid`).
pub fn family_secret(family_id: &str, random: &Secret) -> Secret {
    let route = Route::of_key(family_id).unwrap_or(Route(0)).encode();
    Secret::new(format!("{route}{}", random.expose()))
}

/// A new family id, `{route}{random 22}`: its route is picked among the configured shards.
pub fn new_family_id<S: Store>(ctx: &Ctx<'_, S>) -> String {
    routed_secret(ctx, 22).expose().to_owned()
}

/// A secret `{route}{random}` that starts a single-use record of its own (an initial access
/// token): routed by a hash of its random part.
pub fn routed_secret<S: Store>(ctx: &Ctx<'_, S>, random_len: usize) -> Secret {
    let random = Secret::random_base62(ctx.rng, random_len);
    let route = Route::pick(random.expose(), ctx.config.shards);
    Secret::new(format!("{}{}", route.encode(), random.expose()))
}

/// Revokes a family and drops the edge copies of its live access tokens.
pub async fn revoke_family<S: Store>(
    ctx: &Ctx<'_, S>,
    family_id: &str,
    now_s: u64,
) -> Result<(), StoreError> {
    let live = ctx.store.revoke_family(family_id, now_s).await?;
    ctx.store.drop_access_copies(&live).await
}

/// A JWT access token (the app's `jwt_access_tokens`): RFC 9068 with `typ: at+jwt`, so that it
/// can never pass for an ID token (RFC 8725 §3.11): its `aud` is the resource it is for — the
/// one the request named (RFC 8707 §2), else the instance URL, where the APIs live — never the
/// client id; it carries `client_id`, `jti` (with
/// the age stamp), and `scp` as Salesforce's Mobile SDK reads it (and RFC 9068's `scope`), plus
/// Salesforce's `tty`/`tnk`/`ver` header fields. It is stored hashed and checked like an opaque
/// token, so revocation applies to it too.
async fn jwt_access_token<S: Store>(
    ctx: &Ctx<'_, S>,
    grant: &Grant<'_>,
    random: String,
) -> Result<Secret, OAuthError> {
    let now = ctx.now_s();
    let claims = serde_json::json!({
        "iss": ctx.issuer,
        "sub": identity_url(ctx, grant.org_id, grant.user_id),
        "aud": grant.resource.unwrap_or(&ctx.issuer),
        "client_id": grant.app.client_id,
        "scp": grant.scopes.as_slice(),
        "scope": grant.scopes.joined(),
        "iat": now,
        "nbf": now,
        "exp": now + grant.app.policy.access_token_ttl_s,
        "jti": format!("{random}{}", age_stamp(ctx, &random)),
    });
    let mut header = serde_json::Map::new();
    header.insert("tty".into(), "sfdc-core-token".into());
    header.insert("tnk".into(), grant.org_id.into());
    header.insert("ver".into(), "1.0".into());
    let key = ctx.config.keys.active()?;
    key.sign_with_header(TYP_ACCESS_TOKEN, &claims, &header)
        .await
        .map(Secret::new)
        .map_err(OAuthError::from)
}

#[derive(Serialize)]
struct IdTokenClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    azp: &'a str,
    exp: u64,
    iat: u64,
    auth_time: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    at_hash: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    c_hash: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    preferred_username: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
}

/// What the token response describes.
pub struct Grant<'a> {
    pub org_id: &'a str,
    pub app: &'a App,
    /// The secret the client authenticated with, for `signature`.
    pub client_secret: Option<&'a Secret>,
    pub user_id: &'a str,
    pub claims: &'a UserClaims,
    pub scopes: &'a ScopeSet,
    pub auth_time_s: u64,
    pub nonce: Option<&'a str>,
    /// RFC 8707: the resource the access token is for (its audience); `None` for none named.
    pub resource: Option<&'a str>,
}

/// What an ID token is issued beside, and bound to by its hash.
pub enum BoundTo<'a> {
    /// OIDC Core §3.1.3.6 `at_hash`.
    AccessToken(&'a Secret),
    /// OIDC Core §3.3.2.11 `c_hash`: an ID token from the authorization endpoint beside a code.
    Code(&'a Secret),
}

/// The left half of SHA-256 of `value`, base64url (`at_hash`, `c_hash` for RS256 and ES256).
fn half_hash(value: &Secret) -> String {
    b64url(&sha256(value.expose().as_bytes())[..16])
}

/// An OIDC Core §2 ID token for `grant`, bound to the access token or code beside it.
pub async fn id_token<S: Store>(
    ctx: &Ctx<'_, S>,
    grant: &Grant<'_>,
    bound: BoundTo<'_>,
) -> Result<String, OAuthError> {
    let now = ctx.now_s();
    let id_url = identity_url(ctx, grant.org_id, grant.user_id);
    let (at_hash, c_hash) = match bound {
        BoundTo::AccessToken(t) => (Some(half_hash(t)), None),
        BoundTo::Code(c) => (None, Some(half_hash(c))),
    };
    let claims = IdTokenClaims {
        iss: &ctx.issuer,
        sub: &id_url,
        aud: &grant.app.client_id,
        azp: &grant.app.client_id,
        exp: now + grant.app.policy.id_token_ttl_s,
        iat: now,
        auth_time: grant.auth_time_s,
        nonce: grant.nonce,
        at_hash,
        c_hash,
        preferred_username: grant
            .scopes
            .contains("profile")
            .then_some(grant.claims.username.as_str()),
        name: grant
            .scopes
            .contains("profile")
            .then_some(grant.claims.name.as_str()),
        email: grant
            .scopes
            .contains("email")
            .then_some(grant.claims.email.as_str()),
    };
    let key = ctx.config.keys.active()?;
    Ok(key.sign(TYP_ID_TOKEN, &claims).await?)
}

/// The fields of a token response (CONTRACT §2) before `expires_in`: the access token and what
/// describes it, `signature` when the client authenticated with its secret, the refresh token
/// when one was minted, and an ID token when `openid` was granted or `id_token` is asked for.
pub async fn token_fields<S: Store>(
    ctx: &Ctx<'_, S>,
    grant: &Grant<'_>,
    minted: &Minted,
    id_token_wanted: bool,
) -> Result<Vec<(&'static str, String)>, OAuthError> {
    let id_url = identity_url(ctx, grant.org_id, grant.user_id);
    let issued_at = ctx.clock.now_ms().to_string();
    let mut fields: Vec<(&'static str, String)> = vec![
        ("access_token", minted.access.expose().to_owned()),
        ("token_type", "Bearer".into()),
        ("issued_at", issued_at.clone()),
        ("id", id_url.clone()),
        ("instance_url", ctx.issuer.clone()),
        ("scope", grant.scopes.joined()),
    ];
    if let Some(secret) = grant.client_secret {
        fields.push((
            "signature",
            salesforce_signature(secret, &id_url, &issued_at),
        ));
    }
    if let Some(r) = &minted.refresh {
        fields.push(("refresh_token", r.expose().to_owned()));
    }
    if id_token_wanted || grant.scopes.contains("openid") {
        fields.push((
            "id_token",
            id_token(ctx, grant, BoundTo::AccessToken(&minted.access)).await?,
        ));
    }
    if grant.app.policy.jwt_access_tokens {
        fields.push(("token_format", "jwt".into()));
    }
    let how = ctx.notes.grant_type().unwrap_or_else(|| "authorize".into());
    ctx.audit(
        AuditEvent::new(AuditKind::Token, true, &grant.app.client_id, how)
            .user(Some(grant.user_id))
            .client(Some(&grant.app.client_id)),
    );
    Ok(fields)
}

/// CONTRACT §2 token response with `extra` fields (a hybrid app's session), `Cache-Control:
/// no-store`.
pub async fn token_response<S: Store>(
    ctx: &Ctx<'_, S>,
    grant: &Grant<'_>,
    minted: &Minted,
    extra: Vec<(&'static str, String)>,
    urlencoded: bool,
) -> Result<Response, OAuthError> {
    let mut fields = token_fields(ctx, grant, minted, false).await?;
    fields.extend(extra);
    let ttl = grant.app.policy.access_token_ttl_s;
    let resp = if urlencoded {
        let mut ser = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &fields {
            ser.append_pair(k, v);
        }
        ser.append_pair("expires_in", &ttl.to_string());
        Response::new(200, "application/x-www-form-urlencoded", ser.finish())
    } else {
        let mut obj = serde_json::Map::new();
        for (k, v) in fields {
            obj.insert(k.into(), v.into());
        }
        obj.insert("expires_in".into(), ttl.into());
        Response::json(200, &obj)
    };
    Ok(resp.no_store())
}

/// `format=urlencoded`, or `Accept: application/x-www-form-urlencoded` without `format`
/// (salesforce-reference.md §0.3). `xml` is not offered; it falls back to JSON.
pub fn wants_urlencoded(req: &Request, params: &Params) -> bool {
    match params.get("format").ok().flatten() {
        Some(f) => f == "urlencoded",
        None => req
            .header("accept")
            .is_some_and(|a| a.contains("application/x-www-form-urlencoded")),
    }
}
