//! `/services/oauth2/revoke` (RFC 7009). Salesforce clients send the token alone, by POST or
//! GET (salesforce-reference.md §12.1); a client that authenticates may revoke only its own.

use super::bearer::token_key;
use super::client_auth::{authenticate, credentials};
use super::error::OAuthError;
use crate::core::audit::{AuditEvent, Kind as AuditKind};
use crate::core::config::Ctx;
use crate::core::http::{Method, Request, Response};
use crate::core::secret::Secret;
use crate::core::storage::{Store, StoreError, TokenKey};

pub async fn handle<S: Store>(ctx: &Ctx<'_, S>, req: &Request) -> Response {
    match revoke(ctx, req).await {
        Ok(r) => r,
        Err(e) => e.to_response(false),
    }
}

async fn revoke<S: Store>(ctx: &Ctx<'_, S>, req: &Request) -> Result<Response, OAuthError> {
    let params = match req.method {
        Method::Get => req.query_params(),
        _ => req.form_params()?.merged_with(req.query_params()),
    };
    let token = Secret::new(
        params
            .get("token")?
            .ok_or_else(|| OAuthError::invalid_request("token required"))?,
    );
    let key = token_key(token.expose());
    let now = ctx.now_s();
    let (client, ended) = if let Some(creds) = credentials(req, &params)? {
        let client = authenticate(ctx, req, Some(creds), |_| false).await?;
        let family = match ctx.store.find_token(&key).await? {
            Some(found) => Some(found.family),
            None => ctx.store.find_web_session(&key).await?,
        };
        let owned = family.is_some_and(|f| f.client_id == client.app.client_id);
        let ended = owned && revoke_token(ctx, &key, now).await?;
        (Some(client.app.client_id), ended)
    } else {
        (None, revoke_token(ctx, &key, now).await?)
    };
    let actor = client.as_deref().unwrap_or("anonymous");
    // RFC 7009 answers 200 either way; the trail says whether live access tokens ended.
    let detail = if ended {
        "token revoked"
    } else {
        "revocation requested; no live access token ended"
    };
    ctx.audit(AuditEvent::new(AuditKind::Revoke, true, actor, detail).client(client.as_deref()));
    // RFC 7009 §2.2: 200 whether or not the token was known, so revocation is no token oracle.
    Ok(Response::empty(200).no_store())
}

/// Revokes the record (in its shard), then drops the edge copies of what it ended; whether
/// anything was ended.
async fn revoke_token<S: Store>(
    ctx: &Ctx<'_, S>,
    key: &TokenKey,
    now_s: u64,
) -> Result<bool, StoreError> {
    let ended = ctx.store.revoke_token(key, now_s).await?;
    ctx.store.drop_access_copies(&ended).await?;
    Ok(!ended.is_empty())
}
