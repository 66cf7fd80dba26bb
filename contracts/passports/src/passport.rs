//! Passports, in the stream `passport-<passport id>`: created as a draft for a listing of its
//! owner or for a shipment its owner received, amended by restating the whole declaration,
//! published, withdrawn. The chain of custody a passport shows is not here: it is derived from
//! the events of the other contexts, never recorded by this one.

use prost::Message as _;
use symbiose_contract::Stored;
use symbiose_domain::{MaterialFamily, WasteCode};
use symbiose_eventstore::RecordedEvent;
use symbiose_proto::common::v1 as common;
use symbiose_proto::convert::{FieldError, id, material_family_from_wire, timestamp_from_ms};
use symbiose_proto::passports::v1 as pb;
use uuid::Uuid;

use crate::wire::{bad, field, ms, optional, texts_from_stored, texts_to_stored, waste_code_from_stored};
use crate::{PASSPORT_AMENDED, PASSPORT_CREATED, PASSPORT_PUBLISHED, PASSPORT_WITHDRAWN};

/// How the share of a component is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Basis {
    /// Stated by the owner, without a document.
    Declared,
    /// Measured by a laboratory analysis of the lot.
    Analysed,
    /// Attested by a certificate of a third party.
    Certified,
}

/// One material a lot is made of.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Component {
    pub material: String,
    /// Its share of the lot's mass, in basis points (10000 = 100 %).
    pub share_bp: u32,
    pub basis: Basis,
    /// The analysis report or certificate behind the share.
    pub document: Option<String>,
}

/// A lot the product is made from, itself with a passport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Input {
    pub passport_id: Uuid,
    /// The share of the product's mass made of that input, in basis points (10000 = 100 %).
    pub share_bp: u32,
}

/// A text in three languages; "" is a language not given.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Texts {
    pub en: String,
    pub fr: String,
    pub de: String,
}

/// What a passport describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Subject {
    /// A listing of the owner: the lot it offers.
    Listing(Uuid),
    /// A delivered shipment the owner received, by the shipment's id: what it makes from it.
    Delivery(Uuid),
}

/// What the owner declares about a lot; the whole of it is restated by an amendment.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Declaration {
    pub name: String,
    pub description: Texts,
    pub family: MaterialFamily,
    pub waste_code: Option<WasteCode>,
    pub composition: Vec<Component>,
    /// The share of the lot's mass that is recycled material, in basis points (10000 = 100 %).
    pub recycled_content_bp: u32,
    /// Repair and reuse advice.
    pub advice: Texts,
    pub inputs: Vec<Input>,
    /// The GS1 GTIN as 14 digits, checked when it was written.
    pub gtin: Option<String>,
    pub batch: Option<String>,
}

/// What happened to a passport.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum PassportEvent {
    Created { passport_id: Uuid, owner: Uuid, subject: Subject, declaration: Declaration, at_ms: i64 },
    Amended { passport_id: Uuid, declaration: Declaration, at_ms: i64 },
    Published { passport_id: Uuid, at_ms: i64 },
    Withdrawn { passport_id: Uuid, reason: String, at_ms: i64 },
}

/// `event` in its stored form: its type name and its payload.
pub fn encode(event: &PassportEvent) -> (&'static str, Vec<u8>) {
    match event {
        PassportEvent::Created { passport_id, owner, subject, declaration, at_ms } => (
            PASSPORT_CREATED,
            pb::PassportCreated {
                passport_id: passport_id.to_string(),
                owner_organization_id: owner.to_string(),
                subject: Some(match subject {
                    Subject::Listing(listing) => {
                        pb::passport_created::Subject::ListingId(listing.to_string())
                    }
                    Subject::Delivery(shipment) => {
                        pb::passport_created::Subject::ShipmentId(shipment.to_string())
                    }
                }),
                declaration: Some(declaration_to_stored(declaration)),
                at: Some(timestamp_from_ms(*at_ms)),
            }
            .encode_to_vec(),
        ),
        PassportEvent::Amended { passport_id, declaration, at_ms } => (
            PASSPORT_AMENDED,
            pb::PassportAmended {
                passport_id: passport_id.to_string(),
                declaration: Some(declaration_to_stored(declaration)),
                at: Some(timestamp_from_ms(*at_ms)),
            }
            .encode_to_vec(),
        ),
        PassportEvent::Published { passport_id, at_ms } => (
            PASSPORT_PUBLISHED,
            pb::PassportPublished {
                passport_id: passport_id.to_string(),
                at: Some(timestamp_from_ms(*at_ms)),
            }
            .encode_to_vec(),
        ),
        PassportEvent::Withdrawn { passport_id, reason, at_ms } => (
            PASSPORT_WITHDRAWN,
            pb::PassportWithdrawn {
                passport_id: passport_id.to_string(),
                reason: reason.clone(),
                at: Some(timestamp_from_ms(*at_ms)),
            }
            .encode_to_vec(),
        ),
    }
}

/// A passport event from its stored form; an error names the event type and the field.
pub fn decode(event_type: &str, payload: &[u8]) -> Result<PassportEvent, String> {
    let field = field(event_type);
    match event_type {
        PASSPORT_CREATED => {
            let created = pb::PassportCreated::decode(payload).map_err(bad(event_type))?;
            let subject = match created.subject {
                Some(pb::passport_created::Subject::ListingId(listing)) => {
                    Subject::Listing(id(&listing, "listing_id").map_err(&field)?)
                }
                Some(pb::passport_created::Subject::ShipmentId(shipment)) => {
                    Subject::Delivery(id(&shipment, "shipment_id").map_err(&field)?)
                }
                None => return Err(field(FieldError::required("subject"))),
            };
            Ok(PassportEvent::Created {
                passport_id: id(&created.passport_id, "passport_id").map_err(&field)?,
                owner: id(&created.owner_organization_id, "owner_organization_id").map_err(&field)?,
                subject,
                declaration: declaration_from_stored(created.declaration).map_err(&field)?,
                at_ms: ms(created.at.as_ref(), "at").map_err(&field)?,
            })
        }
        PASSPORT_AMENDED => {
            let amended = pb::PassportAmended::decode(payload).map_err(bad(event_type))?;
            Ok(PassportEvent::Amended {
                passport_id: id(&amended.passport_id, "passport_id").map_err(&field)?,
                declaration: declaration_from_stored(amended.declaration).map_err(&field)?,
                at_ms: ms(amended.at.as_ref(), "at").map_err(&field)?,
            })
        }
        PASSPORT_PUBLISHED => {
            let published = pb::PassportPublished::decode(payload).map_err(bad(event_type))?;
            Ok(PassportEvent::Published {
                passport_id: id(&published.passport_id, "passport_id").map_err(&field)?,
                at_ms: ms(published.at.as_ref(), "at").map_err(&field)?,
            })
        }
        PASSPORT_WITHDRAWN => {
            let withdrawn = pb::PassportWithdrawn::decode(payload).map_err(bad(event_type))?;
            Ok(PassportEvent::Withdrawn {
                passport_id: id(&withdrawn.passport_id, "passport_id").map_err(&field)?,
                reason: withdrawn.reason,
                at_ms: ms(withdrawn.at.as_ref(), "at").map_err(&field)?,
            })
        }
        _ => Err(format!("{event_type} is not a passport event")),
    }
}

/// The event `recorded` holds, whatever shape it was written in (through [`crate::upcast`]).
pub fn decode_recorded(recorded: &RecordedEvent) -> Result<PassportEvent, String> {
    let stored = crate::upcast(Stored::of(recorded))?;
    decode(stored.event_type, &stored.payload)
}

fn basis_to_stored(basis: Basis) -> pb::StoredBasis {
    match basis {
        Basis::Declared => pb::StoredBasis::Declared,
        Basis::Analysed => pb::StoredBasis::Analysed,
        Basis::Certified => pb::StoredBasis::Certified,
    }
}

fn basis_from_stored(value: i32, field: &str) -> Result<Basis, FieldError> {
    match pb::StoredBasis::try_from(value) {
        Ok(pb::StoredBasis::Declared) => Ok(Basis::Declared),
        Ok(pb::StoredBasis::Analysed) => Ok(Basis::Analysed),
        Ok(pb::StoredBasis::Certified) => Ok(Basis::Certified),
        Ok(pb::StoredBasis::Unspecified) => Err(FieldError::required(field)),
        Err(_) => Err(FieldError::new(field, format!("{value} is not a basis"))),
    }
}

fn declaration_to_stored(declaration: &Declaration) -> pb::StoredDeclaration {
    pb::StoredDeclaration {
        name: declaration.name.clone(),
        description: Some(texts_to_stored(&declaration.description)),
        family: common::MaterialFamily::from(declaration.family).into(),
        waste_code: declaration.waste_code.map(common::WasteCode::from),
        composition: declaration
            .composition
            .iter()
            .map(|component| pb::StoredComponent {
                material: component.material.clone(),
                share_bp: component.share_bp,
                basis: basis_to_stored(component.basis).into(),
                document: component.document.clone().unwrap_or_default(),
            })
            .collect(),
        recycled_content_bp: declaration.recycled_content_bp,
        advice: Some(texts_to_stored(&declaration.advice)),
        inputs: declaration
            .inputs
            .iter()
            .map(|input| pb::StoredInput {
                passport_id: input.passport_id.to_string(),
                share_bp: input.share_bp,
            })
            .collect(),
        gtin: declaration.gtin.clone().unwrap_or_default(),
        batch: declaration.batch.clone().unwrap_or_default(),
    }
}

fn declaration_from_stored(declaration: Option<pb::StoredDeclaration>) -> Result<Declaration, FieldError> {
    let declaration = declaration.ok_or_else(|| FieldError::required("declaration"))?;
    let under = |error: FieldError| error.under("declaration");
    let composition = declaration
        .composition
        .into_iter()
        .enumerate()
        .map(|(index, component)| {
            let under = |error: FieldError| error.under(&format!("composition[{index}]"));
            Ok(Component {
                material: component.material,
                share_bp: component.share_bp,
                basis: basis_from_stored(component.basis, "basis").map_err(under)?,
                document: optional(component.document),
            })
        })
        .collect::<Result<Vec<_>, FieldError>>()
        .map_err(under)?;
    let inputs = declaration
        .inputs
        .into_iter()
        .enumerate()
        .map(|(index, input)| {
            let under = |error: FieldError| error.under(&format!("inputs[{index}]"));
            Ok(Input {
                passport_id: id(&input.passport_id, "passport_id").map_err(under)?,
                share_bp: input.share_bp,
            })
        })
        .collect::<Result<Vec<_>, FieldError>>()
        .map_err(under)?;
    let waste_code = match declaration.waste_code {
        Some(code) if !code.code.is_empty() => {
            Some(waste_code_from_stored(&code, "waste_code").map_err(under)?)
        }
        _ => None,
    };
    Ok(Declaration {
        name: declaration.name,
        description: texts_from_stored(declaration.description),
        family: material_family_from_wire(declaration.family, "family").map_err(under)?,
        waste_code,
        composition,
        recycled_content_bp: declaration.recycled_content_bp,
        advice: texts_from_stored(declaration.advice),
        inputs,
        gtin: optional(declaration.gtin),
        batch: optional(declaration.batch),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(en: &str, fr: &str, de: &str) -> Texts {
        Texts { en: en.into(), fr: fr.into(), de: de.into() }
    }

    /// A declaration with every optional part given.
    fn full_declaration() -> Declaration {
        Declaration {
            name: "Baled PET bottles".into(),
            description: texts("Clear PET bottles, baled", "Bouteilles PET claires, en balles", ""),
            family: MaterialFamily::Plastics,
            waste_code: Some(WasteCode::parse("150102").expect("a code")),
            composition: vec![
                Component {
                    material: "PET".into(),
                    share_bp: 9_500,
                    basis: Basis::Analysed,
                    document: Some("https://lab.example/report/42".into()),
                },
                Component {
                    material: "PP caps".into(),
                    share_bp: 300,
                    basis: Basis::Declared,
                    document: None,
                },
                Component {
                    material: "labels".into(),
                    share_bp: 200,
                    basis: Basis::Certified,
                    document: Some("cert 7".into()),
                },
            ],
            recycled_content_bp: 10_000,
            advice: texts("Keep dry", "Garder au sec", "Trocken lagern"),
            inputs: vec![Input { passport_id: Uuid::now_v7(), share_bp: 6_000 }],
            gtin: Some("09506000134352".into()),
            batch: Some("LOT-2026-12".into()),
        }
    }

    /// A declaration with none of them.
    fn bare_declaration() -> Declaration {
        Declaration {
            name: "Wood chips".into(),
            description: Texts::default(),
            family: MaterialFamily::Wood,
            waste_code: None,
            composition: vec![],
            recycled_content_bp: 0,
            advice: Texts::default(),
            inputs: vec![],
            gtin: None,
            batch: None,
        }
    }

    #[test]
    fn every_passport_event_reads_back_as_written() {
        let passport_id = Uuid::now_v7();
        for event in [
            PassportEvent::Created {
                passport_id,
                owner: Uuid::now_v7(),
                subject: Subject::Listing(Uuid::now_v7()),
                declaration: full_declaration(),
                at_ms: 1_764_633_600_123,
            },
            PassportEvent::Created {
                passport_id,
                owner: Uuid::now_v7(),
                subject: Subject::Delivery(Uuid::now_v7()),
                declaration: bare_declaration(),
                at_ms: 1,
            },
            PassportEvent::Amended { passport_id, declaration: full_declaration(), at_ms: 2 },
            PassportEvent::Amended { passport_id, declaration: bare_declaration(), at_ms: 3 },
            PassportEvent::Published { passport_id, at_ms: 4 },
            PassportEvent::Withdrawn { passport_id, reason: "lot sold elsewhere".into(), at_ms: 5 },
        ] {
            let (event_type, payload) = encode(&event);
            assert_eq!(decode(event_type, &payload), Ok(event));
        }
    }

    #[test]
    fn a_payload_of_another_type_is_refused() {
        let (_, payload) = encode(&PassportEvent::Published { passport_id: Uuid::now_v7(), at_ms: 1 });
        assert_eq!(
            decode(crate::INSTRUCTIONS_WITHDRAWN, &payload),
            Err(format!("{} is not a passport event", crate::INSTRUCTIONS_WITHDRAWN))
        );
    }

    #[test]
    fn an_unknown_basis_is_refused_naming_the_field() {
        let (event_type, payload) = encode(&PassportEvent::Amended {
            passport_id: Uuid::now_v7(),
            declaration: full_declaration(),
            at_ms: 1,
        });
        let mut amended = pb::PassportAmended::decode(payload.as_slice()).expect("a payload");
        amended.declaration.as_mut().expect("a declaration").composition[1].basis = 99;
        assert_eq!(
            decode(event_type, &amended.encode_to_vec()),
            Err(format!("{PASSPORT_AMENDED}: declaration.composition[1].basis: 99 is not a basis"))
        );
        amended.declaration.as_mut().expect("a declaration").composition[1].basis = 0;
        assert_eq!(
            decode(event_type, &amended.encode_to_vec()),
            Err(format!("{PASSPORT_AMENDED}: declaration.composition[1].basis: is required"))
        );
    }

    #[test]
    fn a_created_event_without_its_subject_or_declaration_is_refused() {
        let (event_type, payload) = encode(&PassportEvent::Created {
            passport_id: Uuid::now_v7(),
            owner: Uuid::now_v7(),
            subject: Subject::Listing(Uuid::now_v7()),
            declaration: bare_declaration(),
            at_ms: 1,
        });
        let created = pb::PassportCreated::decode(payload.as_slice()).expect("a payload");
        let without_subject = pb::PassportCreated { subject: None, ..created.clone() };
        assert_eq!(
            decode(event_type, &without_subject.encode_to_vec()),
            Err(format!("{PASSPORT_CREATED}: subject: is required"))
        );
        let without_declaration = pb::PassportCreated { declaration: None, ..created };
        assert_eq!(
            decode(event_type, &without_declaration.encode_to_vec()),
            Err(format!("{PASSPORT_CREATED}: declaration: is required"))
        );
    }
}
