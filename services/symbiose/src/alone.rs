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
use symbiose_eventstore::embedded::{self, EmbeddedStore};
use symbiose_eventstore::{EventStore, RecordedEvent};
use symbiose_feed::FeedError;
use symbiose_kit::auth::{Revocations, Security};
use symbiose_kit::config::{LISTINGS_URL, NATS_URL};
use symbiose_kit::{Listeners, ServerConfig, ServiceSet};
use symbiose_shell::{Followed, View};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::transport::Endpoint;

use crate::{EVENTS_DIR, FEED_DIR, RELAY_CHECKPOINT_FILE};

/// Longest wait for a TCP connection to another service.
pub const SERVICE_CONNECT_TIMEOUT_MS: u64 = 5_000;
/// Longest wait for another service's answer.
pub const SERVICE_CALL_TIMEOUT_MS: u64 = 10_000;
/// Waits (of `symbiose_shell::VIEW_WAIT_MS_MAX` each) at start for the revoked tokens the
/// store already holds, before the service answers anyone.
const REVOCATIONS_CATCH_UP_WAITS: u32 = 6;

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
    let channel = Endpoint::from_shared(listings_url.clone())
        .with_context(|| format!("{LISTINGS_URL}: {listings_url}"))?
        .connect_timeout(Duration::from_millis(SERVICE_CONNECT_TIMEOUT_MS))
        .timeout(Duration::from_millis(SERVICE_CALL_TIMEOUT_MS))
        .connect_lazy();
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

/// The logistics service alone: the listings' events (the directory) and the matching's
/// (deals) from NATS.
pub async fn run_logistics(
    config: ServerConfig,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let alone = Alone::open(config, listeners, "logistics").await?;
    alone
        .run(&["listings", "matching"], shutdown, |services, config, store, security, stopped| {
            let (desk, task) = symbiose_logistics::start(config.data_dir.join(FEED_DIR), store, stopped)?;
            services.add(symbiose_logistics::service(config, desk, security.authenticator.clone()));
            Ok(task)
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
    store: EmbeddedStore,
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
        let events_dir = config.data_dir.join(EVENTS_DIR);
        let (store, report) = tokio::task::spawn_blocking(move || {
            EmbeddedStore::open(&events_dir, embedded::Options::default())
                .with_context(|| format!("opening the event store in {}", events_dir.display()))
        })
        .await
        .context("opening the event store")??;
        let security = Security::open(&config).context("loading the token signing key")?;
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
            events = report.events,
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
            EmbeddedStore,
            &Security,
            Stopped,
        ) -> Result<JoinHandle<Result<(), FeedError>>, FeedError>,
    ) -> anyhow::Result<()> {
        let Alone { context, config, listeners, store, security, nats } = self;
        let feed_dir = config.data_dir.join(FEED_DIR);
        let relay = symbiose_feed::start_relay(
            config.nats_url.as_deref(),
            config.nats_credentials.as_deref(),
            store.clone(),
            &feed_dir.join(RELAY_CHECKPOINT_FILE),
            &[context],
        )
        .await
        .context("connecting to NATS")?;
        let imported =
            symbiose_feed::start_imports(symbiose_feed::jetstream(nats), store.clone(), context, imports);
        let revoked: Followed<RevokedTokens> = Followed::start_with(
            store.clone(),
            "revoked tokens",
            RevokedTokens(security.revocations.clone()),
        );
        if let Some(last) = store.head().checked_sub(1) {
            let mut caught_up = revoked.wait_for(last).await;
            for _ in 1..REVOCATIONS_CATCH_UP_WAITS {
                if caught_up.is_ok() {
                    break;
                }
                caught_up = revoked.wait_for(last).await;
            }
            caught_up.map_err(|error| anyhow::anyhow!("{error}"))?;
        }
        let (stop, stopping) = watch::channel(false);
        let stopped: Stopped = Box::pin(async move {
            let mut stopping = stopping;
            let _ = stopping.wait_for(|stopping| *stopping).await;
        });
        let mut services = ServiceSet::new();
        let reactors = add(&mut services, &config, store.clone(), &security, stopped)?;
        let served = symbiose_kit::server::serve(&config, services, listeners, shutdown).await;
        let _ = stop.send(true);
        match reactors.await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::error!(%error, service = context, "the reactors stopped with an error")
            }
            Err(error) => tracing::error!(%error, service = context, "the reactors' task failed"),
        }
        imported.stop().await;
        if let Some(relay) = relay {
            relay.stop().await;
        }
        store.close().await;
        served
    }
}

/// The revoked tokens, from the listings' `TokenRevoked` events in the store.
struct RevokedTokens(Revocations);

impl View for RevokedTokens {
    fn apply(&mut self, recorded: &RecordedEvent) {
        if let Some(token_id) = symbiose_listings::revoked_token(recorded) {
            self.0.revoke(token_id);
        }
    }
}
