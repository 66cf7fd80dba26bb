//! The `ReferenceService` handlers: convert the request, ask the domain, convert the answer.

use symbiose_domain::identifier::{Identifier, IdentifierError};
use symbiose_domain::input::echo;
use symbiose_domain::waste::{self, EntryType, WasteCode, WasteCodeEntry, WasteCodeError, WasteFilter};
use symbiose_domain::{MaterialFamily, Unit};
use symbiose_kit::ApiError;
use symbiose_kit::page;
use symbiose_proto::common::v1 as common;
use symbiose_proto::convert::identifier_kind_from_wire;
use symbiose_proto::reference::v1 as pb;
use symbiose_proto::reference::v1::reference_service_server::ReferenceService;
use tonic::{Request, Response, Status};

/// Largest page of `ListWasteCodes`.
pub const WASTE_CODES_PAGE_SIZE_MAX: usize = 200;
/// Longest search text, in bytes.
const SEARCH_TEXT_BYTES_MAX: usize = 100;
/// Longest identifier accepted, in bytes, before any parsing.
const IDENTIFIER_BYTES_MAX: usize = 64;

#[derive(Debug, Clone, Copy, Default)]
pub struct ReferenceApi;

#[tonic::async_trait]
impl ReferenceService for ReferenceApi {
    async fn list_waste_codes(
        &self,
        request: Request<pb::ListWasteCodesRequest>,
    ) -> Result<Response<pb::ListWasteCodesResponse>, Status> {
        Ok(Response::new(list_waste_codes(request.into_inner())?))
    }

    async fn get_waste_code(
        &self,
        request: Request<pb::GetWasteCodeRequest>,
    ) -> Result<Response<pb::GetWasteCodeResponse>, Status> {
        let code = parse_waste_code(&request.into_inner().code)?;
        Ok(Response::new(pb::GetWasteCodeResponse { waste_code: Some(waste_code_entry(code.entry())) }))
    }

    async fn list_material_families(
        &self,
        _request: Request<pb::ListMaterialFamiliesRequest>,
    ) -> Result<Response<pb::ListMaterialFamiliesResponse>, Status> {
        let families = MaterialFamily::ALL.iter().map(|family| material_family(*family)).collect();
        Ok(Response::new(pb::ListMaterialFamiliesResponse { families }))
    }

    async fn validate_identifier(
        &self,
        request: Request<pb::ValidateIdentifierRequest>,
    ) -> Result<Response<pb::ValidateIdentifierResponse>, Status> {
        Ok(Response::new(validate_identifier(request.into_inner())?))
    }
}

fn list_waste_codes(request: pb::ListWasteCodesRequest) -> Result<pb::ListWasteCodesResponse, ApiError> {
    let chapter = optional_digits(&request.chapter, 2, "chapter")?;
    let sub_chapter = optional_digits(&request.sub_chapter, 4, "sub_chapter")?;
    if let Some(chapter) = chapter
        && !waste::chapters().iter().any(|(code, _)| *code == chapter)
    {
        return Err(ApiError::invalid_argument(
            "chapter",
            format!("{chapter} is not a chapter of the List of Waste"),
        ));
    }
    if let (Some(chapter), Some(sub_chapter)) = (chapter, sub_chapter)
        && !sub_chapter.starts_with(chapter)
    {
        return Err(ApiError::invalid_argument(
            "sub_chapter",
            format!("{sub_chapter} is not in chapter {chapter}"),
        ));
    }
    let text = request.text.trim();
    if text.len() > SEARCH_TEXT_BYTES_MAX {
        return Err(ApiError::invalid_argument(
            "text",
            format!("must be at most {SEARCH_TEXT_BYTES_MAX} bytes"),
        ));
    }
    let page_size = page::page_size(request.page_size, WASTE_CODES_PAGE_SIZE_MAX)?;
    let after = page::decode_token(&request.page_token)?;
    if let Some(after) = &after
        && (after.len() != 6 || !after.bytes().all(|byte| byte.is_ascii_digit()))
    {
        return Err(ApiError::invalid_argument("page_token", "is not a token this service issued"));
    }

    let filter = WasteFilter {
        chapter,
        sub_chapter,
        hazardous: request.hazardous,
        text: (!text.is_empty()).then_some(text),
    };
    let matching: Vec<&WasteCodeEntry> =
        waste::list_of_waste().iter().filter(|entry| filter.matches(entry)).collect();
    let start = after.map_or(0, |after| matching.partition_point(|entry| entry.code <= after.as_str()));
    let page: Vec<&WasteCodeEntry> = matching.iter().skip(start).take(page_size).copied().collect();
    let next_page_token = match page.last() {
        Some(last) if start + page.len() < matching.len() => page::encode_token(last.code),
        _ => String::new(),
    };
    Ok(pb::ListWasteCodesResponse {
        waste_codes: page.into_iter().map(waste_code_entry).collect(),
        next_page_token,
        total_size: i32::try_from(matching.len()).expect("the list has fewer than 2^31 codes"),
    })
}

fn optional_digits<'a>(value: &'a str, digits: usize, field: &str) -> Result<Option<&'a str>, ApiError> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    if value.len() != digits || !value.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(ApiError::invalid_argument(
            field,
            format!("must be {digits} digits, not {:?}", echo(value)),
        ));
    }
    Ok(Some(value))
}

fn parse_waste_code(input: &str) -> Result<WasteCode, ApiError> {
    WasteCode::parse(input).map_err(|error| match error {
        WasteCodeError::Unknown(code) => {
            ApiError::NotFound(format!("code: {code} is not in the European List of Waste"))
        }
        other => ApiError::invalid_argument("code", other),
    })
}

fn waste_code_entry(entry: &WasteCodeEntry) -> pb::WasteCodeEntry {
    let code = WasteCode::parse(entry.code).expect("every entry of the list parses");
    pb::WasteCodeEntry {
        waste_code: Some(common::WasteCode::from(code)),
        display_code: code.display_form(),
        entry_type: entry_type(entry.entry_type).into(),
        chapter: code.chapter().to_owned(),
        chapter_title: entry.chapter_title.to_owned(),
        sub_chapter: code.sub_chapter().to_owned(),
        sub_chapter_title: entry.sub_chapter_title.to_owned(),
        description: entry.description.to_owned(),
    }
}

fn entry_type(entry_type: EntryType) -> pb::WasteEntryType {
    match entry_type {
        EntryType::AbsoluteHazardous => pb::WasteEntryType::AbsoluteHazardous,
        EntryType::MirrorHazardous => pb::WasteEntryType::MirrorHazardous,
        EntryType::AbsoluteNonHazardous => pb::WasteEntryType::AbsoluteNonHazardous,
        EntryType::MirrorNonHazardous => pb::WasteEntryType::MirrorNonHazardous,
    }
}

fn material_family(family: MaterialFamily) -> pb::MaterialFamilyInfo {
    let text = |labels: symbiose_domain::Labels| common::LocalizedText {
        en: labels.en.to_owned(),
        fr: labels.fr.to_owned(),
        de: labels.de.to_owned(),
    };
    pb::MaterialFamilyInfo {
        family: common::MaterialFamily::from(family).into(),
        key: family.key().to_owned(),
        group_key: family.group().key().to_owned(),
        label: Some(text(family.labels())),
        description: Some(text(family.description())),
        units: family.units().iter().map(|unit: &Unit| common::Unit::from(*unit).into()).collect(),
        typical_waste_codes: family
            .typical_waste_codes()
            .iter()
            .map(|code| {
                common::WasteCode::from(WasteCode::parse(code).expect("typical codes are in the list"))
            })
            .collect(),
    }
}

fn validate_identifier(
    request: pb::ValidateIdentifierRequest,
) -> Result<pb::ValidateIdentifierResponse, ApiError> {
    let input = request.identifier.as_str();
    if input.len() > IDENTIFIER_BYTES_MAX {
        return Err(ApiError::invalid_argument(
            "identifier",
            format!("must be at most {IDENTIFIER_BYTES_MAX} bytes"),
        ));
    }
    let parsed = match identifier_kind_from_wire(request.kind, "kind")? {
        Some(kind) => Identifier::parse_as(input, kind),
        None => Identifier::parse(input),
    };
    match parsed {
        Ok(identifier) => Ok(pb::ValidateIdentifierResponse {
            kind: pb::IdentifierKind::from(identifier.kind()).into(),
            country: common::Country::from(identifier.kind().country()).into(),
            normalized: identifier.normalized().to_owned(),
            valid: true,
            reason: String::new(),
            display_form: identifier.display_form(),
        }),
        // Well formed but with wrong check digits is an answer, not bad input: the partner
        // asked precisely whether the number holds.
        Err(IdentifierError::CheckDigits { kind, normalized }) => Ok(pb::ValidateIdentifierResponse {
            kind: pb::IdentifierKind::from(kind).into(),
            country: common::Country::from(kind.country()).into(),
            reason: IdentifierError::CheckDigits { kind, normalized: normalized.clone() }.to_string(),
            normalized,
            valid: false,
            display_form: String::new(),
        }),
        Err(error) => Err(ApiError::invalid_argument("identifier", error)),
    }
}
