//! Routes and shards (`core/storage/route.rs`, `docs/scaling.md`): every token names its
//! family's shard, a lookup under another route finds nothing, and a shard that is down fails
//! only the requests whose keys it owns, with `temporarily_unavailable`, losing nothing.

use std::collections::HashSet;

use edge_oauth::core::secret::Secret;
use edge_oauth::core::storage::{CodeStore, Route};
use futures_executor::block_on;
use serde_json::{json, Value};

use crate::support::*;

/// The route an opaque access token, a refresh token or a JWT's `jti` starts with.
fn route_of(token: &str) -> Route {
    let rest = token.rsplit_once('!').map_or(token, |(_, r)| r);
    Route::of_key(rest).expect("no route")
}

fn jti_of(jwt: &str) -> String {
    jwt_claims(jwt)["jti"].as_str().unwrap().to_owned()
}

#[test]
fn every_token_of_a_family_carries_the_familys_route_and_families_spread() {
    let s = Server::new();
    let app = s.app(json!({"rotate_refresh_tokens": true}));
    let jwt_app = s.app(json!({"jwt_access_tokens": true}));
    // Logins are throttled per username (10 a minute): a few users share the work.
    let users: Vec<String> = (0..5).map(|i| format!("ann{i}")).collect();
    for u in &users {
        s.user(u);
    }
    let mut routes = HashSet::new();
    for i in 0..24 {
        let t = s.tokens(&app, &users[i / 6]);
        let (access, refresh) = (
            t["access_token"].as_str().unwrap(),
            t["refresh_token"].as_str().unwrap(),
        );
        assert_eq!(route_of(access), route_of(refresh), "{access} {refresh}");
        assert_eq!(refresh.len(), 64);
        // The rotated pair stays on the family's route.
        let r = s.refresh(&app, refresh).json();
        assert_eq!(
            route_of(r["refresh_token"].as_str().unwrap()),
            route_of(refresh)
        );
        assert_eq!(
            route_of(r["access_token"].as_str().unwrap()),
            route_of(refresh)
        );
        routes.insert(route_of(refresh));
    }
    // Four shards configured (support.rs): 24 families land on all of them, and on no other.
    assert_eq!(routes, (0..4).map(Route).collect::<HashSet<_>>());
    let t = s.tokens(&jwt_app, &users[4]);
    let jti = jti_of(t["access_token"].as_str().unwrap());
    assert_eq!(jti.len(), 2 + 22 + 28, "{jti}");
    assert_eq!(
        Route::of_key(&jti),
        Some(route_of(t["refresh_token"].as_str().unwrap()))
    );
}

#[test]
fn a_token_presented_under_another_route_is_unknown() {
    let s = Server::new();
    let app = s.app(json!({}));
    s.user("bea");
    let t = s.tokens(&app, "bea");
    let refresh = t["refresh_token"].as_str().unwrap();
    let other = Route((route_of(refresh).0 + 1) % 4).encode();
    let moved = format!("{other}{}", &refresh[2..]);
    let r = s.refresh(&app, &moved);
    assert_eq!((r.status, r.error()), (400, "invalid_grant".to_owned()));
    assert_eq!(s.refresh(&app, refresh).status, 200);
}

#[test]
fn a_shard_that_is_down_fails_only_its_own_keys_cleanly_and_loses_nothing() {
    let s = Server::new();
    let app = s.app(json!({}));
    // Logins are throttled per username (10 a minute): a user per login.
    let mut n = 0;
    let mut next_user = || {
        n += 1;
        let u = format!("cid{n}");
        s.user(&u);
        u
    };
    let mut by_route: Vec<Vec<Value>> = vec![vec![]; 4];
    while by_route.iter().any(Vec::is_empty) {
        let t = s.tokens(&app, &next_user());
        let r = route_of(t["refresh_token"].as_str().unwrap());
        by_route[usize::from(r.0)].push(t);
    }
    // Codes minted before the outage, until one (at least) is on the shard that goes down and
    // one on another (a code's shard is its family's, chosen at random when it is minted).
    let route_of_code = |code: &str| {
        let grant = block_on(s.store.get_code(&Secret::new(code).hash()))
            .unwrap()
            .unwrap();
        Route::of_key(&grant.family_id).unwrap()
    };
    let mut codes: Vec<String> = vec![];
    while codes.len() < 4
        || !codes.iter().any(|c| route_of_code(c) == Route(2))
        || codes.iter().all(|c| route_of_code(c) == Route(2))
    {
        codes.push(s.code_for(&app, &next_user(), &[]));
    }
    s.store.take_shard_down(Some(Route(2)));

    for (i, ts) in by_route.iter().enumerate() {
        let refresh = ts[0]["refresh_token"].as_str().unwrap();
        let r = s.refresh(&app, refresh);
        if i == 2 {
            assert_eq!(r.status, 503, "{}", r.body);
            assert_eq!(r.error(), "temporarily_unavailable");
            assert_eq!(r.header("retry-after"), Some("5"));
            assert!(r.header("cache-control").unwrap().contains("no-store"));
            // Revocation of its token is unavailable too, never a silent 200.
            assert_eq!(s.revoke(refresh).status, 503);
        } else {
            assert_eq!(r.status, 200, "shard {i}: {}", r.body);
        }
    }
    let mut refused = vec![];
    for code in &codes {
        let r = s.exchange(&app, code, None);
        match r.status {
            200 => {}
            503 => {
                assert_eq!(r.error(), "temporarily_unavailable");
                refused.push(code.clone());
            }
            other => panic!("code exchange answered {other}: {}", r.body),
        }
    }
    assert!(
        !refused.is_empty() && refused.len() < codes.len(),
        "{}",
        refused.len()
    );

    // Back up: nothing refused was used up, and each works exactly once.
    s.store.take_shard_down(None);
    let refresh = by_route[2][0]["refresh_token"].as_str().unwrap();
    assert_eq!(s.refresh(&app, refresh).status, 200);
    for code in &refused {
        assert_eq!(s.exchange(&app, code, None).status, 200);
        assert_eq!(s.exchange(&app, code, None).status, 400);
    }
}
