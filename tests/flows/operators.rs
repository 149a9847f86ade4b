//! Issue 13: the audit trail and managed signing keys, through the admin API.

use edge_oauth::core::env::Clock;
use edge_oauth::core::http::Method;
use edge_oauth::core::keys::managed::MAX_TOKEN_LIFETIME_S;
use edge_oauth::core::maintenance;
use futures_executor::block_on;
use serde_json::{json, Value};

use crate::support::*;

fn events(s: &Server, query: &str) -> Vec<Value> {
    let r = s.admin(Method::Get, &format!("/admin/audit{query}"), Value::Null);
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["events"].as_array().unwrap().clone()
}

fn kinds(events: &[Value]) -> Vec<(String, String)> {
    events
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_owned(),
                e["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn the_trail_records_logins_consent_tokens_revocation_and_admin_changes_without_secrets() {
    let s = Server::new();
    let app = s.app(json!({}));
    let alice = s.user("alice");
    // A failed login (known user, wrong password), then a full code flow, then a revocation.
    let b = Browser::default();
    let page = b.get(&s, &authorize_target(&app, CALLBACK, &[]));
    assert_eq!(
        b.login(&s, &hidden(&page.body), "alice", "wrong-password")
            .status,
        401
    );
    let tokens = s.tokens(&app, "alice");
    let refresh = tokens["refresh_token"].as_str().unwrap();
    assert_eq!(s.revoke(refresh).status, 200);

    let all = events(&s, "");
    let k = kinds(&all);
    // Newest first.
    assert_eq!(k[0], ("revoke".into(), "success".into()));
    assert!(k.contains(&("token".into(), "success".into())), "{k:?}");
    assert!(k.contains(&("consent".into(), "success".into())), "{k:?}");
    assert!(k.contains(&("login".into(), "success".into())), "{k:?}");
    assert!(k.contains(&("login".into(), "failure".into())), "{k:?}");
    assert!(k.contains(&("admin".into(), "success".into())), "{k:?}");
    let failed = all
        .iter()
        .find(|e| e["kind"] == "login" && e["outcome"] == "failure")
        .unwrap();
    assert_eq!(failed["user_id"], alice.as_str());
    assert_eq!(failed["client_id"], app.client_id.as_str());
    let token = all.iter().find(|e| e["kind"] == "token").unwrap();
    assert_eq!(token["detail"], "authorization_code");
    assert_eq!(token["user_id"], alice.as_str());
    let created = all
        .iter()
        .find(|e| e["kind"] == "admin" && e["detail"] == "POST /admin/apps 201")
        .unwrap();
    assert_eq!(created["actor"], "admin");
    // No secret anywhere in the trail: not the client secret, password, tokens.
    let text = serde_json::to_string(&all).unwrap();
    for secret in [
        app.secret.as_str(),
        PASSWORD,
        "wrong-password",
        refresh,
        tokens["access_token"].as_str().unwrap(),
    ] {
        assert!(!text.contains(secret), "the trail holds a secret");
    }
    // Ids ascend with time; every event has a time.
    let ids: Vec<u64> = all.iter().map(|e| e["id"].as_u64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "{ids:?}");
    assert!(all.iter().all(|e| e["at"].as_u64().unwrap() > 0));
}

#[test]
fn the_trail_filters_and_pages() {
    let s = Server::new();
    let app = s.app(json!({}));
    let other = s.app(json!({}));
    let alice = s.user("alice");
    s.user("bob");
    s.tokens(&app, "alice");
    s.tokens(&other, "bob");
    for e in events(&s, &format!("?user={alice}")) {
        assert_eq!(e["user_id"], alice.as_str());
    }
    let by_client = events(&s, &format!("?client={}&kind=token", other.client_id));
    assert_eq!(by_client.len(), 1);
    assert_eq!(by_client[0]["client_id"], other.client_id.as_str());
    // Pages of two, following `next`, cover the whole trail once.
    let all = events(&s, "");
    let mut seen = Vec::new();
    let mut query = "?limit=2".to_owned();
    loop {
        let r = s.admin(Method::Get, &format!("/admin/audit{query}"), Value::Null);
        let page = r.json();
        let evs = page["events"].as_array().unwrap();
        assert!(evs.len() <= 2);
        seen.extend(evs.iter().map(|e| e["id"].as_u64().unwrap()));
        match page["next"].as_str() {
            Some(next) => query = format!("?limit=2&before={next}"),
            None => break,
        }
    }
    let ids: Vec<u64> = all.iter().map(|e| e["id"].as_u64().unwrap()).collect();
    assert_eq!(seen, ids);
    // `since` is a lower bound on time.
    let later = s.clock.now_s() + 1;
    assert!(events(&s, &format!("?since={later}")).is_empty());
    // Bad queries are 400s that say why.
    for bad in [
        "?limit=0",
        "?limit=201",
        "?since=yesterday",
        "?kind=nope",
        "?foo=1",
    ] {
        let r = s.admin(Method::Get, &format!("/admin/audit{bad}"), Value::Null);
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
        assert_eq!(r.json()["error"], "invalid_request");
    }
}

#[test]
fn the_cron_prunes_events_past_the_retention() {
    let s = Server::new();
    let app = s.app(json!({}));
    s.user("alice");
    let before = events(&s, "").len();
    assert!(before >= 2);
    s.clock.advance_s(3600);
    s.tokens(&app, "alice");
    let after = events(&s, "").len();
    // Keep two hours: nothing goes.
    let p = block_on(maintenance::run(&s.store, s.clock.now_s(), 7200)).unwrap();
    assert_eq!(p.audit_events, 0);
    // Keep half an hour: the events of the first hour go, the recent ones stay.
    let p = block_on(maintenance::run(&s.store, s.clock.now_s(), 1800)).unwrap();
    assert_eq!(p.audit_events, before);
    assert_eq!(events(&s, "").len(), after - before);
}

fn keys(s: &Server) -> Vec<Value> {
    let r = s.admin(Method::Get, "/admin/keys", Value::Null);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["jwks_max_age_s"], 300);
    r.json()["keys"].as_array().unwrap().clone()
}

fn status_of(s: &Server, kid: &str) -> String {
    keys(s)
        .iter()
        .find(|k| k["kid"] == kid)
        .map(|k| k["status"].as_str().unwrap().to_owned())
        .unwrap_or_else(|| "absent".into())
}

#[test]
fn managed_keys_are_published_before_they_sign_and_kept_after() {
    let s = Server::new();
    let initial = keys(&s);
    assert_eq!(initial.len(), 1);
    assert_eq!(initial[0]["source"], "secret");
    assert_eq!(initial[0]["status"], "active");
    let secret_kid = initial[0]["kid"].as_str().unwrap().to_owned();

    // Rotate: a new key, scheduled one JWKS cache lifetime out.
    let r = s.admin(Method::Post, "/admin/keys", json!({"activate": true}));
    assert_eq!(r.status, 201, "{}", r.body);
    let new = r.json();
    let kid = new["kid"].as_str().unwrap().to_owned();
    assert_eq!(new["status"], "pending");
    assert_eq!(new["alg"], "RS256");
    assert_eq!(new["source"], "managed");
    assert_eq!(
        new["activates_at"].as_u64().unwrap(),
        new["created_at"].as_u64().unwrap() + 300
    );
    // Nothing private is shown or stored in the clear.
    assert!(!r.body.contains("PRIVATE") && !r.body.contains("sealed"));
    assert_eq!(status_of(&s, &secret_kid), "active");

    // A second key, ES256, not scheduled; then scheduled by activate.
    let r = s.admin(Method::Post, "/admin/keys", json!({"alg": "ES256"}));
    assert_eq!(r.status, 201, "{}", r.body);
    let es = r.json()["kid"].as_str().unwrap().to_owned();
    assert_eq!(r.json()["activates_at"], Value::Null);
    assert_eq!(status_of(&s, &es), "pending");

    // After the cache lifetime the RS256 key signs; the secret's key is still published.
    s.clock.advance_s(300);
    assert_eq!(status_of(&s, &kid), "active");
    assert_eq!(status_of(&s, &secret_kid), "published");

    // Deleting the signer, a SIGNING_KEYS key, or an unknown kid is refused.
    let del = |k: &str| s.admin(Method::Delete, &format!("/admin/keys/{k}"), Value::Null);
    assert_eq!(del(&kid).status, 409);
    assert_eq!(del(&secret_kid).status, 400);
    assert_eq!(del("no-such-kid").status, 404);
    let act = |k: &str| {
        s.admin(
            Method::Post,
            &format!("/admin/keys/{k}/activate"),
            Value::Null,
        )
    };
    assert_eq!(act(&secret_kid).status, 400);
    assert_eq!(act("no-such-kid").status, 404);

    // Activating the ES256 key a second later: it was published for 300 s already, so it
    // signs now.
    s.clock.advance_s(1);
    let r = act(&es);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["status"], "active");
    let retired = keys(&s).into_iter().find(|k| k["kid"] == kid).unwrap();
    assert_eq!(retired["status"], "retired");
    let until = retired["published_until"].as_u64().unwrap();
    assert_eq!(
        until,
        retired["retired_at"].as_u64().unwrap() + MAX_TOKEN_LIFETIME_S
    );
    // Retired but its tokens may live: refused until then, then deleted.
    let r = del(&kid);
    assert_eq!(r.status, 409);
    assert!(r.json()["error_description"]
        .as_str()
        .unwrap()
        .contains(&until.to_string()));
    s.clock.advance_s(MAX_TOKEN_LIFETIME_S);
    let r = del(&kid);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(status_of(&s, &kid), "absent");

    // Bad bodies.
    let r = s.admin(Method::Post, "/admin/keys", json!({"alg": "HS256"}));
    assert_eq!(r.status, 400);
    let r = s.admin(Method::Post, "/admin/keys", json!({"size": 4096}));
    assert_eq!(r.status, 400);
    // Every change is in the trail.
    let trail = events(&s, "?kind=admin");
    assert!(trail.iter().any(|e| e["detail"]
        .as_str()
        .unwrap()
        .starts_with(&format!("POST /admin/keys/{es}/activate 200"))));
}

#[test]
fn without_a_wrapping_key_no_key_is_created() {
    let mut s = Server::new();
    s.config.vault = None;
    let r = s.admin(Method::Post, "/admin/keys", json!({}));
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(r.body.contains("KEY_WRAPPING_KEY"));
    assert_eq!(keys(&s).len(), 1);
}
