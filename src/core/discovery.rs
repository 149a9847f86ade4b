//! OIDC Discovery 1.0 and RFC 8414 metadata, listing only what is implemented.

use super::config::Ctx;
use super::keys::Alg;
use super::model::OrgSettings;
use super::oauth::device::GRANT_TYPE as DEVICE_CODE;
use super::oauth::grants::jwt_bearer::GRANT_TYPE as JWT_BEARER;
use super::oauth::grants::token_exchange::GRANT_TYPE as TOKEN_EXCHANGE;
use super::oauth::scope::KNOWN_SCOPES;
use super::storage::Store;

/// What client assertions (`private_key_jwt`, JWT bearer) may be signed with.
const CLIENT_ASSERTION_ALGS: [&str; 2] = ["RS256", "ES256"];

/// The metadata, with the response types the org's switches allow (`allow_user_agent_flow`).
pub fn metadata<S: Store>(ctx: &Ctx<'_, S>, settings: &OrgSettings) -> serde_json::Value {
    let mut response_types = vec!["code", "code id_token"];
    if settings.allow_user_agent_flow {
        response_types.extend(["token", "token id_token", "hybrid_token"]);
    }
    let mut grant_types = vec![
        "authorization_code",
        "refresh_token",
        "hybrid_auth_code",
        "hybrid_refresh",
        "client_credentials",
        JWT_BEARER,
        DEVICE_CODE,
        TOKEN_EXCHANGE,
    ];
    // RFC 8414 §2: the list names what the server supports; tokens from the authorization
    // endpoint are the `implicit` grant (OIDC Discovery §3).
    if settings.allow_user_agent_flow {
        grant_types.insert(1, "implicit");
    }
    if settings.allow_username_password_flow {
        grant_types.push("password");
    }
    // What the published keys sign with (keys.rs), RS256 first when one of them is RSA.
    let algs: Vec<&str> = ctx.config.keys.algs().into_iter().map(Alg::name).collect();
    serde_json::json!({
        "issuer": ctx.issuer,
        "authorization_endpoint": ctx.url("/services/oauth2/authorize"),
        "token_endpoint": ctx.url("/services/oauth2/token"),
        "device_authorization_endpoint": ctx.url("/services/oauth2/device"),
        "revocation_endpoint": ctx.url("/services/oauth2/revoke"),
        "introspection_endpoint": ctx.url("/services/oauth2/introspect"),
        "userinfo_endpoint": ctx.url("/services/oauth2/userinfo"),
        "registration_endpoint": ctx.url(super::oauth::register::PATH),
        "jwks_uri": ctx.url("/id/keys"),
        "scopes_supported": KNOWN_SCOPES,
        "response_types_supported": response_types,
        "response_modes_supported": ["query", "fragment", "form_post"],
        "grant_types_supported": grant_types,
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": algs,
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"],
        "token_endpoint_auth_signing_alg_values_supported": CLIENT_ASSERTION_ALGS,
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"],
        "revocation_endpoint_auth_signing_alg_values_supported": CLIENT_ASSERTION_ALGS,
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt"],
        "introspection_endpoint_auth_signing_alg_values_supported": CLIENT_ASSERTION_ALGS,
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
        // draft-ietf-oauth-client-id-metadata-document: an https client_id names its document.
        "client_id_metadata_document_supported": true,
        // RFC 8707 (no registered metadata name yet): `resource` at authorize and token.
        "resource_indicators_supported": true,
    })
}
