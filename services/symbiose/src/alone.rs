//! Matching, logistics and settlement each as a process of its own (the listings service runs
//! alone through `symbiose_listings::run`): its own data directory and store, its own events
//! relayed to NATS, the other contexts' events it consumes taken from NATS through durable
//! JetStream consumers and copied into its store (`symbiose_feed::import`), and the listings
//! service reached over gRPC. The same code as the one-process server runs inside: the
//! service's views and reactors follow the local log, which holds everything they read.
//!
//! A service alone checks tokens with the platform's key (`<data dir>/keys/signing.key`, the
//! same file in every service) and learns of revoked tokens from the listings' events.

use std::future::Future;
use std::time::Duration;

use anyhow::Context as _;
use symbiose_eventstore::{AnyStore, EventStore, RecordedEvent};
use symbiose_feed::FeedError;
use symbiose_kit::auth::{Revocations, Security};
use symbiose_kit::config::{LISTINGS_URL, NATS_URL, SETTLEMENT_URL};
use symbiose_kit::{Listeners, ServerConfig, ServiceSet};
use symbiose_shell::{Followed, View};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::transport::Endpoint;

use crate::{FEED_DIR, RELAY_CHECKPOINT_FILE};

/// Longest wait for a TCP connection to another service.
pub const SERVICE_CONNECT_TIMEOUT_MS: u64 = 5_000;
/// Longest wait for another service's answer.
pub const SERVICE_CALL_TIMEOUT_MS: u64 = 10_000;
/// Longest wait at start for the imports to copy what NATS holds of the other contexts, before
/// the service answers anyone.
const IMPORTS_CATCH_UP_MS_MAX: u64 = 600_000;
/// Longest wait at start for the revoked tokens the store already holds, before the service
/// answers anyone.
const REVOCATIONS_CATCH_UP_MS_MAX: u64 = 600_000;

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
    let channel = service_channel(&listings_url, LISTINGS_URL)?;
    let alone = Alone::open(config, listeners, "matching").await?;
    let reservations = symbiose_matching::RemoteReservations::new(channel, alone.security.authority.clone());
    alone
        .run(&["listings", "logistics"], shutdown, |services, config, store, security, stopped| {
            let (matchmaker, task) =
                symbiose_matching::start(config.data_dir.join(FEED_DIR), store, reservations, stopped)?;
            services.add(symbiose_matching::service(config, matchmaker, security.authenticator.clone()));
            Ok(task)
        })
        .await
}

/// A lazy channel to another service at `url` (the setting `key`), with the bounds of a call
/// between services.
fn service_channel(url: &str, key: &str) -> anyhow::Result<tonic::transport::Channel> {
    Ok(Endpoint::from_shared(url.to_owned())
        .with_context(|| format!("{key}: {url}"))?
        .connect_timeout(Duration::from_millis(SERVICE_CONNECT_TIMEOUT_MS))
        .timeout(Duration::from_millis(SERVICE_CALL_TIMEOUT_MS))
        .connect_lazy())
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
    let channel = service_channel(&settlement_url, SETTLEMENT_URL)?;
    // The Annex VII document's contacts, from the listings service when its address is set;
    // without it they print as to be completed.
    let directory = match &config.listings_url {
        Some(url) => Some(service_channel(url, LISTINGS_URL)?),
        None => None,
    };
    let alone = Alone::open(config, listeners, "logistics").await?;
    let payments = symbiose_logistics::RemotePayments::new(channel, alone.security.authority.clone());
    let contacts = directory.map(|channel| {
        let remote = symbiose_logistics::RemoteContacts::new(channel, alone.security.authority.clone());
        std::sync::Arc::new(remote) as std::sync::Arc<dyn symbiose_logistics::OrganizationContacts>
    });
    alone
        .run(
            &["listings", "matching", "settlement"],
            shutdown,
            |services, config, store, security, stopped| {
                let (desk, task) = symbiose_logistics::start(
                    config.data_dir.join(FEED_DIR),
                    store,
                    std::sync::Arc::new(payments),
                    contacts,
                    stopped,
                )?;
                services.add(symbiose_logistics::service(config, desk, security.authenticator.clone()));
                Ok(task)
            },
        )
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
        .run(
            &["listings", "matching", "logistics"],
            shutdown,
            |services, config, store, security, stopped| {
                let (treasury, task) =
                    symbiose_settlement::start(config, config.data_dir.join(FEED_DIR), store, stopped)?;
                services.add(symbiose_settlement::service(config, treasury, security.authenticator.clone()));
                Ok(task)
            },
        )
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

/// What a service's reactors are stopped with.
type Stopped = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

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

    /// Relays the service's own events, imports `imports`' events, follows the revoked tokens,
    /// adds the service (`add` starts it and hands back its reactors' task) and serves until
    /// `shutdown`; then stops everything in the reverse order and closes the store.
    async fn run(
        self,
        imports: &[&str],
        shutdown: impl Future<Output = ()> + Send + 'static,
        add: impl FnOnce(
            &mut ServiceSet,
            &ServerConfig,
            AnyStore,
            &Security,
            Stopped,
        ) -> Result<JoinHandle<Result<(), FeedError>>, FeedError>,
    ) -> anyhow::Result<()> {
        let Alone { context, config, listeners, store, security, nats } = self;
        // The tokens revoked before this start are known before anyone is answered.
        let revoked: Followed<RevokedTokens> = Followed::start_with(
            store.clone(),
            "revoked tokens",
            RevokedTokens(security.revocations.clone()),
        );
        if let Err(error) = catch_up(&store, &revoked).await {
            store.close().await;
            return Err(error);
        }
        let (stop, stopping) = watch::channel(false);
        let stopped: Stopped = Box::pin(async move {
            let mut stopping = stopping;
            let _ = stopping.wait_for(|stopping| *stopping).await;
        });
        let mut services = ServiceSet::new();
        let mut reactors = match add(&mut services, &config, store.clone(), &security, stopped) {
            Ok(reactors) => Some(reactors),
            Err(error) => {
                store.close().await;
                return Err(error.into());
            }
        };
        let feed_dir = config.data_dir.join(FEED_DIR);
        let relay = symbiose_feed::start_relay(
            config.nats_url.as_deref(),
            config.nats_credentials.as_deref(),
            store.clone(),
            &feed_dir.join(RELAY_CHECKPOINT_FILE),
            &[context],
        )
        .await;
        let served = match relay {
            Err(error) => Err(anyhow::Error::from(error).context("connecting to NATS")),
            Ok(relay) => {
                let imported = symbiose_feed::start_imports(
                    symbiose_feed::jetstream(nats),
                    store.clone(),
                    context,
                    imports,
                );
                // An import that fails (a store error) stops the service: its views would no
                // longer follow the other contexts.
                let failure = imported.failure();
                let (import_failed, import_failure) = tokio::sync::oneshot::channel();
                let (shut, mut shutting) = watch::channel(false);
                tokio::spawn(async move {
                    tokio::select! {
                        () = shutdown => {}
                        reason = failure => {
                            tracing::error!(%reason, service = context, "an import failed: the service stops");
                            let _ = import_failed.send(reason);
                        }
                    }
                    let _ = shut.send(true);
                });
                // Like a catalog replica, the service answers once it holds the other contexts'
                // events (its readiness probe fails until then), within a bound.
                tokio::select! {
                    () = imported.caught_up() => tracing::info!(service = context, "imports caught up: serving"),
                    () = tokio::time::sleep(Duration::from_millis(IMPORTS_CATCH_UP_MS_MAX)) => tracing::warn!(
                        service = context,
                        "the imports have not caught up in {} s: serving, with views behind the other contexts",
                        IMPORTS_CATCH_UP_MS_MAX / 1000
                    ),
                    _ = shutting.wait_for(|shutting| *shutting) => {}
                }
                let until = async move {
                    let _ = shutting.wait_for(|shutting| *shutting).await;
                };
                let served = symbiose_kit::server::serve(&config, services, listeners, until).await;
                imported.stop().await;
                // The reactors stop before the relay, so what they wrote last is relayed now.
                let _ = stop.send(true);
                if let Some(reactors) = reactors.take() {
                    crate::log_end(reactors.await, &format!("the {context} reactors"));
                }
                if let Some(relay) = relay {
                    relay.stop().await;
                }
                match import_failure.await {
                    Ok(reason) => served.and(Err(anyhow::anyhow!("an import failed: {reason}"))),
                    Err(_) => served,
                }
            }
        };
        let _ = stop.send(true);
        if let Some(reactors) = reactors.take() {
            crate::log_end(reactors.await, &format!("the {context} reactors"));
        }
        store.close().await;
        served
    }
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
