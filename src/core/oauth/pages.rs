//! The HTML pages the server shows (CONTRACT §3). They work without JavaScript; field and button
//! names are part of the contract: login `username`, `password`, `login`; consent `approve`,
//! `deny`. Every form carries a CSRF token.

use super::authz::{describe_scope, AuthorizationRequest};
use crate::core::http::Response;
use crate::core::model::{App, User};
use maud::{html, Markup, PreEscaped, DOCTYPE};

pub struct Form<'a> {
    pub interaction: &'a str,
    pub csrf: &'a str,
}

/// The CSP source that lets the form's final redirect reach the client's registered callback:
/// its origin for http(s), its scheme for private-use schemes (`com.example.app:`).
fn csp_source(redirect_uri: &str) -> String {
    match url::Url::parse(redirect_uri) {
        Ok(u) if u.origin().is_tuple() => u.origin().ascii_serialization(),
        Ok(u) => format!("{}:", u.scheme()),
        Err(_) => String::new(),
    }
}

/// The stylesheet every page (and the demo app at `/`) shares: `www/style.css`, served as a
/// static asset (wrangler.toml `[assets]`), so pages allow `style-src 'self'` and no inline style.
pub const STYLESHEET: &str = "/static/edge-oauth.css";

/// The page around `body`. maud escapes every interpolated value.
fn layout(title: &str, body: Markup) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                link rel="stylesheet" href=(STYLESHEET);
            }
            body { main { p.brand { "edge-oauth" } (body) } }
        }
    }
    .into_string()
}

/// An error that cannot be redirected (`authz::error_page`), for a browser: the same
/// `error=…&error_description=…` line Salesforce clients read, as the page's text, under a
/// heading. `line` is that plain-text body.
pub fn error(status: u16, line: &str) -> Response {
    let description = form_urlencoded::parse(line.as_bytes())
        .find(|(k, _)| k == "error_description")
        .map(|(_, v)| v.into_owned());
    let body = html! {
        h1 { "This sign-in cannot continue" }
        @if let Some(d) = description {
            p { (d) "." }
        }
        p { code #error-line { (line) } }
        p.muted { "Go back to the app you came from and try again. If this keeps happening, tell its developer what this page says." }
    };
    Response::html(status, layout("Sign-in error", body), "")
}

fn hidden(form: &Form<'_>) -> Markup {
    html! {
        input type="hidden" name="interaction" value=(form.interaction);
        input type="hidden" name="csrf_token" value=(form.csrf);
    }
}

/// Why the login page is shown again.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    WrongPassword,
    Throttled,
}

pub fn login(
    app: &App,
    areq: &AuthorizationRequest,
    form: &Form<'_>,
    again: Option<(Notice, &str)>,
) -> Response {
    let username = again
        .map(|(_, u)| u)
        .or(areq.login_hint.as_deref())
        .unwrap_or_default();
    let (error, status) = match again {
        None => (None, 200),
        Some((Notice::WrongPassword, _)) => (Some("Wrong username or password."), 401),
        Some((Notice::Throttled, _)) => {
            (Some("Too many attempts. Wait a minute and try again."), 429)
        }
    };
    let body = html! {
        h1 { "Log in to " (app.name) }
        @if let Some(error) = error {
            p.error role="alert" { (error) }
        }
        form method="post" action="/services/oauth2/authorize" {
            (hidden(form))
            label for="username" { "Username" }
            input id="username" name="username" autocomplete="username" value=(username) required;
            label for="password" { "Password" }
            input id="password" name="password" type="password" autocomplete="current-password" required;
            button type="submit" name="login" value="1" { "Log in" }
        }
    };
    throttled(Response::html(
        status,
        layout("Log in", body),
        &csp_source(&areq.redirect_uri),
    ))
}

/// A page answered 429 says when to try again (RFC 6585 §4), as the JSON 429s do: the
/// throttles count per minute.
fn throttled(resp: Response) -> Response {
    if resp.status == 429 {
        resp.with_header("retry-after", "60")
    } else {
        resp
    }
}

pub fn consent(app: &App, user: &User, areq: &AuthorizationRequest, form: &Form<'_>) -> Response {
    let body = html! {
        h1 { "Allow access?" }
        @if let Some(code) = &areq.device {
            p { "A device showing the code " strong { (super::device::display_user_code(code)) } " is asking. Allow only if that code is on your device's screen and you started this." }
        }
        p { strong { (app.name) } " wants to act for " strong { (user.username) } ":" }
        ul {
            @for s in &areq.scopes {
                li { (describe_scope(s)) " " small { "(" (s) ")" } }
            }
        }
        // A client that registered itself names itself: say where the answer really goes
        // (RFC 9700 §4.11.2, the client ID metadata document draft's consent advice).
        @if let (Some(_), Some(host)) = (&app.registration, redirect_host(&areq.redirect_uri)) {
            p class="redirect-host" { "This app registered itself; after you answer you will be sent to " strong { (host) } "." }
        }
        // OIDC Registration §2: show the client's policy and terms (links only: the logo would
        // be a third-party resource on this page, RFC 9700 §4.2.4). Checked https URLs.
        @if let Some(reg) = &app.registration {
            @for (field, label) in [("policy_uri", "Privacy policy"), ("tos_uri", "Terms of service")] {
                @if let Some(url) = reg.extra.get(field).and_then(|v| v.as_str()) {
                    p { a href=(url) rel="noopener noreferrer" target="_blank" { (label) " of " (app.name) } }
                }
            }
        }
        @if let Some(resource) = &areq.resource {
            p { "Access is for " strong { (resource) } " only." }
        }
        form method="post" action="/services/oauth2/authorize" {
            (hidden(form))
            button type="submit" name="approve" value="1" { "Allow" }
            // The gap the browser puts between two inline buttons.
            " "
            button type="submit" name="deny" value="1" { "Deny" }
        }
    };
    Response::html(
        200,
        layout("Allow access", body),
        &csp_source(&areq.redirect_uri),
    )
}

/// The host (and port) of a redirect URI, as a person should read it.
fn redirect_host(uri: &str) -> Option<String> {
    let url = url::Url::parse(uri).ok()?;
    let host = url.host_str()?;
    Some(match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_owned(),
    })
}

/// Why the device code page is shown again.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum CodeNotice {
    Unknown,
    Throttled,
}

/// `/setup/connect`: the field `user_code` and the button `continue` (CONTRACT §3).
pub fn device_entry(user_code: &str, csrf: &str, notice: Option<CodeNotice>) -> Response {
    let (error, status) = match notice {
        None => (None, 200),
        Some(CodeNotice::Unknown) => (
            Some("That code is not valid, or it has expired. Check the code on your device."),
            400,
        ),
        Some(CodeNotice::Throttled) => (
            Some("Too many codes entered. Wait a minute and try again."),
            429,
        ),
    };
    let body = html! {
        h1 { "Connect a device" }
        p { "Enter the code your device shows." }
        @if let Some(error) = error {
            p.error role="alert" { (error) }
        }
        form method="post" action=(super::verification::PATH) {
            input type="hidden" name="csrf_token" value=(csrf);
            label for="user_code" { "Code" }
            input id="user_code" name="user_code" value=(user_code) autocomplete="off" autocapitalize="characters" spellcheck="false" required;
            button type="submit" name="continue" value="1" { "Continue" }
        }
    };
    throttled(Response::html(status, layout("Connect a device", body), ""))
}

/// The end of a device approval: back to the device.
pub fn device_done(app: &App, approved: bool) -> Response {
    let body = html! {
        @if approved {
            h1 { "Device connected" }
            p { (app.name) " can now act for you on your device. You can close this page and go back to it." }
        } @else {
            h1 { "Access denied" }
            p { "You denied " (app.name) " access. The device gets no access." }
        }
    };
    Response::html(200, layout("Device", body), "")
}

/// The script of the form-post page: submits the one form. Allowed by its hash, and nothing else
/// may run.
const AUTO_SUBMIT: &str = "document.forms[0].submit()";

/// OAuth 2.0 Form Post Response Mode: the response as hidden fields of a form that POSTs itself
/// to the redirect URI (with a button for browsers without script). The page may post only there.
pub fn form_post(redirect_uri: &str, pairs: &[(&str, &str)]) -> Response {
    let body = html! {
        h1 { "Continue" }
        form method="post" action=(redirect_uri) {
            @for (name, value) in pairs {
                input type="hidden" name=(name) value=(value);
            }
            noscript { button type="submit" { "Continue" } }
        }
        script { (PreEscaped(AUTO_SUBMIT)) }
    };
    let hash = crate::core::secret::b64(&crate::core::secret::sha256(AUTO_SUBMIT.as_bytes()));
    let csp = format!(
        "default-src 'none'; script-src 'sha256-{hash}'; style-src 'self'; form-action {}; frame-ancestors 'none'; base-uri 'none'",
        csp_source(redirect_uri)
    );
    Response::new(200, "text/html;charset=UTF-8", layout("Continue", body))
        .with_header("x-frame-options", "DENY")
        .with_header("content-security-policy", &csp)
        .with_header("referrer-policy", "no-referrer")
        .no_store()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_form_post_page_carries_the_fields_escaped_and_allows_only_its_script() {
        let r = super::form_post(
            "https://app.example/cb",
            &[("code", "a\"<b"), ("state", "s&t")],
        );
        let body = String::from_utf8(r.body.clone()).unwrap();
        assert!(
            body.contains(r#"action="https://app.example/cb""#),
            "{body}"
        );
        assert!(body.contains(r#"value="a&quot;&lt;b""#), "{body}");
        assert!(body.contains(r#"value="s&amp;t""#), "{body}");
        let csp = r
            .headers
            .iter()
            .find(|(k, _)| k == "content-security-policy")
            .map(|(_, v)| v.clone())
            .unwrap();
        assert!(csp.contains("script-src 'sha256-"), "{csp}");
        assert!(csp.contains("form-action https://app.example;"), "{csp}");
    }

    #[test]
    fn interpolated_text_is_escaped() {
        let form = super::Form {
            interaction: r#""><script>"#,
            csrf: "&'",
        };
        assert_eq!(
            super::hidden(&form).into_string(),
            r#"<input type="hidden" name="interaction" value="&quot;&gt;&lt;script&gt;"><input type="hidden" name="csrf_token" value="&amp;'">"#
        );
    }
}
