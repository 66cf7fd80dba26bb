//! GS1 identifiers a producer may give a lot, and the GS1 Digital Link URI that resolves to its
//! passport: `<base>/01/<GTIN-14>/10/<batch>` (GS1 Digital Link standard 1.4, section 4).
//!
//! A GTIN is accepted in any of its four lengths (GTIN-8, -12, -13, -14) with a correct check
//! digit, and kept as the 14 digits the Digital Link carries (zeros in front). A batch (AI 10) is
//! 1 to 20 characters; GS1 allows more characters than a URI path carries unescaped, so only
//! letters, digits and `-`, `.` and `_` are taken, which every scanner and printer handles.

/// Longest batch or lot number, in characters (GS1's limit for AI 10).
pub const BATCH_CHARS_MAX: usize = 20;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Gs1Error {
    #[error("a GTIN has 8, 12, 13 or 14 digits, not {0}")]
    GtinLength(usize),
    #[error("a GTIN has digits only")]
    GtinNotDigits,
    #[error("the GTIN's check digit should be {expected}, not {found}")]
    GtinCheckDigit { expected: u32, found: u32 },
    #[error("a batch has 1 to {BATCH_CHARS_MAX} characters, not {0}")]
    BatchLength(usize),
    #[error("a batch has letters, digits, '-', '.' and '_' only, not dots alone")]
    BatchCharacters,
}

/// `text` as a GTIN-14: its digits checked, zeros put in front.
pub fn gtin(text: &str) -> Result<String, Gs1Error> {
    let text = text.trim();
    if !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(Gs1Error::GtinNotDigits);
    }
    if ![8, 12, 13, 14].contains(&text.len()) {
        return Err(Gs1Error::GtinLength(text.len()));
    }
    let digits: Vec<u32> = text.bytes().map(|byte| u32::from(byte - b'0')).collect();
    let (body, check) = digits.split_at(digits.len() - 1);
    let expected = check_digit(body);
    if expected != check[0] {
        return Err(Gs1Error::GtinCheckDigit { expected, found: check[0] });
    }
    Ok(format!("{text:0>14}"))
}

/// The GS1 check digit of `body`: weights 3 and 1 alternating from the right.
fn check_digit(body: &[u32]) -> u32 {
    let sum: u32 = body
        .iter()
        .rev()
        .enumerate()
        .map(|(index, digit)| if index % 2 == 0 { digit * 3 } else { *digit })
        .sum();
    (10 - sum % 10) % 10
}

/// `text` as a batch or lot number.
pub fn batch(text: &str) -> Result<String, Gs1Error> {
    let text = text.trim();
    let chars = text.chars().count();
    if chars == 0 || chars > BATCH_CHARS_MAX {
        return Err(Gs1Error::BatchLength(chars));
    }
    // Dots alone (`.`, `..`) are path steps a client resolves away: never a batch.
    if !text.chars().all(|char| char.is_ascii_alphanumeric() || matches!(char, '-' | '.' | '_'))
        || text.chars().all(|char| char == '.')
    {
        return Err(Gs1Error::BatchCharacters);
    }
    Ok(text.to_owned())
}

/// The path of the Digital Link of a GTIN-14 and a batch, without the platform's base URL.
pub fn digital_link_path(gtin14: &str, batch: Option<&str>) -> String {
    match batch {
        Some(batch) => format!("/01/{gtin14}/10/{batch}"),
        None => format!("/01/{gtin14}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gtin_of_any_length_becomes_fourteen_digits_when_its_check_digit_is_right() {
        assert_eq!(gtin("4006381333931"), Ok("04006381333931".to_owned()));
        assert_eq!(gtin("96385074"), Ok("00000096385074".to_owned()));
        assert_eq!(gtin("036000291452"), Ok("00036000291452".to_owned()));
        assert_eq!(gtin("03012345678902"), Ok("03012345678902".to_owned()));
        assert_eq!(gtin(" 4006381333931 "), Ok("04006381333931".to_owned()));
    }

    #[test]
    fn a_gtin_with_a_wrong_check_digit_length_or_character_is_refused() {
        assert_eq!(gtin("4006381333932"), Err(Gs1Error::GtinCheckDigit { expected: 1, found: 2 }));
        assert_eq!(gtin("400638133393"), Err(Gs1Error::GtinCheckDigit { expected: 0, found: 3 }));
        assert_eq!(gtin("12345"), Err(Gs1Error::GtinLength(5)));
        assert_eq!(gtin("40063813339A1"), Err(Gs1Error::GtinNotDigits));
        assert_eq!(gtin(""), Err(Gs1Error::GtinLength(0)));
    }

    #[test]
    fn a_batch_is_short_and_safe_in_a_path() {
        assert_eq!(batch("LOT-2026.17_a"), Ok("LOT-2026.17_a".to_owned()));
        assert_eq!(batch(""), Err(Gs1Error::BatchLength(0)));
        assert_eq!(batch(&"9".repeat(21)), Err(Gs1Error::BatchLength(21)));
        assert_eq!(batch("LOT/17"), Err(Gs1Error::BatchCharacters));
        assert_eq!(batch("LOT 17"), Err(Gs1Error::BatchCharacters));
        assert_eq!(batch("Lös"), Err(Gs1Error::BatchCharacters));
        assert_eq!(batch(".."), Err(Gs1Error::BatchCharacters));
    }

    #[test]
    fn the_digital_link_carries_the_gtin_and_the_batch() {
        assert_eq!(digital_link_path("04006381333931", Some("LOT-17")), "/01/04006381333931/10/LOT-17");
        assert_eq!(digital_link_path("04006381333931", None), "/01/04006381333931");
    }
}
