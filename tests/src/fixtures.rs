//! Values the black-box tests build again and again: times relative to now, quantities of
//! pallets, a token of the platform's services, organizations with a site and a token, pallet
//! listings, and a deal agreed through matching.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use symbiose_domain::Role;
use symbiose_kit::auth::{Claims, TokenAuthority};
use symbiose_proto::common::v1 as common;
use symbiose_proto::listings::v1 as pb;
use symbiose_proto::listings::v1::listing_service_client::ListingServiceClient;
use symbiose_proto::listings::v1::organization_service_client::OrganizationServiceClient;
use symbiose_proto::logistics::v1 as logistics;
use symbiose_proto::logistics::v1::logistics_service_client::LogisticsServiceClient;
use symbiose_proto::matching::v1 as matching;
use symbiose_proto::matching::v1::matching_service_client::MatchingServiceClient;
use symbiose_proto::settlement::v1 as settlement;
use symbiose_proto::settlement::v1::settlement_service_client::SettlementServiceClient;
use uuid::Uuid;

use crate::TestServer;

/// Longest wait for settlement to hold a deal's payment after its agreement.
const ESCROW_WAIT_MS: u64 = 20_000;

/// The operator records a deposit of `minor` euro cents for `organization_id`.
pub async fn deposit(server: &TestServer, organization_id: &str, minor: i64) -> anyhow::Result<()> {
    SettlementServiceClient::new(server.authed(&server.operator_token).await?)
        .record_deposit(settlement::RecordDepositRequest {
            request_id: String::new(),
            organization_id: organization_id.into(),
            amount: Some(common::Money { amount_minor: minor, currency_code: "EUR".into() }),
        })
        .await?;
    Ok(())
}

/// Waits (with a bound) until settlement holds the payment of `deal_id` in escrow, as `token`
/// (a party) sees it: a pickup waits for that. Settlement learns of the deal from matching's
/// events, after matching answered: until then it does not know the deal (NOT_FOUND).
pub async fn escrow_held(server: &TestServer, token: &str, deal_id: &str) -> anyhow::Result<()> {
    let mut client = SettlementServiceClient::new(server.authed(token).await?);
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(ESCROW_WAIT_MS);
    loop {
        let answer = client
            .list_deal_transfers(settlement::ListDealTransfersRequest {
                deal_id: deal_id.into(),
                min_position: 0,
                ..Default::default()
            })
            .await;
        let refused = match answer {
            Ok(listed) if !listed.get_ref().transfers.is_empty() => return Ok(()),
            Ok(listed) => listed.into_inner().escrow_refused,
            Err(status) if status.code() == tonic::Code::NotFound => status.message().to_owned(),
            Err(status) => return Err(status.into()),
        };
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "the payment of deal {deal_id} is not held: {refused}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Validity of a service token made for a test, in seconds.
const SERVICE_TOKEN_TTL_S: u64 = 3600;

pub fn now_s() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_secs() as i64)
}

/// A timestamp `seconds_from_now` away (negative for the past).
pub fn at(seconds_from_now: i64) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: now_s() + seconds_from_now, nanos: 0 }
}

/// `count` pallets, estimated.
pub fn pallets(count: i64) -> common::Quantity {
    common::Quantity {
        amount_milli: count * 1000,
        unit: common::Unit::Pallet.into(),
        basis: common::QuantityBasis::Estimated.into(),
    }
}

/// A token with the service role, as the platform's matching service holds: signed with the
/// server's own key, read from its data directory.
pub fn service_token(server: &TestServer) -> anyhow::Result<String> {
    let (key, _) = TokenAuthority::load_or_create(&server.config.data_dir.join("keys"))?;
    let now_s = now_s() as u64;
    Ok(key.issue(&Claims {
        organization_id: Uuid::nil(),
        roles: vec![Role::Service],
        issued_at_s: now_s,
        expires_at_s: now_s + SERVICE_TOKEN_TTL_S,
        token_id: Uuid::now_v7(),
    }))
}

/// An organization of the marketplace as a test uses it: its id, its token (all its roles)
/// and one site.
#[derive(Debug, Clone)]
pub struct Member {
    pub organization_id: String,
    pub token: String,
    pub site_id: String,
}

/// A French SIREN built from `number` (8 digits and the Luhn check digit), so that tests can
/// register as many distinct French organizations as they need.
pub fn siren(number: u32) -> String {
    let body = format!("{:08}", number % 100_000_000);
    let sum = |digits: &str| -> u32 {
        digits
            .chars()
            .rev()
            .enumerate()
            .map(|(index, digit)| {
                let value = digit.to_digit(10).unwrap_or(0);
                if index % 2 == 1 { (value * 2) / 10 + (value * 2) % 10 } else { value }
            })
            .sum()
    };
    let check = (0..10).find(|check| sum(&format!("{body}{check}")) % 10 == 0).unwrap_or(0);
    format!("{body}{check}")
}

/// Registers `legal_name` (in `country`, with `identifier` and `roles`) as the operator, gives
/// it a token and a site at `town` of the reference table.
pub async fn member(
    server: &TestServer,
    legal_name: &str,
    country: common::Country,
    identifier: &str,
    roles: &[common::Role],
    town: &str,
) -> anyhow::Result<Member> {
    let place =
        symbiose_domain::geo::place(town).with_context(|| format!("{town} is not a town of the table"))?;
    let mut operator = OrganizationServiceClient::new(server.operator().await?);
    let organization_id = operator
        .register_organization(pb::RegisterOrganizationRequest {
            request_id: String::new(),
            legal_name: legal_name.to_owned(),
            country: country.into(),
            legal_identifier: identifier.to_owned(),
            roles: roles.iter().map(|role| (*role).into()).collect(),
        })
        .await?
        .into_inner()
        .organization_id;
    let token = operator
        .issue_token(pb::IssueTokenRequest {
            organization_id: organization_id.clone(),
            roles: vec![],
            ttl_days: 0,
        })
        .await?
        .into_inner()
        .token;
    let mut own = OrganizationServiceClient::new(server.authed(&token).await?);
    let site_id = own
        .add_site(pb::AddSiteRequest {
            request_id: String::new(),
            organization_id: organization_id.clone(),
            name: format!("Site {town}"),
            address: Some(pb::Address {
                street: "1 rue du Port".to_owned(),
                postal_code: "00000".to_owned(),
                city: town.to_owned(),
                country: common::Country::from(place.country).into(),
            }),
            location: Some(place.point.into()),
        })
        .await?
        .into_inner()
        .site_id;
    Ok(Member { organization_id, token, site_id })
}

/// EUR pallets of grade B (EWC 15 01 03, waste), `count` of them at `price_minor` euro cents
/// each (an offer's price, a request's maximum), at `site_id`, available for 30 days, buyer
/// collects, other countries accepted, a request's default distance (200 km).
pub fn pallet_terms(side: pb::ListingSide, site_id: &str, count: i64, price_minor: i64) -> pb::ListingTerms {
    pb::ListingTerms {
        side: side.into(),
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

/// Creates and publishes a listing with `token`; its id and the position of its publication.
pub async fn publish(
    server: &TestServer,
    token: &str,
    terms: pb::ListingTerms,
) -> anyhow::Result<(String, u64)> {
    let mut listings = ListingServiceClient::new(server.authed(token).await?);
    let listing_id = listings
        .create_listing(pb::CreateListingRequest { request_id: String::new(), terms: Some(terms) })
        .await?
        .into_inner()
        .listing_id;
    let published = listings
        .publish_listing(pb::PublishListingRequest {
            request_id: String::new(),
            listing_id: listing_id.clone(),
        })
        .await?
        .into_inner();
    Ok((listing_id, published.position))
}

/// Longest wait for the matching proposer to propose a pair after a publication.
const PROPOSAL_WAIT_MS: u64 = 20_000;

/// The first proposal naming `listing` that `token`'s organization sees, waited for (with a
/// bound): the proposer works after a publication, not within it.
pub async fn first_proposal(
    server: &TestServer,
    token: &str,
    listing: &str,
) -> anyhow::Result<matching::Proposal> {
    let mut client = MatchingServiceClient::new(server.authed(token).await?);
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(PROPOSAL_WAIT_MS);
    loop {
        let listed = client
            .list_proposals(matching::ListProposalsRequest {
                listing_id: listing.into(),
                ..Default::default()
            })
            .await?
            .into_inner();
        if let Some(proposal) = listed.proposals.into_iter().next() {
            return Ok(proposal);
        }
        anyhow::ensure!(std::time::Instant::now() < deadline, "no proposal for listing {listing}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Publishes `offer` (by `seller`) and `request` (by `buyer`), waits for the proposal of the
/// pair, and has both accept it: the deal they agreed.
pub async fn agree(
    server: &TestServer,
    seller: &Member,
    offer: pb::ListingTerms,
    buyer: &Member,
    request: pb::ListingTerms,
) -> anyhow::Result<matching::Deal> {
    publish(server, &seller.token, offer).await?;
    let (request_id, _) = publish(server, &buyer.token, request).await?;
    let mut buyer_side = MatchingServiceClient::new(server.authed(&buyer.token).await?);
    let proposal = first_proposal(server, &buyer.token, &request_id).await?;
    let accept =
        |proposal_id: String| matching::AcceptProposalRequest { request_id: String::new(), proposal_id };
    MatchingServiceClient::new(server.authed(&seller.token).await?)
        .accept_proposal(accept(proposal.proposal_id.clone()))
        .await?;
    let concluded = buyer_side.accept_proposal(accept(proposal.proposal_id)).await?.into_inner();
    let deal = concluded.deals.into_iter().next().context("the last acceptance made a deal")?;
    deal_followed(server, &buyer.token, &deal.deal_id).await?;
    Ok(deal)
}

/// Waits (with a bound) until logistics and settlement know `deal_id`, as `token` (a party)
/// sees it: they learn of a deal from matching's events after matching answered, and until then
/// answer NOT_FOUND for it, which a test reading them next would take for a failure.
pub async fn deal_followed(server: &TestServer, token: &str, deal_id: &str) -> anyhow::Result<()> {
    let mut logistics = LogisticsServiceClient::new(server.authed(token).await?);
    let mut settlement = SettlementServiceClient::new(server.authed(token).await?);
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(ESCROW_WAIT_MS);
    loop {
        let quotes = logistics
            .list_quotes(logistics::ListQuotesRequest { deal_id: deal_id.into(), ..Default::default() })
            .await;
        let transfers = settlement
            .list_deal_transfers(settlement::ListDealTransfersRequest {
                deal_id: deal_id.into(),
                ..Default::default()
            })
            .await;
        let unknown = |status: Option<&tonic::Status>| {
            status.is_some_and(|status| status.code() == tonic::Code::NotFound)
        };
        if !unknown(quotes.as_ref().err()) && !unknown(transfers.as_ref().err()) {
            quotes?;
            transfers?;
            return Ok(());
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "deal {deal_id} unknown to logistics or settlement after {ESCROW_WAIT_MS} ms"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The deal of the walk-throughs between `seller` and `buyer`: 40 EUR pallets offered at 3.50
/// EUR, asked for at 4.00 EUR at most, proposed and accepted by both.
pub async fn pallet_deal(
    server: &TestServer,
    seller: &Member,
    buyer: &Member,
) -> anyhow::Result<matching::Deal> {
    agree(
        server,
        seller,
        pallet_terms(pb::ListingSide::Offer, &seller.site_id, 40, 350),
        buyer,
        pallet_terms(pb::ListingSide::Request, &buyer.site_id, 40, 400),
    )
    .await
}

/// The first invoice `token`'s organization issued or received, waited for (with a bound):
/// settlement issues it after the delivery, not within it.
pub async fn first_invoice(server: &TestServer, token: &str) -> anyhow::Result<settlement::Invoice> {
    let mut client = SettlementServiceClient::new(server.authed(token).await?);
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(ESCROW_WAIT_MS);
    loop {
        let listed =
            client.list_invoices(settlement::ListInvoicesRequest::default()).await?.into_inner().invoices;
        if let Some(invoice) = listed.into_iter().next() {
            return Ok(invoice);
        }
        anyhow::ensure!(std::time::Instant::now() < deadline, "no invoice");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The producer of the walk-throughs: Palettes de l'Est SAS, in Strasbourg.
pub async fn strasbourg_producer(server: &TestServer) -> anyhow::Result<Member> {
    member(
        server,
        "Palettes de l'Est SAS",
        common::Country::France,
        "73282932000074",
        &[common::Role::Producer],
        "Strasbourg",
    )
    .await
}

/// A carrier profile: a depot in Strasbourg (Port du Rhin) serving France and Germany within
/// `radius_km`, a 12 t truck of 18 pallet places, 1.80 EUR per km, 15.00 EUR per tonne, at least
/// 90.00 EUR, no pallet exchange.
pub fn carrier_profile(radius_km: u32) -> anyhow::Result<logistics::CarrierProfile> {
    let place = symbiose_domain::geo::place("Strasbourg").context("Strasbourg is in the table")?;
    Ok(logistics::CarrierProfile {
        carrier_organization_id: String::new(),
        depots: vec![logistics::Depot {
            depot_id: String::new(),
            name: "Port du Rhin".into(),
            location: Some(place.point.into()),
            country: common::Country::France.into(),
        }],
        countries: vec![common::Country::France.into(), common::Country::Germany.into()],
        radius_km,
        vehicles: vec![logistics::Vehicle {
            vehicle_id: String::new(),
            name: "Porteur 12 t".into(),
            payload_kg: 12_000,
            pallet_places: 18,
            tail_lift: true,
            dangerous_goods: false,
        }],
        rates: Some(logistics::Rates {
            per_km_minor: 180,
            per_tonne_minor: 1500,
            minimum_charge_minor: 9000,
            currency_code: "EUR".into(),
        }),
        pallet_exchange: false,
    })
}

/// The carrier of the walk-throughs, Transports du Rhin SARL in Strasbourg, with the profile of
/// [`carrier_profile`] (100 km) registered.
pub async fn rhine_carrier(server: &TestServer) -> anyhow::Result<Member> {
    let carrier = member(
        server,
        "Transports du Rhin SARL",
        common::Country::France,
        &siren(3_001),
        &[common::Role::Carrier],
        "Strasbourg",
    )
    .await?;
    LogisticsServiceClient::new(server.authed(&carrier.token).await?)
        .register_carrier(logistics::RegisterCarrierRequest {
            request_id: String::new(),
            profile: Some(carrier_profile(100)?),
        })
        .await?;
    Ok(carrier)
}

/// `count` buyers in Strasbourg ("Acheteur <i> SAS", SIRENs from `siren_base`), each with a
/// published request of `pallets` EUR pallets at 4.00 EUR at most: each buyer and its request.
pub async fn strasbourg_buyers(
    server: &TestServer,
    count: usize,
    siren_base: u32,
    pallets: i64,
) -> anyhow::Result<Vec<(Member, String)>> {
    let mut buyers = Vec::new();
    for index in 0..count {
        let buyer = member(
            server,
            &format!("Acheteur {index} SAS"),
            common::Country::France,
            &siren(siren_base + index as u32),
            &[common::Role::Buyer],
            "Strasbourg",
        )
        .await?;
        let (request, _) = publish(
            server,
            &buyer.token,
            pallet_terms(pb::ListingSide::Request, &buyer.site_id, pallets, 400),
        )
        .await?;
        buyers.push((buyer, request));
    }
    Ok(buyers)
}

/// The buyer of the walk-throughs, across the Rhine: Kehler Palettenservice GmbH, in Kehl.
pub async fn kehl_buyer(server: &TestServer) -> anyhow::Result<Member> {
    member(
        server,
        "Kehler Palettenservice GmbH",
        common::Country::Germany,
        "DE136695976",
        &[common::Role::Buyer],
        "Kehl",
    )
    .await
}

/// Pages a list through most this many before a test calls it endless.
const PAGES_MAX: usize = 10;

/// Every item of a paged list, read `page_size` at a time through `fetch` (a page token in,
/// the page's items and the next token out), and how many pages it took. Fails if a page
/// holds more than `page_size` items or the pages do not end.
pub async fn read_pages<T, F, Fut>(page_size: u32, mut fetch: F) -> (Vec<T>, usize)
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = (Vec<T>, String)>,
{
    let (mut items, mut page_token, mut pages) = (Vec::new(), String::new(), 0);
    loop {
        let (page, next_page_token) = fetch(page_token).await;
        pages += 1;
        assert!(page.len() <= page_size as usize, "a page of {} items for pages of {page_size}", page.len());
        items.extend(page);
        if next_page_token.is_empty() {
            return (items, pages);
        }
        assert!(pages < PAGES_MAX, "the pages of {page_size} do not end");
        page_token = next_page_token;
    }
}
