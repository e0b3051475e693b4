//! Exponential backoff with full jitter, shared by the controller client and the notifier.

use rand::Rng;
use std::time::Duration;

#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Backoff {
    pub fn new(base_ms: u64, max_ms: u64) -> Self {
        Self {
            base: Duration::from_millis(base_ms),
            max: Duration::from_millis(max_ms.max(base_ms)),
        }
    }

    /// Delay before retry number `attempt` (1-based): uniform in [cap/2, cap], where cap doubles
    /// each attempt up to `max`. Half-jitter keeps replicas apart without retrying at once.
    pub fn delay(&self, attempt: u32) -> Duration {
        let exp = self
            .base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
        let cap = exp.min(self.max);
        let half = cap / 2;
        half + rand::thread_rng().gen_range(Duration::ZERO..=half)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_and_is_capped() {
        let b = Backoff::new(100, 1000);
        for attempt in 1..20 {
            let d = b.delay(attempt);
            let cap = Duration::from_millis((100u64 << (attempt - 1).min(16)).min(1000));
            assert!(d >= cap / 2 && d <= cap, "attempt {attempt}: {d:?}");
        }
    }
}
