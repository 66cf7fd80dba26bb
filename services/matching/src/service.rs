//! The matching service put together: the matchmaker over a store, its proposer (the consumer
//! that proposes the best counterparts of each listing published), and its gRPC service.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use symbiose_eventstore::{EventStore, RecordedEvent};
use symbiose_feed::{ConsumerMetrics, ConsumerOptions, Feed, FeedError, Handler, HandlerError, run_consumer};
use symbiose_kit::ServerConfig;
use symbiose_kit::auth::Authenticator;
use symbiose_proto::matching::v1::matching_service_server::MatchingServiceServer;
use tokio::task::JoinHandle;
use tonic::service::interceptor::InterceptedService;
use uuid::Uuid;

use crate::grpc::MatchingApi;
use crate::matchmaker::Matchmaker;
use crate::reservations::Reservations;

/// The proposer's consumer name (its checkpoint and dead letters are named after it).
pub const PROPOSER_NAME: &str = "matching-proposer";
/// The event the proposer reacts to.
const LISTING_PUBLISHED: &str = "symbiose.listings.v1.ListingPublished";

/// The proposer: for each listing published, proposes its best counterparts (once per pair,
/// whatever the redeliveries).
#[derive(Debug)]
pub struct Proposer<S, R>(pub Arc<Matchmaker<S, R>>);

impl<S: EventStore, R: Reservations> Handler for Proposer<S, R> {
    async fn handle(&mut self, event: &RecordedEvent) -> Result<(), HandlerError> {
        if event.event_type != LISTING_PUBLISHED {
            return Ok(());
        }
        let listing = event
            .stream
            .as_str()
            .strip_prefix("listing-")
            .and_then(|id| Uuid::parse_str(id).ok())
            .ok_or_else(|| format!("{}: not a listing stream", event.stream))?;
        // The view must know the listing as published before it is matched.
        self.0.wait_for(event.position).await?;
        let proposed = self.0.propose_for(listing).await?;
        if proposed > 0 {
            tracing::info!(%listing, proposed, "proposed matches for a published listing");
        }
        Ok(())
    }
}

/// The task that runs the proposer: it ends when told to, or when its feed fails.
pub type Proposing = JoinHandle<Result<(), FeedError>>;

/// Starts the matchmaker over `store` (its view follows the log from the first event) and its
/// proposer over the local log from its checkpoint in `checkpoint_dir`, until `shutdown`.
pub fn start<S: EventStore, R: Reservations>(
    checkpoint_dir: PathBuf,
    store: S,
    reservations: R,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(Arc<Matchmaker<S, R>>, Proposing), FeedError> {
    let options = ConsumerOptions::new(PROPOSER_NAME, checkpoint_dir)?;
    let matchmaker = Matchmaker::start(store.clone(), reservations);
    let from_position = options.load_position()?;
    let feed = Feed::local(store, from_position, Some("listings"), &options);
    let mut proposer = Proposer(matchmaker.clone());
    let task = tokio::spawn(async move {
        let metrics = ConsumerMetrics::default();
        run_consumer(feed, &mut proposer, &options, &metrics, shutdown).await.map(|_| ())
    });
    Ok((matchmaker, task))
}

/// The matching service's gRPC service behind the authenticator, with the request size limit.
pub fn service<S: EventStore, R: Reservations>(
    config: &ServerConfig,
    matchmaker: Arc<Matchmaker<S, R>>,
    authenticator: Authenticator,
) -> InterceptedService<MatchingServiceServer<MatchingApi<S, R>>, Authenticator> {
    let server = MatchingServiceServer::new(MatchingApi::new(matchmaker))
        .max_decoding_message_size(config.message_bytes_max);
    InterceptedService::new(server, authenticator)
}
