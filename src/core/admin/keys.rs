//! `/admin/keys`: the signing keys of both sources, and the managed ones' lifecycle
//! (`keys/managed.rs`): create (published at once), schedule, delete once nothing it signed
//! can still be valid.

use serde::Deserialize;
use serde_json::json;

use super::{json, json_object, reject_unknown, typed, AdminError, AdminResult};
use crate::core::config::Ctx;
use crate::core::http::{Request, Response};
use crate::core::keys::managed::{self, ManagedKey};
use crate::core::keys::{Alg, KeySet};
use crate::core::storage::Store;

#[derive(Deserialize)]
struct NewKey {
    #[serde(default)]
    alg: Option<String>,
    #[serde(default)]
    activate: bool,
}

/// The kids of the keys loaded now that did not come from D1: those of `SIGNING_KEYS`, in its
/// order.
fn secret_kids(keys: &KeySet, managed: &[ManagedKey]) -> Vec<(String, Alg)> {
    keys.kids()
        .into_iter()
        .filter(|(kid, _)| !managed.iter().any(|m| &m.kid == kid))
        .collect()
}

fn statuses<S: Store>(ctx: &Ctx<'_, S>, managed: &[ManagedKey]) -> Vec<managed::KeyStatus> {
    managed::statuses(
        managed,
        &secret_kids(&ctx.config.keys, managed),
        ctx.now_s(),
    )
}

pub async fn list<S: Store>(ctx: &Ctx<'_, S>) -> AdminResult {
    let managed = ctx.store.list_signing_keys().await?;
    json(
        200,
        &json!({"keys": statuses(ctx, &managed), "jwks_max_age_s": ctx.config.jwks_max_age_s()}),
    )
}

/// The status of one managed key, as `list` shows it.
async fn one<S: Store>(ctx: &Ctx<'_, S>, kid: &str) -> Result<managed::KeyStatus, AdminError> {
    let managed = ctx.store.list_signing_keys().await?;
    statuses(ctx, &managed)
        .into_iter()
        .find(|s| s.kid == kid)
        .ok_or_else(|| AdminError::not_found("key"))
}

pub async fn create<S: Store>(ctx: &Ctx<'_, S>, req: &Request) -> AdminResult {
    let body = json_object(req, true)?;
    reject_unknown(&body, &["alg".into(), "activate".into()])?;
    let input: NewKey = typed(body)?;
    let alg = match input.alg.as_deref() {
        None | Some("RS256") => Alg::Rs256,
        Some("ES256") => Alg::Es256,
        Some(other) => {
            return Err(AdminError::bad_request(format!(
                "alg must be RS256 or ES256, not {other}"
            )))
        }
    };
    let Some(vault) = &ctx.config.vault else {
        return Err(AdminError::conflict(
            "KEY_WRAPPING_KEY is not set: managed keys cannot be stored (docs/configuration.md)",
        ));
    };
    let vault = &vault.0;
    let der = vault.generate(alg).await.map_err(key_error)?;
    let pem = pem::encode(&pem::Pem::new("PRIVATE KEY", der.clone()));
    let loaded = vault.load(&pem).await;
    let kid = loaded.active().map_err(key_error)?.kid.clone();
    let sealed = vault.seal(&der, &kid).await.map_err(key_error)?;
    let now = ctx.now_s();
    let existing = ctx.store.list_signing_keys().await?;
    let key = ManagedKey {
        kid: kid.clone(),
        alg,
        sealed,
        created_at: now,
        activates_at: input
            .activate
            .then(|| managed::free_second(&existing, &kid, now + ctx.config.jwks_max_age_s())),
    };
    ctx.store.create_signing_key(&key).await?;
    Ok(Response::json(201, &one(ctx, &kid).await?))
}

pub async fn activate<S: Store>(ctx: &Ctx<'_, S>, kid: &str) -> AdminResult {
    let managed = ctx.store.list_signing_keys().await?;
    let Some(key) = managed.iter().find(|k| k.kid == kid) else {
        return Err(from_secret(ctx, &managed, kid));
    };
    let wanted = ctx
        .now_s()
        .max(key.created_at + ctx.config.jwks_max_age_s());
    let at = managed::free_second(&managed, kid, wanted);
    if !ctx.store.schedule_signing_key(kid, at).await? {
        return Err(AdminError::not_found("key"));
    }
    json(200, &one(ctx, kid).await?)
}

pub async fn delete<S: Store>(ctx: &Ctx<'_, S>, kid: &str) -> AdminResult {
    let managed = ctx.store.list_signing_keys().await?;
    let Some(key) = managed.iter().find(|k| k.kid == kid) else {
        return Err(from_secret(ctx, &managed, kid));
    };
    let now = ctx.now_s();
    if managed::signer(&managed, now).is_some_and(|s| s.kid == kid) {
        return Err(AdminError::conflict(
            "this key signs now: activate another key first",
        ));
    }
    if key.activates_at.is_some_and(|a| a > now) {
        return Err(AdminError::conflict(
            "this key is scheduled to sign: activate another key first",
        ));
    }
    if let Some(retired) = managed::retired_at(&managed, key, now) {
        let until = retired + managed::MAX_TOKEN_LIFETIME_S;
        if now < until {
            return Err(AdminError::conflict(&format!(
                "tokens this key signed may be valid until {until}: it stays published until then"
            )));
        }
    }
    if !ctx.store.delete_signing_key(kid).await? {
        return Err(AdminError::not_found("key"));
    }
    json(200, &json!({"kid": kid, "deleted": true}))
}

/// A kid that is not managed: a `SIGNING_KEYS` one (changed only through the secret) or none.
fn from_secret<S: Store>(ctx: &Ctx<'_, S>, managed: &[ManagedKey], kid: &str) -> AdminError {
    if secret_kids(&ctx.config.keys, managed)
        .iter()
        .any(|(k, _)| k == kid)
    {
        AdminError::bad_request(
            "this key comes from the SIGNING_KEYS secret: change the secret to change it",
        )
    } else {
        AdminError::not_found("key")
    }
}

/// A key operation that failed: logged by the edge as a 500, never detailed to the caller.
fn key_error(e: crate::core::keys::KeyError) -> AdminError {
    AdminError::internal(&e.0)
}
