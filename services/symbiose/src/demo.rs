//! `symbiose demo`: fills a running server with a realistic marketplace across the region and
//! its borders, so a newcomer has something to search: a producer and a recycler in each town
//! of the reference table (France, Germany, Switzerland, Luxembourg, Belgium), each with a site
//! there and a token, and listings of every material family, published.
//!
//! Everything is done through the public API with the operator's token, and every call names
//! a request id derived from the seed: running the demo twice with the same seed adds no
//! organization, site or listing (only new tokens for the same organizations).

use symbiose_domain::identifier::{Identifier, IdentifierKind};
use symbiose_domain::{Country, MaterialFamily, geo};
use symbiose_proto::common::v1 as common;
use symbiose_proto::listings::v1 as listings;
use symbiose_proto::listings::v1::listing_service_client::ListingServiceClient;
use symbiose_proto::listings::v1::organization_service_client::OrganizationServiceClient;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::cli::{Authed, Bearer};

/// Most listings one demo run creates.
pub(crate) const DEMO_LISTINGS_MAX: usize = 20_000;
/// Times a call over its organization's rate limit is tried again, and the pause between.
const RATE_LIMITED_ATTEMPTS_MAX: usize = 50;
const RATE_LIMITED_PAUSE_MS: u64 = 100;
/// Candidate numbers tried to find one whose check digits a country's rule accepts.
const IDENTIFIER_CANDIDATES_MAX: u64 = 1000;

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

/// An organization the demo registered: its site, and its listings client with its token.
struct Member {
    site: String,
    listings: ListingServiceClient<Authed>,
}

/// Registers the members and creates `listing_count` listings; prints what it did.
pub(crate) async fn run(
    raw: Channel,
    operator: Authed,
    listing_count: usize,
    seed: u64,
) -> anyhow::Result<bool> {
    anyhow::ensure!(listing_count <= DEMO_LISTINGS_MAX, "--listings must be at most {DEMO_LISTINGS_MAX}");
    let mut random = Random(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let directory = OrganizationServiceClient::new(operator);
    let mut producers = Vec::new();
    let mut recyclers = Vec::new();
    for (index, place) in geo::places().iter().enumerate() {
        for (role, members) in
            [(common::Role::Producer, &mut producers), (common::Role::Recycler, &mut recyclers)]
        {
            let number = seed * 1000 + index as u64 * 2 + u64::from(role != common::Role::Producer);
            let identifier = identifier_for(place.country, number)?;
            let name = match role {
                common::Role::Producer => format!("{} Industrie {}", place.name, seed),
                _ => format!("{} Recyclage {}", place.name, seed),
            };
            let request_id = format!("demo/{seed}/{}/{}", place.name, role.as_str_name());
            let organization = retry(|| {
                let mut directory = directory.clone();
                let request = listings::RegisterOrganizationRequest {
                    request_id: request_id.clone(),
                    legal_name: name.clone(),
                    country: common::Country::from(place.country).into(),
                    legal_identifier: identifier.clone(),
                    roles: vec![role.into()],
                };
                async move { directory.register_organization(request).await }
            })
            .await?
            .organization_id;
            let token = retry(|| {
                let mut directory = directory.clone();
                let request = listings::IssueTokenRequest {
                    organization_id: organization.clone(),
                    roles: vec![],
                    ttl_days: 0,
                };
                async move { directory.issue_token(request).await }
            })
            .await?
            .token;
            let bearer = Bearer::new(&token).ok_or_else(|| anyhow::anyhow!("a token unfit for a header"))?;
            let channel = InterceptedService::new(raw.clone(), bearer);
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
            members.push(Member { site, listings: ListingServiceClient::new(channel) });
        }
    }

    let families = [
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
    // The listings' times start at the beginning of the day (UTC), and the day is in their
    // request ids: the demo run again the same day sends the very same requests, which add
    // nothing; a request id never comes again with other terms, which would be refused.
    let now_s = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs() as i64;
    let day_s = now_s - now_s.rem_euclid(86_400);
    let mut published = 0;
    for index in 0..listing_count {
        let family = families[random.below(families.len() as u64) as usize];
        // Requests for hazardous waste need a permit the demo's recyclers do not hold.
        let request = family != MaterialFamily::Solvents && random.below(5) == 0;
        let members = if request { &recyclers } else { &producers };
        let member = &members[index % members.len()];
        let terms = terms(family, request, &member.site, &mut random, day_s);
        let request_id = format!("demo/{seed}/{}/listing/{index}", day_s / 86_400);
        let client = member.listings.clone();
        let created = retry(|| {
            let mut client = client.clone();
            let request =
                listings::CreateListingRequest { request_id: request_id.clone(), terms: Some(terms.clone()) };
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
        published += 1;
    }
    println!(
        "{} organizations in {} towns, {published} listings published",
        producers.len() + recyclers.len(),
        geo::places().len()
    );
    Ok(true)
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
            [listings::PalletGrade::A, listings::PalletGrade::B, listings::PalletGrade::C]
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
    for _ in 0..RATE_LIMITED_ATTEMPTS_MAX {
        match call().await {
            Ok(response) => return Ok(response.into_inner()),
            Err(status) if status.code() == tonic::Code::ResourceExhausted => {
                tokio::time::sleep(std::time::Duration::from_millis(RATE_LIMITED_PAUSE_MS)).await;
            }
            Err(status) => return Err(anyhow::anyhow!("{:?}: {}", status.code(), status.message())),
        }
    }
    anyhow::bail!("still over the rate limit after {RATE_LIMITED_ATTEMPTS_MAX} attempts")
}
