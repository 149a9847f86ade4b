//! A whole server over the in-memory store and a mock clock, driven through the core router
//! exactly as the edge drives it, plus a tiny browser (cookie jar + form reader).

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::OnceLock;

use edge_oauth::core::config::{Config, Ctx};
use edge_oauth::core::env::{MockClock, OsRng};
use edge_oauth::core::gateway::parse_routes;
use edge_oauth::core::http::{Method, Request, Response};
use edge_oauth::core::keys::managed::Vault;
use edge_oauth::core::keys::native::NativeVault;
use edge_oauth::core::keys::KeySet;
use edge_oauth::core::oauth::stamp::StampKey;
use edge_oauth::core::outbound::{FetchError, FetchFuture, Fetched, Fetcher, Outbound};
use edge_oauth::core::router;
use edge_oauth::core::secret::{b64url, sha256, Secret};
use edge_oauth::core::storage::memory::MemoryStore;
use edge_oauth::core::storage::AuditStore;
use futures_executor::block_on;
use serde_json::{json, Value};

pub const ISSUER: &str = "https://login.example.com";
pub const CALLBACK: &str = "https://app.example.com/cb";
pub const PASSWORD: &str = "correct horse battery";
/// The session cookie's name under an https issuer (`__Host-` prefix, RFC 6265bis).
pub const SID: &str = "__Host-eo_sid";
/// The upstream of the two demo gateway routes.
pub const UPSTREAM: &str = "https://upstream.example.net";
pub const ADMIN: &str = "admin-token-for-tests-0123456789abcdefghijk";

fn test_pem() -> &'static str {
    static PEM: OnceLock<String> = OnceLock::new();
    PEM.get_or_init(|| {
        use rsa::pkcs8::{EncodePrivateKey, LineEnding};
        let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
        key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string()
    })
}

pub struct Server {
    pub store: MemoryStore,
    pub clock: MockClock,
    pub config: Config,
    /// What the server's outbound fetches find (client ID metadata documents), by URL.
    pub web: Rc<Web>,
}

/// The "internet" of the flow tests: URL → answer. Counts the fetches made.
#[derive(Default)]
pub struct Web {
    pub pages: RefCell<HashMap<String, Result<Fetched, FetchError>>>,
    pub fetches: RefCell<Vec<String>>,
}

impl Web {
    /// Serves `body` at `url` with status 200 and `cache_control`.
    pub fn serve(&self, url: &str, body: &Value, cache_control: Option<&str>) {
        self.answer(url, 200, body.to_string().as_bytes(), cache_control);
    }
    pub fn answer(&self, url: &str, status: u16, body: &[u8], cache_control: Option<&str>) {
        self.pages.borrow_mut().insert(
            url.into(),
            Ok(Fetched {
                status,
                body: body.to_vec(),
                cache_control: cache_control.map(str::to_owned),
            }),
        );
    }
}

impl Fetcher for Web {
    fn get<'a>(&'a self, url: &'a str, max_bytes: usize, _timeout_ms: u64) -> FetchFuture<'a> {
        self.fetches.borrow_mut().push(url.to_owned());
        let answer = self
            .pages
            .borrow()
            .get(url)
            .cloned()
            .unwrap_or_else(|| Err(FetchError::Unreachable("connection refused".into())));
        Box::pin(async move {
            match answer {
                Ok(f) if f.body.len() > max_bytes => Err(FetchError::TooLarge),
                other => other,
            }
        })
    }
}

pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn location(&self) -> url::Url {
        url::Url::parse(self.header("location").expect("no Location header")).unwrap()
    }
    pub fn query(&self, name: &str) -> Option<String> {
        self.location()
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }
    /// A field of the Location's fragment (the user-agent flows' response).
    pub fn fragment(&self, name: &str) -> Option<String> {
        let loc = self.header("location").expect("no Location header");
        let (_, frag) = loc.split_once('#')?;
        url::form_urlencoded::parse(frag.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }
    /// The error code of an RFC 6749 JSON error body.
    pub fn error(&self) -> String {
        self.json()["error"].as_str().unwrap_or_default().to_owned()
    }
}

impl From<Response> for Reply {
    fn from(r: Response) -> Self {
        Reply {
            status: r.status,
            headers: r.headers,
            body: String::from_utf8_lossy(&r.body).into_owned(),
        }
    }
}

#[derive(Clone)]
pub struct App {
    pub client_id: String,
    pub secret: String,
}

impl Server {
    pub fn new() -> Self {
        let web = Rc::new(Web::default());
        Server {
            web: web.clone(),
            store: MemoryStore::new(),
            clock: MockClock::at_ms(1_800_000_000_000),
            config: Config {
                issuer: Some(ISSUER.into()),
                admin_token: Some(Secret::new(ADMIN)),
                keys: Rc::new(KeySet::from_pem_list(test_pem()).unwrap()),
                stamp_key: Some(StampKey::derive(test_pem())),
                // Families spread over routes, so that a token looked up by another route
                // than its family's (which the memory store refuses) fails a test.
                shards: 4,
                signatures: Default::default(),
                outbound: Outbound(web),
                gateway: parse_routes(None, Some(UPSTREAM)).unwrap(),
                dev_mode: false,
                vault: Some(Vault(Rc::new(
                    NativeVault::new("a wrapping key of at least 32 characters").unwrap(),
                ))),
                jwks_max_age_s: None,
                audit_retention_days: None,
            },
        }
    }

    pub fn send(
        &self,
        method: Method,
        target: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Reply {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let req = Request {
            method,
            origin: ISSUER.into(),
            path: path.into(),
            query: query.into(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
                .collect(),
            body: body.as_bytes().to_vec(),
        };
        let ctx = Ctx {
            store: &self.store,
            clock: &self.clock,
            rng: &OsRng,
            config: &self.config,
            issuer: ISSUER.into(),
            notes: Default::default(),
        };
        let resp = block_on(router::handle(&ctx, &req));
        // As the edge does after answering: the request's audit events, with its address.
        let events = ctx.notes.take_events(req.header("cf-connecting-ip"));
        block_on(self.store.append_audit(&events)).unwrap();
        resp.into()
    }

    pub fn admin(&self, method: Method, path: &str, body: Value) -> Reply {
        let auth = format!("Bearer {ADMIN}");
        let body = if body.is_null() {
            String::new()
        } else {
            body.to_string()
        };
        self.send(
            method,
            path,
            &[
                ("authorization", &auth),
                ("content-type", "application/json"),
            ],
            &body,
        )
    }

    /// A connected app with `overrides` on top of a web-server-flow default.
    pub fn app(&self, overrides: Value) -> App {
        let mut body = json!({
            "name": "Test App",
            "callback_urls": [CALLBACK],
            "scopes": ["api", "refresh_token", "openid", "profile", "email"],
        });
        for (k, v) in overrides.as_object().unwrap() {
            body[k] = v.clone();
        }
        let r = self.admin(Method::Post, "/admin/apps", body);
        assert_eq!(r.status, 201, "{}", r.body);
        let j = r.json();
        App {
            client_id: j["client_id"].as_str().unwrap().into(),
            secret: j["client_secret"].as_str().unwrap().into(),
        }
    }

    pub fn user(&self, username: &str) -> String {
        let r = self.admin(
            Method::Post,
            "/admin/users",
            json!({"username": username, "password": PASSWORD, "email": format!("{username}@example.com"), "name": "Test User"}),
        );
        assert_eq!(r.status, 201, "{}", r.body);
        r.json()["user_id"].as_str().unwrap().into()
    }

    /// A form POST to `path`.
    pub fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> Reply {
        self.send(
            Method::Post,
            path,
            &[("content-type", "application/x-www-form-urlencoded")],
            &form(fields),
        )
    }

    pub fn token(&self, fields: &[(&str, &str)]) -> Reply {
        self.post_form("/services/oauth2/token", fields)
    }

    /// RFC 7009 revocation with the token alone, as Salesforce clients send it.
    pub fn revoke(&self, token: &str) -> Reply {
        self.post_form("/services/oauth2/revoke", &[("token", token)])
    }

    /// Code flow for `username` (login + consent), exchanged; the token response.
    pub fn tokens(&self, app: &App, username: &str) -> Value {
        let code = self.code_for(app, username, &[]);
        let r = self.exchange(app, &code, None);
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()
    }

    /// Code exchange with client_secret_post.
    pub fn exchange(&self, app: &App, code: &str, verifier: Option<&str>) -> Reply {
        let mut f = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("client_id", app.client_id.as_str()),
            ("client_secret", app.secret.as_str()),
            ("redirect_uri", CALLBACK),
        ];
        if let Some(v) = verifier {
            f.push(("code_verifier", v));
        }
        self.token(&f)
    }

    pub fn refresh(&self, app: &App, refresh_token: &str) -> Reply {
        self.token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", &app.client_id),
            ("client_secret", &app.secret),
        ])
    }

    pub fn userinfo(&self, access_token: &str) -> Reply {
        let auth = format!("Bearer {access_token}");
        self.send(
            Method::Get,
            "/services/oauth2/userinfo",
            &[("authorization", &auth)],
            "",
        )
    }

    /// Logs `username` in and approves, returning the code.
    pub fn code_for(&self, app: &App, username: &str, extra: &[(&str, &str)]) -> String {
        let mut browser = Browser::default();
        let r = browser.authorize(self, app, extra, Some((username, PASSWORD)), true);
        assert!(matches!(r.status, 302 | 303), "{} {}", r.status, r.body);
        r.query("code").expect("no code in redirect")
    }
}

pub fn form(fields: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish()
}

pub fn pkce() -> (String, String) {
    let verifier = Secret::random_base62(&OsRng, 64).expose().to_owned();
    let challenge = b64url(&sha256(verifier.as_bytes()));
    (verifier, challenge)
}

/// The authorize URL with exactly `params`.
pub fn authorize_url(params: &[(&str, &str)]) -> String {
    format!("/services/oauth2/authorize?{}", form(params))
}

/// The authorize URL for `app` with `redirect_uri` and `extra` parameters.
pub fn authorize_target(app: &App, redirect_uri: &str, extra: &[(&str, &str)]) -> String {
    let mut p = vec![
        ("response_type", "code"),
        ("client_id", app.client_id.as_str()),
        ("redirect_uri", redirect_uri),
    ];
    p.extend_from_slice(extra);
    format!("/services/oauth2/authorize?{}", form(&p))
}

/// Hidden form fields of a page.
pub fn hidden(html: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for part in html.split("<input type=\"hidden\" name=\"").skip(1) {
        let (name, rest) = part.split_once('"').unwrap();
        let value = rest
            .split("value=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        out.insert(name.to_owned(), value.to_owned());
    }
    out
}

/// Cookies, and the pages it was shown.
#[derive(Default)]
pub struct Browser {
    pub cookies: RefCell<HashMap<String, String>>,
    pub pages: Vec<&'static str>,
}

impl Browser {
    pub fn cookie_header(&self) -> String {
        self.cookies
            .borrow()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub fn absorb(&self, r: &Reply) {
        for (k, v) in &r.headers {
            if k == "set-cookie" {
                let pair = v.split(';').next().unwrap();
                let (name, value) = pair.split_once('=').unwrap();
                self.cookies.borrow_mut().insert(name.into(), value.into());
            }
        }
    }

    pub fn get(&self, server: &Server, target: &str) -> Reply {
        let c = self.cookie_header();
        let r = server.send(Method::Get, target, &[("cookie", &c)], "");
        self.absorb(&r);
        r
    }

    pub fn post_form(&self, server: &Server, fields: &[(&str, &str)]) -> Reply {
        let c = self.cookie_header();
        let r = server.send(
            Method::Post,
            "/services/oauth2/authorize",
            &[
                ("cookie", &c),
                ("content-type", "application/x-www-form-urlencoded"),
            ],
            &form(fields),
        );
        self.absorb(&r);
        r
    }

    /// Submits the login form whose hidden fields are `h`.
    pub fn login(
        &self,
        server: &Server,
        h: &HashMap<String, String>,
        username: &str,
        password: &str,
    ) -> Reply {
        self.post_form(
            server,
            &[
                ("interaction", &h["interaction"]),
                ("csrf_token", &h["csrf_token"]),
                ("username", username),
                ("password", password),
                ("login", "1"),
            ],
        )
    }

    /// Authorization request for `app` with `extra` params; logs in with `login` when shown
    /// the login page, and approves or denies the consent page.
    pub fn authorize(
        &mut self,
        server: &Server,
        app: &App,
        extra: &[(&str, &str)],
        login: Option<(&str, &str)>,
        approve: bool,
    ) -> Reply {
        self.authorize_at(
            server,
            &authorize_target(app, CALLBACK, extra),
            login,
            approve,
        )
    }

    /// The authorization request `target` (a full authorize URL), through login and consent.
    pub fn authorize_at(
        &mut self,
        server: &Server,
        target: &str,
        login: Option<(&str, &str)>,
        approve: bool,
    ) -> Reply {
        let mut r = self.get(server, target);
        for _ in 0..3 {
            if (300..400).contains(&r.status)
                || !r.body.contains("action=\"/services/oauth2/authorize\"")
            {
                return r;
            }
            let h = hidden(&r.body);
            let base = [
                ("interaction", h["interaction"].as_str()),
                ("csrf_token", h["csrf_token"].as_str()),
            ];
            if r.body.contains("name=\"password\"") {
                self.pages.push("login");
                let (u, p) = login.expect("login page shown but no credentials given");
                r = self.login(server, &h, u, p);
            } else {
                self.pages.push("consent");
                let mut f = base.to_vec();
                f.push((if approve { "approve" } else { "deny" }, "1"));
                r = self.post_form(server, &f);
            }
        }
        r
    }
}

/// The claims of a JWT, unverified (the tests of signatures are elsewhere).
pub fn jwt_claims(jwt: &str) -> Value {
    use base64::Engine;
    let part = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap(),
    )
    .unwrap()
}
