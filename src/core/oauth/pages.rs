//! The HTML pages the server shows (CONTRACT §3). They work without JavaScript; field and button
//! names are part of the contract: login `username`, `password`, `login`; consent `approve`,
//! `deny`. Every form carries a CSRF token.

use super::authz::{describe_scope, AuthorizationRequest};
use crate::core::http::Response;
use crate::core::model::{App, User};

pub struct Form<'a> {
    pub interaction: &'a str,
    pub csrf: &'a str,
}

/// HTML-escapes text and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            _ => out.push(c),
        }
    }
    out
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

fn layout(title: &str, body: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body{{font-family:system-ui,sans-serif;background:#f3f4f6;margin:0;display:flex;justify-content:center}}
main{{background:#fff;margin-top:8vh;padding:2rem;border-radius:8px;box-shadow:0 1px 4px #0002;width:22rem}}
h1{{font-size:1.25rem;margin-top:0}} label{{display:block;margin:.75rem 0 .25rem}}
input{{width:100%;padding:.5rem;box-sizing:border-box}} button{{margin-top:1rem;padding:.5rem 1rem}}
.error{{color:#b91c1c}} ul{{padding-left:1.2rem}}
</style></head><body><main>
{body}
</main></body></html>"#,
        title = escape(title)
    )
}

fn hidden(form: &Form<'_>) -> String {
    format!(
        r#"<input type="hidden" name="interaction" value="{}"><input type="hidden" name="csrf_token" value="{}">"#,
        escape(form.interaction),
        escape(form.csrf)
    )
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
        None => ("", 200),
        Some((Notice::WrongPassword, _)) => (
            r#"<p class="error" role="alert">Wrong username or password.</p>"#,
            401,
        ),
        Some((Notice::Throttled, _)) => (
            r#"<p class="error" role="alert">Too many attempts. Wait a minute and try again.</p>"#,
            429,
        ),
    };
    let body = format!(
        r#"<h1>Log in to {app}</h1>{error}
<form method="post" action="/services/oauth2/authorize">{hidden}
<label for="username">Username</label><input id="username" name="username" autocomplete="username" value="{username}" required>
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit" name="login" value="1">Log in</button>
</form>"#,
        app = escape(&app.name),
        hidden = hidden(form),
        username = escape(username),
    );
    Response::html(
        status,
        layout("Log in", &body),
        &csp_source(&areq.redirect_uri),
    )
}

pub fn consent(app: &App, user: &User, areq: &AuthorizationRequest, form: &Form<'_>) -> Response {
    let scopes: String = areq
        .scopes
        .iter()
        .map(|s| {
            format!(
                "<li>{} <small>({})</small></li>",
                escape(describe_scope(s)),
                escape(s)
            )
        })
        .collect();
    let body = format!(
        r#"<h1>Allow access?</h1>
<p><strong>{app}</strong> wants to act for <strong>{user}</strong>:</p>
<ul>{scopes}</ul>
<form method="post" action="/services/oauth2/authorize">{hidden}
<button type="submit" name="approve" value="1">Allow</button>
<button type="submit" name="deny" value="1">Deny</button>
</form>"#,
        app = escape(&app.name),
        user = escape(&user.username),
        hidden = hidden(form),
    );
    Response::html(
        200,
        layout("Allow access", &body),
        &csp_source(&areq.redirect_uri),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn escape_neutralises_markup() {
        assert_eq!(
            super::escape(r#"<a href="x">'&"#),
            "&lt;a href=&quot;x&quot;&gt;&#x27;&amp;"
        );
    }
}
