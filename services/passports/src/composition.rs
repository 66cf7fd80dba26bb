//! The rules of what a passport declares: names and texts of bounded length, a composition
//! whose shares add up to at most 100%, each analysed or certified share backed by its document,
//! and a recycled content that a derived passport cannot claim beyond what its inputs allow.
//!
//! Shares are basis points (10,000 = 100%) and integers throughout: no rounding can let a sum
//! pass that does not add up.

use std::collections::BTreeSet;

use symbiose_passports_contract::passport::{Basis, Declaration, Input, Texts};
use uuid::Uuid;

/// 100%, in basis points.
pub const WHOLE_BP: u32 = 10_000;
/// Most components a composition lists.
pub const COMPONENTS_MAX: usize = 32;
/// Most input passports a derived passport names.
pub const INPUTS_MAX: usize = 16;
/// Longest name, in characters.
pub const NAME_CHARS_MAX: usize = 200;
/// Longest material of a component, in characters.
pub const MATERIAL_CHARS_MAX: usize = 100;
/// Longest reference of the document behind a share (a title, a number or a URL), in characters.
pub const DOCUMENT_CHARS_MAX: usize = 500;
/// Longest text in one language (a description, advice), in characters.
pub const TEXT_CHARS_MAX: usize = 2000;

/// Why a declaration is refused; `field` names the field at fault, as the API spells it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompositionError {
    /// `path` names the field at fault as the API spells it, with the index of the component or
    /// input: `declaration.composition[2].share_bp`.
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
    #[error(
        "the recycled content claimed ({claimed_bp} bp) is more than the inputs allow ({allowed_bp} bp: each input's share times its recycled content)"
    )]
    RecycledBeyondInputs { claimed_bp: u32, allowed_bp: u32 },
    #[error("input passport {1} is not published: only published passports are inputs")]
    InputNotPublished(usize, Uuid),
    #[error("input passport {1} is not a published passport")]
    InputUnknown(usize, Uuid),
}

impl CompositionError {
    /// The field at fault, as the API spells it.
    pub fn field(&self) -> String {
        match self {
            CompositionError::Invalid { path, .. } => path.clone(),
            CompositionError::RecycledBeyondInputs { .. } => "declaration.recycled_content_bp".to_owned(),
            CompositionError::InputNotPublished(index, _) | CompositionError::InputUnknown(index, _) => {
                format!("declaration.inputs[{index}].passport_id")
            }
        }
    }
}

fn invalid(path: impl Into<String>, message: impl Into<String>) -> CompositionError {
    CompositionError::Invalid { path: path.into(), message: message.into() }
}

/// What a derived passport needs to know of one of its inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputFacts {
    pub passport_id: Uuid,
    pub published: bool,
    pub recycled_content_bp: u32,
}

/// The rules a declaration keeps on its own.
pub fn check(declaration: &Declaration, passport_id: Uuid) -> Result<(), CompositionError> {
    bounded_text(&declaration.name, "declaration.name", NAME_CHARS_MAX, true)?;
    texts(&declaration.description, "declaration.description")?;
    texts(&declaration.advice, "declaration.advice")?;
    let composition = &declaration.composition;
    if composition.is_empty() {
        return Err(invalid(
            "declaration.composition",
            "a passport says what the lot is made of: at least one component",
        ));
    }
    if composition.len() > COMPONENTS_MAX {
        return Err(invalid(
            "declaration.composition",
            format!("{} components, at most {COMPONENTS_MAX}", composition.len()),
        ));
    }
    let mut materials = BTreeSet::new();
    let mut total: u32 = 0;
    for (index, component) in composition.iter().enumerate() {
        let at = |field: &str| format!("declaration.composition[{index}].{field}");
        bounded_text(&component.material, at("material"), MATERIAL_CHARS_MAX, true)?;
        if !materials.insert(component.material.trim().to_lowercase()) {
            return Err(invalid(at("material"), format!("{:?} is listed twice", component.material)));
        }
        if component.share_bp == 0 || component.share_bp > WHOLE_BP {
            return Err(invalid(
                at("share_bp"),
                format!("a share is 1 to {WHOLE_BP} bp, not {}", component.share_bp),
            ));
        }
        total += component.share_bp;
        match &component.document {
            Some(document) => bounded_text(document, at("document"), DOCUMENT_CHARS_MAX, true)?,
            None if component.basis != Basis::Declared => {
                return Err(invalid(
                    at("document"),
                    "an analysed or certified share names the document behind it",
                ));
            }
            None => {}
        }
    }
    if total > WHOLE_BP {
        return Err(invalid(
            "declaration.composition",
            format!("the shares add up to {total} bp, more than {WHOLE_BP} (100%)"),
        ));
    }
    if declaration.recycled_content_bp > WHOLE_BP {
        return Err(invalid(
            "declaration.recycled_content_bp",
            format!("{} bp is more than {WHOLE_BP} (100%)", declaration.recycled_content_bp),
        ));
    }
    inputs(&declaration.inputs, passport_id)
}

/// The input list on its own: bounded, each named once, never the passport itself, shares that
/// add up to at most 100% of the product.
fn inputs(inputs: &[Input], passport_id: Uuid) -> Result<(), CompositionError> {
    if inputs.len() > INPUTS_MAX {
        return Err(invalid("declaration.inputs", format!("{} inputs, at most {INPUTS_MAX}", inputs.len())));
    }
    let mut seen = BTreeSet::new();
    let mut total: u32 = 0;
    for (index, input) in inputs.iter().enumerate() {
        let at = |field: &str| format!("declaration.inputs[{index}].{field}");
        if input.passport_id == passport_id {
            return Err(invalid(at("passport_id"), "a passport is not its own input"));
        }
        if !seen.insert(input.passport_id) {
            return Err(invalid(at("passport_id"), format!("input {} is named twice", input.passport_id)));
        }
        if input.share_bp == 0 || input.share_bp > WHOLE_BP {
            return Err(invalid(
                at("share_bp"),
                format!("a share is 1 to {WHOLE_BP} bp, not {}", input.share_bp),
            ));
        }
        total += input.share_bp;
    }
    if total > WHOLE_BP {
        return Err(invalid(
            "declaration.inputs",
            format!("the inputs' shares add up to {total} bp, more than {WHOLE_BP} (100%)"),
        ));
    }
    Ok(())
}

/// The most recycled content a product made of `inputs` can claim: the sum of each input's
/// share of the product times that input's own recycled content, rounded down.
pub fn recycled_allowed_bp(inputs: &[Input], facts: &[InputFacts]) -> u32 {
    let allowed: u64 = inputs
        .iter()
        .filter_map(|input| {
            let facts = facts.iter().find(|facts| facts.passport_id == input.passport_id)?;
            Some(u64::from(input.share_bp) * u64::from(facts.recycled_content_bp))
        })
        .sum::<u64>()
        / u64::from(WHOLE_BP);
    allowed.min(u64::from(WHOLE_BP)) as u32
}

/// The rules a derived passport keeps with its inputs: each exists and is published, and the
/// recycled content claimed is at most what they allow. A passport without inputs declares its
/// recycled content on its own documents.
pub fn check_inputs(declaration: &Declaration, facts: &[InputFacts]) -> Result<(), CompositionError> {
    if declaration.inputs.is_empty() {
        return Ok(());
    }
    for (index, input) in declaration.inputs.iter().enumerate() {
        match facts.iter().find(|facts| facts.passport_id == input.passport_id) {
            None => return Err(CompositionError::InputUnknown(index, input.passport_id)),
            Some(facts) if !facts.published => {
                return Err(CompositionError::InputNotPublished(index, input.passport_id));
            }
            Some(_) => {}
        }
    }
    let allowed_bp = recycled_allowed_bp(&declaration.inputs, facts);
    if declaration.recycled_content_bp > allowed_bp {
        return Err(CompositionError::RecycledBeyondInputs {
            claimed_bp: declaration.recycled_content_bp,
            allowed_bp,
        });
    }
    Ok(())
}

fn texts(texts: &Texts, field: &str) -> Result<(), CompositionError> {
    for (language, text) in [("en", &texts.en), ("fr", &texts.fr), ("de", &texts.de)] {
        bounded_text(text, format!("{field}.{language}"), TEXT_CHARS_MAX, false)?;
    }
    Ok(())
}

/// `text` within `max` characters, without control characters other than line breaks, and not
/// blank where `required`.
fn bounded_text(
    text: &str,
    field: impl Into<String>,
    max: usize,
    required: bool,
) -> Result<(), CompositionError> {
    let field = field.into();
    if required && text.trim().is_empty() {
        return Err(invalid(field, "is required"));
    }
    let chars = text.chars().count();
    if chars > max {
        return Err(invalid(field, format!("{chars} characters, at most {max}")));
    }
    if text.chars().any(|char| char.is_control() && char != '\n') {
        return Err(invalid(field, "holds a control character"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use symbiose_domain::MaterialFamily;
    use symbiose_passports_contract::passport::Component;

    use super::*;

    fn component(material: &str, share_bp: u32) -> Component {
        Component { material: material.to_owned(), share_bp, basis: Basis::Declared, document: None }
    }

    pub(crate) fn declaration(composition: Vec<Component>) -> Declaration {
        Declaration {
            name: "Granulés PEHD régénérés".to_owned(),
            description: Texts::default(),
            family: MaterialFamily::Plastics,
            waste_code: None,
            composition,
            recycled_content_bp: 0,
            advice: Texts::default(),
            inputs: Vec::new(),
            gtin: None,
            batch: None,
        }
    }

    const ID: Uuid = Uuid::from_u128(1);

    #[test]
    fn shares_add_up_to_at_most_one_hundred_percent() {
        assert_eq!(check(&declaration(vec![component("PEHD", 9_500), component("PP", 500)]), ID), Ok(()));
        assert_eq!(
            check(&declaration(vec![component("PEHD", 9_000)]), ID),
            Ok(()),
            "the rest may be unknown"
        );
        let over = check(&declaration(vec![component("PEHD", 9_500), component("PP", 501)]), ID).unwrap_err();
        assert_eq!(over.field(), "declaration.composition");
        assert!(over.to_string().contains("10001 bp"), "{over}");
    }

    #[test]
    fn a_composition_is_not_empty_nor_repeats_a_material_nor_holds_a_zero_share() {
        assert_eq!(check(&declaration(vec![]), ID).unwrap_err().field(), "declaration.composition");
        let twice = check(&declaration(vec![component("PEHD", 10), component(" pehd", 10)]), ID).unwrap_err();
        assert_eq!(twice.field(), "declaration.composition[1].material");
        let zero = check(&declaration(vec![component("PEHD", 0)]), ID).unwrap_err();
        assert_eq!(zero.field(), "declaration.composition[0].share_bp");
        let many: Vec<Component> =
            (0..=COMPONENTS_MAX).map(|index| component(&format!("m{index}"), 1)).collect();
        assert_eq!(check(&declaration(many), ID).unwrap_err().field(), "declaration.composition");
    }

    #[test]
    fn an_analysed_or_certified_share_names_its_document() {
        let mut analysed = component("PEHD", 9_800);
        analysed.basis = Basis::Analysed;
        assert_eq!(
            check(&declaration(vec![analysed.clone()]), ID).unwrap_err().field(),
            "declaration.composition[0].document"
        );
        analysed.document = Some("Rapport d'analyse IR 2026-117".to_owned());
        assert_eq!(check(&declaration(vec![analysed]), ID), Ok(()));
    }

    #[test]
    fn names_and_texts_are_bounded_and_required_where_they_must_be() {
        let mut blank = declaration(vec![component("PEHD", 1)]);
        blank.name = "  ".to_owned();
        assert_eq!(check(&blank, ID).unwrap_err().field(), "declaration.name");
        let mut long = declaration(vec![component("PEHD", 1)]);
        long.advice.de = "x".repeat(TEXT_CHARS_MAX + 1);
        assert_eq!(check(&long, ID).unwrap_err().field(), "declaration.advice.de");
        let mut control = declaration(vec![component("PEHD", 1)]);
        control.description.fr = "a\u{0}b".to_owned();
        assert_eq!(check(&control, ID).unwrap_err().field(), "declaration.description.fr");
        let mut over = declaration(vec![component("PEHD", 1)]);
        over.recycled_content_bp = WHOLE_BP + 1;
        assert_eq!(check(&over, ID).unwrap_err().field(), "declaration.recycled_content_bp");
    }

    #[test]
    fn inputs_are_distinct_not_the_passport_itself_and_add_up_to_at_most_the_whole() {
        let input = |id: u128, share_bp: u32| Input { passport_id: Uuid::from_u128(id), share_bp };
        let mut derived = declaration(vec![component("PEHD", 1)]);
        derived.inputs = vec![input(2, 6_000), input(3, 4_000)];
        assert_eq!(check(&derived, ID), Ok(()));
        derived.inputs = vec![input(2, 6_000), input(3, 4_001)];
        assert_eq!(check(&derived, ID).unwrap_err().field(), "declaration.inputs");
        derived.inputs = vec![input(2, 1), input(2, 1)];
        assert_eq!(check(&derived, ID).unwrap_err().field(), "declaration.inputs[1].passport_id");
        derived.inputs = vec![input(1, 1)];
        assert_eq!(check(&derived, ID).unwrap_err().field(), "declaration.inputs[0].passport_id");
    }

    #[test]
    fn a_derived_passport_claims_no_more_recycled_content_than_its_inputs_allow() {
        let regenerated = Uuid::from_u128(2);
        let virgin = Uuid::from_u128(3);
        let facts = [
            InputFacts { passport_id: regenerated, published: true, recycled_content_bp: 9_000 },
            InputFacts { passport_id: virgin, published: true, recycled_content_bp: 0 },
        ];
        let mut product = declaration(vec![component("PEHD", 10_000)]);
        // 60% of a 90% recycled lot and 40% of virgin material: 54% at most.
        product.inputs = vec![
            Input { passport_id: regenerated, share_bp: 6_000 },
            Input { passport_id: virgin, share_bp: 4_000 },
        ];
        product.recycled_content_bp = 5_400;
        assert_eq!(check_inputs(&product, &facts), Ok(()));
        product.recycled_content_bp = 5_401;
        assert_eq!(
            check_inputs(&product, &facts),
            Err(CompositionError::RecycledBeyondInputs { claimed_bp: 5_401, allowed_bp: 5_400 })
        );
        let draft = [InputFacts { published: false, ..facts[0] }, facts[1]];
        product.recycled_content_bp = 0;
        assert_eq!(check_inputs(&product, &draft), Err(CompositionError::InputNotPublished(0, regenerated)));
        assert_eq!(check_inputs(&product, &facts[1..]), Err(CompositionError::InputUnknown(0, regenerated)));
    }

    proptest! {
        /// Whatever the inputs, what is allowed never exceeds the largest input's recycled
        /// content, nor 100%, and a claim at the allowance always passes.
        #[test]
        fn the_allowance_is_a_weighted_mean_below_the_best_input(
            parts in proptest::collection::vec((1u32..=2_500, 0u32..=WHOLE_BP), 1..=4)
        ) {
            let inputs: Vec<Input> = parts.iter().enumerate()
                .map(|(index, (share_bp, _))| Input { passport_id: Uuid::from_u128(index as u128 + 10), share_bp: *share_bp })
                .collect();
            let facts: Vec<InputFacts> = parts.iter().enumerate()
                .map(|(index, (_, recycled))| InputFacts { passport_id: Uuid::from_u128(index as u128 + 10), published: true, recycled_content_bp: *recycled })
                .collect();
            let allowed = recycled_allowed_bp(&inputs, &facts);
            let best = parts.iter().map(|(_, recycled)| *recycled).max().unwrap_or(0);
            prop_assert!(allowed <= best);
            let mut product = declaration(vec![component("PEHD", 1)]);
            product.inputs = inputs;
            product.recycled_content_bp = allowed;
            prop_assert_eq!(check_inputs(&product, &facts), Ok(()));
        }
    }
}
