//! Login and registration throttling. A login attempt is counted (reserved) against its email
//! and its client address *before* the password is checked, atomically with the check of the
//! limits, and the reservation is released only when the login succeeds. So concurrent guesses
//! obey the same limits as sequential ones: of 40 simultaneous logins for one email, at most 5
//! are evaluated. A refused attempt is not counted, so hammering a locked email neither costs a
//! password hash nor pushes the end of its window further away: the window is fixed, from the
//! first counted attempt.
//!
//! Counted in process in a fixed-size table (see [`counters`](super::counters)), or in Redis by
//! one Lua script per attempt so that every instance shares the count. When Redis does not
//! answer, the in-process table takes over (per-instance limits still hold; nobody is locked out
//! by the outage).

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::aio::ConnectionManager;
use sha2::{Digest, Sha256};

use super::counters::{Attempt, Counted, Table, reserve};
use crate::domain::user::Email;

/// How many failed logins and registrations are tolerated, and over which window.
#[derive(Debug, Clone)]
pub struct ThrottleSettings {
    /// How far back failures count.
    pub window: Duration,
    /// Failed logins tolerated per email within the window.
    pub max_failures_per_email: u64,
    /// Failed logins tolerated per client address within the window.
    pub max_failures_per_client: u64,
    /// Registrations per client address per hour.
    pub registrations_per_hour: u64,
}

const REGISTRATION_WINDOW: Duration = Duration::from_secs(3600);

/// The in-process tables, behind one lock so an attempt counts against all its keys or none.
struct Tables {
    email: Table,
    client: Table,
    registration: Table,
}

/// Counts failed logins and registrations per email and per client, in memory or in Redis.
#[derive(Clone)]
pub struct LoginThrottle {
    settings: ThrottleSettings,
    local: Arc<Mutex<Tables>>,
    redis: Option<ConnectionManager>,
    /// When a Redis failure was last logged (seconds since the epoch), so an outage under load
    /// writes one line every few seconds instead of one per request.
    last_warning: Arc<AtomicU64>,
}

impl std::fmt::Debug for LoginThrottle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.redis {
            Some(_) => "LoginThrottle::Redis",
            None => "LoginThrottle::Memory",
        })
    }
}

/// A counted login attempt. Dropping it keeps it counted (a failure); pass it to
/// [`LoginThrottle::release`] when the login succeeded or was never evaluated.
#[must_use]
#[derive(Debug)]
pub enum Reservation {
    /// Counted in this process's tables (no Redis, or Redis failed).
    Local {
        /// The email's count, when the login named a valid email.
        email: Option<Counted>,
        /// The client address's count.
        client: Counted,
    },
    /// Counted in Redis under these keys, shared by every instance.
    Redis(Vec<String>),
}

/// Keys never hold an email or an address as such: a SHA-256 prefix of it, so every key has the
/// same small size whatever was sent, and Redis holds no addresses.
fn hashed(kind: &str, value: &[u8]) -> String {
    let digest = Sha256::new()
        .chain_update(kind.as_bytes())
        .chain_update([0])
        .chain_update(value)
        .finalize();
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("tienda:{kind}:{hex}")
}

/// The part of a client address that identifies a client: an IPv4 address, or the /64 of an
/// IPv6 address (one host usually holds a whole /64, so counting single IPv6 addresses would let
/// it rotate through billions of them).
fn client_bytes(client: IpAddr) -> Vec<u8> {
    match client {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.octets().to_vec(),
            None => v6.octets()[..8].to_vec(),
        },
    }
}

/// Counts one attempt against every key (`KEYS`) if each is below its limit (`ARGV[i]`), else
/// counts nothing and returns the milliseconds until all are below it. `ARGV[#KEYS + 1]` is the
/// window: it starts at a key's first counted attempt and is never extended.
const RESERVE_LUA: &str = r"
local window = tonumber(ARGV[#KEYS + 1])
local wait = 0
for i, key in ipairs(KEYS) do
  local count = tonumber(redis.call('GET', key) or '0')
  if count >= tonumber(ARGV[i]) then
    local ttl = redis.call('PTTL', key)
    if ttl < 0 then
      redis.call('PEXPIRE', key, window)
      ttl = window
    end
    wait = math.max(wait, ttl, 1)
  end
end
if wait > 0 then
  return wait
end
for _, key in ipairs(KEYS) do
  if redis.call('INCR', key) == 1 or redis.call('PTTL', key) < 0 then
    redis.call('PEXPIRE', key, window)
  end
end
return 0
";

/// Undoes one counted attempt per key, never below zero.
const RELEASE_LUA: &str = r"
for _, key in ipairs(KEYS) do
  if tonumber(redis.call('GET', key) or '0') > 0 then
    redis.call('DECR', key)
  end
end
return 0
";

impl LoginThrottle {
    /// A throttle for one process: counters in memory.
    pub fn in_memory(settings: ThrottleSettings) -> Self {
        let local = Tables {
            email: Table::new(settings.window),
            client: Table::new(settings.window),
            registration: Table::new(REGISTRATION_WINDOW),
        };
        LoginThrottle {
            settings,
            local: Arc::new(Mutex::new(local)),
            redis: None,
            last_warning: Arc::default(),
        }
    }

    /// A throttle shared by every process through Redis.
    pub fn redis(settings: ThrottleSettings, redis: ConnectionManager) -> Self {
        LoginThrottle {
            redis: Some(redis),
            ..Self::in_memory(settings)
        }
    }

    /// Counts a login attempt for `email` (none when it is malformed: then only the client
    /// counts) from `client`, or says how long to wait when either is at its limit.
    pub async fn reserve_login(
        &self,
        email: Option<&Email>,
        client: IpAddr,
    ) -> Result<Reservation, Duration> {
        let email = email.map(|e| e.normalized());
        let client = client_bytes(client);
        if let Some(redis) = &self.redis {
            let mut keys = Vec::with_capacity(2);
            let mut limits = Vec::with_capacity(2);
            if let Some(email) = &email {
                keys.push(hashed("login:email", email.as_bytes()));
                limits.push(self.settings.max_failures_per_email);
            }
            keys.push(hashed("login:client", &client));
            limits.push(self.settings.max_failures_per_client);
            match self
                .redis_reserve(redis, &keys, &limits, self.settings.window)
                .await
            {
                Ok(None) => return Ok(Reservation::Redis(keys)),
                Ok(Some(wait)) => return Err(wait),
                Err(error) => self.warn(&error),
            }
        }
        let mut tables = self.local.lock().unwrap_or_else(|e| e.into_inner());
        let Tables {
            email: emails,
            client: clients,
            ..
        } = &mut *tables;
        let client_attempt = Attempt {
            table: clients,
            key: &client,
            limit: self.settings.max_failures_per_client,
        };
        match &email {
            Some(email) => {
                let counted = reserve(&mut [
                    Attempt {
                        table: emails,
                        key: email.as_bytes(),
                        limit: self.settings.max_failures_per_email,
                    },
                    client_attempt,
                ])?;
                Ok(Reservation::Local {
                    email: Some(counted[0]),
                    client: counted[1],
                })
            }
            None => {
                let counted = reserve(&mut [client_attempt])?;
                Ok(Reservation::Local {
                    email: None,
                    client: counted[0],
                })
            }
        }
    }

    /// Uncounts an attempt: the login succeeded, or it was never evaluated (a dependency was
    /// down, hashing was overloaded).
    pub async fn release(&self, reservation: Reservation) {
        match reservation {
            Reservation::Local { email, client } => {
                let mut tables = self.local.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(email) = email {
                    tables.email.release(email);
                }
                tables.client.release(client);
            }
            Reservation::Redis(keys) => {
                if let Some(redis) = &self.redis {
                    let mut redis = redis.clone();
                    let script = redis::Script::new(RELEASE_LUA);
                    let mut invocation = script.prepare_invoke();
                    for key in &keys {
                        invocation.key(key);
                    }
                    if let Err(error) = invocation.invoke_async::<i64>(&mut redis).await {
                        self.warn(&error);
                    }
                }
            }
        }
    }

    /// Counts a registration from `client`, or says how long to wait when it has registered
    /// `registrations_per_hour` times this hour. Every registration that reaches hashing counts.
    pub async fn reserve_registration(&self, client: IpAddr) -> Result<(), Duration> {
        let client = client_bytes(client);
        let limit = self.settings.registrations_per_hour;
        if let Some(redis) = &self.redis {
            let keys = [hashed("register:client", &client)];
            match self
                .redis_reserve(redis, &keys, &[limit], REGISTRATION_WINDOW)
                .await
            {
                Ok(None) => return Ok(()),
                Ok(Some(wait)) => return Err(wait),
                Err(error) => self.warn(&error),
            }
        }
        let mut tables = self.local.lock().unwrap_or_else(|e| e.into_inner());
        reserve(&mut [Attempt {
            table: &mut tables.registration,
            key: &client,
            limit,
        }])
        .map(|_| ())
    }

    /// `Ok(None)` when counted, `Ok(Some(wait))` when refused.
    async fn redis_reserve(
        &self,
        redis: &ConnectionManager,
        keys: &[String],
        limits: &[u64],
        window: Duration,
    ) -> redis::RedisResult<Option<Duration>> {
        let mut redis = redis.clone();
        let script = redis::Script::new(RESERVE_LUA);
        let mut invocation = script.prepare_invoke();
        for key in keys {
            invocation.key(key);
        }
        for limit in limits {
            invocation.arg(*limit);
        }
        invocation.arg(window.as_millis().max(1) as u64);
        let wait: i64 = invocation.invoke_async(&mut redis).await?;
        Ok((wait > 0).then(|| Duration::from_millis(wait as u64)))
    }

    fn warn(&self, error: &redis::RedisError) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let last = self.last_warning.load(Ordering::Relaxed);
        if now >= last + 10
            && self
                .last_warning
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(%error, "login throttle: Redis unavailable, counting in this process meanwhile");
        }
    }
}

#[cfg(test)]
#[path = "throttle_tests.rs"]
mod tests;
