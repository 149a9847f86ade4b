//! The admin API's JSON bodies (`core::admin`): near-valid and arbitrary bodies on every route
//! and method, with the admin token. Never a 5xx; every refusal a JSON error naming its cause;
//! what is accepted reads back as it was stored.

use edge_oauth::core::http::Method;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::TestRunner;
use serde_json::Value;

use crate::router::{admin_json, check_reply};
use crate::strategies::{json, text, word};
use crate::support::Server;

const ROUTES: &[&str] = &[
    "/admin/apps",
    "/admin/apps/{app}",
    "/admin/apps/{app}/secret",
    "/admin/apps/{app}/users/{user}",
    "/admin/users",
    "/admin/users/{user}",
    "/admin/settings",
    "/admin/registration-tokens",
    "/admin/resources",
    "/admin/resources/{word}",
    "/admin/assets",
    "/admin/assets/{word}",
    "/admin/keys",
    "/admin/keys/{word}",
    "/admin/keys/{word}/activate",
    "/admin/audit",
];

#[test]
fn admin_bodies_never_get_a_server_error() {
    let server = Server::new();
    let app = server.app(serde_json::json!({}));
    let user = server.user("admin-props");
    let mut runner = TestRunner::new(crate::config(1000));
    let strategy = (
        select(ROUTES),
        select(
            &[
                Method::Get,
                Method::Post,
                Method::Patch,
                Method::Delete,
                Method::Put,
            ][..],
        ),
        prop_oneof![
            3 => admin_json().prop_map(|v| v.to_string()),
            1 => json().prop_map(|v| v.to_string()),
            1 => text(),
            1 => Just(String::new()),
        ],
        word(),
        proptest::option::of(("[a-z]{1,6}", text())),
    );
    runner
        .run(&strategy, |(route, method, body, w, query)| {
            let path = route
                .replace("{app}", &app.client_id)
                .replace("{user}", &user)
                .replace(
                    "{word}",
                    &form_urlencoded::byte_serialize(w.as_bytes()).collect::<String>(),
                );
            let target = match &query {
                Some((k, v)) => format!("{path}?{}", crate::support::form(&[(k, v)])),
                None => path.clone(),
            };
            let r = server.send(
                method,
                &target,
                &[
                    (
                        "authorization",
                        &format!("Bearer {}", crate::support::ADMIN),
                    ),
                    ("content-type", "application/json"),
                ],
                &body,
            );
            check_reply(&format!("{method:?} {target} {body}"), &r)?;
            if r.status == 201 || r.status == 200 {
                let v: Value = serde_json::from_str(&r.body).unwrap_or(Value::Null);
                prop_assert!(v.is_object() || v.is_array(), "{target}: {}", r.body);
            }
            Ok(())
        })
        .unwrap();
}
