//! matching-bench: how fast the match index is built, and how fast it finds the best
//! counterparts of a new listing, with many open listings.
//!
//! It builds a `MatchIndex` of `--listings` open offers and requests (half each, families
//! weighted toward pallets and packaging, at the towns of the reference table jittered by up to
//! 0.3 degrees, random grades, quantities, prices, windows, delivery terms and distances, a
//! fixed seed), with treatment permits for half the organizations; then times `find` (best 10)
//! for `--queries` new listings at random towns, one by one, and, over the same trees and the
//! same listings, a plain nearest 10 with no rule (the baseline). Last, it times `upsert` and
//! `remove` of single candidates, and `consolidate` for indexed requests.
//!
//! `cargo run --release -p symbiose-matching --bin matching-bench -- --listings 1000000 --queries 10000`

use std::time::{Duration, Instant};

use anyhow::Context as _;
use symbiose_domain::lot::{DataQuality, LegalStatus, Place, PlasticForm, Polymer, Quality};
use symbiose_domain::{Country, Currency, GeoPoint, MaterialFamily, Money, PalletGrade, WasteCode, geo};
use symbiose_listings_contract::listing::{Delivery, REQUEST_DISTANCE_KM_DEFAULT, Side};
use symbiose_listings_contract::organization::{Permit, PermitKind};
use symbiose_matching::{Candidate, MatchIndex};
use uuid::Uuid;

/// Largest jitter around a town, in degrees.
const JITTER_DEGREES: f64 = 0.3;
/// Matches asked of each `find`.
const MATCHES_ASKED: usize = 10;
/// Organizations the listings belong to.
const ORGANIZATIONS: u64 = 100_000;
/// The benchmark's clock, a fixed instant.
const NOW_MS: i64 = 1_790_000_000_000;
const DAY_MS: i64 = 86_400_000;
/// Families and their weights (in percent) among the listings.
const FAMILIES: [(MaterialFamily, u64); 9] = [
    (MaterialFamily::Pallets, 40),
    (MaterialFamily::Packaging, 25),
    (MaterialFamily::Plastics, 7),
    (MaterialFamily::Metals, 7),
    (MaterialFamily::Solvents, 5),
    (MaterialFamily::Wood, 6),
    (MaterialFamily::Compost, 4),
    (MaterialFamily::Aggregates, 4),
    (MaterialFamily::ProcessWater, 2),
];

#[derive(Debug)]
struct Arguments {
    listings: u64,
    queries: usize,
}

fn arguments() -> anyhow::Result<Arguments> {
    let mut arguments = Arguments { listings: 1_000_000, queries: 10_000 };
    let mut words = std::env::args().skip(1);
    while let Some(word) = words.next() {
        let value = words.next().with_context(|| format!("{word} needs a value"))?;
        match word.as_str() {
            "--listings" => arguments.listings = value.parse().context("--listings")?,
            "--queries" => arguments.queries = value.parse().context("--queries")?,
            other => anyhow::bail!("unknown argument {other}: expected --listings N, --queries N"),
        }
    }
    Ok(arguments)
}

/// A small deterministic generator (xorshift64*), so runs are comparable.
#[derive(Debug)]
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound.max(1)
    }

    fn between(&mut self, low: i64, high: i64) -> i64 {
        low + self.below((high - low + 1) as u64) as i64
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

fn family(random: &mut Random) -> MaterialFamily {
    let mut roll = random.below(100);
    for (family, weight) in FAMILIES {
        if roll < weight {
            return family;
        }
        roll -= weight;
    }
    MaterialFamily::Pallets
}

fn quality(random: &mut Random, family: MaterialFamily, side: Side) -> Quality {
    match family {
        MaterialFamily::Pallets => {
            let grades =
                [PalletGrade::New, PalletGrade::A, PalletGrade::B, PalletGrade::C, PalletGrade::Unsorted];
            if side == Side::Request && random.chance(20) {
                Quality::Unspecified
            } else {
                Quality::PalletGrade(random.pick(&grades))
            }
        }
        MaterialFamily::Plastics => Quality::Plastic {
            polymer: random.pick(&[Polymer::Pet, Polymer::Hdpe, Polymer::Pp, Polymer::Ldpe]),
            form: random.pick(&[PlasticForm::Flakes, PlasticForm::Pellets]),
        },
        _ if random.chance(50) => Quality::Unspecified,
        _ => Quality::Specification {
            text: "as analysed".into(),
            data_quality: random.pick(&[
                None,
                Some(DataQuality::Declared),
                Some(DataQuality::Analysed),
                Some(DataQuality::Certified),
            ]),
        },
    }
}

fn candidate(random: &mut Random, id: Uuid, position: u64) -> anyhow::Result<Candidate> {
    let town = random.pick(geo::places());
    let mut jitter = || (random.unit() * 2.0 - 1.0) * JITTER_DEGREES;
    let point = GeoPoint::new(
        (town.point.latitude() + jitter()).clamp(-90.0, 90.0),
        (town.point.longitude() + jitter()).clamp(-180.0, 180.0),
    )?;
    let side = if random.chance(50) { Side::Offer } else { Side::Request };
    let family = family(random);
    let units = family.units();
    let unit = if random.chance(75) { units[0] } else { random.pick(units) };
    let codes = family.typical_waste_codes();
    let waste_code = if side == Side::Request && random.chance(30) {
        None
    } else {
        Some(WasteCode::parse(random.pick(codes))?)
    };
    let legal_status = if waste_code.is_none() || random.chance(70) {
        LegalStatus::Waste
    } else {
        random.pick(&[LegalStatus::ByProduct, LegalStatus::EndOfWaste, LegalStatus::ProductForReuse])
    };
    let (legal_status, waste_code) = match (legal_status, waste_code) {
        (LegalStatus::Waste, None) if side == Side::Offer => (LegalStatus::ByProduct, None),
        other => other,
    };
    let available_milli = random.between(1, 200) * 1000;
    let minimum_lot_milli = if random.chance(50) { 0 } else { random.between(0, available_milli / 5) };
    let available_from_ms = NOW_MS + random.between(-10, 20) * DAY_MS;
    let available_until_ms = available_from_ms + random.between(30, 90) * DAY_MS;
    let currency = if town.country == Country::Ch { Currency::Chf } else { Currency::Eur };
    let price_minor = match side {
        Side::Offer if random.chance(10) => random.between(-500, 0),
        Side::Offer => random.between(100, 600),
        Side::Request => random.between(200, 800),
    };
    let delivery = match random.below(100) {
        0..70 => Delivery::BuyerCollects,
        70..85 => Delivery::SellerDelivers { within_km: random.between(20, 150) as u32 },
        _ => Delivery::Either { seller_within_km: random.between(20, 150) as u32 },
    };
    let max_distance_km =
        if random.chance(50) { REQUEST_DISTANCE_KM_DEFAULT } else { random.between(50, 300) as u32 };
    Ok(Candidate {
        id,
        owner: Uuid::from_u64_pair(0, random.below(ORGANIZATIONS)),
        side,
        family,
        waste_code,
        accepted_waste_codes: Vec::new(),
        legal_status,
        quality: quality(random, family, side),
        available_milli,
        unit,
        minimum_lot_milli,
        available_from_ms,
        available_until_ms,
        place: Place { point, country: town.country },
        price_per_unit: Money::new(price_minor, currency)?,
        delivery,
        max_distance_km,
        accepts_other_countries: random.chance(70),
        published_position: position,
    })
}

/// A treatment permit for every hazardous code of every family.
fn permit() -> anyhow::Result<Permit> {
    let mut codes = Vec::new();
    for (family, _) in FAMILIES {
        for text in family.typical_waste_codes() {
            let code = WasteCode::parse(text)?;
            if code.is_hazardous() {
                codes.push(code);
            }
        }
    }
    Ok(Permit {
        permit_id: Uuid::nil(),
        kind: PermitKind::Treatment,
        number: "bench".into(),
        issued_by: "bench".into(),
        valid_until_ms: NOW_MS + 365 * DAY_MS,
        accepted_waste_codes: codes,
        hazardous_accepted: true,
        dangerous_goods_allowed: false,
    })
}

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn milliseconds(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

/// p50, p99 and max of `latencies`, sorted in place.
fn summary(latencies: &mut [Duration]) -> (Duration, String) {
    latencies.sort();
    let p99 = percentile(latencies, 0.99);
    let text = format!(
        "p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        milliseconds(percentile(latencies, 0.50)),
        milliseconds(p99),
        milliseconds(latencies.last().copied().unwrap_or_default()),
    );
    (p99, text)
}

fn main() -> anyhow::Result<()> {
    let arguments = arguments()?;
    let mut random = Random(0x5eed_cafe_f00d_0003);

    let started = Instant::now();
    let mut candidates = Vec::with_capacity(usize::try_from(arguments.listings)?);
    for position in 0..arguments.listings {
        candidates.push(candidate(&mut random, Uuid::from_u64_pair(1, position), position)?);
    }
    let generated = started.elapsed();
    let request_ids: Vec<Uuid> =
        candidates.iter().filter(|candidate| candidate.side == Side::Request).map(|c| c.id).collect();
    let started = Instant::now();
    let mut index = MatchIndex::bulk_load(candidates);
    let built = started.elapsed();
    let permit = permit()?;
    for organization in (0..ORGANIZATIONS).step_by(2) {
        index.set_permits(Uuid::from_u64_pair(0, organization), vec![permit.clone()]);
    }
    println!(
        "build (bulk load): {} open listings in {:.2} s = {:.0} listings/s (generated in {:.2} s)",
        index.len(),
        built.as_secs_f64(),
        index.len() as f64 / built.as_secs_f64(),
        generated.as_secs_f64()
    );

    let mut random = Random(0x0bad_5eed_0000_0004);
    let queries: Vec<Candidate> = (0..arguments.queries)
        .map(|n| candidate(&mut random, Uuid::from_u64_pair(2, n as u64), arguments.listings + n as u64))
        .collect::<anyhow::Result<_>>()?;

    let mut latencies = Vec::with_capacity(queries.len());
    let mut found = 0usize;
    for query in &queries {
        let started = Instant::now();
        let matches = index.find(query, MATCHES_ASKED, NOW_MS);
        latencies.push(started.elapsed());
        found += matches.len();
    }
    let (find_p99, find) = summary(&mut latencies);
    println!(
        "find, best {MATCHES_ASKED} compatible, every rule: {find} ({} queries, {:.1} matches on average)",
        queries.len(),
        found as f64 / queries.len().max(1) as f64
    );

    let mut latencies = Vec::with_capacity(queries.len());
    let mut found = 0usize;
    for query in &queries {
        let started = Instant::now();
        let nearest = index.nearest(query, MATCHES_ASKED);
        latencies.push(started.elapsed());
        found += nearest.len();
    }
    let (nearest_p99, nearest) = summary(&mut latencies);
    println!(
        "baseline, nearest {MATCHES_ASKED}, same trees, no rule: {nearest} ({} queries, {:.1} hits on average)",
        queries.len(),
        found as f64 / queries.len().max(1) as f64
    );
    println!(
        "find p99 / baseline p99: {:.1}",
        find_p99.as_secs_f64() / nearest_p99.as_secs_f64().max(f64::MIN_POSITIVE)
    );

    let mut inserts = Vec::with_capacity(queries.len());
    let mut removals = Vec::with_capacity(queries.len());
    for query in &queries {
        let started = Instant::now();
        index.upsert(query.clone());
        inserts.push(started.elapsed());
    }
    for query in &queries {
        let started = Instant::now();
        index.remove(query.id);
        removals.push(started.elapsed());
    }
    println!(
        "upsert of a new listing: {}; remove: {} ({} each)",
        summary(&mut inserts).1,
        summary(&mut removals).1,
        queries.len()
    );

    let mut latencies = Vec::with_capacity(queries.len());
    let mut loads = 0usize;
    for _ in 0..queries.len() {
        let id = request_ids[random.below(request_ids.len() as u64) as usize];
        let started = Instant::now();
        let load = index.consolidate(id, NOW_MS);
        latencies.push(started.elapsed());
        loads += usize::from(load.is_some());
    }
    println!(
        "consolidate an indexed request: {} ({} requests, {} loads proposed)",
        summary(&mut latencies).1,
        latencies.len(),
        loads
    );
    Ok(())
}
