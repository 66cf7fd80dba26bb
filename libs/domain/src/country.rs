//! The countries the marketplace serves: France and its neighbours around the Upper Rhine and
//! the Greater Region.

use std::fmt;
use std::str::FromStr;

use crate::input::echo;

/// A country the marketplace serves, by its ISO 3166-1 alpha-2 code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Country {
    Fr,
    De,
    Ch,
    Be,
    Lu,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CountryError {
    #[error("country {0:?} is not supported: expected one of FR, DE, CH, BE, LU")]
    Unsupported(String),
}

impl Country {
    pub const ALL: [Country; 5] = [Country::Fr, Country::De, Country::Ch, Country::Be, Country::Lu];

    /// The ISO 3166-1 alpha-2 code, such as `FR`.
    pub fn code(self) -> &'static str {
        match self {
            Country::Fr => "FR",
            Country::De => "DE",
            Country::Ch => "CH",
            Country::Be => "BE",
            Country::Lu => "LU",
        }
    }

    /// Whether the country is in the European Union. Switzerland is not: goods sent there are
    /// exports, with Swiss import VAT at customs, while it applies the EU rules on shipments of
    /// green-listed waste.
    pub fn is_eu(self) -> bool {
        !matches!(self, Country::Ch)
    }

    /// The English short name.
    pub fn name_en(self) -> &'static str {
        match self {
            Country::Fr => "France",
            Country::De => "Germany",
            Country::Ch => "Switzerland",
            Country::Be => "Belgium",
            Country::Lu => "Luxembourg",
        }
    }
}

/// An ISO 3166-1 alpha-2 code, in any case, with surrounding whitespace.
impl FromStr for Country {
    type Err = CountryError;

    fn from_str(code: &str) -> Result<Country, CountryError> {
        let trimmed = code.trim();
        Country::ALL
            .into_iter()
            .find(|country| country.code().eq_ignore_ascii_case(trimmed))
            .ok_or_else(|| CountryError::Unsupported(echo(trimmed)))
    }
}

impl TryFrom<&str> for Country {
    type Error = CountryError;

    fn try_from(code: &str) -> Result<Country, CountryError> {
        code.parse()
    }
}

impl fmt::Display for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_parse_in_any_case() {
        for country in Country::ALL {
            assert_eq!(country.code().parse(), Ok(country));
            assert_eq!(country.code().to_lowercase().parse(), Ok(country));
        }
        assert_eq!(" de ".parse(), Ok(Country::De));
        assert_eq!(Country::try_from("Lu"), Ok(Country::Lu));
        assert_eq!(Country::Ch.to_string(), "CH");
        assert_eq!(Country::De.name_en(), "Germany");
    }

    #[test]
    fn other_countries_are_refused_with_the_supported_list() {
        for unsupported in ["IT", "FRA", "", "F R"] {
            assert!(unsupported.parse::<Country>().is_err(), "{unsupported:?}");
        }
        assert_eq!(
            "it".parse::<Country>().unwrap_err().to_string(),
            "country \"it\" is not supported: expected one of FR, DE, CH, BE, LU"
        );
    }

    #[test]
    fn switzerland_is_the_only_country_outside_the_eu() {
        let outside: Vec<Country> = Country::ALL.into_iter().filter(|c| !c.is_eu()).collect();
        assert_eq!(outside, [Country::Ch]);
    }
}
