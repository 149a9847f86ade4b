//! OAuth 2.0 / OpenID Connect endpoints and grants, one module each (STYLE §5).

pub mod assertion;
pub mod authorize;
pub mod authz;
pub mod bearer;
pub mod client_auth;
pub mod cors;
pub mod device;
pub mod error;
pub mod grants;
pub mod headless;
pub mod hybrid;
pub mod interaction;
pub mod introspect;
pub mod issue;
pub mod pages;
pub mod pkce;
pub mod redirect;
pub mod revoke;
pub mod scope;
pub mod stamp;
pub mod token;
pub mod user_agent;
pub mod userinfo;
pub mod verification;
