//! Login throttling: after too many failures for one email or from one client address within a
//! window, logins are refused (429) until the window passes. Counted in process, or in Redis so
//! that every instance behind a load balancer shares the count.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::aio::ConnectionManager;

#[derive(Debug, Clone)]
pub struct ThrottleSettings {
    pub window: Duration,
    pub max_failures_per_email: u64,
    pub max_failures_per_client: u64,
}

#[derive(Clone)]
pub enum LoginThrottle {
    Memory {
        settings: ThrottleSettings,
        windows: Arc<Mutex<HashMap<String, (u64, Instant)>>>,
    },
    Redis {
        settings: ThrottleSettings,
        redis: ConnectionManager,
    },
}

impl std::fmt::Debug for LoginThrottle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoginThrottle::Memory { .. } => f.write_str("LoginThrottle::Memory"),
            LoginThrottle::Redis { .. } => f.write_str("LoginThrottle::Redis"),
        }
    }
}

/// Entries beyond which expired windows are swept from the in-process map.
const SWEEP_ABOVE: usize = 10_000;

fn keys(email: &str, client: &str) -> [(String, bool); 2] {
    [
        (format!("tienda:login:email:{email}"), true),
        (format!("tienda:login:client:{client}"), false),
    ]
}

impl LoginThrottle {
    pub fn in_memory(settings: ThrottleSettings) -> Self {
        LoginThrottle::Memory {
            settings,
            windows: Arc::default(),
        }
    }

    pub fn redis(settings: ThrottleSettings, redis: ConnectionManager) -> Self {
        LoginThrottle::Redis { settings, redis }
    }

    fn settings(&self) -> &ThrottleSettings {
        match self {
            LoginThrottle::Memory { settings, .. } | LoginThrottle::Redis { settings, .. } => settings,
        }
    }

    fn limit(&self, is_email: bool) -> u64 {
        let s = self.settings();
        if is_email {
            s.max_failures_per_email
        } else {
            s.max_failures_per_client
        }
    }

    /// `Some(wait)` when a login for `email` from `client` must be refused for `wait`.
    pub async fn blocked_for(&self, email: &str, client: &str) -> Option<Duration> {
        let mut longest: Option<Duration> = None;
        for (key, is_email) in keys(email, client) {
            let (count, remaining) = self.read(&key).await;
            if count >= self.limit(is_email) {
                longest = longest.max(Some(remaining.max(Duration::from_secs(1))));
            }
        }
        longest
    }

    /// Counts a failed login against both the email and the client.
    pub async fn record_failure(&self, email: &str, client: &str) {
        for (key, _) in keys(email, client) {
            self.increment(&key).await;
        }
    }

    /// A successful login clears the email's failures (not the client's).
    pub async fn clear_email(&self, email: &str) {
        let key = format!("tienda:login:email:{email}");
        match self {
            LoginThrottle::Memory { windows, .. } => {
                if let Ok(mut map) = windows.lock() {
                    map.remove(&key);
                }
            }
            LoginThrottle::Redis { redis, .. } => {
                let mut redis = redis.clone();
                if let Err(error) = redis::cmd("DEL").arg(&key).query_async::<()>(&mut redis).await {
                    tracing::warn!(%error, "login throttle: Redis unavailable");
                }
            }
        }
    }

    /// The failure count in the key's current window and the time left in it.
    async fn read(&self, key: &str) -> (u64, Duration) {
        match self {
            LoginThrottle::Memory { windows, .. } => {
                let now = Instant::now();
                let Ok(map) = windows.lock() else {
                    return (0, Duration::ZERO);
                };
                match map.get(key) {
                    Some((count, ends)) if *ends > now => (*count, *ends - now),
                    _ => (0, Duration::ZERO),
                }
            }
            LoginThrottle::Redis { redis, .. } => {
                let mut redis = redis.clone();
                let result: redis::RedisResult<(Option<u64>, i64)> = redis::pipe()
                    .get(key)
                    .cmd("PTTL")
                    .arg(key)
                    .query_async(&mut redis)
                    .await;
                match result {
                    Ok((count, pttl)) => (count.unwrap_or(0), Duration::from_millis(pttl.max(0) as u64)),
                    Err(error) => {
                        // Fail open: an outage of the cache must not lock every user out. The
                        // readiness probe reports Redis down meanwhile.
                        tracing::warn!(%error, "login throttle: Redis unavailable");
                        (0, Duration::ZERO)
                    }
                }
            }
        }
    }

    async fn increment(&self, key: &str) {
        let window = self.settings().window;
        match self {
            LoginThrottle::Memory { windows, .. } => {
                let now = Instant::now();
                let Ok(mut map) = windows.lock() else { return };
                if map.len() > SWEEP_ABOVE {
                    map.retain(|_, (_, ends)| *ends > now);
                }
                let entry = map.entry(key.to_owned()).or_insert((0, now + window));
                if entry.1 <= now {
                    *entry = (0, now + window);
                }
                entry.0 += 1;
            }
            LoginThrottle::Redis { redis, .. } => {
                let mut redis = redis.clone();
                // The window starts at the first failure: EXPIRE NX sets it only once.
                let result: redis::RedisResult<()> = redis::pipe()
                    .atomic()
                    .incr(key, 1)
                    .ignore()
                    .cmd("PEXPIRE")
                    .arg(key)
                    .arg(window.as_millis() as u64)
                    .arg("NX")
                    .ignore()
                    .query_async(&mut redis)
                    .await;
                if let Err(error) = result {
                    tracing::warn!(%error, "login throttle: Redis unavailable");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_sixth_attempt_for_an_email_is_blocked_until_the_window_ends() {
        let throttle = LoginThrottle::in_memory(ThrottleSettings {
            window: Duration::from_millis(300),
            max_failures_per_email: 5,
            max_failures_per_client: 20,
        });
        for _ in 0..5 {
            assert_eq!(throttle.blocked_for("a@x.io", "1.1.1.1").await, None);
            throttle.record_failure("a@x.io", "1.1.1.1").await;
        }
        assert!(throttle.blocked_for("a@x.io", "2.2.2.2").await.is_some());
        assert_eq!(throttle.blocked_for("b@x.io", "1.1.1.1").await, None);
        tokio::time::sleep(Duration::from_millis(350)).await;
        assert_eq!(throttle.blocked_for("a@x.io", "1.1.1.1").await, None);
    }
}
