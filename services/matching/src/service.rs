//! The matching service put together: the matchmaker over a store, its proposer (the consumer
//! that proposes the best counterparts of each listing published), its deliverer (the consumer
//! that turns a deal's reservation into the quantity delivered), and its gRPC service.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use prost::Message as _;
use symbiose_eventstore::{EventStore, RecordedEvent};
use symbiose_feed::{ConsumerMetrics, ConsumerOptions, Feed, FeedError, Handler, HandlerError, run_consumer};
use symbiose_kit::ServerConfig;
use symbiose_kit::auth::Authenticator;
use symbiose_kit::backoff::Backoff;
use symbiose_proto::matching::v1::matching_service_server::MatchingServiceServer;
use symbiose_shell::{Snapshots, reaction_failed};
use tokio::task::JoinHandle;
use tonic::service::interceptor::InterceptedService;
use uuid::Uuid;

use crate::grpc::MatchingApi;
use crate::matchmaker::Matchmaker;
use crate::reservations::Reservations;
use crate::view::Unfinished;

/// The proposer's consumer name (its checkpoint and dead letters are named after it).
pub const PROPOSER_NAME: &str = "matching-proposer";
/// The event the proposer reacts to.
const LISTING_PUBLISHED: &str = "symbiose.listings.v1.ListingPublished";
/// The deliverer's consumer name.
pub const DELIVERER_NAME: &str = "matching-deliveries";
/// The event the deliverer reacts to: the receiver confirmed what it accepted.
const SHIPMENT_CLOSED: &str = "symbiose.logistics.v1.ShipmentClosed";

/// The deliverer: when a deal's shipment closes, the offer's reservation becomes the quantity
/// the receiver accepted (the rest goes back to the offer), through the listings service. While
/// the listings service does not answer, the delivery is asked again, for as long as it takes
/// (the consumer's transient retries).
#[derive(Debug)]
pub struct Deliverer<S, R> {
    pub matchmaker: Arc<Matchmaker<S, R>>,
}

impl<S: EventStore, R: Reservations> Handler for Deliverer<S, R> {
    async fn handle(&mut self, event: &RecordedEvent) -> Result<(), HandlerError> {
        if event.event_type != SHIPMENT_CLOSED {
            return Ok(());
        }
        let closed = symbiose_proto::logistics::v1::ShipmentClosed::decode(event.payload.as_ref())?;
        let deal =
            Uuid::parse_str(&closed.deal_id).map_err(|_| format!("{:?} is not a deal id", closed.deal_id))?;
        self.matchmaker.delivered(deal, closed.accepted_milli).await.map_err(reaction_failed)
    }
}

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
        self.0.wait_for(event.position).await.map_err(reaction_failed)?;
        let proposed = self.0.propose_for(listing).await.map_err(reaction_failed)?;
        if proposed > 0 {
            tracing::info!(%listing, proposed, "proposed matches for a published listing");
        }
        Ok(())
    }
}

/// The task that runs the proposer: it ends when told to, or when its feed fails.
pub type Proposing = JoinHandle<Result<(), FeedError>>;

/// Starts the matchmaker over `store` (its view follows the log from its snapshot) and its
/// reactors ([`react`]), until `shutdown`.
pub fn start<S: EventStore, R: Reservations>(
    checkpoint_dir: PathBuf,
    store: S,
    reservations: R,
    snapshots: Snapshots,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(Arc<Matchmaker<S, R>>, Proposing), FeedError> {
    let matchmaker = Matchmaker::start(store.clone(), reservations, snapshots);
    let task = react(matchmaker.clone(), checkpoint_dir, store, shutdown)?;
    Ok((matchmaker, task))
}

/// Runs matching's reactors over the local log until `shutdown`: the proposer and the
/// deliverer, each from its checkpoint kept in `store` (dead letters in `checkpoint_dir`), and
/// the concluder. Work for one process of the platform: replicas run it under a lease.
pub fn react<S: EventStore, R: Reservations>(
    matchmaker: Arc<Matchmaker<S, R>>,
    checkpoint_dir: PathBuf,
    store: S,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<Proposing, FeedError> {
    let proposing = ConsumerOptions::new(PROPOSER_NAME, checkpoint_dir.clone())?;
    let delivering = ConsumerOptions::new(DELIVERER_NAME, checkpoint_dir)?;
    // One shutdown for both consumers.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut proposer = Proposer(matchmaker.clone());
    let mut deliverer = Deliverer { matchmaker: matchmaker.clone() };
    let concluder = matchmaker;
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop.send(true);
    });
    let until_stopped = |mut stopped: tokio::sync::watch::Receiver<bool>| async move {
        let _ = stopped.wait_for(|stopped| *stopped).await;
    };
    Ok(tokio::spawn(async move {
        let proposals = Feed::local_from_checkpoint(store.clone(), Some("listings"), &proposing).await?;
        let deliveries = Feed::local_from_checkpoint(store, Some("logistics"), &delivering).await?;
        let (metrics, delivery_metrics) = (ConsumerMetrics::default(), ConsumerMetrics::default());
        let (proposed, delivered, ()) = tokio::join!(
            run_consumer(proposals, &mut proposer, &proposing, &metrics, until_stopped(stopped.clone())),
            run_consumer(
                deliveries,
                &mut deliverer,
                &delivering,
                &delivery_metrics,
                until_stopped(stopped.clone())
            ),
            conclude_unfinished(concluder, until_stopped(stopped)),
        );
        proposed.and(delivered).map(|_| ())
    }))
}

/// How often the concluder looks for flows left half-way.
const CONCLUDER_INTERVAL_MS: u64 = 1_000;
/// How long a flow must have been left half-way before the concluder takes it up: a live call
/// finishing it takes milliseconds.
const CONCLUDER_GRACE_MS: u64 = 2_000;
/// Flows the concluder tries in one pass, at most.
const CONCLUDER_BATCH_MAX: usize = 100;
/// Flows the concluder looks at in one pass, at most: those waiting out a pause are passed
/// over, so a hundred that keep failing do not hide the others.
const CONCLUDER_SCAN_MAX: usize = 10_000;

/// The concluder: finishes the flows matching left half-way (a proposal every party accepted
/// while the listings service was away, a conclusion or a cancellation cut short by a crash),
/// after a restart as well, since the view is rebuilt from the log. A flow that fails is tried
/// again after a pause of [`Backoff::FLOW`] (doubling, with jitter, under 30 s), for as long as
/// it takes.
async fn conclude_unfinished<S: EventStore, R: Reservations>(
    matchmaker: Arc<Matchmaker<S, R>>,
    shutdown: impl Future<Output = ()> + Send,
) {
    use std::collections::HashMap;
    use std::time::{Duration, Instant};
    // When each flow was first seen, and when it may be tried again with how many failures.
    let mut seen: HashMap<Unfinished, (Instant, Instant, u32)> = HashMap::new();
    let mut ticks = tokio::time::interval(Duration::from_millis(CONCLUDER_INTERVAL_MS));
    let pass = async {
        loop {
            ticks.tick().await;
            let now = Instant::now();
            let unfinished = matchmaker.view().unfinished(CONCLUDER_SCAN_MAX);
            let listed: std::collections::HashSet<Unfinished> = unfinished.iter().copied().collect();
            seen.retain(|flow, _| listed.contains(flow));
            let mut tried = 0;
            for flow in unfinished {
                let (first_seen, due, failures) = *seen.entry(flow).or_insert((now, now, 0));
                if now.duration_since(first_seen) < Duration::from_millis(CONCLUDER_GRACE_MS) || now < due {
                    continue;
                }
                if tried == CONCLUDER_BATCH_MAX {
                    break;
                }
                tried += 1;
                match matchmaker.finish(flow).await {
                    Ok(()) => {
                        seen.remove(&flow);
                    }
                    Err(error) => {
                        let failures = failures + 1;
                        let pause = Backoff::FLOW.delay(u64::from(failures));
                        tracing::warn!(?flow, failures, %error, retry_in_ms = pause.as_millis() as u64, "cannot finish a flow yet");
                        seen.insert(flow, (first_seen, Instant::now() + pause, failures));
                    }
                }
            }
        }
    };
    tokio::select! {
        () = pass => {}
        () = shutdown => {}
    }
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
