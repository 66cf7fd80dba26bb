//! `CatalogService`: converts a request into a [`Query`], runs it, converts the hits back.

use std::sync::Arc;

use symbiose_domain::lot::{LegalStatus, Quality};
use symbiose_domain::{Currency, Labels, PalletGrade, Role, WasteCode};
use symbiose_eventstore::Position;
use symbiose_kit::{ApiError, auth, page};
use symbiose_listings_contract::listing::{Side, quantity_of};
use symbiose_proto::catalog::v1::{self as pb, catalog_service_server::CatalogService};
use symbiose_proto::common::v1 as common;
use symbiose_proto::convert;
use symbiose_proto::listings::v1 as listings;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::catalog::Catalog;
use crate::query::{Hit, Key, PAGE_SIZE_MAX, Query, RADIUS_KM_MAX, Sort};

/// Longest `accept-language` header read, in bytes.
const ACCEPT_LANGUAGE_BYTES_MAX: usize = 256;

#[derive(Debug, Clone)]
pub struct CatalogApi {
    catalog: Arc<Catalog>,
}

impl CatalogApi {
    pub fn new(catalog: Arc<Catalog>) -> CatalogApi {
        CatalogApi { catalog }
    }
}

#[tonic::async_trait]
impl CatalogService for CatalogApi {
    async fn search_catalog(
        &self,
        request: Request<pb::SearchCatalogRequest>,
    ) -> Result<Response<pb::SearchCatalogResponse>, Status> {
        auth::caller(&request)?;
        let header_language = accept_language(&request);
        let request = request.into_inner();
        let language = language(&request.language, header_language)?;
        let min_position = Position::from_u64(request.min_position);
        let query = query_from_wire(request)?;
        self.catalog.wait_for(min_position).await?;
        let (page, position) = self.catalog.search(&query);
        Ok(Response::new(pb::SearchCatalogResponse {
            entries: page.hits.iter().map(|hit| entry_to_wire(hit, language)).collect(),
            next_page_token: page.next.map(|key| page::encode_token(&key.to_token())).unwrap_or_default(),
            position: position.as_u64(),
        }))
    }

    async fn get_catalog_entry(
        &self,
        request: Request<pb::GetCatalogEntryRequest>,
    ) -> Result<Response<pb::GetCatalogEntryResponse>, Status> {
        auth::caller(&request)?;
        let header_language = accept_language(&request);
        let request = request.into_inner();
        let language = language(&request.language, header_language)?;
        let id = Uuid::parse_str(request.listing_id.trim())
            .map_err(|_| ApiError::invalid_argument("listing_id", "is not a uuid"))?;
        self.catalog.wait_for(Position::from_u64(request.min_position)).await?;
        let (hit, position) = {
            let projection = self.catalog.read();
            let entry = projection.entry(id).cloned();
            (entry.map(|entry| Hit { entry, distance_km: None }), self.catalog.position())
        };
        let hit = hit.ok_or_else(|| ApiError::NotFound(format!("listing {id} is not in the catalog")))?;
        Ok(Response::new(pb::GetCatalogEntryResponse {
            entry: Some(entry_to_wire(&hit, language)),
            position: position.as_u64(),
        }))
    }

    async fn rebuild_catalog(
        &self,
        request: Request<pb::RebuildCatalogRequest>,
    ) -> Result<Response<pb::RebuildCatalogResponse>, Status> {
        auth::caller(&request)?.require_role(Role::Operator)?;
        let rebuilt = self.catalog.rebuild().await?;
        Ok(Response::new(pb::RebuildCatalogResponse {
            entries: rebuilt.entries,
            position: rebuilt.position,
            duration_ms: rebuilt.duration_ms,
        }))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Language {
    En,
    Fr,
    De,
}

fn parse_language(tag: &str) -> Option<Language> {
    let primary = tag.trim().split(['-', '_', ';']).next()?.trim().to_ascii_lowercase();
    match primary.as_str() {
        "en" => Some(Language::En),
        "fr" => Some(Language::Fr),
        "de" => Some(Language::De),
        _ => None,
    }
}

/// The first language of the `accept-language` metadata the catalog speaks.
fn accept_language<T>(request: &Request<T>) -> Option<Language> {
    let header = request.metadata().get("accept-language")?.to_str().ok()?;
    if header.len() > ACCEPT_LANGUAGE_BYTES_MAX {
        return None;
    }
    header.split(',').find_map(parse_language)
}

fn language(field: &str, header: Option<Language>) -> Result<Language, ApiError> {
    if field.trim().is_empty() {
        return Ok(header.unwrap_or(Language::En));
    }
    parse_language(field).ok_or_else(|| ApiError::invalid_argument("language", "must be en, fr or de"))
}

fn label(labels: Labels, language: Language) -> &'static str {
    match language {
        Language::En => labels.en,
        Language::Fr => labels.fr,
        Language::De => labels.de,
    }
}

fn query_from_wire(request: pb::SearchCatalogRequest) -> Result<Query, ApiError> {
    let side = match listings::ListingSide::try_from(request.side) {
        Ok(listings::ListingSide::Unspecified) => None,
        Ok(listings::ListingSide::Offer) => Some(Side::Offer),
        Ok(listings::ListingSide::Request) => Some(Side::Request),
        Err(_) => return Err(ApiError::invalid_argument("side", "is not a listing side")),
    };
    let family = match request.material_family {
        0 => None,
        value => Some(convert::material_family_from_wire(value, "material_family")?),
    };
    let waste_code = match request.waste_code.trim() {
        "" => None,
        code => {
            Some(WasteCode::parse(code).map_err(|error| ApiError::invalid_argument("waste_code", error))?)
        }
    };
    let waste_chapter = match request.waste_chapter.trim() {
        "" => None,
        chapter if chapter.len() == 2 && chapter.bytes().all(|byte| byte.is_ascii_digit()) => {
            Some(chapter.to_owned())
        }
        _ => return Err(ApiError::invalid_argument("waste_chapter", "must be two digits, such as 15")),
    };
    let legal_status = match listings::LegalStatus::try_from(request.legal_status) {
        Ok(listings::LegalStatus::Unspecified) => None,
        Ok(listings::LegalStatus::Waste) => Some(LegalStatus::Waste),
        Ok(listings::LegalStatus::ByProduct) => Some(LegalStatus::ByProduct),
        Ok(listings::LegalStatus::EndOfWaste) => Some(LegalStatus::EndOfWaste),
        Ok(listings::LegalStatus::ProductForReuse) => Some(LegalStatus::ProductForReuse),
        Err(_) => return Err(ApiError::invalid_argument("legal_status", "is not a legal status")),
    };
    let pallet_grade = match listings::PalletGrade::try_from(request.pallet_grade) {
        Ok(listings::PalletGrade::Unspecified) => None,
        Ok(listings::PalletGrade::New) => Some(PalletGrade::New),
        Ok(listings::PalletGrade::A) => Some(PalletGrade::A),
        Ok(listings::PalletGrade::B) => Some(PalletGrade::B),
        Ok(listings::PalletGrade::C) => Some(PalletGrade::C),
        Ok(listings::PalletGrade::Unsorted) => Some(PalletGrade::Unsorted),
        Err(_) => return Err(ApiError::invalid_argument("pallet_grade", "is not a pallet grade")),
    };
    let near = match request.near {
        None if request.radius_km != 0 => {
            return Err(ApiError::invalid_argument("near", "is required with radius_km"));
        }
        None => None,
        Some(point) => {
            let point =
                symbiose_domain::GeoPoint::try_from(point).map_err(|error: convert::FieldError| {
                    ApiError::from(convert::FieldError::new(format!("near.{}", error.field), error.message))
                })?;
            if !(1..=RADIUS_KM_MAX).contains(&request.radius_km) {
                return Err(ApiError::invalid_argument(
                    "radius_km",
                    format!("must be within 1 and {RADIUS_KM_MAX}"),
                ));
            }
            Some((point, request.radius_km))
        }
    };
    let countries = request
        .countries
        .iter()
        .map(|country| convert::country_from_wire(*country, "countries"))
        .collect::<Result<Vec<_>, _>>()?;
    let currency = match request.currency.trim() {
        "" => None,
        code => Some(
            Currency::ALL
                .into_iter()
                .find(|currency| currency.code().eq_ignore_ascii_case(code))
                .ok_or_else(|| ApiError::invalid_argument("currency", "must be EUR or CHF"))?,
        ),
    };
    if currency.is_none() && (request.price_min_minor.is_some() || request.price_max_minor.is_some()) {
        return Err(ApiError::invalid_argument("currency", "is required with a price range"));
    }
    if let (Some(min), Some(max)) = (request.price_min_minor, request.price_max_minor)
        && min > max
    {
        return Err(ApiError::invalid_argument("price_min_minor", "must not exceed price_max_minor"));
    }
    let sort = match pb::CatalogSort::try_from(request.sort) {
        Ok(pb::CatalogSort::Unspecified) if near.is_some() => Sort::Distance,
        Ok(pb::CatalogSort::Unspecified) | Ok(pb::CatalogSort::Recency) => Sort::Recency,
        Ok(pb::CatalogSort::Distance) if near.is_none() => {
            return Err(ApiError::invalid_argument("sort", "distance needs near and radius_km"));
        }
        Ok(pb::CatalogSort::Distance) => Sort::Distance,
        Ok(pb::CatalogSort::Price) => Sort::Price,
        Err(_) => return Err(ApiError::invalid_argument("sort", "is not a sort order")),
    };
    if sort == Sort::Price && currency.is_none() {
        return Err(ApiError::invalid_argument("currency", "is required to sort by price"));
    }
    let page_size = page::page_size(request.page_size, PAGE_SIZE_MAX)?;
    let after =
        match page::decode_token(&request.page_token)? {
            None => None,
            Some(text) => Some(Key::from_token(&text).ok_or_else(|| {
                ApiError::invalid_argument("page_token", "is not a token this service issued")
            })?),
        };
    Ok(Query {
        side,
        family,
        waste_code,
        waste_chapter,
        hazardous: request.hazardous,
        legal_status,
        pallet_grade,
        near,
        countries,
        currency,
        price_min_minor: request.price_min_minor,
        price_max_minor: request.price_max_minor,
        available_on_ms: (request.available_on_ms != 0).then_some(request.available_on_ms),
        sort,
        page_size,
        after,
    })
}

fn entry_to_wire(hit: &Hit, language: Language) -> pb::CatalogEntry {
    let listing = &hit.entry.listing;
    let terms = &listing.terms;
    let side = match terms.side {
        Side::Offer => listings::ListingSide::Offer,
        Side::Request => listings::ListingSide::Request,
    };
    let legal_status = match terms.legal_status {
        LegalStatus::Waste => listings::LegalStatus::Waste,
        LegalStatus::ByProduct => listings::LegalStatus::ByProduct,
        LegalStatus::EndOfWaste => listings::LegalStatus::EndOfWaste,
        LegalStatus::ProductForReuse => listings::LegalStatus::ProductForReuse,
    };
    let pallet_grade = match terms.quality {
        Quality::PalletGrade(PalletGrade::New) => listings::PalletGrade::New,
        Quality::PalletGrade(PalletGrade::A) => listings::PalletGrade::A,
        Quality::PalletGrade(PalletGrade::B) => listings::PalletGrade::B,
        Quality::PalletGrade(PalletGrade::C) => listings::PalletGrade::C,
        Quality::PalletGrade(PalletGrade::Unsorted) => listings::PalletGrade::Unsorted,
        _ => listings::PalletGrade::Unspecified,
    };
    let available = quantity_of(listing, listing.available_milli()).ok().flatten();
    pb::CatalogEntry {
        listing_id: listing.id.to_string(),
        owner_organization_id: listing.owner.to_string(),
        side: side.into(),
        material_family: common::MaterialFamily::from(terms.family).into(),
        material_family_label: label(terms.family.labels(), language).to_owned(),
        waste_code: terms.waste_code.map(common::WasteCode::from),
        legal_status: legal_status.into(),
        pallet_grade: pallet_grade.into(),
        description: terms.description.clone(),
        quantity: Some(terms.quantity.into()),
        available: available.map(common::Quantity::from),
        price_per_unit: Some(terms.price_per_unit.into()),
        point: Some(listing.place.point.into()),
        country: common::Country::from(listing.place.country).into(),
        distance_km: hit.distance_km,
        available_from_ms: terms.available_from_ms,
        available_until_ms: terms.available_until_ms,
        published_position: hit.entry.published_position,
        version: hit.entry.version,
    }
}
