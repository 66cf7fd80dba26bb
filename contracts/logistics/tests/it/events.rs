//! Every typed event of logistics reads back as written, and other contexts read the facts they
//! act on.

use std::collections::BTreeSet;

use symbiose_domain::lot::{LegalStatus, Place};
use symbiose_domain::{
    Country, Currency, GeoPoint, MaterialFamily, Money, PalletGrade, Quantity, Unit, WasteCode,
};
use symbiose_logistics_contract::carrier::{self, Depot, Profile, Rates, Vehicle};
use symbiose_logistics_contract::pallets::{self, SettleBy, Settlement};
use symbiose_logistics_contract::shipment::{
    self, BorderCrossing, Delivery, PalletExchange, Pickup, StoredShipmentEvent, Transport,
};
use symbiose_logistics_contract::transport::{self, OfferedQuote};
use symbiose_matching_contract::deal::{Deal, DealStatus, RequiredDocument};
use uuid::Uuid;

fn eur(minor: i64) -> Money {
    Money::new(minor, Currency::Eur).expect("money")
}

fn place(latitude: f64, longitude: f64, country: Country) -> Place {
    Place { point: GeoPoint::new(latitude, longitude).expect("a point"), country }
}

fn pallets(count: i64) -> Quantity {
    Quantity::new(count * 1000, Unit::Pallet, true).expect("a quantity")
}

fn quote(deal_id: Uuid) -> OfferedQuote {
    OfferedQuote {
        id: Uuid::now_v7(),
        deal_id,
        carrier: Uuid::now_v7(),
        vehicle: "Porteur 19 t".into(),
        price: eur(45_000),
        road_distance_km: 6.1,
        duration_minutes: 67,
        chargeable_mass_kg: 1_000,
        co2_kg: 0.64,
        expires_at_ms: 1_764_633_600_000,
        automatic: true,
    }
}

#[test]
fn carrier_events_read_back_as_written() {
    let organization = Uuid::now_v7();
    let profile = Profile {
        depots: vec![Depot {
            id: Uuid::now_v7(),
            name: "Strasbourg".into(),
            point: place(48.5734, 7.7521, Country::Fr).point,
            country: Country::Fr,
        }],
        countries: BTreeSet::from([Country::Fr, Country::De]),
        service_radius_km: 300,
        vehicles: vec![Vehicle {
            id: Uuid::now_v7(),
            name: "Porteur 19 t".into(),
            payload_kg: 10_000,
            pallet_places: 18,
            tail_lift: true,
            dangerous_goods: false,
        }],
        rates: Rates {
            per_km_minor: 150,
            per_tonne_minor: 900,
            minimum_minor: 12_000,
            currency: Currency::Eur,
        },
        takes_pallet_exchange: true,
    };
    for event in [
        carrier::Event::Registered { organization, profile: profile.clone(), at_ms: 1 },
        carrier::Event::Updated { profile, at_ms: 2 },
    ] {
        let (event_type, payload) = carrier::encode(organization, &event);
        assert_eq!(carrier::decode(event_type, &payload), Ok(event));
    }
}

#[test]
fn a_depot_or_vehicle_stored_without_its_id_gets_the_one_derived_at_registration() {
    use prost::Message as _;
    use symbiose_proto::logistics::v1 as pb;
    let organization = Uuid::now_v7();
    let profile = Profile {
        depots: vec![Depot {
            id: carrier::derived_depot_id(organization, 0),
            name: "Kehl".into(),
            point: place(48.5722, 7.8157, Country::De).point,
            country: Country::De,
        }],
        countries: BTreeSet::from([Country::De]),
        service_radius_km: 100,
        vehicles: vec![Vehicle {
            id: carrier::derived_vehicle_id(organization, 0),
            name: "Van".into(),
            payload_kg: 1_000,
            pallet_places: 4,
            tail_lift: false,
            dangerous_goods: false,
        }],
        rates: Rates { per_km_minor: 100, per_tonne_minor: 0, minimum_minor: 5_000, currency: Currency::Eur },
        takes_pallet_exchange: false,
    };
    let event = carrier::Event::Updated { profile, at_ms: 3 };
    let (event_type, payload) = carrier::encode(organization, &event);
    let mut stored = pb::CarrierUpdated::decode(payload.as_slice()).expect("decodes");
    let written = stored.profile.as_mut().expect("a profile");
    written.depots[0].depot_id.clear();
    written.vehicles[0].vehicle_id.clear();
    assert_eq!(carrier::decode(event_type, &stored.encode_to_vec()), Ok(event));
}

#[test]
fn transport_events_read_back_as_written() {
    let deal = Deal {
        id: Uuid::now_v7(),
        proposal_id: Uuid::now_v7(),
        offer_id: Uuid::now_v7(),
        request_id: Uuid::now_v7(),
        seller: Uuid::now_v7(),
        buyer: Uuid::now_v7(),
        family: MaterialFamily::Pallets,
        waste_code: Some(WasteCode::parse("15 01 03").expect("a code")),
        legal_status: LegalStatus::Waste,
        quantity: Quantity::new(40_000, Unit::Pallet, false).expect("a quantity"),
        price_per_unit: eur(350),
        pickup: place(48.5734, 7.7521, Country::Fr),
        delivery: place(48.5722, 7.8157, Country::De),
        distance_km: 4.7,
        documents: vec![RequiredDocument::AnnexVii],
        agreed_at_ms: 1_780_000_000_000,
        status: DealStatus::Agreed,
    };
    let submitted = OfferedQuote { automatic: false, vehicle: String::new(), ..quote(deal.id) };
    for event in [
        transport::Event::Requested { deal: Box::new(deal), at_ms: 1_780_000_000_500 },
        transport::Event::QuoteSubmitted(Box::new(submitted)),
    ] {
        let (event_type, payload) = transport::encode(&event);
        assert_eq!(transport::decode(event_type, &payload), Ok(event));
    }
    assert_eq!(
        transport::decode("symbiose.logistics.v1.Nothing", &[]),
        Err("symbiose.logistics.v1.Nothing is not a transport event".to_owned())
    );
}

#[test]
fn shipment_events_read_back_as_written_with_their_shipment_and_deal() {
    let (shipment_id, deal_id, buyer) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let exchange = Some(PalletExchange { grade: PalletGrade::A, handed_over: 40, taken_back: 40 });
    let booked_quote = quote(deal_id);
    let events = [
        shipment::Event::Booked {
            shipment_id,
            transport: Transport {
                deal_id,
                seller: Uuid::now_v7(),
                buyer,
                carrier: booked_quote.carrier,
                price: booked_quote.price,
                pickup: place(48.5734, 7.7521, Country::Fr),
                delivery: place(48.5722, 7.8157, Country::De),
                quantity: pallets(40),
                cross_border: true,
                hazardous: false,
                prior_notification_number: None,
                pallet_exchange: true,
            },
            booked_by: buyer,
            at_ms: 1,
        },
        shipment::Event::PickedUp(Pickup { quantity: pallets(40), pallets: exchange, at_ms: 2 }),
        shipment::Event::BorderCrossed(BorderCrossing { country: Country::De, at_ms: 3 }),
        shipment::Event::Delivered(Delivery {
            received: pallets(40),
            accepted_milli: 38_000,
            refused_milli: 2_000,
            refusal_reason: Some("two broken".into()),
            pallets: exchange,
            at_ms: 4,
        }),
        shipment::Event::Closed { accepted_milli: 38_000, by: buyer, at_ms: 5 },
    ];
    for event in events {
        let quote = matches!(event, shipment::Event::Booked { .. }).then(|| booked_quote.clone());
        let (event_type, payload) =
            shipment::encode(&shipment_id.to_string(), &deal_id.to_string(), &event, quote.as_ref());
        let stored = shipment::decode(event_type, &payload).expect("decodes");
        let closed = matches!(event, shipment::Event::Closed { .. }).then_some((deal_id, 38_000));
        assert_eq!(stored.closed(), closed);
        assert_eq!(stored.picked_up(), matches!(event, shipment::Event::PickedUp(_)).then_some(deal_id));
        assert_eq!(stored, StoredShipmentEvent { shipment_id, deal_id, event, quote });
    }
}

#[test]
fn a_pallet_settlement_reads_back_as_written_with_its_payment() {
    for by in [SettleBy::Return { count: 12 }, SettleBy::Payment { count: 12, amount: eur(9_600) }] {
        let settlement = Settlement {
            settlement_id: Uuid::now_v7(),
            debtor: Uuid::now_v7(),
            creditor: Uuid::now_v7(),
            grade: PalletGrade::B,
            by,
            at_ms: 7,
        };
        let (event_type, payload) = pallets::encode(&settlement);
        let read = pallets::decode(event_type, &payload).expect("decodes");
        assert_eq!(read, settlement);
        assert_eq!(read.payment(), matches!(by, SettleBy::Payment { .. }).then(|| eur(9_600)));
    }
}
