//! The protocol core: everything that decides, with no Worker, wasm-bindgen or JS types.
//!
//! The edge (`crate::edge`) turns a `worker::Request` into an [`http::Request`], calls
//! [`router::handle`], and turns the [`http::Response`] back. Storage, time and randomness are
//! parameters ([`storage::Store`], [`env::Clock`], [`env::Rng`]), so every flow runs natively in
//! tests over [`storage::memory::MemoryStore`] and a mock clock.

pub mod admin;
pub mod audit;
pub mod cache;
pub mod config;
pub mod discovery;
pub mod env;
pub mod future;
pub mod gateway;
pub mod http;
pub mod ids;
pub mod keys;
pub mod log;
pub mod maintenance;
pub mod model;
pub mod oauth;
pub mod org;
pub mod outbound;
pub mod password;
pub mod router;
pub mod secret;
pub mod storage;
pub mod tools;
