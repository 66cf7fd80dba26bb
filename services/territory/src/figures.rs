//! Territory figures: what was exchanged, how far it travelled and what it saved, per territory
//! and period, derived from the delivered shipments and their deals.
//!
//! **What counts.** A shipment counts for a period when it was delivered in it, and for a
//! territory when its pickup or its delivery is in it (see `areas`). Quantities are what the
//! receiver accepted (the closing's figure when the buyer closed it) and what arrived
//! (delivered); masses use the masses per unit of `symbiose_domain::freight` (a EUR pallet
//! 25 kg, a litre of water 1 kg), and a quantity without a known mass (packaging counted in
//! pieces) is counted in its unit only.
//!
//! **Privacy.** A public figure sums the volumes of at least [`MIN_GROUP`] distinct producers
//! and [`MIN_GROUP`] distinct receivers; else it is withheld (its numbers are zero and it says
//! so), so that no single company's volumes can be read off a small territory. Within one
//! answer, no withheld figure can be worked out from the others:
//!
//! - the rows of a table that partition the territory's total (the families; the cells of a
//!   matrix) are withheld as a group until the withheld ones together sum enough parties, the
//!   smallest public rows joining them (the statisticians' secondary suppression);
//! - the cells of a matrix by region are withheld within their pair of countries, whose cell is
//!   their total;
//! - the pallets and the water reused are as public as their families' rows, the shares within
//!   50, 100 and 200 km only when each band of distance is public, and the total's quantities
//!   per unit are the families' (public in their rows only);
//! - the public reads whole months, quarters and years (the days of a range are the
//!   operator's), and compares periods that do not overlap.
//!
//! What one answer cannot hold back is a difference between answers over nested territories
//! or periods (a year less its other months), or between today's answer and tomorrow's: the
//! rule bounds what a territory's page shows, not what a patient reader of many pages can
//! infer. The operator sees every figure.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use symbiose_domain::freight::mass_g_per_unit;
use symbiose_domain::{Currency, MaterialFamily, Unit};
use symbiose_logistics_contract::transport::EMISSION_FACTOR;
use uuid::Uuid;

use crate::areas::{Located, Territory};
use crate::facts::{Facts, ShipmentFacts};
use crate::period::Period;

/// Fewest distinct producers, and receivers, a public figure sums.
pub const MIN_GROUP: usize = 3;
/// The distances the shares of travel are given for, in km.
pub const DISTANCE_BANDS_KM: [u32; 3] = [50, 100, 200];
/// What disposing of a tonne would have cost at least, in euro cents: the French TGAP
/// (*taxe générale sur les activités polluantes*) on landfilling non-hazardous waste in 2025,
/// 65 EUR per tonne (Code des douanes, art. 266 nonies, general rate), before any gate fee of
/// the landfill itself: a floor, not an estimate of the whole cost.
pub const DISPOSAL_REFERENCE_CENTS_PER_TONNE: i64 = 6_500;
/// Where [`DISPOSAL_REFERENCE_CENTS_PER_TONNE`] comes from.
pub const DISPOSAL_REFERENCE_SOURCE: &str = "TGAP on landfilling of non-hazardous waste, 2025 general rate: 65 EUR/t (Code des douanes, art. 266 nonies)";

/// Who reads figures: the public sees only groups of at least [`MIN_GROUP`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    Public,
    Operator,
}

/// The parties a figure sums, for the privacy rule.
#[derive(Debug, Clone, Default, PartialEq)]
struct Parties {
    producers: HashSet<Uuid>,
    receivers: HashSet<Uuid>,
}

impl Parties {
    fn add(&mut self, shipment: &ShipmentFacts) {
        self.producers.insert(shipment.seller);
        self.receivers.insert(shipment.buyer);
    }

    fn extend(&mut self, other: &Parties) {
        self.producers.extend(&other.producers);
        self.receivers.extend(&other.receivers);
    }

    fn is_empty(&self) -> bool {
        self.producers.is_empty() && self.receivers.is_empty()
    }

    fn large_enough(&self) -> bool {
        self.producers.len() >= MIN_GROUP && self.receivers.len() >= MIN_GROUP
    }
}

/// Quantities of one material family.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Volumes {
    pub shipments: u64,
    /// Arrived at the receivers', in kg (quantities with a known mass).
    pub delivered_kg: i64,
    /// Accepted by the receivers, in kg (quantities with a known mass).
    pub accepted_kg: i64,
    /// Accepted, in thousandths of each unit it was counted in.
    pub accepted_milli_by_unit: BTreeMap<UnitKey, i64>,
}

/// A unit as a map key, by its symbol.
pub type UnitKey = &'static str;

impl Volumes {
    fn add(&mut self, family: MaterialFamily, shipment: &ShipmentFacts) {
        let unit = shipment.unit();
        let delivered_milli = shipment.delivered.map_or(0, |delivered| delivered.received.amount_milli());
        let accepted_milli = shipment.accepted_milli();
        self.shipments += 1;
        self.delivered_kg = self.delivered_kg.saturating_add(kg(family, unit, delivered_milli));
        self.accepted_kg = self.accepted_kg.saturating_add(kg(family, unit, accepted_milli));
        let by_unit = self.accepted_milli_by_unit.entry(unit.symbol()).or_default();
        *by_unit = by_unit.saturating_add(accepted_milli);
    }
}

/// `milli` thousandths of `unit` of `family` in kg, rounded; 0 when its mass is unknown.
pub fn kg(family: MaterialFamily, unit: Unit, milli: i64) -> i64 {
    mass_g_per_unit(family, unit).map_or(0, |grams| {
        let grams = i128::from(milli) * i128::from(grams) / 1000;
        i64::try_from((grams + 500) / 1000).unwrap_or(i64::MAX)
    })
}

/// One family's row.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FamilyRow {
    pub family: MaterialFamily,
    pub volumes: Volumes,
    pub withheld: bool,
}

/// A cell of the origin-destination matrix.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Flow {
    /// A country code (`FR`) or a region's (`FR-67`).
    pub origin: String,
    pub destination: String,
    pub shipments: u64,
    pub accepted_kg: i64,
    pub withheld: bool,
}

/// The figures of one territory over one period.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Figures {
    pub territory: String,
    pub territory_name: String,
    pub period: String,
    /// Every family with a delivery, in the order of `MaterialFamily::ALL`.
    pub families: Vec<FamilyRow>,
    /// The sum over every family; withheld as a whole when it sums too few parties.
    pub total: Volumes,
    pub total_withheld: bool,
    /// Accepted kg that travelled at most 50, 100 and 200 km by road.
    pub accepted_kg_within: [i64; 3],
    /// The same as shares of `total.accepted_kg`, in basis points (10000 = 100 %).
    pub share_within_bp: [u32; 3],
    /// Whether the two above are withheld (zero): for the public, when a band of distance
    /// (up to 50 km, 50 to 100, 100 to 200, beyond) sums too few parties, since the shares
    /// give each band away by difference.
    pub distance_withheld: bool,
    /// Road distance of the deliveries, in km (the booked quotes').
    pub transport_km: f64,
    /// Their transport emissions, kg CO2e (the booked quotes', by [`EMISSION_FACTOR`]).
    pub transport_co2_kg: f64,
    pub emission_factor_source: &'static str,
    pub emission_factor_version: &'static str,
    /// EUR/EPAL pallets accepted for reuse.
    pub pallets_reused: i64,
    /// Whether the pallets reused are withheld (zero), as the pallets' row is.
    pub pallets_withheld: bool,
    /// Process water accepted for reuse, in litres.
    pub water_reused_litres: i64,
    /// Whether the water reused is withheld (zero), as the process water's row is.
    pub water_withheld: bool,
    /// Organizations of the territory that acted in the period, by what they did: producers
    /// (shipped from it), receivers (received in it) and carriers (moved lots from or to it).
    pub active_producers: u64,
    pub active_receivers: u64,
    pub active_carriers: u64,
    /// Distinct pairs of a producer and a receiver with an accepted delivery.
    pub partnerships: u64,
    /// Of them, pairs whose deliveries crossed a border.
    pub cross_border_partnerships: u64,
    /// Disposal costs avoided, in euro cents: for each accepted lot with a known mass, the
    /// tonnes times [`DISPOSAL_REFERENCE_CENTS_PER_TONNE`], less the gate fee its producer paid
    /// (a negative price in EUR), never below zero.
    pub gate_fees_avoided_cents: i64,
    pub disposal_reference_source: &'static str,
    /// Cross-border flows of the territory, by country.
    pub flows_by_country: Vec<Flow>,
}

/// The shipments delivered in `period` with an end in `territory`, with their family.
fn shipments_in<'a>(
    facts: &'a Facts,
    territory: &'a Territory,
    period: &'a Period,
) -> impl Iterator<Item = (&'a ShipmentFacts, MaterialFamily, Located, Located)> + 'a {
    facts.shipment_order.iter().filter_map(move |id| {
        let shipment = facts.shipments.get(id)?;
        let delivered = shipment.delivered?;
        if !period.contains(delivered.at_ms) {
            return None;
        }
        let origin = shipment.origin();
        let destination = shipment.destination();
        if !origin.is_in(territory) && !destination.is_in(territory) {
            return None;
        }
        let family = facts.deals.get(&shipment.deal_id)?.family;
        Some((shipment, family, origin, destination))
    })
}

/// Which cells of a table the public may not read: those summing too few parties, and, while
/// the withheld cells together (with `rest`, the part of the table's total no cell shows) still
/// sum too few, the smallest of the others too, so that no withheld cell can be worked out by
/// subtracting the others from the total. `cells` holds each cell's parties and size.
fn withheld_cells(cells: &[(&Parties, i64)], rest: Option<&Parties>) -> Vec<bool> {
    let mut withheld: Vec<bool> = cells.iter().map(|(parties, _)| !parties.large_enough()).collect();
    loop {
        let rest_hidden = rest.is_some_and(|rest| !rest.is_empty());
        if !rest_hidden && !withheld.contains(&true) {
            return withheld;
        }
        let mut hidden = Parties::default();
        for ((parties, _), _) in cells.iter().zip(&withheld).filter(|(_, withheld)| **withheld) {
            hidden.extend(parties);
        }
        if let Some(rest) = rest {
            hidden.extend(rest);
        }
        if hidden.large_enough() {
            return withheld;
        }
        let smallest = (0..cells.len()).filter(|index| !withheld[*index]).min_by_key(|index| cells[*index].1);
        match smallest {
            Some(index) => withheld[index] = true,
            None => return withheld,
        }
    }
}

/// The distance bands' increments: up to 50 km, 50 to 100, 100 to 200, beyond.
const INCREMENTS: usize = DISTANCE_BANDS_KM.len() + 1;

/// The figures of `territory` over `period`, as `audience` may read them.
pub fn figures(facts: &Facts, territory: &Territory, period: &Period, audience: Audience) -> Figures {
    let mut by_family: BTreeMap<usize, (Volumes, Parties)> = BTreeMap::new();
    let mut total = Volumes::default();
    let mut total_parties = Parties::default();
    let mut increments = [0i64; INCREMENTS];
    let mut increment_parties: [Parties; INCREMENTS] = Default::default();
    let mut transport_km = 0.0;
    let mut transport_co2_kg = 0.0;
    let mut pallets_reused = 0i64;
    let mut water_reused_litres = 0i64;
    let mut producers = BTreeSet::new();
    let mut receivers = BTreeSet::new();
    let mut carriers = BTreeSet::new();
    let mut pairs: BTreeMap<(Uuid, Uuid), bool> = BTreeMap::new();
    let mut avoided_cents = 0i64;
    for (shipment, family, origin, destination) in shipments_in(facts, territory, period) {
        let index = MaterialFamily::ALL.iter().position(|known| *known == family).unwrap_or(0);
        let (volumes, parties) = by_family.entry(index).or_default();
        volumes.add(family, shipment);
        parties.add(shipment);
        total.add(family, shipment);
        total_parties.add(shipment);
        let unit = shipment.unit();
        let accepted_milli = shipment.accepted_milli();
        let accepted_kg = kg(family, unit, accepted_milli);
        let deal = facts.deals.get(&shipment.deal_id);
        let distance_km = if shipment.road_distance_km > 0.0 {
            shipment.road_distance_km
        } else {
            deal.map_or(0.0, |deal| deal.distance_km)
        };
        let increment = DISTANCE_BANDS_KM
            .iter()
            .position(|limit| distance_km <= f64::from(*limit))
            .unwrap_or(DISTANCE_BANDS_KM.len());
        increments[increment] = increments[increment].saturating_add(accepted_kg);
        increment_parties[increment].add(shipment);
        transport_km += shipment.road_distance_km;
        transport_co2_kg += shipment.co2_kg;
        if family == MaterialFamily::Pallets && matches!(unit, Unit::Pallet | Unit::Piece) {
            pallets_reused = pallets_reused.saturating_add(accepted_milli / 1000);
        }
        if family == MaterialFamily::ProcessWater {
            water_reused_litres = water_reused_litres.saturating_add(accepted_kg);
        }
        if origin.is_in(territory) {
            producers.insert(shipment.seller);
        }
        if destination.is_in(territory) {
            receivers.insert(shipment.buyer);
        }
        carriers.insert(shipment.carrier);
        if accepted_milli > 0 {
            let crossed = shipment.pickup.country != shipment.delivery.country;
            let pair = pairs.entry((shipment.seller, shipment.buyer)).or_default();
            *pair |= crossed;
            if accepted_kg > 0 {
                let paid_cents = deal
                    .filter(|deal| {
                        deal.price_per_unit.is_negative() && deal.price_per_unit.currency() == Currency::Eur
                    })
                    .map_or(0, |deal| {
                        let paid =
                            i128::from(-deal.price_per_unit.minor()) * i128::from(accepted_milli) / 1000;
                        i64::try_from(paid).unwrap_or(i64::MAX)
                    });
                let reference =
                    i128::from(accepted_kg) * i128::from(DISPOSAL_REFERENCE_CENTS_PER_TONNE) / 1000;
                let reference = i64::try_from(reference).unwrap_or(i64::MAX);
                avoided_cents = avoided_cents.saturating_add(reference.saturating_sub(paid_cents).max(0));
            }
        }
    }
    let public = audience == Audience::Public;
    let total_withheld = public && !total_parties.large_enough();
    // The families partition the total: a withheld row must not be the total less the others.
    let rows: Vec<(usize, Volumes, Parties)> =
        by_family.into_iter().map(|(index, (volumes, parties))| (index, volumes, parties)).collect();
    let row_withheld = if !public {
        vec![false; rows.len()]
    } else if total_withheld {
        vec![true; rows.len()]
    } else {
        let cells: Vec<(&Parties, i64)> =
            rows.iter().map(|(_, volumes, parties)| (parties, volumes.accepted_kg)).collect();
        withheld_cells(&cells, None)
    };
    let families: Vec<FamilyRow> = rows
        .into_iter()
        .zip(row_withheld)
        .map(|((index, volumes, _), withheld)| FamilyRow {
            family: MaterialFamily::ALL[index],
            volumes: if withheld { Volumes::default() } else { volumes },
            withheld,
        })
        .collect();
    // Pallets and water are the rows of their families, and as public as they are.
    let row_public = |family: MaterialFamily| {
        families.iter().find(|row| row.family == family).is_none_or(|row| !row.withheld)
    };
    let pallets_withheld = !row_public(MaterialFamily::Pallets);
    let water_withheld = !row_public(MaterialFamily::ProcessWater);
    // The distances partition the total too, and the cumulative shares give each increment
    // away: they are public only when every increment is.
    let distance_withheld = public
        && (total_withheld
            || increment_parties.iter().any(|parties| !parties.is_empty() && !parties.large_enough()));
    let mut within = [0i64; 3];
    let mut share_within_bp = [0u32; 3];
    if !distance_withheld {
        let mut cumulated = 0i64;
        for band in 0..DISTANCE_BANDS_KM.len() {
            cumulated = cumulated.saturating_add(increments[band]);
            within[band] = cumulated;
            if total.accepted_kg > 0 {
                let share = i128::from(cumulated) * 10_000 / i128::from(total.accepted_kg);
                share_within_bp[band] = u32::try_from(share).unwrap_or(10_000);
            }
        }
    }
    if public {
        // The units of the total are the families' again: only the rows say them.
        total.accepted_milli_by_unit.clear();
    }
    let flows_by_country = flows(facts, Some(territory), period, Level::Country, audience)
        .into_iter()
        .filter(|flow| flow.origin != flow.destination)
        .collect();
    let mut figures = Figures {
        territory: territory.code.clone(),
        territory_name: territory.name.clone(),
        period: period.label.clone(),
        families,
        total,
        total_withheld,
        accepted_kg_within: within,
        share_within_bp,
        distance_withheld,
        transport_km,
        transport_co2_kg,
        emission_factor_source: EMISSION_FACTOR.source,
        emission_factor_version: EMISSION_FACTOR.version,
        pallets_reused: if pallets_withheld { 0 } else { pallets_reused },
        pallets_withheld,
        water_reused_litres: if water_withheld { 0 } else { water_reused_litres },
        water_withheld,
        active_producers: producers.len() as u64,
        active_receivers: receivers.len() as u64,
        active_carriers: carriers.len() as u64,
        partnerships: pairs.len() as u64,
        cross_border_partnerships: pairs.values().filter(|crossed| **crossed).count() as u64,
        gate_fees_avoided_cents: avoided_cents,
        disposal_reference_source: DISPOSAL_REFERENCE_SOURCE,
        flows_by_country,
    };
    if total_withheld {
        // Every volume of the territory sums the same few parties.
        figures.total = Volumes::default();
        figures.transport_km = 0.0;
        figures.transport_co2_kg = 0.0;
        figures.gate_fees_avoided_cents = 0;
    }
    figures
}

/// How regions are named in a matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Country,
    /// Départements, Kreise, cantons, provinces (or the country, for a place in none).
    Region,
}

/// One cell of a matrix as it is summed.
#[derive(Default)]
struct Cell {
    volumes: Volumes,
    parties: Parties,
}

fn flow_of((origin, destination): (String, String), cell: Cell, withheld: bool) -> Flow {
    Flow {
        origin,
        destination,
        shipments: if withheld { 0 } else { cell.volumes.shipments },
        accepted_kg: if withheld { 0 } else { cell.volumes.accepted_kg },
        withheld,
    }
}

/// The origin-destination matrix of the deliveries of `period` with an end in `territory`
/// (every delivery when `None`), by country or region, border-crossing flows and the others.
///
/// For the public, the cells by country are withheld as a table's rows are (see
/// [`withheld_cells`]: the cells partition the deliveries); the cells by region are withheld
/// within their pair of countries, the public cell of a pair being their total, so the regions
/// never give away what the countries withhold, nor the other way round.
pub fn flows(
    facts: &Facts,
    territory: Option<&Territory>,
    period: &Period,
    level: Level,
    audience: Audience,
) -> Vec<Flow> {
    type Pair = (String, String);
    let mut by_region: BTreeMap<(Pair, Pair), Cell> = BTreeMap::new();
    for id in &facts.shipment_order {
        let Some(shipment) = facts.shipments.get(id) else { continue };
        let Some(delivered) = shipment.delivered else { continue };
        if !period.contains(delivered.at_ms) {
            continue;
        }
        let origin = shipment.origin();
        let destination = shipment.destination();
        if let Some(territory) = territory
            && !origin.is_in(territory)
            && !destination.is_in(territory)
        {
            continue;
        }
        let Some(deal) = facts.deals.get(&shipment.deal_id) else { continue };
        let countries = (origin.country.code().to_owned(), destination.country.code().to_owned());
        let regions = match level {
            Level::Country => (String::new(), String::new()),
            Level::Region => (origin.region().to_owned(), destination.region().to_owned()),
        };
        let cell = by_region.entry((countries, regions)).or_default();
        cell.volumes.add(deal.family, shipment);
        cell.parties.add(shipment);
    }
    let public = audience == Audience::Public;
    // The pairs of countries, each the sum of its regions' cells.
    let mut by_country: BTreeMap<Pair, Cell> = BTreeMap::new();
    for ((countries, _), cell) in &by_region {
        let sum = by_country.entry(countries.clone()).or_default();
        sum.volumes.shipments += cell.volumes.shipments;
        sum.volumes.accepted_kg = sum.volumes.accepted_kg.saturating_add(cell.volumes.accepted_kg);
        sum.parties.extend(&cell.parties);
    }
    let country_withheld: BTreeMap<Pair, bool> = if public {
        let cells: Vec<(&Parties, i64)> =
            by_country.values().map(|cell| (&cell.parties, cell.volumes.accepted_kg)).collect();
        by_country.keys().cloned().zip(withheld_cells(&cells, None)).collect()
    } else {
        by_country.keys().map(|countries| (countries.clone(), false)).collect()
    };
    if level == Level::Country {
        return by_country
            .into_iter()
            .map(|(countries, cell)| {
                let withheld = country_withheld.get(&countries).copied().unwrap_or(public);
                flow_of(countries, cell, withheld)
            })
            .collect();
    }
    let mut groups: BTreeMap<Pair, Vec<(Pair, Cell)>> = BTreeMap::new();
    for ((countries, regions), cell) in by_region {
        groups.entry(countries).or_default().push((regions, cell));
    }
    let mut cells = Vec::new();
    for (countries, group) in groups {
        let group_withheld = country_withheld.get(&countries).copied().unwrap_or(public);
        let withheld = if !public {
            vec![false; group.len()]
        } else if group_withheld {
            vec![true; group.len()]
        } else {
            let sizes: Vec<(&Parties, i64)> =
                group.iter().map(|(_, cell)| (&cell.parties, cell.volumes.accepted_kg)).collect();
            withheld_cells(&sizes, None)
        };
        for ((regions, cell), withheld) in group.into_iter().zip(withheld) {
            cells.push(flow_of(regions, cell, withheld));
        }
    }
    cells.sort_by(|one, other| (&one.origin, &one.destination).cmp(&(&other.origin, &other.destination)));
    cells
}

#[cfg(test)]
mod tests {
    //! A small marketplace with known deals across France, Germany and Switzerland, every
    //! expected figure computed by hand in the comments.

    use symbiose_domain::lot::{LegalStatus, Place};
    use symbiose_domain::{Country, GeoPoint, Money, Quantity};
    use symbiose_matching_contract::deal::{Deal, DealStatus};

    use super::*;
    use crate::areas::territory;
    use crate::facts::Delivered;

    fn at(town: &str) -> Place {
        let (lat, lon, country) = match town {
            "Strasbourg" => (48.5734, 7.7521, Country::Fr),
            "Kehl" => (48.5724, 7.8154, Country::De),
            "Offenburg" => (48.4729, 7.9408, Country::De),
            "Basel" => (47.5596, 7.5886, Country::Ch),
            "Mulhouse" => (47.7508, 7.3359, Country::Fr),
            other => panic!("no town {other} in the fixture"),
        };
        Place { point: GeoPoint::new(lat, lon).unwrap(), country }
    }

    /// An organization id that reads as its name in a failure.
    fn org(number: u128) -> Uuid {
        Uuid::from_u128(number)
    }

    /// Midnight plus `hours` on a day of 2026, Paris time in winter (UTC+1).
    fn day(month: i8, day: i8, hours: i64) -> i64 {
        let date = jiff::civil::Date::new(2026, month, day).unwrap();
        let utc = jiff::tz::TimeZone::UTC.to_ambiguous_timestamp(date.at(0, 0, 0, 0)).compatible().unwrap();
        utc.as_millisecond() - 3_600_000 + hours * 3_600_000
    }

    struct Lot {
        seller: u128,
        buyer: u128,
        from: &'static str,
        to: &'static str,
        family: MaterialFamily,
        unit: Unit,
        quantity: i64,
        accepted: i64,
        price_minor: i64,
        road_km: f64,
        co2_kg: f64,
        delivered_at_ms: i64,
    }

    /// Adds a deal and its delivered shipment.
    fn deliver(facts: &mut Facts, number: u128, lot: Lot) {
        let deal_id = Uuid::from_u128(1_000 + number);
        let shipment_id = Uuid::from_u128(2_000 + number);
        let quantity = Quantity::new(lot.quantity * 1000, lot.unit, false).unwrap();
        let deal = Deal {
            id: deal_id,
            proposal_id: Uuid::from_u128(3_000 + number),
            offer_id: Uuid::from_u128(4_000 + number),
            request_id: Uuid::from_u128(5_000 + number),
            seller: org(lot.seller),
            buyer: org(lot.buyer),
            family: lot.family,
            waste_code: None,
            legal_status: LegalStatus::Waste,
            quantity,
            price_per_unit: Money::new(lot.price_minor, Currency::Eur).unwrap(),
            pickup: at(lot.from),
            delivery: at(lot.to),
            distance_km: lot.road_km,
            documents: Vec::new(),
            agreed_at_ms: lot.delivered_at_ms - 86_400_000,
            status: DealStatus::Agreed,
        };
        facts.deals.insert(deal_id, deal);
        let received = Quantity::new(lot.quantity * 1000, lot.unit, true).unwrap();
        facts.shipments.insert(
            shipment_id,
            ShipmentFacts {
                shipment_id,
                deal_id,
                seller: org(lot.seller),
                buyer: org(lot.buyer),
                carrier: org(99),
                pickup: at(lot.from),
                delivery: at(lot.to),
                pickup_town: crate::areas::town_index_of(&at(lot.from)),
                delivery_town: crate::areas::town_index_of(&at(lot.to)),
                quantity,
                hazardous: false,
                prior_notification_number: None,
                road_distance_km: lot.road_km,
                co2_kg: lot.co2_kg,
                booked_at_ms: lot.delivered_at_ms - 3_600_000,
                picked_up: Some((received, lot.delivered_at_ms - 3_600_000)),
                pallets_picked_up: None,
                borders: Vec::new(),
                delivered: Some(Delivered {
                    received,
                    accepted_milli: lot.accepted * 1000,
                    refused_milli: (lot.quantity - lot.accepted) * 1000,
                    at_ms: lot.delivered_at_ms,
                }),
                closed: None,
            },
        );
        facts.shipment_order.push(shipment_id);
    }

    /// Producers 1, 2, 3 in Strasbourg, 4 in Basel; receivers 11 and 13 in Kehl, 12 in
    /// Offenburg, 14 in Mulhouse; one carrier.
    fn marketplace() -> Facts {
        let mut facts = Facts::default();
        let lot = |seller, buyer, from, to, family, unit, quantity, accepted, road_km, co2_kg| Lot {
            seller,
            buyer,
            from,
            to,
            family,
            unit,
            quantity,
            accepted,
            price_minor: 5_000,
            road_km,
            co2_kg,
            delivered_at_ms: day(3, 10, 12),
        };
        use MaterialFamily::*;
        // S1: 10 t of plastics, Strasbourg to Kehl, all accepted.
        deliver(&mut facts, 1, lot(1, 11, "Strasbourg", "Kehl", Plastics, Unit::Tonne, 10, 10, 6.0, 6.3));
        // S2: 20 t of plastics, Strasbourg to Offenburg, 18 t accepted.
        deliver(
            &mut facts,
            2,
            lot(2, 12, "Strasbourg", "Offenburg", Plastics, Unit::Tonne, 20, 18, 25.0, 52.5),
        );
        // S3: 400 EUR pallets (25 kg each: 10 t), Strasbourg to Kehl.
        deliver(&mut facts, 3, lot(3, 13, "Strasbourg", "Kehl", Pallets, Unit::Pallet, 400, 400, 8.0, 8.4));
        // S4: 5 t of metals, Basel to Mulhouse, with a gate fee of 20 EUR a tonne paid.
        let mut gate_fee = lot(4, 14, "Basel", "Mulhouse", Metals, Unit::Tonne, 5, 5, 40.0, 21.0);
        gate_fee.price_minor = -2_000;
        deliver(&mut facts, 4, gate_fee);
        // S5: 30 m3 of process water, Strasbourg to Kehl, in February.
        let mut water = lot(1, 11, "Strasbourg", "Kehl", ProcessWater, Unit::CubicMetre, 30, 30, 6.0, 18.9);
        water.delivered_at_ms = day(2, 20, 9);
        deliver(&mut facts, 5, water);
        // S6: 12 t of wood, Strasbourg to Mulhouse (within France), 120 km.
        deliver(&mut facts, 6, lot(2, 14, "Strasbourg", "Mulhouse", Wood, Unit::Tonne, 12, 12, 120.0, 151.2));
        facts
    }

    #[test]
    fn the_strasbourg_ortenau_figures_of_march_are_those_computed_by_hand() {
        let facts = marketplace();
        let ortenau = territory("strasbourg-ortenau").unwrap();
        let march = Period::parse("2026-03").unwrap();
        let figures = figures(&facts, ortenau, &march, Audience::Public);
        // S1, S2, S3 and S6 have an end in the Eurodistrict; S4 neither, S5 is February's.
        assert!(!figures.total_withheld, "3 producers (1, 2, 3) and 4 receivers");
        assert_eq!(figures.total.shipments, 4);
        // Delivered: 10 + 20 + 10 (400 x 25 kg) + 12 t; accepted: 10 + 18 + 10 + 12 t.
        assert_eq!(figures.total.delivered_kg, 52_000);
        assert_eq!(figures.total.accepted_kg, 50_000);
        // Within 50 km: S1, S2, S3 (38 t, three pairs); beyond 100 km S6 alone (12 t, one pair):
        // the shares would give it away, so they are withheld.
        assert!(figures.distance_withheld);
        assert_eq!((figures.accepted_kg_within, figures.share_within_bp), ([0; 3], [0; 3]));
        assert!((figures.transport_km - 159.0).abs() < 1e-9);
        assert!((figures.transport_co2_kg - 218.4).abs() < 1e-9);
        // The pallets are S3's alone: withheld with their row.
        assert_eq!((figures.pallets_reused, figures.pallets_withheld), (0, true));
        assert_eq!((figures.water_reused_litres, figures.water_withheld), (0, false));
        // Producers shipping from it: 1, 2, 3; receivers in it: 11, 12, 13 (14 is in Mulhouse).
        assert_eq!((figures.active_producers, figures.active_receivers, figures.active_carriers), (3, 3, 1));
        // Pairs: 1-11, 2-12, 3-13 across the Rhine, 2-14 within France.
        assert_eq!((figures.partnerships, figures.cross_border_partnerships), (4, 3));
        // 50 t at 65 EUR, no gate fee paid.
        assert_eq!(figures.gate_fees_avoided_cents, 325_000);
        // France to Germany: S1, S2, S3, from 3 producers to 3 receivers; but the rest of the
        // total, S6 within France, is one pair: France to Germany is withheld too, or the total
        // less it would be S6.
        assert_eq!(
            figures.flows_by_country,
            vec![Flow {
                origin: "FR".to_owned(),
                destination: "DE".to_owned(),
                shipments: 0,
                accepted_kg: 0,
                withheld: true
            }]
        );
        // Each family sums one or two producers: withheld, and shown as such.
        assert_eq!(figures.families.len(), 3);
        assert!(figures.families.iter().all(|row| row.withheld && row.volumes == Volumes::default()));
    }

    #[test]
    fn the_operator_reads_the_rows_the_public_does_not() {
        let facts = marketplace();
        let ortenau = territory("strasbourg-ortenau").unwrap();
        let march = Period::parse("2026-03").unwrap();
        let figures = figures(&facts, ortenau, &march, Audience::Operator);
        let row = |family| figures.families.iter().find(|row| row.family == family).unwrap();
        let plastics = row(MaterialFamily::Plastics);
        assert!(!plastics.withheld);
        assert_eq!(
            (plastics.volumes.shipments, plastics.volumes.delivered_kg, plastics.volumes.accepted_kg),
            (2, 30_000, 28_000)
        );
        assert_eq!(plastics.volumes.accepted_milli_by_unit.get("t"), Some(&28_000));
        let pallets = row(MaterialFamily::Pallets);
        assert_eq!(pallets.volumes.accepted_kg, 10_000);
        assert_eq!(pallets.volumes.accepted_milli_by_unit.values().sum::<i64>(), 400_000);
        assert_eq!(row(MaterialFamily::Wood).volumes.accepted_kg, 12_000);
    }

    #[test]
    fn a_territory_of_one_producer_shows_no_volume_to_the_public() {
        let facts = marketplace();
        let basel = territory("trinational-basel").unwrap();
        let march = Period::parse("2026-03").unwrap();
        let public = figures(&facts, basel, &march, Audience::Public);
        assert!(public.total_withheld);
        assert_eq!(public.total, Volumes::default());
        assert_eq!((public.transport_km, public.gate_fees_avoided_cents), (0.0, 0));
        assert!(public.flows_by_country.iter().all(|flow| flow.withheld && flow.accepted_kg == 0));
        // Counts of organizations stay public.
        assert_eq!(public.active_producers, 1);
        let operator = figures(&facts, basel, &march, Audience::Operator);
        assert_eq!(operator.total.accepted_kg, 5_000);
        // 5 t at 65 EUR (32,500 cents) less the 20 EUR a tonne paid (10,000 cents).
        assert_eq!(operator.gate_fees_avoided_cents, 22_500);
        assert_eq!(operator.flows_by_country[0].origin, "CH");
        assert_eq!(operator.flows_by_country[0].destination, "FR");
        assert_eq!((operator.pallets_reused, operator.distance_withheld), (0, false));
        assert_eq!(operator.accepted_kg_within, [5_000, 5_000, 5_000]);
        // February in the Eurodistrict: the water alone, of one producer.
        let february = figures(
            &facts,
            territory("strasbourg-ortenau").unwrap(),
            &Period::parse("2026-02").unwrap(),
            Audience::Operator,
        );
        assert_eq!(february.water_reused_litres, 30_000);
        assert_eq!(february.total.shipments, 1);
    }

    #[test]
    fn one_withheld_row_takes_the_smallest_other_with_it() {
        let mut facts = marketplace();
        // Three more lots of plastics and three of wood, each from other producers to other
        // receivers, make both families public in the Eurodistrict; pallets (one producer)
        // stay withheld, and so the smallest other row, wood (12 + 3 t), is withheld with it.
        let lots = [
            (7, 21, 31, MaterialFamily::Plastics),
            (8, 22, 32, MaterialFamily::Plastics),
            (9, 23, 33, MaterialFamily::Plastics),
            (10, 24, 34, MaterialFamily::Wood),
            (11, 25, 35, MaterialFamily::Wood),
            (12, 26, 36, MaterialFamily::Wood),
        ];
        for (number, seller, buyer, family) in lots {
            deliver(
                &mut facts,
                number,
                Lot {
                    seller,
                    buyer,
                    from: "Strasbourg",
                    to: "Kehl",
                    family,
                    unit: Unit::Tonne,
                    quantity: 1,
                    accepted: 1,
                    price_minor: 0,
                    road_km: 6.0,
                    co2_kg: 0.6,
                    delivered_at_ms: day(3, 12, 10),
                },
            );
        }
        let figures = figures(
            &facts,
            territory("strasbourg-ortenau").unwrap(),
            &Period::parse("2026-03").unwrap(),
            Audience::Public,
        );
        let withheld: Vec<MaterialFamily> =
            figures.families.iter().filter(|row| row.withheld).map(|row| row.family).collect();
        assert_eq!(withheld, vec![MaterialFamily::Pallets, MaterialFamily::Wood]);
        let plastics = figures.families.iter().find(|row| row.family == MaterialFamily::Plastics).unwrap();
        assert_eq!(plastics.volumes.accepted_kg, 31_000);
    }

    #[test]
    fn withheld_cells_join_until_they_sum_enough_parties() {
        let parties = |producers: &[u128], receivers: &[u128]| Parties {
            producers: producers.iter().map(|number| org(*number)).collect(),
            receivers: receivers.iter().map(|number| org(*number)).collect(),
        };
        let big = parties(&[1, 2, 3], &[11, 12, 13]);
        let other = parties(&[4, 5, 6], &[14, 15, 16]);
        let one = parties(&[7], &[17]);
        let two = parties(&[8, 9], &[18, 19]);
        // Nothing withheld: nothing to protect.
        assert_eq!(withheld_cells(&[(&big, 10), (&other, 5)], None), [false, false]);
        // One small cell: the smallest public one joins it.
        assert_eq!(withheld_cells(&[(&big, 10), (&other, 5), (&one, 1)], None), [false, true, true]);
        // Two small cells that together sum three of each: enough.
        assert_eq!(withheld_cells(&[(&big, 10), (&one, 1), (&two, 2)], None), [false, true, true]);
        // No small cell, but a small rest of the total no cell shows.
        assert_eq!(withheld_cells(&[(&big, 10), (&other, 5)], Some(&one)), [false, true]);
    }

    #[test]
    fn the_matrix_by_region_names_departements_and_kreise() {
        let facts = marketplace();
        let march = Period::parse("2026-03").unwrap();
        let cells = flows(&facts, None, &march, Level::Region, Audience::Operator);
        let pairs: Vec<(&str, &str, u64, i64)> = cells
            .iter()
            .map(|flow| (flow.origin.as_str(), flow.destination.as_str(), flow.shipments, flow.accepted_kg))
            .collect();
        assert_eq!(
            pairs,
            vec![
                ("CH-BS", "FR-68", 1, 5_000),
                ("FR-67", "DE-08317", 3, 38_000),
                ("FR-67", "FR-68", 1, 12_000),
            ]
        );
        // For the public, Switzerland to France and France to France are one pair each; with
        // France to Germany public, the total of March less it would be theirs: all withheld.
        let public = flows(&facts, None, &march, Level::Country, Audience::Public);
        assert_eq!(public.len(), 3);
        assert!(public.iter().all(|flow| flow.withheld && flow.accepted_kg == 0), "{public:?}");
    }
}
