//! The language of a page: French, German or English.
//!
//! A reader's explicit choice (the `?lang=` of a link) wins; otherwise the browser's
//! `Accept-Language` header (RFC 9110, section 12.5.4) says which languages the reader prefers.
//! When neither names one of ours, the page is in French (`Lang::DEFAULT`): the platform serves
//! the Grand Est region first, and its neighbours in Germany and Switzerland choose German.

/// A language the pages are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    Fr,
    De,
    En,
}

/// Most bytes of an `Accept-Language` header read; the rest is ignored. Browsers send a few
/// dozen.
pub const ACCEPT_LANGUAGE_BYTES_MAX: usize = 1024;
/// Most entries of an `Accept-Language` header read; the rest are ignored.
pub const ACCEPT_LANGUAGE_ENTRIES_MAX: usize = 32;

impl Lang {
    /// Every language, in the order `*` of an `Accept-Language` header chooses them.
    pub const ALL: [Lang; 3] = [Lang::Fr, Lang::De, Lang::En];
    /// The language of a page when the reader names none of ours.
    pub const DEFAULT: Lang = Lang::Fr;

    /// Its ISO 639-1 code, as in `lang="fr"` and `?lang=fr`.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Fr => "fr",
            Lang::De => "de",
            Lang::En => "en",
        }
    }

    /// The language of an ISO 639-1 code, in any case (`fr`, `DE`); `None` for any other text.
    pub fn from_code(code: &str) -> Option<Lang> {
        Lang::ALL.into_iter().find(|lang| lang.code().eq_ignore_ascii_case(code))
    }
}

impl Default for Lang {
    fn default() -> Lang {
        Lang::DEFAULT
    }
}

/// The language of a page: `chosen` when it is one of our codes; else the one the
/// `accept_language` header prefers (highest weight, the first listed among equals, `de-CH`
/// counting as `de`, `*` as any language the header does not name, weight 0 as "not this one");
/// else `Lang::DEFAULT`. Malformed entries of the header are ignored, and only its first
/// `ACCEPT_LANGUAGE_BYTES_MAX` bytes and `ACCEPT_LANGUAGE_ENTRIES_MAX` entries are read.
pub fn negotiate(accept_language: Option<&str>, chosen: Option<&str>) -> Lang {
    if let Some(lang) = chosen.and_then(|code| Lang::from_code(code.trim())) {
        return lang;
    }
    accept_language.and_then(preferred).unwrap_or(Lang::DEFAULT)
}

/// One entry of an `Accept-Language` header that names a language or `*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Range {
    /// One of ours (`de`, `de-CH`), `exact` when the range has no subtag.
    Lang { lang: Lang, exact: bool },
    /// Another language (`it`, `zh-Hant`).
    Other,
    /// `*`: any language.
    Any,
}

/// The language of ours `header` prefers, if any.
fn preferred(header: &str) -> Option<Lang> {
    let entries: Vec<(Range, u16)> = head(header, ACCEPT_LANGUAGE_BYTES_MAX)
        .split(',')
        .take(ACCEPT_LANGUAGE_ENTRIES_MAX)
        .filter_map(entry)
        .collect();
    let named = |lang: Lang| {
        entries.iter().any(|(range, _)| matches!(range, Range::Lang { lang: named, .. } if *named == lang))
    };
    // `fr;q=0` refuses French, even through `*`; `fr-CA;q=0` refuses only a variant of it.
    let refused = |lang: Lang| entries.contains(&(Range::Lang { lang, exact: true }, 0));
    // `*` stands for the first of ours the header names nowhere else.
    let wildcard = Lang::ALL.into_iter().find(|lang| !named(*lang));

    let mut best: Option<(Lang, u16)> = None;
    for (range, weight) in &entries {
        let lang = match range {
            Range::Lang { lang, .. } => Some(*lang),
            Range::Any => wildcard,
            Range::Other => None,
        };
        let Some(lang) = lang.filter(|lang| *weight > 0 && !refused(*lang)) else { continue };
        // Strictly greater: among equal weights the first listed stays.
        if best.is_none_or(|(_, best_weight)| *weight > best_weight) {
            best = Some((lang, *weight));
        }
    }
    best.map(|(lang, _)| lang)
}

/// An entry `range[;q=weight]` with its weight in thousandths, or `None` if malformed.
fn entry(text: &str) -> Option<(Range, u16)> {
    let mut parts = text.split(';');
    let range = language_range(parts.next()?.trim())?;
    let mut weight = 1000;
    for (index, parameter) in parts.enumerate() {
        // The weight is the one parameter an `Accept-Language` entry has.
        let (name, value) = parameter.trim().split_once('=')?;
        if index > 0 || !name.trim_end().eq_ignore_ascii_case("q") {
            return None;
        }
        weight = qvalue(value.trim_start())?;
    }
    Some((range, weight))
}

/// A language range of RFC 4647: `*`, or subtags of 1 to 8 letters and digits joined by `-`,
/// the first letters only.
fn language_range(text: &str) -> Option<Range> {
    if text == "*" {
        return Some(Range::Any);
    }
    let mut subtags = text.split('-');
    let primary = subtags.next()?;
    let well_formed = (1..=8).contains(&primary.len())
        && primary.bytes().all(|byte| byte.is_ascii_alphabetic())
        && subtags.all(|subtag| {
            (1..=8).contains(&subtag.len()) && subtag.bytes().all(|byte| byte.is_ascii_alphanumeric())
        });
    if !well_formed {
        return None;
    }
    Some(match Lang::from_code(primary) {
        Some(lang) => Range::Lang { lang, exact: primary.len() == text.len() },
        None => Range::Other,
    })
}

/// A weight of RFC 9110 (`0`, `0.5`, `0.125`, `1`, `1.000`) in thousandths.
fn qvalue(text: &str) -> Option<u16> {
    let (units, decimals) = text.split_once('.').unwrap_or((text, ""));
    if decimals.len() > 3 || !decimals.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    let thousandths = decimals
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(3)
        .fold(0, |sum, digit| sum * 10 + u16::from(digit - b'0'));
    match units {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

/// The first bytes of `text`, at most `bytes_max`, cut at a character boundary.
fn head(text: &str, bytes_max: usize) -> &str {
    let mut end = text.len().min(bytes_max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(accept_language: &str, expected: Lang) {
        assert_eq!(negotiate(Some(accept_language), None), expected, "{accept_language:?}");
    }

    #[test]
    fn the_highest_weight_wins() {
        check("de-CH,de;q=0.9,en;q=0.8", Lang::De);
        check("en-US,en;q=0.9,fr;q=0.8", Lang::En);
        check("it-IT,it;q=0.9,en;q=0.5,de;q=0.7", Lang::De);
        check("fr;q=0.5, en;q=0.500, de;q=0.501", Lang::De);
        check("en;q=0.001", Lang::En);
        check("fr-FR", Lang::Fr);
        check("DE-at", Lang::De);
    }

    #[test]
    fn equal_weights_keep_the_first_listed() {
        check("en, de", Lang::En);
        check("de;q=0.8, en;q=0.8, fr;q=0.8", Lang::De);
        check("en;q=1.000, fr", Lang::En);
    }

    #[test]
    fn weight_zero_refuses_a_language() {
        check("fr;q=0, de", Lang::De);
        check("fr;q=0", Lang::Fr);
        check("fr;q=0, *", Lang::De);
        check("fr;q=0, de;q=0, *;q=0.1", Lang::En);
        check("de-CH, de;q=0, en;q=0.5", Lang::En);
        check("fr-CA;q=0, fr;q=0.5, en;q=0.4", Lang::Fr);
    }

    #[test]
    fn the_wildcard_is_a_language_not_named() {
        check("*", Lang::Fr);
        check("it, *;q=0.5", Lang::Fr);
        check("fr;q=0.2, *;q=0.5", Lang::De);
        check("fr;q=0.2, de;q=0.1, *;q=0.5", Lang::En);
        check("fr;q=0.2, de;q=0.1, en;q=0.1, *", Lang::Fr);
    }

    #[test]
    fn malformed_entries_are_ignored() {
        for garbage in ["", "   ", ",,,", "garbage!!", "é", "x-y-z;;;", "*;q=", "12, --"] {
            check(garbage, Lang::Fr);
        }
        check("de;q=2, en", Lang::En);
        check("de;q=0.1234, en;q=0.1", Lang::En);
        check("de;q=abc, en;q=0.1", Lang::En);
        check("de;level=1, en;q=0.1", Lang::En);
        check("de;q=0.9;q=0.8, en;q=0.1", Lang::En);
        check("deutschland-toolong, en;q=0.1", Lang::En);
        check("de-toolongsubtag, en;q=0.1", Lang::En);
        check("d3, en;q=0.1", Lang::En);
        check(" de ; q=0.9 , en;Q=0.8", Lang::De);
    }

    #[test]
    fn only_the_head_of_a_long_header_is_read() {
        let many = vec!["it"; ACCEPT_LANGUAGE_ENTRIES_MAX].join(",");
        check(&format!("{many},de"), Lang::Fr);
        check(&format!("{},de", vec!["it"; ACCEPT_LANGUAGE_ENTRIES_MAX - 1].join(",")), Lang::De);
        let padding = " ".repeat(ACCEPT_LANGUAGE_BYTES_MAX);
        check(&format!("{padding}de"), Lang::Fr);
        // A cut in the middle of a character is not a panic.
        check(&format!("{}ée", "a".repeat(ACCEPT_LANGUAGE_BYTES_MAX - 1)), Lang::Fr);
    }

    #[test]
    fn an_explicit_choice_wins_when_it_is_ours() {
        assert_eq!(negotiate(Some("de"), Some("en")), Lang::En);
        assert_eq!(negotiate(Some("de"), Some(" FR ")), Lang::Fr);
        assert_eq!(negotiate(Some("de"), Some("it")), Lang::De);
        assert_eq!(negotiate(Some("de"), Some("")), Lang::De);
        assert_eq!(negotiate(None, Some("xx")), Lang::Fr);
        assert_eq!(negotiate(None, None), Lang::Fr);
    }

    #[test]
    fn codes_both_ways() {
        for lang in Lang::ALL {
            assert_eq!(Lang::from_code(lang.code()), Some(lang));
        }
        assert_eq!(Lang::from_code("En"), Some(Lang::En));
        assert_eq!(Lang::from_code("en-GB"), None);
        assert_eq!(Lang::default(), Lang::Fr);
    }
}
