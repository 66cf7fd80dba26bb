//! `CatalogService` through gRPC: the catalog follows publication, amendment, reservation,
//! release and withdrawal (each read naming the position of the write before it); radius and country
//! filters on real towns (Strasbourg, Kehl, Basel, Reims); labels in the caller's language;
//! bad queries; a rebuild on the operator's demand; a stateless replica fed from NATS.

use symbiose_domain::geo::place;
use symbiose_feed::testing::NatsServer;
use symbiose_proto::catalog::v1 as catalog;
use symbiose_proto::catalog::v1::catalog_service_client::CatalogServiceClient;
use symbiose_proto::common::v1 as common;
use symbiose_proto::listings::v1 as pb;
use symbiose_proto::listings::v1::listing_service_client::ListingServiceClient;
use symbiose_proto::listings::v1::organization_service_client::OrganizationServiceClient;
use symbiose_tests::fixtures::{self, at, pallets};
use symbiose_tests::{AuthedChannel, CatalogReplica, TestServer};
use tonic::Code;
use tonic_types::StatusExt;
use uuid::Uuid;

type Listings = ListingServiceClient<AuthedChannel>;
type Catalog = CatalogServiceClient<AuthedChannel>;

/// The towns the tests place sites in.
const TOWNS: [&str; 4] = ["Strasbourg", "Kehl", "Basel", "Reims"];

/// `count` EUR pallets, grade B, at `price_minor` euro cents each, at `site_id`.
fn pallet_offer(site_id: &str, count: i64, price_minor: i64) -> pb::ListingTerms {
    pb::ListingTerms {
        side: pb::ListingSide::Offer.into(),
        family: common::MaterialFamily::Pallets.into(),
        waste_code: "15 01 03".into(),
        legal_status: pb::LegalStatus::Waste.into(),
        description: "EUR/EPAL 1200x800, grade B".into(),
        quality: Some(pb::Quality { kind: Some(pb::quality::Kind::PalletGrade(pb::PalletGrade::B.into())) }),
        quantity: Some(pallets(count)),
        minimum_lot: Some(pallets(1)),
        recurrence: None,
        site_id: site_id.into(),
        location: None,
        available_from: Some(at(0)),
        available_until: Some(at(30 * 86_400)),
        price_per_unit: Some(common::Money { amount_minor: price_minor, currency_code: "EUR".into() }),
        delivery: Some(pb::DeliveryTerms {
            mode: pb::DeliveryMode::BuyerCollects.into(),
            seller_delivery_km: 0,
        }),
        max_distance_km: 0,
        accepts_other_countries: true,
        attachments: vec![],
        expires_at: Some(at(60 * 86_400)),
    }
}

/// A producer with a site in each of [`TOWNS`] (in that order), its token, and a token of
/// the platform's services (which reserve quantities).
struct Producer {
    organization_id: String,
    token: String,
    sites: Vec<String>,
    service_token: String,
}

async fn producer(server: &TestServer) -> Producer {
    let mut operator = OrganizationServiceClient::new(server.operator().await.expect("channel"));
    let organization_id = operator
        .register_organization(pb::RegisterOrganizationRequest {
            request_id: String::new(),
            legal_name: "Palettes de l'Est SAS".into(),
            country: common::Country::France.into(),
            legal_identifier: "73282932000074".into(),
            roles: vec![common::Role::Producer.into()],
        })
        .await
        .expect("register")
        .into_inner()
        .organization_id;
    let token = operator
        .issue_token(pb::IssueTokenRequest {
            organization_id: organization_id.clone(),
            roles: vec![],
            ttl_days: 0,
        })
        .await
        .expect("token")
        .into_inner()
        .token;
    let mut directory = OrganizationServiceClient::new(server.authed(&token).await.expect("channel"));
    let mut sites = Vec::new();
    for town in TOWNS {
        let place = place(town).expect("a town of the reference table");
        let site = directory
            .add_site(pb::AddSiteRequest {
                request_id: String::new(),
                organization_id: organization_id.clone(),
                name: format!("Depot {town}"),
                address: Some(pb::Address {
                    street: "1 rue du Port".into(),
                    postal_code: "00000".into(),
                    city: town.into(),
                    country: common::Country::from(place.country).into(),
                }),
                location: Some(place.point.into()),
            })
            .await
            .expect("site")
            .into_inner()
            .site_id;
        sites.push(site);
    }
    let service_token = fixtures::service_token(server).expect("a service token");
    Producer { organization_id, token, sites, service_token }
}

async fn listings(server: &TestServer, token: &str) -> Listings {
    ListingServiceClient::new(server.authed(token).await.expect("channel"))
}

async fn catalog(server: &TestServer, token: &str) -> Catalog {
    CatalogServiceClient::new(server.authed(token).await.expect("channel"))
}

/// Creates and publishes an offer; its id and the position of its publication.
async fn publish_offer(client: &mut Listings, terms: pb::ListingTerms) -> (String, u64) {
    let listing_id = client
        .create_listing(pb::CreateListingRequest { request_id: String::new(), terms: Some(terms) })
        .await
        .expect("create")
        .into_inner()
        .listing_id;
    let published = client
        .publish_listing(pb::PublishListingRequest {
            request_id: String::new(),
            listing_id: listing_id.clone(),
        })
        .await
        .expect("publish")
        .into_inner();
    (listing_id, published.position)
}

async fn entry(
    catalog: &mut Catalog,
    listing_id: &str,
    min_position: u64,
) -> Result<catalog::CatalogEntry, tonic::Status> {
    catalog
        .get_catalog_entry(catalog::GetCatalogEntryRequest {
            listing_id: listing_id.into(),
            language: String::new(),
            min_position,
        })
        .await
        .map(|response| response.into_inner().entry.expect("an entry"))
}

fn near(town: &str, radius_km: u32) -> catalog::SearchCatalogRequest {
    let place = place(town).expect("a town of the reference table");
    catalog::SearchCatalogRequest { near: Some(place.point.into()), radius_km, ..Default::default() }
}

fn field(status: &tonic::Status) -> String {
    status
        .get_error_details()
        .bad_request()
        .map(|bad| bad.field_violations[0].field.clone())
        .unwrap_or_default()
}

fn available_of(entry: &catalog::CatalogEntry) -> i64 {
    entry.available.as_ref().map_or(0, |quantity| quantity.amount_milli)
}

#[tokio::test]
async fn the_catalog_follows_publication_amendment_reservation_release_and_withdrawal() {
    let server = TestServer::start().await.expect("server");
    let producer = producer(&server).await;
    let mut client = listings(&server, &producer.token).await;
    let mut search = catalog(&server, &producer.token).await;

    // A draft is its owner's business: not in the catalog.
    let created = client
        .create_listing(pb::CreateListingRequest {
            request_id: String::new(),
            terms: Some(pallet_offer(&producer.sites[0], 40, 350)),
        })
        .await
        .expect("create")
        .into_inner();
    let id = created.listing_id.clone();
    let status = entry(&mut search, &id, created.position).await.expect_err("a draft");
    assert_eq!(status.code(), Code::NotFound, "{status:?}");

    // Published: there, with all its quantity.
    let published = client
        .publish_listing(pb::PublishListingRequest { request_id: String::new(), listing_id: id.clone() })
        .await
        .expect("publish")
        .into_inner();
    let shown = entry(&mut search, &id, published.position).await.expect("published");
    assert_eq!(available_of(&shown), 40_000);
    assert_eq!(shown.price_per_unit.as_ref().map(|price| price.amount_minor), Some(350));
    assert_eq!(shown.material_family_label, "EUR pallets and other pallets");
    assert_eq!(shown.pallet_grade, pb::PalletGrade::B as i32);
    assert_eq!(shown.published_position, published.position);

    // Amended: the new price.
    let amended = client
        .amend_listing(pb::AmendListingRequest {
            request_id: String::new(),
            listing_id: id.clone(),
            terms: Some(pallet_offer(&producer.sites[0], 40, 300)),
        })
        .await
        .expect("amend")
        .into_inner();
    let shown = entry(&mut search, &id, amended.position).await.expect("amended");
    assert_eq!(shown.price_per_unit.as_ref().map(|price| price.amount_minor), Some(300));
    assert_eq!(shown.version, amended.version);

    // Reserved: what is left.
    let mut service = listings(&server, &producer.service_token).await;
    let reservation_id = Uuid::now_v7().to_string();
    let reserved = service
        .reserve_quantity(pb::ReserveQuantityRequest {
            request_id: String::new(),
            listing_id: id.clone(),
            reservation_id: reservation_id.clone(),
            quantity: Some(pallets(15)),
        })
        .await
        .expect("reserve")
        .into_inner();
    let shown = entry(&mut search, &id, reserved.position).await.expect("reserved");
    assert_eq!(available_of(&shown), 25_000);
    assert_eq!(shown.quantity.as_ref().map(|quantity| quantity.amount_milli), Some(40_000));

    // Released: all of it again.
    let released = service
        .release_reservation(pb::ReleaseReservationRequest {
            request_id: String::new(),
            listing_id: id.clone(),
            reservation_id,
        })
        .await
        .expect("release")
        .into_inner();
    let shown = entry(&mut search, &id, released.position).await.expect("released");
    assert_eq!(available_of(&shown), 40_000);
    let before = search
        .search_catalog(catalog::SearchCatalogRequest {
            min_position: released.position,
            ..Default::default()
        })
        .await
        .expect("search")
        .into_inner();
    assert_eq!(before.entries.len(), 1, "{:?}", before.entries);

    // Withdrawn: gone, from a get and from a search.
    let withdrawn = client
        .withdraw_listing(pb::WithdrawListingRequest { request_id: String::new(), listing_id: id.clone() })
        .await
        .expect("withdraw")
        .into_inner();
    let status = entry(&mut search, &id, withdrawn.position).await.expect_err("withdrawn");
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    let found = search
        .search_catalog(catalog::SearchCatalogRequest {
            min_position: withdrawn.position,
            ..Default::default()
        })
        .await
        .expect("search")
        .into_inner();
    // The same query again: the cached page of the earlier position is not served.
    assert!(found.entries.is_empty(), "{:?}", found.entries);
    assert!(found.position > withdrawn.position);
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn radius_and_countries_filter_on_real_towns_nearest_first() {
    let server = TestServer::start().await.expect("server");
    let producer = producer(&server).await;
    let mut client = listings(&server, &producer.token).await;
    let mut ids = Vec::new();
    let mut last_position = 0;
    for (index, site) in producer.sites.iter().enumerate() {
        let (id, position) = publish_offer(&mut client, pallet_offer(site, 10, 100 + index as i64)).await;
        ids.push(id);
        last_position = position;
    }
    let (strasbourg, kehl, basel, reims) = (&ids[0], &ids[1], &ids[2], &ids[3]);
    let mut search = catalog(&server, &producer.token).await;
    let mut run = async |request: catalog::SearchCatalogRequest| -> Vec<(String, f64)> {
        let request = catalog::SearchCatalogRequest { min_position: last_position, ..request };
        let found = search.search_catalog(request).await.expect("search").into_inner();
        found.entries.into_iter().map(|entry| (entry.listing_id, entry.distance_km.unwrap_or(-1.0))).collect()
    };
    let ids_of = |hits: &[(String, f64)]| hits.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>();

    let within_10 = run(near("Strasbourg", 10)).await;
    assert_eq!(ids_of(&within_10), [strasbourg.clone(), kehl.clone()]);
    assert!(within_10[0].1 < 0.5, "{within_10:?}");
    assert!((3.0..8.0).contains(&within_10[1].1), "Strasbourg-Kehl about 5 km: {within_10:?}");

    let within_120 = run(near("Strasbourg", 120)).await;
    assert_eq!(ids_of(&within_120), [strasbourg.clone(), kehl.clone(), basel.clone()]);
    assert!((105.0..120.0).contains(&within_120[2].1), "Strasbourg-Basel about 113 km: {within_120:?}");

    let within_300 = run(near("Strasbourg", 300)).await;
    assert_eq!(ids_of(&within_300), [strasbourg.clone(), kehl.clone(), basel.clone(), reims.clone()]);
    assert!((270.0..295.0).contains(&within_300[3].1), "Strasbourg-Reims about 282 km: {within_300:?}");

    // Only France; France and Germany; anywhere within the radius.
    let france = common::Country::France as i32;
    let germany = common::Country::Germany as i32;
    let only_france =
        run(catalog::SearchCatalogRequest { countries: vec![france], ..near("Strasbourg", 300) }).await;
    assert_eq!(ids_of(&only_france), [strasbourg.clone(), reims.clone()]);
    let france_and_germany =
        run(catalog::SearchCatalogRequest { countries: vec![france, germany], ..near("Strasbourg", 300) })
            .await;
    assert_eq!(ids_of(&france_and_germany), [strasbourg.clone(), kehl.clone(), reims.clone()]);

    // From Reims, nearest first is the other way round.
    let from_reims = run(near("Reims", 300)).await;
    assert_eq!(ids_of(&from_reims), [reims.clone(), strasbourg.clone(), kehl.clone()]);

    // By price, within a price range, without a point.
    let by_price = run(catalog::SearchCatalogRequest {
        sort: catalog::CatalogSort::Price.into(),
        currency: "EUR".into(),
        price_min_minor: Some(101),
        price_max_minor: Some(103),
        ..Default::default()
    })
    .await;
    assert_eq!(ids_of(&by_price), [kehl.clone(), basel.clone(), reims.clone()]);
    assert!(by_price.iter().all(|(_, distance)| *distance < 0.0), "no distance without a point");

    // Page by page, one at a time, the same order as all at once.
    let mut paged = Vec::new();
    let mut page_token = String::new();
    for _ in 0..TOWNS.len() + 1 {
        let found = search
            .search_catalog(catalog::SearchCatalogRequest {
                page_size: 1,
                page_token,
                ..near("Strasbourg", 300)
            })
            .await
            .expect("page")
            .into_inner();
        paged.extend(found.entries.into_iter().map(|entry| entry.listing_id));
        page_token = found.next_page_token;
        if page_token.is_empty() {
            break;
        }
    }
    assert_eq!(paged, ids_of(&within_300));
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn labels_come_in_the_language_asked_for() {
    let server = TestServer::start().await.expect("server");
    let producer = producer(&server).await;
    let mut client = listings(&server, &producer.token).await;
    let (id, position) = publish_offer(&mut client, pallet_offer(&producer.sites[0], 5, 100)).await;
    let mut search = catalog(&server, &producer.token).await;

    let mut request = tonic::Request::new(catalog::GetCatalogEntryRequest {
        listing_id: id.clone(),
        language: String::new(),
        min_position: position,
    });
    request.metadata_mut().insert("accept-language", "fr-CH, fr;q=0.9, en;q=0.8".parse().expect("header"));
    let french = search.get_catalog_entry(request).await.expect("get").into_inner().entry.expect("entry");
    assert_eq!(french.material_family_label, "Palettes EUR et autres palettes");

    let german = search
        .search_catalog(catalog::SearchCatalogRequest { language: "de".into(), ..Default::default() })
        .await
        .expect("search")
        .into_inner();
    assert_eq!(german.entries[0].material_family_label, "EUR-Paletten und andere Paletten");
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn bad_queries_are_refused_naming_the_field() {
    let server = TestServer::start().await.expect("server");
    let mut search = catalog(&server, &server.operator_token).await;
    let cases = [
        ("radius_km", near("Strasbourg", 0)),
        ("radius_km", near("Strasbourg", 1001)),
        ("near", catalog::SearchCatalogRequest { radius_km: 10, ..Default::default() }),
        ("page_size", catalog::SearchCatalogRequest { page_size: 201, ..Default::default() }),
        ("material_family", catalog::SearchCatalogRequest { material_family: 99, ..Default::default() }),
        (
            "page_token",
            catalog::SearchCatalogRequest { page_token: "not-a-token".into(), ..Default::default() },
        ),
        ("waste_code", catalog::SearchCatalogRequest { waste_code: "99 99 99".into(), ..Default::default() }),
        ("countries", catalog::SearchCatalogRequest { countries: vec![42], ..Default::default() }),
        ("currency", catalog::SearchCatalogRequest { price_max_minor: Some(100), ..Default::default() }),
        ("language", catalog::SearchCatalogRequest { language: "it".into(), ..Default::default() }),
    ];
    for (expected, request) in cases {
        let status = search.search_catalog(request).await.expect_err(expected);
        assert_eq!(status.code(), Code::InvalidArgument, "{expected}: {status:?}");
        assert_eq!(field(&status), expected, "{status:?}");
        assert!(status.message().starts_with(expected), "{status:?}");
    }
    let status = entry(&mut search, "not-a-uuid", 0).await.expect_err("bad id");
    assert_eq!(field(&status), "listing_id", "{status:?}");

    // A position the log has not reached: UNAVAILABLE after the bounded wait, saying how far.
    let status = search
        .search_catalog(catalog::SearchCatalogRequest { min_position: 1_000_000, ..Default::default() })
        .await
        .expect_err("ahead of the log");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(status.message().contains("behind"), "{status:?}");

    // Every call needs a token.
    let mut anonymous = CatalogServiceClient::new(server.channel().await.expect("channel"));
    let status =
        anonymous.search_catalog(catalog::SearchCatalogRequest::default()).await.expect_err("no token");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    let mut forged = catalog(&server, "not.a.token").await;
    let status =
        forged.search_catalog(catalog::SearchCatalogRequest::default()).await.expect_err("bad token");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn a_restart_rebuilds_the_same_catalog_from_the_log() {
    let server = TestServer::start().await.expect("server");
    let producer = producer(&server).await;
    let mut client = listings(&server, &producer.token).await;
    let (kept, _) = publish_offer(&mut client, pallet_offer(&producer.sites[0], 10, 100)).await;
    let (gone, _) = publish_offer(&mut client, pallet_offer(&producer.sites[1], 10, 100)).await;
    let withdrawn = client
        .withdraw_listing(pb::WithdrawListingRequest { request_id: String::new(), listing_id: gone.clone() })
        .await
        .expect("withdraw")
        .into_inner();
    let request =
        catalog::SearchCatalogRequest { min_position: withdrawn.position, ..near("Strasbourg", 50) };
    let before =
        catalog(&server, &producer.token).await.search_catalog(request.clone()).await.expect("search");

    let server = server.restart().await.expect("restart");
    let after = catalog(&server, &producer.token).await.search_catalog(request).await.expect("search");
    let ids = |response: tonic::Response<catalog::SearchCatalogResponse>| {
        response.into_inner().entries.into_iter().map(|entry| entry.listing_id).collect::<Vec<_>>()
    };
    let (before, after) = (ids(before), ids(after));
    assert_eq!(before, [kept]);
    assert_eq!(after, before);
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn the_operator_rebuilds_the_catalog_on_demand_and_it_answers_the_same() {
    let server = TestServer::start().await.expect("server");
    let producer = producer(&server).await;
    let mut client = listings(&server, &producer.token).await;
    let (kept, _) = publish_offer(&mut client, pallet_offer(&producer.sites[0], 10, 100)).await;
    let (gone, _) = publish_offer(&mut client, pallet_offer(&producer.sites[1], 10, 100)).await;
    let withdrawn = client
        .withdraw_listing(pb::WithdrawListingRequest { request_id: String::new(), listing_id: gone })
        .await
        .expect("withdraw")
        .into_inner();
    let request =
        catalog::SearchCatalogRequest { min_position: withdrawn.position, ..near("Strasbourg", 50) };
    let mut search = catalog(&server, &producer.token).await;
    let before = search.search_catalog(request.clone()).await.expect("search").into_inner();

    // Only the operator may ask: a rebuild costs the whole log's reading.
    let refused =
        search.rebuild_catalog(catalog::RebuildCatalogRequest {}).await.expect_err("not the operator's");
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");

    let rebuilt = catalog(&server, &server.operator_token)
        .await
        .rebuild_catalog(catalog::RebuildCatalogRequest {})
        .await
        .expect("rebuilt")
        .into_inner();
    assert_eq!(rebuilt.entries, 1, "one offer is open");
    assert!(rebuilt.position > withdrawn.position, "{rebuilt:?} reflects the withdrawal");

    let after = search.search_catalog(request).await.expect("search").into_inner();
    assert_eq!(after.entries, before.entries);
    assert_eq!(after.entries.iter().map(|entry| entry.listing_id.clone()).collect::<Vec<_>>(), [kept]);

    // And it follows on: what is published after the rebuild shows.
    let (later, position) = publish_offer(&mut client, pallet_offer(&producer.sites[0], 5, 100)).await;
    let found = entry(&mut search, &later, position).await.expect("in the catalog after the rebuild");
    assert_eq!(available_of(&found), 5_000);
    server.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_catalog_replica_rebuilds_from_nats_follows_live_and_refuses_revoked_tokens() {
    let Some(nats) = NatsServer::start_or_skip("a_catalog_replica_rebuilds_from_nats") else {
        return;
    };
    let server = TestServer::start_with(|config| config.nats_url = Some(nats.url())).await.expect("server");
    let producer = producer(&server).await;
    let mut client = listings(&server, &producer.token).await;
    // History: written before the replica starts, so it comes from the replay.
    let (first, _) = publish_offer(&mut client, pallet_offer(&producer.sites[0], 10, 100)).await;
    let (second, _) = publish_offer(&mut client, pallet_offer(&producer.sites[1], 20, 100)).await;
    let withdrawn = client
        .withdraw_listing(pb::WithdrawListingRequest { request_id: String::new(), listing_id: second })
        .await
        .expect("withdraw")
        .into_inner();

    let replica = CatalogReplica::start(&server).await.expect("replica");
    let mut search = CatalogServiceClient::new(replica.authed(&producer.token).await.expect("channel"));
    let request =
        catalog::SearchCatalogRequest { min_position: withdrawn.position, ..near("Strasbourg", 50) };
    let found = search.search_catalog(request).await.expect("search").into_inner();
    assert_eq!(
        found.entries.iter().map(|entry| entry.listing_id.as_str()).collect::<Vec<_>>(),
        [first.as_str()]
    );

    // Live: a reservation, read back at the position it returned.
    let reserved = listings(&server, &producer.service_token)
        .await
        .reserve_quantity(pb::ReserveQuantityRequest {
            request_id: String::new(),
            listing_id: first.clone(),
            reservation_id: Uuid::now_v7().to_string(),
            quantity: Some(pallets(4)),
        })
        .await
        .expect("reserved")
        .into_inner();
    let reserved_entry = entry(&mut search, &first, reserved.position).await.expect("still open");
    assert_eq!(available_of(&reserved_entry), 6_000, "10 pallets, 4 reserved");

    // A revoked token is refused by the replica too, once the revocation reached it.
    let mut organizations = OrganizationServiceClient::new(server.operator().await.expect("channel"));
    let issued = organizations
        .issue_token(pb::IssueTokenRequest {
            organization_id: producer.organization_id.clone(),
            roles: vec![],
            ttl_days: 1,
        })
        .await
        .expect("issued")
        .into_inner();
    let mut holder = CatalogServiceClient::new(replica.authed(&issued.token).await.expect("channel"));
    let (_, position) = publish_offer(&mut client, pallet_offer(&producer.sites[0], 1, 100)).await;
    holder
        .search_catalog(catalog::SearchCatalogRequest { min_position: position, ..Default::default() })
        .await
        .expect("a valid token is accepted");
    organizations.revoke_token(pb::RevokeTokenRequest { token_id: issued.token_id }).await.expect("revoked");
    // The events come in log order: once the replica reflects a write made after the
    // revocation, it has applied the revocation too.
    let (_, after_revocation) = publish_offer(&mut client, pallet_offer(&producer.sites[0], 1, 100)).await;
    search
        .search_catalog(catalog::SearchCatalogRequest {
            min_position: after_revocation,
            ..Default::default()
        })
        .await
        .expect("search");
    let status = holder
        .search_catalog(catalog::SearchCatalogRequest::default())
        .await
        .expect_err("a revoked token is refused");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");

    // And the replica rebuilds on demand from NATS, to the same state.
    let rebuilt = CatalogServiceClient::new(replica.authed(&server.operator_token).await.expect("channel"))
        .rebuild_catalog(catalog::RebuildCatalogRequest {})
        .await
        .expect("rebuilt")
        .into_inner();
    assert_eq!(rebuilt.entries, 3, "the first offer and two of a pallet each: {rebuilt:?}");
    let again = entry(&mut search, &first, 0).await.expect("still open");
    assert_eq!(available_of(&again), 6_000);

    replica.stop().await.expect("the replica stops cleanly");
    server.stop().await.expect("stop");
}
