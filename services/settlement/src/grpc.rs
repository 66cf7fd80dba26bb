//! The `SettlementService` handlers: who calls, what they ask, what the treasury shows.

use std::sync::Arc;

use symbiose_domain::input::echo;
use symbiose_domain::{Currency, Role};
use symbiose_eventstore::{EventStore, Position};
use symbiose_kit::auth::{self, Caller};
use symbiose_kit::{ApiError, page};
use symbiose_proto::convert::{FieldError, required, timestamp_from_ms};
use symbiose_proto::settlement::v1::{self as pb, settlement_service_server::SettlementService};
use symbiose_settlement_contract::invoice::InvoiceParty;
use symbiose_shell::Actor;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::codec;
use crate::ledger::{AccountId, Applied, Balances, PendingStatus};
use crate::treasury::Treasury;

/// Largest page of a statement, and its default.
pub const STATEMENT_PAGE_SIZE_MAX: usize = 500;
const STATEMENT_PAGE_SIZE_DEFAULT: u32 = 100;
/// Largest page of invoices, and its default.
pub const INVOICES_PAGE_SIZE_MAX: usize = 100;
const INVOICES_PAGE_SIZE_DEFAULT: u32 = 20;
/// Largest page of a deal's transfers, and its default.
pub const DEAL_TRANSFERS_PAGE_SIZE_MAX: usize = 100;
const DEAL_TRANSFERS_PAGE_SIZE_DEFAULT: u32 = 20;
/// The currencies the ledgers keep.
const CURRENCIES: [Currency; 2] = [Currency::Eur, Currency::Chf];

#[derive(Debug)]
pub struct SettlementApi<S> {
    treasury: Arc<Treasury<S>>,
}

impl<S> SettlementApi<S> {
    pub fn new(treasury: Arc<Treasury<S>>) -> SettlementApi<S> {
        SettlementApi { treasury }
    }
}

fn invalid(error: FieldError) -> ApiError {
    ApiError::InvalidArgument { field: error.field, message: error.message }
}

fn balance_to_wire(account: &AccountId, balances: &Balances) -> pb::Balance {
    pb::Balance {
        account: account.key(),
        currency_code: account.currency().code().to_owned(),
        posted_minor: balances.posted_minor,
        pending_debits_minor: balances.pending_debits_minor,
        pending_credits_minor: balances.pending_credits_minor,
        available_minor: balances.available_minor(),
    }
}

fn page_size(requested: u32, default: u32, max: usize) -> Result<usize, ApiError> {
    let requested = if requested == 0 { default } else { requested };
    page::page_size(i32::try_from(requested).unwrap_or(i32::MAX), max)
}

fn currency(code: &str) -> Result<Currency, ApiError> {
    code.trim().parse().map_err(|error| ApiError::invalid_argument("currency_code", error))
}

/// The account a statement is asked of: the caller's own, or (for the operator) any.
fn statement_account(caller: &Caller, account: &str, currency: Currency) -> Result<AccountId, ApiError> {
    match account.trim() {
        "" => Ok(AccountId::available(caller.organization_id, currency)),
        key if caller.is_operator() => match Uuid::parse_str(key) {
            Ok(organization) => Ok(AccountId::available(organization, currency)),
            // The key's own error quotes more of it than an answer should.
            Err(_) => AccountId::parse_key(key).map_err(|_| {
                ApiError::invalid_argument(
                    "account",
                    format!("{:?} is not <kind>[:<organization>]:<currency>", echo(key)),
                )
            }),
        },
        _ => {
            Err(ApiError::PermissionDenied("only the operator reads another account's statement".to_owned()))
        }
    }
}

#[tonic::async_trait]
impl<S: EventStore> SettlementService for SettlementApi<S> {
    async fn get_balances(
        &self,
        request: Request<pb::GetBalancesRequest>,
    ) -> Result<Response<pb::GetBalancesResponse>, Status> {
        let caller = auth::caller(&request)?;
        let request = request.into_inner();
        let organization = match request.organization_id.trim() {
            "" if caller.is_operator() => None,
            "" => Some(caller.organization_id),
            id if caller.is_operator() => Some(codec::id(id, "organization_id").map_err(invalid)?),
            _ => {
                return Err(ApiError::PermissionDenied(
                    "only the operator reads another organization's balances".to_owned(),
                )
                .into());
            }
        };
        self.treasury.wait_for(Position::from_u64(request.min_position)).await?;
        let view = self.treasury.view();
        let mut balances = Vec::new();
        for currency in CURRENCIES {
            let (Some(ledger), _) = view.ledger(currency) else { continue };
            match organization {
                Some(organization) => {
                    let account = AccountId::available(organization, currency);
                    balances.push(balance_to_wire(&account, &ledger.balances(&account)));
                }
                None => balances.extend(
                    ledger
                        .accounts()
                        .filter(|(account, _)| account.organization().is_none())
                        .map(|(account, balances)| balance_to_wire(account, balances)),
                ),
            }
        }
        Ok(Response::new(pb::GetBalancesResponse { balances }))
    }

    async fn get_statement(
        &self,
        request: Request<pb::GetStatementRequest>,
    ) -> Result<Response<pb::GetStatementResponse>, Status> {
        let caller = auth::caller(&request)?;
        let request = request.into_inner();
        let currency = currency(&request.currency_code)?;
        let account = statement_account(&caller, &request.account, currency)?;
        let size = page_size(request.page_size, STATEMENT_PAGE_SIZE_DEFAULT, STATEMENT_PAGE_SIZE_MAX)?;
        let from = match page::decode_token(&request.page_token)? {
            Some(key) => key.parse::<usize>().map_err(|_| {
                ApiError::invalid_argument("page_token", "is not a token this service issued")
            })?,
            None => 0,
        };
        self.treasury.wait_for(Position::from_u64(request.min_position)).await?;
        let view = self.treasury.view();
        let (ledger, _) = view.ledger(currency);
        let statement = ledger.map(|ledger| ledger.statement(&account)).unwrap_or_default();
        let lines: Vec<pb::StatementLine> = statement
            .iter()
            .skip(from)
            .take(size)
            .map(|line| pb::StatementLine {
                index: line.index as u64,
                transfer_id: line.transfer_id.to_string(),
                code: line.code.name().to_owned(),
                deal_id: line.deal_id.map(|deal| deal.to_string()).unwrap_or_default(),
                counterparty_account: line.counterparty.key(),
                amount_minor: line.amount_minor,
                balance_minor: line.balance_minor,
                at: Some(timestamp_from_ms(line.at_ms)),
            })
            .collect();
        let next = from + lines.len();
        let next_page_token =
            if next < statement.len() { page::encode_token(&next.to_string()) } else { String::new() };
        Ok(Response::new(pb::GetStatementResponse { lines, next_page_token }))
    }

    async fn list_deal_transfers(
        &self,
        request: Request<pb::ListDealTransfersRequest>,
    ) -> Result<Response<pb::ListDealTransfersResponse>, Status> {
        let caller = auth::caller(&request)?;
        let request = request.into_inner();
        let deal_id = codec::id(&request.deal_id, "deal_id").map_err(invalid)?;
        let size =
            page_size(request.page_size, DEAL_TRANSFERS_PAGE_SIZE_DEFAULT, DEAL_TRANSFERS_PAGE_SIZE_MAX)?;
        // A deal's transfers are only ever appended to, so an index is a stable place to resume.
        let from = match page::decode_token(&request.page_token)? {
            Some(key) => key.parse::<usize>().map_err(|_| {
                ApiError::invalid_argument("page_token", "is not a token this service issued")
            })?,
            None => 0,
        };
        self.treasury.wait_for(Position::from_u64(request.min_position)).await?;
        let view = self.treasury.view();
        let not_found = || ApiError::NotFound(format!("deal {deal_id} not found"));
        let deal = view.deal(deal_id).ok_or_else(not_found)?;
        if !caller.is_operator() && !deal.is_party(caller.organization_id) {
            return Err(not_found().into());
        }
        let all = view.deal_transfers(deal_id);
        let next = from.saturating_add(size).min(all.len());
        let next_page_token =
            if next < all.len() { page::encode_token(&next.to_string()) } else { String::new() };
        let transfers = all
            .get(from..next)
            .unwrap_or_default()
            .iter()
            .filter_map(|(currency, id)| {
                let (ledger, _) = view.ledger(*currency);
                let applied = ledger?.transfer(*id)?;
                let (transfer, state, posted) = match applied {
                    Applied::Immediate(transfer) => {
                        (transfer, pb::TransferState::Posted, Some(transfer.amount))
                    }
                    Applied::TwoPhase { transfer, status } => match status {
                        PendingStatus::Pending => (transfer, pb::TransferState::Pending, None),
                        PendingStatus::Posted { amount } if *amount == transfer.amount => {
                            (transfer, pb::TransferState::Posted, Some(*amount))
                        }
                        PendingStatus::Posted { amount } => {
                            (transfer, pb::TransferState::PartlyPosted, Some(*amount))
                        }
                        PendingStatus::Voided => (transfer, pb::TransferState::Voided, None),
                    },
                };
                Some(pb::Transfer {
                    transfer_id: transfer.id.to_string(),
                    debit_account: transfer.debit.key(),
                    credit_account: transfer.credit.key(),
                    amount: Some(transfer.amount.into()),
                    code: transfer.code.name().to_owned(),
                    deal_id: deal_id.to_string(),
                    state: state.into(),
                    posted: posted.map(Into::into),
                })
            })
            .collect();
        let escrow_refused = match view.escrow(deal_id) {
            Some(crate::view::Escrow::Refused { reason }) => reason.clone(),
            _ => String::new(),
        };
        Ok(Response::new(pb::ListDealTransfersResponse { transfers, escrow_refused, next_page_token }))
    }

    async fn get_invoice(
        &self,
        request: Request<pb::GetInvoiceRequest>,
    ) -> Result<Response<pb::GetInvoiceResponse>, Status> {
        let caller = auth::caller(&request)?;
        let request = request.into_inner();
        let id = codec::id(&request.invoice_id, "invoice_id").map_err(invalid)?;
        self.treasury.wait_for(Position::from_u64(request.min_position)).await?;
        let view = self.treasury.view();
        let not_found = || ApiError::NotFound(format!("invoice {id} not found"));
        let stored = view.invoice(id).ok_or_else(not_found)?;
        let party = |party: &InvoiceParty| party.organization == caller.organization_id;
        if !caller.is_operator() && !party(&stored.invoice.issuer) && !party(&stored.invoice.customer) {
            return Err(not_found().into());
        }
        Ok(Response::new(pb::GetInvoiceResponse {
            invoice: Some(codec::invoice_to_wire(&stored.invoice)),
            text: stored.text.clone(),
        }))
    }

    async fn list_invoices(
        &self,
        request: Request<pb::ListInvoicesRequest>,
    ) -> Result<Response<pb::ListInvoicesResponse>, Status> {
        let caller = auth::caller(&request)?;
        let request = request.into_inner();
        let size = page_size(request.page_size, INVOICES_PAGE_SIZE_DEFAULT, INVOICES_PAGE_SIZE_MAX)?;
        let malformed = || ApiError::invalid_argument("page_token", "is not a token this service issued");
        let after = match page::decode_token(&request.page_token)? {
            Some(key) => {
                let (position, id) = key.split_once('/').ok_or_else(malformed)?;
                Some((
                    position.parse().map_err(|_| malformed())?,
                    Uuid::parse_str(id).map_err(|_| malformed())?,
                ))
            }
            None => None,
        };
        self.treasury.wait_for(Position::from_u64(request.min_position)).await?;
        let view = self.treasury.view();
        let (page, more) = view.invoices_of(caller.organization_id, after, size);
        let next_page_token = match page.last() {
            Some((position, last)) if more => {
                page::encode_token(&format!("{position}/{}", last.invoice.invoice_id))
            }
            _ => String::new(),
        };
        Ok(Response::new(pb::ListInvoicesResponse {
            invoices: page.iter().map(|(_, stored)| codec::invoice_to_wire(&stored.invoice)).collect(),
            next_page_token,
        }))
    }

    async fn record_deposit(
        &self,
        request: Request<pb::RecordDepositRequest>,
    ) -> Result<Response<pb::RecordDepositResponse>, Status> {
        let caller = auth::caller(&request)?;
        caller.require_role(Role::Operator)?;
        let request = request.into_inner();
        let actor = Actor::for_request(caller.organization_id, &request.request_id, &request)?;
        let organization = codec::id(&request.organization_id, "organization_id").map_err(invalid)?;
        let amount: symbiose_domain::Money = required(request.amount, "amount").map_err(invalid)?;
        if amount.minor() <= 0 {
            return Err(ApiError::invalid_argument("amount.amount_minor", "must be positive").into());
        }
        let position = self
            .treasury
            .deposit(&actor, organization, amount)
            .await
            .map_err(|error| error.in_request(&[("amount", "amount.amount_minor")]))?;
        self.treasury.wait_for(Position::from_u64(position)).await?;
        let view = self.treasury.view();
        let account = AccountId::available(organization, amount.currency());
        let (ledger, _) = view.ledger(amount.currency());
        let balances = ledger.map(|ledger| ledger.balances(&account)).unwrap_or_default();
        Ok(Response::new(pb::RecordDepositResponse {
            balance: Some(balance_to_wire(&account, &balances)),
            position,
        }))
    }

    async fn pay_for_pallets(
        &self,
        request: Request<pb::PayForPalletsRequest>,
    ) -> Result<Response<pb::PayForPalletsResponse>, Status> {
        let caller = auth::caller(&request)?;
        caller.require_any_role(&[Role::Service, Role::Operator])?;
        let request = request.into_inner();
        let payment = crate::escrow::PalletPayment {
            settlement_id: codec::id(&request.settlement_id, "settlement_id").map_err(invalid)?,
            debtor: codec::id(&request.debtor_organization_id, "debtor_organization_id").map_err(invalid)?,
            creditor: codec::id(&request.creditor_organization_id, "creditor_organization_id")
                .map_err(invalid)?,
            amount: required(request.amount, "amount").map_err(invalid)?,
        };
        if payment.amount.minor() <= 0 {
            return Err(ApiError::invalid_argument("amount.amount_minor", "must be positive").into());
        }
        if payment.debtor == payment.creditor {
            return Err(ApiError::invalid_argument(
                "creditor_organization_id",
                "must be another organization than the debtor",
            )
            .into());
        }
        for organization in [payment.debtor, payment.creditor] {
            if self.treasury.view().organization(organization).is_none() {
                return Err(ApiError::not_found("organization", organization).into());
            }
        }
        // Who asked is recorded (the platform's service, or an operator by hand).
        let actor = Actor::new(caller.organization_id, "")?;
        let position = self.treasury.pay_for_pallets(&actor, &payment).await?;
        Ok(Response::new(pb::PayForPalletsResponse { position }))
    }
}
