//! The application shell of logistics: carrier profiles, the transport of each agreed deal and
//! its quotes, shipments from booking to closure, pallet settlements and the Annex VII data.
//!
//! Carriers, transports, shipments and pallet accounts are streams of their own
//! (`carrier-<organization>`, `transport-<deal>`, `shipment-<id derived from the deal>`,
//! `pallet_account-<id of the pair>`); every write names the version it expects and is decided
//! again on a conflict, a bounded number of times.

use std::sync::{Arc, RwLockReadGuard};

use symbiose_domain::{Money, PalletGrade};
use symbiose_eventstore::{EventStore, Position, RecordedEvent, StreamName};
use symbiose_kit::ApiError;
use symbiose_listings_contract::organization::Organization;
use symbiose_matching_contract::deal::{Deal, DealStatus};
use symbiose_shell::{
    Actor, Decision, EventIds, Followed, Loaded, Outcome, RejectionKind, Shell, Snapshots, load, now_ms,
    rejected,
};
use uuid::Uuid;

use crate::annex_vii::Rejection as AnnexRejection;
use crate::annex_vii::{self, AnnexVii, Inputs, Party, PartyContact, Receipt};
use crate::carrier::{self, CarrierState, Profile};
use crate::codec;
use crate::contacts::OrganizationContacts;
use crate::pallets::{self, Balance, SettleBy, Settlement};
use crate::payments::{PalletPaymentOrder, PalletPayments, PaymentError};
use crate::shipment::{self, Shipment, ShipmentState, Transport};
use crate::transport::{self, OfferedQuote, TransportState};
use crate::view::{
    CARRIER_CATEGORY, HeldShipment, PALLET_ACCOUNT_CATEGORY, SHIPMENT_CATEGORY, TRANSPORT_CATEGORY, View,
};

/// Most pallet balances listed for one organization: the largest.
pub const BALANCES_MAX: usize = 1_000;

/// Namespace of the shipments' and settlements' ids.
const LOGISTICS_NAMESPACE: Uuid = Uuid::from_u128(0x7368_6970_6d65_4e74_a1c3_55e2_9d08_4b6f);

/// The one shipment of a deal.
pub fn shipment_id(deal: Uuid) -> Uuid {
    Uuid::new_v5(&LOGISTICS_NAMESPACE, format!("shipment/{deal}").as_bytes())
}

fn transport_rejection(error: transport::Rejection) -> ApiError {
    let kind = match &error {
        transport::Rejection::NotRequested => RejectionKind::NotFound,
        transport::Rejection::DealCancelled => RejectionKind::FailedPrecondition,
        transport::Rejection::ValidityOutOfRange => RejectionKind::InvalidArgument { field: "valid_hours" },
        transport::Rejection::Price(price) => {
            return rejected(RejectionKind::InvalidArgument { field: "price" }, price);
        }
        transport::Rejection::TooManyQuotes => RejectionKind::ResourceExhausted,
    };
    rejected(kind, error)
}

/// A shipment with its version and what the view adds.
#[derive(Debug, Clone)]
pub struct ShipmentView {
    pub shipment: Shipment,
    pub state: &'static str,
    pub version: u64,
    pub history: Vec<crate::view::Step>,
    pub quote: Option<OfferedQuote>,
}

impl ShipmentView {
    fn of(held: &HeldShipment) -> Option<ShipmentView> {
        Some(ShipmentView {
            shipment: held.state.shipment()?.clone(),
            state: held.state.name(),
            version: held.version,
            history: held.history.clone(),
            quote: held.quote.clone(),
        })
    }
}

pub struct Logistics<S> {
    shell: Shell<S>,
    view: Followed<View>,
    payments: Arc<dyn PalletPayments>,
    /// The directory's contacts, for the Annex VII document; `None`: no directory to ask, the
    /// contacts are to be completed by hand.
    contacts: Option<Arc<dyn OrganizationContacts>>,
}

impl<S> std::fmt::Debug for Logistics<S> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Logistics").field("view", &self.view).finish_non_exhaustive()
    }
}

impl<S: EventStore> Logistics<S> {
    /// The logistics shell over `store`, its view following the log from its snapshot (saved
    /// as `snapshots` says); pallets paid for go through `payments` (settlement), the parties'
    /// contacts come from `contacts` (the listings service).
    pub fn start(
        store: S,
        payments: Arc<dyn PalletPayments>,
        contacts: Option<Arc<dyn OrganizationContacts>>,
        snapshots: Snapshots,
    ) -> Arc<Logistics<S>> {
        let view = Followed::start_snapshotted(store.clone(), "logistics view", View::default(), snapshots);
        Arc::new(Logistics { shell: Shell::new(store, EventIds::Versioned), view, payments, contacts })
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
    pub async fn caught_up(&self) -> Result<(), ApiError> {
        self.view.wait_for_head(self.shell.store().head()).await
    }

    /// Registers `actor`'s carrier profile, or replaces it. `token_is_carrier`: the caller's
    /// token holds the carrier role; the directory must say so too.
    pub async fn register_carrier(
        &self,
        actor: &Actor,
        token_is_carrier: bool,
        profile: Profile,
    ) -> Result<(u64, u64), ApiError> {
        let organization = actor.organization;
        let caller_is_carrier = token_is_carrier
            && self
                .view()
                .organization(organization)
                .is_some_and(|organization| organization.roles.contains(&symbiose_domain::Role::Carrier));
        let stream = symbiose_shell::stream(CARRIER_CATEGORY, organization);
        let decode = |recorded: &RecordedEvent| codec::decode_recorded_carrier_event(organization, recorded);
        let executed = self
            .shell
            .execute(
                &stream,
                actor,
                || load(self.shell.store(), &stream, decode, carrier::evolve),
                |loaded: &Loaded<CarrierState>| {
                    let command = match loaded.state {
                        CarrierState::Absent => {
                            carrier::Command::Register { organization, profile: profile.clone() }
                        }
                        CarrierState::Registered(_) => carrier::Command::Update { profile: profile.clone() },
                    };
                    let context = carrier::Context { now_ms: now_ms(), caller_is_carrier };
                    let events = carrier::decide(&loaded.state, command, &context)
                        .map_err(|error| rejected(error.kind(), error))?;
                    let encoded =
                        events.iter().map(|event| codec::encode_carrier_event(organization, event)).collect();
                    Ok(Decision::new(encoded, ()))
                },
            )
            .await?;
        Ok((executed.written.version, executed.written.position.as_u64()))
    }

    /// Material leaves its seller only once the buyer's payment is held: a pickup of a deal
    /// still waiting for funds is refused, naming the deal, until a deposit covers it.
    async fn check_funded(&self, shipment_id: Uuid) -> Result<(), ApiError> {
        self.caught_up().await?;
        let view = self.view();
        let shipment = view.shipment(shipment_id).and_then(|held| held.state.shipment());
        let Some(deal) = shipment.map(|shipment| shipment.transport.deal_id) else {
            return Ok(());
        };
        if view.is_funded(deal) {
            return Ok(());
        }
        Err(ApiError::FailedPrecondition(format!(
            "deal {deal} is not funded yet: its payment is not held in escrow; the pickup is possible once the payer's deposit covers it"
        )))
    }

    /// Opens the transport of `deal`, once: what logistics does when a deal is agreed.
    /// Returns whether it was opened now.
    pub async fn open_transport(&self, deal: &Deal) -> Result<bool, ApiError> {
        let stream = symbiose_shell::stream(TRANSPORT_CATEGORY, deal.id);
        let actor = Actor::service(&format!("transport/{}", deal.id));
        let executed = self
            .shell
            .execute(
                &stream,
                &actor,
                || self.load_transport(&stream),
                |loaded: &Loaded<TransportState>| {
                    let events = transport::request(&loaded.state, deal, now_ms());
                    Ok(Decision::new(events.iter().map(codec::encode_transport_event).collect(), ()))
                },
            )
            .await?;
        Ok(executed.appended())
    }

    async fn load_transport(&self, stream: &StreamName) -> Result<Loaded<TransportState>, ApiError> {
        load(self.shell.store(), stream, codec::decode_recorded_transport_event, transport::evolve).await
    }

    /// The deal `deal_id` if `organization` is a party of it (or the operator asks).
    fn deal_of_party(
        view: &View,
        deal_id: Uuid,
        organization: Uuid,
        operator: bool,
    ) -> Result<Deal, ApiError> {
        let not_found = || ApiError::NotFound(format!("deal {deal_id} not found"));
        let deal = view.deal(deal_id).ok_or_else(not_found)?;
        if operator || deal.is_party(organization) { Ok(deal.clone()) } else { Err(not_found()) }
    }

    /// The quotes of `deal_id` still valid, cheapest first: all of them for its parties and the
    /// operator, its own for a carrier.
    pub fn quotes(
        &self,
        organization: Uuid,
        operator: bool,
        deal_id: Uuid,
    ) -> Result<Vec<OfferedQuote>, ApiError> {
        let view = self.view();
        let now = now_ms();
        let quotes = view.quotes(deal_id, now);
        if view.deal(deal_id).is_some_and(|deal| operator || deal.is_party(organization)) {
            return Ok(quotes);
        }
        // A carrier sees its own quotes, and learns nothing of a deal it was not quoted for.
        let own: Vec<OfferedQuote> =
            quotes.into_iter().filter(|quote| quote.carrier == organization).collect();
        if !own.is_empty() {
            return Ok(own);
        }
        Err(ApiError::NotFound(format!("deal {deal_id} not found")))
    }

    /// `actor`, a registered carrier, answers the transport of `deal_id` with its own price.
    pub async fn submit_quote(
        &self,
        actor: &Actor,
        deal_id: Uuid,
        price: Money,
        valid_hours: u32,
    ) -> Result<(OfferedQuote, u64), ApiError> {
        let carrier = actor.organization;
        let stream = symbiose_shell::stream(TRANSPORT_CATEGORY, deal_id);
        let decide = |loaded: &Loaded<TransportState>| {
            let now = now_ms();
            let estimate = {
                let view = self.view();
                let held = view.carrier(carrier).ok_or_else(|| {
                    ApiError::PermissionDenied(
                        "only a registered carrier submits a quote: register a carrier profile first"
                            .to_owned(),
                    )
                })?;
                let request =
                    view.transport(deal_id).and_then(|transport| transport.value.request().cloned());
                request.and_then(|request| {
                    let may_carry = view.may_carry_dangerous_goods(carrier, now);
                    transport::automatic_quote(&request, &held.value, may_carry, now)
                })
            };
            if loaded.state.request().is_some_and(|request| request.deal.is_party(carrier)) {
                return Err(ApiError::PermissionDenied(
                    "a party of the deal does not quote its transport".to_owned(),
                ));
            }
            let events =
                transport::submit(&loaded.state, carrier, price, valid_hours, estimate.as_ref(), now)
                    .map_err(transport_rejection)?;
            let quote = events.iter().find_map(|event| match event {
                transport::Event::QuoteSubmitted(quote) => Some((**quote).clone()),
                transport::Event::Requested { .. } => None,
            });
            Ok(Decision::new(events.iter().map(codec::encode_transport_event).collect(), quote))
        };
        let executed = self.shell.execute(&stream, actor, || self.load_transport(&stream), decide).await?;
        let quote = match executed.outcome {
            Outcome::Appended(quote) | Outcome::Unchanged(quote) => quote,
            // The carrier's quote as it stands: the last it submitted.
            Outcome::Repeated(loaded) => loaded
                .state
                .request()
                .and_then(|request| request.submitted.iter().find(|quote| quote.carrier == carrier).cloned()),
        };
        let quote =
            quote.ok_or_else(|| ApiError::Internal(anyhow::anyhow!("a submission without a quote")))?;
        Ok((quote, executed.written.position.as_u64()))
    }

    /// A party of deal `deal_id` books the quote `quote_id`: the deal's one shipment.
    pub async fn book(
        &self,
        actor: &Actor,
        deal_id: Uuid,
        quote_id: Uuid,
        prior_notification_number: Option<String>,
    ) -> Result<(ShipmentView, u64), ApiError> {
        let (transport, quote, carrier_takes_pallet_exchange) = {
            let view = self.view();
            let deal = Self::deal_of_party(&view, deal_id, actor.organization, false)?;
            if deal.status != DealStatus::Agreed {
                return Err(ApiError::FailedPrecondition(format!("deal {deal_id} is cancelled")));
            }
            let quote = view.quotes(deal_id, now_ms()).into_iter().find(|quote| quote.id == quote_id).ok_or_else(|| {
                ApiError::FailedPrecondition(format!("quote {quote_id} is not a valid quote of deal {deal_id}: it expired, or it is another deal's"))
            })?;
            let carrier = view.carrier(quote.carrier).ok_or_else(|| {
                ApiError::FailedPrecondition(format!("carrier {} has no profile", quote.carrier))
            })?;
            let takes_exchange = carrier.value.profile.takes_pallet_exchange;
            let transport = Transport {
                deal_id,
                seller: deal.seller,
                buyer: deal.buyer,
                carrier: quote.carrier,
                price: quote.price,
                pickup: deal.pickup,
                delivery: deal.delivery,
                quantity: deal.quantity,
                cross_border: deal.pickup.country != deal.delivery.country,
                hazardous: deal.waste_code.is_some_and(|code| code.is_hazardous()),
                prior_notification_number,
                pallet_exchange: takes_exchange && deal.family == symbiose_domain::MaterialFamily::Pallets,
            };
            (transport, quote, takes_exchange)
        };
        let id = shipment_id(deal_id);
        let command = shipment::Command::Book {
            shipment_id: id,
            transport,
            booked_by: actor.organization,
            carrier_takes_pallet_exchange,
        };
        self.execute_shipment(id, actor, command, Some(&quote)).await
    }

    /// Decides `command` on shipment `id` and appends; the shipment as it stands and the
    /// position of the last write.
    pub async fn execute_shipment(
        &self,
        id: Uuid,
        actor: &Actor,
        command: shipment::Command,
        quote: Option<&OfferedQuote>,
    ) -> Result<(ShipmentView, u64), ApiError> {
        let stream = symbiose_shell::stream(SHIPMENT_CATEGORY, id);
        if let shipment::Command::ReportPickup { .. } = &command {
            self.check_funded(id).await?;
        }
        let decode = |recorded: &RecordedEvent| {
            codec::decode_recorded_shipment_event(recorded).map(|stored| stored.event)
        };
        let this = self;
        let decide = |loaded: &Loaded<ShipmentState>| {
            let decided = (|| {
                let context = shipment::Context { now_ms: now_ms() };
                let events = shipment::decide(&loaded.state, command.clone(), &context)
                    .map_err(|error| rejected(error.kind(), error))?;
                let (shipment_id, deal_id) = match (&loaded.state.shipment(), &command) {
                    (Some(shipment), _) => (shipment.id, shipment.transport.deal_id),
                    (None, shipment::Command::Book { transport, .. }) => (id, transport.deal_id),
                    (None, _) => return Err(ApiError::NotFound(format!("shipment {id} not found"))),
                };
                // A deal cancelled (before pickup) is not picked up: its lot may be sold again.
                let first_pickup = matches!(command, shipment::Command::ReportPickup { .. })
                    && loaded.state.shipment().is_some_and(|shipment| shipment.pickup.is_none());
                let encoded: Vec<_> = events
                    .iter()
                    .map(|event| {
                        codec::encode_shipment_event_of(
                            &shipment_id.to_string(),
                            &deal_id.to_string(),
                            event,
                            quote,
                        )
                    })
                    .collect();
                Ok((encoded, first_pickup.then_some(deal_id)))
            })();
            async move {
                let (encoded, first_pickup_of) = decided?;
                if let Some(deal_id) = first_pickup_of {
                    this.caught_up().await?;
                    if this.view().deal(deal_id).is_some_and(|deal| deal.status != DealStatus::Agreed) {
                        return Err(ApiError::FailedPrecondition(format!(
                            "deal {deal_id} was cancelled: its shipment is not picked up"
                        )));
                    }
                }
                Ok(Decision::new(encoded, ()))
            }
        };
        let executed = self
            .shell
            .execute_async(
                &stream,
                actor,
                || load(self.shell.store(), &stream, decode, shipment::evolve),
                decide,
            )
            .await?;
        self.shipment_as_written(id, executed.written.position).await
    }

    /// The shipment `id` once the view reflects `position`.
    async fn shipment_as_written(
        &self,
        id: Uuid,
        position: Position,
    ) -> Result<(ShipmentView, u64), ApiError> {
        self.wait_for(position).await?;
        let view = self.view();
        let held = view.shipment(id).ok_or_else(|| ApiError::NotFound(format!("shipment {id} not found")))?;
        let shipment =
            ShipmentView::of(held).ok_or_else(|| ApiError::NotFound(format!("shipment {id} not found")))?;
        Ok((shipment, position.as_u64()))
    }

    /// The shipment `id` as `organization` may see it: its parties, its carrier, the operator.
    pub fn shipment(&self, organization: Uuid, operator: bool, id: Uuid) -> Result<ShipmentView, ApiError> {
        let view = self.view();
        let not_found = || ApiError::NotFound(format!("shipment {id} not found"));
        let shipment = view.shipment(id).and_then(ShipmentView::of).ok_or_else(not_found)?;
        let transport = &shipment.shipment.transport;
        if operator || [transport.seller, transport.buyer, transport.carrier].contains(&organization) {
            Ok(shipment)
        } else {
            Err(not_found())
        }
    }

    /// `organization`'s pallet balances, the largest first, at most [`BALANCES_MAX`].
    pub fn pallet_balances(&self, organization: Uuid) -> Vec<Balance> {
        let mut balances = self.view().pallets().balances_of(organization);
        balances.sort_by_key(|balance| std::cmp::Reverse(balance.owed.unsigned_abs()));
        balances.truncate(BALANCES_MAX);
        balances
    }

    /// `actor` settles pallets owed between it and `counterparty`: a return is recorded by the
    /// one who receives the pallets (the creditor), a payment by the one who pays (the debtor).
    pub async fn settle_pallets(
        &self,
        actor: &Actor,
        counterparty: Uuid,
        grade: PalletGrade,
        by: SettleBy,
    ) -> Result<(Settlement, u64), ApiError> {
        let account = pallets::account_id(actor.organization, counterparty);
        let stream: StreamName = symbiose_shell::stream(PALLET_ACCOUNT_CATEGORY, account);
        // A request id names one settlement: the same request again returns it. Without one,
        // the same settlement asked again of the same account (its version unchanged) has the
        // same id, so a payment retried after a lost answer moves the money once.
        let requested = actor.request_id.as_ref().map(|request_id| {
            Uuid::new_v5(
                &LOGISTICS_NAMESPACE,
                format!("settlement/{account}/{}/{request_id}", actor.organization).as_bytes(),
            )
        });
        let this = self;
        let decide = |loaded: &Loaded<u64>| {
            let settlement_id = match requested {
                Some(id) => id,
                None => Uuid::new_v5(
                    &LOGISTICS_NAMESPACE,
                    format!(
                        "settlement/{account}/{}/{grade:?}/{by:?}/{:?}",
                        actor.organization, loaded.version
                    )
                    .as_bytes(),
                ),
            };
            this.settle(actor, counterparty, grade, by, settlement_id)
        };
        let count = |count: u64, _: &Settlement| count + 1;
        let executed = self
            .shell
            .execute_async(
                &stream,
                actor,
                || load(self.shell.store(), &stream, codec::decode_recorded_settlement, count),
                decide,
            )
            .await?;
        match executed.outcome {
            Outcome::Appended(settlement) => Ok((settlement, executed.written.position.as_u64())),
            // Settled already, by this request or the same one without a request id.
            Outcome::Unchanged(settled) => Ok((settled, self.view.last_position().as_u64())),
            Outcome::Repeated(_) => {
                self.caught_up().await?;
                let settled = requested.and_then(|id| self.view().settlement(id).copied());
                let settled = settled.ok_or_else(|| {
                    ApiError::Internal(anyhow::anyhow!(
                        "pallet account {account}: a settlement repeated but not in the view"
                    ))
                })?;
                Ok((settled, executed.written.position.as_u64()))
            }
        }
    }

    /// Decides the settlement `settlement_id` on a view that holds every settlement and every
    /// exchange so far, and pays first when it is a payment.
    async fn settle(
        &self,
        actor: &Actor,
        counterparty: Uuid,
        grade: PalletGrade,
        by: SettleBy,
        settlement_id: Uuid,
    ) -> Result<Decision<Settlement>, ApiError> {
        self.caught_up().await?;
        if let Some(settled) = self.view().settlement(settlement_id).copied() {
            return Ok(Decision::nothing(settled));
        }
        let settlement = self
            .view()
            .pallets()
            .settle(settlement_id, (actor.organization, counterparty), grade, by, now_ms())
            .map_err(|error| rejected(error.kind(), error))?;
        match by {
            SettleBy::Return { .. } if settlement.creditor != actor.organization => {
                return Err(ApiError::PermissionDenied(
                    "a return of pallets is recorded by the one who receives them".to_owned(),
                ));
            }
            SettleBy::Payment { .. } if settlement.debtor != actor.organization => {
                return Err(ApiError::PermissionDenied(
                    "a payment for pallets is made by the one who owes them".to_owned(),
                ));
            }
            // The money first: a balance settled by payment is one whose money moved, and
            // a debtor without it keeps owing the pallets. A retry pays once (the transfer
            // derives from the settlement's id, from the request id).
            SettleBy::Payment { amount, .. } => {
                let order = PalletPaymentOrder {
                    settlement_id,
                    debtor: settlement.debtor,
                    creditor: settlement.creditor,
                    amount,
                };
                self.payments.pay(order).await.map_err(|error| match error {
                    PaymentError::Refused(reason) => ApiError::FailedPrecondition(reason),
                    PaymentError::Unavailable(_) => ApiError::Unavailable(error.to_string()),
                    PaymentError::Failed(_) => ApiError::Internal(anyhow::anyhow!(error)),
                })?;
            }
            SettleBy::Return { .. } => {}
        }
        Ok(Decision::new(vec![codec::encode_settlement(&settlement)], settlement))
    }

    /// The Annex VII data of shipment `id`, for its parties, its carrier and the operator, with
    /// the parties' contacts as the directory has them now.
    pub async fn annex_vii(
        &self,
        organization: Uuid,
        operator: bool,
        id: Uuid,
    ) -> Result<AnnexVii, ApiError> {
        let (mut inputs, [seller, buyer, carrier]) = self.annex_vii_inputs(organization, operator, id)?;
        if let Some(directory) = &self.contacts {
            let seller = contact_of(directory.as_ref(), seller).await;
            let buyer = contact_of(directory.as_ref(), buyer).await;
            let carrier = contact_of(directory.as_ref(), carrier).await;
            inputs.arranger.contact = seller.clone();
            inputs.generator.contact = seller;
            inputs.consignee.contact = buyer.clone();
            inputs.recovery_facility.contact = buyer;
            for party in &mut inputs.carriers {
                party.contact = carrier.clone();
            }
        }
        AnnexVii::build(inputs).map_err(|error: AnnexRejection| rejected(error.kind(), error))
    }

    /// What the document of shipment `id` is built from, the contacts aside, and the seller,
    /// buyer and carrier whose contacts it names.
    fn annex_vii_inputs(
        &self,
        organization: Uuid,
        operator: bool,
        id: Uuid,
    ) -> Result<(Inputs, [Uuid; 3]), ApiError> {
        let shipment = self.shipment(organization, operator, id)?.shipment;
        let view = self.view();
        let transport = &shipment.transport;
        let deal = view
            .deal(transport.deal_id)
            .ok_or_else(|| ApiError::NotFound(format!("deal {} not found", transport.deal_id)))?;
        let waste_code = deal.waste_code.ok_or_else(|| {
            ApiError::FailedPrecondition(
                "no Annex VII: the material is not waste (it has no waste code)".to_owned(),
            )
        })?;
        let legal_status_is_waste = deal.legal_status == symbiose_domain::lot::LegalStatus::Waste;
        if !annex_vii::required(transport.cross_border, transport.hazardous, legal_status_is_waste) {
            return Err(ApiError::FailedPrecondition(
                "no Annex VII: it is for green-listed waste crossing a border (this shipment is domestic, hazardous or not waste)"
                    .to_owned(),
            ));
        }
        let party = |organization: Uuid, near: &symbiose_domain::lot::Place| -> Result<Party, ApiError> {
            let organization = view
                .organization(organization)
                .ok_or_else(|| ApiError::NotFound(format!("organization {organization} not found")))?;
            Ok(party_of(organization, near))
        };
        let inputs = Inputs {
            arranger: party(transport.seller, &transport.pickup)?,
            consignee: party(transport.buyer, &transport.delivery)?,
            carriers: vec![{
                let mut carrier = party(transport.carrier, &transport.pickup)?;
                // A carrier without a site in the directory is found at its depots.
                if carrier.address_lines.is_empty()
                    && let Some(depot) = view.carrier(transport.carrier).and_then(|held| {
                        held.value
                            .profile
                            .depots
                            .iter()
                            .min_by_key(|depot| depot.point.distance_m(&transport.pickup.point))
                    })
                {
                    carrier.address_lines = vec![depot.name.clone()];
                    carrier.country = depot.country;
                    carrier.full_address = false;
                }
                carrier
            }],
            generator: party(transport.seller, &transport.pickup)?,
            recovery_facility: party(transport.buyer, &transport.delivery)?,
            family: deal.family,
            quantity: shipment.pickup.as_ref().map_or(transport.quantity, |pickup| pickup.quantity),
            shipment_date_ms: shipment.pickup.as_ref().map_or(shipment.booked_at_ms, |pickup| pickup.at_ms),
            description: format!("{}: {}", deal.family.labels().en, waste_code.entry().description),
            waste_code,
            recovery_operation: None,
            basel_code: None,
            oecd_code: None,
            national_code: None,
            dispatch: transport.pickup.country,
            border_crossings: shipment.crossings.iter().map(|crossing| crossing.country).collect(),
            destination: transport.delivery.country,
            receipt: shipment
                .delivery
                .as_ref()
                .map(|delivery| Receipt { at_ms: delivery.at_ms, quantity: delivery.received }),
        };
        Ok((inputs, [transport.seller, transport.buyer, transport.carrier]))
    }
}

/// The contact the directory has for `organization`; a directory that does not answer leaves
/// it to be completed on the printed form.
async fn contact_of(directory: &dyn OrganizationContacts, organization: Uuid) -> PartyContact {
    match directory.contact(organization).await {
        Ok(contact) => contact,
        Err(status) => {
            tracing::warn!(%organization, code = ?status.code(), message = status.message(), "annex vii: the directory did not give the contacts");
            PartyContact::Missing
        }
    }
}

/// An organization as a party of the document: its name, the address of its site at (or
/// nearest to) `near`, its country and identifier. Contacts stay with the directory: they are
/// asked for when the document is printed.
fn party_of(organization: &Organization, near: &symbiose_domain::lot::Place) -> Party {
    let site = organization.sites.iter().min_by_key(|site| site.location.distance_m(&near.point));
    let address_lines = site.map_or_else(Vec::new, |site| {
        vec![site.address.street.clone(), format!("{} {}", site.address.postal_code, site.address.city)]
    });
    Party {
        name: organization.legal_name.clone(),
        address_lines,
        country: site.map_or(organization.country, |site| site.address.country),
        identifier: organization.identifier.to_string(),
        full_address: site.is_some(),
        contact: PartyContact::Missing,
    }
}
