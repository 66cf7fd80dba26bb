//! The `LogisticsService` handlers: who calls, what they ask, what the desk does.

use std::sync::Arc;

use symbiose_domain::{Country, Quantity, Role};
use symbiose_eventstore::{EventStore, Position};
use symbiose_kit::auth::{self, Caller};
use symbiose_kit::{ApiError, page};
use symbiose_proto::common::v1 as common;
use symbiose_proto::convert::{
    FieldError, country_from_wire, ms_from_timestamp, required, timestamp_from_ms,
};
use symbiose_proto::logistics::v1::{self as pb, logistics_service_server::LogisticsService};
use symbiose_shell::{Actor, now_ms};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::codec::{self, exchange_from_wire, grade_from_wire, grade_to_wire, quote_to_wire};
use crate::desk::{Logistics, ShipmentView};
use crate::pallets::SettleBy;
use crate::shipment::{self, BorderCrossing, Delivery, Pickup};
use crate::transport::SUBMITTED_VALID_HOURS_MAX;

/// Validity of a carrier's own price when the request says 0, in hours.
const SUBMITTED_VALID_HOURS_DEFAULT: u32 = 48;
/// Largest page of quotes, and its default.
pub const QUOTES_PAGE_SIZE_MAX: usize = 100;
const QUOTES_PAGE_SIZE_DEFAULT: u32 = 20;

#[derive(Debug)]
pub struct LogisticsApi<S> {
    desk: Arc<Logistics<S>>,
}

impl<S> LogisticsApi<S> {
    pub fn new(desk: Arc<Logistics<S>>) -> LogisticsApi<S> {
        LogisticsApi { desk }
    }
}

fn invalid(error: FieldError) -> ApiError {
    ApiError::InvalidArgument { field: error.field, message: error.message }
}

fn id(value: &str, field: &str) -> Result<Uuid, ApiError> {
    codec::id(value, field).map_err(invalid)
}

fn country_to_wire(country: Country) -> i32 {
    common::Country::from(country).into()
}

/// `caller` acting with `request` and its `request_id`.
fn actor(caller: &Caller, request_id: &str, request: &impl prost::Message) -> Result<Actor, ApiError> {
    Actor::for_request(caller.organization_id, request_id, request)
}

fn state_to_wire(state: &str) -> pb::ShipmentState {
    match state {
        "booked" => pb::ShipmentState::Booked,
        "picked up" => pb::ShipmentState::PickedUp,
        "in transit" => pb::ShipmentState::InTransit,
        "delivered" => pb::ShipmentState::Delivered,
        "closed" => pb::ShipmentState::Closed,
        _ => pb::ShipmentState::Unspecified,
    }
}

fn exchange_to_wire(exchange: Option<&shipment::PalletExchange>) -> Option<pb::PalletExchange> {
    exchange.map(|exchange| pb::PalletExchange {
        grade: grade_to_wire(exchange.grade),
        handed_over: u32::try_from(exchange.handed_over).unwrap_or(u32::MAX),
        taken_back: u32::try_from(exchange.taken_back).unwrap_or(u32::MAX),
    })
}

fn quantity_milli(of: &Quantity, amount_milli: i64) -> Option<common::Quantity> {
    Quantity::new(amount_milli, of.unit(), true).ok().map(Into::into)
}

fn shipment_to_wire(view: &ShipmentView) -> pb::Shipment {
    let shipment = &view.shipment;
    let transport = &shipment.transport;
    let state = match (view.state, shipment.crossings.is_empty()) {
        ("picked up", false) => "in transit",
        (state, _) => state,
    };
    pb::Shipment {
        shipment_id: shipment.id.to_string(),
        deal_id: transport.deal_id.to_string(),
        seller_organization_id: transport.seller.to_string(),
        buyer_organization_id: transport.buyer.to_string(),
        carrier_organization_id: transport.carrier.to_string(),
        quote: view.quote.as_ref().map(quote_to_wire),
        pickup: Some(transport.pickup.point.into()),
        pickup_country: country_to_wire(transport.pickup.country),
        delivery: Some(transport.delivery.point.into()),
        delivery_country: country_to_wire(transport.delivery.country),
        expected: Some(transport.quantity.into()),
        cross_border: transport.cross_border,
        hazardous: transport.hazardous,
        prior_notification_number: transport.prior_notification_number.clone().unwrap_or_default(),
        state: state_to_wire(state).into(),
        picked_up: shipment.pickup.as_ref().map(|pickup| pickup.quantity.into()),
        received: shipment.delivery.as_ref().map(|delivery| delivery.received.into()),
        accepted: shipment
            .delivery
            .as_ref()
            .and_then(|delivery| quantity_milli(&delivery.received, delivery.accepted_milli)),
        refused: shipment
            .delivery
            .as_ref()
            .and_then(|delivery| quantity_milli(&delivery.received, delivery.refused_milli)),
        refusal_reason: shipment
            .delivery
            .as_ref()
            .and_then(|delivery| delivery.refusal_reason.clone())
            .unwrap_or_default(),
        history: view
            .history
            .iter()
            .map(|step| pb::ShipmentStep {
                state: state_to_wire(step.state).into(),
                at: Some(timestamp_from_ms(step.at_ms)),
                country: step.country.map_or(0, country_to_wire),
                quantity: step.quantity.map(Into::into),
                pallets: exchange_to_wire(step.pallets.as_ref()),
                note: step.note.clone(),
            })
            .collect(),
        version: view.version,
        pallet_exchange: transport.pallet_exchange,
    }
}

fn party_to_wire(party: &crate::annex_vii::Party) -> pb::AnnexViiParty {
    use crate::annex_vii::PartyContact;
    let (contact_person, contact_telephone, contact_email) = match &party.contact {
        PartyContact::Listed(contact) => {
            (contact.person.clone(), contact.telephone.clone(), contact.email.clone())
        }
        PartyContact::Erased | PartyContact::Missing => Default::default(),
    };
    pb::AnnexViiParty {
        name: party.name.clone(),
        address: party.address_lines.clone(),
        country: country_to_wire(party.country),
        identifier: party.identifier.clone(),
        contact_person,
        contact_telephone,
        contact_email,
        contact_erased: party.contact == PartyContact::Erased,
        street_address_missing: !party.full_address,
    }
}

/// The fields of a carrier profile as the domain names them, and their paths in
/// `RegisterCarrierRequest`. Rules of one depot or vehicle are checked by
/// `codec::profile_from_wire`, which knows its index.
const PROFILE_PATHS: &[(&str, &str)] = &[
    ("depots", "profile.depots"),
    ("countries", "profile.countries"),
    ("vehicles", "profile.vehicles"),
    ("service_radius_km", "profile.radius_km"),
    ("rates.per_km", "profile.rates.per_km_minor"),
    ("rates.per_tonne", "profile.rates.per_tonne_minor"),
    ("rates.minimum", "profile.rates.minimum_charge_minor"),
];

/// A report is dated now by the service: a date the rules refuse is not the request's.
fn reported_now(error: ApiError) -> ApiError {
    match error {
        ApiError::InvalidArgument { ref field, .. } if field == "at" => error.not_from_request(),
        other => other,
    }
}

fn quantity_field(value: Option<common::Quantity>, field: &str) -> Result<Quantity, ApiError> {
    required(value, field).map_err(invalid)
}

#[tonic::async_trait]
impl<S: EventStore> LogisticsService for LogisticsApi<S> {
    async fn register_carrier(
        &self,
        request: Request<pb::RegisterCarrierRequest>,
    ) -> Result<Response<pb::RegisterCarrierResponse>, Status> {
        let caller = auth::caller(&request)?;
        let request = request.into_inner();
        let actor = actor(&caller, &request.request_id, &request)?;
        let profile = request.profile.ok_or_else(|| ApiError::invalid_argument("profile", "is required"))?;
        let profile = codec::profile_from_wire(caller.organization_id, profile).map_err(invalid)?;
        let (version, position) = self
            .desk
            .register_carrier(&actor, caller.has_role(Role::Carrier), profile)
            .await
            .map_err(|error| error.in_request(PROFILE_PATHS))?;
        Ok(Response::new(pb::RegisterCarrierResponse { version, position }))
    }

    async fn list_quotes(
        &self,
        request: Request<pb::ListQuotesRequest>,
    ) -> Result<Response<pb::ListQuotesResponse>, Status> {
        let caller = auth::caller(&request)?;
        let request = request.into_inner();
        let deal = id(&request.deal_id, "deal_id")?;
        let requested = if request.page_size == 0 { QUOTES_PAGE_SIZE_DEFAULT } else { request.page_size };
        let size = page::page_size(i32::try_from(requested).unwrap_or(i32::MAX), QUOTES_PAGE_SIZE_MAX)?;
        // The sort key of the last quote of the previous page: its price, then its id.
        let malformed = || ApiError::invalid_argument("page_token", "is not a token this service issued");
        let after = match page::decode_token(&request.page_token)? {
            Some(key) => {
                let (price_minor, quote) = key.split_once('/').ok_or_else(malformed)?;
                Some((
                    price_minor.parse::<i64>().map_err(|_| malformed())?,
                    Uuid::parse_str(quote).map_err(|_| malformed())?,
                ))
            }
            None => None,
        };
        self.desk.wait_for(Position::from_u64(request.min_position)).await?;
        let quotes = self.desk.quotes(caller.organization_id, caller.is_operator(), deal)?;
        let mut rest = quotes
            .iter()
            .filter(|quote| after.is_none_or(|after| (quote.price.minor(), quote.id) > after))
            .peekable();
        let page: Vec<_> = rest.by_ref().take(size).collect();
        let next_page_token = match page.last() {
            Some(last) if rest.peek().is_some() => {
                page::encode_token(&format!("{}/{}", last.price.minor(), last.id))
            }
            _ => String::new(),
        };
        Ok(Response::new(pb::ListQuotesResponse {
            quotes: page.into_iter().map(quote_to_wire).collect(),
            next_page_token,
        }))
    }

    async fn submit_quote(
        &self,
        request: Request<pb::SubmitQuoteRequest>,
    ) -> Result<Response<pb::SubmitQuoteResponse>, Status> {
        let caller = auth::caller(&request)?;
        caller.require_role(Role::Carrier)?;
        let request = request.into_inner();
        let actor = actor(&caller, &request.request_id, &request)?;
        let deal = id(&request.deal_id, "deal_id")?;
        let price = required(request.price, "price").map_err(invalid)?;
        let valid_hours = match request.valid_hours {
            0 => SUBMITTED_VALID_HOURS_DEFAULT,
            hours if hours <= SUBMITTED_VALID_HOURS_MAX => hours,
            _ => {
                return Err(ApiError::invalid_argument(
                    "valid_hours",
                    format!("must be at most {SUBMITTED_VALID_HOURS_MAX}"),
                )
                .into());
            }
        };
        let (quote, position) = self.desk.submit_quote(&actor, deal, price, valid_hours).await?;
        Ok(Response::new(pb::SubmitQuoteResponse { quote: Some(quote_to_wire(&quote)), position }))
    }

    async fn book_shipment(
        &self,
        request: Request<pb::BookShipmentRequest>,
    ) -> Result<Response<pb::BookShipmentResponse>, Status> {
        let caller = auth::caller(&request)?;
        let request = request.into_inner();
        let actor = actor(&caller, &request.request_id, &request)?;
        let deal = id(&request.deal_id, "deal_id")?;
        let quote = id(&request.quote_id, "quote_id")?;
        let notification = request.prior_notification_number.trim();
        let notification = (!notification.is_empty()).then(|| notification.to_owned());
        let (shipment, position) =
            self.desk.book(&actor, deal, quote, notification).await.map_err(|error| match error {
                ApiError::InvalidArgument { ref field, .. } if field == "prior_notification_number" => error,
                // The rest is of the deal and the quote the request names: their state.
                other => other.not_from_request(),
            })?;
        Ok(Response::new(pb::BookShipmentResponse { shipment: Some(shipment_to_wire(&shipment)), position }))
    }

    async fn report_pickup(
        &self,
        request: Request<pb::ReportPickupRequest>,
    ) -> Result<Response<pb::ReportPickupResponse>, Status> {
        let caller = auth::caller(&request)?;
        let request = request.into_inner();
        let actor = actor(&caller, &request.request_id, &request)?;
        let shipment = id(&request.shipment_id, "shipment_id")?;
        let pickup = Pickup {
            quantity: quantity_field(request.quantity, "quantity")?,
            pallets: exchange_from_wire(request.pallets, "pallets").map_err(invalid)?,
            at_ms: now_ms(),
        };
        let command = shipment::Command::ReportPickup { by: caller.organization_id, pickup };
        let (shipment, position) = self
            .desk
            .execute_shipment(shipment, &actor, command, None)
            .await
            .map_err(|error| reported_now(error.in_request(&[("quantity", "quantity.unit")])))?;
        Ok(Response::new(pb::ReportPickupResponse { shipment: Some(shipment_to_wire(&shipment)), position }))
    }

    async fn report_border_crossing(
        &self,
        request: Request<pb::ReportBorderCrossingRequest>,
    ) -> Result<Response<pb::ReportBorderCrossingResponse>, Status> {
        let caller = auth::caller(&request)?;
        let request = request.into_inner();
        let actor = actor(&caller, &request.request_id, &request)?;
        let shipment = id(&request.shipment_id, "shipment_id")?;
        let crossing = BorderCrossing {
            country: country_from_wire(request.country, "country").map_err(invalid)?,
            at_ms: match &request.at {
                Some(at) => ms_from_timestamp(at, "at").map_err(invalid)?,
                None => now_ms(),
            },
        };
        let command = shipment::Command::ReportBorderCrossing { by: caller.organization_id, crossing };
        let (shipment, position) = self.desk.execute_shipment(shipment, &actor, command, None).await?;
        Ok(Response::new(pb::ReportBorderCrossingResponse {
            shipment: Some(shipment_to_wire(&shipment)),
            position,
        }))
    }

    async fn report_delivery(
        &self,
        request: Request<pb::ReportDeliveryRequest>,
    ) -> Result<Response<pb::ReportDeliveryResponse>, Status> {
        let caller = auth::caller(&request)?;
        let request = request.into_inner();
        let actor = actor(&caller, &request.request_id, &request)?;
        let shipment = id(&request.shipment_id, "shipment_id")?;
        let received = quantity_field(request.received, "received")?;
        let accepted = quantity_field(request.accepted, "accepted")?;
        let refused = match request.refused {
            Some(refused) => Some(quantity_field(Some(refused), "refused")?),
            None => None,
        };
        for (quantity, field) in [(Some(accepted), "accepted.unit"), (refused, "refused.unit")] {
            if quantity.is_some_and(|quantity| quantity.unit() != received.unit()) {
                return Err(ApiError::invalid_argument(field, "must be the unit of `received`").into());
            }
        }
        let reason = request.refusal_reason.trim();
        let delivery = Delivery {
            received,
            accepted_milli: accepted.amount_milli(),
            refused_milli: refused.map_or(0, |refused| refused.amount_milli()),
            refusal_reason: (!reason.is_empty()).then(|| reason.to_owned()),
            pallets: exchange_from_wire(request.pallets, "pallets").map_err(invalid)?,
            at_ms: now_ms(),
        };
        let command = shipment::Command::ReportDelivery { by: caller.organization_id, delivery };
        let (shipment, position) = self
            .desk
            .execute_shipment(shipment, &actor, command, None)
            .await
            .map_err(|error| reported_now(error.in_request(&[("quantity", "received.unit")])))?;
        Ok(Response::new(pb::ReportDeliveryResponse {
            shipment: Some(shipment_to_wire(&shipment)),
            position,
        }))
    }

    async fn confirm_acceptance(
        &self,
        request: Request<pb::ConfirmAcceptanceRequest>,
    ) -> Result<Response<pb::ConfirmAcceptanceResponse>, Status> {
        let caller = auth::caller(&request)?;
        let request = request.into_inner();
        let actor = actor(&caller, &request.request_id, &request)?;
        let id = id(&request.shipment_id, "shipment_id")?;
        // The buyer confirms what the delivery reported as accepted: read once the view holds it.
        self.desk.caught_up().await?;
        let accepted_milli = self
            .desk
            .shipment(caller.organization_id, caller.is_operator(), id)?
            .shipment
            .delivery
            .map(|delivery| delivery.accepted_milli)
            .unwrap_or_default();
        let command = shipment::Command::ConfirmAcceptance { by: caller.organization_id, accepted_milli };
        // The request names the shipment only: what the rules refuse is the shipment's state.
        let (shipment, position) = self
            .desk
            .execute_shipment(id, &actor, command, None)
            .await
            .map_err(ApiError::not_from_request)?;
        Ok(Response::new(pb::ConfirmAcceptanceResponse {
            shipment: Some(shipment_to_wire(&shipment)),
            position,
        }))
    }

    async fn get_shipment(
        &self,
        request: Request<pb::GetShipmentRequest>,
    ) -> Result<Response<pb::GetShipmentResponse>, Status> {
        let caller = auth::caller(&request)?;
        let request = request.into_inner();
        let id = id(&request.shipment_id, "shipment_id")?;
        self.desk.wait_for(Position::from_u64(request.min_position)).await?;
        let shipment = self.desk.shipment(caller.organization_id, caller.is_operator(), id)?;
        Ok(Response::new(pb::GetShipmentResponse { shipment: Some(shipment_to_wire(&shipment)) }))
    }

    async fn get_pallet_balances(
        &self,
        request: Request<pb::GetPalletBalancesRequest>,
    ) -> Result<Response<pb::GetPalletBalancesResponse>, Status> {
        let caller = auth::caller(&request)?;
        let request = request.into_inner();
        self.desk.wait_for(Position::from_u64(request.min_position)).await?;
        let balances = self
            .desk
            .pallet_balances(caller.organization_id)
            .into_iter()
            .map(|balance| pb::PalletBalance {
                counterparty_organization_id: balance.counterparty.to_string(),
                grade: grade_to_wire(balance.grade),
                // The wire says what the counterparty owes the caller.
                pallets: -balance.owed,
            })
            .collect();
        Ok(Response::new(pb::GetPalletBalancesResponse { balances }))
    }

    async fn settle_pallet_balance(
        &self,
        request: Request<pb::SettlePalletBalanceRequest>,
    ) -> Result<Response<pb::SettlePalletBalanceResponse>, Status> {
        let caller = auth::caller(&request)?;
        let request = request.into_inner();
        let actor = actor(&caller, &request.request_id, &request)?;
        let counterparty = id(&request.counterparty_organization_id, "counterparty_organization_id")?;
        let grade = grade_from_wire(request.grade, "grade").map_err(invalid)?;
        let count = i64::from(request.pallets);
        let by = match request.payment {
            Some(payment) => {
                SettleBy::Payment { count, amount: required(Some(payment), "payment").map_err(invalid)? }
            }
            None => SettleBy::Return { count },
        };
        let (settlement, position) =
            self.desk.settle_pallets(&actor, counterparty, grade, by).await.map_err(|error| {
                error.in_request(&[
                    ("counterparty", "counterparty_organization_id"),
                    ("count", "pallets"),
                    ("amount", "payment.amount_minor"),
                ])
            })?;
        self.desk.wait_for(Position::from_u64(position)).await?;
        let owed = self.desk.view().pallets().balance(caller.organization_id, counterparty, settlement.grade);
        Ok(Response::new(pb::SettlePalletBalanceResponse {
            balance: Some(pb::PalletBalance {
                counterparty_organization_id: counterparty.to_string(),
                grade: grade_to_wire(settlement.grade),
                pallets: -owed,
            }),
            position,
        }))
    }

    async fn get_annex_vii(
        &self,
        request: Request<pb::GetAnnexViiRequest>,
    ) -> Result<Response<pb::GetAnnexViiResponse>, Status> {
        let caller = auth::caller(&request)?;
        let request = request.into_inner();
        let id = id(&request.shipment_id, "shipment_id")?;
        self.desk.wait_for(Position::from_u64(request.min_position)).await?;
        // The document is made of the shipment's data, none of it in the request.
        let annex = self
            .desk
            .annex_vii(caller.organization_id, caller.is_operator(), id)
            .await
            .map_err(ApiError::not_from_request)?;
        let text = annex.render_text();
        let pdf = if request.include_pdf { annex.render_pdf() } else { Vec::new() };
        Ok(Response::new(pb::GetAnnexViiResponse {
            annex_vii: Some(pb::AnnexVii {
                arranger: Some(party_to_wire(&annex.arranger)),
                consignee: Some(party_to_wire(&annex.consignee)),
                mass_kg: annex.mass_kg.unwrap_or_default(),
                volume_litres: annex.volume_litres.unwrap_or_default(),
                shipment_date: Some(timestamp_from_ms(annex.shipment_date_ms)),
                carriers: annex.carriers.iter().map(party_to_wire).collect(),
                generator: Some(party_to_wire(&annex.generator)),
                recovery_facility: Some(party_to_wire(&annex.recovery_facility)),
                recovery_operation: annex.recovery_operation.clone(),
                description: annex.description.clone(),
                basel_code: annex.codes.basel_annex_ix.clone(),
                oecd_code: annex.codes.oecd.clone().unwrap_or_default(),
                ewc_code: annex.codes.list_of_waste.as_str().to_owned(),
                country_of_dispatch: country_to_wire(annex.countries.dispatch),
                countries_of_transit: annex
                    .countries
                    .transit
                    .iter()
                    .map(|country| country_to_wire(*country))
                    .collect(),
                country_of_destination: country_to_wire(annex.countries.destination),
                received_at: annex.received.map(|received| timestamp_from_ms(received.at_ms)),
                received_mass_kg: annex.received.and_then(|received| received.mass_kg).unwrap_or_default(),
                received_volume_litres: annex
                    .received
                    .and_then(|received| received.volume_litres)
                    .unwrap_or_default(),
            }),
            text,
            pdf,
        }))
    }
}
