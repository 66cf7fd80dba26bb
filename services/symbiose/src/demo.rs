//! `symbiose demo`: fills a running server with a marketplace a newcomer can explore, across
//! the region and its borders (France, Germany, Switzerland, Luxembourg, Belgium):
//!
//! - a producer and a recycler in each town of the reference table, each with a site there and
//!   a token; every recycler holds a treatment permit for the waste codes the marketplace
//!   usually carries, hazardous ones included, so its requests of hazardous waste are allowed;
//! - a carrier with its profile (depots in Strasbourg and Metz, the five countries, pallet
//!   exchange);
//! - a few complete stories, each between a producer and a recycler of two towns: both accept
//!   the proposal matching made of their listings, the buyer's deposit is held in escrow, the
//!   buyer books the carrier's quote, and in most the carrier reports the pickup, the border
//!   crossing and the delivery, the buyer accepts it and the seller's invoice is issued;
//! - listings of every material family, offers and requests, published.
//!
//! Everything is done through the public API, and every call that changes something names a
//! request id derived from the seed: running the demo again with the same seed adds nothing
//! (only new tokens for the same organizations). The times of the listings and permits count
//! from the day the seed's first organization was registered, so that a later run sends the
//! very same requests as the first, which a request id needs.

use std::time::{Duration, Instant};

use symbiose_domain::identifier::{Identifier, IdentifierKind};
use symbiose_domain::{Country, MaterialFamily, Unit, geo};
use symbiose_kit::backoff::Backoff;
use symbiose_proto::common::v1 as common;
use symbiose_proto::listings::v1 as listings;
use symbiose_proto::listings::v1::listing_service_client::ListingServiceClient;
use symbiose_proto::listings::v1::organization_service_client::OrganizationServiceClient;
use symbiose_proto::logistics::v1 as logistics;
use symbiose_proto::logistics::v1::logistics_service_client::LogisticsServiceClient;
use symbiose_proto::matching::v1 as matching;
use symbiose_proto::matching::v1::matching_service_client::MatchingServiceClient;
use symbiose_proto::settlement::v1 as settlement;
use symbiose_proto::settlement::v1::settlement_service_client::SettlementServiceClient;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::cli::{Authed, Bearer};
use crate::progress::Progress;

/// Most listings one demo run creates.
pub(crate) const DEMO_LISTINGS_MAX: usize = 20_000;
/// The pauses before a call over its organization's rate limit is tried again (10 ms, doubling
/// with jitter, under 1 s), and the times it is (at most 20, about 15 s in all).
const RATE_LIMITED_BACKOFF: Backoff = Backoff::FEED.with_attempts_max(20);
/// Organizations registered at once.
const ORGANIZATIONS_IN_FLIGHT_MAX: usize = 8;
/// Listings created and published at once.
const LISTINGS_IN_FLIGHT_MAX: usize = 16;
/// Candidate numbers tried to find one whose check digits a country's rule accepts.
const IDENTIFIER_CANDIDATES_MAX: u64 = 1000;
/// Longest wait for what the services do after a call (a proposal after a publication, the
/// escrow and the quotes after a deal, the funding seen by logistics, an invoice after an
/// acceptance), and the pause between two looks.
const FOLLOW_UP_WAIT_MS: u64 = 30_000;
const FOLLOW_UP_PAUSE_MS: u64 = 50;
/// Pages of invoices read to find a deal's.
const INVOICE_PAGES_MAX: usize = 10;
/// The money deposited for the buyer of each story, in euro cents: more than any story's
/// deal costs with the platform's fee and VAT.
const STORY_DEPOSIT_MINOR: i64 = 1_000_000;
/// Days the demo's listings stay open, and its permits valid, from the demo's day.
const LISTING_DAYS: i64 = 90;
const PERMIT_DAYS: i64 = 365;
const DAY_S: i64 = 86_400;

/// The material families, each of which gets offers and requests.
const FAMILIES: [MaterialFamily; 9] = [
    MaterialFamily::Pallets,
    MaterialFamily::Packaging,
    MaterialFamily::Plastics,
    MaterialFamily::Metals,
    MaterialFamily::Wood,
    MaterialFamily::Compost,
    MaterialFamily::Aggregates,
    MaterialFamily::ProcessWater,
    MaterialFamily::Solvents,
];

/// The stories: each is told in full, and the qualities its listings name are ones the random
/// listings never name, so that matching proposes the story's own pair whatever else is on
/// the server.
const STORIES: [Story; 5] = [
    Story {
        name: "pallets",
        seller_town: "Strasbourg",
        buyer_town: "Kehl",
        family: MaterialFamily::Pallets,
        waste_code: "150103",
        quality: StoryQuality::PalletGrade(listings::PalletGrade::A),
        description: "EUR/EPAL 1200x800, grade A",
        unit: Unit::Pallet,
        amount: 40,
        price_minor: 350,
        delivery: Some(Delivery {
            accepted: 38,
            refusal_reason: "two with broken boards",
            pallets: Some([(35, 40), (40, 36)]),
        }),
    },
    Story {
        name: "plastics",
        seller_town: "Mulhouse",
        buyer_town: "Basel",
        family: MaterialFamily::Plastics,
        waste_code: "191204",
        quality: StoryQuality::Plastic(listings::Polymer::Pet, listings::PlasticForm::Flakes),
        description: "rPET flakes, clear, washed",
        unit: Unit::Kilogram,
        amount: 8_000,
        price_minor: 45,
        delivery: Some(Delivery { accepted: 8_000, refusal_reason: "", pallets: None }),
    },
    Story {
        name: "metals",
        seller_town: "Metz",
        buyer_town: "Luxembourg",
        family: MaterialFamily::Metals,
        waste_code: "170405",
        quality: StoryQuality::Certified("structural steel offcuts S235"),
        description: "Steel offcuts from a construction site",
        unit: Unit::Tonne,
        amount: 12,
        price_minor: 18_000,
        delivery: Some(Delivery { accepted: 12, refusal_reason: "", pallets: None }),
    },
    Story {
        name: "compost",
        seller_town: "Nancy",
        buyer_town: "Epinal",
        family: MaterialFamily::Compost,
        waste_code: "190503",
        quality: StoryQuality::Certified("NF U44-051 compost"),
        description: "Industrial compost, screened",
        unit: Unit::Tonne,
        amount: 20,
        price_minor: 1_200,
        delivery: Some(Delivery { accepted: 20, refusal_reason: "", pallets: None }),
    },
    Story {
        name: "wood",
        seller_town: "Colmar",
        buyer_town: "Freiburg im Breisgau",
        family: MaterialFamily::Wood,
        waste_code: "030105",
        quality: StoryQuality::Certified("untreated sawdust and shavings"),
        description: "Sawdust and shavings, untreated",
        unit: Unit::Tonne,
        amount: 10,
        price_minor: 2_500,
        // Booked, waiting for its pickup: something left to do for whoever explores.
        delivery: None,
    },
];

/// One complete exchange between the producer of one town and the recycler of another.
struct Story {
    name: &'static str,
    seller_town: &'static str,
    buyer_town: &'static str,
    family: MaterialFamily,
    /// Six digits, as the listings carry it.
    waste_code: &'static str,
    quality: StoryQuality,
    description: &'static str,
    unit: Unit,
    /// Whole units offered and asked for.
    amount: i64,
    /// The offer's price per unit in euro cents; the request's maximum is a fifth more.
    price_minor: i64,
    /// How the shipment ends; `None`: booked, not yet picked up.
    delivery: Option<Delivery>,
}

enum StoryQuality {
    PalletGrade(listings::PalletGrade),
    Plastic(listings::Polymer, listings::PlasticForm),
    /// A specification certified by a third party.
    Certified(&'static str),
}

struct Delivery {
    /// Whole units accepted; the rest of what was picked up is refused for the reason.
    accepted: i64,
    refusal_reason: &'static str,
    /// EUR pallets (handed over, taken back) by the carrier at the pickup and at the delivery.
    pallets: Option<[(u32, u32); 2]>,
}

/// A small xorshift generator: a demo needs variety, not cryptography.
struct Random(u64);

impl Random {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound.max(1)
    }
}

/// An organization the demo registered: its id, its site (if it has one) and a channel
/// carrying its token.
struct Member {
    organization_id: String,
    site: String,
    channel: Authed,
}

/// What a story reached.
struct Told {
    name: &'static str,
    route: String,
    deal_id: String,
    shipment_id: String,
    shipment_state: logistics::ShipmentState,
    cross_border: bool,
    /// The invoice's number, once issued.
    invoice: Option<String>,
}

/// Registers the members, tells the stories and publishes `listing_count` listings; prints its
/// progress on standard error and a summary on standard output.
pub(crate) async fn run(
    raw: Channel,
    operator: Authed,
    listing_count: usize,
    seed: u64,
) -> anyhow::Result<bool> {
    anyhow::ensure!(listing_count <= DEMO_LISTINGS_MAX, "--listings must be at most {DEMO_LISTINGS_MAX}");
    let places = geo::places();
    let mut progress = Progress::new((places.len() * 2 + 1 + STORIES.len() + listing_count) as u64);
    let directory = OrganizationServiceClient::new(operator.clone());

    progress.phase("organizations");
    // The demo's day: that of the first registration of this seed, whichever run made it.
    let first = places.first().ok_or_else(|| anyhow::anyhow!("the reference table has no town"))?;
    let (request_id, name, number) = organization_of(seed, 0, first, common::Role::Producer);
    let organization =
        register(&directory, &request_id, &name, first.country, number, common::Role::Producer).await?;
    let day_s = registration_day_s(&directory, &organization).await?;
    let (producers, recyclers) = town_members(&raw, &directory, seed, day_s, &mut progress).await?;
    let carrier = register_carrier(&raw, &directory, seed, day_s).await?;
    progress.advance(1);

    progress.phase("stories");
    let mut told = Vec::new();
    for story in &STORIES {
        let town = |name: &str| {
            places
                .iter()
                .position(|place| place.name == name)
                .ok_or_else(|| anyhow::anyhow!("{name} is not a town of the reference table"))
        };
        let seller = &producers[town(story.seller_town)?];
        let buyer = &recyclers[town(story.buyer_town)?];
        let request_id = format!("demo/{seed}/story/{}", story.name);
        let context = StoryContext { operator: &operator, seller, buyer, carrier: &carrier, day_s };
        told.push(tell(story, &context, &request_id).await?);
        progress.advance(1);
    }

    progress.phase("listings");
    let mut random = Random(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    // Several at once, so that the store commits them together (one write to disk for many).
    let mut in_flight = tokio::task::JoinSet::new();
    for index in 0..listing_count {
        let family = FAMILIES[index % FAMILIES.len()];
        // Every family gets offers and requests: one round of the families in three asks.
        let request = (index / FAMILIES.len()) % 3 == 1;
        let members = if request { &recyclers } else { &producers };
        let member = &members[random.below(members.len() as u64) as usize];
        let terms = terms(family, request, &member.site, &mut random, day_s);
        if in_flight.len() >= LISTINGS_IN_FLIGHT_MAX {
            joined(in_flight.join_next().await)?;
            progress.advance(1);
        }
        in_flight.spawn(publish(member.channel.clone(), format!("demo/{seed}/listing/{index}"), terms));
    }
    while let Some(done) = in_flight.join_next().await {
        joined(Some(done))?;
        progress.advance(1);
    }
    let balances = LogisticsServiceClient::new(carrier.channel.clone())
        .get_pallet_balances(logistics::GetPalletBalancesRequest { min_position: 0 })
        .await
        .map_err(status)?
        .into_inner()
        .balances;
    progress.finish();

    let delivered: Vec<&Told> =
        told.iter().filter(|story| story.shipment_state == logistics::ShipmentState::Closed).collect();
    println!(
        "{} organizations (a producer and a recycler in each of {} towns, and a carrier), {} listings published in {} material families",
        producers.len() + recyclers.len() + 1,
        places.len(),
        listing_count + 2 * told.len(),
        FAMILIES.len(),
    );
    println!(
        "{} deals agreed and paid into escrow, {} shipments delivered ({} across a border), {} invoices, {} pallet balances",
        told.len(),
        delivered.len(),
        delivered.iter().filter(|story| story.cross_border).count(),
        told.iter().filter(|story| story.invoice.is_some()).count(),
        balances.iter().filter(|balance| balance.pallets != 0).count(),
    );
    for story in &told {
        let state = story.shipment_state.as_str_name().trim_start_matches("SHIPMENT_STATE_").to_lowercase();
        println!(
            "  {:<9} {:<32} deal {}  shipment {}  {state}{}",
            story.name,
            story.route,
            story.deal_id,
            story.shipment_id,
            story.invoice.as_ref().map(|number| format!("  invoice {number}")).unwrap_or_default(),
        );
    }
    println!(
        "explore: symbiose catalog search --near Strasbourg, symbiose deal show <deal>, symbiose shipment show <shipment>"
    );
    Ok(true)
}

/// The producers and the recyclers of the towns of the table, in its order: registered several
/// at once, each with its token, its site and, for a recycler, its permit.
async fn town_members(
    raw: &Channel,
    directory: &OrganizationServiceClient<Authed>,
    seed: u64,
    day_s: i64,
    progress: &mut Progress,
) -> anyhow::Result<(Vec<Member>, Vec<Member>)> {
    let places = geo::places();
    let mut members = std::collections::HashMap::new();
    let mut in_flight = tokio::task::JoinSet::new();
    for (index, place) in places.iter().enumerate() {
        for role in [common::Role::Producer, common::Role::Recycler] {
            if in_flight.len() >= ORGANIZATIONS_IN_FLIGHT_MAX {
                let (index, role, member) = joined(in_flight.join_next().await)?;
                members.insert((index, role), member);
                progress.advance(1);
            }
            let (raw, directory) = (raw.clone(), directory.clone());
            in_flight.spawn(async move {
                let member = town_member(&raw, &directory, seed, index, place, role, day_s).await?;
                Ok((index, role, member))
            });
        }
    }
    while let Some(done) = in_flight.join_next().await {
        let (index, role, member) = joined(Some(done))?;
        members.insert((index, role), member);
        progress.advance(1);
    }
    let mut take = |index, role| {
        members.remove(&(index, role)).ok_or_else(|| anyhow::anyhow!("the member of town {index} is missing"))
    };
    let producers = (0..places.len())
        .map(|index| take(index, common::Role::Producer))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let recyclers = (0..places.len())
        .map(|index| take(index, common::Role::Recycler))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok((producers, recyclers))
}

/// The request id, the name and the identifier's number of the organization of `role` in the
/// town `index` of the table.
fn organization_of(seed: u64, index: usize, place: &geo::Place, role: common::Role) -> (String, String, u64) {
    let producer = role == common::Role::Producer;
    let number = seed * 1000 + index as u64 * 2 + u64::from(!producer);
    let kind = if producer { "Industrie" } else { "Recyclage" };
    let request_id = format!("demo/{seed}/{}/{}", place.name, role.as_str_name());
    (request_id, format!("{} {kind} {seed}", place.name), number)
}

/// The producer or the recycler of the town `index` (`place`), registered with its token, its
/// site and, for a recycler, its permit.
async fn town_member(
    raw: &Channel,
    directory: &OrganizationServiceClient<Authed>,
    seed: u64,
    index: usize,
    place: &geo::Place,
    role: common::Role,
    day_s: i64,
) -> anyhow::Result<Member> {
    let (request_id, name, number) = organization_of(seed, index, place, role);
    let organization = register(directory, &request_id, &name, place.country, number, role).await?;
    let member = member(raw, directory, &request_id, organization, Some(place)).await?;
    if role == common::Role::Recycler {
        add_permit(&member, &request_id, day_s).await?;
    }
    Ok(member)
}

/// The end of one task of the demo.
fn joined<T>(done: Option<Result<anyhow::Result<T>, tokio::task::JoinError>>) -> anyhow::Result<T> {
    done.ok_or_else(|| anyhow::anyhow!("no task was running"))??
}

/// The operator registers an organization of `role` named `name` in `country` (once per
/// request id); its id.
async fn register(
    directory: &OrganizationServiceClient<Authed>,
    request_id: &str,
    name: &str,
    country: Country,
    number: u64,
    role: common::Role,
) -> anyhow::Result<String> {
    let identifier = identifier_for(country, number)?;
    let registered = retry(|| {
        let mut directory = directory.clone();
        let request = listings::RegisterOrganizationRequest {
            request_id: request_id.to_owned(),
            legal_name: name.to_owned(),
            country: common::Country::from(country).into(),
            legal_identifier: identifier.clone(),
            roles: vec![role.into()],
        };
        async move { directory.register_organization(request).await }
    })
    .await?;
    Ok(registered.organization_id)
}

/// The start (UTC) of the day `organization` was registered, in seconds since the epoch.
async fn registration_day_s(
    directory: &OrganizationServiceClient<Authed>,
    organization: &str,
) -> anyhow::Result<i64> {
    let shown = retry(|| {
        let mut directory = directory.clone();
        let request = listings::GetOrganizationRequest { organization_id: organization.to_owned() };
        async move { directory.get_organization(request).await }
    })
    .await?;
    let registered_s = shown
        .organization
        .and_then(|organization| organization.registered_at)
        .ok_or_else(|| anyhow::anyhow!("organization {organization} shows no registration time"))?
        .seconds;
    Ok(registered_s - registered_s.rem_euclid(DAY_S))
}

/// A token for `organization` and, at `place`, its site (once per request id).
async fn member(
    raw: &Channel,
    directory: &OrganizationServiceClient<Authed>,
    request_id: &str,
    organization: String,
    place: Option<&geo::Place>,
) -> anyhow::Result<Member> {
    let token = retry(|| {
        let mut directory = directory.clone();
        let request =
            listings::IssueTokenRequest { organization_id: organization.clone(), roles: vec![], ttl_days: 0 };
        async move { directory.issue_token(request).await }
    })
    .await?
    .token;
    let bearer = Bearer::new(&token).ok_or_else(|| anyhow::anyhow!("a token unfit for a header"))?;
    let channel = InterceptedService::new(raw.clone(), bearer);
    let Some(place) = place else {
        return Ok(Member { organization_id: organization, site: String::new(), channel });
    };
    let own = OrganizationServiceClient::new(channel.clone());
    let site = retry(|| {
        let mut own = own.clone();
        let request = listings::AddSiteRequest {
            request_id: format!("{request_id}/site"),
            organization_id: organization.clone(),
            name: format!("Site {}", place.name),
            address: Some(listings::Address {
                street: "Zone industrielle".into(),
                postal_code: "00000".into(),
                city: place.name.into(),
                country: common::Country::from(place.country).into(),
            }),
            location: Some(place.point.into()),
        };
        async move { own.add_site(request).await }
    })
    .await?
    .site_id;
    Ok(Member { organization_id: organization, site, channel })
}

/// A recycler's treatment permit for every waste code the marketplace usually carries,
/// hazardous ones included (the listings service asks for it of a request of hazardous waste,
/// and matching of its buyer), valid a year from the demo's day.
async fn add_permit(recycler: &Member, request_id: &str, day_s: i64) -> anyhow::Result<()> {
    let own = OrganizationServiceClient::new(recycler.channel.clone());
    let codes: Vec<String> = FAMILIES
        .iter()
        .flat_map(|family| family.typical_waste_codes())
        .map(|code| (*code).to_owned())
        .collect();
    retry(|| {
        let mut own = own.clone();
        let request = listings::AddPermitRequest {
            request_id: format!("{request_id}/permit"),
            organization_id: recycler.organization_id.clone(),
            permit: Some(listings::Permit {
                permit_id: String::new(),
                kind: listings::PermitKind::Treatment.into(),
                number: format!("ICPE-{}", &recycler.organization_id[..8]),
                issued_by: "Autorite competente (demo)".into(),
                valid_until: Some(prost_types::Timestamp { seconds: day_s + PERMIT_DAYS * DAY_S, nanos: 0 }),
                accepted_waste_codes: codes.clone(),
                hazardous_accepted: true,
                dangerous_goods_allowed: false,
            }),
        };
        async move { own.add_permit(request).await }
    })
    .await?;
    Ok(())
}

/// The demo's carrier, in Strasbourg with a depot in Metz too, serving the five countries
/// within 300 km, with two trucks and pallet exchange; registered with its profile (once).
async fn register_carrier(
    raw: &Channel,
    directory: &OrganizationServiceClient<Authed>,
    seed: u64,
    day_s: i64,
) -> anyhow::Result<Member> {
    let request_id = format!("demo/{seed}/carrier");
    let organization = register(
        directory,
        &request_id,
        &format!("Transports Rhin-Moselle {seed}"),
        Country::Fr,
        seed * 1000 + 999,
        common::Role::Carrier,
    )
    .await?;
    let carrier = member(raw, directory, &request_id, organization, None).await?;
    // Its receipt of declaration as a carrier of waste (the French *récépissé*), which the
    // registers of waste carried name.
    let own = OrganizationServiceClient::new(carrier.channel.clone());
    retry(|| {
        let mut own = own.clone();
        let request = listings::AddPermitRequest {
            request_id: format!("{request_id}/permit"),
            organization_id: carrier.organization_id.clone(),
            permit: Some(listings::Permit {
                permit_id: String::new(),
                kind: listings::PermitKind::Transport.into(),
                number: format!("67-2026-{}", &carrier.organization_id[..8]),
                issued_by: "Prefecture du Bas-Rhin (demo)".into(),
                valid_until: Some(prost_types::Timestamp { seconds: day_s + PERMIT_DAYS * DAY_S, nanos: 0 }),
                accepted_waste_codes: Vec::new(),
                hazardous_accepted: false,
                dangerous_goods_allowed: false,
            }),
        };
        async move { own.add_permit(request).await }
    })
    .await?;
    let depots = ["Strasbourg", "Metz"]
        .iter()
        .map(|town| {
            let place = geo::place(town).ok_or_else(|| anyhow::anyhow!("{town} is not in the table"))?;
            Ok(logistics::Depot {
                depot_id: String::new(),
                name: (*town).to_owned(),
                location: Some(place.point.into()),
                country: common::Country::from(place.country).into(),
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let vehicle = |name: &str, payload_kg, pallet_places| logistics::Vehicle {
        vehicle_id: String::new(),
        name: name.to_owned(),
        payload_kg,
        pallet_places,
        tail_lift: true,
        dangerous_goods: false,
    };
    let profile = logistics::CarrierProfile {
        carrier_organization_id: String::new(),
        depots,
        countries: [Country::Fr, Country::De, Country::Ch, Country::Lu, Country::Be]
            .into_iter()
            .map(|country| common::Country::from(country).into())
            .collect(),
        radius_km: 300,
        vehicles: vec![vehicle("Porteur 12 t", 12_000, 18), vehicle("Semi-remorque 24 t", 24_000, 33)],
        rates: Some(logistics::Rates {
            per_km_minor: 180,
            per_tonne_minor: 1500,
            minimum_charge_minor: 9000,
            currency_code: "EUR".into(),
        }),
        pallet_exchange: true,
    };
    let logistics = LogisticsServiceClient::new(carrier.channel.clone());
    retry(|| {
        let mut logistics = logistics.clone();
        let request = logistics::RegisterCarrierRequest {
            request_id: format!("{request_id}/profile"),
            profile: Some(profile.clone()),
        };
        async move { logistics.register_carrier(request).await }
    })
    .await?;
    Ok(carrier)
}

/// Creates and publishes a listing as the organization of `channel`'s token (once per request
/// id); its id.
async fn publish(
    channel: Authed,
    request_id: String,
    terms: listings::ListingTerms,
) -> anyhow::Result<String> {
    let client = ListingServiceClient::new(channel);
    let created = retry(|| {
        let mut client = client.clone();
        let request =
            listings::CreateListingRequest { request_id: request_id.to_owned(), terms: Some(terms.clone()) };
        async move { client.create_listing(request).await }
    })
    .await?;
    retry(|| {
        let mut client = client.clone();
        let request = listings::PublishListingRequest {
            request_id: format!("{request_id}/publish"),
            listing_id: created.listing_id.clone(),
        };
        async move { client.publish_listing(request).await }
    })
    .await?;
    Ok(created.listing_id)
}

/// Who takes part in a story, and the demo's day.
struct StoryContext<'a> {
    operator: &'a Authed,
    seller: &'a Member,
    buyer: &'a Member,
    carrier: &'a Member,
    day_s: i64,
}

/// Tells `story` as far as it goes, each step once: a step already done (by an earlier run)
/// is seen done and skipped, or sent again under its request id, which changes nothing.
async fn tell(story: &Story, context: &StoryContext<'_>, request_id: &str) -> anyhow::Result<Told> {
    let StoryContext { operator, seller, buyer, carrier, day_s } = *context;
    // The money first, so that the payment is held as soon as the deal is agreed.
    let money = SettlementServiceClient::new(operator.clone());
    retry(|| {
        let mut money = money.clone();
        let request = settlement::RecordDepositRequest {
            request_id: format!("{request_id}/deposit"),
            organization_id: buyer.organization_id.clone(),
            amount: Some(euros(STORY_DEPOSIT_MINOR)),
        };
        async move { money.record_deposit(request).await }
    })
    .await?;
    let offer = publish(
        seller.channel.clone(),
        format!("{request_id}/offer"),
        story_terms(story, false, &seller.site, day_s),
    )
    .await?;
    let wanted = publish(
        buyer.channel.clone(),
        format!("{request_id}/request"),
        story_terms(story, true, &buyer.site, day_s),
    )
    .await?;
    let deal_id = agree(story, seller, buyer, &offer, &wanted).await?;

    let settlement = SettlementServiceClient::new(buyer.channel.clone());
    follow_up(&format!("the payment of the {} deal {deal_id} held in escrow", story.name), || {
        let mut settlement = settlement.clone();
        let request = settlement::ListDealTransfersRequest { deal_id: deal_id.clone(), ..Default::default() };
        async move {
            // Settlement learns of the deal when it reads the agreement, a moment after it.
            let listed = match settlement.list_deal_transfers(request).await {
                Ok(response) => response.into_inner(),
                Err(error) if error.code() == tonic::Code::NotFound => return Ok(None),
                Err(error) => return Err(status(error)),
            };
            Ok((!listed.transfers.is_empty()).then_some(()))
        }
    })
    .await?;

    let deal_uuid = uuid::Uuid::parse_str(&deal_id)?;
    let shipment_id = symbiose_logistics::desk::shipment_id(deal_uuid).to_string();
    let as_buyer = LogisticsServiceClient::new(buyer.channel.clone());
    let as_carrier = LogisticsServiceClient::new(carrier.channel.clone());
    let mut shipment = match shipment(&as_buyer, &shipment_id).await? {
        Some(shipment) => shipment,
        None => book(story, &as_buyer, carrier, &deal_id, request_id).await?,
    };
    if let Some(delivery) = &story.delivery {
        shipment = deliver(story, delivery, &as_carrier, &as_buyer, shipment, request_id).await?;
    }
    let invoice = match shipment.state() {
        logistics::ShipmentState::Closed => Some(invoice(seller, &deal_id, story.name).await?),
        _ => None,
    };
    Ok(Told {
        name: story.name,
        route: format!("{} -> {}", story.seller_town, story.buyer_town),
        deal_id,
        shipment_id,
        shipment_state: shipment.state(),
        cross_border: shipment.cross_border,
        invoice,
    })
}

/// Both sides accept the proposal of the story's pair (those who have not yet); the deal's id.
async fn agree(
    story: &Story,
    seller: &Member,
    buyer: &Member,
    offer: &str,
    wanted: &str,
) -> anyhow::Result<String> {
    let as_buyer = MatchingServiceClient::new(buyer.channel.clone());
    let mut proposal = follow_up(&format!("a proposal of the {} pair", story.name), || {
        let mut as_buyer = as_buyer.clone();
        let request = matching::ListProposalsRequest {
            listing_id: wanted.to_owned(),
            page_size: 100,
            ..Default::default()
        };
        async move {
            let proposals = as_buyer.list_proposals(request).await.map_err(status)?.into_inner().proposals;
            Ok(proposals
                .into_iter()
                .find(|proposal| proposal.lines.iter().any(|line| line.offer_id == offer)))
        }
    })
    .await?;
    for party in [seller, buyer] {
        if proposal.state() != matching::ProposalState::Open
            || proposal.accepted_by.contains(&party.organization_id)
        {
            continue;
        }
        let client = MatchingServiceClient::new(party.channel.clone());
        let accepted = retry(|| {
            let mut client = client.clone();
            let request = matching::AcceptProposalRequest {
                request_id: format!("demo/accept/{}", proposal.proposal_id),
                proposal_id: proposal.proposal_id.clone(),
            };
            async move { client.accept_proposal(request).await }
        })
        .await?;
        proposal = accepted.proposal.ok_or_else(|| anyhow::anyhow!("an acceptance without its proposal"))?;
    }
    anyhow::ensure!(
        proposal.state() == matching::ProposalState::Concluded,
        "the proposal of the {} pair is {}: {}",
        story.name,
        proposal.state().as_str_name(),
        proposal.reason
    );
    proposal
        .lines
        .iter()
        .find(|line| line.offer_id == offer && !line.deal_id.is_empty())
        .map(|line| line.deal_id.clone())
        .ok_or_else(|| anyhow::anyhow!("the concluded proposal of the {} pair names no deal", story.name))
}

/// The shipment `shipment_id`, or `None` if it was not booked yet.
async fn shipment(
    client: &LogisticsServiceClient<Authed>,
    shipment_id: &str,
) -> anyhow::Result<Option<logistics::Shipment>> {
    let request = logistics::GetShipmentRequest { shipment_id: shipment_id.to_owned(), min_position: 0 };
    match client.clone().get_shipment(request).await {
        Ok(response) => Ok(response.into_inner().shipment),
        Err(error) if error.code() == tonic::Code::NotFound => Ok(None),
        Err(error) => Err(status(error)),
    }
}

/// The buyer books the carrier's quote for the deal, once it is quoted.
async fn book(
    story: &Story,
    as_buyer: &LogisticsServiceClient<Authed>,
    carrier: &Member,
    deal_id: &str,
    request_id: &str,
) -> anyhow::Result<logistics::Shipment> {
    let quote = follow_up(&format!("the carrier's quote for the {} deal {deal_id}", story.name), || {
        let mut as_buyer = as_buyer.clone();
        let request = logistics::ListQuotesRequest { deal_id: deal_id.to_owned(), ..Default::default() };
        async move {
            // Logistics opens the deal's transport when it reads the agreement: a moment after
            // the deal, the deal is not known there yet.
            let quotes = match as_buyer.list_quotes(request).await {
                Ok(response) => response.into_inner().quotes,
                Err(error) if error.code() == tonic::Code::NotFound => return Ok(None),
                Err(error) => return Err(status(error)),
            };
            Ok(quotes.into_iter().find(|quote| quote.carrier_organization_id == carrier.organization_id))
        }
    })
    .await?;
    let booked = retry(|| {
        let mut as_buyer = as_buyer.clone();
        let request = logistics::BookShipmentRequest {
            request_id: format!("{request_id}/book"),
            deal_id: deal_id.to_owned(),
            quote_id: quote.quote_id.clone(),
            prior_notification_number: String::new(),
        };
        async move { as_buyer.book_shipment(request).await }
    })
    .await?;
    booked.shipment.ok_or_else(|| anyhow::anyhow!("a booking without its shipment"))
}

/// The carrier reports the pickup, the border crossing (if any) and the delivery, and the buyer
/// accepts: each step that the shipment has not passed yet.
async fn deliver(
    story: &Story,
    delivery: &Delivery,
    as_carrier: &LogisticsServiceClient<Authed>,
    as_buyer: &LogisticsServiceClient<Authed>,
    mut shipment: logistics::Shipment,
    request_id: &str,
) -> anyhow::Result<logistics::Shipment> {
    use logistics::ShipmentState as State;
    let exchange = |stop: usize| {
        delivery.pallets.map(|pallets| logistics::PalletExchange {
            grade: story_grade(story),
            handed_over: pallets[stop].0,
            taken_back: pallets[stop].1,
        })
    };
    let shipment_id = shipment.shipment_id.clone();
    if shipment.state() == State::Booked {
        // Logistics lets the material go once it has seen the payment held: it may see it a
        // moment after settlement says so.
        let request = logistics::ReportPickupRequest {
            request_id: format!("{request_id}/pickup"),
            shipment_id: shipment_id.clone(),
            quantity: Some(actual(story.amount, story.unit)),
            pallets: exchange(0),
        };
        shipment = follow_up(&format!("the pickup of the {} shipment {shipment_id}", story.name), || {
            let mut as_carrier = as_carrier.clone();
            let request = request.clone();
            async move {
                match as_carrier.report_pickup(request).await {
                    Ok(response) => Ok(response.into_inner().shipment),
                    Err(error)
                        if matches!(
                            error.code(),
                            tonic::Code::FailedPrecondition | tonic::Code::ResourceExhausted
                        ) && (error.message().contains("not funded")
                            || error.code() == tonic::Code::ResourceExhausted) =>
                    {
                        Ok(None)
                    }
                    Err(error) => Err(status(error)),
                }
            }
        })
        .await?;
    }
    if shipment.state() == State::PickedUp && shipment.cross_border {
        let country = shipment.delivery_country;
        shipment = sent(
            retry(|| {
                let mut as_carrier = as_carrier.clone();
                let request = logistics::ReportBorderCrossingRequest {
                    request_id: format!("{request_id}/border"),
                    shipment_id: shipment_id.clone(),
                    country,
                    at: None,
                };
                async move { as_carrier.report_border_crossing(request).await }
            })
            .await?
            .shipment,
        )?;
    }
    if matches!(shipment.state(), State::PickedUp | State::InTransit) {
        let refused = story.amount - delivery.accepted;
        shipment = sent(
            retry(|| {
                let mut as_carrier = as_carrier.clone();
                let request = logistics::ReportDeliveryRequest {
                    request_id: format!("{request_id}/delivery"),
                    shipment_id: shipment_id.clone(),
                    received: Some(actual(story.amount, story.unit)),
                    accepted: Some(actual(delivery.accepted, story.unit)),
                    refused: (refused > 0).then(|| actual(refused, story.unit)),
                    refusal_reason: delivery.refusal_reason.to_owned(),
                    pallets: exchange(1),
                };
                async move { as_carrier.report_delivery(request).await }
            })
            .await?
            .shipment,
        )?;
    }
    if shipment.state() == State::Delivered {
        shipment = sent(
            retry(|| {
                let mut as_buyer = as_buyer.clone();
                let request = logistics::ConfirmAcceptanceRequest {
                    request_id: format!("{request_id}/acceptance"),
                    shipment_id: shipment_id.clone(),
                };
                async move { as_buyer.confirm_acceptance(request).await }
            })
            .await?
            .shipment,
        )?;
    }
    Ok(shipment)
}

/// The number of the invoice of `deal_id` that `seller` issued, waited for: settlement issues
/// it after the acceptance, not within it.
async fn invoice(seller: &Member, deal_id: &str, story: &str) -> anyhow::Result<String> {
    let client = SettlementServiceClient::new(seller.channel.clone());
    follow_up(&format!("the invoice of the {story} deal {deal_id}"), || {
        let mut client = client.clone();
        async move {
            let mut page_token = String::new();
            for _ in 0..INVOICE_PAGES_MAX {
                let request =
                    settlement::ListInvoicesRequest { page_size: 100, page_token, ..Default::default() };
                let listed = client.list_invoices(request).await.map_err(status)?.into_inner();
                if let Some(invoice) = listed.invoices.iter().find(|invoice| invoice.deal_id == deal_id) {
                    return Ok(Some(invoice.number.clone()));
                }
                if listed.next_page_token.is_empty() {
                    break;
                }
                page_token = listed.next_page_token;
            }
            Ok(None)
        }
    })
    .await
}

/// The shipment a report answered with.
fn sent(shipment: Option<logistics::Shipment>) -> anyhow::Result<logistics::Shipment> {
    shipment.ok_or_else(|| anyhow::anyhow!("a report answered without its shipment"))
}

/// Looks again, with a pause, until `look` finds something; gives up after
/// [`FOLLOW_UP_WAIT_MS`], naming `what` it waited for.
async fn follow_up<T, F, Fut>(what: &str, look: F) -> anyhow::Result<T>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = Instant::now() + Duration::from_millis(FOLLOW_UP_WAIT_MS);
    loop {
        if let Some(found) = look().await? {
            return Ok(found);
        }
        anyhow::ensure!(Instant::now() < deadline, "no sign of {what} after {FOLLOW_UP_WAIT_MS} ms");
        tokio::time::sleep(Duration::from_millis(FOLLOW_UP_PAUSE_MS)).await;
    }
}

/// The terms of one side of `story`, at `site`: the request names the same quality, asks for
/// the whole lot at once and pays a fifth more at most.
fn story_terms(story: &Story, request: bool, site: &str, day_s: i64) -> listings::ListingTerms {
    let kind = match story.quality {
        StoryQuality::PalletGrade(grade) => listings::quality::Kind::PalletGrade(grade.into()),
        StoryQuality::Plastic(polymer, form) => listings::quality::Kind::Plastic(listings::PlasticQuality {
            polymer: polymer.into(),
            form: form.into(),
        }),
        StoryQuality::Certified(text) => listings::quality::Kind::Specification(listings::Specification {
            text: text.to_owned(),
            data_quality: listings::DataQuality::Certified.into(),
        }),
    };
    let price_minor = if request { story.price_minor * 6 / 5 } else { story.price_minor };
    listings::ListingTerms {
        side: if request { listings::ListingSide::Request } else { listings::ListingSide::Offer }.into(),
        family: common::MaterialFamily::from(story.family).into(),
        waste_code: story.waste_code.to_owned(),
        legal_status: listings::LegalStatus::Waste.into(),
        description: story.description.to_owned(),
        quality: Some(listings::Quality { kind: Some(kind) }),
        quantity: Some(quantity(story.amount, story.unit)),
        minimum_lot: request.then(|| quantity(story.amount, story.unit)),
        recurrence: None,
        site_id: site.to_owned(),
        location: None,
        available_from: Some(prost_types::Timestamp { seconds: day_s, nanos: 0 }),
        available_until: None,
        price_per_unit: Some(euros(price_minor)),
        delivery: Some(listings::DeliveryTerms {
            mode: listings::DeliveryMode::BuyerCollects.into(),
            seller_delivery_km: 0,
        }),
        max_distance_km: if request { 300 } else { 0 },
        accepts_other_countries: true,
        attachments: Vec::new(),
        expires_at: Some(prost_types::Timestamp { seconds: day_s + LISTING_DAYS * DAY_S, nanos: 0 }),
    }
}

/// The pallet grade of a story of pallets, for the pallets exchanged.
fn story_grade(story: &Story) -> i32 {
    match story.quality {
        StoryQuality::PalletGrade(grade) => grade.into(),
        _ => listings::PalletGrade::Unspecified.into(),
    }
}

/// `amount` whole units of `unit`, estimated.
fn quantity(amount: i64, unit: Unit) -> common::Quantity {
    common::Quantity {
        amount_milli: amount * 1000,
        unit: common::Unit::from(unit).into(),
        basis: common::QuantityBasis::Estimated.into(),
    }
}

/// `amount` whole units of `unit`, counted or weighed.
fn actual(amount: i64, unit: Unit) -> common::Quantity {
    common::Quantity { basis: common::QuantityBasis::Actual.into(), ..quantity(amount, unit) }
}

fn euros(minor: i64) -> common::Money {
    common::Money { amount_minor: minor, currency_code: "EUR".into() }
}

/// An error of the server, as the client says it.
fn status(error: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{:?}: {}", error.code(), error.message())
}

/// A valid identifier of `country`'s usual kind built from `number`: the check digits are
/// found by trying candidates, as the rules are the domain's.
fn identifier_for(country: Country, number: u64) -> anyhow::Result<String> {
    for attempt in 0..IDENTIFIER_CANDIDATES_MAX {
        let base = (number * 7919 + attempt * 104_729) % 10_000_000;
        let candidates: Vec<(String, IdentifierKind)> = match country {
            Country::Fr => {
                (0..10).map(|digit| (format!("5{base:07}{digit}"), IdentifierKind::Siren)).collect()
            }
            Country::De => {
                (0..10).map(|digit| (format!("DE1{base:07}{digit}"), IdentifierKind::DeVat)).collect()
            }
            Country::Ch => {
                (0..10).map(|digit| (format!("CHE1{base:07}{digit}"), IdentifierKind::ChUid)).collect()
            }
            Country::Be => (0..100)
                .map(|check| (format!("BE04{:06}{check:02}", base % 1_000_000), IdentifierKind::BeVat))
                .collect(),
            Country::Lu => (0..100)
                .map(|check| (format!("LU{:06}{check:02}", base % 1_000_000), IdentifierKind::LuVat))
                .collect(),
        };
        if let Some((text, _)) =
            candidates.into_iter().find(|(text, kind)| Identifier::parse_as(text, *kind).is_ok())
        {
            return Ok(text);
        }
    }
    anyhow::bail!("no valid identifier found for {}", country.code())
}

/// The terms of a demo listing of `family` at `site`, available from `from_s`.
fn terms(
    family: MaterialFamily,
    request: bool,
    site: &str,
    random: &mut Random,
    from_s: i64,
) -> listings::ListingTerms {
    let unit = family.units()[0];
    let code = family.typical_waste_codes()[random.below(family.typical_waste_codes().len() as u64) as usize];
    let (legal_status, waste_code) = if family == MaterialFamily::ProcessWater {
        (listings::LegalStatus::ByProduct, String::new())
    } else {
        (listings::LegalStatus::Waste, code.to_owned())
    };
    let amount = 1 + random.below(200) as i64;
    let quality = (family == MaterialFamily::Pallets).then(|| listings::Quality {
        kind: Some(listings::quality::Kind::PalletGrade(
            // Grade A and better are left to the stories.
            [listings::PalletGrade::B, listings::PalletGrade::C, listings::PalletGrade::Unsorted]
                [random.below(3) as usize]
                .into(),
        )),
    });
    // Prices from a gate fee to a few tens of euros per unit, most of them positive.
    let price_minor = random.below(6000) as i64 - 1000;
    listings::ListingTerms {
        side: if request { listings::ListingSide::Request } else { listings::ListingSide::Offer }.into(),
        family: common::MaterialFamily::from(family).into(),
        waste_code,
        legal_status: legal_status.into(),
        description: format!("{} ({})", family.labels().en, if request { "wanted" } else { "available" }),
        quality,
        quantity: Some(common::Quantity {
            amount_milli: amount * 1000,
            unit: common::Unit::from(unit).into(),
            basis: common::QuantityBasis::Estimated.into(),
        }),
        minimum_lot: None,
        recurrence: (random.below(3) == 0).then_some(listings::Recurrence { every_days: 7 }),
        site_id: site.to_owned(),
        location: None,
        available_from: Some(prost_types::Timestamp { seconds: from_s, nanos: 0 }),
        available_until: None,
        price_per_unit: Some(common::Money {
            amount_minor: price_minor,
            currency_code: if random.below(5) == 0 { "CHF" } else { "EUR" }.into(),
        }),
        delivery: Some(listings::DeliveryTerms {
            mode: listings::DeliveryMode::BuyerCollects.into(),
            seller_delivery_km: 0,
        }),
        max_distance_km: if request { 50 + random.below(250) as u32 } else { 0 },
        accepts_other_countries: random.below(4) != 0,
        attachments: Vec::new(),
        expires_at: Some(prost_types::Timestamp { seconds: from_s + 90 * 86_400, nanos: 0 }),
    }
}

/// Calls `call` again while the caller is over its rate limit, a bounded number of times.
async fn retry<T, F, Fut>(call: F) -> anyhow::Result<T>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
{
    let mut pauses = RATE_LIMITED_BACKOFF.delays();
    loop {
        match call().await {
            Ok(response) => return Ok(response.into_inner()),
            Err(status) if status.code() == tonic::Code::ResourceExhausted => match pauses.next() {
                Some(pause) => tokio::time::sleep(pause).await,
                None => anyhow::bail!(
                    "still over the rate limit after {} attempts",
                    RATE_LIMITED_BACKOFF.attempts_max() + 1
                ),
            },
            Err(status) => return Err(anyhow::anyhow!("{:?}: {}", status.code(), status.message())),
        }
    }
}
