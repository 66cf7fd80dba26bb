//! The time to compute a territory's year: a read model of `--deliveries` delivered shipments
//! over one year between the towns of the territories' table (random families, quantities and
//! parties, a fixed seed), then the figures of a Eurodistrict, a département and a country, and
//! the flows by region, each timed `--runs` times, against a bare pass over the same shipments
//! summing what was accepted (the baseline, measured in the same run).

use std::time::Instant;

use symbiose_domain::lot::{LegalStatus, Place};
use symbiose_domain::{Currency, GeoPoint, MaterialFamily, Money, Quantity, Unit};
use symbiose_matching_contract::deal::{Deal, DealStatus};
use symbiose_territory::areas::{self, territory};
use symbiose_territory::facts::{Delivered, Facts, ShipmentFacts};
use symbiose_territory::figures::{self, Audience, Level};
use symbiose_territory::period::Period;
use uuid::Uuid;

/// A xorshift generator: the same marketplace every run.
struct Seeded(u64);

impl Seeded {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }
}

fn argument(name: &str, default: usize) -> usize {
    let arguments: Vec<String> = std::env::args().collect();
    arguments
        .iter()
        .position(|argument| argument == name)
        .and_then(|index| arguments.get(index + 1))
        .map_or(default, |value| value.parse().unwrap_or_else(|_| panic!("{name}: a number")))
}

fn marketplace(deliveries: usize, organizations: u64, year: &Period) -> Facts {
    let mut random = Seeded(0x5eed_2026);
    let towns = areas::towns();
    let mut facts = Facts::default();
    let span = (year.to_ms - year.from_ms) as u64;
    for number in 0..deliveries as u128 {
        let from = &towns[random.below(towns.len() as u64) as usize];
        let to = &towns[random.below(towns.len() as u64) as usize];
        let family = MaterialFamily::ALL[random.below(9) as usize];
        let unit = match family {
            MaterialFamily::Pallets => Unit::Pallet,
            MaterialFamily::ProcessWater => Unit::CubicMetre,
            _ => Unit::Tonne,
        };
        let quantity = Quantity::new(1_000 * (1 + random.below(40) as i64), unit, true).expect("a quantity");
        let at = |town: &areas::Town| Place {
            point: GeoPoint::new(town.point.latitude(), town.point.longitude()).expect("a point"),
            country: town.country,
        };
        let deal_id = Uuid::from_u128(number << 1);
        let shipment_id = Uuid::from_u128((number << 1) | 1);
        let seller = Uuid::from_u128(u128::from(random.below(organizations)) + 1);
        let buyer = Uuid::from_u128(u128::from(random.below(organizations)) + 1);
        let distance_km = from.point.distance_km(&to.point) * 1.3;
        let delivered_at_ms = year.from_ms + random.below(span) as i64;
        facts.deals.insert(
            deal_id,
            Deal {
                id: deal_id,
                proposal_id: deal_id,
                offer_id: deal_id,
                request_id: deal_id,
                seller,
                buyer,
                family,
                waste_code: None,
                legal_status: LegalStatus::Waste,
                quantity,
                price_per_unit: Money::new(random.below(10_000) as i64 - 2_000, Currency::Eur)
                    .expect("a price"),
                pickup: at(from),
                delivery: at(to),
                distance_km,
                documents: Vec::new(),
                agreed_at_ms: delivered_at_ms - 86_400_000,
                status: DealStatus::Agreed,
            },
        );
        facts.shipments.insert(
            shipment_id,
            ShipmentFacts {
                shipment_id,
                deal_id,
                seller,
                buyer,
                carrier: Uuid::from_u128(u128::from(random.below(50)) + 1_000_000),
                pickup: at(from),
                delivery: at(to),
                pickup_town: areas::town_index_of(&at(from)),
                delivery_town: areas::town_index_of(&at(to)),
                quantity,
                hazardous: false,
                prior_notification_number: None,
                road_distance_km: distance_km,
                co2_kg: distance_km * quantity.amount_milli() as f64 / 1e3 * 0.105,
                booked_at_ms: delivered_at_ms - 7_200_000,
                picked_up: Some((quantity, delivered_at_ms - 3_600_000)),
                pallets_picked_up: None,
                borders: Vec::new(),
                delivered: Some(Delivered {
                    received: quantity,
                    accepted_milli: quantity.amount_milli(),
                    refused_milli: 0,
                    at_ms: delivered_at_ms,
                }),
                closed: None,
            },
        );
        facts.shipment_order.push(shipment_id);
    }
    facts
}

fn main() {
    let deliveries = argument("--deliveries", 200_000);
    let runs = argument("--runs", 5);
    let year = Period::parse("2026").expect("a year");
    let started = Instant::now();
    let facts = marketplace(deliveries, 2_000, &year);
    println!(
        "read model: {deliveries} delivered shipments over 2026 in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    for run in 1..=runs {
        let started = Instant::now();
        let mut accepted = 0i64;
        for id in &facts.shipment_order {
            if let Some(shipment) = facts.shipments.get(id)
                && shipment.delivered.is_some_and(|delivered| year.contains(delivered.at_ms))
            {
                accepted += shipment.accepted_milli();
            }
        }
        let baseline = started.elapsed().as_secs_f64();
        std::hint::black_box(accepted);
        let mut line =
            format!("run {run}: baseline (a bare pass over the shipments) {:.1} ms", baseline * 1e3);
        for code in ["strasbourg-ortenau", "FR-67", "FR"] {
            let started = Instant::now();
            let figures =
                figures::figures(&facts, territory(code).expect("a territory"), &year, Audience::Public);
            let took = started.elapsed().as_secs_f64();
            std::hint::black_box(&figures);
            line.push_str(&format!(
                "; {code} year: {:.1} ms ({} deliveries, ratio {:.1})",
                took * 1e3,
                figures.total.shipments,
                took / baseline
            ));
        }
        let started = Instant::now();
        let cells = figures::flows(&facts, None, &year, Level::Region, Audience::Public);
        let took = started.elapsed().as_secs_f64();
        line.push_str(&format!(
            "; flows by region: {:.1} ms ({} cells, ratio {:.1})",
            took * 1e3,
            cells.len(),
            took / baseline
        ));
        println!("{line}");
    }
}
