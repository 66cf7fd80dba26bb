//! A carrier's profile as its events record it, in the stream `carrier-<organization id>`.

use std::collections::BTreeSet;

use prost::Message as _;
use symbiose_contract::Stored;
use symbiose_domain::{Country, Currency, GeoPoint};
use symbiose_eventstore::RecordedEvent;
use symbiose_proto::convert::{FieldError, country_from_wire, id, required, timestamp_from_ms};
use symbiose_proto::logistics::v1 as pb;
use uuid::Uuid;

use crate::wire::{bad, country_to_wire, field, ms};
use crate::{CARRIER_REGISTERED, CARRIER_UPDATED};

/// Namespace of the ids of depots and vehicles a profile leaves out.
const PROFILE_NAMESPACE: Uuid = Uuid::from_u128(0x6c6f_6769_7374_4963_8d21_5a0e_77b3_0c19);

/// A place a carrier's vehicles start from.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Depot {
    pub id: Uuid,
    pub name: String,
    pub point: GeoPoint,
    pub country: Country,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Vehicle {
    pub id: Uuid,
    pub name: String,
    pub payload_kg: i64,
    /// EUR pallet places (1200x800) on the floor.
    pub pallet_places: i64,
    pub tail_lift: bool,
    /// Equipped and crewed for dangerous goods (ADR).
    pub dangerous_goods: bool,
}

/// What a carrier charges, in minor units of `currency`: `max(minimum, per_km x road km +
/// per_tonne x tonnes)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Rates {
    pub per_km_minor: i64,
    pub per_tonne_minor: i64,
    pub minimum_minor: i64,
    pub currency: Currency,
}

/// A whole profile, as registered or updated.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Profile {
    pub depots: Vec<Depot>,
    pub countries: BTreeSet<Country>,
    pub service_radius_km: u32,
    pub vehicles: Vec<Vehicle>,
    pub rates: Rates,
    pub takes_pallet_exchange: bool,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Event {
    Registered { organization: Uuid, profile: Profile, at_ms: i64 },
    Updated { profile: Profile, at_ms: i64 },
}

/// The id of the depot at `index` of `carrier`'s profile when the profile gives none.
pub fn derived_depot_id(carrier: Uuid, index: usize) -> Uuid {
    Uuid::new_v5(&PROFILE_NAMESPACE, format!("{carrier}/depot/{index}").as_bytes())
}

/// The id of the vehicle at `index` of `carrier`'s profile when the profile gives none.
pub fn derived_vehicle_id(carrier: Uuid, index: usize) -> Uuid {
    Uuid::new_v5(&PROFILE_NAMESPACE, format!("{carrier}/vehicle/{index}").as_bytes())
}

/// `value` as an id, or `derived` when it is empty.
pub fn optional_id(value: &str, field: &str, derived: impl FnOnce() -> Uuid) -> Result<Uuid, FieldError> {
    if value.trim().is_empty() { Ok(derived()) } else { id(value, field) }
}

/// The event of `carrier` in its stored form: its type and payload.
pub fn encode(carrier: Uuid, event: &Event) -> (&'static str, Vec<u8>) {
    match event {
        Event::Registered { profile, at_ms, .. } => (
            CARRIER_REGISTERED,
            pb::CarrierRegistered {
                profile: Some(profile_to_stored(carrier, profile)),
                at: Some(timestamp_from_ms(*at_ms)),
            }
            .encode_to_vec(),
        ),
        Event::Updated { profile, at_ms } => (
            CARRIER_UPDATED,
            pb::CarrierUpdated {
                profile: Some(profile_to_stored(carrier, profile)),
                at: Some(timestamp_from_ms(*at_ms)),
            }
            .encode_to_vec(),
        ),
    }
}

/// A carrier event from its stored form (the carrier is the profile's organization).
pub fn decode(event_type: &str, payload: &[u8]) -> Result<Event, String> {
    let (profile, at) = match event_type {
        CARRIER_REGISTERED => {
            let registered = pb::CarrierRegistered::decode(payload).map_err(bad(event_type))?;
            (registered.profile, registered.at)
        }
        CARRIER_UPDATED => {
            let updated = pb::CarrierUpdated::decode(payload).map_err(bad(event_type))?;
            (updated.profile, updated.at)
        }
        other => return Err(format!("{other} is not a carrier event")),
    };
    let profile = profile.ok_or_else(|| format!("{event_type}: profile is required"))?;
    let carrier =
        id(&profile.carrier_organization_id, "profile.carrier_organization_id").map_err(field(event_type))?;
    let profile = profile_from_stored(carrier, profile).map_err(field(event_type))?;
    let at_ms = ms(at.as_ref(), "at").map_err(field(event_type))?;
    Ok(match event_type {
        CARRIER_REGISTERED => Event::Registered { organization: carrier, profile, at_ms },
        _ => Event::Updated { profile, at_ms },
    })
}

/// The event `recorded` holds, whatever shape it was written in (through [`crate::upcast`]).
pub fn decode_recorded(recorded: &RecordedEvent) -> Result<Event, String> {
    let stored = crate::upcast(Stored::of(recorded))?;
    decode(stored.event_type, &stored.payload)
}

fn profile_to_stored(carrier: Uuid, profile: &Profile) -> pb::StoredCarrierProfile {
    pb::StoredCarrierProfile {
        carrier_organization_id: carrier.to_string(),
        depots: profile
            .depots
            .iter()
            .map(|depot| pb::StoredDepot {
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
            .map(|vehicle| pb::StoredVehicle {
                vehicle_id: vehicle.id.to_string(),
                name: vehicle.name.clone(),
                payload_kg: u32::try_from(vehicle.payload_kg).unwrap_or(u32::MAX),
                pallet_places: u32::try_from(vehicle.pallet_places).unwrap_or(u32::MAX),
                tail_lift: vehicle.tail_lift,
                dangerous_goods: vehicle.dangerous_goods,
            })
            .collect(),
        rates: Some(pb::StoredRates {
            per_km_minor: profile.rates.per_km_minor,
            per_tonne_minor: profile.rates.per_tonne_minor,
            minimum_charge_minor: profile.rates.minimum_minor,
            currency_code: profile.rates.currency.code().to_owned(),
        }),
        pallet_exchange: profile.takes_pallet_exchange,
    }
}

/// A stored profile: ids left out (none are since ids exist) are derived as at registration.
/// Its rules were checked when it was decided; a fact is not judged again.
fn profile_from_stored(carrier: Uuid, profile: pb::StoredCarrierProfile) -> Result<Profile, FieldError> {
    let depots = profile
        .depots
        .into_iter()
        .enumerate()
        .map(|(index, depot)| {
            let under = |error: FieldError| error.under(&format!("profile.depots[{index}]"));
            Ok(Depot {
                id: optional_id(&depot.depot_id, "depot_id", || derived_depot_id(carrier, index))
                    .map_err(under)?,
                name: depot.name,
                point: required::<_, GeoPoint>(depot.location, "location").map_err(under)?,
                country: country_from_wire(depot.country, "country").map_err(under)?,
            })
        })
        .collect::<Result<Vec<_>, FieldError>>()?;
    let vehicles = profile
        .vehicles
        .into_iter()
        .enumerate()
        .map(|(index, vehicle)| {
            Ok(Vehicle {
                id: optional_id(&vehicle.vehicle_id, "vehicle_id", || derived_vehicle_id(carrier, index))
                    .map_err(|error| error.under(&format!("profile.vehicles[{index}]")))?,
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
