//! `ListingService` through gRPC: an offer of EUR pallets in Strasbourg from draft to
//! fulfilled, concurrent reservations that never oversell, bad input, ownership, expiry.

use std::time::Duration;

use symbiose_proto::common::v1 as common;
use symbiose_proto::listings::v1 as pb;
use symbiose_proto::listings::v1::listing_service_client::ListingServiceClient;
use symbiose_proto::listings::v1::organization_service_client::OrganizationServiceClient;
use symbiose_tests::fixtures::{self, at, pallets};
use symbiose_tests::{AuthedChannel, TestServer};
use tonic::Code;
use tonic_types::StatusExt;
use uuid::Uuid;

type Listings = ListingServiceClient<AuthedChannel>;

/// 40 EUR pallets, grade B, every week, at 3.50 EUR each: the brief's first offer.
fn pallet_offer(site_id: &str) -> pb::ListingTerms {
    pb::ListingTerms {
        side: pb::ListingSide::Offer.into(),
        family: common::MaterialFamily::Pallets.into(),
        waste_code: "15 01 03".into(),
        legal_status: pb::LegalStatus::Waste.into(),
        description: "EUR/EPAL 1200x800, grade B".into(),
        quality: Some(pb::Quality { kind: Some(pb::quality::Kind::PalletGrade(pb::PalletGrade::B.into())) }),
        quantity: Some(pallets(40)),
        minimum_lot: Some(pallets(1)),
        recurrence: Some(pb::Recurrence { every_days: 7 }),
        site_id: site_id.into(),
        location: None,
        available_from: Some(at(0)),
        available_until: Some(at(30 * 86_400)),
        price_per_unit: Some(common::Money { amount_minor: 350, currency_code: "EUR".into() }),
        delivery: Some(pb::DeliveryTerms {
            mode: pb::DeliveryMode::BuyerCollects.into(),
            seller_delivery_km: 0,
        }),
        max_distance_km: 0,
        accepts_other_countries: true,
        attachments: vec![pb::Attachment {
            kind: pb::AttachmentKind::Photo.into(),
            url: "https://photos.example/pallets-b.jpg".into(),
            sha256: "a".repeat(64),
        }],
        expires_at: Some(at(60 * 86_400)),
    }
}

/// A producer in Strasbourg and a recycler in Kehl, their tokens, and a service token.
struct Market {
    producer: String,
    producer_site: String,
    producer_token: String,
    recycler: String,
    recycler_site: String,
    recycler_token: String,
    service_token: String,
}

async fn market(server: &TestServer) -> Market {
    let mut operator = OrganizationServiceClient::new(server.operator().await.expect("channel"));
    let register = |name: &str, country: common::Country, identifier: &str, role: common::Role| {
        pb::RegisterOrganizationRequest {
            request_id: String::new(),
            legal_name: name.into(),
            country: country.into(),
            legal_identifier: identifier.into(),
            roles: vec![role.into()],
        }
    };
    let producer = operator
        .register_organization(register(
            "Palettes de l'Est SAS",
            common::Country::France,
            "73282932000074",
            common::Role::Producer,
        ))
        .await
        .expect("producer")
        .into_inner()
        .organization_id;
    let recycler = operator
        .register_organization(register(
            "Kehler Paletten GmbH",
            common::Country::Germany,
            "DE136695976",
            common::Role::Recycler,
        ))
        .await
        .expect("recycler")
        .into_inner()
        .organization_id;
    let issue = |organization_id: &str| pb::IssueTokenRequest {
        organization_id: organization_id.into(),
        roles: vec![],
        ttl_days: 0,
    };
    let producer_token = operator.issue_token(issue(&producer)).await.expect("token").into_inner().token;
    let recycler_token = operator.issue_token(issue(&recycler)).await.expect("token").into_inner().token;
    let add_site = |organization_id: &str,
                    name: &str,
                    city: &str,
                    country: common::Country,
                    latitude: f64,
                    longitude: f64| {
        pb::AddSiteRequest {
            request_id: String::new(),
            organization_id: organization_id.into(),
            name: name.into(),
            address: Some(pb::Address {
                street: "Hafenstrasse 1".into(),
                postal_code: "00000".into(),
                city: city.into(),
                country: country.into(),
            }),
            location: Some(common::GeoPoint { latitude, longitude }),
        }
    };
    let producer_site =
        OrganizationServiceClient::new(server.authed(&producer_token).await.expect("channel"))
            .add_site(add_site(
                &producer,
                "Port du Rhin",
                "Strasbourg",
                common::Country::France,
                48.5734,
                7.7521,
            ))
            .await
            .expect("site")
            .into_inner()
            .site_id;
    let recycler_site =
        OrganizationServiceClient::new(server.authed(&recycler_token).await.expect("channel"))
            .add_site(add_site(&recycler, "Hafen", "Kehl", common::Country::Germany, 48.5724, 7.8154))
            .await
            .expect("site")
            .into_inner()
            .site_id;
    let service_token = fixtures::service_token(server).expect("a service token");
    Market { producer, producer_site, producer_token, recycler, recycler_site, recycler_token, service_token }
}

async fn client(server: &TestServer, token: &str) -> Listings {
    ListingServiceClient::new(server.authed(token).await.expect("channel"))
}

fn field(status: &tonic::Status) -> String {
    status
        .get_error_details()
        .bad_request()
        .map(|bad| bad.field_violations[0].field.clone())
        .unwrap_or_default()
}

async fn create(client: &mut Listings, terms: pb::ListingTerms) -> String {
    client
        .create_listing(pb::CreateListingRequest { request_id: String::new(), terms: Some(terms) })
        .await
        .expect("create")
        .into_inner()
        .listing_id
}

async fn publish(client: &mut Listings, listing_id: &str) -> pb::PublishListingResponse {
    client
        .publish_listing(pb::PublishListingRequest {
            request_id: String::new(),
            listing_id: listing_id.into(),
        })
        .await
        .expect("publish")
        .into_inner()
}

fn reserve(listing_id: &str, reservation_id: Uuid, count: i64) -> pb::ReserveQuantityRequest {
    pb::ReserveQuantityRequest {
        request_id: String::new(),
        listing_id: listing_id.into(),
        reservation_id: reservation_id.to_string(),
        quantity: Some(pallets(count)),
    }
}

#[tokio::test]
async fn a_pallet_offer_goes_from_draft_to_fulfilled() {
    let server = TestServer::start().await.expect("server");
    let market = market(&server).await;
    let mut producer = client(&server, &market.producer_token).await;
    let mut service = client(&server, &market.service_token).await;
    // Built once: the amendment below must differ in its price only, even if a second
    // passes in between (the dates are computed from the clock).
    let offer = pallet_offer(&market.producer_site);
    let id = create(&mut producer, offer.clone()).await;

    let draft = producer
        .get_listing(pb::GetListingRequest { listing_id: id.clone() })
        .await
        .expect("get")
        .into_inner();
    let listing = draft.listing.expect("listing");
    assert_eq!(listing.state(), pb::ListingState::Draft);
    assert_eq!(listing.country(), common::Country::France);
    assert_eq!(
        listing.point,
        Some(common::GeoPoint { latitude: 48.5734, longitude: 7.7521 }),
        "the site's point"
    );
    assert_eq!(listing.available, Some(pallets(40)));
    assert!(!listing.hazardous);
    assert_eq!(draft.version, 0);
    // A draft is its owner's business.
    let hidden = client(&server, &market.recycler_token)
        .await
        .get_listing(pb::GetListingRequest { listing_id: id.clone() })
        .await;
    assert_eq!(hidden.expect_err("draft").code(), Code::NotFound);

    publish(&mut producer, &id).await;
    let mut cheaper = offer.clone();
    cheaper.price_per_unit = Some(common::Money { amount_minor: 300, currency_code: "EUR".into() });
    let amended = producer
        .amend_listing(pb::AmendListingRequest {
            request_id: String::new(),
            listing_id: id.clone(),
            terms: Some(cheaper),
        })
        .await
        .expect("amend")
        .into_inner();
    assert_eq!(amended.changed, ["price_per_unit"]);

    let reservation = Uuid::now_v7();
    let reserved =
        service.reserve_quantity(reserve(&id, reservation, 40)).await.expect("reserve").into_inner();
    assert_eq!(reserved.available, None, "nothing left");
    let again =
        service.reserve_quantity(reserve(&id, reservation, 40)).await.expect("the same reservation again");
    assert_eq!(again.into_inner().version, reserved.version, "a repeated reservation applies once");
    let confirmed = service
        .confirm_delivery(pb::ConfirmDeliveryRequest {
            request_id: String::new(),
            listing_id: id.clone(),
            reservation_id: reservation.to_string(),
            delivered: Some(pallets(40)),
        })
        .await
        .expect("confirm")
        .into_inner();
    let closed = producer
        .get_listing(pb::GetListingRequest { listing_id: id.clone() })
        .await
        .expect("get")
        .into_inner();
    let listing = closed.listing.expect("listing");
    assert_eq!(listing.state(), pb::ListingState::Fulfilled);
    assert_eq!(listing.delivered, Some(pallets(40)));

    let fulfilled = pb::ListMyListingsRequest {
        state: pb::ListingState::Fulfilled.into(),
        family: common::MaterialFamily::Pallets.into(),
        min_position: confirmed.position,
        ..Default::default()
    };
    let mine = producer.list_my_listings(fulfilled).await.expect("list").into_inner();
    assert_eq!(mine.listings.len(), 1);
    assert_eq!(mine.listings[0].listing_id, id);
    let published =
        pb::ListMyListingsRequest { state: pb::ListingState::Published.into(), ..Default::default() };
    assert!(producer.list_my_listings(published).await.expect("list").into_inner().listings.is_empty());
    let theirs = client(&server, &market.recycler_token)
        .await
        .list_my_listings(pb::ListMyListingsRequest::default())
        .await;
    assert!(theirs.expect("list").into_inner().listings.is_empty(), "only one's own listings");
}

#[tokio::test]
async fn sixty_four_concurrent_reservations_never_oversell() {
    let server = TestServer::start().await.expect("server");
    let market = market(&server).await;
    let mut producer = client(&server, &market.producer_token).await;
    let id = create(&mut producer, pallet_offer(&market.producer_site)).await;
    publish(&mut producer, &id).await;

    let mut tasks = Vec::new();
    for index in 0..64i64 {
        let mut service = client(&server, &market.service_token).await;
        let id = id.clone();
        tasks.push(tokio::spawn(async move {
            let count = 1 + index % 3;
            (count, service.reserve_quantity(reserve(&id, Uuid::now_v7(), count)).await)
        }));
    }
    let mut granted = 0;
    let mut refused = 0;
    for task in tasks {
        match task.await.expect("task") {
            (count, Ok(_)) => granted += count,
            (_, Err(status)) => {
                assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
                refused += 1;
            }
        }
    }
    assert!(refused > 0, "128 pallets were asked of 40");
    // A refusal means fewer pallets were left than it asked (3 at most): whatever the order,
    // 38 to 40 are granted, never more.
    assert!((38..=40).contains(&granted), "reserved {granted} of 40");
    let listing = producer
        .get_listing(pb::GetListingRequest { listing_id: id.clone() })
        .await
        .expect("get")
        .into_inner()
        .listing
        .expect("listing");
    let reserved: i64 = listing
        .open_reservations
        .iter()
        .map(|reservation| reservation.quantity.as_ref().expect("q").amount_milli)
        .sum();
    assert_eq!(reserved, granted * 1000, "the stream holds exactly what was granted");
    let available = listing.available.map_or(0, |available| available.amount_milli);
    assert_eq!(available + reserved, 40_000);

    // Replaying the stream, after a restart, gives the same state.
    let server = server.restart().await.expect("restart");
    let replayed = client(&server, &market.producer_token)
        .await
        .get_listing(pb::GetListingRequest { listing_id: id })
        .await
        .expect("get")
        .into_inner()
        .listing
        .expect("listing");
    assert_eq!(replayed, listing);
}

#[tokio::test]
async fn bad_listings_are_refused_naming_the_field_and_nothing_is_appended() {
    let server = TestServer::start().await.expect("server");
    let market = market(&server).await;
    let mut producer = client(&server, &market.producer_token).await;
    let base = || pallet_offer(&market.producer_site);
    let cases: Vec<(pb::ListingTerms, &str)> = vec![
        (pb::ListingTerms { waste_code: "99 99 99".into(), ..base() }, "terms.waste_code"),
        (pb::ListingTerms { quantity: Some(pallets(0)), ..base() }, "terms.quantity.amount_milli"),
        (
            pb::ListingTerms { quantity: Some(pallets(-5)), minimum_lot: None, ..base() },
            "terms.quantity.amount_milli",
        ),
        (
            pb::ListingTerms { quantity: Some(pallets(1_000_000_000_000)), minimum_lot: None, ..base() },
            "terms.quantity.amount_milli",
        ),
        (pb::ListingTerms { site_id: market.recycler_site.clone(), ..base() }, "terms.site_id"),
        (
            pb::ListingTerms {
                location: Some(common::GeoPoint { latitude: 91.0, longitude: 7.75 }),
                ..base()
            },
            "terms.location.latitude",
        ),
        (
            pb::ListingTerms {
                price_per_unit: Some(common::Money { amount_minor: 350, currency_code: "USD".into() }),
                ..base()
            },
            "terms.price_per_unit.currency_code",
        ),
        (pb::ListingTerms { expires_at: Some(at(-3600)), ..base() }, "terms.expires_at"),
        // The end of the availability defaults to the expiry: the expiry is at fault, not the
        // end the caller never sent.
        (
            pb::ListingTerms { available_until: None, expires_at: Some(at(-3600)), ..base() },
            "terms.expires_at",
        ),
        (pb::ListingTerms { price_per_unit: None, ..base() }, "terms.price_per_unit"),
        (
            pb::ListingTerms {
                family: common::MaterialFamily::ProcessWater.into(),
                legal_status: pb::LegalStatus::ByProduct.into(),
                waste_code: String::new(),
                quality: None,
                ..base()
            },
            "terms.quantity.unit",
        ),
        (
            pb::ListingTerms {
                legal_status: pb::LegalStatus::Waste.into(),
                waste_code: String::new(),
                ..base()
            },
            "terms.waste_code",
        ),
        (
            pb::ListingTerms {
                attachments: vec![pb::Attachment {
                    kind: pb::AttachmentKind::Photo.into(),
                    url: "http://insecure".into(),
                    sha256: "a".repeat(64),
                }],
                ..base()
            },
            "terms.attachments[0].url",
        ),
    ];
    for (terms, expected) in cases {
        let status = producer
            .create_listing(pb::CreateListingRequest {
                request_id: String::new(),
                terms: Some(terms.clone()),
            })
            .await
            .expect_err(expected);
        assert_eq!(status.code(), Code::InvalidArgument, "{expected}: {status:?}");
        assert_eq!(field(&status), expected, "{status:?}");
    }
    let missing = producer
        .create_listing(pb::CreateListingRequest { request_id: String::new(), terms: None })
        .await
        .expect_err("no terms");
    assert_eq!(field(&missing), "terms");
    // A good listing after them: the list, caught up with it, holds it alone.
    let good = producer
        .create_listing(pb::CreateListingRequest { request_id: String::new(), terms: Some(base()) })
        .await
        .expect("a good listing")
        .into_inner();
    let mine = producer
        .list_my_listings(pb::ListMyListingsRequest { min_position: good.position, ..Default::default() })
        .await
        .expect("list")
        .into_inner();
    let listed: Vec<&str> = mine.listings.iter().map(|listing| listing.listing_id.as_str()).collect();
    assert_eq!(listed, [good.listing_id.as_str()], "nothing else was appended");
}

#[tokio::test]
async fn another_organization_cannot_amend_publish_withdraw_or_reserve() {
    let server = TestServer::start().await.expect("server");
    let market = market(&server).await;
    let mut producer = client(&server, &market.producer_token).await;
    let id = create(&mut producer, pallet_offer(&market.producer_site)).await;
    let mut intruder = client(&server, &market.recycler_token).await;
    let denied = [
        intruder
            .amend_listing(pb::AmendListingRequest {
                request_id: String::new(),
                listing_id: id.clone(),
                terms: Some(pallet_offer(&market.producer_site)),
            })
            .await
            .expect_err("amend"),
        intruder
            .publish_listing(pb::PublishListingRequest { request_id: String::new(), listing_id: id.clone() })
            .await
            .expect_err("publish"),
        intruder
            .withdraw_listing(pb::WithdrawListingRequest {
                request_id: String::new(),
                listing_id: id.clone(),
            })
            .await
            .expect_err("withdraw"),
        intruder.reserve_quantity(reserve(&id, Uuid::now_v7(), 5)).await.expect_err("reserve"),
        producer
            .reserve_quantity(reserve(&id, Uuid::now_v7(), 5))
            .await
            .expect_err("even the owner does not reserve"),
    ];
    for status in denied {
        assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    }
    // A recycler cannot offer; a producer cannot ask.
    let mut offer_by_recycler = pallet_offer(&market.recycler_site);
    offer_by_recycler.side = pb::ListingSide::Offer.into();
    let status = intruder
        .create_listing(pb::CreateListingRequest {
            request_id: String::new(),
            terms: Some(offer_by_recycler),
        })
        .await
        .expect_err("role");
    assert_eq!(status.code(), Code::PermissionDenied);
    let draft =
        producer.get_listing(pb::GetListingRequest { listing_id: id }).await.expect("get").into_inner();
    assert_eq!(draft.version, 0, "nothing changed");
}

#[tokio::test]
async fn hazardous_waste_is_requested_only_under_a_permit() {
    let server = TestServer::start().await.expect("server");
    let market = market(&server).await;
    let mut recycler = client(&server, &market.recycler_token).await;
    let solvents = || pb::ListingTerms {
        side: pb::ListingSide::Request.into(),
        family: common::MaterialFamily::Solvents.into(),
        waste_code: "14 06 03*".into(),
        quantity: Some(common::Quantity {
            amount_milli: 2_000_000,
            unit: common::Unit::Litre.into(),
            basis: 0,
        }),
        minimum_lot: None,
        quality: None,
        recurrence: None,
        site_id: market.recycler_site.clone(),
        attachments: vec![],
        ..pallet_offer(&market.recycler_site)
    };
    let refused = recycler
        .create_listing(pb::CreateListingRequest { request_id: String::new(), terms: Some(solvents()) })
        .await
        .expect_err("no permit");
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");

    OrganizationServiceClient::new(server.authed(&market.recycler_token).await.expect("channel"))
        .add_permit(pb::AddPermitRequest {
            request_id: String::new(),
            organization_id: market.recycler.clone(),
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
        .expect("permit");
    let id = create(&mut recycler, solvents()).await;
    let listing = recycler
        .get_listing(pb::GetListingRequest { listing_id: id })
        .await
        .expect("get")
        .into_inner()
        .listing
        .expect("listing");
    assert!(listing.hazardous);
    assert_eq!(listing.terms.expect("terms").max_distance_km, 200, "200 km by default");
    let _ = market.producer;
}

#[tokio::test]
async fn a_listing_closes_itself_when_its_expiry_passes() {
    let server = TestServer::start().await.expect("server");
    let market = market(&server).await;
    let mut producer = client(&server, &market.producer_token).await;
    let mut soon = pallet_offer(&market.producer_site);
    soon.expires_at = Some(at(2));
    soon.available_until = Some(at(1));
    let id = create(&mut producer, soon).await;
    publish(&mut producer, &id).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let listing = producer
            .get_listing(pb::GetListingRequest { listing_id: id.clone() })
            .await
            .expect("get")
            .into_inner()
            .listing
            .expect("listing");
        if listing.state() == pb::ListingState::Expired {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "still {:?} after its expiry", listing.state());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let status = producer
        .publish_listing(pb::PublishListingRequest { request_id: String::new(), listing_id: id })
        .await
        .expect_err("closed");
    assert_eq!(status.code(), Code::FailedPrecondition);
}

#[tokio::test]
async fn a_reservation_released_then_asked_again_is_held_again_and_repeats_hold_once() {
    let server = TestServer::start().await.expect("server");
    let market = market(&server).await;
    let mut producer = client(&server, &market.producer_token).await;
    let id = create(&mut producer, pallet_offer(&market.producer_site)).await;
    publish(&mut producer, &id).await;
    let mut service = client(&server, &market.service_token).await;
    let reservation = Uuid::now_v7();
    let held = |listing: &pb::Listing| {
        listing.open_reservations.iter().any(|open| open.reservation_id == reservation.to_string())
    };
    let show = |mut producer: Listings, id: String| async move {
        producer
            .get_listing(pb::GetListingRequest { listing_id: id })
            .await
            .expect("get")
            .into_inner()
            .listing
            .expect("listing")
    };
    // The platform's retries carry no request id: the listing's own state answers them.
    service.reserve_quantity(reserve(&id, reservation, 4)).await.expect("reserved");
    service.reserve_quantity(reserve(&id, reservation, 4)).await.expect("the same again: held once");
    let listing = show(producer.clone(), id.clone()).await;
    assert_eq!(listing.open_reservations.len(), 1);
    assert_eq!(listing.available.map(|quantity| quantity.amount_milli), Some(36_000));
    service
        .release_reservation(pb::ReleaseReservationRequest {
            request_id: String::new(),
            listing_id: id.clone(),
            reservation_id: reservation.to_string(),
        })
        .await
        .expect("released");
    assert!(!held(&show(producer.clone(), id.clone()).await));
    // Asked again after its release (a conclusion tried again), it is held again: never
    // answered "held" while nothing is.
    service.reserve_quantity(reserve(&id, reservation, 4)).await.expect("reserved again");
    let listing = show(producer, id).await;
    assert!(held(&listing), "{listing:?}");
    assert_eq!(listing.available.map(|quantity| quantity.amount_milli), Some(36_000));
}
