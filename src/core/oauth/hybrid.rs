//! Hybrid apps (salesforce-reference.md §4): an access token and a web session tied together.
//!
//! `hybrid_token` at the authorization endpoint, and `hybrid_auth_code` / `hybrid_refresh` at
//! the token endpoint, open a **web session** beside the token family: a `sid` of its own (never
//! the access token), plus a child `sid` per granted `lightning` / `visualforce` / `content`
//! scope, all kept (hashed) in the family's shard. A web session lives exactly as long as its
//! family and its generation: revoking the family ends it, and a `hybrid_refresh` replaces it
//! with a new one. `/secur/frontdoor.jsp?sid=…&retURL=…` turns a live `sid` into a browser login
//! session, which checks its web session every time it is used (`interaction::current_session`).

use super::authz::error_page;
use super::bearer::token_key;
use super::error::{ErrorCode, OAuthError};
use super::interaction::{SESSION_COOKIE, SESSION_TTL_S};
use super::issue::family_secret;
use super::scope::ScopeSet;
use crate::core::config::Ctx;
use crate::core::http::{Method, Params, Request, Response};
use crate::core::secret::{Secret, SecretHash};
use crate::core::storage::{Session, Store};

/// The cookie name a hybrid app sets its `sid` under (`sidCookieName`).
const SID_COOKIE_NAME: &str = "sid";

/// Scopes that get a child session of their own, with the field names they are reported under.
const CHILD_SCOPES: [(&str, &str, &str); 3] = [
    ("lightning", "lightning_domain", "lightning_sid"),
    ("visualforce", "visualforce_domain", "visualforce_sid"),
    ("content", "content_domain", "content_sid"),
];

/// A freshly minted web session: its `sid`, the child sessions, and the values the client sets
/// as cookies beside it.
pub struct WebSessions {
    sid: Secret,
    children: Vec<(&'static str, &'static str, Secret)>,
    csrf: Secret,
    client: Secret,
}

impl WebSessions {
    /// The web session of family `family_id`: every `sid` carries the family's route, so it is
    /// found in the family's shard; 256 random bits each.
    pub fn mint<S: Store>(ctx: &Ctx<'_, S>, family_id: &str, scopes: &ScopeSet) -> Self {
        let sid = || family_secret(family_id, &Secret::random_base62(ctx.rng, 43));
        Self {
            sid: sid(),
            children: CHILD_SCOPES
                .iter()
                .filter(|(scope, _, _)| scopes.contains(scope))
                .map(|&(_, domain, name)| (domain, name, sid()))
                .collect(),
            csrf: Secret::random_base62(ctx.rng, 43),
            client: Secret::random_base62(ctx.rng, 20),
        }
    }

    /// What the family's shard keeps: the hashes of every `sid`.
    pub fn hashes(&self) -> Vec<SecretHash> {
        std::iter::once(&self.sid)
            .chain(self.children.iter().map(|(_, _, s)| s))
            .map(Secret::hash)
            .collect()
    }

    /// The response fields hybrid clients read (Mobile SDK, salesforce-reference.md §4). The
    /// domains are the issuer's host: the sessions are ours. `cookie-sid_Client`,
    /// `cookie-clientSrc` and `csrf_token` are values for the client to set as cookies and
    /// headers beside the `sid`; no endpoint here reads them.
    pub fn fields<S: Store>(&self, ctx: &Ctx<'_, S>) -> Vec<(&'static str, String)> {
        let host = url::Url::parse(&ctx.issuer)
            .ok()
            .and_then(|u| {
                u.host_str()
                    .map(|h| u.port().map_or(h.to_owned(), |p| format!("{h}:{p}")))
            })
            .unwrap_or_default();
        let mut fields = vec![
            ("sid", self.sid.expose().to_owned()),
            ("sidCookieName", SID_COOKIE_NAME.to_owned()),
            ("parent_sid", self.sid.expose().to_owned()),
            ("cookie-sid_Client", self.client.expose().to_owned()),
            ("cookie-clientSrc", host.clone()),
            ("csrf_token", self.csrf.expose().to_owned()),
        ];
        for (domain, name, sid) in &self.children {
            fields.push((domain, host.clone()));
            fields.push((name, sid.expose().to_owned()));
        }
        fields
    }
}

/// `/secur/frontdoor.jsp?sid=…&retURL=…` (GET, or a form POST as Salesforce recommends): a live
/// web session becomes this browser's login session, then the browser goes to `retURL`, a path
/// on this server. An absolute or protocol-relative `retURL` is refused (no open redirect).
pub async fn frontdoor<S: Store>(ctx: &Ctx<'_, S>, req: &Request) -> Response {
    let params = match req.method {
        Method::Post => req.form_params().map(|p| p.merged_with(req.query_params())),
        _ => Ok(req.query_params()),
    };
    match bridge(ctx, params).await {
        Ok(r) => r,
        Err(e) => {
            let mut page = error_page(&e);
            if e.code == ErrorCode::AccessDenied {
                page.status = 401;
            }
            page
        }
    }
}

async fn bridge<S: Store>(
    ctx: &Ctx<'_, S>,
    params: Result<Params, crate::core::http::ParamError>,
) -> Result<Response, OAuthError> {
    let params = params?;
    let sid = params
        .get("sid")?
        .ok_or_else(|| OAuthError::invalid_request("sid required"))?;
    let ret = params.get("retURL")?.unwrap_or("/");
    if !is_local_path(ret) {
        return Err(OAuthError::invalid_request(
            "retURL must be a path on this server",
        ));
    }
    let ended = || OAuthError::new(ErrorCode::AccessDenied, "session is not valid");
    let key = token_key(sid);
    let family = ctx
        .store
        .find_web_session(&key)
        .await?
        .filter(|f| f.revoked_at_s.is_none())
        .ok_or_else(ended)?;
    let user = ctx
        .store
        .get_user(&family.user_id)
        .await?
        .filter(|u| u.active)
        .ok_or_else(ended)?;
    let now = ctx.now_s();
    let cookie = Secret::random_base62(ctx.rng, 43);
    let session = Session {
        user_id: user.user_id,
        web_session: Some(key),
        auth_time_s: family.auth_time_s,
        created_at_ms: ctx.clock.now_ms(),
        expires_at_s: now + SESSION_TTL_S,
    };
    ctx.store.put_session(&cookie.hash(), &session).await?;
    let set_cookie = ctx
        .cookies()
        .set(SESSION_COOKIE, cookie.expose(), SESSION_TTL_S);
    Ok(Response::redirect(&ctx.url(ret)).with_header("set-cookie", &set_cookie))
}

/// A path on this server: `/`, then no second `/` or `\` (which browsers read as another host),
/// and nothing that is not printable ASCII.
fn is_local_path(p: &str) -> bool {
    p.starts_with('/')
        && !p.starts_with("//")
        && !p.starts_with("/\\")
        && p.bytes().all(|b| (0x21..0x7f).contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ret_url_is_a_local_path_only() {
        for ok in ["/", "/services/oauth2/authorize?x=1&y=%2F", "/a/b"] {
            assert!(is_local_path(ok), "{ok}");
        }
        for bad in [
            "https://evil.example/",
            "//evil.example",
            "/\\evil.example",
            "evil",
            "",
            "/a b",
            "/\u{e9}",
            "/a\r\nb",
        ] {
            assert!(!is_local_path(bad), "{bad}");
        }
    }
}
