//! Waste codes of the European List of Waste (Commission Decision 2000/532/EC as amended by
//! 2014/955/EU): 842 six-digit codes, 408 of them hazardous.
//!
//! A listing of waste names exactly one code, and a code that is not in the list is refused: the
//! code decides which shipment and reporting rules apply, so a guessed code is worse than none.

use std::fmt;
use std::str::FromStr;
use std::sync::LazyLock;

use crate::csv;
use crate::input::echo;

/// A code of the European List of Waste. It can only be built from a code that is in the list,
/// so holding one is proof that the code exists.
///
/// It orders like its six digits, so sorting codes sorts them as the legal text does.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub struct WasteCode(
    /// Index into the list, which is sorted by code and never changes after loading.
    u16,
);

/// Why text is not a waste code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WasteCodeError {
    #[error("waste code is empty")]
    Empty,
    /// The text is not six digits, written `150103` or `15 01 03`.
    #[error("waste code {0:?} is not six digits such as 150103 or 15 01 03")]
    Malformed(String),
    /// Six digits, but not a code of the list.
    #[error("waste code {0} is not in the European List of Waste")]
    Unknown(String),
}

/// How an entry of the list is classified.
///
/// Mirror entries come in pairs: the same material is hazardous or not depending on what it
/// contains, so the producer must choose between them; the marketplace never guesses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum EntryType {
    AbsoluteHazardous,
    MirrorHazardous,
    AbsoluteNonHazardous,
    MirrorNonHazardous,
}

/// One entry of the List of Waste.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WasteCodeEntry {
    /// Six digits without spaces, such as `150103`.
    pub code: &'static str,
    pub hazardous: bool,
    pub entry_type: EntryType,
    pub chapter_title: &'static str,
    pub sub_chapter_title: &'static str,
    /// The English description of the legal text.
    pub description: &'static str,
}

/// A search over the list; every condition that is set must hold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WasteFilter<'a> {
    /// Two-digit chapter, such as `"15"`.
    pub chapter: Option<&'a str>,
    /// Four-digit sub-chapter, such as `"1501"` (or `"15 01"`).
    pub sub_chapter: Option<&'a str>,
    pub hazardous: Option<bool>,
    /// Case-insensitive text found in the description or in the chapter or sub-chapter title.
    pub text: Option<&'a str>,
}

/// Every entry of the list, sorted by code.
pub fn list_of_waste() -> &'static [WasteCodeEntry] {
    &LIST_OF_WASTE
}

/// The chapters of the list as (two-digit chapter, title), sorted by chapter.
pub fn chapters() -> Vec<(&'static str, &'static str)> {
    let mut chapters: Vec<(&'static str, &'static str)> = Vec::new();
    for entry in list_of_waste() {
        let chapter = &entry.code[..2];
        if chapters.last().map(|(last, _)| *last) != Some(chapter) {
            chapters.push((chapter, entry.chapter_title));
        }
    }
    chapters
}

/// The sub-chapters of the list as (four-digit sub-chapter, title), sorted by sub-chapter.
pub fn sub_chapters() -> Vec<(&'static str, &'static str)> {
    let mut sub_chapters: Vec<(&'static str, &'static str)> = Vec::new();
    for entry in list_of_waste() {
        let sub_chapter = &entry.code[..4];
        if sub_chapters.last().map(|(last, _)| *last) != Some(sub_chapter) {
            sub_chapters.push((sub_chapter, entry.sub_chapter_title));
        }
    }
    sub_chapters
}

impl WasteCode {
    /// Parses `150103`, `15 01 03`, `150103*` or `15 01 03*`, with surrounding whitespace.
    ///
    /// The asterisk is how the legal text marks hazardous entries; it is decoration here, and
    /// the list alone decides whether a code is hazardous, so `150103*` is accepted as 150103.
    pub fn parse(input: &str) -> Result<WasteCode, WasteCodeError> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(WasteCodeError::Empty);
        }
        let without_asterisk = trimmed.strip_suffix('*').map_or(trimmed, str::trim_end);
        let digits = six_digits(without_asterisk).ok_or_else(|| WasteCodeError::Malformed(echo(trimmed)))?;
        let index = list_of_waste()
            .binary_search_by(|entry| entry.code.as_bytes().cmp(&digits[..]))
            .map_err(|_| WasteCodeError::Unknown(String::from_utf8_lossy(&digits).into_owned()))?;
        let index = u16::try_from(index).expect("the list of waste has fewer than 65536 entries");
        Ok(WasteCode(index))
    }

    /// The six digits without spaces, such as `150103`.
    pub fn as_str(&self) -> &'static str {
        self.entry().code
    }

    /// The entry of the list for this code.
    pub fn entry(&self) -> &'static WasteCodeEntry {
        &list_of_waste()[usize::from(self.0)]
    }

    pub fn is_hazardous(&self) -> bool {
        self.entry().hazardous
    }

    /// The two-digit chapter, such as `15`.
    pub fn chapter(&self) -> &'static str {
        &self.as_str()[..2]
    }

    /// The four-digit sub-chapter, such as `1501`.
    pub fn sub_chapter(&self) -> &'static str {
        &self.as_str()[..4]
    }

    /// The form of the legal text: `15 01 03`, or `16 06 01*` for a hazardous entry.
    pub fn display_form(&self) -> String {
        let code = self.as_str();
        let asterisk = if self.is_hazardous() { "*" } else { "" };
        format!("{} {} {}{asterisk}", &code[..2], &code[2..4], &code[4..])
    }
}

impl FromStr for WasteCode {
    type Err = WasteCodeError;

    fn from_str(input: &str) -> Result<WasteCode, WasteCodeError> {
        WasteCode::parse(input)
    }
}

impl TryFrom<&str> for WasteCode {
    type Error = WasteCodeError;

    fn try_from(input: &str) -> Result<WasteCode, WasteCodeError> {
        WasteCode::parse(input)
    }
}

impl fmt::Display for WasteCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// Written by hand so that logs show the code, not an index into the list.
impl fmt::Debug for WasteCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("WasteCode").field(&self.as_str()).finish()
    }
}

impl EntryType {
    /// The label used by the reference data, such as `Mirror hazardous`.
    pub fn label(self) -> &'static str {
        match self {
            EntryType::AbsoluteHazardous => "Absolute hazardous",
            EntryType::MirrorHazardous => "Mirror hazardous",
            EntryType::AbsoluteNonHazardous => "Absolute non-hazardous",
            EntryType::MirrorNonHazardous => "Mirror non-hazardous",
        }
    }

    pub fn is_hazardous(self) -> bool {
        matches!(self, EntryType::AbsoluteHazardous | EntryType::MirrorHazardous)
    }

    pub fn is_mirror(self) -> bool {
        matches!(self, EntryType::MirrorHazardous | EntryType::MirrorNonHazardous)
    }

    fn from_label(label: &str) -> Option<EntryType> {
        [
            EntryType::AbsoluteHazardous,
            EntryType::MirrorHazardous,
            EntryType::AbsoluteNonHazardous,
            EntryType::MirrorNonHazardous,
        ]
        .into_iter()
        .find(|entry_type| entry_type.label() == label)
    }
}

impl WasteFilter<'_> {
    pub fn matches(&self, entry: &WasteCodeEntry) -> bool {
        if let Some(chapter) = self.chapter
            && !same_digits(chapter, &entry.code[..2])
        {
            return false;
        }
        if let Some(sub_chapter) = self.sub_chapter
            && !same_digits(sub_chapter, &entry.code[..4])
        {
            return false;
        }
        if let Some(hazardous) = self.hazardous
            && hazardous != entry.hazardous
        {
            return false;
        }
        if let Some(text) = self.text {
            let needle = text.trim().to_lowercase();
            let found = [entry.description, entry.chapter_title, entry.sub_chapter_title]
                .iter()
                .any(|haystack| haystack.to_lowercase().contains(&needle));
            if !found {
                return false;
            }
        }
        true
    }
}

const EWC_CODES_CSV: &str = include_str!("../data/ewc-codes.csv");
const EWC_CODES_HEADER: [&str; 6] =
    ["code", "hazardous", "entry_type", "chapter", "sub_chapter", "description"];

static LIST_OF_WASTE: LazyLock<Vec<WasteCodeEntry>> = LazyLock::new(load_list_of_waste);

fn load_list_of_waste() -> Vec<WasteCodeEntry> {
    let entries: Vec<WasteCodeEntry> = csv::parse(EWC_CODES_CSV, &EWC_CODES_HEADER)
        .into_iter()
        .map(|record| {
            let code = record[0];
            assert!(
                code.len() == 6 && code.bytes().all(|byte| byte.is_ascii_digit()),
                "waste code {code:?} of the list is not six digits"
            );
            let hazardous = match record[1] {
                "true" => true,
                "false" => false,
                other => panic!("waste code {code} has hazardous flag {other:?}"),
            };
            let entry_type = EntryType::from_label(record[2])
                .unwrap_or_else(|| panic!("waste code {code} has entry type {:?}", record[2]));
            assert_eq!(
                entry_type.is_hazardous(),
                hazardous,
                "waste code {code} has an entry type that contradicts its hazardous flag"
            );
            WasteCodeEntry {
                code,
                hazardous,
                entry_type,
                chapter_title: record[3],
                sub_chapter_title: record[4],
                description: record[5],
            }
        })
        .collect();
    // `WasteCode::parse` searches by bisection and `WasteCode` orders by index: both need the
    // list strictly sorted by code.
    assert!(
        entries.windows(2).all(|pair| pair[0].code < pair[1].code),
        "the list of waste is not strictly sorted by code"
    );
    assert!(entries.len() <= usize::from(u16::MAX));
    entries
}

/// Reads `150103` or `15 01 03` as six ASCII digits.
fn six_digits(text: &str) -> Option<[u8; 6]> {
    let bytes = text.as_bytes();
    let digits: [u8; 6] = match bytes.len() {
        6 => bytes.try_into().ok()?,
        8 if bytes[2] == b' ' && bytes[5] == b' ' => {
            [bytes[0], bytes[1], bytes[3], bytes[4], bytes[6], bytes[7]]
        }
        _ => return None,
    };
    digits.iter().all(u8::is_ascii_digit).then_some(digits)
}

/// Compares a chapter or sub-chapter as typed (maybe `15 01`) with the digits of a code.
fn same_digits(typed: &str, digits: &str) -> bool {
    typed.chars().filter(|character| !character.is_whitespace()).eq(digits.chars())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[track_caller]
    fn code(input: &str) -> WasteCode {
        WasteCode::parse(input).unwrap()
    }

    #[test]
    fn the_list_has_842_codes_of_which_408_are_hazardous() {
        assert_eq!(list_of_waste().len(), 842);
        let hazardous = list_of_waste().iter().filter(|e| e.hazardous).count();
        assert_eq!(hazardous, 408);
    }

    #[test]
    fn every_written_form_parses_to_the_same_code() {
        let expected = code("150103");
        for input in ["150103", "15 01 03", "150103*", "15 01 03*", "  150103\t", " 15 01 03 * "] {
            assert_eq!(code(input), expected, "{input:?}");
        }
        assert_eq!(expected.as_str(), "150103");
        assert_eq!(expected.to_string(), "150103");
        assert_eq!(expected.display_form(), "15 01 03");
        assert_eq!(format!("{expected:?}"), "WasteCode(\"150103\")");
    }

    #[test]
    fn the_asterisk_is_decoration_and_the_list_decides_hazard() {
        assert!(!code("150103*").is_hazardous());
        let batteries = code("160601");
        assert!(batteries.is_hazardous());
        assert_eq!(batteries.display_form(), "16 06 01*");
        assert_eq!(batteries.entry().entry_type, EntryType::AbsoluteHazardous);
    }

    #[test]
    fn a_code_knows_its_entry_chapter_and_sub_chapter() {
        let wooden_packaging = code("15 01 03");
        assert_eq!(wooden_packaging.chapter(), "15");
        assert_eq!(wooden_packaging.sub_chapter(), "1501");
        let entry = wooden_packaging.entry();
        assert_eq!(entry.description, "Wooden packaging");
        assert_eq!(entry.entry_type, EntryType::AbsoluteNonHazardous);
        assert!(entry.chapter_title.starts_with("Waste packaging"));

        let mirror = code("170503");
        assert_eq!(mirror.entry().entry_type, EntryType::MirrorHazardous);
        assert!(mirror.entry().entry_type.is_mirror());
        assert_eq!(code("170504").entry().entry_type, EntryType::MirrorNonHazardous);
    }

    #[test]
    fn bad_text_is_refused_with_the_reason() {
        assert_eq!(WasteCode::parse(""), Err(WasteCodeError::Empty));
        assert_eq!(WasteCode::parse("  "), Err(WasteCodeError::Empty));
        for malformed in ["15010", "1501034", "15-01-03", "15 0103", "15  01 03", "ABCDEF", "*", "1501O3"] {
            assert!(
                matches!(WasteCode::parse(malformed), Err(WasteCodeError::Malformed(_))),
                "{malformed:?}"
            );
        }
        assert_eq!(WasteCode::parse("999999"), Err(WasteCodeError::Unknown("999999".to_owned())));
        assert_eq!(WasteCode::parse("15 01 00*"), Err(WasteCodeError::Unknown("150100".to_owned())));
        assert_eq!(
            WasteCode::parse("15-01-03").unwrap_err().to_string(),
            "waste code \"15-01-03\" is not six digits such as 150103 or 15 01 03"
        );
        assert_eq!(
            WasteCode::parse("999999").unwrap_err().to_string(),
            "waste code 999999 is not in the European List of Waste"
        );
    }

    #[test]
    fn from_str_and_try_from_agree_with_parse() {
        assert_eq!("150103".parse::<WasteCode>(), WasteCode::parse("150103"));
        assert_eq!(WasteCode::try_from("150103"), WasteCode::parse("150103"));
    }

    #[test]
    fn chapters_are_the_twenty_chapters_of_the_list() {
        let chapters = chapters();
        assert_eq!(chapters.len(), 20);
        assert_eq!(chapters[0].0, "01");
        assert_eq!(chapters[19].0, "20");
        assert!(chapters.windows(2).all(|pair| pair[0].0 < pair[1].0));
        let packaging = chapters.iter().find(|(chapter, _)| *chapter == "15").unwrap();
        assert!(packaging.1.starts_with("Waste packaging"));
        assert_eq!(sub_chapters().len(), 111);
    }

    #[test]
    fn a_filter_combines_its_conditions() {
        let found = |filter: WasteFilter<'_>| -> Vec<&'static str> {
            list_of_waste().iter().filter(|entry| filter.matches(entry)).map(|entry| entry.code).collect()
        };
        assert_eq!(found(WasteFilter::default()).len(), 842);
        let packaging = found(WasteFilter { sub_chapter: Some("15 01"), ..WasteFilter::default() });
        assert!(packaging.contains(&"150103"));
        assert!(packaging.iter().all(|code| code.starts_with("1501")));
        let hazardous_packaging =
            found(WasteFilter { chapter: Some("15"), hazardous: Some(true), ..WasteFilter::default() });
        assert_eq!(hazardous_packaging, ["150110", "150111", "150202"]);
        let wood = found(WasteFilter { text: Some("WOODEN"), ..WasteFilter::default() });
        assert_eq!(wood, ["150103"]);
        // Text also finds entries through their chapter title.
        let photographic =
            found(WasteFilter { text: Some("photographic industry"), ..WasteFilter::default() });
        assert!(photographic.iter().all(|code| code.starts_with("09")));
        assert!(!photographic.is_empty());
    }

    proptest! {
        #[test]
        fn display_form_and_as_str_parse_back_to_the_same_code(index in 0..842usize) {
            let entry = &list_of_waste()[index];
            let from_list = code(entry.code);
            prop_assert_eq!(from_list.as_str(), entry.code);
            prop_assert_eq!(code(&from_list.display_form()), from_list);
            prop_assert_eq!(code(from_list.as_str()), from_list);
            prop_assert_eq!(code(&from_list.to_string()), from_list);
        }

        #[test]
        fn codes_order_like_their_digits(first in 0..842usize, second in 0..842usize) {
            let first = code(list_of_waste()[first].code);
            let second = code(list_of_waste()[second].code);
            prop_assert_eq!(first.cmp(&second), first.as_str().cmp(second.as_str()));
        }

        #[test]
        fn six_digits_are_either_a_listed_code_or_unknown(digits in "[0-9]{6}") {
            match WasteCode::parse(&digits) {
                Ok(parsed) => prop_assert_eq!(parsed.as_str(), digits.as_str()),
                Err(error) => prop_assert_eq!(error, WasteCodeError::Unknown(digits.clone())),
            }
        }

        #[test]
        fn any_text_parses_or_is_refused_without_panicking(text in "\\PC{0,12}") {
            let _ = WasteCode::parse(&text);
        }
    }
}
