//! The matching service put together: the matchmaker over a store, its proposer (the consumer
//! that proposes the best counterparts of each listing published), its deliverer (the consumer
//! that turns a deal's reservation into the quantity delivered), and its gRPC service.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use prost::Message as _;
use symbiose_eventstore::{EventStore, RecordedEvent};
use symbiose_feed::{ConsumerMetrics, ConsumerOptions, Feed, FeedError, Handler, HandlerError, run_consumer};
use symbiose_kit::auth::Authenticator;
use symbiose_kit::{ApiError, ServerConfig};
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
/// The deliverer's consumer name.
pub const DELIVERER_NAME: &str = "matching-deliveries";
/// The event the deliverer reacts to: the receiver confirmed what it accepted.
const SHIPMENT_CLOSED: &str = "symbiose.logistics.v1.ShipmentClosed";

/// The deliverer: when a deal's shipment closes, the offer's reservation becomes the quantity
/// the receiver accepted (the rest goes back to the offer), through the listings service.
#[derive(Debug)]
pub struct Deliverer<S, R> {
    pub matchmaker: Arc<Matchmaker<S, R>>,
    /// True once the service stops: a delivery waiting for the listings service gives up then
    /// (it is handed out again at the next start).
    pub stopped: tokio::sync::watch::Receiver<bool>,
}

impl<S: EventStore, R: Reservations> Handler for Deliverer<S, R> {
    async fn handle(&mut self, event: &RecordedEvent) -> Result<(), HandlerError> {
        if event.event_type != SHIPMENT_CLOSED {
            return Ok(());
        }
        let closed = symbiose_proto::logistics::v1::ShipmentClosed::decode(event.payload.as_ref())?;
        let deal =
            Uuid::parse_str(&closed.deal_id).map_err(|_| format!("{:?} is not a deal id", closed.deal_id))?;
        // The listings service may be restarting (each service alone): ask again for a while
        // before the consumer counts a failed delivery.
        let mut attempt = 0_u32;
        loop {
            match self.matchmaker.delivered(deal, closed.accepted_milli).await {
                Err(ApiError::Unavailable(reason)) if attempt < DELIVERY_ATTEMPTS_MAX => {
                    attempt += 1;
                    tracing::warn!(%deal, attempt, %reason, "the listings service did not answer a delivery: asking again");
                    let delay =
                        (DELIVERY_RETRY_DELAY_MS_MIN << attempt.min(6)).min(DELIVERY_RETRY_DELAY_MS_MAX);
                    tokio::select! {
                        () = tokio::time::sleep(std::time::Duration::from_millis(delay)) => {}
                        _ = self.stopped.wait_for(|stopped| *stopped) => {
                            return Err(format!("stopping before deal {deal}'s delivery reached the listings service").into());
                        }
                    }
                }
                answer => return Ok(answer?),
            }
        }
    }
}

/// Calls to the listings service one delivery makes while it does not answer, at most, before
/// the consumer counts a failure (and, after its own bound, parks the delivery): about a minute.
const DELIVERY_ATTEMPTS_MAX: u32 = 20;
const DELIVERY_RETRY_DELAY_MS_MIN: u64 = 50;
const DELIVERY_RETRY_DELAY_MS_MAX: u64 = 3_000;

/// The proposer: for each listing published, proposes its best counterparts (once per pair,
/// whatever the redeliveries).
#[derive(Debug)]
pub struct Proposer<S, R>(pub Arc<Matchmaker<S, R>>);

impl<S: EventStore, R: Reservations> Handler for Proposer<S, R> {
    async fn handle(&mut self, event: &RecordedEvent) -> Result<(), HandlerError> {
        if event.event_type != LISTING_PUBLISHED {
            return Ok(());
        }
        let listing = symbiose_shell::aggregate_id(event)?;
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
    let proposing = ConsumerOptions::new(PROPOSER_NAME, checkpoint_dir.clone())?;
    let delivering = ConsumerOptions::new(DELIVERER_NAME, checkpoint_dir)?;
    let matchmaker = Matchmaker::start(store.clone(), reservations);
    let proposals = Feed::local(store.clone(), proposing.load_position()?, Some("listings"), &proposing);
    let deliveries = Feed::local(store, delivering.load_position()?, Some("logistics"), &delivering);
    // One shutdown for both consumers.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut proposer = Proposer(matchmaker.clone());
    let mut deliverer = Deliverer { matchmaker: matchmaker.clone(), stopped: stopped.clone() };
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop.send(true);
    });
    let until_stopped = |mut stopped: tokio::sync::watch::Receiver<bool>| async move {
        let _ = stopped.wait_for(|stopped| *stopped).await;
    };
    let task = tokio::spawn(async move {
        let (metrics, delivery_metrics) = (ConsumerMetrics::default(), ConsumerMetrics::default());
        let (proposed, delivered) = tokio::join!(
            run_consumer(proposals, &mut proposer, &proposing, &metrics, until_stopped(stopped.clone())),
            run_consumer(deliveries, &mut deliverer, &delivering, &delivery_metrics, until_stopped(stopped)),
        );
        proposed.and(delivered).map(|_| ())
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
