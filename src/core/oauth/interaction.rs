//! The login and consent pages between the authorize GET and the code: pending requests kept
//! in KV, a browser-bound CSRF token on every form (security checklist: CSRF), and the login
//! session cookie.

use super::authorize::{self, AuthorizationRequest, Failure, SESSION_COOKIE, SESSION_TTL_S};
use super::error::{sf, ErrorCode, OAuthError};
use super::pages;
use crate::core::config::Ctx;
use crate::core::http::{cookie, Request, Response};
use crate::core::model::{App, User};
use crate::core::password;
use crate::core::secret::Secret;
use crate::core::storage::{Interaction, Limit, Session, Store, StoreError};

/// Browser cookie the CSRF token is bound to (double submit: form token + cookie).
pub const BROWSER_COOKIE: &str = "eo_bid";
/// A pending request lasts as long as the code would.
pub const INTERACTION_TTL_S: u64 = authorize::CODE_TTL_S;
const BROWSER_COOKIE_TTL_S: u64 = 30 * 86400;

/// The logged-in user of this browser, with the session's `auth_time`.
pub async fn current_session<S: Store>(
    ctx: &Ctx<'_, S>,
    req: &Request,
) -> Result<Option<(User, u64)>, StoreError> {
    let Some(sid) = req.cookie(SESSION_COOKIE) else {
        return Ok(None);
    };
    let Some(session) = ctx.store.get_session(&Secret::new(sid).hash()).await? else {
        return Ok(None);
    };
    if session.expires_at_s <= ctx.now_s() {
        return Ok(None);
    }
    Ok(ctx
        .store
        .get_user(&session.user_id)
        .await?
        .filter(|u| u.active)
        .map(|u| (u, session.auth_time_s)))
}

/// Stores the pending request and shows the login page (no user yet) or the consent page.
/// A logged-in user on their way to the consent page.
pub struct LoggedIn<'a> {
    pub user: &'a User,
    pub auth_time_s: u64,
    /// What they approved for this app before; a new approval adds to it.
    pub approved_scopes: Vec<String>,
}

pub async fn start<S: Store>(
    ctx: &Ctx<'_, S>,
    req: &Request,
    app: &App,
    areq: AuthorizationRequest,
    user: Option<LoggedIn<'_>>,
) -> Result<Response, Failure> {
    let (browser, new_browser) = match req.cookie(BROWSER_COOKIE) {
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
        auth_time_s: user.as_ref().map(|u| u.auth_time_s),
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
            &cookie(req, BROWSER_COOKIE, browser.expose(), BROWSER_COOKIE_TTL_S),
        )
    } else {
        resp
    })
}

/// `POST /services/oauth2/authorize` from the login or consent form.
pub async fn post<S: Store>(ctx: &Ctx<'_, S>, req: &Request) -> Response {
    let mut resp = match handle_post(ctx, req).await {
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

async fn handle_post<S: Store>(ctx: &Ctx<'_, S>, req: &Request) -> Result<Response, Failure> {
    let params = req.form_params().map_err(|e| Failure::Page(e.into()))?;
    let page = |e: crate::core::http::ParamError| Failure::Page(e.into());
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
    let browser_ok = req
        .cookie(BROWSER_COOKIE)
        .is_some_and(|b| Secret::new(b).matches(&record.browser_hash));
    if !csrf.matches(&record.csrf_hash) || !browser_ok {
        return Err(forbidden("invalid CSRF token"));
    }
    if record.expires_at_s <= ctx.now_s() {
        return Err(forbidden("this form has expired; start again"));
    }
    let app = ctx
        .store
        .get_app(&record.request.client_id)
        .await?
        .ok_or_else(|| {
            Failure::Page(OAuthError::new(
                ErrorCode::InvalidClientId,
                sf::CLIENT_ID_INVALID,
            ))
        })?;
    let areq = record.request.clone();
    if params.get("login").map_err(page)?.is_some() {
        let username = params.get("username").map_err(page)?.unwrap_or_default();
        let password = params.get("password").map_err(page)?.unwrap_or_default();
        let form = pages::Form {
            interaction: id.expose(),
            csrf: csrf.expose(),
        };
        // Throttle before the Argon2 work, per username and per client IP.
        if !login_allowed(ctx, req, username).await? {
            return Ok(pages::login(
                &app,
                &areq,
                &form,
                Some((pages::Notice::Throttled, username)),
            ));
        }
        let Some(user) = check_login(ctx, username, password).await? else {
            return Ok(pages::login(
                &app,
                &areq,
                &form,
                Some((pages::Notice::WrongPassword, username)),
            ));
        };
        let now = ctx.now_s();
        let sid = Secret::random_base62(ctx.rng, 43);
        let session = Session {
            user_id: user.user_id.clone(),
            auth_time_s: now,
            expires_at_s: now + SESSION_TTL_S,
        };
        ctx.store.put_session(&sid.hash(), &session).await?;
        let set_cookie = cookie(req, SESSION_COOKIE, sid.expose(), SESSION_TTL_S);
        let resp = match authorize::proceed(ctx, req, &app, areq, &user, now).await {
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
    if deny {
        return Err(Failure::Redirect(
            Box::new(areq),
            OAuthError::new(ErrorCode::AccessDenied, sf::DENIED),
        ));
    }
    // The consent form was rendered for this user in this browser (CSRF token + browser cookie).
    let auth_time = record.auth_time_s.unwrap_or_else(|| ctx.now_s());
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
    authorize::issue_code(ctx, &areq, user_id, auth_time).await
}

/// Counts a login attempt against the username and, where Cloudflare tells it, the client IP.
async fn login_allowed<S: Store>(
    ctx: &Ctx<'_, S>,
    req: &Request,
    username: &str,
) -> Result<bool, StoreError> {
    let by_user = ctx
        .store
        .allow(Limit::Login, &format!("user:{}", username.to_lowercase()))
        .await?;
    // Loopback is local development (workerd reports 127.0.0.1); Cloudflare never does.
    let by_ip = match req.header("cf-connecting-ip") {
        Some(ip) if !is_loopback(ip) => ctx.store.allow(Limit::Login, &format!("ip:{ip}")).await?,
        _ => true,
    };
    Ok(by_user && by_ip)
}

fn is_loopback(ip: &str) -> bool {
    ip.parse::<std::net::IpAddr>()
        .is_ok_and(|a| a.is_loopback())
}

/// The user for these credentials, if they are right and the user is active. Unknown users cost
/// the same hashing work as known ones.
pub async fn check_login<S: Store>(
    ctx: &Ctx<'_, S>,
    username: &str,
    password: &str,
) -> Result<Option<User>, StoreError> {
    match ctx.store.find_user_by_username(username).await? {
        Some(user) if password::verify_password(password, &user.password_hash) && user.active => {
            Ok(Some(user))
        }
        Some(_) => Ok(None),
        None => {
            password::burn_verification(password);
            Ok(None)
        }
    }
}
