//! The scheduled cleanup (`core/maintenance.rs`): it removes only what can no longer decide
//! anything, and every live token keeps working.

use edge_oauth::core::env::Clock;
use edge_oauth::core::maintenance::{self, REVOKED_KEPT_S};
use edge_oauth::core::secret::Secret;
use futures_executor::block_on;
use serde_json::json;

use crate::support::*;

#[test]
fn cleanup_removes_expired_and_dead_state_and_nothing_live() {
    let s = Server::new();
    let app = s.app(json!({}));
    for u in ["alice", "bob", "carol"] {
        s.user(u);
    }
    let alice_code = s.code_for(&app, "alice", &[]);
    let alice = s.exchange(&app, &alice_code, None).json();
    // Bob's authorization has no refresh token: once its access token expires, nothing is left.
    let bob_code = s.code_for(&app, "bob", &[("scope", "api")]);
    let bob = s.exchange(&app, &bob_code, None).json();
    assert!(bob.get("refresh_token").is_none());
    let carol = s.tokens(&app, "carol");
    assert_eq!(
        s.revoke(carol["refresh_token"].as_str().unwrap()).status,
        200
    );
    assert_eq!(s.store.family_count(), 3);

    // Nothing is due yet.
    let none = block_on(maintenance::run(&s.store, s.clock.now_s(), 90 * 86_400)).unwrap();
    assert_eq!(none, maintenance::Purged::default());

    // Past the access tokens' lifetime (7200 s): they go, and bob's family with them; alice's
    // refresh token and carol's revoked family (kept a day) stay. The codes' markers go.
    s.clock.advance_s(7201);
    let p = block_on(maintenance::run(&s.store, s.clock.now_s(), 90 * 86_400)).unwrap();
    assert_eq!(p.access_tokens, 3, "{p:?}");
    assert_eq!(p.families, 1, "{p:?}");
    assert_eq!(p.code_redemptions, 3, "{p:?}");
    assert!(!s
        .store
        .code_redemption_held(&Secret::new(alice_code.as_str()).hash()));
    // A replay of alice's (long expired) code is refused and revokes nothing.
    assert_eq!(s.exchange(&app, &alice_code, None).status, 400);
    let refreshed = s.refresh(&app, alice["refresh_token"].as_str().unwrap());
    assert_eq!(refreshed.status, 200, "{}", refreshed.body);
    let fresh_at = refreshed.json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(s.userinfo(&fresh_at).status, 200);
    assert_eq!(
        s.userinfo(bob["access_token"].as_str().unwrap()).status,
        401
    );

    // A day after carol's revocation her family goes too; her token stays refused.
    s.clock.advance_s(REVOKED_KEPT_S);
    let p = block_on(maintenance::run(&s.store, s.clock.now_s(), 90 * 86_400)).unwrap();
    assert!(p.families >= 1, "{p:?}");
    assert_eq!(s.store.family_count(), 1, "only alice's family is left");
    let r = s.refresh(&app, carol["refresh_token"].as_str().unwrap());
    assert_eq!(r.json()["error"], "invalid_grant");
    assert_eq!(
        s.refresh(
            &app,
            refreshed.json()["refresh_token"]
                .as_str()
                .unwrap_or(alice["refresh_token"].as_str().unwrap())
        )
        .status,
        200
    );
}
