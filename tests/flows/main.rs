//! Flow tests: one per MUST and per attack, over the in-memory store and a mock clock
//! (STYLE "Tests, in four layers", layer 2).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

mod admin;
mod asset_tokens;
mod attacks;
mod code_flow;
mod device;
mod fuzz_findings;
mod gateway;
mod hardening;
mod maintenance;
mod operators;
mod performance;
mod refresh;
mod scale;
mod server_grants;
mod token_endpoints;
mod user_agent;
