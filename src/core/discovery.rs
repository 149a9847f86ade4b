//! OIDC Discovery 1.0 and RFC 8414 metadata, listing only what is implemented.

use super::config::Ctx;
use super::keys::Alg;
use super::model::OrgSettings;
use super::oauth::scope::KNOWN_SCOPES;
use super::storage::Store;

/// The metadata, with the response types the org's switches allow (`allow_user_agent_flow`).
pub fn metadata<S: Store>(ctx: &Ctx<'_, S>, settings: &OrgSettings) -> serde_json::Value {
    let mut response_types = vec!["code"];
    if settings.allow_user_agent_flow {
        response_types.extend(["token", "token id_token", "hybrid_token"]);
    }
    // What the published keys sign with (keys.rs), RS256 first when one of them is RSA.
    let algs: Vec<&str> = ctx.config.keys.algs().into_iter().map(Alg::name).collect();
    serde_json::json!({
        "issuer": ctx.issuer,
        "authorization_endpoint": ctx.url("/services/oauth2/authorize"),
        "token_endpoint": ctx.url("/services/oauth2/token"),
        "revocation_endpoint": ctx.url("/services/oauth2/revoke"),
        "introspection_endpoint": ctx.url("/services/oauth2/introspect"),
        "userinfo_endpoint": ctx.url("/services/oauth2/userinfo"),
        "jwks_uri": ctx.url("/id/keys"),
        "scopes_supported": KNOWN_SCOPES,
        "response_types_supported": response_types,
        "response_modes_supported": ["query", "fragment", "form_post"],
        "grant_types_supported": ["authorization_code", "refresh_token", "hybrid_auth_code", "hybrid_refresh"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": algs,
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "display_values_supported": ["page"],
        "claims_supported": [
            "sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "azp",
            "preferred_username", "name", "email", "email_verified", "user_id",
            "organization_id", "nickname", "active", "user_type", "language", "locale",
            "zoneinfo", "updated_at", "urls"
        ],
        "claims_parameter_supported": false,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "authorization_response_iss_parameter_supported": true,
    })
}
