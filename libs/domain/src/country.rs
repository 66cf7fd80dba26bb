//! The countries the marketplace serves: France and its neighbours around the Upper Rhine and
//! the Greater Region.

use std::fmt;
use std::str::FromStr;

use crate::input::echo;

/// A country the marketplace serves, by its ISO 3166-1 alpha-2 code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
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

    /// The IANA name of the country's time zone (each of ours has one).
    pub fn time_zone_name(self) -> &'static str {
        match self {
            Country::Fr => "Europe/Paris",
            Country::De => "Europe/Berlin",
            Country::Ch => "Europe/Zurich",
            Country::Be => "Europe/Brussels",
            Country::Lu => "Europe/Luxembourg",
        }
    }

    /// The calendar date in the country at `unix_ms` (ms since 1970-01-01T00:00:00Z), in its
    /// time zone, summer time included: 2026-12-31T23:30Z is 1 January 2027 in Paris. The time
    /// zone database is compiled in (jiff's bundle), so nothing is read from the machine. An
    /// instant beyond jiff's range (years -9999 to 9999) is taken at its bound.
    pub fn date_at(self, unix_ms: i64) -> jiff::civil::Date {
        let instant = jiff::Timestamp::from_millisecond(unix_ms).unwrap_or(if unix_ms < 0 {
            jiff::Timestamp::MIN
        } else {
            jiff::Timestamp::MAX
        });
        let zone = jiff::tz::TimeZone::get(self.time_zone_name())
            .expect("the compiled-in time zone database holds the zones of our countries");
        zone.to_datetime(instant).date()
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

    /// ms since the epoch of an RFC 3339 instant.
    fn unix_ms(instant: &str) -> i64 {
        instant.parse::<jiff::Timestamp>().expect("an instant").as_millisecond()
    }

    #[test]
    fn a_date_is_the_date_in_the_countrys_time_zone() {
        let new_year_eve = unix_ms("2026-12-31T23:30:00Z");
        for country in Country::ALL {
            assert_eq!(country.date_at(new_year_eve), jiff::civil::date(2027, 1, 1), "{country}");
        }
        // Summer time: UTC+2, so 22:30Z on 30 June is already 1 July.
        assert_eq!(Country::Fr.date_at(unix_ms("2026-06-30T22:30:00Z")), jiff::civil::date(2026, 7, 1));
        // Winter time: UTC+1, so 22:30Z on 30 January is still 30 January.
        assert_eq!(Country::De.date_at(unix_ms("2026-01-30T22:30:00Z")), jiff::civil::date(2026, 1, 30));
        assert_eq!(Country::Ch.date_at(0), jiff::civil::date(1970, 1, 1));
        assert_eq!(Country::Be.date_at(i64::MAX).year(), 9999);
        assert_eq!(Country::Lu.date_at(i64::MIN).year(), -9999);
    }

    #[test]
    fn switzerland_is_the_only_country_outside_the_eu() {
        let outside: Vec<Country> = Country::ALL.into_iter().filter(|c| !c.is_eu()).collect();
        assert_eq!(outside, [Country::Ch]);
    }
}
