//! The settlement service put together: the treasury over a store, its settler (the consumer
//! that moves the money as deals are agreed, delivered and cancelled, and pallets paid for), and
//! its gRPC service.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use symbiose_eventstore::{EventStore, RecordedEvent};
use symbiose_feed::{
    ConsumerMetrics, ConsumerOptions, Feed, FeedError, Handler, HandlerError, Transient, run_consumer,
};
use symbiose_kit::ServerConfig;
use symbiose_kit::auth::Authenticator;
use symbiose_matching_contract::deal;
use symbiose_proto::settlement::v1::settlement_service_server::SettlementServiceServer;
use symbiose_shell::{Snapshots, reaction_failed};
use tokio::task::JoinHandle;
use tonic::service::interceptor::InterceptedService;
use uuid::Uuid;

use crate::escrow::PalletPayment;
use crate::grpc::SettlementApi;
use crate::treasury::Treasury;
use crate::{codec, ledger};

/// The settler's consumer name (its checkpoint and dead letters are named after it).
pub const SETTLER_NAME: &str = "settlement";
const DEAL_CANCELLED: &str = "symbiose.matching.v1.DealCancelled";

/// The settler: each fact that moves money, applied once (every transfer id derives from it).
#[derive(Debug)]
pub struct Settler<S>(pub Arc<Treasury<S>>);

impl<S: EventStore> Settler<S> {
    fn deal(&self, id: Uuid) -> Result<deal::Deal, HandlerError> {
        // Its agreement comes before any later fact of it in the log: the view is behind.
        self.0.view().deal(id).cloned().ok_or_else(|| Transient::error(format!("deal {id} is not known yet")))
    }
}

impl<S: EventStore> Handler for Settler<S> {
    async fn handle(&mut self, event: &RecordedEvent) -> Result<(), HandlerError> {
        match event.event_type.as_str() {
            symbiose_matching_contract::event_types::DEAL_AGREED => {
                let deal::Event::Agreed(deal) = symbiose_matching_contract::decode_recorded_deal(event)?
                else {
                    return Ok(());
                };
                self.0.wait_for(event.position).await.map_err(reaction_failed)?;
                self.0.deal_agreed(&deal).await.map_err(reaction_failed)?;
            }
            DEAL_CANCELLED => {
                self.0.wait_for(event.position).await.map_err(reaction_failed)?;
                let deal = self.deal(symbiose_shell::aggregate_id(event)?)?;
                self.0.deal_cancelled(&deal).await.map_err(reaction_failed)?;
            }
            symbiose_logistics_contract::SHIPMENT_CLOSED => {
                let shipment = symbiose_logistics_contract::shipment::decode_recorded(event)?;
                let Some((deal_id, accepted_milli)) = shipment.closed() else { return Ok(()) };
                self.0.wait_for(event.position).await.map_err(reaction_failed)?;
                let deal = self.deal(deal_id)?;
                self.0.delivery_accepted(&deal, accepted_milli).await.map_err(reaction_failed)?;
            }
            codec::TRANSFERRED => {
                // Money reached an organization: the deals waiting for it are funded now.
                let ledger::Event::Transferred { transfer, .. } = codec::decode_recorded_ledger_event(event)?
                else {
                    return Ok(());
                };
                if let Some(organization) = transfer.credit.organization() {
                    self.0.wait_for(event.position).await.map_err(reaction_failed)?;
                    self.0.fund_waiting(organization).await.map_err(reaction_failed)?;
                }
            }
            codec::PENDING_POSTED | codec::PENDING_VOIDED => {
                // A hold posted in part or voided gives money back to its payer: the deals it
                // waits for may be funded now.
                self.0.wait_for(event.position).await.map_err(reaction_failed)?;
                if let Some(payer) = self.0.pending_payer(&event.stream, &event.event_type, &event.payload)? {
                    self.0.fund_waiting(payer).await.map_err(reaction_failed)?;
                }
            }
            symbiose_logistics_contract::PALLET_BALANCE_SETTLED => {
                let settled = symbiose_logistics_contract::pallets::decode_recorded(event)?;
                let Some(amount) = settled.payment() else { return Ok(()) };
                let payment = PalletPayment {
                    settlement_id: settled.settlement_id,
                    debtor: settled.debtor,
                    creditor: settled.creditor,
                    amount,
                };
                self.0.pallets_paid(&payment).await.map_err(reaction_failed)?;
            }
            _ => {}
        }
        Ok(())
    }
}

/// The task that runs the settler: it ends when told to, or when its feed fails.
pub type Settling = JoinHandle<Result<(), FeedError>>;

/// Starts the treasury over `store` (the platform's fee from `config`) and the settler
/// ([`react`]), until `shutdown`.
pub fn start<S: EventStore>(
    config: &ServerConfig,
    checkpoint_dir: PathBuf,
    store: S,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(Arc<Treasury<S>>, Settling), FeedError> {
    let treasury =
        Treasury::start(store.clone(), config.platform_fee_bp, Snapshots::every(config.view_snapshot_events));
    let task = react(treasury.clone(), checkpoint_dir, store, shutdown)?;
    Ok((treasury, task))
}

/// Runs the settler over the local log from its checkpoint kept in `store` (its dead letters
/// in `checkpoint_dir`), until `shutdown`. Work for one process of the platform: replicas run
/// it under a lease.
pub fn react<S: EventStore>(
    treasury: Arc<Treasury<S>>,
    checkpoint_dir: PathBuf,
    store: S,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<Settling, FeedError> {
    let options = ConsumerOptions::new(SETTLER_NAME, checkpoint_dir)?;
    let mut settler = Settler(treasury);
    Ok(tokio::spawn(async move {
        let feed = Feed::local_from_checkpoint(store, None, &options).await?;
        let metrics = ConsumerMetrics::default();
        run_consumer(feed, &mut settler, &options, &metrics, shutdown).await.map(|_| ())
    }))
}

/// The settlement service's gRPC service behind the authenticator, with the request size limit.
pub fn service<S: EventStore>(
    config: &ServerConfig,
    treasury: Arc<Treasury<S>>,
    authenticator: Authenticator,
) -> InterceptedService<SettlementServiceServer<SettlementApi<S>>, Authenticator> {
    let server = SettlementServiceServer::new(SettlementApi::new(treasury))
        .max_decoding_message_size(config.message_bytes_max);
    InterceptedService::new(server, authenticator)
}
