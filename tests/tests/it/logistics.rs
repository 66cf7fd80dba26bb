//! `LogisticsService` through gRPC: a whole cross-border shipment of EUR pallets from
//! Strasbourg to Kehl with pallet exchange (quotes, booking, pickup, border, delivery,
//! acceptance, pallet balances and their settlement, Annex VII; no cancellation of the deal
//! once picked up); carriers out of area or too
//! small are not quoted; a hazardous cross-border booking needs its prior notification; bad
//! profiles and settlements name the request's own fields.

use std::time::{Duration, Instant};

use symbiose_proto::common::v1 as common;
use symbiose_proto::listings::v1 as pb;
use symbiose_proto::listings::v1::organization_service_client::OrganizationServiceClient;
use symbiose_proto::logistics::v1 as logistics;
use symbiose_proto::logistics::v1::logistics_service_client::LogisticsServiceClient;
use symbiose_proto::matching::v1::matching_service_client::MatchingServiceClient;
use symbiose_proto::settlement::v1 as settlement;
use symbiose_proto::settlement::v1::settlement_service_client::SettlementServiceClient;
use symbiose_tests::fixtures::{self, Member, agree, at, member, pallet_terms};
use symbiose_tests::{AuthedChannel, TestServer};
use tonic::Code;
use tonic_types::StatusExt as _;

type Logistics = LogisticsServiceClient<AuthedChannel>;

/// Longest wait for the transport of a deal to be opened after the deal.
const TRANSPORT_WAIT: Duration = Duration::from_secs(20);

async fn logistics(server: &TestServer, token: &str) -> Logistics {
    LogisticsServiceClient::new(server.authed(token).await.expect("channel"))
}

/// A party's contact on the Annex VII data: person, telephone, e-mail, erased.
fn contact_of(party: Option<&logistics::AnnexViiParty>) -> Option<(&str, &str, &str, bool)> {
    party.map(|party| {
        (
            party.contact_person.as_str(),
            party.contact_telephone.as_str(),
            party.contact_email.as_str(),
            party.contact_erased,
        )
    })
}

/// Sets `member`'s contacts in the directory, with its own token.
async fn set_contacts(server: &TestServer, member: &Member, contacts: Vec<pb::Contact>) {
    let mut own = OrganizationServiceClient::new(server.authed(&member.token).await.expect("channel"));
    own.set_contacts(pb::SetContactsRequest {
        request_id: String::new(),
        organization_id: member.organization_id.clone(),
        contacts,
    })
    .await
    .expect("contacts set");
}

fn eur(minor: i64) -> common::Money {
    common::Money { amount_minor: minor, currency_code: "EUR".into() }
}

/// A carrier profile: one depot at `town`, FR and DE within `radius_km`, one vehicle, rates of
/// 1.80 EUR per km, 15.00 EUR per tonne, at least 90.00 EUR.
fn profile(town: &str, radius_km: u32, vehicle: logistics::Vehicle) -> logistics::CarrierProfile {
    let place = symbiose_domain::geo::place(town).expect("a town of the table");
    logistics::CarrierProfile {
        carrier_organization_id: String::new(),
        depots: vec![logistics::Depot {
            depot_id: String::new(),
            name: format!("Depot {town}"),
            location: Some(place.point.into()),
            country: common::Country::from(place.country).into(),
        }],
        countries: vec![common::Country::France.into(), common::Country::Germany.into()],
        radius_km,
        vehicles: vec![vehicle],
        rates: Some(logistics::Rates {
            per_km_minor: 180,
            per_tonne_minor: 1500,
            minimum_charge_minor: 9000,
            currency_code: "EUR".into(),
        }),
        pallet_exchange: true,
    }
}

fn truck(dangerous_goods: bool) -> logistics::Vehicle {
    logistics::Vehicle {
        vehicle_id: String::new(),
        name: "Porteur 12 t".into(),
        payload_kg: 12_000,
        pallet_places: 18,
        tail_lift: true,
        dangerous_goods,
    }
}

async fn carrier(
    server: &TestServer,
    name: &str,
    identifier: &str,
    town: &str,
    profile: logistics::CarrierProfile,
) -> Member {
    let carrier = member(server, name, common::Country::France, identifier, &[common::Role::Carrier], town)
        .await
        .expect("carrier");
    logistics(server, &carrier.token)
        .await
        .register_carrier(logistics::RegisterCarrierRequest {
            request_id: String::new(),
            profile: Some(profile),
        })
        .await
        .expect("a carrier profile");
    carrier
}

/// The quotes of `deal`, polled (with a bound) until the transport is open and quoted.
async fn quotes(client: &mut Logistics, deal: &str) -> Vec<logistics::Quote> {
    let deadline = Instant::now() + TRANSPORT_WAIT;
    loop {
        let quotes = client
            .list_quotes(logistics::ListQuotesRequest {
                deal_id: deal.into(),
                min_position: 0,
                ..Default::default()
            })
            .await
            .expect("quotes")
            .into_inner()
            .quotes;
        if !quotes.is_empty() {
            return quotes;
        }
        assert!(Instant::now() < deadline, "no quote for deal {deal} after {TRANSPORT_WAIT:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn pallets(handed_over: u32, taken_back: u32) -> Option<logistics::PalletExchange> {
    Some(logistics::PalletExchange { grade: pb::PalletGrade::B.into(), handed_over, taken_back })
}

fn state(shipment: &logistics::Shipment) -> logistics::ShipmentState {
    logistics::ShipmentState::try_from(shipment.state).expect("a state")
}

async fn balance_with(client: &mut Logistics, counterparty: &str) -> i64 {
    client
        .get_pallet_balances(logistics::GetPalletBalancesRequest { min_position: 0 })
        .await
        .expect("balances")
        .into_inner()
        .balances
        .iter()
        .filter(|balance| balance.counterparty_organization_id == counterparty)
        .map(|balance| balance.pallets)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cross_border_pallet_shipment_from_strasbourg_to_kehl() {
    let server = TestServer::start().await.expect("server");
    let seller = fixtures::strasbourg_producer(&server).await.expect("seller");
    let buyer = fixtures::kehl_buyer(&server).await.expect("buyer");
    let rhine = carrier(
        &server,
        "Transports du Rhin SARL",
        &fixtures::siren(3_001),
        "Strasbourg",
        profile("Strasbourg", 100, truck(false)),
    )
    .await;
    // Out of area: a depot in Reims serving 50 km around it.
    let far = carrier(
        &server,
        "Transports Champenois SAS",
        &fixtures::siren(3_002),
        "Reims",
        profile("Reims", 50, truck(false)),
    )
    .await;
    // Too small: a van of 500 kg for 40 pallets (about 1 t).
    let van =
        logistics::Vehicle { name: "Fourgon".into(), payload_kg: 500, pallet_places: 6, ..truck(false) };
    let small = carrier(
        &server,
        "Petits Transports SARL",
        &fixtures::siren(3_003),
        "Strasbourg",
        profile("Strasbourg", 100, van),
    )
    .await;

    // The buyer's money first: its payment is held in escrow when the deal is agreed, and the
    // material is picked up only then.
    fixtures::deposit(&server, &buyer.organization_id, 50_000).await.expect("a deposit");
    let deal = fixtures::pallet_deal(&server, &seller, &buyer).await.expect("a deal");
    fixtures::escrow_held(&server, &buyer.token, &deal.deal_id).await.expect("the payment held");

    // Quotes: only the carrier whose area covers both towns and whose vehicle fits.
    let mut buyer_side = logistics(&server, &buyer.token).await;
    let quotes = quotes(&mut buyer_side, &deal.deal_id).await;
    let carriers: Vec<&str> = quotes.iter().map(|quote| quote.carrier_organization_id.as_str()).collect();
    assert_eq!(carriers, [rhine.organization_id.as_str()], "{quotes:?}");
    assert!(
        !carriers.contains(&far.organization_id.as_str())
            && !carriers.contains(&small.organization_id.as_str())
    );
    let quote = quotes[0].clone();
    // By hand: Strasbourg (48.5734, 7.7521) to Kehl (48.5724, 7.8154) is 4,659 m great-circle,
    // 6,057 m by road (x 1.30). 40 pallets of 25 kg are 1 t. 1.80 x 6.057 + 15.00 x 1 = 25.90 EUR,
    // under the 90.00 minimum: 90.00 EUR. CO2: 1 t x 6.057 km x 0.105 = 0.636 kg.
    assert_eq!(quote.price, Some(eur(9000)));
    assert!((quote.road_distance_km - 6.057).abs() < 0.001, "{}", quote.road_distance_km);
    assert!((quote.co2_kg - 0.635_985).abs() < 0.001, "{}", quote.co2_kg);
    assert_eq!(quote.chargeable_mass_kg, 1000);
    let factor = quote.emission_factor.clone().expect("the factor");
    assert!(
        (factor.kg_co2e_per_tonne_km - 0.105).abs() < 1e-9
            && factor.source.contains("ADEME")
            && !factor.version.is_empty()
    );

    // The carrier answers with its own price; the buyer books the automatic quote.
    let mut carrier_side = logistics(&server, &rhine.token).await;
    let own = carrier_side
        .submit_quote(logistics::SubmitQuoteRequest {
            request_id: String::new(),
            deal_id: deal.deal_id.clone(),
            price: Some(eur(8500)),
            valid_hours: 24,
        })
        .await
        .expect("a submitted quote")
        .into_inner();
    assert!(!own.quote.expect("the quote").automatic);
    let booked = buyer_side
        .book_shipment(logistics::BookShipmentRequest {
            request_id: String::new(),
            deal_id: deal.deal_id.clone(),
            quote_id: quote.quote_id.clone(),
            prior_notification_number: String::new(),
        })
        .await
        .expect("booked")
        .into_inner()
        .shipment
        .expect("a shipment");
    assert_eq!(state(&booked), logistics::ShipmentState::Booked);
    assert!(booked.cross_border && booked.pallet_exchange && !booked.hazardous);
    let shipment_id = booked.shipment_id.clone();

    // Only the assigned carrier reports.
    let status = logistics(&server, &far.token)
        .await
        .report_pickup(logistics::ReportPickupRequest {
            request_id: String::new(),
            shipment_id: shipment_id.clone(),
            quantity: Some(fixtures::pallets(40)),
            pallets: pallets(35, 40),
        })
        .await
        .expect_err("not its shipment");
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");

    // Pickup: 40 loaded pallets taken, 35 empty ones handed over: the carrier owes the seller 5.
    let pickup = logistics::ReportPickupRequest {
        request_id: String::new(),
        shipment_id: shipment_id.clone(),
        quantity: Some(fixtures::pallets(40)),
        pallets: pallets(35, 40),
    };
    let picked = carrier_side.report_pickup(pickup.clone()).await.expect("picked up").into_inner();
    let again = carrier_side.report_pickup(pickup).await.expect("the same report again").into_inner();
    assert_eq!(
        again.shipment.as_ref().map(|shipment| shipment.version),
        picked.shipment.as_ref().map(|shipment| shipment.version),
        "applied once"
    );
    // Once picked up, the deal can no longer be cancelled.
    let status = MatchingServiceClient::new(server.authed(&buyer.token).await.expect("channel"))
        .cancel_deal(symbiose_proto::matching::v1::CancelDealRequest {
            request_id: String::new(),
            deal_id: deal.deal_id.clone(),
            reason: "too late".into(),
        })
        .await
        .expect_err("picked up");
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    let crossed = carrier_side
        .report_border_crossing(logistics::ReportBorderCrossingRequest {
            request_id: String::new(),
            shipment_id: shipment_id.clone(),
            country: common::Country::Germany.into(),
            at: None,
        })
        .await
        .expect("crossed")
        .into_inner()
        .shipment
        .expect("a shipment");
    assert_eq!(state(&crossed), logistics::ShipmentState::InTransit);

    // More received than picked up is refused.
    let delivery = |received: i64| logistics::ReportDeliveryRequest {
        request_id: String::new(),
        shipment_id: shipment_id.clone(),
        received: Some(fixtures::pallets(received)),
        accepted: Some(fixtures::pallets(received - 2)),
        refused: Some(fixtures::pallets(2)),
        refusal_reason: "two with broken boards".into(),
        pallets: pallets(40, 36),
    };
    let status = carrier_side.report_delivery(delivery(41)).await.expect_err("more than picked up");
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    // Delivery: 40 received, 38 accepted; 40 loaded pallets handed over, 36 empty ones taken:
    // the buyer owes the carrier 4.
    let delivered = carrier_side.report_delivery(delivery(40)).await.expect("delivered").into_inner();
    assert_eq!(delivered.shipment.as_ref().map(state), Some(logistics::ShipmentState::Delivered));

    let confirm = || logistics::ConfirmAcceptanceRequest {
        request_id: String::new(),
        shipment_id: shipment_id.clone(),
    };
    let status = carrier_side.confirm_acceptance(confirm()).await.expect_err("the receiver confirms");
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    let closed = buyer_side.confirm_acceptance(confirm()).await.expect("confirmed").into_inner();
    let closed = closed.shipment.expect("a shipment");
    assert_eq!(state(&closed), logistics::ShipmentState::Closed);
    assert_eq!(closed.accepted.as_ref().map(|quantity| quantity.amount_milli), Some(38_000));
    let history: Vec<logistics::ShipmentState> = closed
        .history
        .iter()
        .map(|step| logistics::ShipmentState::try_from(step.state).expect("a state"))
        .collect();
    assert_eq!(
        history,
        [
            logistics::ShipmentState::Booked,
            logistics::ShipmentState::PickedUp,
            logistics::ShipmentState::InTransit,
            logistics::ShipmentState::Delivered,
            logistics::ShipmentState::Closed
        ]
    );
    assert_eq!(closed.history[2].country, i32::from(common::Country::Germany));

    // The offer's reservation became the 38 pallets accepted: the 2 refused are back on offer.
    let mut listings = symbiose_proto::listings::v1::listing_service_client::ListingServiceClient::new(
        server.authed(&seller.token).await.expect("channel"),
    );
    let deadline = Instant::now() + TRANSPORT_WAIT;
    loop {
        let offer = listings
            .get_listing(pb::GetListingRequest { listing_id: deal.offer_id.clone() })
            .await
            .expect("the offer")
            .into_inner()
            .listing
            .expect("a listing");
        if offer.open_reservations.is_empty() {
            assert_eq!(offer.available.map(|available| available.amount_milli), Some(2_000));
            assert_eq!(offer.delivered.map(|delivered| delivered.amount_milli), Some(38_000));
            break;
        }
        assert!(Instant::now() < deadline, "the reservation was not turned into a delivery: {offer:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Pallet balances, as each side sees them.
    let mut seller_side = logistics(&server, &seller.token).await;
    assert_eq!(
        balance_with(&mut seller_side, &rhine.organization_id).await,
        5,
        "the carrier owes the seller 5"
    );
    assert_eq!(
        balance_with(&mut buyer_side, &rhine.organization_id).await,
        -4,
        "the buyer owes the carrier 4"
    );
    assert_eq!(balance_with(&mut carrier_side, &seller.organization_id).await, -5);
    assert_eq!(balance_with(&mut carrier_side, &buyer.organization_id).await, 4);

    // The buyer pays for its 4; a return is recorded by the one who receives the pallets.
    let settle = |counterparty: &str, count: u32, payment: Option<common::Money>| {
        logistics::SettlePalletBalanceRequest {
            request_id: String::new(),
            counterparty_organization_id: counterparty.to_owned(),
            grade: pb::PalletGrade::B.into(),
            pallets: count,
            payment,
        }
    };
    let status = buyer_side
        .settle_pallet_balance(settle(&rhine.organization_id, 4, None))
        .await
        .expect_err("a return the buyer owes");
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    let status = buyer_side
        .settle_pallet_balance(settle(&rhine.organization_id, 5, Some(eur(3500))))
        .await
        .expect_err("more than owed");
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    // A payment the buyer cannot cover (364.34 EUR left after the deal) is refused naming the
    // shortfall, and the pallets stay owed.
    let status = buyer_side
        .settle_pallet_balance(settle(&rhine.organization_id, 4, Some(eur(40_000))))
        .await
        .expect_err("more money than the buyer has");
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert!(status.message().contains("short of 3566 minor units"), "{}", status.message());
    assert_eq!(balance_with(&mut buyer_side, &rhine.organization_id).await, -4, "still owed");
    let request = logistics::SettlePalletBalanceRequest {
        request_id: "pallets-rhine-1".into(),
        ..settle(&rhine.organization_id, 4, Some(eur(2800)))
    };
    let paid = buyer_side.settle_pallet_balance(request.clone()).await.expect("paid").into_inner();
    assert_eq!(paid.balance.map(|balance| balance.pallets), Some(0));
    // The money moved with it, once, even when the same request comes again.
    buyer_side.settle_pallet_balance(request).await.expect("the same request again");
    let carrier_money = SettlementServiceClient::new(server.authed(&rhine.token).await.expect("channel"))
        .get_balances(settlement::GetBalancesRequest::default())
        .await
        .expect("the carrier's balances")
        .into_inner()
        .balances;
    let posted: Vec<i64> = carrier_money.iter().map(|balance| balance.posted_minor).collect();
    assert_eq!(posted, [2800], "the carrier was paid 28.00 EUR once: {carrier_money:?}");
    let returned = seller_side
        .settle_pallet_balance(settle(&rhine.organization_id, 5, None))
        .await
        .expect("returned")
        .into_inner();
    assert_eq!(returned.balance.map(|balance| balance.pallets), Some(0));

    // The Annex VII document of the shipment, with the parties' contacts from the directory:
    // the seller's logistics contact, the carrier's dispatcher (a telephone only); the buyer
    // erased its contacts.
    let contacts = |name: &str, phone: &str, email: &str, function: &str| pb::Contact {
        name: name.into(),
        email: email.into(),
        phone: phone.into(),
        function: function.into(),
    };
    set_contacts(
        &server,
        &seller,
        vec![
            contacts("Anne Quality", "", "quality@palettes-est.example", "quality"),
            contacts("Paul Lambert", "+33 3 88 11 22 33", "p.lambert@palettes-est.example", "logistics"),
        ],
    )
    .await;
    set_contacts(&server, &rhine, vec![contacts("Marie Dispatch", "+33 3 88 44 55 66", "", "dispatch")])
        .await;
    set_contacts(&server, &buyer, vec![contacts("Jonas Weber", "+49 7851 123456", "", "logistics")]).await;
    let mut own = OrganizationServiceClient::new(server.authed(&buyer.token).await.expect("channel"));
    own.erase_contacts(pb::EraseContactsRequest {
        request_id: String::new(),
        organization_id: buyer.organization_id.clone(),
    })
    .await
    .expect("erased");
    let annex = seller_side
        .get_annex_vii(logistics::GetAnnexViiRequest {
            shipment_id: shipment_id.clone(),
            min_position: 0,
            include_pdf: true,
        })
        .await
        .expect("Annex VII")
        .into_inner();
    let data = annex.annex_vii.expect("the data");
    let paul = Some(("Paul Lambert", "+33 3 88 11 22 33", "p.lambert@palettes-est.example", false));
    assert_eq!(contact_of(data.arranger.as_ref()), paul);
    assert_eq!(contact_of(data.generator.as_ref()), paul);
    assert_eq!(contact_of(data.carriers.first()), Some(("Marie Dispatch", "+33 3 88 44 55 66", "", false)));
    let erased = Some(("", "", "", true));
    assert_eq!(contact_of(data.consignee.as_ref()), erased);
    assert_eq!(contact_of(data.recovery_facility.as_ref()), erased);
    let carrier_address =
        data.carriers.first().map(|party| (party.address.clone(), party.street_address_missing));
    assert_eq!(
        carrier_address,
        Some((vec!["1 rue du Port".to_owned(), "00000 Strasbourg".to_owned()], false))
    );
    // Boxes 13 and 14: the delivery, 40 pallets received (1 t).
    assert!(data.received_at.is_some(), "{data:?}");
    assert_eq!((data.received_mass_kg, data.received_volume_litres), (1000, 0));
    for expected in [
        "Contact person: Paul Lambert",
        "Tel.: +33 3 88 11 22 33   E-mail: p.lambert@palettes-est.example",
        "Address: 1 rue du Port, 00000 Strasbourg, France (FR)",
        "Contact person: Marie Dispatch",
        "Tel.: +33 3 88 44 55 66   E-mail: to be completed",
        "Contact person: erased at the organization's request (not available)",
        "Shipment received at recovery facility [X] or laboratory [ ]",
        "Quantity received: Tonnes (Mg): 1.000   m3: not applicable",
    ] {
        assert!(annex.text.contains(expected), "{expected:?} is missing from\n{}", annex.text);
    }
    assert!(!annex.text.contains("Jonas Weber"), "an erased contact never shows:\n{}", annex.text);
    assert!(annex.pdf.starts_with(b"%PDF-") && annex.pdf.ends_with(b"%%EOF"), "a whole PDF");
    assert_eq!(data.arranger.as_ref().map(|party| party.name.as_str()), Some("Palettes de l'Est SAS"));
    assert_eq!(data.consignee.as_ref().map(|party| party.name.as_str()), Some("Kehler Palettenservice GmbH"));
    assert_eq!(
        data.carriers.iter().map(|party| party.name.as_str()).collect::<Vec<_>>(),
        ["Transports du Rhin SARL"]
    );
    assert_eq!((data.ewc_code.as_str(), data.basel_code.as_str()), ("150103", "B3050"));
    assert_eq!(data.mass_kg, 1000);
    assert_eq!(data.country_of_dispatch, i32::from(common::Country::France));
    assert_eq!(data.country_of_destination, i32::from(common::Country::Germany));
    assert!(annex.text.contains("Palettes de l'Est SAS") && annex.text.contains("B3050"), "{}", annex.text);
    let status = logistics(&server, &small.token)
        .await
        .get_annex_vii(logistics::GetAnnexViiRequest { shipment_id, min_position: 0, include_pdf: true })
        .await
        .expect_err("not its shipment");
    assert_eq!(status.code(), Code::NotFound);
    server.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hazardous_cross_border_shipment_is_booked_only_with_its_prior_notification() {
    let server = TestServer::start().await.expect("server");
    let seller = member(
        &server,
        "Chimie du Rhin SAS",
        common::Country::France,
        "73282932000074",
        &[common::Role::Producer],
        "Strasbourg",
    )
    .await
    .expect("seller");
    let buyer = member(
        &server,
        "Kehler Lösemittel GmbH",
        common::Country::Germany,
        "DE136695976",
        &[common::Role::Recycler],
        "Kehl",
    )
    .await
    .expect("buyer");
    let mut operator = OrganizationServiceClient::new(server.operator().await.expect("channel"));
    operator
        .add_permit(pb::AddPermitRequest {
            request_id: String::new(),
            organization_id: buyer.organization_id.clone(),
            permit: Some(pb::Permit {
                permit_id: String::new(),
                kind: pb::PermitKind::Treatment.into(),
                number: "BImSchG-4711".into(),
                issued_by: "Regierungspräsidium Freiburg".into(),
                valid_until: Some(at(365 * 86_400)),
                accepted_waste_codes: vec!["140603".into()],
                hazardous_accepted: true,
                dangerous_goods_allowed: false,
            }),
        })
        .await
        .expect("a treatment permit");
    let tanker = carrier(
        &server,
        "Citernes d'Alsace SAS",
        &fixtures::siren(3_010),
        "Strasbourg",
        profile("Strasbourg", 100, logistics::Vehicle { name: "Citerne ADR".into(), ..truck(true) }),
    )
    .await;
    operator
        .add_permit(pb::AddPermitRequest {
            request_id: String::new(),
            organization_id: tanker.organization_id.clone(),
            permit: Some(pb::Permit {
                permit_id: String::new(),
                kind: pb::PermitKind::Transport.into(),
                number: "ADR-67-0042".into(),
                issued_by: "DREAL Grand Est".into(),
                valid_until: Some(at(365 * 86_400)),
                accepted_waste_codes: vec![],
                hazardous_accepted: false,
                dangerous_goods_allowed: true,
            }),
        })
        .await
        .expect("a transport registration");
    let solvent = |side: pb::ListingSide, site: &str, price: i64| pb::ListingTerms {
        family: common::MaterialFamily::Solvents.into(),
        waste_code: "14 06 03*".into(),
        description: "Spent solvent mixture".into(),
        quality: None,
        quantity: Some(common::Quantity {
            amount_milli: 2_000_000,
            unit: common::Unit::Litre.into(),
            basis: common::QuantityBasis::Estimated.into(),
        }),
        minimum_lot: None,
        ..pallet_terms(side, site, 1, price)
    };
    let deal = agree(
        &server,
        &seller,
        solvent(pb::ListingSide::Offer, &seller.site_id, -10),
        &buyer,
        solvent(pb::ListingSide::Request, &buyer.site_id, 0),
    )
    .await
    .expect("a deal of hazardous waste");
    assert_eq!(
        deal.required_documents,
        [i32::from(symbiose_proto::matching::v1::RequiredDocument::PriorNotification)]
    );

    let mut buyer_side = logistics(&server, &buyer.token).await;
    let quote = quotes(&mut buyer_side, &deal.deal_id).await.remove(0);
    assert_eq!(
        quote.carrier_organization_id, tanker.organization_id,
        "the registered dangerous-goods carrier"
    );
    let book = |notification: &str| logistics::BookShipmentRequest {
        request_id: String::new(),
        deal_id: deal.deal_id.clone(),
        quote_id: quote.quote_id.clone(),
        prior_notification_number: notification.to_owned(),
    };
    let status = buyer_side.book_shipment(book("")).await.expect_err("no notification");
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert!(status.message().contains("notification"), "{status:?}");
    let booked = buyer_side.book_shipment(book("FR2026-0042")).await.expect("booked").into_inner();
    let shipment = booked.shipment.expect("a shipment");
    assert!(shipment.hazardous && shipment.cross_border);
    assert_eq!(shipment.prior_notification_number, "FR2026-0042");
    // Hazardous waste travels under its notification, not with Annex VII.
    let status = buyer_side
        .get_annex_vii(logistics::GetAnnexViiRequest {
            shipment_id: shipment.shipment_id,
            min_position: 0,
            include_pdf: false,
        })
        .await
        .expect_err("no Annex VII for hazardous waste");
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    server.stop().await.expect("stop");
}

/// The field a bad request's `google.rpc.BadRequest` names.
fn field(status: &tonic::Status) -> String {
    status.get_details_bad_request().map(|bad| bad.field_violations[0].field.clone()).unwrap_or_default()
}

#[tokio::test]
async fn bad_profiles_and_settlements_name_the_request_fields() {
    let server = TestServer::start().await.expect("server");
    let carrier = member(
        &server,
        "Transports du Rhin SAS",
        common::Country::France,
        &fixtures::siren(3_020),
        &[common::Role::Carrier],
        "Strasbourg",
    )
    .await
    .expect("carrier");
    let mut client = logistics(&server, &carrier.token).await;
    let base = || profile("Strasbourg", 100, truck(false));
    let with_rates = |rates: logistics::Rates| logistics::CarrierProfile { rates: Some(rates), ..base() };
    let rates = base().rates.expect("rates");
    let two_trucks = |second: logistics::Vehicle| logistics::CarrierProfile {
        vehicles: vec![truck(false), second],
        ..base()
    };
    let same_id = "0199a1c2-0000-7000-8000-000000000001".to_owned();
    let cases: Vec<(logistics::CarrierProfile, &str)> = vec![
        (logistics::CarrierProfile { radius_km: 0, ..base() }, "profile.radius_km"),
        (logistics::CarrierProfile { depots: vec![], ..base() }, "profile.depots"),
        (logistics::CarrierProfile { countries: vec![], ..base() }, "profile.countries"),
        (logistics::CarrierProfile { vehicles: vec![], ..base() }, "profile.vehicles"),
        (with_rates(logistics::Rates { per_km_minor: -1, ..rates.clone() }), "profile.rates.per_km_minor"),
        (
            with_rates(logistics::Rates { per_tonne_minor: -1, ..rates.clone() }),
            "profile.rates.per_tonne_minor",
        ),
        (
            with_rates(logistics::Rates { minimum_charge_minor: 0, ..rates.clone() }),
            "profile.rates.minimum_charge_minor",
        ),
        (two_trucks(logistics::Vehicle { payload_kg: 0, ..truck(false) }), "profile.vehicles[1].payload_kg"),
        (
            two_trucks(logistics::Vehicle { pallet_places: 1_000, ..truck(false) }),
            "profile.vehicles[1].pallet_places",
        ),
        (two_trucks(logistics::Vehicle { name: " ".into(), ..truck(false) }), "profile.vehicles[1].name"),
        (
            logistics::CarrierProfile {
                vehicles: vec![
                    logistics::Vehicle { vehicle_id: same_id.clone(), ..truck(false) },
                    logistics::Vehicle { vehicle_id: same_id, ..truck(false) },
                ],
                ..base()
            },
            "profile.vehicles[1].vehicle_id",
        ),
    ];
    for (profile, expected) in cases {
        let status = client
            .register_carrier(logistics::RegisterCarrierRequest {
                request_id: String::new(),
                profile: Some(profile),
            })
            .await
            .expect_err(expected);
        assert_eq!(status.code(), Code::InvalidArgument, "{expected}: {status:?}");
        assert_eq!(field(&status), expected, "{status:?}");
    }

    let other = fixtures::strasbourg_producer(&server).await.expect("another organization");
    let settle = |counterparty: &str, pallets: u32, payment: Option<common::Money>| {
        logistics::SettlePalletBalanceRequest {
            request_id: String::new(),
            counterparty_organization_id: counterparty.to_owned(),
            grade: pb::PalletGrade::B.into(),
            pallets,
            payment,
        }
    };
    let cases = [
        (settle(&carrier.organization_id, 1, None), "counterparty_organization_id"),
        (settle(&other.organization_id, 0, None), "pallets"),
        (settle(&other.organization_id, 1, Some(eur(i64::MAX))), "payment.amount_minor"),
    ];
    for (request, expected) in cases {
        let status = client.settle_pallet_balance(request).await.expect_err(expected);
        assert_eq!(status.code(), Code::InvalidArgument, "{expected}: {status:?}");
        assert_eq!(field(&status), expected, "{status:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotes_are_listed_page_by_page() {
    let server = TestServer::start().await.expect("server");
    let seller = fixtures::strasbourg_producer(&server).await.expect("seller");
    let buyer = fixtures::kehl_buyer(&server).await.expect("buyer");
    // Three carriers whose area covers both towns: three automatic quotes.
    for (name, number) in
        [("Transports du Rhin SARL", 3_040), ("Fret Alsacien SAS", 3_041), ("Rheintransport GmbH", 3_042)]
    {
        carrier(
            &server,
            name,
            &fixtures::siren(number),
            "Strasbourg",
            profile("Strasbourg", 100, truck(false)),
        )
        .await;
    }
    let deal = fixtures::pallet_deal(&server, &seller, &buyer).await.expect("a deal");
    let mut buyer_side = logistics(&server, &buyer.token).await;
    let all = quotes(&mut buyer_side, &deal.deal_id).await;
    let ids = |quotes: &[logistics::Quote]| -> Vec<String> {
        quotes.iter().map(|quote| quote.quote_id.clone()).collect()
    };
    assert_eq!(all.len(), 3, "{all:?}");

    for (page_size, pages_expected) in [(1, 3), (2, 2)] {
        let (paged, pages) = fixtures::read_pages(page_size, |page_token| {
            let (mut client, deal_id) = (buyer_side.clone(), deal.deal_id.clone());
            async move {
                let request =
                    logistics::ListQuotesRequest { deal_id, min_position: 0, page_size, page_token };
                let page = client.list_quotes(request).await.expect("a page").into_inner();
                (page.quotes, page.next_page_token)
            }
        })
        .await;
        assert_eq!(pages, pages_expected, "pages of {page_size}");
        // The same quotes in the same order (cheapest first, ties by id); an automatic quote's
        // expiry moves with the clock, so they are compared by id.
        assert_eq!(ids(&paged), ids(&all), "pages of {page_size}");
    }

    // Bad page input is refused naming its field: over the largest page (100), a token this
    // service did not issue, and one it could have issued but for another list.
    let cases = [
        (101, "not a token".to_owned(), "page_size"),
        (0, "not a token".to_owned(), "page_token"),
        (0, symbiose_kit::page::encode_token("no price"), "page_token"),
    ];
    for (page_size, page_token, expected) in cases {
        let status = buyer_side
            .list_quotes(logistics::ListQuotesRequest {
                deal_id: deal.deal_id.clone(),
                min_position: 0,
                page_size,
                page_token,
            })
            .await
            .expect_err(expected);
        assert_eq!(status.code(), Code::InvalidArgument, "{expected}: {status:?}");
        assert_eq!(field(&status), expected, "{status:?}");
    }
    server.stop().await.expect("stop");
}
