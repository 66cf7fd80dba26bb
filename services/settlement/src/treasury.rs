//! The application shell of settlement: it executes what the pure core plans. A deal agreed
//! holds the payer's money in escrow (or records why it could not); a shipment closed pays the
//! accepted part to the payee, the fee and the VAT, releases the rest and issues the invoice; a
//! deal cancelled voids the escrow; pallets paid for move between the two organizations.
//!
//! One ledger stream per currency (`ledger-EUR`), decided on the view once it holds the whole
//! stream and appended at the version decided on, again on a conflict; one escrow stream per
//! deal (`escrow-<deal>`); one invoice stream per issuer and year (`invoices-<sequence id>`), so
//! numbers have no gap. Every transfer id derives from the deal and the step, so a redelivered
//! event moves no money twice.

use std::sync::{Arc, RwLockReadGuard};

use symbiose_domain::{Currency, Money};
use symbiose_eventstore::{EventStore, Position, RecordedEvent};
use symbiose_kit::ApiError;
use symbiose_listings_contract::organization::Organization;
use symbiose_matching_contract::deal::{Deal, DealStatus};
use symbiose_shell::{
    Actor, Decision, EventIds, Followed, Loaded, Outcome, Shell, Snapshots, load, now_ms, rejected,
};
use uuid::Uuid;

use crate::codec::{self, EscrowEvent, StoredInvoice};
use crate::escrow::{self, EscrowPlan, PalletPayment};
use crate::invoice::{self, CalendarDate, Draft, Invoice, LineInput, PartyDetails};
use crate::ledger::{self, AccountId, Command, Transfer, TransferCode};
use crate::vat::{self, Party, Regime};
use crate::view::{ESCROW_CATEGORY, Escrow, INVOICES_CATEGORY, LEDGER_CATEGORY, View};

/// Namespace of the ids of deposits and invoices.
const TREASURY_NAMESPACE: Uuid = Uuid::from_u128(0x7472_6561_7375_5279_8f6a_2c44_b1d0_93e7);

/// What an execution of ledger commands did.
/// Deals waiting for their payment that one credit to their payer tries to fund, at most,
/// oldest first: those it cannot fund stay waiting for the next credit.
const FUNDING_DEALS_MAX: usize = 100;

#[derive(Debug)]
pub enum Executed {
    /// Appended (or already there): the position of the last write.
    Done(u64),
    /// Refused by a rule of the ledger (insufficient funds, say).
    Refused(ledger::Rejection),
}

pub struct Treasury<S> {
    shell: Shell<S>,
    view: Followed<View>,
    fee_rate_bp: u32,
}

impl<S> std::fmt::Debug for Treasury<S> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Treasury")
            .field("view", &self.view)
            .field("fee_rate_bp", &self.fee_rate_bp)
            .finish_non_exhaustive()
    }
}

impl<S: EventStore> Treasury<S> {
    /// The settlement shell over `store`, charging `fee_rate_bp` on each deal's net amount; its
    /// view follows the log from its snapshot (saved as `snapshots` says).
    pub fn start(store: S, fee_rate_bp: u32, snapshots: Snapshots) -> Arc<Treasury<S>> {
        let view = Followed::start_snapshotted(store.clone(), "settlement view", View::default(), snapshots);
        Arc::new(Treasury { shell: Shell::new(store, EventIds::Versioned), view, fee_rate_bp })
    }

    pub fn view(&self) -> RwLockReadGuard<'_, View> {
        self.view.read()
    }

    pub fn position(&self) -> Position {
        self.view.position()
    }

    pub async fn wait_for(&self, position: Position) -> Result<(), ApiError> {
        self.view.wait_for(position).await
    }

    /// Waits until the view holds every event written so far.
    async fn caught_up(&self) -> Result<(), ApiError> {
        self.view.wait_for_head(self.shell.store().head()).await
    }

    /// Decides `commands` together on the ledger of `currency` and appends them, all or none.
    pub async fn execute(
        &self,
        currency: Currency,
        actor: &Actor,
        commands: Vec<Command>,
    ) -> Result<Executed, ApiError> {
        let stream = symbiose_shell::stream_named(&format!("{LEDGER_CATEGORY}-{}", currency.code()));
        // The ledger is decided on the view once it holds the whole stream, at the version the
        // view holds: the shell appends at that version.
        let at_view = || async {
            self.caught_up().await?;
            let version = self.view().ledger(currency).1;
            Ok(Loaded::new((), version, self.view.last_position()))
        };
        // A view moved past the version loaded decides on more than it: its append at that
        // version conflicts, and the shell decides again.
        let decide = |_: &Loaded<()>| {
            let view = self.view();
            let (ledger, _) = view.ledger(currency);
            let empty = ledger::Ledger::new(currency);
            let context = ledger::Context { now_ms: now_ms() };
            Ok(match ledger::decide_batch(ledger.unwrap_or(&empty), commands.clone(), &context) {
                Ok(events) => Decision::new(events.iter().map(codec::encode_ledger_event).collect(), None),
                Err((_, refused)) => Decision::nothing(Some(refused)),
            })
        };
        let executed = self.shell.execute(&stream, actor, at_view, decide).await?;
        Ok(match executed.outcome {
            Outcome::Unchanged(Some(refused)) => Executed::Refused(refused),
            _ => Executed::Done(executed.written.position.as_u64()),
        })
    }

    async fn escrow_event(&self, deal: Uuid, actor: &Actor, event: EscrowEvent) -> Result<(), ApiError> {
        let stream = symbiose_shell::stream(ESCROW_CATEGORY, deal);
        let loaded =
            load(self.shell.store(), &stream, codec::decode_recorded_escrow_event, |count: u64, _| count + 1)
                .await?;
        let encoded = vec![codec::encode_escrow_event(deal, &event)];
        // Written once, not decided again on a conflict: a concurrent writer wrote the same fact
        // (the ids derive from the cause), and either way it is there.
        self.shell.append(&stream, &loaded, actor, 0, encoded).await?;
        Ok(())
    }

    /// The VAT regime of `deal`: from the parties' countries and VAT numbers, the material's
    /// legal status, and what is supplied (goods, or the service a gate fee pays for).
    fn regime(view: &View, deal: &Deal) -> Result<Regime, ApiError> {
        let roles = invoice::roles(deal);
        let party = |organization: Uuid| -> Result<Party, ApiError> {
            let organization = view
                .organization(organization)
                .ok_or_else(|| ApiError::NotFound(format!("organization {organization} not found")))?;
            Party::new(organization.country, vat_number_of(organization)).map_err(|error| {
                ApiError::FailedPrecondition(format!("{}: {error}", organization.legal_name))
            })
        };
        Ok(vat::regime(&party(roles.issuer)?, &party(roles.customer)?, deal.legal_status, roles.supply))
    }

    fn plan(&self, deal: &Deal, fee_rate_bp: u32, regime: Regime) -> Result<EscrowPlan, ApiError> {
        escrow::on_deal_agreed(deal, fee_rate_bp, regime)
            .map_err(|error| ApiError::FailedPrecondition(format!("deal {}: {error}", deal.id)))
    }

    /// A deal was agreed: hold its payment in escrow. A payer without the money yet leaves
    /// the deal waiting for funds (an `EscrowRefused` saying what is short, once): the payment
    /// is held as soon as a deposit covers it ([`Treasury::fund_waiting`]), and until then
    /// logistics refuses its pickup. A deal already held, paid or cancelled is left alone.
    pub async fn deal_agreed(&self, deal: &Deal) -> Result<(), ApiError> {
        self.caught_up().await?;
        let actor = Actor::service(&format!("escrow/{}", deal.id));
        let (regime, escrow) = {
            let view = self.view();
            // A party not known yet is a view behind its imports (each service alone): the
            // settler asks again.
            let regime = Self::regime(&view, deal).map_err(|error| match error {
                ApiError::NotFound(reason) => ApiError::Unavailable(reason),
                error => error,
            })?;
            (regime, view.escrow(deal.id).cloned())
        };
        // Cancelled meanwhile (the settler meets the agreement after the cancellation when it
        // catches up): nothing to hold.
        if self.view().deal(deal.id).is_some_and(|known| known.status != DealStatus::Agreed) {
            return Ok(());
        }
        let waiting = matches!(escrow, Some(Escrow::Refused { .. }));
        if escrow.is_some() && !waiting {
            return Ok(());
        }
        let plan = self.plan(deal, self.fee_rate_bp, regime)?;
        if let Some(hold) = plan.hold()
            && let Executed::Refused(refused) = self.execute(plan.currency, &actor, vec![hold]).await?
        {
            if waiting {
                return Ok(());
            }
            let reason =
                format!("the payment could not be held: {refused}; it is held once a deposit covers it");
            tracing::info!(deal = %deal.id, %reason, "a deal waits for its payment");
            return self.escrow_event(deal.id, &actor, EscrowEvent::Refused { reason }).await;
        }
        let held = EscrowEvent::Held {
            fee_rate_bp: plan.fee_rate_bp,
            regime: plan.regime,
            pending_id: plan.pending_id,
            held: plan.full.total(),
        };
        self.escrow_event(deal.id, &actor, held).await
    }

    /// Money reached `organization`'s account: hold the payments of its deals that were
    /// waiting for funds, oldest first, as far as the money goes.
    pub async fn fund_waiting(&self, organization: Uuid) -> Result<(), ApiError> {
        self.caught_up().await?;
        let waiting = self.view().waiting_for_funds(organization, FUNDING_DEALS_MAX);
        for deal in waiting {
            self.deal_agreed(&deal).await?;
        }
        Ok(())
    }

    /// The organization a posted or voided hold gives money back to, from the ledger that holds
    /// it (`stream`, `ledger-<currency>`).
    pub fn pending_payer(
        &self,
        stream: &symbiose_eventstore::StreamName,
        event_type: &str,
        payload: &[u8],
    ) -> Result<Option<Uuid>, String> {
        let id = match codec::decode_ledger_event(event_type, payload)? {
            ledger::Event::PendingPosted { id, .. } | ledger::Event::PendingVoided { id, .. } => id,
            _ => return Ok(None),
        };
        let currency = stream
            .as_str()
            .strip_prefix(&format!("{LEDGER_CATEGORY}-"))
            .and_then(|code| code.parse::<Currency>().ok())
            .ok_or_else(|| format!("{stream}: not a ledger stream"))?;
        let view = self.view();
        let (ledger, _) = view.ledger(currency);
        Ok(match ledger.and_then(|ledger| ledger.transfer(id)) {
            Some(ledger::Applied::TwoPhase { transfer, .. }) => transfer.debit.organization(),
            _ => None,
        })
    }

    /// A deal was cancelled before pickup: the escrow is voided (a deal still waiting for its
    /// payment stops waiting).
    pub async fn deal_cancelled(&self, deal: &Deal) -> Result<(), ApiError> {
        self.caught_up().await?;
        let actor = Actor::service(&format!("cancel/{}", deal.id));
        let Some(Escrow::Held { fee_rate_bp, regime, .. }) = self.view().escrow(deal.id).cloned() else {
            if matches!(self.view().escrow(deal.id), Some(Escrow::Refused { .. })) {
                return self.escrow_event(deal.id, &actor, EscrowEvent::Cancelled).await;
            }
            return Ok(());
        };
        let plan = self.plan(deal, fee_rate_bp, regime)?;
        if let Executed::Refused(refused) =
            self.execute(plan.currency, &actor, escrow::on_cancel(&plan)).await?
        {
            return Err(ApiError::FailedPrecondition(format!(
                "voiding the escrow of {}: {refused}",
                deal.id
            )));
        }
        self.escrow_event(deal.id, &actor, EscrowEvent::Cancelled).await
    }

    /// The receiver confirmed `accepted_milli` of `deal`: the accepted part is paid out (to the
    /// payee, the fee and the VAT), the rest released, and the invoice issued.
    pub async fn delivery_accepted(&self, deal: &Deal, accepted_milli: i64) -> Result<(), ApiError> {
        self.caught_up().await?;
        let actor = Actor::service(&format!("release/{}", deal.id));
        let escrow = self.view().escrow(deal.id).cloned();
        match escrow {
            Some(Escrow::Held { fee_rate_bp, regime, .. }) => {
                let plan = self.plan(deal, fee_rate_bp, regime)?;
                let commands = escrow::on_delivery(&plan, accepted_milli)
                    .map_err(|error| ApiError::FailedPrecondition(format!("deal {}: {error}", deal.id)))?;
                if let Executed::Refused(refused) = self.execute(plan.currency, &actor, commands).await? {
                    return Err(ApiError::FailedPrecondition(format!(
                        "releasing the escrow of {}: {refused}",
                        deal.id
                    )));
                }
                self.escrow_event(deal.id, &actor, EscrowEvent::Released { accepted_milli }).await?;
                self.issue_invoice(deal, &plan, accepted_milli).await
            }
            Some(Escrow::Released { accepted_milli: released, fee_rate_bp, regime }) => {
                // Paid out already (a redelivery, or a crash before the invoice): the invoice,
                // under the fee and the regime the money moved with.
                let plan = self.plan(deal, fee_rate_bp, regime)?;
                self.issue_invoice(deal, &plan, released).await
            }
            Some(Escrow::Cancelled) => {
                tracing::error!(deal = %deal.id, "a delivery was accepted for a cancelled deal: nothing is paid");
                Ok(())
            }
            Some(Escrow::Refused { .. }) => {
                // Delivered while its payment waited (a log from before pickups waited for
                // it): it is settled outside the platform, and stops waiting, so that no later
                // deposit holds money nothing would release.
                tracing::warn!(deal = %deal.id, "a delivery was accepted for a deal whose payment was never held: settled outside the platform");
                self.escrow_event(deal.id, &actor, EscrowEvent::Cancelled).await
            }
            _ => Ok(()),
        }
    }

    /// Issues the invoice of `deal` for `accepted_milli`, once: the next number of its issuer's
    /// sequence of the year.
    async fn issue_invoice(
        &self,
        deal: &Deal,
        plan: &EscrowPlan,
        accepted_milli: i64,
    ) -> Result<(), ApiError> {
        if accepted_milli <= 0 {
            return Ok(());
        }
        let roles = invoice::roles(deal);
        let now = now_ms();
        let invoice_id = Uuid::new_v5(&TREASURY_NAMESPACE, format!("invoice/{}", deal.id).as_bytes());
        // Issued already, maybe in another year's sequence: a deal has one invoice.
        if self.view().invoice(invoice_id).is_some() {
            return Ok(());
        }
        let (issuer, customer) = {
            let view = self.view();
            let details = |organization: Uuid| -> Result<PartyDetails, ApiError> {
                view.organization(organization)
                    .map(party_details)
                    .ok_or_else(|| ApiError::NotFound(format!("organization {organization} not found")))
            };
            (details(roles.issuer)?, details(roles.customer)?)
        };
        let prefix = issuer.country.code().to_owned();
        // The issuer's day, in its time zone: an invoice of 00:30 in Paris on 1 January is of the
        // new year (its date, its number and its sequence).
        let issue_date = CalendarDate::issued_at(now, issuer.country);
        let year = issue_date.year();
        let stream = symbiose_shell::stream(INVOICES_CATEGORY, invoice::sequence_id(roles.issuer, year));
        let actor = Actor::service(&format!("invoice/{}", deal.id));
        let decide = |loaded: &Loaded<invoice::SequenceState>| {
            let command = invoice::Command::Issue {
                invoice_id,
                deal_id: deal.id,
                issuer: roles.issuer,
                prefix: prefix.clone(),
                year,
                issue_date,
            };
            let events = invoice::decide(&loaded.state, command, &invoice::Context { now_ms: now })
                .map_err(|error| rejected(error.kind(), error))?;
            let Some(invoice::Event::Issued { issued, .. }) = events.first() else {
                return Ok(Decision::nothing(()));
            };
            let quantity = symbiose_domain::Quantity::new(accepted_milli, deal.quantity.unit(), true)
                .map_err(|error| ApiError::FailedPrecondition(format!("accepted quantity: {error}")))?;
            let invoice = Invoice::new(Draft {
                number: issued.formatted.clone(),
                issue_date,
                deal_id: deal.id,
                issuer: issuer.clone(),
                customer: customer.clone(),
                supply: roles.supply,
                lines: vec![LineInput {
                    description: description_of(deal),
                    quantity,
                    unit_price: roles.unit_price,
                }],
                regime: plan.regime,
            })
            .map_err(|error| ApiError::FailedPrecondition(format!("invoice of deal {}: {error}", deal.id)))?;
            let stored = StoredInvoice {
                issuer: roles.issuer,
                year,
                prefix: prefix.clone(),
                number: issued.number,
                text: invoice.render_text(),
                invoice: codec::invoice_record(invoice_id, &invoice),
                at_ms: now,
            };
            Ok(Decision::new(vec![codec::encode_invoice(&stored)], ()))
        };
        let load_sequence = || load(self.shell.store(), &stream, decode_sequence_event, invoice::evolve);
        self.shell.execute(&stream, &actor, load_sequence, decide).await?;
        Ok(())
    }

    /// Pallets paid for instead of returned, asked by logistics before it records the balance
    /// settled: from the debtor's account to the creditor's, at once, or FAILED_PRECONDITION
    /// naming the shortfall, with nothing moved. Repeated, it moves the money once (the
    /// transfer's id derives from the settlement's). The log position of the transfer.
    pub async fn pay_for_pallets(&self, actor: &Actor, payment: &PalletPayment) -> Result<u64, ApiError> {
        match self.execute(payment.amount.currency(), actor, vec![escrow::on_pallet_payment(payment)]).await?
        {
            Executed::Done(position) => Ok(position),
            Executed::Refused(refused) => Err(ApiError::FailedPrecondition(format!(
                "the pallet payment of {} cannot be made: {refused}",
                payment.amount
            ))),
        }
    }

    /// Pallets paid for, as logistics recorded them: the money moved when logistics asked
    /// ([`Treasury::pay_for_pallets`]), so this finds the transfer made and does nothing. A
    /// settlement recorded before payments were asked first moves it now, or, if the debtor
    /// has not the money, is logged.
    pub async fn pallets_paid(&self, payment: &PalletPayment) -> Result<(), ApiError> {
        let actor = Actor::service(&format!("pallets/{}", payment.settlement_id));
        let command = escrow::on_pallet_payment(payment);
        if let Executed::Refused(refused) =
            self.execute(payment.amount.currency(), &actor, vec![command]).await?
        {
            tracing::warn!(settlement = %payment.settlement_id, %refused, "a pallet payment could not be made on the platform");
        }
        Ok(())
    }

    /// Money that reached the platform for `organization` (the operator records it).
    pub async fn deposit(&self, actor: &Actor, organization: Uuid, amount: Money) -> Result<u64, ApiError> {
        if self.view().organization(organization).is_none() {
            return Err(ApiError::NotFound(format!("organization {organization} not found")));
        }
        let id = Uuid::new_v5(
            &TREASURY_NAMESPACE,
            format!(
                "deposit/{}/{}",
                actor.organization,
                actor.request_id.clone().unwrap_or_else(|| Uuid::now_v7().to_string())
            )
            .as_bytes(),
        );
        let transfer = Transfer {
            id,
            debit: AccountId::external(amount.currency()),
            credit: AccountId::available(organization, amount.currency()),
            amount,
            code: TransferCode::Deposit,
            deal_id: None,
        };
        match self.execute(amount.currency(), actor, vec![Command::Transfer(transfer)]).await? {
            Executed::Done(position) => Ok(position),
            // The transfer's id derives from the request id: other terms under the same id are
            // another request sent with it.
            Executed::Refused(ledger::Rejection::IdConflict { .. }) if actor.request_id.is_some() => {
                Err(symbiose_shell::request_id_reused(actor.request_id.as_deref().unwrap_or_default()))
            }
            Executed::Refused(refused) => Err(rejected(refused.kind(), refused)),
        }
    }
}

/// What an invoice line says of a deal's material.
fn description_of(deal: &Deal) -> String {
    match deal.waste_code {
        Some(code) => format!("{}, EWC {}", deal.family.labels().en, code),
        None => deal.family.labels().en.to_owned(),
    }
}

/// An organization as an invoice prints it: its name, the address of its first site, its
/// country, its registration number, and its VAT number when that is what it registered with.
fn party_details(organization: &Organization) -> PartyDetails {
    let address = organization.sites.first().map_or_else(String::new, |site| {
        format!("{}\n{} {}", site.address.street, site.address.postal_code, site.address.city)
    });
    let is_vat = organization.identifier.kind().is_vat();
    PartyDetails {
        organization: organization.id,
        name: organization.legal_name.clone(),
        address,
        country: organization.country,
        identifiers: if is_vat { vec![] } else { vec![organization.identifier.clone()] },
        vat_number: vat_number_of(organization),
    }
}

/// The VAT number of an organization: the one it registered with, or for a French company
/// registered by its SIREN or SIRET, the number derived from it (FR, the key
/// (12 + 3 x (SIREN mod 97)) mod 97, the SIREN).
fn vat_number_of(organization: &Organization) -> Option<symbiose_domain::Identifier> {
    let identifier = &organization.identifier;
    if identifier.kind().is_vat() {
        return Some(identifier.clone());
    }
    let siren = identifier.siren()?;
    let number: u64 = siren.parse().ok()?;
    let key = (12 + 3 * (number % 97)) % 97;
    symbiose_domain::Identifier::parse(&format!("FR{key:02}{siren}")).ok()
}

/// An invoice sequence's event from a stored issue.
fn decode_sequence_event(recorded: &RecordedEvent) -> Result<invoice::Event, String> {
    let stored = codec::decode_recorded_invoice(recorded)?;
    let (invoice_id, deal_id) = (stored.invoice.invoice_id, stored.invoice.deal_id);
    let issue_date = CalendarDate::parse(&stored.invoice.issue_date)?;
    Ok(invoice::Event::Issued {
        issuer: stored.issuer,
        year: stored.year,
        prefix: stored.prefix.clone(),
        issued: invoice::Issued {
            invoice_id,
            deal_id,
            number: stored.number,
            formatted: stored.invoice.number.clone(),
            issue_date,
        },
        at_ms: stored.at_ms,
    })
}
