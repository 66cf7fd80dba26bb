//! What describes a lot wherever it goes: its legal status, its quality, and where it is. The
//! listings context records them, matching pairs on them, logistics and settlement act on
//! them, so they are shared values, not any one context's.

use crate::{Country, GeoPoint, PalletGrade};

/// What the law says the lot is (Waste Framework Directive 2008/98/EC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum LegalStatus {
    Waste,
    ByProduct,
    EndOfWaste,
    ProductForReuse,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Polymer {
    Pet,
    Hdpe,
    Pp,
    Ldpe,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum PlasticForm {
    Flakes,
    Pellets,
}

/// How a quality is known: said by its owner, measured by a laboratory, or certified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum DataQuality {
    Declared,
    Analysed,
    Certified,
}

/// The quality of a lot, in the terms of its material family.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Quality {
    Unspecified,
    PalletGrade(PalletGrade),
    Plastic { polymer: Polymer, form: PlasticForm },
    Specification { text: String, data_quality: Option<DataQuality> },
}

/// Where a lot is: its point and the country of that point.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Place {
    pub point: GeoPoint,
    pub country: Country,
}
