//! The `Stored*` messages were split from the API messages field for field: every event written
//! before the split decodes the same. Each API message, filled in every field, encoded, decoded
//! as its stored twin and encoded again gives the same bytes, and back.

use prost::Message;
use prost_types::Timestamp;
use symbiose_proto::common::v1 as common;
use symbiose_proto::listings::v1 as listings;
use symbiose_proto::logistics::v1 as pb;
use symbiose_proto::matching::v1 as matching;

#[track_caller]
fn same_bytes<Api: Message + Default + PartialEq + std::fmt::Debug, Stored: Message + Default>(api: &Api) {
    let bytes = api.encode_to_vec();
    let stored = Stored::decode(bytes.as_slice()).expect("decodes as the stored message");
    assert_eq!(stored.encode_to_vec(), bytes, "stored form differs");
    assert_eq!(&Api::decode(stored.encode_to_vec().as_slice()).expect("decodes back"), api);
}

fn money(minor: i64) -> Option<common::Money> {
    Some(common::Money { amount_minor: minor, currency_code: "EUR".into() })
}

fn point() -> Option<common::GeoPoint> {
    Some(common::GeoPoint { latitude: 48.5734, longitude: 7.7521 })
}

fn depot() -> pb::Depot {
    pb::Depot {
        depot_id: "0191b4a8-3f5e-7c2a-9d10-000000000011".into(),
        name: "Strasbourg".into(),
        location: point(),
        country: common::Country::France.into(),
    }
}

fn vehicle() -> pb::Vehicle {
    pb::Vehicle {
        vehicle_id: "0191b4a8-3f5e-7c2a-9d10-000000000012".into(),
        name: "Porteur 19 t".into(),
        payload_kg: 10_000,
        pallet_places: 18,
        tail_lift: true,
        dangerous_goods: true,
    }
}

fn rates() -> pb::Rates {
    pb::Rates {
        per_km_minor: 150,
        per_tonne_minor: 900,
        minimum_charge_minor: 12_000,
        currency_code: "EUR".into(),
    }
}

fn factor() -> pb::EmissionFactor {
    pb::EmissionFactor {
        kg_co2e_per_tonne_km: 0.105,
        source: "ADEME".into(),
        version: "symbiose-road-freight-2025.1".into(),
        scope: "well to wheel".into(),
    }
}

fn quote() -> pb::Quote {
    pb::Quote {
        quote_id: "0191b4a8-3f5e-7c2a-9d10-000000000013".into(),
        deal_id: "0191b4a8-3f5e-7c2a-9d10-000000000014".into(),
        carrier_organization_id: "0191b4a8-3f5e-7c2a-9d10-000000000015".into(),
        vehicle: "Porteur 19 t".into(),
        price: money(45_000),
        road_distance_km: 6.1,
        duration_minutes: 67,
        co2_kg: 1.5,
        emission_factor: Some(factor()),
        expires_at: Some(Timestamp { seconds: 1_764_633_600, nanos: 5_000_000 }),
        automatic: true,
        chargeable_mass_kg: 1_000,
    }
}

#[test]
fn a_carrier_profile_is_stored_as_the_api_wrote_it() {
    same_bytes::<_, pb::StoredDepot>(&depot());
    same_bytes::<_, pb::StoredVehicle>(&vehicle());
    same_bytes::<_, pb::StoredRates>(&rates());
    same_bytes::<_, pb::StoredCarrierProfile>(&pb::CarrierProfile {
        carrier_organization_id: "0191b4a8-3f5e-7c2a-9d10-000000000015".into(),
        depots: vec![depot(), depot()],
        countries: vec![common::Country::France.into(), common::Country::Germany.into()],
        radius_km: 300,
        vehicles: vec![vehicle(), vehicle()],
        rates: Some(rates()),
        pallet_exchange: true,
    });
}

#[test]
fn a_quote_and_pallets_are_stored_as_the_api_wrote_them() {
    same_bytes::<_, pb::StoredEmissionFactor>(&factor());
    same_bytes::<_, pb::StoredQuote>(&quote());
    same_bytes::<_, pb::StoredPalletExchange>(&pb::PalletExchange {
        grade: listings::PalletGrade::A.into(),
        handed_over: 12,
        taken_back: 30,
    });
}

#[test]
fn a_deal_stored_as_matching_s_api_wrote_it_reads_the_same_but_for_the_api_s_own_fields() {
    // `TransportRequested` held the API's `Deal` until the contracts; it now holds matching's
    // `StoredDeal`, which keeps every field by number but the state, the cancellation and the
    // version (always agreed, empty, empty and 0 when a transport was requested).
    let api = matching::Deal {
        deal_id: "0191b4a8-3f5e-7c2a-9d10-000000000014".into(),
        proposal_id: "0191b4a8-3f5e-7c2a-9d10-000000000016".into(),
        offer_id: "0191b4a8-3f5e-7c2a-9d10-000000000017".into(),
        request_id: "0191b4a8-3f5e-7c2a-9d10-000000000018".into(),
        seller_organization_id: "0191b4a8-3f5e-7c2a-9d10-000000000019".into(),
        buyer_organization_id: "0191b4a8-3f5e-7c2a-9d10-00000000001a".into(),
        material_family: common::MaterialFamily::Pallets.into(),
        waste_code: Some(common::WasteCode { code: "15 01 03".into(), hazardous: true }),
        legal_status: listings::LegalStatus::Waste.into(),
        quantity: Some(common::Quantity {
            amount_milli: 40_000,
            unit: common::Unit::Pallet.into(),
            basis: 1,
        }),
        price_per_unit: money(350),
        total: money(14_000),
        pickup: point(),
        pickup_country: common::Country::France.into(),
        delivery: point(),
        delivery_country: common::Country::Germany.into(),
        distance_km: 4.7,
        required_documents: vec![
            matching::RequiredDocument::AnnexVii.into(),
            matching::RequiredDocument::PriorNotification.into(),
        ],
        reservation_id: "0191b4a8-3f5e-7c2a-9d10-000000000014".into(),
        state: matching::DealState::Agreed.into(),
        cancelled_by: String::new(),
        cancel_reason: String::new(),
        agreed_at: Some(Timestamp { seconds: 1_764_633_000, nanos: 0 }),
        version: 0,
    };
    let stored =
        matching::StoredDeal::decode(api.encode_to_vec().as_slice()).expect("decodes as the stored deal");
    let back = matching::Deal::decode(stored.encode_to_vec().as_slice()).expect("decodes back");
    assert_eq!(back, matching::Deal { state: 0, ..api });
}
