//! The enums the listings context shares between its API and its events, to and from the
//! domain's values: one mapping for both forms. `Err` names the field and the bad value;
//! an unspecified value is `Ok(None)`, for the caller to refuse or to default.

use symbiose_domain::PalletGrade;
use symbiose_proto::convert::FieldError;
use symbiose_proto::listings::v1 as pb;

use crate::listing::{AttachmentKind, DataQuality, LegalStatus, PlasticForm, Polymer, Side};
use crate::organization::PermitKind;

fn unknown(field: &str, value: i32, what: &str) -> FieldError {
    FieldError::new(field, format!("{value} is not {what}"))
}

/// A known value, or `field` is required.
pub fn required<T>(value: Result<Option<T>, FieldError>, field: &str) -> Result<T, FieldError> {
    value?.ok_or_else(|| FieldError::required(field))
}

pub fn side_from_wire(value: i32, field: &str) -> Result<Option<Side>, FieldError> {
    match pb::ListingSide::try_from(value) {
        Ok(pb::ListingSide::Offer) => Ok(Some(Side::Offer)),
        Ok(pb::ListingSide::Request) => Ok(Some(Side::Request)),
        Ok(pb::ListingSide::Unspecified) => Ok(None),
        Err(_) => Err(unknown(field, value, "a side")),
    }
}

pub fn side_to_wire(side: Side) -> i32 {
    match side {
        Side::Offer => pb::ListingSide::Offer,
        Side::Request => pb::ListingSide::Request,
    }
    .into()
}

pub fn legal_status_from_wire(value: i32, field: &str) -> Result<Option<LegalStatus>, FieldError> {
    match pb::LegalStatus::try_from(value) {
        Ok(pb::LegalStatus::Waste) => Ok(Some(LegalStatus::Waste)),
        Ok(pb::LegalStatus::ByProduct) => Ok(Some(LegalStatus::ByProduct)),
        Ok(pb::LegalStatus::EndOfWaste) => Ok(Some(LegalStatus::EndOfWaste)),
        Ok(pb::LegalStatus::ProductForReuse) => Ok(Some(LegalStatus::ProductForReuse)),
        Ok(pb::LegalStatus::Unspecified) => Ok(None),
        Err(_) => Err(unknown(field, value, "a legal status")),
    }
}

pub fn legal_status_to_wire(status: LegalStatus) -> i32 {
    match status {
        LegalStatus::Waste => pb::LegalStatus::Waste,
        LegalStatus::ByProduct => pb::LegalStatus::ByProduct,
        LegalStatus::EndOfWaste => pb::LegalStatus::EndOfWaste,
        LegalStatus::ProductForReuse => pb::LegalStatus::ProductForReuse,
    }
    .into()
}

pub fn pallet_grade_from_wire(value: i32, field: &str) -> Result<Option<PalletGrade>, FieldError> {
    match pb::PalletGrade::try_from(value) {
        Ok(pb::PalletGrade::New) => Ok(Some(PalletGrade::New)),
        Ok(pb::PalletGrade::A) => Ok(Some(PalletGrade::A)),
        Ok(pb::PalletGrade::B) => Ok(Some(PalletGrade::B)),
        Ok(pb::PalletGrade::C) => Ok(Some(PalletGrade::C)),
        Ok(pb::PalletGrade::Unsorted) => Ok(Some(PalletGrade::Unsorted)),
        Ok(pb::PalletGrade::Unspecified) => Ok(None),
        Err(_) => Err(unknown(field, value, "a grade")),
    }
}

pub fn pallet_grade_to_wire(grade: PalletGrade) -> i32 {
    match grade {
        PalletGrade::New => pb::PalletGrade::New,
        PalletGrade::A => pb::PalletGrade::A,
        PalletGrade::B => pb::PalletGrade::B,
        PalletGrade::C => pb::PalletGrade::C,
        PalletGrade::Unsorted => pb::PalletGrade::Unsorted,
    }
    .into()
}

pub fn polymer_from_wire(value: i32, field: &str) -> Result<Option<Polymer>, FieldError> {
    match pb::Polymer::try_from(value) {
        Ok(pb::Polymer::Pet) => Ok(Some(Polymer::Pet)),
        Ok(pb::Polymer::Hdpe) => Ok(Some(Polymer::Hdpe)),
        Ok(pb::Polymer::Pp) => Ok(Some(Polymer::Pp)),
        Ok(pb::Polymer::Ldpe) => Ok(Some(Polymer::Ldpe)),
        Ok(pb::Polymer::Unspecified) => Ok(None),
        Err(_) => Err(unknown(field, value, "a polymer")),
    }
}

pub fn polymer_to_wire(polymer: Polymer) -> i32 {
    match polymer {
        Polymer::Pet => pb::Polymer::Pet,
        Polymer::Hdpe => pb::Polymer::Hdpe,
        Polymer::Pp => pb::Polymer::Pp,
        Polymer::Ldpe => pb::Polymer::Ldpe,
    }
    .into()
}

pub fn plastic_form_from_wire(value: i32, field: &str) -> Result<Option<PlasticForm>, FieldError> {
    match pb::PlasticForm::try_from(value) {
        Ok(pb::PlasticForm::Flakes) => Ok(Some(PlasticForm::Flakes)),
        Ok(pb::PlasticForm::Pellets) => Ok(Some(PlasticForm::Pellets)),
        Ok(pb::PlasticForm::Unspecified) => Ok(None),
        Err(_) => Err(unknown(field, value, "a form")),
    }
}

pub fn plastic_form_to_wire(form: PlasticForm) -> i32 {
    match form {
        PlasticForm::Flakes => pb::PlasticForm::Flakes,
        PlasticForm::Pellets => pb::PlasticForm::Pellets,
    }
    .into()
}

pub fn data_quality_from_wire(value: i32, field: &str) -> Result<Option<DataQuality>, FieldError> {
    match pb::DataQuality::try_from(value) {
        Ok(pb::DataQuality::Unspecified) => Ok(None),
        Ok(pb::DataQuality::Declared) => Ok(Some(DataQuality::Declared)),
        Ok(pb::DataQuality::Analysed) => Ok(Some(DataQuality::Analysed)),
        Ok(pb::DataQuality::Certified) => Ok(Some(DataQuality::Certified)),
        Err(_) => Err(unknown(field, value, "a data quality")),
    }
}

pub fn data_quality_to_wire(data_quality: Option<DataQuality>) -> i32 {
    match data_quality {
        None => pb::DataQuality::Unspecified,
        Some(DataQuality::Declared) => pb::DataQuality::Declared,
        Some(DataQuality::Analysed) => pb::DataQuality::Analysed,
        Some(DataQuality::Certified) => pb::DataQuality::Certified,
    }
    .into()
}

pub fn attachment_kind_from_wire(value: i32, field: &str) -> Result<Option<AttachmentKind>, FieldError> {
    match pb::AttachmentKind::try_from(value) {
        Ok(pb::AttachmentKind::Photo) => Ok(Some(AttachmentKind::Photo)),
        Ok(pb::AttachmentKind::LabAnalysis) => Ok(Some(AttachmentKind::LabAnalysis)),
        Ok(pb::AttachmentKind::Unspecified) => Ok(None),
        Err(_) => Err(unknown(field, value, "an attachment kind")),
    }
}

pub fn attachment_kind_to_wire(kind: AttachmentKind) -> i32 {
    match kind {
        AttachmentKind::Photo => pb::AttachmentKind::Photo,
        AttachmentKind::LabAnalysis => pb::AttachmentKind::LabAnalysis,
    }
    .into()
}

pub fn permit_kind_from_wire(value: i32, field: &str) -> Result<Option<PermitKind>, FieldError> {
    match pb::PermitKind::try_from(value) {
        Ok(pb::PermitKind::Treatment) => Ok(Some(PermitKind::Treatment)),
        Ok(pb::PermitKind::Transport) => Ok(Some(PermitKind::Transport)),
        Ok(pb::PermitKind::Unspecified) => Ok(None),
        Err(_) => Err(unknown(field, value, "a permit kind")),
    }
}

pub fn permit_kind_to_wire(kind: PermitKind) -> i32 {
    match kind {
        PermitKind::Treatment => pb::PermitKind::Treatment,
        PermitKind::Transport => pb::PermitKind::Transport,
    }
    .into()
}
