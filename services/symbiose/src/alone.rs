//! Matching, logistics, settlement and passports each as a process of its own (the listings service runs
//! alone through `symbiose_listings::run`): its own store (on PostgreSQL, shared with the other
//! replicas of the same service), its own events relayed to NATS, the other contexts' events it
//! consumes taken from NATS through durable JetStream consumers and copied into its store
//! (`symbiose_feed::import`), and the listings service reached over gRPC. The same code as the
//! one-process server runs inside: the service's views and reactors follow the local log, which
//! holds everything they read. The relay, the imports and the reactors run under the service's
//! lease in the store, so that among replicas one runs them at a time.
//!
//! A service alone checks tokens with the platform's key (`<data dir>/keys/signing.key`, the
//! same file in every service) and learns of revoked tokens from the listings' events.

use std::future::Future;
use std::time::Duration;

use anyhow::Context as _;
use symbiose_eventstore::lease::{self, Held, LeaseOptions, LeaseState};
use symbiose_eventstore::{AnyStore, EventStore, RecordedEvent};
use symbiose_feed::FeedError;
use symbiose_kit::auth::{Revocations, Security};
use symbiose_kit::client::service_channel;
use symbiose_kit::config::{LISTINGS_URL, NATS_URL, SETTLEMENT_URL};
use symbiose_kit::{Listeners, ServerConfig, ServiceSet};
use symbiose_shell::{Followed, Snapshot, Snapshots, View};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::{FEED_DIR, RELAY_CHECKPOINT_FILE};

/// Longest wait at start for the imports to copy what NATS holds of the other contexts, before
/// the service answers anyone.
const IMPORTS_CATCH_UP_MS_MAX: u64 = 600_000;
/// Longest wait at start for the revoked tokens the store already holds, before the service
/// answers anyone.
const REVOCATIONS_CATCH_UP_MS_MAX: u64 = 600_000;

/// The names of the services alone's binaries. The image ships one binary, `symbiose`, and
/// each of these names as a link to it: called by one of them, it runs that service ([`main`]).
pub const BINARIES: [&str; 5] = [
    "symbiose-listings",
    "symbiose-matching",
    "symbiose-logistics",
    "symbiose-settlement",
    "symbiose-passports",
];

/// The process of the service alone that `binary` (one of [`BINARIES`]) names: its
/// configuration from the environment, its telemetry, its ports, then the service until
/// SIGTERM or Ctrl-C.
pub async fn main(binary: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        BINARIES.contains(&binary),
        "{binary} is none of the services alone: {}",
        BINARIES.join(", ")
    );
    let config = ServerConfig::from_env().context("reading the configuration")?;
    // Kept to the end: dropping it flushes the traces not yet exported.
    let _telemetry = symbiose_kit::telemetry::init(&config)?;
    let shutdown = symbiose_kit::server::shutdown_signal();
    if binary == "symbiose-passports" {
        // The passports alone serve the public web port too.
        let listeners = Listeners::bind_with_web(&config).await?;
        return run_passports(config, listeners, shutdown).await;
    }
    let listeners = Listeners::bind(&config).await?;
    match binary {
        "symbiose-listings" => run_listings(config, listeners, shutdown).await,
        "symbiose-matching" => run_matching(config, listeners, shutdown).await,
        "symbiose-logistics" => run_logistics(config, listeners, shutdown).await,
        _ => run_settlement(config, listeners, shutdown).await,
    }
}

/// The listings service alone (`symbiose_listings::run`), with the reference data beside it.
pub async fn run_listings(
    config: ServerConfig,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let reference =
        |config: &ServerConfig, authenticator: &symbiose_kit::Authenticator, services: &mut ServiceSet| {
            services.add(tonic::service::interceptor::InterceptedService::new(
                symbiose_reference::service(config),
                authenticator.clone(),
            ));
        };
    symbiose_listings::run(config, listeners, reference, shutdown).await
}

/// The matching service alone: the listings' events (offers, requests, the directory) and the
/// logistics' (deliveries) from NATS, the reservations through the listings service's gRPC
/// port at `SYMBIOSE_LISTINGS_URL`.
pub async fn run_matching(
    config: ServerConfig,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let listings_url = config.listings_url.clone().with_context(|| {
        format!(
            "{LISTINGS_URL}: matching alone reserves offers through the listings service: set its address"
        )
    })?;
    let channel = service_channel(&listings_url, LISTINGS_URL, config.services_tls.as_ref())?;
    let alone = Alone::open(config, listeners, "matching").await?;
    let reservations = symbiose_matching::RemoteReservations::new(channel, alone.security.authority.clone());
    alone
        .run(&["listings", "logistics"], shutdown, |services, config, store, security, _web| {
            let snapshots = Snapshots::every(config.view_snapshot_events);
            let matchmaker = symbiose_matching::Matchmaker::start(store.clone(), reservations, snapshots);
            services.add(symbiose_matching::service(
                config,
                matchmaker.clone(),
                security.authenticator.clone(),
            ));
            let checkpoints = config.data_dir.join(FEED_DIR);
            Ok(Box::new(move |stopped| {
                symbiose_matching::react(matchmaker.clone(), checkpoints.clone(), store.clone(), stopped)
            }))
        })
        .await
}

/// The logistics service alone: the listings' events (the directory), matching's (deals) and
/// settlement's (escrows held) from NATS, pallets paid for through settlement's gRPC port at
/// `SYMBIOSE_SETTLEMENT_URL`.
pub async fn run_logistics(
    config: ServerConfig,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let settlement_url = config.settlement_url.clone().with_context(|| {
        format!("{SETTLEMENT_URL}: logistics alone has pallets paid for through settlement: set its address")
    })?;
    let channel = service_channel(&settlement_url, SETTLEMENT_URL, config.services_tls.as_ref())?;
    // The Annex VII document's contacts, from the listings service when its address is set;
    // without it they print as to be completed.
    let directory = match &config.listings_url {
        Some(url) => Some(service_channel(url, LISTINGS_URL, config.services_tls.as_ref())?),
        None => None,
    };
    let alone = Alone::open(config, listeners, "logistics").await?;
    let payments = symbiose_logistics::RemotePayments::new(channel, alone.security.authority.clone());
    let contacts = directory.map(|channel| {
        let remote = symbiose_logistics::RemoteContacts::new(channel, alone.security.authority.clone());
        std::sync::Arc::new(remote) as std::sync::Arc<dyn symbiose_logistics::OrganizationContacts>
    });
    alone
        .run(&["listings", "matching", "settlement"], shutdown, |services, config, store, security, _web| {
            let desk = symbiose_logistics::Logistics::start(
                store.clone(),
                std::sync::Arc::new(payments),
                contacts,
                Snapshots::every(config.view_snapshot_events),
            );
            services.add(symbiose_logistics::service(config, desk.clone(), security.authenticator.clone()));
            let checkpoints = config.data_dir.join(FEED_DIR);
            Ok(Box::new(move |stopped| {
                symbiose_logistics::react(desk.clone(), checkpoints.clone(), store.clone(), stopped)
            }))
        })
        .await
}

/// The settlement service alone: the listings', matching's and logistics' events from NATS.
pub async fn run_settlement(
    config: ServerConfig,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let alone = Alone::open(config, listeners, "settlement").await?;
    alone
        .run(&["listings", "matching", "logistics"], shutdown, |services, config, store, security, _web| {
            let treasury = symbiose_settlement::Treasury::start(
                store.clone(),
                config.platform_fee_bp,
                Snapshots::every(config.view_snapshot_events),
            );
            services.add(symbiose_settlement::service(
                config,
                treasury.clone(),
                security.authenticator.clone(),
            ));
            let checkpoints = config.data_dir.join(FEED_DIR);
            Ok(Box::new(move |stopped| {
                symbiose_settlement::react(treasury.clone(), checkpoints.clone(), store.clone(), stopped)
            }))
        })
        .await
}

/// The passports service alone: the listings' events (the directory, the offers), matching's
/// (deals) and logistics' (shipments) from NATS, from which it draws each passport's chain of
/// custody and the territories' figures and registers (`TerritoryService` is served beside
/// `PassportService`); its gRPC port, and the public web port (`SYMBIOSE_WEB_ADDR`) serving the
/// pages, QR codes and labels, and the territories' dashboard. It runs no reactor: its once-only work is its relay and its imports.
pub async fn run_passports(
    config: ServerConfig,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let alone = Alone::open(config, listeners, "passports").await?;
    alone
        .run(&["listings", "matching", "logistics"], shutdown, |services, config, store, security, web| {
            let registry = symbiose_passports::Registry::start(
                store.clone(),
                Snapshots::every(config.view_snapshot_events),
            );
            services.add(symbiose_passports::service(
                config,
                registry.clone(),
                web.base_url(),
                security.authenticator.clone(),
            ));
            let territory = symbiose_territory::Observatory::start(
                store.clone(),
                Snapshots::every(config.view_snapshot_events),
            );
            services.add(symbiose_territory::service(
                config,
                territory.clone(),
                security.authenticator.clone(),
            ));
            web.serve(registry, territory);
            // No reactor: a task that only waits to be stopped.
            let reactors: Reactors = Box::new(|stopped: Stopped| {
                Ok(tokio::spawn(async move {
                    stopped.await;
                    Ok(())
                }))
            });
            Ok(reactors)
        })
        .await
}

/// A service's process before it serves: its store open, its key loaded, NATS connected.
struct Alone {
    context: &'static str,
    config: ServerConfig,
    listeners: Listeners,
    store: AnyStore,
    security: Security,
    nats: async_nats::Client,
}

/// The public web port of a service alone that has one (the passports'): bound by its binary,
/// given what to serve when the service is added, started when the gRPC port starts serving
/// (once the imports have caught up, like it), and stopped before the store closes.
struct WebPort {
    listener: Option<tokio::net::TcpListener>,
    base_url: String,
    start: Option<Box<dyn FnOnce() -> crate::PublicWeb + Send>>,
}

impl WebPort {
    /// The URL the pages are reached at (`SYMBIOSE_PUBLIC_BASE_URL`, else the port's address).
    fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Serves `registry`'s public pages and `territory`'s dashboard on the web port, if the
    /// process bound one.
    fn serve(
        &mut self,
        registry: std::sync::Arc<symbiose_passports::Registry<AnyStore>>,
        territory: std::sync::Arc<symbiose_territory::Observatory<AnyStore>>,
    ) {
        if let Some(listener) = self.listener.take() {
            let base_url = self.base_url.clone();
            self.start =
                Some(Box::new(move || crate::PublicWeb::start(listener, registry, territory, &base_url)));
        }
    }
}

/// What a service's reactors are stopped with.
type Stopped = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

/// Starts a service's reactors, each time this process takes its lease, until they are stopped.
type Reactors = Box<dyn FnMut(Stopped) -> Result<JoinHandle<Result<(), FeedError>>, FeedError> + Send>;

impl Alone {
    async fn open(
        config: ServerConfig,
        listeners: Listeners,
        context: &'static str,
    ) -> anyhow::Result<Alone> {
        let nats_url = config.nats_url.clone().with_context(|| {
            format!(
                "{NATS_URL}: the {context} service alone takes the other services' events from NATS: set it"
            )
        })?;
        let (store, report, security) =
            symbiose_listings::open_store_and_key(&config, symbiose_kit::KeyPolicy::MustExist).await?;
        let nats = symbiose_feed::connect(
            &nats_url,
            config.nats_credentials.as_deref(),
            &format!("symbiose-{context}"),
        )
        .await
        .context("connecting to NATS")?;
        tracing::info!(
            service = context,
            data_dir = %config.data_dir.display(),
            store = store.backend(),
            head = report.map_or_else(|| store.head().as_u64(), |report| report.events),
            "service starting alone"
        );
        Ok(Alone { context, config, listeners, store, security, nats })
    }

    /// Follows the revoked tokens, adds the service (`add` starts it, gives the web port what
    /// to serve if the service has one, and hands back how to start its reactors), and serves
    /// until `shutdown`. The service's once-only work (its
    /// relay, the imports of `imports`' events, its reactors) runs under the lease
    /// `<context>.jobs` ([`jobs_under_lease`]): in this process when it holds it, in another
    /// replica over the same store otherwise. Then stops everything in the reverse order and
    /// closes the store.
    async fn run(
        self,
        imports: &'static [&'static str],
        shutdown: impl Future<Output = ()> + Send + 'static,
        add: impl FnOnce(
            &mut ServiceSet,
            &ServerConfig,
            AnyStore,
            &Security,
            &mut WebPort,
        ) -> Result<Reactors, FeedError>,
    ) -> anyhow::Result<()> {
        let Alone { context, config, mut listeners, store, security, nats } = self;
        let base_url = listeners.public_base_url(&config).unwrap_or_default();
        let mut web = WebPort { listener: listeners.web.take(), base_url, start: None };
        // The tokens revoked before this start are known before anyone is answered.
        let revoked: Followed<RevokedTokens> = Followed::start_snapshotted(
            store.clone(),
            "revoked tokens",
            RevokedTokens(security.revocations.clone()),
            Snapshots::every(config.view_snapshot_events),
        );
        if let Err(error) = catch_up(&store, &revoked).await {
            store.close().await;
            return Err(error);
        }
        let mut services = ServiceSet::new();
        let reactors = match add(&mut services, &config, store.clone(), &security, &mut web) {
            Ok(reactors) => reactors,
            Err(error) => {
                store.close().await;
                return Err(error.into());
            }
        };
        let (stop_jobs, jobs_stopped) = watch::channel(false);
        let (caught_up, mut imports_caught_up) = watch::channel(false);
        let jobs = jobs_under_lease(
            Jobs {
                context,
                imports,
                config: config.clone(),
                store: store.clone(),
                nats,
                reactors,
                caught_up,
            },
            jobs_stopped,
        );
        let mut lease = jobs.state.clone();
        let grace = Duration::from_millis(config.shutdown_grace_ms);
        let (start_web, web_started) = (web.start.take(), std::sync::Arc::new(std::sync::Mutex::new(None)));
        let web_serving = web_started.clone();
        // The jobs end on their own only when an import fails (a store error): the service
        // stops, as its views would no longer follow the other contexts.
        let (served, work) = jobs
            .alongside(stop_jobs, shutdown, |mut shutting| async move {
                // Like a catalog replica, the process that imports answers once it holds the
                // other contexts' events (its readiness probe fails until then), within a
                // bound. A replica whose lease is held elsewhere serves at once: the holder
                // imports into the shared store.
                tokio::select! {
                    _ = imports_caught_up.wait_for(|caught_up| *caught_up) => {
                        tracing::info!(service = context, "imports caught up: serving");
                    }
                    _ = lease.wait_for(|state| *state == LeaseState::Elsewhere) => {
                        tracing::info!(service = context, "another replica holds the service's background work: serving");
                    }
                    () = tokio::time::sleep(Duration::from_millis(IMPORTS_CATCH_UP_MS_MAX)) => tracing::warn!(
                        service = context,
                        "the imports have not caught up in {} s: serving, with views behind the other contexts",
                        IMPORTS_CATCH_UP_MS_MAX / 1000
                    ),
                    _ = shutting.wait_for(|shutting| *shutting) => {}
                }
                if let Some(start) = start_web
                    && !*shutting.borrow()
                {
                    *web_serving.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(start());
                }
                symbiose_kit::server::serve(&config, services, listeners, lease::when_true(shutting)).await
            })
            .await;
        let web = web_started.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        if let Some(web) = web {
            web.stop(grace).await;
        }
        store.close().await;
        served
            .and(work.map_err(|reason| anyhow::anyhow!("the {context} service's background work: {reason}")))
    }
}

/// What a service alone runs once for the platform.
struct Jobs {
    context: &'static str,
    imports: &'static [&'static str],
    config: ServerConfig,
    store: AnyStore,
    nats: async_nats::Client,
    reactors: Reactors,
    /// Turned true once the imports have caught up with what NATS held at their start.
    caught_up: watch::Sender<bool>,
}

/// Runs the service's relay, its imports and its reactors whenever this process holds the
/// lease `<context>.jobs` in the store, until `stop`: on the embedded store at once (one
/// process owns it), on a shared store in one replica at a time, moving to another within
/// `SYMBIOSE_LEASE_TTL_MS` when its holder dies. Each holder resumes from the checkpoints kept
/// in the store. The task ends on its own only when an import fails.
fn jobs_under_lease(jobs: Jobs, stop: watch::Receiver<bool>) -> lease::Kept {
    let Jobs { context, imports, config, store, nats, reactors, caught_up } = jobs;
    let reactors = std::sync::Arc::new(tokio::sync::Mutex::new(reactors));
    let caught_up = std::sync::Arc::new(caught_up);
    let options = LeaseOptions::with_ttl_ms(config.lease_ttl_ms);
    let name = format!("{context}.jobs");
    let job = {
        let store = store.clone();
        move |held: Held| {
            let (config, store, nats) = (config.clone(), store.clone(), nats.clone());
            let (reactors, caught_up) = (reactors.clone(), caught_up.clone());
            async move {
                let feed_dir = config.data_dir.join(FEED_DIR);
                let relay = symbiose_feed::start_relay(
                    config.nats_url.as_deref(),
                    config.nats_credentials.as_deref(),
                    store.clone(),
                    &feed_dir.join(RELAY_CHECKPOINT_FILE),
                    &[context],
                    config.nats_stream_replicas.map_or(
                        symbiose_feed::route::StreamReplicas::Auto,
                        symbiose_feed::route::StreamReplicas::Exactly,
                    ),
                )
                .await
                .map_err(|error| format!("connecting to NATS: {error}"))?;
                let imported =
                    symbiose_feed::start_imports(symbiose_feed::jetstream(nats), store, context, imports);
                let (stop_reactors, reactors_stopped) = watch::channel(false);
                let stopped: Stopped = Box::pin(async move {
                    let mut stopped = reactors_stopped;
                    let _ = stopped.wait_for(|stopped| *stopped).await;
                });
                let started = (reactors.lock().await)(stopped);
                let failure = match &started {
                    Err(error) => Some(format!("starting the {context} reactors: {error}")),
                    Ok(_) => {
                        let failed = imported.failure();
                        let held_stopped = held.stopped();
                        tokio::pin!(failed, held_stopped);
                        let mut caught = false;
                        loop {
                            tokio::select! {
                                () = imported.caught_up(), if !caught => {
                                    caught = true;
                                    caught_up.send_replace(true);
                                }
                                reason = &mut failed => break Some(format!("an import failed: {reason}")),
                                () = &mut held_stopped => break None,
                            }
                        }
                    }
                };
                imported.stop().await;
                // The reactors stop before the relay, so what they wrote last is relayed now.
                let _ = stop_reactors.send(true);
                if let Ok(task) = started {
                    crate::log_end(task.await, &format!("the {context} reactors"));
                }
                if let Some(relay) = relay {
                    relay.stop().await;
                }
                failure.map_or(Ok(()), Err)
            }
        }
    };
    lease::keep(store, name, lease::holder_name(), options, stop, job)
}

/// Waits, at most [`REVOCATIONS_CATCH_UP_MS_MAX`], for the revoked tokens to reflect the store
/// as it was at start, saying how far they are while it waits.
async fn catch_up(store: &AnyStore, revoked: &Followed<RevokedTokens>) -> anyhow::Result<()> {
    let head = store.head();
    let started = tokio::time::Instant::now();
    while revoked.wait_for_head(head).await.is_err() {
        if started.elapsed() >= Duration::from_millis(REVOCATIONS_CATCH_UP_MS_MAX) {
            anyhow::bail!(
                "the revoked tokens did not catch up with the store in {} s (they reflect positions before {} of {head})",
                REVOCATIONS_CATCH_UP_MS_MAX / 1000,
                revoked.position(),
            );
        }
        tracing::info!(
            position = %revoked.position(),
            of = %head,
            "reading the revoked tokens from the store"
        );
    }
    Ok(())
}

/// The revoked tokens, from the listings' `TokenRevoked` events in the store.
struct RevokedTokens(Revocations);

impl View for RevokedTokens {
    fn apply(&mut self, recorded: &RecordedEvent) {
        if let Some(token_id) = symbiose_listings_contract::revoked_token(recorded) {
            self.0.revoke(token_id);
        }
    }
}

impl Snapshot for RevokedTokens {
    const NAME: &'static str = "revoked-tokens";

    fn encode(&self) -> Result<Vec<u8>, String> {
        symbiose_shell::snapshot::encode(&self.0.revoked_ids())
    }

    fn restored(&self, bytes: &[u8]) -> Result<RevokedTokens, String> {
        let revoked: Vec<uuid::Uuid> = symbiose_shell::snapshot::decode(bytes)?;
        for token_id in revoked {
            self.0.revoke(token_id);
        }
        Ok(RevokedTokens(self.0.clone()))
    }
}
