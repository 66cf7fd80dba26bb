//! The wire form of logistics. Its events are the contract's (`symbiose-logistics-contract`:
//! the typed events and their stored form), named here as the service uses them; the API's
//! messages of `logistics.proto` (profiles asked, quotes shown, pallets reported) are here.

use std::collections::BTreeSet;

use symbiose_domain::{Country, Currency, GeoPoint};
use symbiose_eventstore::RecordedEvent;
use symbiose_logistics_contract::carrier::{derived_depot_id, derived_vehicle_id, optional_id};
use symbiose_proto::convert::{FieldError, country_from_wire, required, timestamp_from_ms};
use symbiose_proto::logistics::v1 as pb;
use uuid::Uuid;

use crate::carrier::{self, Depot, Profile, Rates, Vehicle};
use crate::quote::EMISSION_FACTOR;
use crate::shipment::{self, PalletExchange, Shipment};
use crate::transport::OfferedQuote;

pub use symbiose_logistics_contract::pallets::{
    decode as decode_settlement, decode_recorded as decode_recorded_settlement, encode as encode_settlement,
};
pub use symbiose_logistics_contract::shipment::{
    StoredShipmentEvent, decode as decode_shipment_event, decode_recorded as decode_recorded_shipment_event,
    encode as encode_shipment_event_of,
};
pub use symbiose_logistics_contract::transport::{
    decode as decode_transport_event, decode_recorded as decode_recorded_transport_event,
    encode as encode_transport_event,
};
pub use symbiose_logistics_contract::{
    BORDER_CROSSED, CARRIER_REGISTERED, CARRIER_UPDATED, PALLET_BALANCE_SETTLED, QUOTE_SUBMITTED,
    SHIPMENT_BOOKED, SHIPMENT_CLOSED, SHIPMENT_DELIVERED, SHIPMENT_PICKED_UP, TRANSPORT_REQUESTED,
    grade_from_wire, grade_to_wire,
};
pub use symbiose_proto::convert::id;

/// `event` of `shipment` in its stored form; a booking carries `quote`, the quote booked.
pub fn encode_shipment_event(
    shipment: &Shipment,
    event: &shipment::Event,
    quote: Option<&OfferedQuote>,
) -> (&'static str, Vec<u8>) {
    encode_shipment_event_of(&shipment.id.to_string(), &shipment.transport.deal_id.to_string(), event, quote)
}

pub fn encode_carrier_event(carrier: Uuid, event: &carrier::Event) -> (&'static str, Vec<u8>) {
    symbiose_logistics_contract::carrier::encode(carrier, event)
}

/// A carrier event of the stream of `carrier`: one naming another carrier is refused.
pub fn decode_carrier_event(
    carrier: Uuid,
    event_type: &str,
    payload: &[u8],
) -> Result<carrier::Event, String> {
    of_carrier(carrier, event_type, symbiose_logistics_contract::carrier::decode(event_type, payload)?)
}

/// The carrier event `recorded` holds, whatever shape it was written in, of the stream of
/// `carrier`.
pub fn decode_recorded_carrier_event(
    carrier: Uuid,
    recorded: &RecordedEvent,
) -> Result<carrier::Event, String> {
    let event = symbiose_logistics_contract::carrier::decode_recorded(recorded)?;
    of_carrier(carrier, &recorded.event_type, event)
}

fn of_carrier(carrier: Uuid, event_type: &str, event: carrier::Event) -> Result<carrier::Event, String> {
    match &event {
        carrier::Event::Registered { organization, .. } if *organization != carrier => {
            Err(format!("{event_type}: the profile of {organization} in the stream of {carrier}"))
        }
        _ => Ok(event),
    }
}

/// A profile from the API, for `carrier`: ids left out are derived, each depot and vehicle
/// checked so that an error names it by its index.
pub fn profile_from_wire(carrier: Uuid, profile: pb::CarrierProfile) -> Result<Profile, FieldError> {
    let depots = profile
        .depots
        .into_iter()
        .enumerate()
        .map(|(index, depot)| {
            let field = format!("profile.depots[{index}]");
            Ok(Depot {
                id: optional_id(&depot.depot_id, "depot_id", || derived_depot_id(carrier, index))
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
                id: optional_id(&vehicle.vehicle_id, "vehicle_id", || derived_vehicle_id(carrier, index))
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

/// A quote as the API shows it.
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
