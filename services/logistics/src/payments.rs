//! How logistics has pallets paid for: through settlement's `PayForPallets`, called as the
//! platform's service before the pallet balance is recorded settled, so a balance is settled by
//! payment only once the money moved, and a debtor without the money keeps owing the pallets.
//!
//! [`PalletPayments`] is the port; [`SettlementPayments`] calls settlement's handler itself when
//! both run in one process, [`RemotePayments`] calls it over gRPC when each runs alone. Either
//! way settlement decides, with its ledger's rules.

use std::future::Future;
use std::pin::Pin;

use symbiose_domain::Money;
use symbiose_kit::auth::{TokenAuthority, service_request, service_request_in_process};
use symbiose_proto::settlement::v1 as settlement;
use symbiose_proto::settlement::v1::settlement_service_client::SettlementServiceClient;
use symbiose_proto::settlement::v1::settlement_service_server::SettlementService;
use tonic::transport::Channel;
use tonic::{Code, Status};
use uuid::Uuid;

/// A payment for pallets: `amount` from `debtor` to `creditor`, for the pallet settlement
/// `settlement_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PalletPaymentOrder {
    pub settlement_id: Uuid,
    pub debtor: Uuid,
    pub creditor: Uuid,
    pub amount: Money,
}

/// Why a payment was not made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaymentError {
    /// Settlement refused it (not enough money): its reason, which names the shortfall.
    #[error("{0}")]
    Refused(String),
    /// Settlement did not answer: nothing is known to have moved, and asking again may pass.
    #[error("settlement did not make the payment: {0}")]
    Unavailable(String),
    /// Settlement failed otherwise (a bad call, a key it does not accept): asking again will
    /// not help.
    #[error("settlement failed the payment: {0}")]
    Failed(String),
}

pub type PaymentFuture<'a> = Pin<Box<dyn Future<Output = Result<(), PaymentError>> + Send + 'a>>;

/// The port to settlement's pallet payments.
pub trait PalletPayments: Send + Sync + 'static {
    fn pay(&self, order: PalletPaymentOrder) -> PaymentFuture<'_>;
}

/// Settlement's handler, in the same process.
#[derive(Debug, Clone)]
pub struct SettlementPayments<S> {
    settlement: S,
}

impl<S> SettlementPayments<S> {
    pub fn new(settlement: S) -> SettlementPayments<S> {
        SettlementPayments { settlement }
    }
}

impl<S: SettlementService> PalletPayments for SettlementPayments<S> {
    fn pay(&self, order: PalletPaymentOrder) -> PaymentFuture<'_> {
        Box::pin(async move {
            let request = service_request_in_process(message(&order));
            answer(self.settlement.pay_for_pallets(request).await.map(|_| ()))
        })
    }
}

/// Settlement's gRPC port, when each service runs alone: every call carries a short-lived
/// token of the platform's service, signed with the platform's key.
#[derive(Debug, Clone)]
pub struct RemotePayments {
    client: SettlementServiceClient<Channel>,
    authority: TokenAuthority,
}

impl RemotePayments {
    /// Calls settlement through `channel` (connected lazily, so the two may start in any
    /// order), signing its tokens with `authority`.
    pub fn new(channel: Channel, authority: TokenAuthority) -> RemotePayments {
        RemotePayments { client: SettlementServiceClient::new(channel), authority }
    }
}

impl PalletPayments for RemotePayments {
    fn pay(&self, order: PalletPaymentOrder) -> PaymentFuture<'_> {
        Box::pin(async move {
            let request = service_request(&self.authority, message(&order));
            answer(self.client.clone().pay_for_pallets(request).await.map(|_| ()))
        })
    }
}

fn message(order: &PalletPaymentOrder) -> settlement::PayForPalletsRequest {
    settlement::PayForPalletsRequest {
        settlement_id: order.settlement_id.to_string(),
        debtor_organization_id: order.debtor.to_string(),
        creditor_organization_id: order.creditor.to_string(),
        amount: Some(order.amount.into()),
    }
}

fn answer(answered: Result<(), Status>) -> Result<(), PaymentError> {
    match answered {
        Ok(()) => Ok(()),
        Err(status) if status.code() == Code::FailedPrecondition => {
            Err(PaymentError::Refused(status.message().to_owned()))
        }
        Err(status) => {
            let said = format!("{:?}: {}", status.code(), status.message());
            match status.code() {
                Code::Unavailable
                | Code::DeadlineExceeded
                | Code::Cancelled
                | Code::ResourceExhausted
                | Code::Aborted => Err(PaymentError::Unavailable(said)),
                _ => Err(PaymentError::Failed(said)),
            }
        }
    }
}
