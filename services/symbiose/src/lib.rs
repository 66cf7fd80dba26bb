//! The standalone Symbiose server: every service in one process, on one gRPC port, with its
//! data under one directory: the embedded event store in `events/` (or, with
//! `SYMBIOSE_STORE=postgres`, the events in PostgreSQL), the token signing key in
//! `keys/`, the keys of personal data in `vault/` (in the database on PostgreSQL), the
//! operator's token in `operator.token`, and the catalog's checkpoint in `feed/` (those of the
//! relay and the reactors are kept in the store). It is what `cargo run --release` starts, and
//! what the black-box tests start on free ports. With `SYMBIOSE_NATS_URL` set it also relays its
//! events to NATS JetStream, for partners and for services running on their own.
//!
//! `alone` runs matching, logistics, settlement and passports each as a process of its own (the
//! binaries `symbiose-matching`, `symbiose-logistics`, `symbiose-settlement` and
//! `symbiose-passports`, next to `symbiose-listings`).
//!
//! It only composes the services: it holds no business rule of its own.

pub mod alone;
pub mod cli;
pub mod cli_backup;
pub mod cli_import;
pub mod cli_logistics;
pub mod cli_matching;
pub mod cli_output;
pub mod cli_passports;
pub mod cli_profile;
pub mod cli_settlement;
pub mod cli_store;
pub mod cli_territory;
mod demo;
pub mod progress;

use std::future::Future;
use std::path::Path;

use symbiose_eventstore::lease::{self, Held, LeaseOptions};
use symbiose_eventstore::{AnyStore, EventStore as _};
use symbiose_kit::auth::Security;
use symbiose_kit::{Listeners, ServerConfig, ServiceSet};
use symbiose_matching::ListingsReservations;
use symbiose_shell::Snapshots;
use tokio::sync::oneshot;
use tonic::service::interceptor::InterceptedService;

/// The directory of the event store under the data directory.
pub const EVENTS_DIR: &str = symbiose_listings::EVENTS_DIR;
/// The directory of the event feed's state (the relay's and the consumers' checkpoints) under
/// the data directory.
pub const FEED_DIR: &str = symbiose_listings::FEED_DIR;
/// The relay's checkpoint, in the feed directory.
pub const RELAY_CHECKPOINT_FILE: &str = symbiose_listings::RELAY_CHECKPOINT_FILE;
/// The contexts this server hosts, whose NATS streams the relay sets up at start.
const CONTEXTS: &[&str] = &["listings", "matching", "logistics", "settlement", "passports"];

/// A standalone server with its store open, its keys loaded and its ports bound, ready to
/// serve.
#[derive(Debug)]
pub struct Standalone {
    config: ServerConfig,
    listeners: Listeners,
    store: AnyStore,
    security: Security,
}

impl Standalone {
    /// Opens the event store the configuration names (recovering the embedded one if the last
    /// run crashed), loads or creates the signing key and the operator token, and takes the
    /// ports. Fails if another process holds the embedded store's directory.
    pub async fn build(config: ServerConfig, listeners: Listeners) -> anyhow::Result<Standalone> {
        let (store, report, security) =
            symbiose_listings::open_store_and_key(&config, symbiose_kit::KeyPolicy::CreateIfMissing).await?;
        match report {
            Some(report) => tracing::info!(
                data_dir = %config.data_dir.display(),
                events = report.events,
                segments = report.segments,
                operator_token = %security.operator_token_path.display(),
                "standalone server starting"
            ),
            None => tracing::info!(
                data_dir = %config.data_dir.display(),
                store = store.backend(),
                head = %store.head(),
                operator_token = %security.operator_token_path.display(),
                "standalone server starting"
            ),
        }
        Ok(Standalone { config, listeners, store, security })
    }

    pub fn store(&self) -> &AnyStore {
        &self.store
    }

    /// Where the operator's token is.
    pub fn operator_token_path(&self) -> &Path {
        &self.security.operator_token_path
    }

    /// Serves every service until `shutdown` completes, then stops the relay (if NATS is on)
    /// and closes the store. The once-only work (the relay, the reactors, the expiry sweeper)
    /// runs under the lease `symbiose.jobs`: on the embedded store at once, on PostgreSQL in
    /// one of the servers sharing the database.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let Standalone { config, mut listeners, store, security } = self;
        let mut services = ServiceSet::new();
        services.add(InterceptedService::new(
            symbiose_reference::service(&config),
            security.authenticator.clone(),
        ));
        let vault = symbiose_listings::open_vault(&config, &store).await?;
        let (directory, market) =
            symbiose_listings::add_services(&mut services, &config, store.clone(), vault, &security).await?;
        // Matching reserves through the listings service's own handler, as the platform's service.
        let reservations = ListingsReservations::new(symbiose_listings::ListingApi::new(market.clone()));
        let snapshots = Snapshots::every(config.view_snapshot_events);
        let matchmaker = symbiose_matching::Matchmaker::start(store.clone(), reservations, snapshots);
        services.add(symbiose_matching::service(&config, matchmaker.clone(), security.authenticator.clone()));
        let treasury = symbiose_settlement::Treasury::start(store.clone(), config.platform_fee_bp, snapshots);
        // Logistics has pallets paid for through settlement's own handler, as the platform's service.
        let payments = symbiose_logistics::SettlementPayments::new(symbiose_settlement::SettlementApi::new(
            treasury.clone(),
        ));
        services.add(symbiose_settlement::service(&config, treasury.clone(), security.authenticator.clone()));
        // The Annex VII document's contacts come from the listings service's own handler, as the
        // platform's service.
        let contacts =
            symbiose_logistics::ListingsContacts::new(symbiose_listings::OrganizationApi::new(directory));
        let desk = symbiose_logistics::Logistics::start(
            store.clone(),
            std::sync::Arc::new(payments),
            Some(std::sync::Arc::new(contacts)),
            snapshots,
        );
        services.add(symbiose_logistics::service(&config, desk.clone(), security.authenticator.clone()));
        let (stop_catalog, catalog_stopped) = oneshot::channel::<()>();
        let (catalog, catalog_task) =
            symbiose_catalog::start(config.data_dir.join(FEED_DIR), store.clone(), snapshots, async move {
                let _ = catalog_stopped.await;
            })?;
        services.add(symbiose_catalog::service(&config, catalog, security.authenticator.clone()));
        let passports = symbiose_passports::Registry::start(store.clone(), snapshots);
        let base_url = listeners.public_base_url(&config).unwrap_or_default();
        services.add(symbiose_passports::service(
            &config,
            passports.clone(),
            &base_url,
            security.authenticator.clone(),
        ));
        let territory = symbiose_territory::Observatory::start(store.clone(), snapshots);
        services.add(symbiose_territory::service(&config, territory.clone(), security.authenticator.clone()));
        let web = listeners
            .web
            .take()
            .map(|listener| PublicWeb::start(listener, passports.clone(), territory.clone(), &base_url));
        let jobs = Jobs { config: config.clone(), store: store.clone(), market, matchmaker, treasury, desk };
        let (stop_jobs, jobs_stopped) = tokio::sync::watch::channel(false);
        let kept = lease::keep(
            store.clone(),
            "symbiose.jobs".to_owned(),
            lease::holder_name(),
            LeaseOptions::with_ttl_ms(config.lease_ttl_ms),
            jobs_stopped,
            move |held| jobs.clone().run(held),
        );
        // The work ends on its own only when it cannot start (NATS unreachable): the server stops.
        let (served, work) = kept
            .alongside(stop_jobs, shutdown, |shutting| {
                symbiose_kit::server::serve(&config, services, listeners, lease::when_true(shutting))
            })
            .await;
        let _ = stop_catalog.send(());
        log_end(catalog_task.await, "the catalog");
        if let Some(web) = web {
            web.stop(std::time::Duration::from_millis(config.shutdown_grace_ms)).await;
        }
        store.close().await;
        served.and(work.map_err(anyhow::Error::msg))
    }
}

/// The standalone server's once-only work: the relay, the reactors of matching, settlement and
/// logistics, and the listings' expiry sweeper.
#[derive(Clone)]
struct Jobs {
    config: ServerConfig,
    store: AnyStore,
    market: std::sync::Arc<symbiose_listings::Market<AnyStore>>,
    matchmaker: std::sync::Arc<
        symbiose_matching::Matchmaker<
            AnyStore,
            ListingsReservations<symbiose_listings::ListingApi<AnyStore>>,
        >,
    >,
    treasury: std::sync::Arc<symbiose_settlement::Treasury<AnyStore>>,
    desk: std::sync::Arc<symbiose_logistics::Logistics<AnyStore>>,
}

impl Jobs {
    /// Runs the work until `held` says stop; an error only if it cannot start.
    async fn run(self, held: Held) -> Result<(), String> {
        let Jobs { config, store, market, matchmaker, treasury, desk } = self;
        let checkpoint = config.data_dir.join(FEED_DIR).join(RELAY_CHECKPOINT_FILE);
        let relay = symbiose_feed::start_relay(
            config.nats_url.as_deref(),
            config.nats_credentials.as_deref(),
            store.clone(),
            &checkpoint,
            CONTEXTS,
            config.nats_stream_replicas.map_or(
                symbiose_feed::route::StreamReplicas::Auto,
                symbiose_feed::route::StreamReplicas::Exactly,
            ),
        )
        .await
        .map_err(|error| format!("connecting to NATS: {error}"))?;
        let feed_dir = config.data_dir.join(FEED_DIR);
        let reactors = (
            symbiose_matching::react(matchmaker, feed_dir.clone(), store.clone(), held.stopped()),
            symbiose_settlement::react(treasury, feed_dir.clone(), store.clone(), held.stopped()),
            symbiose_logistics::react(desk, feed_dir, store, held.stopped()),
        );
        let sweeper = market.sweep(held.stopped());
        let outcome = match reactors {
            (Ok(proposing), Ok(settling), Ok(opening)) => {
                held.stopped().await;
                log_end(settling.await, "the settler");
                log_end(opening.await, "the logistics transport opener");
                log_end(proposing.await, "the matching proposer");
                Ok(())
            }
            (proposing, settling, opening) => {
                let mut failures = Vec::new();
                for (started, what) in
                    [(proposing, "matching"), (settling, "settlement"), (opening, "logistics")]
                {
                    match started {
                        Ok(task) => task.abort(),
                        Err(error) => failures.push(format!("starting the {what} reactors: {error}")),
                    }
                }
                Err(failures.join("; "))
            }
        };
        let _ = sweeper.await;
        if let Some(relay) = relay {
            relay.stop().await;
        }
        outcome
    }
}

/// The public web port serving passports' pages, QR codes and labels, and the territories'
/// dashboard, without a token.
pub(crate) struct PublicWeb {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl PublicWeb {
    /// Serves `registry`'s public pages and `territory`'s dashboard on `listener`, the
    /// passports' URLs under `base_url`, until [`PublicWeb::stop`].
    pub(crate) fn start<S: symbiose_eventstore::EventStore>(
        listener: tokio::net::TcpListener,
        registry: std::sync::Arc<symbiose_passports::Registry<S>>,
        territory: std::sync::Arc<symbiose_territory::Observatory<S>>,
        base_url: &str,
    ) -> PublicWeb {
        let addr = listener.local_addr().map(|addr| addr.to_string()).unwrap_or_default();
        tracing::info!(%addr, public_base_url = %base_url, "web listening");
        if base_url.contains("://0.0.0.0") || base_url.contains("://[::]") {
            tracing::warn!(
                public_base_url = %base_url,
                "the passports' QR codes and labels will hold an address no phone reaches: set SYMBIOSE_PUBLIC_BASE_URL"
            );
        }
        // The passports' router answers every other address with its 404 page.
        let router = symbiose_territory::web::router(territory)
            .merge(symbiose_passports::web::router(registry, base_url));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await
        });
        PublicWeb { stop, task }
    }

    /// Stops taking requests, and waits at most `grace` for those in flight; a client still
    /// reading then is cut off.
    pub(crate) async fn stop(mut self, grace: std::time::Duration) {
        let _ = self.stop.send(());
        match tokio::time::timeout(grace, &mut self.task).await {
            Ok(joined) => log_end(joined, "the web port"),
            Err(_) => {
                tracing::warn!(
                    grace_ms = grace.as_millis() as u64,
                    "the web port's last answers outlasted the grace: cut off"
                );
                self.task.abort();
            }
        }
    }
}

/// Logs how a background task (`what`) ended, if not well: its error, or its failure.
pub(crate) fn log_end<E: std::fmt::Display>(
    joined: Result<Result<(), E>, tokio::task::JoinError>,
    what: &str,
) {
    match joined {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::error!(%error, "{what} stopped with an error"),
        Err(error) => tracing::error!(%error, "{what}: the task failed"),
    }
}

/// Builds and runs the standalone server until `shutdown` completes.
pub async fn run(
    config: ServerConfig,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    Standalone::build(config, listeners).await?.run(shutdown).await
}
