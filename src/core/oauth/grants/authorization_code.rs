//! `grant_type=authorization_code` (RFC 6749 §4.1.3, RFC 7636 §4.5, OIDC Core §3.1.3).

use crate::core::config::Ctx;
use crate::core::future::both;
use crate::core::http::{Params, Request, Response};
use crate::core::oauth::client_auth::{authenticate, credentials};
use crate::core::oauth::error::{sf, ErrorCode, OAuthError};
use crate::core::oauth::hybrid::WebSessions;
use crate::core::oauth::issue::{
    first_issue, mint, publish, refresh_allowed, revoke_family, token_response, unpublish,
    wants_urlencoded, Grant,
};
use crate::core::oauth::pkce;
use crate::core::oauth::resource;
use crate::core::oauth::scope::ScopeSet;
use crate::core::org::org_id;
use crate::core::secret::Secret;
use crate::core::storage::{Redemption, Store, UserClaims};

/// `grant_type=authorization_code`, or Salesforce's `hybrid_auth_code` (`hybrid`), which also
/// opens a web session tied to the new family (`hybrid.rs`).
pub async fn exchange<S: Store>(
    ctx: &Ctx<'_, S>,
    req: &Request,
    params: &Params,
    hybrid: bool,
) -> Result<Response, OAuthError> {
    let code = Secret::new(
        params
            .get("code")?
            .ok_or_else(|| OAuthError::invalid_request("code required"))?,
    );
    let redirect_uri = params.get("redirect_uri")?;
    let verifier = params.get("code_verifier")?;
    let creds = credentials(req, params)?;
    let resource = resource::requested_syntax(params)?;
    // 1. The code, read before client authentication so that a public client's missing secret
    //    can be accepted only when PKCE protects this code.
    let code_hash = code.hash();
    let grant = ctx.store.get_code(&code_hash).await?;
    let has_pkce = grant.as_ref().is_none_or(|g| g.code_challenge.is_some());
    // 2. RFC 6749 §3.2.1: confidential clients authenticate; a public client (the app does not
    //    require the secret) may go without, but only with PKCE. (An unknown code fails below
    //    with invalid_grant whoever the client is.)
    let client = authenticate(ctx, req, creds, |app| {
        app.policy.secret_required_web_server || !has_pkce
    })
    .await?;
    let now = ctx.now_s();
    let grant = grant
        .filter(|g| g.expires_at_s > now)
        .ok_or_else(|| OAuthError::invalid_grant(sf::EXPIRED_CODE))?;
    // 3. §4.1.3: the code was issued to this client...
    if grant.client_id != client.app.client_id {
        return Err(OAuthError::invalid_grant(
            "authorization code was issued to another client",
        ));
    }
    // 4. ...for this redirect URI (Salesforce reports this as redirect_uri_mismatch).
    if redirect_uri != Some(grant.redirect_uri.as_str()) {
        return Err(OAuthError::new(
            ErrorCode::RedirectUriMismatch,
            sf::REDIRECT_MISMATCH,
        ));
    }
    // 5. RFC 7636 §4.6, and the app/org PKCE requirement (in case it was switched on since).
    pkce::verify(grant.code_challenge.as_deref(), verifier)?;
    if pkce::missing_but_required(ctx, &client.app, grant.code_challenge.as_deref()).await? {
        return Err(OAuthError::invalid_grant("code_challenge required"));
    }
    // 6. RFC 8707 §2.2: the token is for the resource of the authorization request, which the
    //    token request may repeat but not change.
    resource::same_or_omitted(resource.as_deref(), grant.resource.as_deref())?;
    let org_id = org_id(ctx).await?;
    // The user's claims as of the code (a code from an older version has none: read them).
    let claims = match &grant.user {
        Some(c) => c.clone(),
        None => ctx
            .store
            .get_user(&grant.user_id)
            .await?
            .map(|u| UserClaims::from(&u))
            .ok_or_else(|| OAuthError::invalid_grant("user is inactive"))?,
    };
    // 7. Mint and sign, then redeem-and-store in one transaction of the family's shard: the first
    //    redemption wins; any later one is a replay and revokes what the first issued (RFC 6749
    //    §4.1.2). The same transaction checks that nothing ended the user's tokens (a password
    //    change, a deactivation) since the user authenticated, as that ends the session the code
    //    came from.
    let scopes = ScopeSet::from_list(&grant.scopes);
    let described = Grant {
        org_id: &org_id,
        app: &client.app,
        client_secret: client.secret.as_ref(),
        user_id: &grant.user_id,
        claims: &claims,
        scopes: &scopes,
        auth_time_s: grant.auth_time_s,
        nonce: grant.nonce.as_deref(),
        resource: grant.resource.as_deref(),
    };
    let minted = mint(
        ctx,
        &described,
        &grant.family_id,
        refresh_allowed(&client.app, &scopes),
    )
    .await?;
    let web = hybrid.then(|| WebSessions::mint(ctx, &grant.family_id, &scopes));
    let issue = first_issue(
        ctx,
        &described,
        &grant.family_id,
        &minted,
        web.as_ref().map(WebSessions::hashes).unwrap_or_default(),
    );
    let extra = web.map(|w| w.fields(ctx)).unwrap_or_default();
    // The response, ID token signed, before the code is used up: a signing failure (a broken
    // SIGNING_KEYS) must never cost the user their code.
    let response = token_response(
        ctx,
        &described,
        &minted,
        extra,
        wants_urlencoded(req, params),
    )
    .await?;
    let (published, redeemed) = both(
        publish(ctx, &minted),
        ctx.store
            .redeem_code(&code_hash, &issue, grant.authenticated_at_ms),
    )
    .await;
    match redeemed? {
        Redemption::Issued => {
            // The tokens are issued: answering with them beats losing the code to a failed
            // KV write (logged by the store). Their copy is missing, so they validate through
            // their shard while young (`bearer::live_access`) and the client refreshes after that.
            let _ = published;
            Ok(response)
        }
        outcome => {
            // Nobody has seen this access token: its copy goes, unused.
            unpublish(ctx, &minted).await?;
            if outcome == Redemption::Replayed {
                revoke_family(ctx, &grant.family_id, now).await?;
            }
            Err(OAuthError::invalid_grant(sf::EXPIRED_CODE))
        }
    }
}
