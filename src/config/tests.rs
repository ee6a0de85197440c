//! Reading settings: defaults, and every bad value named by its variable.

use super::*;
use std::collections::HashMap;

fn load(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Config::from_lookup(|k| map.get(k).cloned())
}

#[test]
fn defaults_serve_sqlite_on_loopback() {
    let config = load(&[]).unwrap();
    assert_eq!(config.addr, "127.0.0.1:8080".parse().unwrap());
    assert!(matches!(config.database, ConnectOptions::Sqlite(_)));
    assert_eq!(config.http.body_limit, 1024 * 1024);
    assert_eq!(config.environment, Environment::Development);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert_eq!(config.auth.hash_concurrency, cores);
    assert_eq!(config.http.search_concurrency, 2 * cores);
    assert_eq!(config.http.max_connections, 4096);
    assert_eq!(config.http.header_timeout, Duration::from_secs(10));
    assert_eq!(config.http.idle_timeout, Duration::from_secs(60));
    assert_eq!(config.auth.session_max_age, Duration::from_secs(90 * 86_400));
    assert_eq!(config.auth.throttle.registrations_per_hour, 100);
    assert!(!config.observability.metrics_public);
}

#[test]
fn the_secret_is_random_in_development_and_required_in_production() {
    let a = load(&[]).unwrap().secret;
    let b = load(&[]).unwrap().secret;
    assert!(a.ephemeral && a.expose().len() == 32 && a.expose() != b.expose());
    let long = "s".repeat(32);
    let config = load(&[("TIENDA_ENV", "production"), ("TIENDA_JWT_SECRET", &long)]).unwrap();
    assert!(!config.secret.ephemeral);
    assert_eq!(config.secret.expose(), long.as_bytes());
    assert!(
        !format!("{config:?}").contains(&long),
        "Debug must not print the secret"
    );
}

#[test]
fn port_binds_all_interfaces_as_on_heroku() {
    let config = load(&[("PORT", "5000")]).unwrap();
    assert_eq!(config.addr, "0.0.0.0:5000".parse().unwrap());
    let config = load(&[("PORT", "5000"), ("TIENDA_ADDR", "127.0.0.1:9000")]).unwrap();
    assert_eq!(config.addr, "127.0.0.1:9000".parse().unwrap());
}

#[test]
fn bad_values_name_their_variable() {
    for (pairs, variable) in [
        (vec![("DATABASE_URL", "mysql://x")], "DATABASE_URL"),
        (vec![("TIENDA_ADDR", "nowhere")], "TIENDA_ADDR"),
        (vec![("PORT", "99999")], "PORT"),
        (vec![("TIENDA_ENV", "staging")], "TIENDA_ENV"),
        (vec![("TIENDA_BODY_LIMIT_BYTES", "-1")], "TIENDA_BODY_LIMIT_BYTES"),
        (vec![("TIENDA_LOG_FORMAT", "xml")], "TIENDA_LOG_FORMAT"),
        (vec![("TIENDA_ENV", "production")], "TIENDA_JWT_SECRET"),
        (vec![("TIENDA_PROTECT_READS", "yes")], "TIENDA_PROTECT_READS"),
        (
            vec![("TIENDA_ADMIN_EMAIL", "a@example.com")],
            "TIENDA_ADMIN_PASSWORD",
        ),
        (
            vec![
                ("TIENDA_ADMIN_EMAIL", "nope"),
                ("TIENDA_ADMIN_PASSWORD", "long enough"),
            ],
            "TIENDA_ADMIN_EMAIL",
        ),
        (
            vec![
                ("TIENDA_ADMIN_EMAIL", "a@example.com"),
                ("TIENDA_ADMIN_PASSWORD", "short"),
            ],
            "TIENDA_ADMIN_PASSWORD",
        ),
        (
            vec![("TIENDA_TRUSTED_PROXIES", "10.0.0.0/99")],
            "TIENDA_TRUSTED_PROXIES",
        ),
        (vec![("REDIS_URL", "nonsense")], "REDIS_URL"),
        (vec![("TIENDA_SEARCH_PARTS", "0")], "TIENDA_SEARCH_PARTS"),
        (
            vec![("TIENDA_SEARCH_SPLIT_MIN_ID", "-1")],
            "TIENDA_SEARCH_SPLIT_MIN_ID",
        ),
        (vec![("TIENDA_METRICS_ADDR", "9100")], "TIENDA_METRICS_ADDR"),
        (vec![("TIENDA_METRICS_PUBLIC", "maybe")], "TIENDA_METRICS_PUBLIC"),
        (vec![("TIENDA_HASH_CONCURRENCY", "0")], "TIENDA_HASH_CONCURRENCY"),
        (
            vec![("TIENDA_SEARCH_CONCURRENCY", "x")],
            "TIENDA_SEARCH_CONCURRENCY",
        ),
        (vec![("TIENDA_MAX_CONNECTIONS", "0")], "TIENDA_MAX_CONNECTIONS"),
        (
            vec![("TIENDA_HEADER_TIMEOUT_SECS", "0")],
            "TIENDA_HEADER_TIMEOUT_SECS",
        ),
        (
            vec![("TIENDA_IDLE_TIMEOUT_SECS", "-5")],
            "TIENDA_IDLE_TIMEOUT_SECS",
        ),
        (vec![("TIENDA_SESSION_MAX_DAYS", "0")], "TIENDA_SESSION_MAX_DAYS"),
        (
            vec![("TIENDA_REGISTER_LIMIT_PER_HOUR", "lots")],
            "TIENDA_REGISTER_LIMIT_PER_HOUR",
        ),
        (
            vec![("TIENDA_ENV", "production"), ("TIENDA_JWT_SECRET", "short")],
            "TIENDA_JWT_SECRET",
        ),
    ] {
        assert_eq!(load(&pairs).unwrap_err().variable, variable);
    }
}

#[test]
fn the_cache_is_local_on_sqlite_and_needs_redis_on_postgres() {
    use crate::cache::CacheMode;
    let pg = "postgres://localhost/tienda";
    let redis = "redis://127.0.0.1:6379";
    let config = load(&[]).unwrap();
    assert_eq!(config.cache.mode, CacheMode::Local);
    assert_eq!(config.cache.ttl, Duration::from_secs(60));
    assert_eq!(config.cache.max_bytes, 64 << 20);
    assert_eq!(load(&[("DATABASE_URL", pg)]).unwrap().cache.mode, CacheMode::Off);
    let both = load(&[("DATABASE_URL", pg), ("REDIS_URL", redis)]).unwrap();
    assert_eq!(both.cache.mode, CacheMode::Redis);
    assert_eq!(
        load(&[("TIENDA_CACHE", "off")]).unwrap().cache.mode,
        CacheMode::Off
    );
    assert_eq!(
        load(&[("DATABASE_URL", pg), ("TIENDA_CACHE", "local")])
            .unwrap()
            .cache
            .mode,
        CacheMode::Local
    );
    let refused = load(&[("TIENDA_CACHE", "redis")]).unwrap_err();
    assert_eq!(refused.variable, "TIENDA_CACHE");
    assert_eq!(
        load(&[("TIENDA_CACHE", "memcached")]).unwrap_err().variable,
        "TIENDA_CACHE"
    );
    let sized = load(&[("TIENDA_CACHE_TTL_SECS", "2"), ("TIENDA_CACHE_MAX_MB", "8")]).unwrap();
    assert_eq!(
        (sized.cache.ttl, sized.cache.max_bytes),
        (Duration::from_secs(2), 8 << 20)
    );
    assert_eq!(
        load(&[("TIENDA_CACHE_TTL_SECS", "0")]).unwrap_err().variable,
        "TIENDA_CACHE_TTL_SECS"
    );
}
