//! The command-line client of settlement: balances, statements, a deal's transfers, invoices,
//! and deposits (the operator's).

use clap::Subcommand;
use symbiose_proto::common::v1 as common;
use symbiose_proto::settlement::v1 as pb;
use symbiose_proto::settlement::v1::settlement_service_client::SettlementServiceClient;

use crate::cli::{Authed, Output, price_minor, status_error};
use crate::cli_matching::money;

#[derive(Debug, Subcommand)]
pub enum MoneyCommand {
    /// Your accounts (the operator: an organization's with --organization, else the platform's).
    Balances {
        #[arg(long, default_value = "")]
        organization: String,
    },
    /// The posted movements of your account in a currency, with the running balance.
    Statement {
        #[arg(long, default_value = "EUR")]
        currency: String,
        /// The operator's: an organization id or a platform account (`fees:EUR`).
        #[arg(long, default_value = "")]
        account: String,
    },
    /// The transfers of a deal.
    Transfers { deal: String },
    /// Money that reached the platform for an organization (the operator's).
    Deposit {
        #[arg(long)]
        organization: String,
        /// Decimal: "500.00".
        #[arg(long)]
        amount: String,
        #[arg(long, default_value = "EUR")]
        currency: String,
        /// An idempotency key: the same id again deposits once.
        #[arg(long, default_value = "")]
        request_id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum InvoiceCommand {
    /// The invoices you issued or received, newest first.
    List,
    /// One invoice, printed.
    Show { invoice: String },
}

fn minor(amount: i64, currency: &str) -> String {
    money(Some(&common::Money { amount_minor: amount, currency_code: currency.to_owned() }))
}

fn print_balance(balance: &pb::Balance) {
    println!(
        "{}  posted {}  held {}  available {}",
        balance.account,
        minor(balance.posted_minor, &balance.currency_code),
        minor(balance.pending_debits_minor, &balance.currency_code),
        minor(balance.available_minor, &balance.currency_code)
    );
}

pub async fn money_command(channel: Authed, command: MoneyCommand, output: Output) -> anyhow::Result<bool> {
    let mut client = SettlementServiceClient::new(channel);
    match command {
        MoneyCommand::Balances { organization } => {
            let request = pb::GetBalancesRequest { organization_id: organization, min_position: 0 };
            let response = client.get_balances(request).await.map_err(status_error)?.into_inner();
            if output.json(&response)? {
                return Ok(true);
            }
            let balances = response.balances;
            balances.iter().for_each(print_balance);
            println!("({} accounts)", balances.len());
        }
        MoneyCommand::Statement { currency, account } => {
            let mut page_token = String::new();
            // With --output json, every page is gathered into one response.
            let mut gathered = pb::GetStatementResponse::default();
            loop {
                let request = pb::GetStatementRequest {
                    currency_code: currency.clone(),
                    account: account.clone(),
                    page_size: 0,
                    page_token,
                    min_position: 0,
                };
                let page = client.get_statement(request).await.map_err(status_error)?.into_inner();
                if output == Output::Json {
                    gathered.lines.extend(page.lines);
                    if page.next_page_token.is_empty() {
                        output.json(&gathered)?;
                        break;
                    }
                    page_token = page.next_page_token;
                    continue;
                }
                for line in &page.lines {
                    println!(
                        "{}  {:<14} {:>14}  balance {:>14}  {}",
                        line.at.map(|at| at.to_string()).unwrap_or_default(),
                        line.code,
                        minor(line.amount_minor, &currency),
                        minor(line.balance_minor, &currency),
                        line.counterparty_account
                    );
                }
                if page.next_page_token.is_empty() {
                    break;
                }
                page_token = page.next_page_token;
            }
        }
        MoneyCommand::Transfers { deal } => {
            let mut listed = pb::ListDealTransfersResponse::default();
            loop {
                let request = pb::ListDealTransfersRequest {
                    deal_id: deal.clone(),
                    min_position: 0,
                    page_size: 0,
                    page_token: std::mem::take(&mut listed.next_page_token),
                };
                let page = client.list_deal_transfers(request).await.map_err(status_error)?.into_inner();
                listed.transfers.extend(page.transfers);
                listed.escrow_refused = page.escrow_refused;
                listed.next_page_token = page.next_page_token;
                if listed.next_page_token.is_empty() {
                    break;
                }
            }
            if output.json(&listed)? {
                return Ok(true);
            }
            for transfer in &listed.transfers {
                let state = pb::TransferState::try_from(transfer.state)
                    .map_or("?", |state| state.as_str_name().trim_start_matches("TRANSFER_STATE_"))
                    .to_lowercase();
                println!(
                    "{:<12} {}  {} -> {}  {state}{}",
                    transfer.code,
                    money(transfer.amount.as_ref()),
                    transfer.debit_account,
                    transfer.credit_account,
                    match (&transfer.posted, state.as_str()) {
                        (Some(posted), "partly_posted") => format!(" ({} posted)", money(Some(posted))),
                        _ => String::new(),
                    }
                );
            }
            if !listed.escrow_refused.is_empty() {
                println!("escrow refused: {}", listed.escrow_refused);
            }
        }
        MoneyCommand::Deposit { organization, amount, currency, request_id } => {
            let request = pb::RecordDepositRequest {
                request_id,
                organization_id: organization,
                amount: Some(common::Money { amount_minor: price_minor(&amount)?, currency_code: currency }),
            };
            let deposited = client.record_deposit(request).await.map_err(status_error)?.into_inner();
            if let Some(balance) = &deposited.balance {
                print_balance(balance);
            }
        }
    }
    Ok(true)
}

pub async fn invoice_command(
    channel: Authed,
    command: InvoiceCommand,
    output: Output,
) -> anyhow::Result<bool> {
    let mut client = SettlementServiceClient::new(channel);
    match command {
        InvoiceCommand::List => {
            let response = client
                .list_invoices(pb::ListInvoicesRequest::default())
                .await
                .map_err(status_error)?
                .into_inner();
            if output.json(&response)? {
                return Ok(true);
            }
            let listed = response.invoices;
            for invoice in &listed {
                println!(
                    "{}  {}  {}  {} -> {}  {}  {}",
                    invoice.invoice_id,
                    invoice.number,
                    invoice.issue_date,
                    invoice.issuer.as_ref().map_or("", |party| party.name.as_str()),
                    invoice.customer.as_ref().map_or("", |party| party.name.as_str()),
                    money(invoice.gross_total.as_ref()),
                    invoice.vat_regime
                );
            }
            println!("({} invoices)", listed.len());
        }
        InvoiceCommand::Show { invoice } => {
            let request = pb::GetInvoiceRequest { invoice_id: invoice, min_position: 0 };
            let shown = client.get_invoice(request).await.map_err(status_error)?.into_inner();
            if output.json(&shown)? {
                return Ok(true);
            }
            print!("{}", shown.text);
        }
    }
    Ok(true)
}
