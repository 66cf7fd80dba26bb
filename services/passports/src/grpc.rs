//! The `PassportService` handlers: who calls, what they ask, what the registry shows.

use std::sync::Arc;

use symbiose_domain::{MaterialFamily, Role, WasteCode};
use symbiose_eventstore::{EventStore, Position};
use symbiose_kit::auth::{self, Caller};
use symbiose_kit::{ApiError, page};
use symbiose_passports_contract::instructions::{Scope, Source};
use symbiose_passports_contract::passport::{Basis, Component, Declaration, Input, Subject, Texts};
use symbiose_proto::common::v1 as common;
use symbiose_proto::convert::{FieldError, id, material_family_from_wire, timestamp_from_ms};
use symbiose_proto::passports::v1::{self as pb, passport_service_server::PassportService};
use symbiose_shell::Actor;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::custody::Step;
use crate::gs1;
use crate::instructions::Published;
use crate::passport::{Command, Stage};
use crate::registry::Registry;
use crate::view::{HeldPassport, PassportsView};

/// Largest page of passports or instructions, and its default.
pub const PAGE_SIZE_MAX: usize = 100;
const PAGE_SIZE_DEFAULT: u32 = 20;

#[derive(Debug)]
pub struct PassportApi<S> {
    registry: Arc<Registry<S>>,
    /// The public web port's base URL, without a trailing slash: passports' pages and Digital
    /// Links are under it.
    base_url: String,
}

impl<S> PassportApi<S> {
    pub fn new(registry: Arc<Registry<S>>, base_url: &str) -> PassportApi<S> {
        PassportApi { registry, base_url: base_url.trim_end_matches('/').to_owned() }
    }
}

fn invalid(error: FieldError) -> ApiError {
    ApiError::InvalidArgument { field: error.field, message: error.message }
}

fn page_size(requested: u32) -> Result<usize, ApiError> {
    let requested = if requested == 0 { PAGE_SIZE_DEFAULT } else { requested };
    page::page_size(i32::try_from(requested).unwrap_or(i32::MAX), PAGE_SIZE_MAX)
}

/// Where a page starts: an index into the view's order, which only grows.
fn page_from(token: &str) -> Result<usize, ApiError> {
    match page::decode_token(token)? {
        Some(key) => key
            .parse::<usize>()
            .map_err(|_| ApiError::invalid_argument("page_token", "is not a token this service issued")),
        None => Ok(0),
    }
}

fn texts_from_wire(text: Option<common::LocalizedText>) -> Texts {
    let text = text.unwrap_or_default();
    Texts { en: text.en.trim().to_owned(), fr: text.fr.trim().to_owned(), de: text.de.trim().to_owned() }
}

fn texts_to_wire(texts: &Texts) -> common::LocalizedText {
    common::LocalizedText { en: texts.en.clone(), fr: texts.fr.clone(), de: texts.de.clone() }
}

fn waste_code_from_wire(
    code: Option<&common::WasteCode>,
    field: &str,
) -> Result<Option<WasteCode>, ApiError> {
    match code.map(|code| code.code.trim()).filter(|code| !code.is_empty()) {
        Some(code) => {
            WasteCode::parse(code).map(Some).map_err(|error| ApiError::invalid_argument(field, error))
        }
        None => Ok(None),
    }
}

fn basis_from_wire(value: i32, field: String) -> Result<Basis, ApiError> {
    match pb::CompositionBasis::try_from(value) {
        Ok(pb::CompositionBasis::Declared) => Ok(Basis::Declared),
        Ok(pb::CompositionBasis::Analysed) => Ok(Basis::Analysed),
        Ok(pb::CompositionBasis::Certified) => Ok(Basis::Certified),
        Ok(pb::CompositionBasis::Unspecified) => {
            Err(ApiError::invalid_argument(field, "is required: declared, analysed or certified"))
        }
        Err(_) => Err(ApiError::invalid_argument(field, format!("{value} is not a basis"))),
    }
}

fn basis_to_wire(basis: Basis) -> i32 {
    match basis {
        Basis::Declared => pb::CompositionBasis::Declared,
        Basis::Analysed => pb::CompositionBasis::Analysed,
        Basis::Certified => pb::CompositionBasis::Certified,
    }
    .into()
}

/// A declaration from the wire: its identifiers parsed and its GS1 identifiers normalized; the
/// rules of its content are the core's.
fn declaration_from_wire(declaration: Option<pb::Declaration>) -> Result<Declaration, ApiError> {
    let declaration = declaration.ok_or_else(|| ApiError::invalid_argument("declaration", "is required"))?;
    let composition = declaration
        .composition
        .into_iter()
        .enumerate()
        .map(|(index, component)| {
            Ok(Component {
                material: component.material.trim().to_owned(),
                share_bp: component.share_bp,
                basis: basis_from_wire(component.basis, format!("declaration.composition[{index}].basis"))?,
                document: Some(component.document.trim().to_owned()).filter(|document| !document.is_empty()),
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    let inputs = declaration
        .inputs
        .into_iter()
        .enumerate()
        .map(|(index, input)| {
            Ok(Input {
                passport_id: id(&input.passport_id, &format!("declaration.inputs[{index}].passport_id"))
                    .map_err(invalid)?,
                share_bp: input.share_bp,
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    let gtin = match declaration.gtin.trim() {
        "" => None,
        gtin => Some(gs1::gtin(gtin).map_err(|error| ApiError::invalid_argument("declaration.gtin", error))?),
    };
    let batch = match declaration.batch.trim() {
        "" => None,
        batch => {
            Some(gs1::batch(batch).map_err(|error| ApiError::invalid_argument("declaration.batch", error))?)
        }
    };
    Ok(Declaration {
        name: declaration.name.trim().to_owned(),
        description: texts_from_wire(declaration.description),
        family: material_family_from_wire(declaration.family, "declaration.family").map_err(invalid)?,
        waste_code: waste_code_from_wire(declaration.waste_code.as_ref(), "declaration.waste_code")?,
        composition,
        recycled_content_bp: declaration.recycled_content_bp,
        advice: texts_from_wire(declaration.advice),
        inputs,
        gtin,
        batch,
    })
}

fn declaration_to_wire(declaration: &Declaration) -> pb::Declaration {
    pb::Declaration {
        name: declaration.name.clone(),
        description: Some(texts_to_wire(&declaration.description)),
        family: common::MaterialFamily::from(declaration.family).into(),
        waste_code: declaration.waste_code.map(common::WasteCode::from),
        composition: declaration
            .composition
            .iter()
            .map(|component| pb::Component {
                material: component.material.clone(),
                share_bp: component.share_bp,
                basis: basis_to_wire(component.basis),
                document: component.document.clone().unwrap_or_default(),
            })
            .collect(),
        recycled_content_bp: declaration.recycled_content_bp,
        advice: Some(texts_to_wire(&declaration.advice)),
        inputs: declaration
            .inputs
            .iter()
            .map(|input| pb::PassportInput {
                passport_id: input.passport_id.to_string(),
                share_bp: input.share_bp,
            })
            .collect(),
        gtin: declaration.gtin.clone().unwrap_or_default(),
        batch: declaration.batch.clone().unwrap_or_default(),
    }
}

fn step_to_wire(step: &Step) -> pb::CustodyStep {
    let country = |country: Option<symbiose_domain::Country>| {
        country.map_or(0, |country| common::Country::from(country).into())
    };
    pb::CustodyStep {
        kind: step.kind.key().to_owned(),
        at: Some(timestamp_from_ms(step.at_ms)),
        town: step.town.clone().unwrap_or_default(),
        country: country(step.country),
        distance_m: step.distance_m,
        co2_g: step.co2_g,
        border_country: country(step.border_country),
        recovery_operation: step.recovery_operation.clone().unwrap_or_default(),
        organization_name: step.organization.clone().unwrap_or_default(),
    }
}

pub(crate) fn instructions_to_wire(published: &Published) -> pb::Instructions {
    pb::Instructions {
        instructions_id: published.instructions_id.to_string(),
        institution_id: published.institution.to_string(),
        institution_name: published.institution_name.clone(),
        scope: Some(match &published.scope {
            Scope::Family(family) => {
                pb::instructions::Scope::Family(common::MaterialFamily::from(*family).into())
            }
            Scope::WasteCode(code) => pb::instructions::Scope::WasteCode(common::WasteCode::from(*code)),
        }),
        text: Some(texts_to_wire(&published.text)),
        source_title: published.source.title.clone(),
        source_url: published.source.url.clone().unwrap_or_default(),
        published_at: Some(timestamp_from_ms(published.published_at_ms)),
        withdrawn: published.withdrawn_at_ms.is_some(),
    }
}

/// The page of a passport and its Digital Link, under `base_url`.
pub(crate) fn urls(base_url: &str, held: &HeldPassport) -> (String, String) {
    let declaration = &held.record.declaration;
    let page = format!("{base_url}/p/{}", held.record.passport_id);
    let link = declaration
        .gtin
        .as_deref()
        .map(|gtin| format!("{base_url}{}", gs1::digital_link_path(gtin, declaration.batch.as_deref())))
        .unwrap_or_default();
    (page, link)
}

fn passport_to_wire(view: &PassportsView, held: &HeldPassport, base_url: &str) -> pb::Passport {
    let record = &held.record;
    let (page_url, digital_link) = urls(base_url, held);
    let declaration = &record.declaration;
    pb::Passport {
        passport_id: record.passport_id.to_string(),
        owner_organization_id: record.owner.to_string(),
        subject: Some(match record.subject {
            Subject::Listing(listing) => pb::passport::Subject::ListingId(listing.to_string()),
            Subject::Delivery(shipment) => pb::passport::Subject::ShipmentId(shipment.to_string()),
        }),
        state: match record.stage {
            Stage::Draft => pb::PassportState::Draft,
            Stage::Published => pb::PassportState::Published,
            Stage::Withdrawn => pb::PassportState::Withdrawn,
        }
        .into(),
        declaration: Some(declaration_to_wire(declaration)),
        custody: view.custody.chain(record.subject).iter().map(step_to_wire).collect(),
        instructions: view
            .instructions_for(declaration.family, declaration.waste_code)
            .into_iter()
            .map(instructions_to_wire)
            .collect(),
        page_url,
        digital_link,
        created_at: Some(timestamp_from_ms(record.created_at_ms)),
        amended_at: record.amended_at_ms.map(timestamp_from_ms),
        published_at: record.published_at_ms.map(timestamp_from_ms),
        withdrawn_at: record.withdrawn_at_ms.map(timestamp_from_ms),
        withdrawal_reason: record.withdrawal_reason.clone().unwrap_or_default(),
        version: held.version,
        position: held.position,
    }
}

/// Whether `caller` sees `held`: a passport never published is its owner's (and the
/// operator's) only.
fn visible(caller: &Caller, held: &HeldPassport) -> bool {
    held.record.is_public() || caller.require_organization(held.record.owner).is_ok()
}

fn subject_from_wire(listing_id: Option<&str>, shipment_id: Option<&str>) -> Result<Subject, ApiError> {
    match (listing_id, shipment_id) {
        (Some(listing), _) => Ok(Subject::Listing(id(listing, "listing_id").map_err(invalid)?)),
        (None, Some(shipment)) => Ok(Subject::Delivery(id(shipment, "shipment_id").map_err(invalid)?)),
        (None, None) => Err(ApiError::invalid_argument(
            "listing_id",
            "a passport is of a listing (listing_id) or of a delivered shipment (shipment_id)",
        )),
    }
}

impl<S: EventStore> PassportApi<S> {
    /// The passport as the view holds it once it reflects `position`.
    async fn answer(
        &self,
        caller: &Caller,
        passport_id: Uuid,
        position: u64,
    ) -> Result<pb::Passport, ApiError> {
        self.registry.wait_for(Position::from_u64(position)).await?;
        let view = self.registry.view();
        let not_found = || ApiError::NotFound(format!("passport {passport_id} not found"));
        let held = view.passports.get(&passport_id).ok_or_else(not_found)?;
        if !visible(caller, held) {
            return Err(not_found());
        }
        Ok(passport_to_wire(&view, held, &self.base_url))
    }

    /// A change of passport `passport_id` by the caller of `request`, answered with the
    /// passport as it stands after it.
    async fn change(
        &self,
        request: Request<impl prost::Message>,
        request_id: &str,
        passport_id: &str,
        command: impl FnOnce() -> Result<Command, ApiError>,
    ) -> Result<pb::Passport, Status> {
        let caller = auth::caller(&request)?;
        let actor = Actor::for_request(caller.organization_id, request_id, request.get_ref())?;
        let passport_id = id(passport_id, "passport_id").map_err(invalid)?;
        let command = command()?;
        let (_, position) = self.registry.change(&actor, &caller, passport_id, command).await?;
        Ok(self.answer(&caller, passport_id, position).await?)
    }
}

#[tonic::async_trait]
impl<S: EventStore> PassportService for PassportApi<S> {
    async fn create_passport(
        &self,
        request: Request<pb::CreatePassportRequest>,
    ) -> Result<Response<pb::CreatePassportResponse>, Status> {
        let caller = auth::caller(&request)?;
        caller.require_any_role(&[Role::Producer, Role::Buyer, Role::Recycler, Role::Operator])?;
        let actor =
            Actor::for_request(caller.organization_id, &request.get_ref().request_id, request.get_ref())?;
        let request = request.into_inner();
        let (listing, shipment) = match &request.subject {
            Some(pb::create_passport_request::Subject::ListingId(listing)) => (Some(listing.as_str()), None),
            Some(pb::create_passport_request::Subject::ShipmentId(shipment)) => {
                (None, Some(shipment.as_str()))
            }
            None => (None, None),
        };
        let subject = subject_from_wire(listing, shipment)?;
        let declaration = declaration_from_wire(request.declaration)?;
        let (passport_id, _, position) = self.registry.create(&actor, &caller, subject, declaration).await?;
        let passport = self.answer(&caller, passport_id, position).await?;
        Ok(Response::new(pb::CreatePassportResponse { passport: Some(passport) }))
    }

    async fn amend_passport(
        &self,
        request: Request<pb::AmendPassportRequest>,
    ) -> Result<Response<pb::AmendPassportResponse>, Status> {
        let inner = request.get_ref().clone();
        let passport = self
            .change(request, &inner.request_id, &inner.passport_id, || {
                Ok(Command::Amend { declaration: declaration_from_wire(inner.declaration.clone())? })
            })
            .await?;
        Ok(Response::new(pb::AmendPassportResponse { passport: Some(passport) }))
    }

    async fn publish_passport(
        &self,
        request: Request<pb::PublishPassportRequest>,
    ) -> Result<Response<pb::PublishPassportResponse>, Status> {
        let inner = request.get_ref().clone();
        let passport =
            self.change(request, &inner.request_id, &inner.passport_id, || Ok(Command::Publish)).await?;
        Ok(Response::new(pb::PublishPassportResponse { passport: Some(passport) }))
    }

    async fn withdraw_passport(
        &self,
        request: Request<pb::WithdrawPassportRequest>,
    ) -> Result<Response<pb::WithdrawPassportResponse>, Status> {
        let inner = request.get_ref().clone();
        let passport = self
            .change(request, &inner.request_id, &inner.passport_id, || {
                Ok(Command::Withdraw { reason: inner.reason.clone() })
            })
            .await?;
        Ok(Response::new(pb::WithdrawPassportResponse { passport: Some(passport) }))
    }

    async fn get_passport(
        &self,
        request: Request<pb::GetPassportRequest>,
    ) -> Result<Response<pb::GetPassportResponse>, Status> {
        let caller = auth::caller(&request)?;
        let request = request.into_inner();
        let passport_id = id(&request.passport_id, "passport_id").map_err(invalid)?;
        let passport = self.answer(&caller, passport_id, request.min_position).await?;
        Ok(Response::new(pb::GetPassportResponse { passport: Some(passport) }))
    }

    async fn list_passports(
        &self,
        request: Request<pb::ListPassportsRequest>,
    ) -> Result<Response<pb::ListPassportsResponse>, Status> {
        let caller = auth::caller(&request)?;
        let request = request.into_inner();
        let size = page_size(request.page_size)?;
        let from = page_from(&request.page_token)?;
        let listing = match request.listing_id.trim() {
            "" => None,
            listing => Some(id(listing, "listing_id").map_err(invalid)?),
        };
        self.registry.wait_for(Position::from_u64(request.min_position)).await?;
        let view = self.registry.view();
        let mut passports = Vec::new();
        let mut next = from;
        // A page holds `size` passports the caller sees; the ids in between that it does not see
        // are skipped, a bounded number of them per page.
        let mut scanned = 0usize;
        while next < view.order.len() && passports.len() < size && scanned < size * 100 {
            scanned += 1;
            let held = view.passports.get(&view.order[next]);
            next += 1;
            let Some(held) = held else { continue };
            if !visible(&caller, held)
                || (request.mine && held.record.owner != caller.organization_id)
                || listing.is_some_and(|listing| held.record.subject != Subject::Listing(listing))
            {
                continue;
            }
            passports.push(passport_to_wire(&view, held, &self.base_url));
        }
        let next_page_token =
            if next < view.order.len() { page::encode_token(&next.to_string()) } else { String::new() };
        Ok(Response::new(pb::ListPassportsResponse { passports, next_page_token }))
    }

    async fn publish_instructions(
        &self,
        request: Request<pb::PublishInstructionsRequest>,
    ) -> Result<Response<pb::PublishInstructionsResponse>, Status> {
        let caller = auth::caller(&request)?;
        caller.require_any_role(&[Role::Institution, Role::Operator]).map_err(|_| {
            ApiError::PermissionDenied("only an institution publishes end-of-life instructions".to_owned())
        })?;
        let actor =
            Actor::for_request(caller.organization_id, &request.get_ref().request_id, request.get_ref())?;
        let request = request.into_inner();
        let scope = match request.scope {
            Some(pb::publish_instructions_request::Scope::Family(family)) => {
                Scope::Family(material_family_from_wire(family, "family").map_err(invalid)?)
            }
            Some(pb::publish_instructions_request::Scope::WasteCode(code)) => Scope::WasteCode(
                waste_code_from_wire(Some(&code), "waste_code")?
                    .ok_or_else(|| ApiError::invalid_argument("waste_code", "is required"))?,
            ),
            None => {
                return Err(ApiError::invalid_argument(
                    "family",
                    "instructions apply to a family or a waste code",
                )
                .into());
            }
        };
        let source = Source {
            title: request.source_title.trim().to_owned(),
            url: Some(request.source_url.trim().to_owned()).filter(|url| !url.is_empty()),
        };
        let (instructions_id, _, position) =
            self.registry.publish_instructions(&actor, scope, texts_from_wire(request.text), source).await?;
        self.registry.wait_for(Position::from_u64(position)).await?;
        let view = self.registry.view();
        let published = view.instructions.get(&instructions_id).ok_or_else(|| {
            ApiError::Internal(anyhow::anyhow!("instructions {instructions_id} written but not in the view"))
        })?;
        Ok(Response::new(pb::PublishInstructionsResponse {
            instructions: Some(instructions_to_wire(published)),
            position,
        }))
    }

    async fn withdraw_instructions(
        &self,
        request: Request<pb::WithdrawInstructionsRequest>,
    ) -> Result<Response<pb::WithdrawInstructionsResponse>, Status> {
        let caller = auth::caller(&request)?;
        let actor =
            Actor::for_request(caller.organization_id, &request.get_ref().request_id, request.get_ref())?;
        let request = request.into_inner();
        let instructions_id = id(&request.instructions_id, "instructions_id").map_err(invalid)?;
        let (_, position) = self.registry.withdraw_instructions(&actor, &caller, instructions_id).await?;
        self.registry.wait_for(Position::from_u64(position)).await?;
        let view = self.registry.view();
        let published = view
            .instructions
            .get(&instructions_id)
            .ok_or_else(|| ApiError::NotFound(format!("instructions {instructions_id} not found")))?;
        Ok(Response::new(pb::WithdrawInstructionsResponse {
            instructions: Some(instructions_to_wire(published)),
            position,
        }))
    }

    async fn list_instructions(
        &self,
        request: Request<pb::ListInstructionsRequest>,
    ) -> Result<Response<pb::ListInstructionsResponse>, Status> {
        auth::caller(&request)?;
        let request = request.into_inner();
        let size = page_size(request.page_size)?;
        let from = page_from(&request.page_token)?;
        let family: Option<MaterialFamily> = match request.family {
            0 => None,
            family => Some(material_family_from_wire(family, "family").map_err(invalid)?),
        };
        let waste_code = match request.waste_code.trim() {
            "" => None,
            code => Some(
                WasteCode::parse(code).map_err(|error| ApiError::invalid_argument("waste_code", error))?,
            ),
        };
        self.registry.wait_for(Position::from_u64(request.min_position)).await?;
        let view = self.registry.view();
        let mut instructions = Vec::new();
        let mut next = from;
        let mut scanned = 0usize;
        while next < view.instructions_order.len() && instructions.len() < size && scanned < size * 100 {
            scanned += 1;
            let published = view.instructions.get(&view.instructions_order[next]);
            next += 1;
            let Some(published) = published else { continue };
            let wanted = match &published.scope {
                Scope::Family(scope) => family.is_none_or(|family| family == *scope) && waste_code.is_none(),
                Scope::WasteCode(scope) => waste_code.is_none_or(|code| code == *scope) && family.is_none(),
            };
            if wanted {
                instructions.push(instructions_to_wire(published));
            }
        }
        let next_page_token = if next < view.instructions_order.len() {
            page::encode_token(&next.to_string())
        } else {
            String::new()
        };
        Ok(Response::new(pb::ListInstructionsResponse { instructions, next_page_token }))
    }
}
