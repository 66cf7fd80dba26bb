//! The territories figures are kept for, and the rule that puts a place in one.
//!
//! `data/territories.csv` extends the reference towns with the territory each lies in: a
//! French département (`FR-67`, ISO 3166-2), a German Kreis (`DE-08317`, its official key), a
//! Swiss canton (`CH-BS`), a Belgian province (`BE-WLX`) or Luxembourg (`LU`), and, where it
//! belongs to one, its Eurodistrict. Countries are territories too (`FR`, `DE`...).
//!
//! **The point-in-territory rule.** A place is in the territory of the nearest town of the
//! table *in the place's own country*, if that town is at most [`TOWN_RADIUS_M`] away; else it
//! is in its country only. The country is the place's own (a site in Kehl stays German, however
//! close Strasbourg is), so the rule never puts a place across a border. A Eurodistrict holds
//! the places whose nearest town belongs to it: its towns stand for its member communes.

use std::sync::OnceLock;

use symbiose_domain::lot::Place;
use symbiose_domain::{Country, GeoPoint};

/// Farthest a place is from a town of the table and still in that town's territory, in metres.
pub const TOWN_RADIUS_M: u64 = 40_000;

const TABLE: &str = include_str!("../data/territories.csv");

/// What kind of area a territory is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Kind {
    Country,
    /// A French département, German Kreis, Swiss canton or Belgian province.
    Region,
    /// A cross-border Eurodistrict: a named group of towns on both sides of a border.
    Eurodistrict,
}

impl Kind {
    pub fn key(self) -> &'static str {
        match self {
            Kind::Country => "country",
            Kind::Region => "region",
            Kind::Eurodistrict => "eurodistrict",
        }
    }
}

/// A territory figures are kept for.
#[derive(Debug, Clone, PartialEq)]
pub struct Territory {
    /// `FR`, `FR-67`, `DE-08317`, `strasbourg-ortenau`...
    pub code: String,
    pub name: String,
    pub kind: Kind,
    /// The countries it spans.
    pub countries: Vec<Country>,
}

/// A town of the table, with its territory.
#[derive(Debug, Clone, PartialEq)]
pub struct Town {
    pub name: String,
    pub country: Country,
    pub point: GeoPoint,
    pub region: String,
    pub eurodistrict: Option<String>,
}

/// The Eurodistricts: code and name.
const EURODISTRICTS: [(&str, &str); 5] = [
    ("strasbourg-ortenau", "Eurodistrict Strasbourg-Ortenau"),
    ("pamina", "Eurodistrict PAMINA"),
    ("trinational-basel", "Trinational Eurodistrict Basel"),
    ("freiburg-alsace", "Eurodistrict Region Freiburg / Centre et Sud Alsace"),
    ("saarmoselle", "Eurodistrict SaarMoselle"),
];

struct Tables {
    towns: Vec<Town>,
    territories: Vec<Territory>,
}

fn tables() -> &'static Tables {
    static TABLES: OnceLock<Tables> = OnceLock::new();
    TABLES.get_or_init(|| load(TABLE).expect("data/territories.csv is valid"))
}

fn load(table: &str) -> Result<Tables, String> {
    let mut towns = Vec::new();
    let mut territories: Vec<Territory> = Country::ALL
        .iter()
        .map(|country| Territory {
            code: country.code().to_owned(),
            name: country.name_en().to_owned(),
            kind: Kind::Country,
            countries: vec![*country],
        })
        .collect();
    for (number, line) in table.lines().enumerate().skip(1) {
        let fields: Vec<&str> = line.split(',').collect();
        let [name, country, lat, lon, region, region_name, eurodistrict] = fields[..] else {
            return Err(format!("line {}: expected 7 fields", number + 1));
        };
        let country = country.parse::<Country>().map_err(|error| format!("line {}: {error}", number + 1))?;
        let lat: f64 = lat.parse().map_err(|_| format!("line {}: bad latitude", number + 1))?;
        let lon: f64 = lon.parse().map_err(|_| format!("line {}: bad longitude", number + 1))?;
        let point = GeoPoint::new(lat, lon).map_err(|error| format!("line {}: {error}", number + 1))?;
        if !territories.iter().any(|territory| territory.code == region) {
            territories.push(Territory {
                code: region.to_owned(),
                name: region_name.to_owned(),
                kind: if region == country.code() { Kind::Country } else { Kind::Region },
                countries: vec![country],
            });
        }
        let eurodistrict = (!eurodistrict.is_empty()).then(|| eurodistrict.to_owned());
        if let Some(code) = &eurodistrict {
            let (_, name) = EURODISTRICTS
                .iter()
                .find(|(known, _)| known == code)
                .ok_or_else(|| format!("line {}: unknown Eurodistrict {code}", number + 1))?;
            match territories.iter_mut().find(|territory| &territory.code == code) {
                Some(territory) if !territory.countries.contains(&country) => {
                    territory.countries.push(country)
                }
                Some(_) => {}
                None => territories.push(Territory {
                    code: code.clone(),
                    name: (*name).to_owned(),
                    kind: Kind::Eurodistrict,
                    countries: vec![country],
                }),
            }
        }
        towns.push(Town { name: name.to_owned(), country, point, region: region.to_owned(), eurodistrict });
    }
    Ok(Tables { towns, territories })
}

/// Every territory: the countries, then the regions and Eurodistricts in the table's order.
pub fn territories() -> &'static [Territory] {
    &tables().territories
}

/// The territory of `code`, ignoring ASCII case.
pub fn territory(code: &str) -> Option<&'static Territory> {
    territories().iter().find(|territory| territory.code.eq_ignore_ascii_case(code))
}

/// The towns of the table.
pub fn towns() -> &'static [Town] {
    &tables().towns
}

/// The town of the table `place` belongs to: the nearest of its country within
/// [`TOWN_RADIUS_M`].
pub fn town_of(place: &Place) -> Option<&'static Town> {
    towns()
        .iter()
        .filter(|town| town.country == place.country)
        .map(|town| (town.point.distance_m(&place.point), town))
        .filter(|(distance, _)| *distance <= TOWN_RADIUS_M)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, town)| town)
}

/// The index in [`towns`] of the town `place` belongs to, as [`town_of`] finds it: what the
/// read model keeps of each place, so that figures do not search the table again.
pub fn town_index_of(place: &Place) -> Option<u16> {
    let town = town_of(place)?;
    towns()
        .iter()
        .position(|candidate| std::ptr::eq(candidate, town))
        .and_then(|index| u16::try_from(index).ok())
}

/// Where a place is: its country, region and Eurodistrict.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Located {
    pub country: Country,
    pub town: Option<&'static Town>,
}

impl Located {
    pub fn of(place: &Place) -> Located {
        Located { country: place.country, town: town_of(place) }
    }

    /// A place of `country` whose town is the one at `index` in [`towns`] (from
    /// [`town_index_of`]).
    pub fn at(country: Country, index: Option<u16>) -> Located {
        Located { country, town: index.and_then(|index| towns().get(usize::from(index))) }
    }

    /// The region's code (`FR-67`), or the country's when the place is in none.
    pub fn region(&self) -> &str {
        self.town.map_or(self.country.code(), |town| town.region.as_str())
    }

    /// Whether the place is in `territory`.
    pub fn is_in(&self, territory: &Territory) -> bool {
        match territory.kind {
            Kind::Country => territory.countries.contains(&self.country),
            Kind::Region => self.town.is_some_and(|town| town.region == territory.code),
            Kind::Eurodistrict => {
                self.town.is_some_and(|town| town.eurodistrict.as_deref() == Some(territory.code.as_str()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place(lat: f64, lon: f64, country: Country) -> Place {
        Place { point: GeoPoint::new(lat, lon).unwrap(), country }
    }

    #[test]
    fn the_table_loads_with_its_regions_and_eurodistricts() {
        let ortenau = territory("strasbourg-ortenau").unwrap();
        assert_eq!(ortenau.kind, Kind::Eurodistrict);
        assert_eq!(ortenau.countries, vec![Country::Fr, Country::De]);
        assert_eq!(territory("fr-67").unwrap().name, "Bas-Rhin");
        assert_eq!(territory("DE-08317").unwrap().name, "Ortenaukreis");
        let basel = territory("trinational-basel").unwrap();
        assert_eq!(basel.countries, vec![Country::Fr, Country::De, Country::Ch]);
        assert_eq!(territory("LU").unwrap().kind, Kind::Country);
        assert!(territory("FR-99").is_none());
    }

    #[test]
    fn a_place_belongs_to_the_nearest_town_of_its_own_country() {
        // Kehl's bank of the Rhine, nearer Strasbourg's centre than Kehl's is: still Germany.
        let kehl = Located::of(&place(48.5700, 7.8000, Country::De));
        assert_eq!(kehl.region(), "DE-08317");
        assert!(kehl.is_in(territory("strasbourg-ortenau").unwrap()));
        assert!(!kehl.is_in(territory("FR-67").unwrap()));
        let illkirch = Located::of(&place(48.5297, 7.7150, Country::Fr));
        assert_eq!(illkirch.region(), "FR-67");
        assert!(illkirch.is_in(territory("FR").unwrap()));
        // Lyon is far from every town of the table: France, but no region.
        let lyon = Located::of(&place(45.7640, 4.8357, Country::Fr));
        assert_eq!(lyon.region(), "FR");
        assert!(lyon.is_in(territory("FR").unwrap()));
        assert!(!lyon.is_in(territory("FR-67").unwrap()));
    }
}
