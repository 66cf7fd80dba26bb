//! The supply diagnosis of an organization (the plan's *diagnostic d'approvisionnement
//! local*): for each of its open requests, and for each family it bought over the last year,
//! what the open offers within 50, 100 and 200 km by road could cover, and at what transport
//! CO2.
//!
//! Distances are estimated road distances (the great-circle distance times the road factor of
//! `symbiose_domain::geo`), from each offer's place to the request's (or, for a family bought,
//! to where the organization's last delivery of it arrived). An offer covers a need when it is
//! open (published, something left), of the same family, another organization's, and in the
//! need's unit or, both having a known mass, convertible by mass. The nearest offers cover
//! first; the CO2 is what carrying the covered quantity from them would emit with the road
//! freight factor every quote uses.

use std::collections::{BTreeMap, HashMap};

use symbiose_domain::freight::{ROAD_FREIGHT_KG_CO2E_PER_TONNE_KM, mass_g_per_unit};
use symbiose_domain::geo::road_distance_m;
use symbiose_domain::lot::Place;
use symbiose_domain::{MaterialFamily, Unit};
use symbiose_listings_contract::listing::{ListingState, Side};
use uuid::Uuid;

use crate::facts::Facts;
use crate::figures::DISTANCE_BANDS_KM;

/// Most needs of each kind a diagnosis answers: the requests first listed.
pub const NEEDS_MAX: usize = 200;
/// How far back the families bought are counted, in ms: a year.
pub const BOUGHT_WINDOW_MS: i64 = 365 * 86_400_000;

/// What the offers within one distance could cover.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Coverage {
    pub within_km: u32,
    /// Open offers within the distance.
    pub offers: u32,
    /// What they could cover, in thousandths of the need's unit, at most the need.
    pub coverable_milli: i64,
    /// The same as a share of the need, in basis points.
    pub share_bp: u32,
    /// Transport emissions of carrying the covered quantity, kg CO2e (0 without a known mass).
    pub co2_kg: f64,
}

/// One need and what could cover it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Need {
    /// The request, for a need of an open request; `None` for a family bought.
    pub request_id: Option<Uuid>,
    pub family: MaterialFamily,
    pub unit: Unit,
    /// What is needed: the request's quantity, or what was accepted over the last year.
    pub needed_milli: i64,
    pub place: Place,
    /// Within 50, 100 and 200 km.
    pub coverage: [Coverage; 3],
}

/// The diagnosis of one organization.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Diagnosis {
    pub organization: Uuid,
    pub requests: Vec<Need>,
    pub families: Vec<Need>,
    pub emission_factor_kg_co2e_per_tonne_km: f64,
}

/// `milli` thousandths of `from` as thousandths of `to`, for `family`: the same unit, or by
/// mass when both have one.
fn convert(family: MaterialFamily, from: Unit, milli: i64, to: Unit) -> Option<i64> {
    if from == to {
        return Some(milli);
    }
    let from_g = mass_g_per_unit(family, from)?;
    let to_g = mass_g_per_unit(family, to)?;
    i64::try_from(i128::from(milli) * i128::from(from_g) / i128::from(to_g)).ok()
}

/// An open offer: its place and what is left, in thousandths of its unit.
struct Open {
    place: Place,
    unit: Unit,
    available_milli: i64,
}

fn open_offers(facts: &Facts, family: MaterialFamily, organization: Uuid) -> Vec<Open> {
    facts
        .listings
        .values()
        .filter_map(|state| match state {
            ListingState::Published(listing) => Some(listing),
            _ => None,
        })
        .filter(|listing| {
            listing.terms.side == Side::Offer
                && listing.terms.family == family
                && listing.owner != organization
                && listing.available_milli() > 0
        })
        .map(|listing| Open {
            place: listing.place,
            unit: listing.terms.quantity.unit(),
            available_milli: listing.available_milli(),
        })
        .collect()
}

fn cover(
    family: MaterialFamily,
    unit: Unit,
    needed_milli: i64,
    place: &Place,
    offers: &[Open],
) -> [Coverage; 3] {
    let mut near: Vec<(u64, i64)> = offers
        .iter()
        .filter_map(|offer| {
            let milli = convert(family, offer.unit, offer.available_milli, unit)?;
            Some((road_distance_m(offer.place.point.distance_m(&place.point)), milli))
        })
        .collect();
    near.sort_unstable();
    let grams_per_unit = mass_g_per_unit(family, unit);
    DISTANCE_BANDS_KM.map(|within_km| {
        let mut coverage = Coverage { within_km, ..Coverage::default() };
        let mut left = needed_milli;
        for (distance_m, milli) in
            near.iter().take_while(|(distance_m, _)| *distance_m <= u64::from(within_km) * 1000)
        {
            coverage.offers += 1;
            let taken = (*milli).min(left);
            if taken <= 0 {
                continue;
            }
            left -= taken;
            coverage.coverable_milli += taken;
            if let Some(grams) = grams_per_unit {
                let tonnes = taken as f64 * grams as f64 / 1e9;
                coverage.co2_kg += tonnes * (*distance_m as f64 / 1000.0) * ROAD_FREIGHT_KG_CO2E_PER_TONNE_KM;
            }
        }
        if needed_milli > 0 {
            let share = i128::from(coverage.coverable_milli) * 10_000 / i128::from(needed_milli);
            coverage.share_bp = u32::try_from(share).unwrap_or(10_000);
        }
        coverage
    })
}

/// The diagnosis of `organization` at `now_ms`.
pub fn diagnose(facts: &Facts, organization: Uuid, now_ms: i64) -> Diagnosis {
    let mut requests: Vec<(&Uuid, &symbiose_listings_contract::listing::Listing)> = facts
        .listings
        .iter()
        .filter_map(|(id, state)| match state {
            ListingState::Published(listing)
                if listing.owner == organization && listing.terms.side == Side::Request =>
            {
                Some((id, listing.as_ref()))
            }
            _ => None,
        })
        .collect();
    requests.sort_by_key(|(id, listing)| (listing.terms.available_from_ms, **id));
    requests.truncate(NEEDS_MAX);
    let mut offers_of: HashMap<MaterialFamily, Vec<Open>> = HashMap::new();
    let requests = requests
        .into_iter()
        .map(|(id, listing)| {
            let family = listing.terms.family;
            let unit = listing.terms.quantity.unit();
            let needed_milli = listing.terms.quantity.amount_milli();
            let open = offers_of.entry(family).or_insert_with(|| open_offers(facts, family, organization));
            let coverage = cover(family, unit, needed_milli, &listing.place, open);
            Need { request_id: Some(*id), family, unit, needed_milli, place: listing.place, coverage }
        })
        .collect();
    // What it bought over the last year, per family: in the unit of its latest delivery, at
    // the place of its latest delivery.
    let mut bought: BTreeMap<usize, (Unit, i64, Place)> = BTreeMap::new();
    for id in &facts.shipment_order {
        let Some(shipment) = facts.shipments.get(id) else { continue };
        let Some(delivered) = shipment.delivered else { continue };
        if shipment.buyer != organization
            || delivered.at_ms < now_ms - BOUGHT_WINDOW_MS
            || delivered.at_ms > now_ms
        {
            continue;
        }
        let Some(deal) = facts.deals.get(&shipment.deal_id) else { continue };
        let index = MaterialFamily::ALL.iter().position(|family| *family == deal.family).unwrap_or(0);
        let unit = shipment.unit();
        let accepted = shipment.accepted_milli();
        let entry = bought.entry(index).or_insert((unit, 0, shipment.delivery));
        if let Some(milli) = convert(deal.family, unit, accepted, entry.0) {
            entry.1 += milli;
        }
        entry.2 = shipment.delivery;
    }
    let families = bought
        .into_iter()
        .filter(|(_, (_, milli, _))| *milli > 0)
        .take(NEEDS_MAX)
        .map(|(index, (unit, needed_milli, place))| {
            let family = MaterialFamily::ALL[index];
            let open = offers_of.entry(family).or_insert_with(|| open_offers(facts, family, organization));
            let coverage = cover(family, unit, needed_milli, &place, open);
            Need { request_id: None, family, unit, needed_milli, place, coverage }
        })
        .collect();
    Diagnosis {
        organization,
        requests,
        families,
        emission_factor_kg_co2e_per_tonne_km: ROAD_FREIGHT_KG_CO2E_PER_TONNE_KM,
    }
}
