//! The login and consent pages between the authorization request and the code: pending requests
//! kept in KV, a browser-bound CSRF token on every form (security checklist: CSRF), and the login
//! session cookie.

use super::authz::{complete, request_app, AuthorizationRequest, Failure, CODE_TTL_S};
use super::error::{sf, ErrorCode, OAuthError};
use super::pages;
use crate::core::audit::{AuditEvent, Kind as AuditKind};
use crate::core::config::Ctx;
use crate::core::http::{ParamError, Params, Request, Response};
use crate::core::model::{App, PermittedUsers, User};
use crate::core::password;
use crate::core::secret::{hex, sha256, Secret};
use crate::core::storage::{
    AppUserGrant, Interaction, Limit, Session, Store, StoreError, UserClaims,
};

/// Browser login session: cookie name (before any `__Host-` prefix) and lifetime.
pub const SESSION_COOKIE: &str = "eo_sid";
pub const SESSION_TTL_S: u64 = 8 * 3600;
/// Browser cookie the CSRF token is bound to (double submit: form token + cookie).
pub const BROWSER_COOKIE: &str = "eo_bid";
/// A pending request lasts as long as the code would.
pub const INTERACTION_TTL_S: u64 = CODE_TTL_S;
const BROWSER_COOKIE_TTL_S: u64 = 30 * 86400;

/// The logged-in user of this browser, with the session's `auth_time` and what the user granted
/// the app `client_id` (read together, one round trip). A session started before the user's
/// password changed or before a deactivation is over (`sessions_valid_from_ms`).
pub async fn current_session<S: Store>(
    ctx: &Ctx<'_, S>,
    req: &Request,
    client_id: &str,
) -> Result<Option<SessionUser>, StoreError> {
    let Some(sid) = ctx.cookies().read(req, SESSION_COOKIE) else {
        return Ok(None);
    };
    let Some(session) = ctx.store.get_session(&Secret::new(sid).hash()).await? else {
        return Ok(None);
    };
    if session.expires_at_s <= ctx.now_s() {
        return Ok(None);
    }
    // A session bridged from a hybrid app's web session lives only as long as that does.
    if let Some(web) = &session.web_session {
        let live = ctx
            .store
            .find_web_session(web)
            .await?
            .is_some_and(|f| f.revoked_at_s.is_none() && f.user_id == session.user_id);
        if !live {
            return Ok(None);
        }
    }
    // The user and their grant to this app in one read.
    Ok(ctx
        .store
        .user_with_grant(client_id, &session.user_id)
        .await?
        .filter(|(u, _)| u.active && session.created_at_ms >= u.sessions_valid_from_ms)
        .map(|(user, grant)| SessionUser {
            user,
            authn: Authn {
                auth_time_s: session.auth_time_s,
                started_ms: session.created_at_ms,
            },
            grant: grant.unwrap_or_default(),
        }))
}

/// When the user authenticated: `auth_time` (OIDC Core §2) for ID tokens, and the session's
/// start to the millisecond, which a password change or deactivation after it ends. A code
/// carries the start, so its redemption is refused after such a change even when the user was
/// read from a replica that had not seen the change yet.
#[derive(Clone, Copy, Debug)]
pub struct Authn {
    pub auth_time_s: u64,
    pub started_ms: u64,
}

/// The user of a live browser session, and what they granted the app being authorized.
pub struct SessionUser {
    pub user: User,
    pub authn: Authn,
    pub grant: AppUserGrant,
}

/// A logged-in user on their way to the consent page.
pub struct LoggedIn<'a> {
    pub user: &'a User,
    pub authn: Authn,
    /// What they approved for this app before; a new approval adds to it.
    pub approved_scopes: Vec<String>,
}

/// Stores the pending request and shows the login page (no user yet) or the consent page.
pub async fn start<S: Store>(
    ctx: &Ctx<'_, S>,
    req: &Request,
    app: &App,
    areq: AuthorizationRequest,
    user: Option<LoggedIn<'_>>,
) -> Result<Response, Failure> {
    let cookies = ctx.cookies();
    let (browser, new_browser) = match cookies.read(req, BROWSER_COOKIE) {
        Some(b) if b.len() >= 43 => (Secret::new(b), false),
        _ => (Secret::random_base62(ctx.rng, 43), true),
    };
    let id = Secret::random_base62(ctx.rng, 43);
    let csrf = Secret::random_base62(ctx.rng, 43);
    let record = Interaction {
        request: areq,
        csrf_hash: csrf.hash(),
        browser_hash: browser.hash(),
        user_id: user.as_ref().map(|u| u.user.user_id.clone()),
        user_claims: user.as_ref().map(|u| UserClaims::from(u.user)),
        auth_time_s: user.as_ref().map(|u| u.authn.auth_time_s),
        session_started_ms: user.as_ref().map(|u| u.authn.started_ms),
        approved_scopes: user
            .as_ref()
            .map(|u| u.approved_scopes.clone())
            .unwrap_or_default(),
        expires_at_s: ctx.now_s() + INTERACTION_TTL_S,
    };
    ctx.store.put_interaction(&id.hash(), &record).await?;
    let form = pages::Form {
        interaction: id.expose(),
        csrf: csrf.expose(),
    };
    let resp = match user {
        None => pages::login(app, &record.request, &form, None),
        Some(u) => pages::consent(app, u.user, &record.request, &form),
    };
    Ok(if new_browser {
        resp.with_header(
            "set-cookie",
            &cookies.set(BROWSER_COOKIE, browser.expose(), BROWSER_COOKIE_TTL_S),
        )
    } else {
        resp
    })
}

/// With a logged-in user and their `grant` to the app: check app access, ask consent if needed,
/// else issue the code.
pub async fn proceed<S: Store>(
    ctx: &Ctx<'_, S>,
    req: &Request,
    app: &App,
    areq: AuthorizationRequest,
    user: &User,
    authn: Authn,
    grant: AppUserGrant,
) -> Result<Response, Failure> {
    if app.policy.permitted_users == PermittedUsers::AdminApproved {
        if !grant.preauthorized {
            return Err(Failure::Redirect(
                Box::new(areq),
                OAuthError::new(ErrorCode::InvalidAppAccess, sf::NOT_ADMIN_APPROVED),
            ));
        }
        // Pre-authorized users skip the consent page, as in Salesforce.
        return complete(ctx, &areq, &user.user_id, Some(user.into()), authn).await;
    }
    let approved = grant.approved_scopes.unwrap_or_default();
    if areq.scopes.iter().all(|x| approved.contains(x))
        && !approved.is_empty()
        && !areq.prompt.consent
    {
        return complete(ctx, &areq, &user.user_id, Some(user.into()), authn).await;
    }
    if areq.prompt.none {
        let e = areq
            .prompt
            .silent_failure(ErrorCode::ConsentRequired, "user has not approved this app");
        return Err(Failure::Redirect(Box::new(areq), e));
    }
    let logged_in = LoggedIn {
        user,
        authn,
        approved_scopes: approved,
    };
    start(ctx, req, app, areq, Some(logged_in)).await
}

/// `POST /services/oauth2/authorize` from the login or consent form, with its form `params`.
pub async fn post<S: Store>(
    ctx: &Ctx<'_, S>,
    req: &Request,
    params: Result<Params, ParamError>,
) -> Response {
    let mut resp = match handle_post(ctx, req, params).await {
        Ok(r) => r,
        Err(f) => f.into_response(ctx),
    };
    // RFC 9700 §4.12: after a POST carrying credentials, redirect with 303 so the browser
    // follows with a GET and never re-sends the form to the client.
    if resp.status == 302 {
        resp.status = 303;
    }
    resp
}

fn forbidden(msg: &'static str) -> Failure {
    Failure::Page(OAuthError::invalid_request(msg))
}

async fn handle_post<S: Store>(
    ctx: &Ctx<'_, S>,
    req: &Request,
    params: Result<Params, ParamError>,
) -> Result<Response, Failure> {
    let params = params.map_err(|e| Failure::Page(e.into()))?;
    let page = |e: ParamError| Failure::Page(e.into());
    let (Some(id), Some(csrf)) = (
        params.get("interaction").map_err(page)?,
        params.get("csrf_token").map_err(page)?,
    ) else {
        return Err(forbidden("missing CSRF token"));
    };
    let id = Secret::new(id);
    let csrf = Secret::new(csrf);
    let Some(record) = ctx.store.get_interaction(&id.hash()).await? else {
        return Err(forbidden("this form has expired; start again"));
    };
    let browser_ok = ctx
        .cookies()
        .read(req, BROWSER_COOKIE)
        .is_some_and(|b| Secret::new(b).matches(&record.browser_hash));
    if !csrf.matches(&record.csrf_hash) || !browser_ok {
        return Err(forbidden("invalid CSRF token"));
    }
    if record.expires_at_s <= ctx.now_s() {
        return Err(forbidden("this form has expired; start again"));
    }
    let app = request_app(ctx, &record.request.client_id).await?;
    let areq = record.request.clone();
    if params.get("login").map_err(page)?.is_some() {
        let username = params.get("username").map_err(page)?.unwrap_or_default();
        let password = params.get("password").map_err(page)?.unwrap_or_default();
        let form = pages::Form {
            interaction: id.expose(),
            csrf: csrf.expose(),
        };
        // Throttle before the Argon2 work.
        if !login_allowed(ctx, req, username).await? {
            return Ok(pages::login(
                &app,
                &areq,
                &form,
                Some((pages::Notice::Throttled, username)),
            ));
        }
        let user = match check_login_detail(ctx, username, password).await? {
            Ok(user) => user,
            Err(who) => {
                ctx.audit(
                    AuditEvent::new(
                        AuditKind::Login,
                        false,
                        who.as_deref().unwrap_or("anonymous"),
                        "wrong username or password, or an inactive user",
                    )
                    .user(who.as_deref())
                    .client(Some(&app.client_id)),
                );
                return Ok(pages::login(
                    &app,
                    &areq,
                    &form,
                    Some((pages::Notice::WrongPassword, username)),
                ));
            }
        };
        ctx.audit(
            AuditEvent::new(AuditKind::Login, true, &user.user_id, "password")
                .user(Some(&user.user_id))
                .client(Some(&app.client_id)),
        );
        let now = ctx.now_s();
        let sid = Secret::random_base62(ctx.rng, 43);
        let session = Session {
            user_id: user.user_id.clone(),
            web_session: None,
            auth_time_s: now,
            created_at_ms: ctx.clock.now_ms(),
            expires_at_s: now + SESSION_TTL_S,
        };
        ctx.store.put_session(&sid.hash(), &session).await?;
        let set_cookie = ctx
            .cookies()
            .set(SESSION_COOKIE, sid.expose(), SESSION_TTL_S);
        let grant = ctx
            .store
            .app_user_grant(&app.client_id, &user.user_id)
            .await?
            .unwrap_or_default();
        let authn = Authn {
            auth_time_s: now,
            started_ms: session.created_at_ms,
        };
        let resp = match proceed(ctx, req, &app, areq, &user, authn, grant).await {
            Ok(r) => r,
            Err(f) => f.into_response(ctx),
        };
        return Ok(resp.with_header("set-cookie", &set_cookie));
    }
    let approve = params.get("approve").map_err(page)?.is_some();
    let deny = params.get("deny").map_err(page)?.is_some();
    let Some(user_id) = record.user_id.as_deref().filter(|_| approve || deny) else {
        return Err(forbidden("unknown form action"));
    };
    ctx.audit(
        AuditEvent::new(
            AuditKind::Consent,
            approve,
            user_id,
            if approve { "approved" } else { "denied" },
        )
        .user(Some(user_id))
        .client(Some(&app.client_id)),
    );
    if deny && areq.device.is_some() {
        return super::verification::deny(ctx, &areq).await;
    }
    if deny {
        return Err(Failure::Redirect(
            Box::new(areq),
            OAuthError::new(ErrorCode::AccessDenied, sf::DENIED),
        ));
    }
    // The consent form was rendered for this user in this browser (CSRF token + browser cookie).
    let authn = Authn {
        auth_time_s: record.auth_time_s.unwrap_or_else(|| ctx.now_s()),
        started_ms: record
            .session_started_ms
            .unwrap_or_else(|| ctx.clock.now_ms()),
    };
    // Remembered approvals accumulate: approving more scopes keeps the earlier ones.
    let mut scopes = record.approved_scopes.clone();
    scopes.extend(
        areq.scopes
            .iter()
            .filter(|s| !record.approved_scopes.contains(s))
            .cloned(),
    );
    ctx.store
        .record_approval(&app.client_id, user_id, &scopes)
        .await?;
    complete(ctx, &areq, user_id, record.user_claims.clone(), authn).await
}

/// Every login attempt counts twice: against the username from this address (so guessing one
/// password is slow, while the same user logging in from elsewhere is not locked out) and
/// against the address across usernames (so spraying many usernames is slow too). The username
/// is hashed into the key: keys stay short, whatever was typed. Lowercased in ASCII only, as
/// the username column compares (`COLLATE NOCASE`).
pub async fn login_allowed<S: Store>(
    ctx: &Ctx<'_, S>,
    req: &Request,
    username: &str,
) -> Result<bool, StoreError> {
    let ip = req.client_ip();
    let by_user = ctx
        .store
        .allow(Limit::Login, &throttle_key(username, ip))
        .await?;
    let by_ip = ctx.store.allow(Limit::LoginIp, ip).await?;
    Ok(by_user && by_ip)
}

/// The throttle key of `username` at `ip`: the username hashed (keys stay short, whatever was
/// typed) and lowercased in ASCII only, as the username column compares (`COLLATE NOCASE`).
pub fn throttle_key(username: &str, ip: &str) -> String {
    let user = hex(&sha256(username.to_ascii_lowercase().as_bytes())[..16]);
    format!("{user}|{ip}")
}

/// The user for these credentials, if they are right and the user is active; a hash made with
/// older settings is replaced now that the password is at hand.
pub async fn check_login<S: Store>(
    ctx: &Ctx<'_, S>,
    username: &str,
    password: &str,
) -> Result<Option<User>, StoreError> {
    Ok(check_login_detail(ctx, username, password).await?.ok())
}

/// As [`check_login`]; a refusal names the user the username belongs to, if any (for the
/// audit trail: never the username typed, which may be a mistyped password).
pub async fn check_login_detail<S: Store>(
    ctx: &Ctx<'_, S>,
    username: &str,
    password: &str,
) -> Result<Result<User, Option<String>>, StoreError> {
    match verify_login_detail(ctx, username, password).await? {
        Ok(user) => Ok(Ok(rehash_if_needed(ctx, user, password).await?)),
        Err(who) => Ok(Err(who)),
    }
}

/// As [`check_login`], writing nothing: unknown users cost the same hashing work as known ones,
/// so the answer's timing does not say whether the username exists.
pub async fn verify_login<S: Store>(
    ctx: &Ctx<'_, S>,
    username: &str,
    password: &str,
) -> Result<Option<User>, StoreError> {
    Ok(verify_login_detail(ctx, username, password).await?.ok())
}

async fn verify_login_detail<S: Store>(
    ctx: &Ctx<'_, S>,
    username: &str,
    password: &str,
) -> Result<Result<User, Option<String>>, StoreError> {
    match ctx.store.find_user_by_username(username).await? {
        Some(user) if password::verify_password(password, &user.password_hash) && user.active => {
            Ok(Ok(user))
        }
        Some(user) => Ok(Err(Some(user.user_id))),
        None => {
            password::burn_verification(password);
            Ok(Err(None))
        }
    }
}

/// Replaces a password hash made with older settings.
pub async fn rehash_if_needed<S: Store>(
    ctx: &Ctx<'_, S>,
    mut user: User,
    password: &str,
) -> Result<User, StoreError> {
    if password::needs_rehash(&user.password_hash) {
        if let Ok(phc) = password::hash_password(ctx.rng, password) {
            user.password_hash = phc;
            ctx.store.update_user(&user, None).await?;
        }
    }
    Ok(user)
}
