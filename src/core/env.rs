//! Time and randomness, injected so the core never reads ambient globals (STYLE §4).

use std::cell::Cell;

/// Wall-clock time in milliseconds since the Unix epoch.
pub trait Clock {
    fn now_ms(&self) -> u64;
    fn now_s(&self) -> u64 {
        self.now_ms() / 1000
    }
}

/// A source of cryptographically secure random bytes.
pub trait Rng {
    fn fill(&self, buf: &mut [u8]);
}

/// The operating system's CSPRNG (`crypto.getRandomValues` on wasm32 through getrandom's `js`
/// feature).
pub struct OsRng;

impl Rng for OsRng {
    fn fill(&self, buf: &mut [u8]) {
        // getrandom only fails when the platform has no entropy source at all; an authorization
        // server must not continue then, and there is no sane fallback.
        if getrandom::getrandom(buf).is_err() {
            buf.fill(0);
            std::process::abort();
        }
    }
}

/// A clock that tests move by hand.
#[derive(Default)]
pub struct MockClock(Cell<u64>);

impl MockClock {
    pub fn at_ms(ms: u64) -> Self {
        Self(Cell::new(ms))
    }
    pub fn advance_s(&self, s: u64) {
        self.advance_ms(s * 1000);
    }
    pub fn advance_ms(&self, ms: u64) {
        self.0.set(self.0.get() + ms);
    }
}

impl Clock for MockClock {
    fn now_ms(&self) -> u64 {
        self.0.get()
    }
}
