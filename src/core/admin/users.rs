//! `/admin/users`: people who log in.

use serde::Deserialize;
use serde_json::Value;

use super::{json, json_object, typed, AdminError, AdminResult};
use crate::core::config::Ctx;
use crate::core::http::Request;
use crate::core::ids::{new_record_id, USER_PREFIX};
use crate::core::model::User;
use crate::core::password::{hash_password, MIN_PASSWORD_LEN};
use crate::core::storage::{AccessCopy, Store, TokenState, UserClaims};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUser {
    username: String,
    password: String,
    email: String,
    name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserPatch {
    password: Option<String>,
    email: Option<String>,
    name: Option<String>,
    active: Option<bool>,
}

/// The user as the API shows it: never the password hash.
fn view(u: &User) -> Value {
    serde_json::json!({
        "user_id": u.user_id,
        "username": u.username,
        "email": u.email,
        "name": u.name,
        "active": u.active,
        "created_at": u.created_at,
    })
}

fn check_password(p: &str) -> Result<(), AdminError> {
    if p.chars().count() < MIN_PASSWORD_LEN || p.len() > 1024 {
        return Err(AdminError::bad_request(format!(
            "password must be {MIN_PASSWORD_LEN} to 1024 characters"
        )));
    }
    Ok(())
}

fn check_email(e: &str) -> Result<(), AdminError> {
    let ok = e.len() <= 254
        && e.split_once('@')
            .is_some_and(|(l, d)| !l.is_empty() && d.contains('.'));
    if ok {
        Ok(())
    } else {
        Err(AdminError::bad_request(format!(
            "email is not an email address: {e}"
        )))
    }
}

fn check_text(field: &str, v: &str) -> Result<(), AdminError> {
    if v.trim().is_empty() || v.len() > 255 || v.chars().any(char::is_control) {
        return Err(AdminError::bad_request(format!(
            "{field} must be 1 to 255 printable characters"
        )));
    }
    Ok(())
}

fn hash<S: Store>(ctx: &Ctx<'_, S>, password: &str) -> Result<String, AdminError> {
    hash_password(ctx.rng, password)
        .map_err(|_| AdminError::bad_request("password could not be hashed"))
}

pub async fn create<S: Store>(ctx: &Ctx<'_, S>, req: &Request) -> AdminResult {
    let input: NewUser = typed(json_object(req, false)?)?;
    check_text("username", &input.username)?;
    check_text("name", &input.name)?;
    check_email(&input.email)?;
    check_password(&input.password)?;
    if ctx
        .store
        .find_user_by_username(&input.username)
        .await?
        .is_some()
    {
        return Err(AdminError::bad_request(format!(
            "username already exists: {}",
            input.username
        )));
    }
    let user = User {
        user_id: new_record_id(ctx.rng, USER_PREFIX),
        username: input.username,
        password_hash: hash(ctx, &input.password)?,
        email: input.email,
        name: input.name,
        active: true,
        created_at: ctx.now_s(),
        sessions_valid_from_ms: 0,
    };
    // The store's unique index still decides a race between two creations.
    ctx.store.create_user(&user).await?;
    json(201, &view(&user))
}

pub async fn list<S: Store>(ctx: &Ctx<'_, S>) -> AdminResult {
    let users: Vec<Value> = ctx.store.list_users().await?.iter().map(view).collect();
    json(200, &serde_json::json!({ "users": users }))
}

async fn load<S: Store>(ctx: &Ctx<'_, S>, id: &str) -> Result<User, AdminError> {
    ctx.store
        .get_user(id)
        .await?
        .ok_or_else(|| AdminError::not_found("user"))
}

pub async fn read<S: Store>(ctx: &Ctx<'_, S>, id: &str) -> AdminResult {
    json(200, &view(&load(ctx, id).await?))
}

pub async fn update<S: Store>(ctx: &Ctx<'_, S>, req: &Request, id: &str) -> AdminResult {
    let patch: UserPatch = typed(json_object(req, false)?)?;
    let mut user = load(ctx, id).await?;
    if let Some(email) = patch.email {
        check_email(&email)?;
        user.email = email;
    }
    if let Some(name) = patch.name {
        check_text("name", &name)?;
        user.name = name;
    }
    let password_changed = patch.password.is_some();
    if let Some(password) = patch.password {
        check_password(&password)?;
        user.password_hash = hash(ctx, &password)?;
    }
    let deactivating = patch.active == Some(false);
    if let Some(active) = patch.active {
        user.active = active;
    }
    save(ctx, user, password_changed || deactivating).await
}

/// `DELETE` deactivates: the record stays (tokens and audit trails refer to it).
pub async fn deactivate<S: Store>(ctx: &Ctx<'_, S>, id: &str) -> AdminResult {
    let mut user = load(ctx, id).await?;
    user.active = false;
    save(ctx, user, true).await
}

/// Stores `user`. A password change or a deactivation ends everything issued before it, with
/// the change: the user's browser sessions (`sessions_valid_from_ms`) and every token family
/// (revoked first; a failure there leaves the user unchanged). Reactivating later revives none
/// of it.
async fn save<S: Store>(ctx: &Ctx<'_, S>, mut user: User, end_sessions: bool) -> AdminResult {
    let revoke_at = end_sessions.then(|| {
        user.sessions_valid_from_ms = ctx.clock.now_ms();
        ctx.now_s()
    });
    // The edge copies of the user's access tokens, listed before the change: a revocation drops
    // them, any other change rewrites them with the new claims.
    let now = ctx.now_s();
    let tokens = ctx
        .store
        .unexpired_access_tokens(&user.user_id, now)
        .await?;
    if revoke_at.is_none() && user.active {
        // The claims kept with the user's families (for their refreshes), before D1 says so.
        ctx.store
            .set_user_claims(&user.user_id, &UserClaims::from(&user))
            .await?;
    }
    if !ctx.store.update_user(&user, revoke_at).await? {
        return Err(AdminError::not_found("user"));
    }
    if revoke_at.is_some() || !user.active {
        let hashes: Vec<_> = tokens.into_iter().map(|(t, _)| t.hash).collect();
        ctx.store.drop_access_copies(&hashes).await?;
    } else {
        let claims = UserClaims::from(&user);
        let live = tokens
            .iter()
            .filter(|(t, f)| f.revoked_at_s.is_none() && t.state != TokenState::Revoked);
        for (t, family) in live {
            if let Some(copy) = AccessCopy::of(t, family, claims.clone()) {
                ctx.store.put_access_copy(&t.hash, &copy).await?;
            }
        }
    }
    json(200, &view(&user))
}
