//! The logistics service put together: the desk over a store, its transport opener (the
//! consumer that opens a transport for every deal agreed), and its gRPC service.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use symbiose_eventstore::{EventStore, RecordedEvent};
use symbiose_feed::{ConsumerMetrics, ConsumerOptions, Feed, FeedError, Handler, HandlerError, run_consumer};
use symbiose_kit::ServerConfig;
use symbiose_kit::auth::Authenticator;
use symbiose_matching_contract::deal;
use symbiose_proto::logistics::v1::logistics_service_server::LogisticsServiceServer;
use symbiose_shell::Snapshots;
use tokio::task::JoinHandle;
use tonic::service::interceptor::InterceptedService;

use crate::contacts::OrganizationContacts;
use crate::desk::Logistics;
use crate::grpc::LogisticsApi;
use crate::payments::PalletPayments;

/// The transport opener's consumer name (its checkpoint and dead letters are named after it).
pub const TRANSPORT_OPENER_NAME: &str = "logistics-transports";

/// The transport opener: for each deal agreed, opens its transport request (once, whatever
/// the redeliveries: the transport's id is the deal's).
#[derive(Debug)]
pub struct TransportOpener<S>(pub Arc<Logistics<S>>);

impl<S: EventStore> Handler for TransportOpener<S> {
    async fn handle(&mut self, event: &RecordedEvent) -> Result<(), HandlerError> {
        if event.event_type != symbiose_matching_contract::event_types::DEAL_AGREED {
            return Ok(());
        }
        let deal::Event::Agreed(deal) = symbiose_matching_contract::decode_recorded_deal(event)? else {
            return Ok(());
        };
        if self.0.open_transport(&deal).await.map_err(symbiose_shell::reaction_failed)? {
            tracing::info!(deal = %deal.id, "opened the transport of an agreed deal");
        }
        Ok(())
    }
}

/// The task that runs the transport opener: it ends when told to, or when its feed fails.
pub type Opening = JoinHandle<Result<(), FeedError>>;

/// Starts the desk over `store` and the transport opener ([`react`]), until `shutdown`.
/// `contacts` is the directory the Annex VII document asks the parties' contacts of (`None`:
/// printed to be completed).
pub fn start<S: EventStore>(
    checkpoint_dir: PathBuf,
    store: S,
    payments: Arc<dyn PalletPayments>,
    contacts: Option<Arc<dyn OrganizationContacts>>,
    snapshots: Snapshots,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(Arc<Logistics<S>>, Opening), FeedError> {
    let desk = Logistics::start(store.clone(), payments, contacts, snapshots);
    let task = react(desk.clone(), checkpoint_dir, store, shutdown)?;
    Ok((desk, task))
}

/// Runs the transport opener over the local log from its checkpoint kept in `store` (its dead
/// letters in `checkpoint_dir`), until `shutdown`. Work for one process of the platform:
/// replicas run it under a lease.
pub fn react<S: EventStore>(
    desk: Arc<Logistics<S>>,
    checkpoint_dir: PathBuf,
    store: S,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<Opening, FeedError> {
    let options = ConsumerOptions::new(TRANSPORT_OPENER_NAME, checkpoint_dir)?;
    let mut opener = TransportOpener(desk);
    Ok(tokio::spawn(async move {
        let feed = Feed::local_from_checkpoint(store, Some("matching"), &options).await?;
        let metrics = ConsumerMetrics::default();
        run_consumer(feed, &mut opener, &options, &metrics, shutdown).await.map(|_| ())
    }))
}

/// The logistics service's gRPC service behind the authenticator, with the request size limit.
pub fn service<S: EventStore>(
    config: &ServerConfig,
    desk: Arc<Logistics<S>>,
    authenticator: Authenticator,
) -> InterceptedService<LogisticsServiceServer<LogisticsApi<S>>, Authenticator> {
    let server = LogisticsServiceServer::new(LogisticsApi::new(desk))
        .max_decoding_message_size(config.message_bytes_max);
    InterceptedService::new(server, authenticator)
}
