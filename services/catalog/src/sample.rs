//! Sample offers for benchmarks: EUR pallets at towns of the reference table jittered by up to
//! 0.3 degrees, of random grades, quantities and prices, in the stored form the listings
//! service writes (a `ListingCreated` and a `ListingPublished` each). The generator is
//! deterministic, so runs are comparable.

use prost::Message as _;
use symbiose_domain::{GeoPoint, MaterialFamily, geo};
use symbiose_eventstore::{EventData, StreamName};
use symbiose_proto::common::v1 as common;
use symbiose_proto::listings::v1 as pb;
use uuid::Uuid;

/// The seed the benchmarks fill their logs with.
pub const OFFERS_SEED: u64 = 0x5eed_cafe_f00d_0001;
/// Largest jitter around a town, in degrees.
const JITTER_DEGREES: f64 = 0.3;

/// A new offer, published, valid from `now_s` for 30 days: its stream and its two events.
pub fn offer(random: &mut Random, now_s: i64) -> (StreamName, Vec<EventData>) {
    let id = Uuid::now_v7();
    let (created, published) = encoded_offer(id, random, now_s);
    let stream = StreamName::for_aggregate("listing", id).expect("a uuid makes a valid stream name");
    let events = vec![
        EventData::new(Uuid::now_v7(), "symbiose.listings.v1.ListingCreated", created),
        EventData::new(Uuid::now_v7(), "symbiose.listings.v1.ListingPublished", published),
    ];
    (stream, events)
}

/// A small deterministic generator (xorshift64*), so runs are comparable.
#[derive(Debug)]
pub struct Random(u64);

impl Random {
    /// A generator from `seed` (not 0).
    pub fn new(seed: u64) -> Random {
        Random(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// In [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// In [0, `bound`).
    pub fn below(&mut self, bound: usize) -> usize {
        (self.next_u64() % bound as u64) as usize
    }
}

fn timestamp(seconds: i64) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds, nanos: 0 }
}

fn encoded_offer(listing_id: Uuid, random: &mut Random, now_s: i64) -> (Vec<u8>, Vec<u8>) {
    let town = &geo::places()[random.below(geo::places().len())];
    let jitter = |random: &mut Random| (random.unit() * 2.0 - 1.0) * JITTER_DEGREES;
    let point = GeoPoint::new(
        (town.point.latitude() + jitter(random)).clamp(-90.0, 90.0),
        (town.point.longitude() + jitter(random)).clamp(-180.0, 180.0),
    )
    .expect("a point near a town");
    let grades = [
        pb::PalletGrade::New,
        pb::PalletGrade::A,
        pb::PalletGrade::B,
        pb::PalletGrade::C,
        pb::PalletGrade::Unsorted,
    ];
    let grade = grades[random.below(grades.len())];
    let pallets = |count: i64| common::Quantity {
        amount_milli: count * 1000,
        unit: common::Unit::Pallet.into(),
        basis: common::QuantityBasis::Estimated.into(),
    };
    let terms = pb::StoredListingTerms {
        side: pb::ListingSide::Offer.into(),
        family: common::MaterialFamily::from(MaterialFamily::Pallets).into(),
        waste_code: "150103".into(),
        legal_status: pb::LegalStatus::Waste.into(),
        description: "EUR/EPAL 1200x800".into(),
        quality: Some(pb::StoredQuality { kind: Some(pb::stored_quality::Kind::PalletGrade(grade.into())) }),
        quantity: Some(pallets(1 + random.below(200) as i64)),
        minimum_lot: Some(pallets(1)),
        recurrence: None,
        site_id: Uuid::now_v7().to_string(),
        location: None,
        available_from: Some(timestamp(now_s)),
        available_until: Some(timestamp(now_s + 30 * 86_400)),
        price_per_unit: Some(common::Money {
            amount_minor: 100 + random.below(500) as i64,
            currency_code: "EUR".into(),
        }),
        delivery: Some(pb::StoredDeliveryTerms {
            mode: pb::DeliveryMode::BuyerCollects.into(),
            seller_delivery_km: 0,
        }),
        max_distance_km: 0,
        accepts_other_countries: true,
        attachments: vec![],
        expires_at: Some(timestamp(now_s + 60 * 86_400)),
    };
    let created = pb::ListingCreated {
        listing_id: listing_id.to_string(),
        owner_organization_id: Uuid::nil().to_string(),
        terms: Some(terms),
        country: common::Country::from(town.country).into(),
        point: Some(point.into()),
    };
    let published = pb::ListingPublished { listing_id: listing_id.to_string() };
    (created.encode_to_vec(), published.encode_to_vec())
}
