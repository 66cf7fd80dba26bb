//! The catalog: a read model of every published, still-open offer and request with what is
//! left of it, searchable by side, material, waste code, legal status, pallet grade, distance
//! (an R-tree of points), country, price and availability (`CatalogService`).
//!
//! It is rebuilt from the listings' events at every start (and when the operator asks) and
//! follows them: in one process through a `Feed` of the local store ([`start`]); as its own
//! stateless process ([`run`], the `symbiose-catalog` binary) through a replay of the listings'
//! stream on NATS, so any number of replicas can serve behind one address. It never writes to
//! a store and is never written to by commands.

mod catalog;
mod grpc;
pub mod projection;
pub mod query;
pub mod sample;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use symbiose_eventstore::EventStore;
use symbiose_feed::{ConsumerOptions, FeedError};
use symbiose_kit::auth::{Authenticator, KeyPolicy, Security};
use symbiose_kit::{Listeners, ServerConfig, ServiceSet};
use symbiose_proto::catalog::v1::catalog_service_server::CatalogServiceServer;
use symbiose_shell::Snapshots;
use tokio::task::JoinHandle;
use tonic::service::interceptor::InterceptedService;

pub use catalog::{
    CONSUMER_NAME, Catalog, CatalogHandler, LISTINGS_CONTEXT, POSITION_WAIT_MS_MAX, QUERY_CACHE_PAGES_MAX,
    REBUILD_WAIT_MS_MAX, REPLAY_FAILURES_MAX, Rebuilt, SNAPSHOT_NAME, follow, follow_replay, listing_event,
};
pub use grpc::CatalogApi;

/// The task that feeds the catalog: it ends when told to, or when its feed fails.
pub type Following = JoinHandle<Result<(), FeedError>>;

/// Starts the catalog over the local `store` (from its snapshot, saved as `snapshots` says,
/// else from position 0), following it until `shutdown` completes, its consumer's checkpoint
/// and dead letters in `checkpoint_dir`; returns the catalog and the task that follows.
pub fn start<S: EventStore>(
    checkpoint_dir: PathBuf,
    store: S,
    snapshots: Snapshots,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(Arc<Catalog>, Following), FeedError> {
    let options = ConsumerOptions::new(CONSUMER_NAME, checkpoint_dir)?;
    let catalog = Catalog::new();
    let task = tokio::spawn(follow(catalog.clone(), store, options, snapshots, shutdown));
    Ok((catalog, task))
}

/// The catalog's gRPC service behind the authenticator, with the request size limit.
pub fn service(
    config: &ServerConfig,
    catalog: Arc<Catalog>,
    authenticator: Authenticator,
) -> InterceptedService<CatalogServiceServer<CatalogApi>, Authenticator> {
    let server = CatalogServiceServer::new(CatalogApi::new(catalog))
        .max_decoding_message_size(config.message_bytes_max);
    InterceptedService::new(server, authenticator)
}

/// Runs the catalog as its own stateless process until `shutdown` completes: it rebuilds
/// from the listings' stream on NATS (`SYMBIOSE_NATS_URL`, required), serves once the
/// history is in, and follows the live events. It checks tokens with the platform's signing
/// key, which it never creates: `<data dir>/keys/signing.key` must be the listings service's.
pub async fn run(
    config: ServerConfig,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let url = config.nats_url.clone().ok_or_else(|| {
        anyhow::anyhow!(
            "{}: the catalog alone follows the listings' events on NATS, so it needs the NATS address",
            symbiose_kit::config::NATS_URL
        )
    })?;
    let security = Security::open(&config, KeyPolicy::MustExist).context("loading the token signing key")?;
    let client = symbiose_feed::connect(&url, config.nats_credentials.as_deref(), "symbiose-catalog")
        .await
        .context("connecting to NATS")?;
    let catalog = Catalog::new();
    let (stop_following, following_stopped) = tokio::sync::oneshot::channel::<()>();
    let mut following = tokio::spawn(follow_replay(
        catalog.clone(),
        symbiose_feed::jetstream(client),
        security.revocations.clone(),
        async move {
            let _ = following_stopped.await;
        },
    ));
    let mut shutdown = Box::pin(shutdown);
    // A replica takes no call before it holds the history: its readiness probe fails until then.
    tokio::select! {
        () = catalog.wait_for_first_rebuild() => {}
        () = &mut shutdown => {
            let _ = stop_following.send(());
            return following.await.context("the catalog's replay")?.context("following the listings' events");
        }
        ended = &mut following => {
            return Err(anyhow::anyhow!("the catalog stopped following before its first rebuild: {:?}", ended));
        }
    }
    let mut services = ServiceSet::new();
    services.add(service(&config, catalog, security.authenticator.clone()));
    let served = symbiose_kit::server::serve(&config, services, listeners, shutdown).await;
    let _ = stop_following.send(());
    match following.await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::error!(%error, "the catalog stopped following with an error"),
        Err(error) => tracing::error!(%error, "the catalog's replay failed"),
    }
    served
}
