//! Webhook deliveries: the loop that fans recorded events out to the subscribed endpoints and
//! sends them, signed (Standard Webhooks), with retries. The events themselves are written by
//! the store in the transaction of each change (`store::outbox`); the deliveries are a queue in
//! the database (`webhook_deliveries`), so any number of instances can run the loop.
//!
//! Retries: after failed attempt `n` the next is due `base * 3^(n-1)` later (at most
//! `base * 720`), with ±25 % jitter; with the default base of 30 s the schedule is 30 s, 1.5 min,
//! 4.5 min, 13.5 min, 40 min, 2 h, 6 h, 6 h, 6 h: [`MAX_ATTEMPTS`] attempts over about 21 h, then
//! the delivery is `dead`. An endpoint whose attempts have all failed for
//! `TIENDA_WEBHOOK_DISABLE_AFTER_HOURS` (default 72: three days of dead deliveries) is disabled;
//! PATCH `{"disabled": false}` enables it again. Events recorded while an endpoint is disabled
//! are not kept for it.
//!
//! Retention ([`WebhookRetention`]): housekeeping (`jobs::purge_once`) deletes delivered
//! deliveries 7 days after their last attempt, dead ones after 30 (an operator's window to retry
//! them), and events once no delivery refers to them and they were fanned out 7 days ago.
//! Pending deliveries and events not yet fanned out are never deleted.

pub mod delivery;
pub mod signature;
pub mod target;

use std::time::Duration;

pub use delivery::run_due_deliveries;

/// Attempts per delivery before it is `dead`.
pub const MAX_ATTEMPTS: i32 = 10;
/// How long a rotated-out secret keeps signing.
pub const ROTATION_OVERLAP: Duration = Duration::from_secs(24 * 3600);

/// How webhooks are delivered.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// `TIENDA_WEBHOOK_ALLOW_PRIVATE`: allow loopback, private and link-local targets (tests,
    /// a private network that is trusted).
    pub allow_private: bool,
    /// Targets must be `https` (`TIENDA_ENV=production`).
    pub https_only: bool,
    /// `TIENDA_WEBHOOK_TIMEOUT_SECS` (default 10): the most one attempt may take.
    pub attempt_timeout: Duration,
    /// `TIENDA_WEBHOOK_RETRY_BASE_MS` (default 30000): the first retry's delay, which scales the
    /// whole schedule. A test and operations knob: tests shorten it to milliseconds.
    pub retry_base: Duration,
    /// `TIENDA_WEBHOOK_DISABLE_AFTER_HOURS` (default 72): an endpoint failing that long is
    /// disabled.
    pub disable_after: Duration,
    /// `TIENDA_WEBHOOK_CONCURRENCY` (default 64): attempts in flight at once per process.
    pub concurrency: usize,
    /// How long finished deliveries and their events are kept.
    pub retention: WebhookRetention,
}

/// How long finished deliveries and their events are kept before housekeeping deletes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebhookRetention {
    /// `TIENDA_WEBHOOK_RETENTION_DAYS` (default 7; `TIENDA_WEBHOOK_RETENTION_SECS` overrides it,
    /// for tests): a delivered delivery is kept this long after its last attempt, and an event
    /// this long after its fan-out, longer while a delivery of it is kept.
    pub delivered: Duration,
    /// `TIENDA_WEBHOOK_DEAD_RETENTION_DAYS` (default 30; `TIENDA_WEBHOOK_DEAD_RETENTION_SECS`
    /// overrides it): a dead delivery is kept this long after its last attempt, so an operator
    /// can still retry it.
    pub dead: Duration,
}

impl WebhookSettings {
    /// The lease of a claimed delivery: past it, another worker may take it again. Longer than
    /// an attempt and the recording of its outcome.
    pub fn lease(&self) -> Duration {
        self.attempt_timeout * 2 + Duration::from_secs(5)
    }

    /// The delay before the attempt after failed attempt `attempts` (1-based), before jitter.
    pub fn backoff(&self, attempts: i32) -> Duration {
        let exponent = u32::try_from(attempts.clamp(1, 20) - 1).unwrap_or(0);
        let factor = 3u32.saturating_pow(exponent).min(720);
        self.retry_base.saturating_mul(factor)
    }
}

/// How many workers this process runs (`TIENDA_WORKERS`, default 1; 0: none, another process
/// runs them). The one place the setting is read for deliveries.
pub fn embedded_workers(config: &crate::config::Config) -> usize {
    config.jobs.workers
}

/// The HTTP client of deliveries: no redirects followed, no proxy, the guarded resolver, the
/// attempt timeout, https through rustls with the ring provider.
pub fn client(settings: &WebhookSettings) -> Result<reqwest::Client, reqwest::Error> {
    crate::install_tls_provider();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(settings.attempt_timeout)
        .connect_timeout(settings.attempt_timeout)
        .https_only(settings.https_only)
        .dns_resolver(std::sync::Arc::new(target::GuardedResolver {
            allow_private: settings.allow_private,
        }))
        .user_agent(concat!("tienda-webhooks/", env!("CARGO_PKG_VERSION")))
        .pool_idle_timeout(Duration::from_secs(30))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_schedule_spans_about_a_day_in_at_least_8_attempts() {
        let settings = WebhookSettings {
            allow_private: false,
            https_only: false,
            attempt_timeout: Duration::from_secs(10),
            retry_base: Duration::from_secs(30),
            disable_after: Duration::from_secs(72 * 3600),
            concurrency: 64,
            retention: WebhookRetention {
                delivered: Duration::from_secs(7 * 86_400),
                dead: Duration::from_secs(30 * 86_400),
            },
        };
        let total: Duration = (1..MAX_ATTEMPTS).map(|n| settings.backoff(n)).sum();
        const { assert!(MAX_ATTEMPTS >= 8) };
        assert!(
            total > Duration::from_secs(18 * 3600) && total < Duration::from_secs(30 * 3600),
            "{total:?}"
        );
        assert_eq!(settings.backoff(1), Duration::from_secs(30));
        assert_eq!(settings.backoff(9), Duration::from_secs(6 * 3600));
    }
}
