//! The transport request of a deal, in the stream `transport-<deal id>`: the deal as logistics
//! received it, then the prices carriers submitted. The deal is stored as matching recorded its
//! agreement (`symbiose.matching.v1.StoredDeal`, converted by the matching contract), never as
//! matching's API message, so the API can change without rewriting history.

use prost::Message as _;
use symbiose_contract::Stored;
use symbiose_domain::Money;
use symbiose_eventstore::RecordedEvent;
use symbiose_matching_contract::deal::Deal;
use symbiose_proto::convert::{FieldError, id, required, timestamp_from_ms};
use symbiose_proto::logistics::v1 as pb;
use uuid::Uuid;

use crate::wire::{bad, field, ms};
use crate::{QUOTE_SUBMITTED, TRANSPORT_REQUESTED};

/// A road freight emission factor, with where it comes from, so a figure shown can be traced
/// and recomputed when the factor changes.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EmissionFactor {
    pub kg_co2e_per_tonne_km: f64,
    pub source: &'static str,
    /// The platform's version of the factor: it changes whenever the value or its source does.
    pub version: &'static str,
    pub scope: &'static str,
}

/// The factor every quote uses (and records): a rigid diesel truck of 26 to 32 t gross
/// weight. The same value as the estimate matching shows (`ROAD_FREIGHT_KG_CO2E_PER_TONNE_KM`).
pub const EMISSION_FACTOR: EmissionFactor = EmissionFactor {
    kg_co2e_per_tonne_km: 0.105,
    source: "ADEME, Base Carbone: road freight, rigid truck 26-32 t gross weight, diesel (porteur 26-32 t, gazole)",
    version: "symbiose-road-freight-2025.1",
    scope: "well to wheel (upstream fuel production and combustion), kgCO2e per tonne-km of goods \
            carried, average European load and empty running; excludes vehicle manufacture and \
            infrastructure",
};

/// A quote as the parties see it and book it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct OfferedQuote {
    pub id: Uuid,
    pub deal_id: Uuid,
    pub carrier: Uuid,
    /// The vehicle's name (automatic quotes) or empty.
    pub vehicle: String,
    pub price: Money,
    pub road_distance_km: f64,
    pub duration_minutes: i64,
    pub chargeable_mass_kg: i64,
    pub co2_kg: f64,
    pub expires_at_ms: i64,
    /// From the carrier's rates (true) or its own answer (false).
    pub automatic: bool,
}

impl OfferedQuote {
    pub fn is_valid_at(&self, now_ms: i64) -> bool {
        now_ms < self.expires_at_ms
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Event {
    Requested { deal: Box<Deal>, at_ms: i64 },
    QuoteSubmitted(Box<OfferedQuote>),
}

/// `event` in its stored form.
pub fn encode(event: &Event) -> (&'static str, Vec<u8>) {
    match event {
        Event::Requested { deal, at_ms } => (
            TRANSPORT_REQUESTED,
            pb::TransportRequested {
                deal: Some(symbiose_matching_contract::deal_to_stored(deal)),
                at: Some(timestamp_from_ms(*at_ms)),
            }
            .encode_to_vec(),
        ),
        Event::QuoteSubmitted(quote) => {
            (QUOTE_SUBMITTED, pb::QuoteSubmitted { quote: Some(quote_to_stored(quote)) }.encode_to_vec())
        }
    }
}

/// A transport event from its stored form.
pub fn decode(event_type: &str, payload: &[u8]) -> Result<Event, String> {
    let field = field(event_type);
    match event_type {
        TRANSPORT_REQUESTED => {
            let requested = pb::TransportRequested::decode(payload).map_err(bad(event_type))?;
            let deal = requested.deal.ok_or_else(|| format!("{event_type}: deal is required"))?;
            let deal = symbiose_matching_contract::deal_from_stored(deal)
                .map_err(|error| field(error.under("deal")))?;
            let at_ms = ms(requested.at.as_ref(), "at").map_err(&field)?;
            Ok(Event::Requested { deal: Box::new(deal), at_ms })
        }
        QUOTE_SUBMITTED => {
            let submitted = pb::QuoteSubmitted::decode(payload).map_err(bad(event_type))?;
            let quote = submitted.quote.ok_or_else(|| format!("{event_type}: quote is required"))?;
            let quote = quote_from_stored(quote).map_err(|error| field(error.under("quote")))?;
            Ok(Event::QuoteSubmitted(Box::new(quote)))
        }
        other => Err(format!("{other} is not a transport event")),
    }
}

/// The event `recorded` holds, whatever shape it was written in (through [`crate::upcast`]).
pub fn decode_recorded(recorded: &RecordedEvent) -> Result<Event, String> {
    let stored = crate::upcast(Stored::of(recorded))?;
    decode(stored.event_type, &stored.payload)
}

pub(crate) fn quote_to_stored(quote: &OfferedQuote) -> pb::StoredQuote {
    pb::StoredQuote {
        quote_id: quote.id.to_string(),
        deal_id: quote.deal_id.to_string(),
        carrier_organization_id: quote.carrier.to_string(),
        vehicle: quote.vehicle.clone(),
        price: Some(quote.price.into()),
        road_distance_km: quote.road_distance_km,
        duration_minutes: u32::try_from(quote.duration_minutes).unwrap_or(u32::MAX),
        co2_kg: quote.co2_kg,
        emission_factor: Some(pb::StoredEmissionFactor {
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

pub(crate) fn quote_from_stored(quote: pb::StoredQuote) -> Result<OfferedQuote, FieldError> {
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
