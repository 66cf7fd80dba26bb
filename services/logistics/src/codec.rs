//! The wire form of logistics: carrier profiles, quotes and shipments to and from the messages
//! of `logistics.proto`, and the events to and from `events.proto`
//! (`symbiose.logistics.v1.<type>`).

use std::collections::BTreeSet;

use prost::Message as _;
use symbiose_domain::{Country, Currency, GeoPoint, Money, PalletGrade, Quantity};
use symbiose_listings::listing::Place;
use symbiose_proto::common::v1 as common;
use symbiose_proto::convert::{
    FieldError, country_from_wire, ms_from_timestamp, required, timestamp_from_ms,
};
use symbiose_proto::listings::v1 as listings;
use symbiose_proto::logistics::v1 as pb;
use uuid::Uuid;

use crate::carrier::{self, Depot, Profile, Rates, Vehicle};
use crate::pallets::{SettleBy, Settlement};
use crate::quote::EMISSION_FACTOR;
use crate::shipment::{self, BorderCrossing, Delivery, PalletExchange, Pickup, Shipment, Transport};
use crate::transport::{self, OfferedQuote};

pub const CARRIER_REGISTERED: &str = "symbiose.logistics.v1.CarrierRegistered";
pub const CARRIER_UPDATED: &str = "symbiose.logistics.v1.CarrierUpdated";
pub const TRANSPORT_REQUESTED: &str = "symbiose.logistics.v1.TransportRequested";
pub const QUOTE_SUBMITTED: &str = "symbiose.logistics.v1.QuoteSubmitted";
pub const SHIPMENT_BOOKED: &str = "symbiose.logistics.v1.ShipmentBooked";
pub const SHIPMENT_PICKED_UP: &str = "symbiose.logistics.v1.ShipmentPickedUp";
pub const BORDER_CROSSED: &str = "symbiose.logistics.v1.BorderCrossed";
pub const SHIPMENT_DELIVERED: &str = "symbiose.logistics.v1.ShipmentDelivered";
pub const SHIPMENT_CLOSED: &str = "symbiose.logistics.v1.ShipmentClosed";
pub const PALLET_BALANCE_SETTLED: &str = "symbiose.logistics.v1.PalletBalanceSettled";

/// Namespace of the ids of depots and vehicles a profile leaves out.
const PROFILE_NAMESPACE: Uuid = Uuid::from_u128(0x6c6f_6769_7374_4963_8d21_5a0e_77b3_0c19);

pub use symbiose_proto::convert::id;

fn optional_id(value: &str, field: &str, derived: impl FnOnce() -> Uuid) -> Result<Uuid, FieldError> {
    if value.trim().is_empty() { Ok(derived()) } else { id(value, field) }
}

fn country_to_wire(country: Country) -> i32 {
    common::Country::from(country).into()
}

fn ms(timestamp: Option<&prost_types::Timestamp>, field: &str) -> Result<i64, FieldError> {
    timestamp.map_or(Ok(0), |at| ms_from_timestamp(at, field))
}

pub fn grade_to_wire(grade: PalletGrade) -> i32 {
    match grade {
        PalletGrade::New => listings::PalletGrade::New,
        PalletGrade::A => listings::PalletGrade::A,
        PalletGrade::B => listings::PalletGrade::B,
        PalletGrade::C => listings::PalletGrade::C,
        PalletGrade::Unsorted => listings::PalletGrade::Unsorted,
    }
    .into()
}

pub fn grade_from_wire(value: i32, field: &str) -> Result<PalletGrade, FieldError> {
    match listings::PalletGrade::try_from(value) {
        Ok(listings::PalletGrade::New) => Ok(PalletGrade::New),
        Ok(listings::PalletGrade::A) => Ok(PalletGrade::A),
        Ok(listings::PalletGrade::B) => Ok(PalletGrade::B),
        Ok(listings::PalletGrade::C) => Ok(PalletGrade::C),
        Ok(listings::PalletGrade::Unsorted) => Ok(PalletGrade::Unsorted),
        Ok(listings::PalletGrade::Unspecified) => Err(FieldError::required(field)),
        Err(_) => Err(FieldError::new(field, format!("{value} is not a pallet grade"))),
    }
}

/// A profile from the wire, for `carrier`; `field` prefixes the errors.
pub fn profile_from_wire(carrier: Uuid, profile: pb::CarrierProfile) -> Result<Profile, FieldError> {
    let depots = profile
        .depots
        .into_iter()
        .enumerate()
        .map(|(index, depot)| {
            let field = format!("profile.depots[{index}]");
            Ok(Depot {
                id: optional_id(&depot.depot_id, "depot_id", || {
                    Uuid::new_v5(&PROFILE_NAMESPACE, format!("{carrier}/depot/{index}").as_bytes())
                })
                .map_err(|error| error.under(&field))?,
                name: depot.name,
                point: required::<_, GeoPoint>(depot.location, "location")
                    .map_err(|error| error.under(&field))?,
                country: country_from_wire(depot.country, "country").map_err(|error| error.under(&field))?,
            })
        })
        .collect::<Result<Vec<_>, FieldError>>()?;
    let vehicles = profile
        .vehicles
        .into_iter()
        .enumerate()
        .map(|(index, vehicle)| {
            let field = format!("profile.vehicles[{index}]");
            Ok(Vehicle {
                id: optional_id(&vehicle.vehicle_id, "vehicle_id", || {
                    Uuid::new_v5(&PROFILE_NAMESPACE, format!("{carrier}/vehicle/{index}").as_bytes())
                })
                .map_err(|error| error.under(&field))?,
                name: vehicle.name,
                payload_kg: i64::from(vehicle.payload_kg),
                pallet_places: i64::from(vehicle.pallet_places),
                tail_lift: vehicle.tail_lift,
                dangerous_goods: vehicle.dangerous_goods,
            })
        })
        .collect::<Result<Vec<_>, FieldError>>()?;
    let rates = profile.rates.ok_or_else(|| FieldError::required("profile.rates"))?;
    let currency: Currency =
        rates.currency_code.parse().map_err(|error| FieldError::new("profile.rates.currency_code", error))?;
    let countries = profile
        .countries
        .iter()
        .map(|country| country_from_wire(*country, "profile.countries"))
        .collect::<Result<BTreeSet<Country>, FieldError>>()?;
    check_parts(&depots, &vehicles)?;
    Ok(Profile {
        depots,
        countries,
        service_radius_km: profile.radius_km,
        vehicles,
        rates: Rates {
            per_km_minor: rates.per_km_minor,
            per_tonne_minor: rates.per_tonne_minor,
            minimum_minor: rates.minimum_charge_minor,
            currency,
        },
        takes_pallet_exchange: profile.pallet_exchange,
    })
}

/// The rules of each depot and vehicle, which the aggregate checks again: checked here too so
/// that the error names the depot or vehicle at fault by its index in the request.
fn check_parts(depots: &[Depot], vehicles: &[Vehicle]) -> Result<(), FieldError> {
    let bad_name = |name: &str| name.trim().is_empty() || name.len() > carrier::NAME_BYTES_MAX;
    let mut ids = BTreeSet::new();
    for (index, depot) in depots.iter().enumerate() {
        let field = format!("profile.depots[{index}]");
        if !ids.insert(depot.id) {
            return Err(FieldError::new(
                format!("{field}.depot_id"),
                carrier::Rejection::DuplicateId(depot.id),
            ));
        }
        if bad_name(&depot.name) {
            return Err(FieldError::new(format!("{field}.name"), carrier::Rejection::BadName));
        }
    }
    for (index, vehicle) in vehicles.iter().enumerate() {
        let field = format!("profile.vehicles[{index}]");
        if !ids.insert(vehicle.id) {
            return Err(FieldError::new(
                format!("{field}.vehicle_id"),
                carrier::Rejection::DuplicateId(vehicle.id),
            ));
        }
        if bad_name(&vehicle.name) {
            return Err(FieldError::new(format!("{field}.name"), carrier::Rejection::BadName));
        }
        if !(1..=carrier::VEHICLE_PAYLOAD_KG_MAX).contains(&vehicle.payload_kg) {
            return Err(FieldError::new(
                format!("{field}.payload_kg"),
                carrier::Rejection::PayloadOutOfRange,
            ));
        }
        if !(0..=carrier::VEHICLE_PALLET_PLACES_MAX).contains(&vehicle.pallet_places) {
            return Err(FieldError::new(
                format!("{field}.pallet_places"),
                carrier::Rejection::PalletPlacesOutOfRange,
            ));
        }
    }
    Ok(())
}

pub fn profile_to_wire(carrier: Uuid, profile: &Profile) -> pb::CarrierProfile {
    pb::CarrierProfile {
        carrier_organization_id: carrier.to_string(),
        depots: profile
            .depots
            .iter()
            .map(|depot| pb::Depot {
                depot_id: depot.id.to_string(),
                name: depot.name.clone(),
                location: Some(depot.point.into()),
                country: country_to_wire(depot.country),
            })
            .collect(),
        countries: profile.countries.iter().map(|country| country_to_wire(*country)).collect(),
        radius_km: profile.service_radius_km,
        vehicles: profile
            .vehicles
            .iter()
            .map(|vehicle| pb::Vehicle {
                vehicle_id: vehicle.id.to_string(),
                name: vehicle.name.clone(),
                payload_kg: u32::try_from(vehicle.payload_kg).unwrap_or(u32::MAX),
                pallet_places: u32::try_from(vehicle.pallet_places).unwrap_or(u32::MAX),
                tail_lift: vehicle.tail_lift,
                dangerous_goods: vehicle.dangerous_goods,
            })
            .collect(),
        rates: Some(pb::Rates {
            per_km_minor: profile.rates.per_km_minor,
            per_tonne_minor: profile.rates.per_tonne_minor,
            minimum_charge_minor: profile.rates.minimum_minor,
            currency_code: profile.rates.currency.code().to_owned(),
        }),
        pallet_exchange: profile.takes_pallet_exchange,
    }
}

pub fn quote_to_wire(quote: &OfferedQuote) -> pb::Quote {
    pb::Quote {
        quote_id: quote.id.to_string(),
        deal_id: quote.deal_id.to_string(),
        carrier_organization_id: quote.carrier.to_string(),
        vehicle: quote.vehicle.clone(),
        price: Some(quote.price.into()),
        road_distance_km: quote.road_distance_km,
        duration_minutes: u32::try_from(quote.duration_minutes).unwrap_or(u32::MAX),
        co2_kg: quote.co2_kg,
        emission_factor: Some(pb::EmissionFactor {
            kg_co2e_per_tonne_km: EMISSION_FACTOR.kg_co2e_per_tonne_km,
            source: EMISSION_FACTOR.source.to_owned(),
            version: EMISSION_FACTOR.version.to_owned(),
            scope: EMISSION_FACTOR.scope.to_owned(),
        }),
        expires_at: Some(timestamp_from_ms(quote.expires_at_ms)),
        automatic: quote.automatic,
        chargeable_mass_kg: quote.chargeable_mass_kg,
    }
}

fn quote_from_wire(quote: pb::Quote) -> Result<OfferedQuote, FieldError> {
    Ok(OfferedQuote {
        id: id(&quote.quote_id, "quote_id")?,
        deal_id: id(&quote.deal_id, "deal_id")?,
        carrier: id(&quote.carrier_organization_id, "carrier_organization_id")?,
        vehicle: quote.vehicle,
        price: required(quote.price, "price")?,
        road_distance_km: quote.road_distance_km,
        duration_minutes: i64::from(quote.duration_minutes),
        chargeable_mass_kg: quote.chargeable_mass_kg,
        co2_kg: quote.co2_kg,
        expires_at_ms: ms(quote.expires_at.as_ref(), "expires_at")?,
        automatic: quote.automatic,
    })
}

fn exchange_to_wire(exchange: Option<&PalletExchange>) -> Option<pb::PalletExchange> {
    exchange.map(|exchange| pb::PalletExchange {
        grade: grade_to_wire(exchange.grade),
        handed_over: u32::try_from(exchange.handed_over).unwrap_or(u32::MAX),
        taken_back: u32::try_from(exchange.taken_back).unwrap_or(u32::MAX),
    })
}

/// The pallets exchanged at a stop, as a carrier reports them: none when absent or all zero.
pub fn exchange_from_wire(
    exchange: Option<pb::PalletExchange>,
    field: &str,
) -> Result<Option<PalletExchange>, FieldError> {
    match exchange {
        None => Ok(None),
        Some(exchange) if exchange.handed_over == 0 && exchange.taken_back == 0 => Ok(None),
        Some(exchange) => Ok(Some(PalletExchange {
            grade: grade_from_wire(exchange.grade, "grade").map_err(|error| error.under(field))?,
            handed_over: i64::from(exchange.handed_over),
            taken_back: i64::from(exchange.taken_back),
        })),
    }
}

fn place(
    point: Option<common::GeoPoint>,
    country: i32,
    point_field: &str,
    country_field: &str,
) -> Result<Place, FieldError> {
    Ok(Place { point: required(point, point_field)?, country: country_from_wire(country, country_field)? })
}

fn transport_to_wire(transport: &Transport, quote: Option<&OfferedQuote>) -> pb::BookedTransport {
    pb::BookedTransport {
        deal_id: transport.deal_id.to_string(),
        seller_organization_id: transport.seller.to_string(),
        buyer_organization_id: transport.buyer.to_string(),
        carrier_organization_id: transport.carrier.to_string(),
        price: Some(transport.price.into()),
        pickup: Some(transport.pickup.point.into()),
        pickup_country: country_to_wire(transport.pickup.country),
        delivery: Some(transport.delivery.point.into()),
        delivery_country: country_to_wire(transport.delivery.country),
        quantity: Some(transport.quantity.into()),
        cross_border: transport.cross_border,
        hazardous: transport.hazardous,
        prior_notification_number: transport.prior_notification_number.clone().unwrap_or_default(),
        pallet_exchange: transport.pallet_exchange,
        quote: quote.map(quote_to_wire),
    }
}

fn transport_from_wire(
    transport: pb::BookedTransport,
) -> Result<(Transport, Option<OfferedQuote>), FieldError> {
    let quote = transport.quote.map(quote_from_wire).transpose().map_err(|error| error.under("quote"))?;
    Ok((
        Transport {
            deal_id: id(&transport.deal_id, "deal_id")?,
            seller: id(&transport.seller_organization_id, "seller_organization_id")?,
            buyer: id(&transport.buyer_organization_id, "buyer_organization_id")?,
            carrier: id(&transport.carrier_organization_id, "carrier_organization_id")?,
            price: required(transport.price, "price")?,
            pickup: place(transport.pickup, transport.pickup_country, "pickup", "pickup_country")?,
            delivery: place(transport.delivery, transport.delivery_country, "delivery", "delivery_country")?,
            quantity: required(transport.quantity, "quantity")?,
            cross_border: transport.cross_border,
            hazardous: transport.hazardous,
            prior_notification_number: (!transport.prior_notification_number.is_empty())
                .then_some(transport.prior_notification_number),
            pallet_exchange: transport.pallet_exchange,
        },
        quote,
    ))
}

/// A shipment event as stored: the booking carries the quote booked.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredShipmentEvent {
    pub event: shipment::Event,
    pub quote: Option<OfferedQuote>,
}

pub fn encode_shipment_event(
    shipment: &Shipment,
    event: &shipment::Event,
    quote: Option<&OfferedQuote>,
) -> (&'static str, Vec<u8>) {
    let shipment_id = shipment.id.to_string();
    let deal_id = shipment.transport.deal_id.to_string();
    encode_shipment_event_of(&shipment_id, &deal_id, event, quote)
}

/// Encodes `event` of shipment `shipment_id` (of deal `deal_id`).
pub fn encode_shipment_event_of(
    shipment_id: &str,
    deal_id: &str,
    event: &shipment::Event,
    quote: Option<&OfferedQuote>,
) -> (&'static str, Vec<u8>) {
    let (shipment_id, deal_id) = (shipment_id.to_owned(), deal_id.to_owned());
    match event {
        shipment::Event::Booked { transport, booked_by, at_ms, .. } => (
            SHIPMENT_BOOKED,
            pb::ShipmentBooked {
                shipment_id,
                transport: Some(transport_to_wire(transport, quote)),
                booked_by: booked_by.to_string(),
                at: Some(timestamp_from_ms(*at_ms)),
            }
            .encode_to_vec(),
        ),
        shipment::Event::PickedUp(pickup) => (
            SHIPMENT_PICKED_UP,
            pb::ShipmentPickedUp {
                shipment_id,
                deal_id,
                quantity: Some(pickup.quantity.into()),
                pallets: exchange_to_wire(pickup.pallets.as_ref()),
                at: Some(timestamp_from_ms(pickup.at_ms)),
            }
            .encode_to_vec(),
        ),
        shipment::Event::BorderCrossed(crossing) => (
            BORDER_CROSSED,
            pb::BorderCrossed {
                shipment_id,
                deal_id,
                country: country_to_wire(crossing.country),
                at: Some(timestamp_from_ms(crossing.at_ms)),
            }
            .encode_to_vec(),
        ),
        shipment::Event::Delivered(delivery) => (
            SHIPMENT_DELIVERED,
            pb::ShipmentDelivered {
                shipment_id,
                deal_id,
                received: Some(delivery.received.into()),
                accepted_milli: delivery.accepted_milli,
                refused_milli: delivery.refused_milli,
                refusal_reason: delivery.refusal_reason.clone().unwrap_or_default(),
                pallets: exchange_to_wire(delivery.pallets.as_ref()),
                at: Some(timestamp_from_ms(delivery.at_ms)),
            }
            .encode_to_vec(),
        ),
        shipment::Event::Closed { accepted_milli, by, at_ms } => (
            SHIPMENT_CLOSED,
            pb::ShipmentClosed {
                shipment_id,
                deal_id,
                accepted_milli: *accepted_milli,
                confirmed_by: by.to_string(),
                at: Some(timestamp_from_ms(*at_ms)),
            }
            .encode_to_vec(),
        ),
    }
}

pub fn decode_shipment_event(event_type: &str, payload: &[u8]) -> Result<StoredShipmentEvent, String> {
    let bad = |error: prost::DecodeError| format!("{event_type}: {error}");
    let field = |error: FieldError| format!("{event_type}: {error}");
    let plain = |event| Ok(StoredShipmentEvent { event, quote: None });
    match event_type {
        SHIPMENT_BOOKED => {
            let booked = pb::ShipmentBooked::decode(payload).map_err(bad)?;
            let transport = booked.transport.ok_or_else(|| format!("{event_type}: transport is required"))?;
            let (transport, quote) = transport_from_wire(transport).map_err(field)?;
            Ok(StoredShipmentEvent {
                event: shipment::Event::Booked {
                    shipment_id: id(&booked.shipment_id, "shipment_id").map_err(field)?,
                    transport,
                    booked_by: id(&booked.booked_by, "booked_by").map_err(field)?,
                    at_ms: ms(booked.at.as_ref(), "at").map_err(field)?,
                },
                quote,
            })
        }
        SHIPMENT_PICKED_UP => {
            let picked = pb::ShipmentPickedUp::decode(payload).map_err(bad)?;
            plain(shipment::Event::PickedUp(Pickup {
                quantity: required::<_, Quantity>(picked.quantity, "quantity").map_err(field)?,
                pallets: exchange_from_wire(picked.pallets, "pallets").map_err(field)?,
                at_ms: ms(picked.at.as_ref(), "at").map_err(field)?,
            }))
        }
        BORDER_CROSSED => {
            let crossed = pb::BorderCrossed::decode(payload).map_err(bad)?;
            plain(shipment::Event::BorderCrossed(BorderCrossing {
                country: country_from_wire(crossed.country, "country").map_err(field)?,
                at_ms: ms(crossed.at.as_ref(), "at").map_err(field)?,
            }))
        }
        SHIPMENT_DELIVERED => {
            let delivered = pb::ShipmentDelivered::decode(payload).map_err(bad)?;
            plain(shipment::Event::Delivered(Delivery {
                received: required(delivered.received, "received").map_err(field)?,
                accepted_milli: delivered.accepted_milli,
                refused_milli: delivered.refused_milli,
                refusal_reason: (!delivered.refusal_reason.is_empty()).then_some(delivered.refusal_reason),
                pallets: exchange_from_wire(delivered.pallets, "pallets").map_err(field)?,
                at_ms: ms(delivered.at.as_ref(), "at").map_err(field)?,
            }))
        }
        SHIPMENT_CLOSED => {
            let closed = pb::ShipmentClosed::decode(payload).map_err(bad)?;
            plain(shipment::Event::Closed {
                accepted_milli: closed.accepted_milli,
                by: id(&closed.confirmed_by, "confirmed_by").map_err(field)?,
                at_ms: ms(closed.at.as_ref(), "at").map_err(field)?,
            })
        }
        other => Err(format!("{other} is not a shipment event")),
    }
}

pub fn encode_carrier_event(carrier: Uuid, event: &carrier::Event) -> (&'static str, Vec<u8>) {
    match event {
        carrier::Event::Registered { profile, at_ms, .. } => (
            CARRIER_REGISTERED,
            pb::CarrierRegistered {
                profile: Some(profile_to_wire(carrier, profile)),
                at: Some(timestamp_from_ms(*at_ms)),
            }
            .encode_to_vec(),
        ),
        carrier::Event::Updated { profile, at_ms } => (
            CARRIER_UPDATED,
            pb::CarrierUpdated {
                profile: Some(profile_to_wire(carrier, profile)),
                at: Some(timestamp_from_ms(*at_ms)),
            }
            .encode_to_vec(),
        ),
    }
}

pub fn decode_carrier_event(
    carrier: Uuid,
    event_type: &str,
    payload: &[u8],
) -> Result<carrier::Event, String> {
    let bad = |error: prost::DecodeError| format!("{event_type}: {error}");
    let field = |error: FieldError| format!("{event_type}: {error}");
    let (profile, at) = match event_type {
        CARRIER_REGISTERED => {
            let registered = pb::CarrierRegistered::decode(payload).map_err(bad)?;
            (registered.profile, registered.at)
        }
        CARRIER_UPDATED => {
            let updated = pb::CarrierUpdated::decode(payload).map_err(bad)?;
            (updated.profile, updated.at)
        }
        other => return Err(format!("{other} is not a carrier event")),
    };
    let profile = profile.ok_or_else(|| format!("{event_type}: profile is required"))?;
    let profile = profile_from_wire(carrier, profile).map_err(field)?;
    let at_ms = ms(at.as_ref(), "at").map_err(field)?;
    Ok(match event_type {
        CARRIER_REGISTERED => carrier::Event::Registered { organization: carrier, profile, at_ms },
        _ => carrier::Event::Updated { profile, at_ms },
    })
}

pub fn encode_transport_event(event: &transport::Event) -> (&'static str, Vec<u8>) {
    match event {
        transport::Event::Requested { deal, at_ms } => (
            TRANSPORT_REQUESTED,
            pb::TransportRequested {
                deal: Some(symbiose_matching::codec::deal_to_wire(deal, 0)),
                at: Some(timestamp_from_ms(*at_ms)),
            }
            .encode_to_vec(),
        ),
        transport::Event::QuoteSubmitted(quote) => {
            (QUOTE_SUBMITTED, pb::QuoteSubmitted { quote: Some(quote_to_wire(quote)) }.encode_to_vec())
        }
    }
}

pub fn decode_transport_event(event_type: &str, payload: &[u8]) -> Result<transport::Event, String> {
    let bad = |error: prost::DecodeError| format!("{event_type}: {error}");
    match event_type {
        TRANSPORT_REQUESTED => {
            let requested = pb::TransportRequested::decode(payload).map_err(bad)?;
            let deal = requested.deal.ok_or_else(|| format!("{event_type}: deal is required"))?;
            // The deal as matching shows it: read by matching's own codec.
            let deal = symbiose_matching::codec::deal_from_wire(deal)
                .map_err(|error| format!("{event_type}: {}", error.under("deal")))?;
            let at_ms = ms(requested.at.as_ref(), "at").map_err(|error| format!("{event_type}: {error}"))?;
            Ok(transport::Event::Requested { deal: Box::new(deal), at_ms })
        }
        QUOTE_SUBMITTED => {
            let submitted = pb::QuoteSubmitted::decode(payload).map_err(bad)?;
            let quote = submitted.quote.ok_or_else(|| format!("{event_type}: quote is required"))?;
            let quote = quote_from_wire(quote).map_err(|error| format!("{event_type}: {error}"))?;
            Ok(transport::Event::QuoteSubmitted(Box::new(quote)))
        }
        other => Err(format!("{other} is not a transport event")),
    }
}

pub fn encode_settlement(settlement: &Settlement) -> (&'static str, Vec<u8>) {
    let (pallets, payment) = match settlement.by {
        SettleBy::Return { count } => (count, None),
        SettleBy::Payment { count, amount } => (count, Some(amount.into())),
    };
    (
        PALLET_BALANCE_SETTLED,
        pb::PalletBalanceSettled {
            settlement_id: settlement.settlement_id.to_string(),
            debtor_organization_id: settlement.debtor.to_string(),
            creditor_organization_id: settlement.creditor.to_string(),
            grade: grade_to_wire(settlement.grade),
            pallets,
            payment,
            at: Some(timestamp_from_ms(settlement.at_ms)),
        }
        .encode_to_vec(),
    )
}

pub fn decode_settlement(event_type: &str, payload: &[u8]) -> Result<Settlement, String> {
    if event_type != PALLET_BALANCE_SETTLED {
        return Err(format!("{event_type} is not a pallet account event"));
    }
    let field = |error: FieldError| format!("{event_type}: {error}");
    let settled =
        pb::PalletBalanceSettled::decode(payload).map_err(|error| format!("{event_type}: {error}"))?;
    let count = settled.pallets;
    let by = match settled.payment {
        Some(amount) => SettleBy::Payment { count, amount: Money::try_from(amount).map_err(field)? },
        None => SettleBy::Return { count },
    };
    Ok(Settlement {
        settlement_id: id(&settled.settlement_id, "settlement_id").map_err(field)?,
        debtor: id(&settled.debtor_organization_id, "debtor_organization_id").map_err(field)?,
        creditor: id(&settled.creditor_organization_id, "creditor_organization_id").map_err(field)?,
        grade: grade_from_wire(settled.grade, "grade").map_err(field)?,
        by,
        at_ms: ms(settled.at.as_ref(), "at").map_err(field)?,
    })
}
