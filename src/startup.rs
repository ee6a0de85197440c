//! Building the application from its configuration, serving it, and stopping it gracefully.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use redis::aio::ConnectionManager;

use crate::auth::password::Passwords;
use crate::auth::throttle::LoginThrottle;
use crate::auth::tokens::AccessTokens;
use crate::cache::Cache;
use crate::config::Config;
use crate::domain::cursor::CursorCodec;
use crate::http::server::{ConnectionLimits, serve};
use crate::limits::Gate;
use crate::services::accounts::AuthService;
use crate::state::{AppState, Shared};
use crate::store::{Store, StoreError};

/// Why the application could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The database does not answer.
    #[error("cannot connect to the database: {0}")]
    Database(#[source] StoreError),
    /// A migration failed.
    #[error("cannot migrate the database: {0}")]
    Migrate(#[source] StoreError),
    /// Redis does not answer.
    #[error("cannot connect to Redis: {0}")]
    Redis(#[source] redis::RedisError),
    /// The password hasher cannot start.
    #[error("cannot set up authentication: {0}")]
    Hashing(#[source] crate::auth::password::HashError),
    /// The token keys cannot be made.
    #[error("cannot set up authentication: {0}")]
    Tokens(#[source] crate::auth::tokens::TokenError),
    /// The first admin cannot be created.
    #[error("cannot create the first admin: {0}")]
    Bootstrap(#[source] crate::services::accounts::AuthError),
    /// The address cannot be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why the system refused it.
        #[source]
        source: std::io::Error,
    },
}

/// How long a relevance search waits for a slot before a 503.
const SEARCH_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// A migrated database and a bound listener, ready to serve.
pub struct Application {
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    state: AppState,
}

/// Connects and applies pending migrations.
pub async fn open_store(config: &Config) -> Result<Store, StartupError> {
    let store = Store::connect(&config.database, &config.pool)
        .await
        .map_err(StartupError::Database)?
        .with_event_shapes(crate::http::dto::event_shapes());
    store.migrate().await.map_err(StartupError::Migrate)?;
    Ok(store)
}

/// Connects to Redis when configured.
async fn connect_redis(config: &Config) -> Result<Option<ConnectionManager>, StartupError> {
    let Some(url) = &config.redis_url else {
        return Ok(None);
    };
    let client = redis::Client::open(url.as_str()).map_err(StartupError::Redis)?;
    let manager_config = redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(Some(std::time::Duration::from_secs(3)))
        .set_response_timeout(Some(std::time::Duration::from_secs(3)))
        .set_number_of_retries(2);
    let manager = ConnectionManager::new_with_config(client, manager_config)
        .await
        .map_err(StartupError::Redis)?;
    Ok(Some(manager))
}

/// The response cache `config` asks for, attached to `store` so every product write it commits
/// empties what it changed (here, and over Redis on the other instances). A process that writes
/// products without serving them (`tienda worker`, `tienda import`) calls it too: in `redis`
/// mode its writes then reach the serving instances' caches.
pub fn with_cache(config: &Config, store: Store) -> Result<(Store, Cache), StartupError> {
    let cache = Cache::new(&config.cache, config.redis_url.as_deref()).map_err(StartupError::Redis)?;
    let store = match cache.is_on() {
        true => store.with_listener(Arc::new(cache.clone())),
        false => store,
    };
    Ok((store, cache))
}

/// The authentication service for `config`: keys, hasher, throttle (shared through Redis when
/// there is one).
pub async fn auth_service(
    config: &Config,
    store: &Store,
    redis: Option<&ConnectionManager>,
) -> Result<AuthService, StartupError> {
    let passwords = Passwords::new(config.auth.hash_concurrency)
        .await
        .map_err(StartupError::Hashing)?;
    let tokens = AccessTokens::new(config.secret.expose(), config.auth.access_token_ttl)
        .map_err(StartupError::Tokens)?;
    let settings = config.auth.throttle.clone();
    let throttle = match redis {
        Some(redis) => LoginThrottle::redis(settings, redis.clone()),
        None => LoginThrottle::in_memory(settings),
    };
    Ok(AuthService::new(
        store.clone(),
        passwords,
        tokens,
        throttle,
        config.auth.refresh_token_ttl,
        config.auth.session_max_age,
    ))
}

impl Application {
    /// Connects, migrates, bootstraps the admin and binds the listeners.
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        crate::install_tls_provider();
        let store = open_store(&config).await?;
        let redis = connect_redis(&config).await?;
        let (store, cache) = with_cache(&config, store)?;
        let auth = auth_service(&config, &store, redis.as_ref()).await?;
        if let Some((email, password)) = &config.auth.bootstrap_admin {
            let created = auth
                .ensure_admin(email, password.clone())
                .await
                .map_err(StartupError::Bootstrap)?;
            if created {
                tracing::info!(email = email.as_str(), "first admin created");
            }
        }
        let listener = TcpListener::bind(config.addr)
            .await
            .map_err(|source| StartupError::Bind {
                addr: config.addr,
                source,
            })?;
        let metrics_listener = match config.observability.metrics_addr {
            None => None,
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|source| StartupError::Bind { addr, source })?,
            ),
        };
        if config.environment == crate::config::Environment::Production
            && metrics_listener.is_none()
            && !crate::http::metrics_on_api_port(&config)
        {
            tracing::warn!(
                "/metrics is not served: in production it needs TIENDA_METRICS_ADDR (a private listener) \
                 or TIENDA_METRICS_PUBLIC=true"
            );
        }
        crate::metrics::install();
        crate::metrics::zero_counters();
        Ok(Application {
            listener,
            metrics_listener,
            state: AppState::new(Shared {
                cursors: CursorCodec::from_secret(config.secret.expose()),
                searches: Gate::new(config.http.search_concurrency, SEARCH_WAIT),
                auth,
                cache,
                redis,
                store,
                draining: Arc::new(AtomicBool::new(false)),
                closing: Arc::new(AtomicBool::new(false)),
                config: Arc::new(config),
            }),
        })
    }

    /// The address actually bound (port 0 picks a free port).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The address of the separate metrics listener, when configured.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Serves until `shutdown` resolves, then stops accepting, lets in-flight requests finish
    /// for at most the configured grace period, and closes the pool.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let Application {
            listener,
            metrics_listener,
            state,
        } = self;
        let grace = state.config.shutdown_grace;
        let store = state.store.clone();
        let jobs = state.config.jobs.clone();
        let mut background = vec![crate::jobs::spawn_purge(
            store.clone(),
            crate::jobs::Housekeeping::from_config(&state.config),
        )];
        let (stop_workers, workers_stop) = tokio::sync::watch::channel(false);
        let workers = crate::jobs::runner::spawn_workers(
            store.clone(),
            crate::transfer::registry(),
            worker_settings(&jobs),
            workers_stop,
        );
        background.extend(state.cache.background());
        background.extend(crate::metrics::spawn_samplers(
            store.clone(),
            state.redis.clone(),
            state.config.observability.low_stock_below,
            state.config.observability.business_metrics_every,
        ));
        background.extend(spawn_webhook_deliveries(&state.config, &store));
        // Beside connections: the pool, the log, the listeners, Redis, a few files.
        let reserved = u64::from(state.config.pool.max_connections) + 64;
        let limits = ConnectionLimits::from(&state.config.http).within_descriptor_limit(reserved);
        if let Some(metrics_listener) = metrics_listener {
            // Aborted with the other background tasks at shutdown, its connections with it.
            let metrics = crate::http::metrics_router();
            background.push(tokio::spawn(serve(
                metrics_listener,
                metrics,
                limits,
                std::future::pending(),
                grace,
            )));
        }
        // Shutdown in two steps of `TIENDA_SHUTDOWN_DRAIN_SECS` each, so a load balancer loses
        // nothing. First: not ready, everything else as usual (balancers that probe readiness
        // stop sending). Then the listener closes (a refused connection is retried elsewhere
        // for any method, as it was never sent) while the open connections are still served,
        // each answer closing its connection; a balancer's idle kept-alive connections are left
        // for the balancer to close (its keep-alive timeout must be shorter), as closing one
        // here could cut a request it is sending at that moment.
        let drain = state.config.shutdown_drain;
        let limits = ConnectionLimits {
            linger: drain,
            ..limits
        };
        let (draining, closing) = (state.draining.clone(), state.closing.clone());
        let shutdown = async move {
            shutdown.await;
            // Workers stop taking jobs at once; a running one ends at its next batch.
            let _ = stop_workers.send(true);
            draining.store(true, Ordering::SeqCst);
            if !drain.is_zero() {
                tracing::info!(
                    drain_secs = drain.as_secs(),
                    "shutting down: not ready, still serving for the drain period"
                );
                tokio::time::sleep(drain).await;
            }
            closing.store(true, Ordering::SeqCst);
        };
        let app = crate::http::app(state);
        serve(listener, app, limits, shutdown, grace).await;
        crate::jobs::runner::join_workers(workers, grace).await;
        background.iter().for_each(JoinHandle::abort);
        store.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// The workers' settings from the configuration.
pub fn worker_settings(jobs: &crate::config::JobSettings) -> crate::jobs::runner::WorkerSettings {
    crate::jobs::runner::WorkerSettings {
        concurrency: jobs.workers,
        lease: jobs.lease,
        poll: jobs.poll,
        import_batch: jobs.import_batch,
        shares_sqlite_writer: false,
    }
}

/// `tienda worker`: runs `TIENDA_WORKERS` workers (at least one) and housekeeping, no HTTP,
/// until `shutdown`; then each worker finishes its batch, records its progress and stops
/// within the shutdown grace.
pub async fn run_worker(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), StartupError> {
    // Imports commit products: serving instances hear of them over Redis (`TIENDA_CACHE=redis`).
    let (store, _cache) = with_cache(&config, open_store(&config).await?)?;
    crate::metrics::install();
    crate::metrics::zero_counters();
    let mut settings = worker_settings(&config.jobs);
    settings.concurrency = settings.concurrency.max(1);
    settings.shares_sqlite_writer = store.is_sqlite();
    let purge = crate::jobs::spawn_purge(store.clone(), crate::jobs::Housekeeping::from_config(&config));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let workers =
        crate::jobs::runner::spawn_workers(store.clone(), crate::transfer::registry(), settings, stopped);
    // A worker process always delivers webhooks, whatever `TIENDA_WORKERS` says for `serve`.
    let deliveries = spawn_webhook_deliveries_always(&config, &store);
    tracing::info!(workers = workers.len(), "worker started");
    shutdown.await;
    tracing::info!("stopping: running jobs end at their next batch");
    let _ = stop.send(true);
    crate::jobs::runner::join_workers(workers, config.shutdown_grace).await;
    deliveries.iter().for_each(JoinHandle::abort);
    purge.abort();
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// The webhook delivery loop, unless `TIENDA_WORKERS=0` leaves deliveries to other processes.
/// Aborted with the other background tasks: an attempt cut short is sent again after its lease.
fn spawn_webhook_deliveries(config: &Config, store: &Store) -> Option<JoinHandle<()>> {
    if crate::webhooks::embedded_workers(config) == 0 {
        return None;
    }
    spawn_webhook_deliveries_always(config, store)
}

/// The webhook delivery loop; `None` only when its HTTP client cannot be built (logged).
fn spawn_webhook_deliveries_always(config: &Config, store: &Store) -> Option<JoinHandle<()>> {
    match crate::webhooks::client(&config.webhooks) {
        Ok(client) => Some(tokio::spawn(crate::webhooks::run_due_deliveries(
            store.clone(),
            client,
            config.webhooks.clone(),
            std::future::pending(),
        ))),
        Err(error) => {
            tracing::error!(%error, "cannot build the webhook client: no webhook is delivered");
            None
        }
    }
}

/// Resolves on SIGTERM (what orchestrators send) or SIGINT (Ctrl-C). The handlers are
/// installed when this is called, not when the future is first polled, so a signal that comes
/// right after start-up is never lost to the default action (which would kill the process).
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let interrupt = signal(SignalKind::interrupt());
        let terminate = signal(SignalKind::terminate());
        async move {
            match (interrupt, terminate) {
                (Ok(mut interrupt), Ok(mut terminate)) => {
                    tokio::select! {
                        _ = interrupt.recv() => {},
                        _ = terminate.recv() => {},
                    }
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}
