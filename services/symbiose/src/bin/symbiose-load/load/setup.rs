//! What the load needs before it starts, made through the public API as a partner app would:
//! organizations registered by the operator, each with a token and a site in a town of the
//! reference table, and open listings, offers and requests of pallets, for the queries to find.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use symbiose::cli::Bearer;
use symbiose_domain::geo;
use symbiose_domain::identifier::{Identifier, IdentifierKind};
use symbiose_proto::common::v1 as common;
use symbiose_proto::listings::v1 as listings;
use symbiose_proto::listings::v1::listing_service_client::ListingServiceClient;
use symbiose_proto::listings::v1::organization_service_client::OrganizationServiceClient;
use tokio::task::JoinSet;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use uuid::Uuid;

/// A channel whose calls carry a token.
pub(crate) type Authed = InterceptedService<Channel, Bearer>;

/// Most organizations a run registers: one per client up to this, then clients share them.
pub(crate) const ORGANIZATIONS_MAX: usize = 64;
/// Calls of the setup in flight at once.
const SETUP_IN_FLIGHT_MAX: usize = 16;
/// Pallets each offer holds: enough for every reservation a run makes of it.
pub(crate) const OFFER_PALLETS: i64 = 1_000_000;
/// Pallets each request asks for.
const REQUEST_PALLETS: i64 = 200;
/// How far a request's buyer collects, in kilometres.
const REQUEST_DISTANCE_KM: u32 = 250;
/// How long a listing stays open, in days.
const LISTING_OPEN_DAYS: i64 = 60;
/// Candidate numbers tried for an identifier whose check digit the domain accepts.
const IDENTIFIER_CANDIDATES_MAX: u64 = 10;

/// An organization of the run: its token, its site and where it is.
#[derive(Debug, Clone)]
pub(crate) struct Member {
    pub(crate) organization_id: String,
    pub(crate) token: String,
    pub(crate) site_id: String,
    pub(crate) place: &'static geo::Place,
}

/// What the queries of a member work on: its open listings.
#[derive(Debug, Clone, Default)]
pub(crate) struct Seeded {
    pub(crate) offers: Vec<String>,
    pub(crate) requests: Vec<String>,
}

/// A channel carrying `token` over `channel`'s connection.
pub(crate) fn authed(channel: &Channel, token: &str) -> anyhow::Result<Authed> {
    let bearer = Bearer::new(token).context("a token unfit for a header: check --token-file")?;
    Ok(InterceptedService::new(channel.clone(), bearer))
}

/// Registers `count` French organizations, producers and buyers, each with a token and a site
/// in one of the towns of the reference table in turn.
pub(crate) async fn register(
    operator: &Authed,
    channel: &Channel,
    count: usize,
) -> anyhow::Result<Vec<Member>> {
    assert!((1..=ORGANIZATIONS_MAX).contains(&count), "organizations are bounded");
    let places = geo::places();
    // A run against a server that already holds earlier runs' organizations needs identifiers
    // they do not have: the numbers start at a random place.
    let first_number = u64::from(Uuid::now_v7().as_u128() as u32) % 9_000_000;
    let mut members = Vec::with_capacity(count);
    let mut registering = JoinSet::new();
    for index in 0..count {
        if registering.len() >= SETUP_IN_FLIGHT_MAX {
            members.push(joined(registering.join_next().await)?);
        }
        let operator = OrganizationServiceClient::new(operator.clone());
        let channel = channel.clone();
        let place = &places[index % places.len()];
        let number = first_number + index as u64;
        registering.spawn(async move { member(operator, &channel, index, number, place).await });
    }
    while let Some(done) = registering.join_next().await {
        members.push(joined(Some(done))?);
    }
    Ok(members)
}

/// Creates and publishes `count` listings, offers and requests in turn, spread over `members`;
/// what each member holds, in the order of `members`.
pub(crate) async fn seed(channel: &Channel, members: &[Member], count: usize) -> anyhow::Result<Vec<Seeded>> {
    let mut seeded = vec![Seeded::default(); members.len()];
    let mut publishing = JoinSet::new();
    let record =
        |seeded: &mut Vec<Seeded>, (owner, side, id): (usize, listings::ListingSide, String)| match side {
            listings::ListingSide::Request => seeded[owner].requests.push(id),
            _ => seeded[owner].offers.push(id),
        };
    for index in 0..count {
        if publishing.len() >= SETUP_IN_FLIGHT_MAX {
            record(&mut seeded, joined(publishing.join_next().await)?);
        }
        // Each member gets an offer first and a request second, so every member has both as
        // soon as there are two listings a member.
        let owner = (index / 2) % members.len();
        let side = if index.is_multiple_of(2) {
            listings::ListingSide::Offer
        } else {
            listings::ListingSide::Request
        };
        let member = &members[owner];
        let client = ListingServiceClient::new(authed(channel, &member.token)?);
        let terms = terms(side, &member.site_id, index as u64);
        publishing.spawn(async move {
            let id = create_and_publish(client, terms).await?;
            Ok::<_, anyhow::Error>((owner, side, id))
        });
    }
    while let Some(done) = publishing.join_next().await {
        record(&mut seeded, joined(Some(done))?);
    }
    Ok(seeded)
}

/// Creates a listing and publishes it; its id.
pub(crate) async fn create_and_publish(
    mut client: ListingServiceClient<Authed>,
    terms: listings::ListingTerms,
) -> anyhow::Result<String> {
    let created = client
        .create_listing(listings::CreateListingRequest { request_id: String::new(), terms: Some(terms) })
        .await
        .map_err(status("CreateListing"))?
        .into_inner();
    client
        .publish_listing(listings::PublishListingRequest {
            request_id: String::new(),
            listing_id: created.listing_id.clone(),
        })
        .await
        .map_err(status("PublishListing"))?;
    Ok(created.listing_id)
}

/// The terms of a listing of EUR pallets at `site_id`, open from now; `variant` varies the
/// grade and the price, so that queries have something to rank.
pub(crate) fn terms(side: listings::ListingSide, site_id: &str, variant: u64) -> listings::ListingTerms {
    let now_s = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_secs()) as i64;
    let offer = side == listings::ListingSide::Offer;
    let grade = [listings::PalletGrade::B, listings::PalletGrade::C][(variant % 2) as usize];
    listings::ListingTerms {
        side: side.into(),
        family: common::MaterialFamily::Pallets.into(),
        waste_code: "15 01 03".into(),
        legal_status: listings::LegalStatus::Waste.into(),
        description: "EUR/EPAL 1200x800".into(),
        quality: Some(listings::Quality { kind: Some(listings::quality::Kind::PalletGrade(grade.into())) }),
        quantity: Some(pallets(if offer { OFFER_PALLETS } else { REQUEST_PALLETS })),
        minimum_lot: Some(pallets(1)),
        recurrence: None,
        site_id: site_id.to_owned(),
        location: None,
        available_from: Some(prost_types::Timestamp { seconds: now_s, nanos: 0 }),
        available_until: None,
        price_per_unit: Some(common::Money {
            amount_minor: 200 + (variant % 400) as i64,
            currency_code: "EUR".into(),
        }),
        delivery: Some(listings::DeliveryTerms {
            mode: listings::DeliveryMode::BuyerCollects.into(),
            seller_delivery_km: 0,
        }),
        max_distance_km: if offer { 0 } else { REQUEST_DISTANCE_KM },
        accepts_other_countries: true,
        attachments: Vec::new(),
        expires_at: Some(prost_types::Timestamp { seconds: now_s + LISTING_OPEN_DAYS * 86_400, nanos: 0 }),
    }
}

pub(crate) fn pallets(count: i64) -> common::Quantity {
    common::Quantity {
        amount_milli: count * 1000,
        unit: common::Unit::Pallet.into(),
        basis: common::QuantityBasis::Estimated.into(),
    }
}

/// The operator registers organization number `index`, issues its token (all its roles) and,
/// with it, the organization adds its site at `place`.
async fn member(
    mut operator: OrganizationServiceClient<Authed>,
    channel: &Channel,
    index: usize,
    number: u64,
    place: &'static geo::Place,
) -> anyhow::Result<Member> {
    let organization_id = operator
        .register_organization(listings::RegisterOrganizationRequest {
            request_id: String::new(),
            legal_name: format!("Charge {index} SAS"),
            country: common::Country::France.into(),
            legal_identifier: siren(number)?,
            roles: vec![common::Role::Producer.into(), common::Role::Buyer.into()],
        })
        .await
        .map_err(status("RegisterOrganization"))?
        .into_inner()
        .organization_id;
    let token = operator
        .issue_token(listings::IssueTokenRequest {
            organization_id: organization_id.clone(),
            roles: vec![],
            ttl_days: 0,
        })
        .await
        .map_err(status("IssueToken"))?
        .into_inner()
        .token;
    let site_id = OrganizationServiceClient::new(authed(channel, &token)?)
        .add_site(listings::AddSiteRequest {
            request_id: String::new(),
            organization_id: organization_id.clone(),
            name: format!("Site {}", place.name),
            address: Some(listings::Address {
                street: "Zone industrielle".into(),
                postal_code: "00000".into(),
                city: place.name.into(),
                country: common::Country::from(place.country).into(),
            }),
            location: Some(place.point.into()),
        })
        .await
        .map_err(status("AddSite"))?
        .into_inner()
        .site_id;
    Ok(Member { organization_id, token, site_id, place })
}

/// A SIREN built from `number` with the check digit the domain accepts.
fn siren(number: u64) -> anyhow::Result<String> {
    (0..IDENTIFIER_CANDIDATES_MAX)
        .map(|digit| format!("5{:07}{digit}", number % 10_000_000))
        .find(|text| Identifier::parse_as(text, IdentifierKind::Siren).is_ok())
        .with_context(|| format!("no SIREN found for {number}"))
}

/// An error naming the call that failed and its status.
pub(crate) fn status(call: &'static str) -> impl Fn(tonic::Status) -> anyhow::Error {
    move |status| anyhow::anyhow!("{call}: {:?}: {}", status.code(), status.message())
}

fn joined<T>(done: Option<Result<anyhow::Result<T>, tokio::task::JoinError>>) -> anyhow::Result<T> {
    done.context("a setup task was lost")?.context("a setup task panicked")?
}
