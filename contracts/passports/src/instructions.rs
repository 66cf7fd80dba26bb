//! End-of-life instructions of public institutions, in the stream
//! `instructions-<instructions id>`: published for a material family or a waste code, then
//! perhaps withdrawn. Passports in scope show those not withdrawn.

use prost::Message as _;
use symbiose_contract::Stored;
use symbiose_domain::{MaterialFamily, WasteCode};
use symbiose_eventstore::RecordedEvent;
use symbiose_proto::common::v1 as common;
use symbiose_proto::convert::{FieldError, id, material_family_from_wire, timestamp_from_ms};
use symbiose_proto::passports::v1 as pb;
use uuid::Uuid;

use crate::passport::Texts;
use crate::wire::{bad, field, ms, optional, texts_from_stored, texts_to_stored, waste_code_from_stored};
use crate::{INSTRUCTIONS_PUBLISHED, INSTRUCTIONS_WITHDRAWN};

/// Which lots a set of instructions applies to.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Scope {
    Family(MaterialFamily),
    WasteCode(WasteCode),
}

/// The document a set of instructions comes from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Source {
    pub title: String,
    pub url: Option<String>,
}

/// What happened to a set of instructions.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum InstructionsEvent {
    Published {
        instructions_id: Uuid,
        /// The institution's organization.
        institution: Uuid,
        /// Its name when it published them.
        institution_name: String,
        scope: Scope,
        text: Texts,
        source: Source,
        at_ms: i64,
    },
    Withdrawn {
        instructions_id: Uuid,
        at_ms: i64,
    },
}

/// `event` in its stored form: its type name and its payload.
pub fn encode(event: &InstructionsEvent) -> (&'static str, Vec<u8>) {
    match event {
        InstructionsEvent::Published {
            instructions_id,
            institution,
            institution_name,
            scope,
            text,
            source,
            at_ms,
        } => (
            INSTRUCTIONS_PUBLISHED,
            pb::InstructionsPublished {
                instructions_id: instructions_id.to_string(),
                institution_organization_id: institution.to_string(),
                institution_name: institution_name.clone(),
                scope: Some(match scope {
                    Scope::Family(family) => pb::instructions_published::Scope::Family(
                        common::MaterialFamily::from(*family).into(),
                    ),
                    Scope::WasteCode(code) => pb::instructions_published::Scope::WasteCode((*code).into()),
                }),
                text: Some(texts_to_stored(text)),
                source: Some(pb::StoredSource {
                    title: source.title.clone(),
                    url: source.url.clone().unwrap_or_default(),
                }),
                at: Some(timestamp_from_ms(*at_ms)),
            }
            .encode_to_vec(),
        ),
        InstructionsEvent::Withdrawn { instructions_id, at_ms } => (
            INSTRUCTIONS_WITHDRAWN,
            pb::InstructionsWithdrawn {
                instructions_id: instructions_id.to_string(),
                at: Some(timestamp_from_ms(*at_ms)),
            }
            .encode_to_vec(),
        ),
    }
}

/// An instructions event from its stored form; an error names the event type and the field.
pub fn decode(event_type: &str, payload: &[u8]) -> Result<InstructionsEvent, String> {
    let field = field(event_type);
    match event_type {
        INSTRUCTIONS_PUBLISHED => {
            let published = pb::InstructionsPublished::decode(payload).map_err(bad(event_type))?;
            let scope = match published.scope {
                Some(pb::instructions_published::Scope::Family(family)) => {
                    Scope::Family(material_family_from_wire(family, "family").map_err(&field)?)
                }
                Some(pb::instructions_published::Scope::WasteCode(code)) => {
                    Scope::WasteCode(waste_code_from_stored(&code, "waste_code").map_err(&field)?)
                }
                None => return Err(field(FieldError::required("scope"))),
            };
            let source = published.source.ok_or_else(|| field(FieldError::required("source")))?;
            Ok(InstructionsEvent::Published {
                instructions_id: id(&published.instructions_id, "instructions_id").map_err(&field)?,
                institution: id(&published.institution_organization_id, "institution_organization_id")
                    .map_err(&field)?,
                institution_name: published.institution_name,
                scope,
                text: texts_from_stored(published.text),
                source: Source { title: source.title, url: optional(source.url) },
                at_ms: ms(published.at.as_ref(), "at").map_err(&field)?,
            })
        }
        INSTRUCTIONS_WITHDRAWN => {
            let withdrawn = pb::InstructionsWithdrawn::decode(payload).map_err(bad(event_type))?;
            Ok(InstructionsEvent::Withdrawn {
                instructions_id: id(&withdrawn.instructions_id, "instructions_id").map_err(&field)?,
                at_ms: ms(withdrawn.at.as_ref(), "at").map_err(&field)?,
            })
        }
        _ => Err(format!("{event_type} is not an instructions event")),
    }
}

/// The event `recorded` holds, whatever shape it was written in (through [`crate::upcast`]).
pub fn decode_recorded(recorded: &RecordedEvent) -> Result<InstructionsEvent, String> {
    let stored = crate::upcast(Stored::of(recorded))?;
    decode(stored.event_type, &stored.payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn published(scope: Scope, url: Option<&str>) -> InstructionsEvent {
        InstructionsEvent::Published {
            instructions_id: Uuid::now_v7(),
            institution: Uuid::now_v7(),
            institution_name: "ADEME".into(),
            scope,
            text: Texts {
                en: "Take to a collection point".into(),
                fr: "Apporter en déchèterie".into(),
                de: String::new(),
            },
            source: Source { title: "Guide du tri 2026".into(), url: url.map(Into::into) },
            at_ms: 1_764_633_600_123,
        }
    }

    #[test]
    fn every_instructions_event_reads_back_as_written() {
        for event in [
            published(Scope::Family(MaterialFamily::Plastics), Some("https://www.ademe.fr/guide")),
            published(Scope::WasteCode(WasteCode::parse("15 01 10").expect("a code")), None),
            InstructionsEvent::Withdrawn { instructions_id: Uuid::now_v7(), at_ms: 2 },
        ] {
            let (event_type, payload) = encode(&event);
            assert_eq!(decode(event_type, &payload), Ok(event));
        }
    }

    #[test]
    fn a_payload_of_another_type_is_refused() {
        let (_, payload) =
            encode(&InstructionsEvent::Withdrawn { instructions_id: Uuid::now_v7(), at_ms: 1 });
        assert_eq!(
            decode(crate::PASSPORT_PUBLISHED, &payload),
            Err(format!("{} is not an instructions event", crate::PASSPORT_PUBLISHED))
        );
    }

    #[test]
    fn a_bad_scope_or_source_is_refused_naming_the_field() {
        let (event_type, payload) = encode(&published(Scope::Family(MaterialFamily::Wood), None));
        let stored = pb::InstructionsPublished::decode(payload.as_slice()).expect("a payload");
        let cases = [
            (pb::InstructionsPublished { scope: None, ..stored.clone() }, "scope: is required"),
            (
                pb::InstructionsPublished {
                    scope: Some(pb::instructions_published::Scope::Family(0)),
                    ..stored.clone()
                },
                "family: is required",
            ),
            (
                pb::InstructionsPublished {
                    scope: Some(pb::instructions_published::Scope::WasteCode(common::WasteCode {
                        code: "999999".into(),
                        hazardous: false,
                    })),
                    ..stored.clone()
                },
                "waste_code: waste code 999999 is not in the European List of Waste",
            ),
            (pb::InstructionsPublished { source: None, ..stored }, "source: is required"),
        ];
        for (bad, error) in cases {
            assert_eq!(
                decode(event_type, &bad.encode_to_vec()),
                Err(format!("{INSTRUCTIONS_PUBLISHED}: {error}"))
            );
        }
    }
}
