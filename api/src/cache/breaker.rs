//! A circuit breaker for the shared cache: once a call fails, the cache is
//! skipped instead of every request waiting on a server that is gone, and a
//! background probe (never a user's request) tries it again every
//! cool-down; the first answer closes the breaker. Callers meanwhile take
//! their fallback at once (the database, or the in-process state).

use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Debug)]
pub struct Breaker {
    open: AtomicBool,
    name: &'static str,
}

impl Breaker {
    pub fn new(name: &'static str) -> Self {
        Self { open: AtomicBool::new(false), name }
    }

    pub fn is_open(&self) -> bool {
        self.open.load(Ordering::Acquire)
    }

    /// Opens the breaker; `true` for the one caller that opened it, who
    /// starts the probe.
    pub fn trip(&self, error: &dyn std::fmt::Display) -> bool {
        let opened = !self.open.swap(true, Ordering::AcqRel);
        if opened {
            tracing::warn!(dependency = self.name, %error, "unreachable; skipping it until a probe reaches it again");
        }
        opened
    }

    pub fn close(&self) {
        if self.open.swap(false, Ordering::AcqRel) {
            tracing::info!(dependency = self.name, "reachable again; using it");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_first_failure_opens_the_breaker_and_starts_a_probe() {
        let b = Breaker::new("test");
        assert!(!b.is_open());
        assert!(b.trip(&"down"));
        assert!(!b.trip(&"still down"), "a second failure starts no second probe");
        assert!(b.is_open());
        b.close();
        assert!(!b.is_open());
        assert!(b.trip(&"down again"));
    }
}
