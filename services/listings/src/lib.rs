//! The listings service: the directory (`OrganizationService`: who is who on the marketplace,
//! their sites, roles, permits and contacts, and the tokens that name them) and the listings
//! themselves (`ListingService`: offers and requests, their lifecycle, and the reservations
//! made against an offer's quantity).
//!
//! It writes only to its own event store, through the application shells (`directory` for
//! organizations, `market` for listings, both on `symbiose_shell`); the aggregates `organization` and
//! `listing` are pure (no I/O, no clock); contacts never reach the log in the clear.

mod codec;
mod directory;
mod error;
mod grpc;
mod import;
pub mod listing;
mod listing_codec;
mod listing_grpc;
mod market;
pub mod organization;
mod vault;

use std::future::Future;
use std::sync::Arc;

use anyhow::Context as _;
use symbiose_eventstore::embedded::{self, EmbeddedStore};
use symbiose_eventstore::lease::{self, Held, LeaseOptions};
use symbiose_eventstore::postgres::{PostgresOptions, PostgresStore};
use symbiose_eventstore::{AnyStore, EventStore};
use symbiose_kit::auth::{Authenticator, KeyPolicy, Security};
use symbiose_kit::config::StoreBackend;
use symbiose_kit::{Listeners, ServerConfig, ServiceSet};
use symbiose_proto::listings::v1::listing_service_server::ListingServiceServer;
use symbiose_proto::listings::v1::organization_service_server::OrganizationServiceServer;
use symbiose_shell::Snapshots;
use tonic::service::interceptor::InterceptedService;

pub use directory::Directory;
pub use error::ListingsError;
pub use grpc::OrganizationApi;
pub use listing_grpc::ListingApi;
pub use market::Market;
pub use vault::{FileVault, PostgresVault, Vault, VaultError};

/// The directory of the keys of personal data, under the data directory.
pub const VAULT_DIR: &str = "vault";
/// The directory of the event store, under the data directory.
pub const EVENTS_DIR: &str = "events";
/// On EventStoreDB, the views' snapshots cached by the process, under the data directory (the
/// other stores keep them themselves).
pub const SNAPSHOTS_CACHE_DIR: &str = "snapshots";
/// The directory of the event feed's state (the relay's checkpoint), under the data directory.
pub const FEED_DIR: &str = "feed";
/// The relay's checkpoint, in the feed directory.
pub const RELAY_CHECKPOINT_FILE: &str = "relay.checkpoint";
/// The context whose events this service writes (`symbiose.listings.v1.*`).
pub const CONTEXT: &str = "listings";

/// Longest wait at start for the directory view to catch up with the log (from its snapshot,
/// or from the first event of a long log).
pub const CATCH_UP_WAIT_MS: u64 = 600_000;
/// How often the wait says how far the directory view is.
const CATCH_UP_REPORT_MS: u64 = 5_000;

/// Starts the directory over `store`, waits for its view to catch up with the log (so tokens
/// revoked before a restart are refused from the first call), and adds the listings
/// service's gRPC services to `services`, behind the authenticator. The personal data is
/// sealed with the keys of `vault` ([`open_vault`]). The sweeper that expires listings is
/// not started: the caller runs [`Market::sweep`] (in one process of the platform).
pub async fn add_services<S: EventStore>(
    services: &mut ServiceSet,
    config: &ServerConfig,
    store: S,
    vault: Vault,
    security: &Security,
) -> anyhow::Result<(Arc<Directory<S>>, Arc<Market<S>>)> {
    let store_head = store.head();
    let directory = Arc::new(Directory::start(
        store,
        vault,
        security.authority.clone(),
        security.revocations.clone(),
        config.token_ttl_days,
        Snapshots::every(config.view_snapshot_events),
    ));
    let started = std::time::Instant::now();
    while let Err(behind) = directory.wait_for_head_within(store_head, CATCH_UP_REPORT_MS).await {
        if started.elapsed() >= std::time::Duration::from_millis(CATCH_UP_WAIT_MS) {
            return Err(behind.into());
        }
        tracing::info!(%behind, "the directory is reading the log before the first call is answered");
    }
    services.add(organization_service(config, directory.clone(), security.authenticator.clone()));
    let market = Market::start(
        directory.store().clone(),
        directory.clone(),
        Snapshots::every(config.view_snapshot_events),
    );
    let listings = ListingServiceServer::new(ListingApi::new(market.clone()))
        .max_decoding_message_size(config.message_bytes_max);
    services.add(InterceptedService::new(listings, security.authenticator.clone()));
    Ok((directory, market))
}

/// The vault that goes with `store`: the keys in the data directory (`vault/`) beside an
/// embedded or EventStoreDB store; in the database beside a PostgreSQL store, shared by every
/// replica (key files an earlier run left in `vault/` are moved into it).
pub async fn open_vault(config: &ServerConfig, store: &AnyStore) -> anyhow::Result<Vault> {
    let dir = config.data_dir.join(VAULT_DIR);
    Ok(match store {
        AnyStore::Postgres(store) => Vault::Postgres(
            PostgresVault::open(store.clone(), &dir).await.context("opening the vault in the database")?,
        ),
        _ => Vault::Files(FileVault::open(dir).context("opening the vault")?),
    })
}

/// Opens the event store the configuration names and loads the signing key (creating it only
/// as `key` allows): what every server does first. The embedded store is in `<data dir>/events`
/// (recovered if the last run crashed, off the async threads; its open report is returned); a
/// PostgreSQL store is at `SYMBIOSE_POSTGRES_URL` (no report); an EventStoreDB store at
/// `SYMBIOSE_EVENTSTORE_CONNECTION_STRING`, in a binary built with the feature `eventstoredb`
/// (which any other refuses). Fails if another process holds the embedded store's directory,
/// and, before touching the store, if the key must exist and does not.
pub async fn open_store_and_key(
    config: &ServerConfig,
    key: KeyPolicy,
) -> anyhow::Result<(AnyStore, Option<embedded::OpenReport>, Security)> {
    if key == KeyPolicy::MustExist {
        let keys_dir = config.data_dir.join(symbiose_kit::auth::KEYS_DIR);
        symbiose_kit::TokenAuthority::load(&keys_dir).context("loading the token signing key")?;
    }
    let (store, report) = match &config.store {
        StoreBackend::Embedded => {
            let events_dir = config.data_dir.join(EVENTS_DIR);
            let (store, report) = tokio::task::spawn_blocking(move || {
                EmbeddedStore::open(&events_dir, embedded::Options::default())
                    .with_context(|| format!("opening the event store in {}", events_dir.display()))
            })
            .await
            .context("opening the event store")??;
            (AnyStore::Embedded(store), Some(report))
        }
        StoreBackend::Postgres(url) => {
            // `url` shows without its password.
            let store = PostgresStore::connect(url.expose(), PostgresOptions::default())
                .await
                .with_context(|| format!("opening the event store in the PostgreSQL database {url}"))?;
            (AnyStore::Postgres(store), None)
        }
        #[cfg(feature = "eventstoredb")]
        StoreBackend::EventStoreDb(connection) => {
            // `connection` shows without its password.
            // EventStoreDB keeps no snapshots: the views cache theirs in the data directory.
            let options = symbiose_eventstore::eventstoredb::EventStoreDbOptions {
                snapshot_dir: Some(config.data_dir.join(SNAPSHOTS_CACHE_DIR)),
                ..Default::default()
            };
            let store = symbiose_eventstore::eventstoredb::EventStoreDbStore::connect_with(
                connection.expose(),
                options,
            )
            .await
            .with_context(|| format!("opening the event store on the EventStoreDB server {connection}"))?;
            (AnyStore::EventStoreDb(store), None)
        }
        #[cfg(not(feature = "eventstoredb"))]
        StoreBackend::EventStoreDb(_) => anyhow::bail!(
            "SYMBIOSE_STORE=eventstoredb: this binary was built without the EventStoreDB backend; build it \
             with `cargo build --release --features eventstoredb`"
        ),
    };
    let security = match Security::open(config, key).context("loading the token signing key") {
        Ok(security) => security,
        Err(error) => {
            store.close().await;
            return Err(error);
        }
    };
    Ok((store, report, security))
}

/// Runs the listings service alone, on its own store (the one the configuration names), until
/// `shutdown` completes, with the services `also` adds behind the same authenticator (the
/// binary adds the reference data: this crate depends on no other service).
pub async fn run(
    config: ServerConfig,
    listeners: Listeners,
    also: impl FnOnce(&ServerConfig, &Authenticator, &mut ServiceSet),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (store, _, security) = open_store_and_key(&config, KeyPolicy::MustExist).await?;
    let vault = match open_vault(&config, &store).await {
        Ok(vault) => vault,
        Err(error) => {
            store.close().await;
            return Err(error);
        }
    };
    let mut services = ServiceSet::new();
    also(&config, &security.authenticator, &mut services);
    let (_, market) = add_services(&mut services, &config, store.clone(), vault, &security).await?;
    // Alone, the listings service relays its events itself (catalog replicas and the other
    // services take them from NATS) and sweeps expired listings: once for the platform, under
    // the lease `listings.jobs`, in whichever replica holds it.
    let checkpoint = config.data_dir.join(FEED_DIR).join(RELAY_CHECKPOINT_FILE);
    let (stop_jobs, jobs_stopped) = tokio::sync::watch::channel(false);
    let job = {
        let (config, store) = (config.clone(), store.clone());
        move |held: Held| {
            let (config, store, checkpoint, market) =
                (config.clone(), store.clone(), checkpoint.clone(), market.clone());
            async move {
                let relay = symbiose_feed::start_relay(
                    config.nats_url.as_deref(),
                    config.nats_credentials.as_deref(),
                    store,
                    &checkpoint,
                    &[CONTEXT],
                    config.nats_stream_replicas.map_or(
                        symbiose_feed::route::StreamReplicas::Auto,
                        symbiose_feed::route::StreamReplicas::Exactly,
                    ),
                )
                .await
                .map_err(|error| format!("connecting to NATS: {error}"))?;
                let sweeper = market.sweep(held.stopped());
                held.stopped().await;
                let _ = sweeper.await;
                if let Some(relay) = relay {
                    relay.stop().await;
                }
                Ok(())
            }
        }
    };
    let kept = lease::keep(
        store.clone(),
        format!("{CONTEXT}.jobs"),
        lease::holder_name(),
        LeaseOptions::with_ttl_ms(config.lease_ttl_ms),
        jobs_stopped,
        job,
    );
    // The work ends on its own only when it cannot start (NATS unreachable): the service stops.
    let (served, work) = kept
        .alongside(stop_jobs, shutdown, |shutting| {
            symbiose_kit::server::serve(&config, services, listeners, lease::when_true(shutting))
        })
        .await;
    store.close().await;
    served.and(work.map_err(anyhow::Error::msg))
}

/// The directory's gRPC service behind the authenticator, with the request size limit.
pub fn organization_service<S: EventStore>(
    config: &ServerConfig,
    directory: Arc<Directory<S>>,
    authenticator: Authenticator,
) -> InterceptedService<OrganizationServiceServer<OrganizationApi<S>>, Authenticator> {
    let server = OrganizationServiceServer::new(OrganizationApi::new(directory))
        .max_decoding_message_size(config.message_bytes_max);
    InterceptedService::new(server, authenticator)
}
