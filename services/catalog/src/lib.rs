//! The catalog: a read model of every published, still-open offer and request with what is
//! left of it, searchable by side, material, waste code, legal status, pallet grade, distance
//! (an R-tree of points), country, price and availability (`CatalogService`).
//!
//! It is rebuilt from the listings' events at every start and follows them through a `Feed`;
//! it never writes to a store and is never written to by commands.

mod catalog;
mod grpc;
pub mod projection;
pub mod query;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use symbiose_eventstore::EventStore;
use symbiose_feed::{ConsumerOptions, FeedError};
use symbiose_kit::ServerConfig;
use symbiose_kit::auth::Authenticator;
use symbiose_proto::catalog::v1::catalog_service_server::CatalogServiceServer;
use tokio::task::JoinHandle;
use tonic::service::interceptor::InterceptedService;

pub use catalog::{
    CONSUMER_NAME, Catalog, CatalogHandler, POSITION_WAIT_MS_MAX, QUERY_CACHE_PAGES_MAX, follow,
};
pub use grpc::CatalogApi;

/// The task that feeds the catalog: it ends when told to, or when its feed fails.
pub type Following = JoinHandle<Result<(), FeedError>>;

/// Starts the catalog over the local `store` (rebuilt from position 0), following it until
/// `shutdown` completes, its consumer's checkpoint and dead letters in `checkpoint_dir`;
/// returns the catalog and the task that follows.
pub fn start<S: EventStore>(
    checkpoint_dir: PathBuf,
    store: S,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(Arc<Catalog>, Following), FeedError> {
    let options = ConsumerOptions::new(CONSUMER_NAME, checkpoint_dir)?;
    let catalog = Catalog::new();
    let task = tokio::spawn(follow(catalog.clone(), store, options, shutdown));
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
