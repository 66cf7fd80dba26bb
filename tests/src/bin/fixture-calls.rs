//! `fixture-calls`: the few organization and listing commands the command-line client has no
//! subcommand for, so that `tests/fixtures/log-v1/make.sh` can write every kind of event
//! through the public API. The server is `SYMBIOSE_SERVER`, the caller `SYMBIOSE_TOKEN`.
//!
//! ```text
//! fixture-calls amend <listing> <description> <price minor>   AmendListing: description and price
//! fixture-calls expire-in <listing> <seconds>                 AmendListing: the expiry (and the window's end)
//! fixture-calls withdraw <listing>                            WithdrawListing
//! fixture-calls update-site <organization> <site> <name>      UpdateSite: a new name, same place
//! fixture-calls set-roles <organization> <role>...            SetRoles: producer, buyer, recycler, carrier
//! fixture-calls add-permit <organization> <number> <years> <waste code>...   AddPermit: a treatment permit
//! ```

use anyhow::Context as _;
use symbiose::cli::Bearer;
use symbiose_proto::common::v1 as common;
use symbiose_proto::listings::v1 as pb;
use symbiose_proto::listings::v1::listing_service_client::ListingServiceClient;
use symbiose_proto::listings::v1::organization_service_client::OrganizationServiceClient;
use symbiose_tests::fixtures::at;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

type Authed = InterceptedService<Channel, Bearer>;

async fn channel() -> anyhow::Result<Authed> {
    let server = std::env::var("SYMBIOSE_SERVER").unwrap_or_else(|_| "http://127.0.0.1:50051".into());
    let token = std::env::var("SYMBIOSE_TOKEN").context("SYMBIOSE_TOKEN names the caller")?;
    let channel = Endpoint::from_shared(server)?.connect().await.context("connecting to the server")?;
    Ok(InterceptedService::new(channel, Bearer::new(&token).context("a token fit for a header")?))
}

async fn terms_of(
    listings: &mut ListingServiceClient<Authed>,
    listing: &str,
) -> anyhow::Result<pb::ListingTerms> {
    listings
        .get_listing(pb::GetListingRequest { listing_id: listing.into() })
        .await?
        .into_inner()
        .listing
        .and_then(|listing| listing.terms)
        .context("the listing has terms")
}

fn role(name: &str) -> anyhow::Result<i32> {
    Ok(match name {
        "producer" => common::Role::Producer,
        "buyer" => common::Role::Buyer,
        "recycler" => common::Role::Recycler,
        "carrier" => common::Role::Carrier,
        other => anyhow::bail!("unknown role {other}"),
    }
    .into())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let argument = |index: usize| -> anyhow::Result<&str> {
        arguments.get(index).map(String::as_str).with_context(|| format!("argument {index} is missing"))
    };
    match argument(0)? {
        "amend" => {
            let mut listings = ListingServiceClient::new(channel().await?);
            let mut terms = terms_of(&mut listings, argument(1)?).await?;
            terms.description = argument(2)?.into();
            if let Some(price) = terms.price_per_unit.as_mut() {
                price.amount_minor = argument(3)?.parse()?;
            }
            let changed = listings
                .amend_listing(pb::AmendListingRequest {
                    request_id: String::new(),
                    listing_id: argument(1)?.into(),
                    terms: Some(terms),
                })
                .await?
                .into_inner()
                .changed;
            println!("amended: {}", changed.join(", "));
        }
        "expire-in" => {
            let mut listings = ListingServiceClient::new(channel().await?);
            let mut terms = terms_of(&mut listings, argument(1)?).await?;
            let seconds: i64 = argument(2)?.parse()?;
            terms.available_from = Some(at(0));
            terms.available_until = Some(at(seconds));
            terms.expires_at = Some(at(seconds));
            let changed = listings
                .amend_listing(pb::AmendListingRequest {
                    request_id: String::new(),
                    listing_id: argument(1)?.into(),
                    terms: Some(terms),
                })
                .await?
                .into_inner()
                .changed;
            println!("amended: {}", changed.join(", "));
        }
        "withdraw" => {
            let withdrawn = ListingServiceClient::new(channel().await?)
                .withdraw_listing(pb::WithdrawListingRequest {
                    request_id: String::new(),
                    listing_id: argument(1)?.into(),
                })
                .await?
                .into_inner();
            println!("withdrawn (version {})", withdrawn.version);
        }
        "update-site" => {
            let mut organizations = OrganizationServiceClient::new(channel().await?);
            let organization = organizations
                .get_organization(pb::GetOrganizationRequest { organization_id: argument(1)?.into() })
                .await?
                .into_inner()
                .organization
                .context("an organization")?;
            let site = organization
                .sites
                .into_iter()
                .find(|site| site.site_id == argument(2).unwrap_or_default())
                .context("the organization has that site")?;
            let updated = organizations
                .update_site(pb::UpdateSiteRequest {
                    request_id: String::new(),
                    organization_id: argument(1)?.into(),
                    site_id: site.site_id,
                    name: argument(3)?.into(),
                    address: site.address,
                    location: site.location,
                })
                .await?
                .into_inner();
            println!("site updated (version {})", updated.version);
        }
        "set-roles" => {
            let roles = arguments[2..].iter().map(|name| role(name)).collect::<anyhow::Result<Vec<_>>>()?;
            let set = OrganizationServiceClient::new(channel().await?)
                .set_roles(pb::SetRolesRequest {
                    request_id: String::new(),
                    organization_id: argument(1)?.into(),
                    roles,
                })
                .await?
                .into_inner();
            println!("roles set (version {})", set.version);
        }
        "add-permit" => {
            let years: i64 = argument(3)?.parse()?;
            let added = OrganizationServiceClient::new(channel().await?)
                .add_permit(pb::AddPermitRequest {
                    request_id: String::new(),
                    organization_id: argument(1)?.into(),
                    permit: Some(pb::Permit {
                        permit_id: String::new(),
                        kind: pb::PermitKind::Treatment.into(),
                        number: argument(2)?.into(),
                        issued_by: "Préfecture du Bas-Rhin".into(),
                        valid_until: Some(at(years * 366 * 86_400)),
                        accepted_waste_codes: arguments[4..].to_vec(),
                        hazardous_accepted: false,
                        ..Default::default()
                    }),
                })
                .await?
                .into_inner();
            println!("{}", added.permit_id);
        }
        other => anyhow::bail!("unknown command {other}"),
    }
    Ok(())
}
