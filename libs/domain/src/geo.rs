//! Places on the WGS84 ellipsoid and the distances between them.
//!
//! Coordinates are the one place in the crate where floats belong: they are measurements, and
//! distances are estimates for transport, rounded to whole metres before anyone stores them.

use std::sync::LazyLock;

use crate::country::Country;
use crate::csv;

/// The mean Earth radius (IUGG), in metres: the radius of the sphere that haversine assumes.
/// Its error against the ellipsoid is below 0.5 %, well inside the road factor's.
pub const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// Road distance as a percentage of great-circle distance. Roads wind around hills, rivers and
/// towns: for trips of tens to hundreds of kilometres in Western Europe, the road distance is
/// typically 1.2 to 1.4 times the straight line, and 1.3 is the usual middle value for
/// transport estimates. An estimate only: a carrier's quote or a route planner replaces it.
pub const ROAD_FACTOR_PERCENT: u64 = 130;

/// A WGS84 point: latitude within -90..=90 and longitude within -180..=180 degrees, both finite.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GeoPoint {
    latitude: f64,
    longitude: f64,
}

/// Why a pair of numbers is not a point.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum GeoError {
    #[error("latitude {0} is out of range: it must be within -90 and 90 degrees")]
    LatitudeOutOfRange(f64),
    #[error("longitude {0} is out of range: it must be within -180 and 180 degrees")]
    LongitudeOutOfRange(f64),
    #[error("coordinate is not a finite number")]
    NotFinite,
}

/// A town from the reference table, for demo data and tests.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Place {
    pub name: &'static str,
    pub country: Country,
    pub point: GeoPoint,
    pub region: &'static str,
}

/// The towns of the reference table: the Grand Est region of France and its neighbours in
/// Germany, Switzerland, Luxembourg and Belgium, and Paris as a place outside the region.
pub fn places() -> &'static [Place] {
    &PLACES
}

/// The town with this name, ignoring case and surrounding whitespace.
pub fn place(name: &str) -> Option<&'static Place> {
    let wanted = name.trim().to_lowercase();
    places().iter().find(|place| place.name.to_lowercase() == wanted)
}

/// The estimated road distance for a great-circle distance, rounded to the nearest metre.
pub fn road_distance_m(great_circle_m: u64) -> u64 {
    // Saturates instead of overflowing; no distance on Earth comes near it.
    great_circle_m.saturating_mul(ROAD_FACTOR_PERCENT).saturating_add(50) / 100
}

impl GeoPoint {
    pub fn new(latitude: f64, longitude: f64) -> Result<GeoPoint, GeoError> {
        if !latitude.is_finite() || !longitude.is_finite() {
            return Err(GeoError::NotFinite);
        }
        if !(-90.0..=90.0).contains(&latitude) {
            return Err(GeoError::LatitudeOutOfRange(latitude));
        }
        if !(-180.0..=180.0).contains(&longitude) {
            return Err(GeoError::LongitudeOutOfRange(longitude));
        }
        Ok(GeoPoint { latitude, longitude })
    }

    /// Degrees north of the equator (negative south).
    pub fn latitude(&self) -> f64 {
        self.latitude
    }

    /// Degrees east of Greenwich (negative west).
    pub fn longitude(&self) -> f64 {
        self.longitude
    }

    /// The great-circle (haversine) distance on the mean Earth sphere, rounded to the metre.
    pub fn distance_m(&self, other: &GeoPoint) -> u64 {
        // At most half the Earth's circumference (about 2 * 10^7 m), so the cast cannot
        // truncate, and the value is never negative or NaN.
        self.great_circle_m(other).round() as u64
    }

    /// The great-circle distance in kilometres, unrounded.
    pub fn distance_km(&self, other: &GeoPoint) -> f64 {
        self.great_circle_m(other) / 1000.0
    }

    fn great_circle_m(&self, other: &GeoPoint) -> f64 {
        let latitude_1 = self.latitude.to_radians();
        let latitude_2 = other.latitude.to_radians();
        let half_latitude_delta = (latitude_2 - latitude_1) / 2.0;
        let half_longitude_delta = (other.longitude - self.longitude).to_radians() / 2.0;
        let haversine = half_latitude_delta.sin().powi(2)
            + latitude_1.cos() * latitude_2.cos() * half_longitude_delta.sin().powi(2);
        // Rounding can push the haversine a hair above 1 for antipodal points.
        2.0 * EARTH_RADIUS_M * haversine.clamp(0.0, 1.0).sqrt().asin()
    }
}

const PLACES_CSV: &str = include_str!("../data/places.csv");
const PLACES_HEADER: [&str; 5] = ["name", "country", "lat", "lon", "region"];

static PLACES: LazyLock<Vec<Place>> = LazyLock::new(load_places);

fn load_places() -> Vec<Place> {
    csv::parse(PLACES_CSV, &PLACES_HEADER)
        .into_iter()
        .map(|record| {
            let name = record[0];
            let country = record[1].parse().unwrap_or_else(|error| panic!("place {name}: {error}"));
            let coordinate = |text: &str| -> f64 {
                text.parse().unwrap_or_else(|_| panic!("place {name} has coordinate {text:?}"))
            };
            let point = GeoPoint::new(coordinate(record[2]), coordinate(record[3]))
                .unwrap_or_else(|error| panic!("place {name}: {error}"));
            Place { name, country, point, region: record[4] }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[track_caller]
    fn distance_km_between(from: &str, to: &str) -> f64 {
        let from = place(from).unwrap();
        let to = place(to).unwrap();
        from.point.distance_m(&to.point) as f64 / 1000.0
    }

    #[test]
    fn the_table_has_forty_towns_in_the_served_countries() {
        assert_eq!(places().len(), 40);
        let strasbourg = place("strasbourg").unwrap();
        assert_eq!(strasbourg.country, Country::Fr);
        assert_eq!(strasbourg.region, "Grand Est");
        assert!((strasbourg.point.latitude() - 48.5734).abs() < 1e-9);
        assert_eq!(place(" BASEL ").unwrap().country, Country::Ch);
        assert_eq!(place("Freiburg im Breisgau").unwrap().country, Country::De);
        assert!(place("Lyon").is_none());
        assert!(place("Stras").is_none());
        for country in Country::ALL {
            assert!(places().iter().any(|place| place.country == country), "{country}");
        }
    }

    #[test]
    fn distances_between_towns_are_the_known_ones() {
        let cases = [
            ("Strasbourg", "Kehl", 4.0, 6.0),
            ("Strasbourg", "Karlsruhe", 65.0, 72.0),
            ("Strasbourg", "Basel", 112.5, 115.0),
            ("Metz", "Luxembourg", 53.0, 57.0),
            ("Strasbourg", "Reims", 280.0, 285.0),
            ("Strasbourg", "Paris", 396.0, 400.0),
        ];
        for (from, to, low_km, high_km) in cases {
            let distance_km = distance_km_between(from, to);
            assert!(
                (low_km..=high_km).contains(&distance_km),
                "{from} to {to} is {distance_km} km, expected {low_km} to {high_km}"
            );
        }
    }

    #[test]
    fn distance_km_is_distance_m_unrounded() {
        let strasbourg = place("Strasbourg").unwrap().point;
        let paris = place("Paris").unwrap().point;
        let metres = strasbourg.distance_m(&paris) as f64;
        assert!((strasbourg.distance_km(&paris) * 1000.0 - metres).abs() <= 0.5);
    }

    #[test]
    fn antipodes_are_half_the_circumference_apart() {
        let north = GeoPoint::new(90.0, 0.0).unwrap();
        let south = GeoPoint::new(-90.0, 0.0).unwrap();
        let half_circumference_m = (std::f64::consts::PI * EARTH_RADIUS_M).round() as u64;
        assert_eq!(north.distance_m(&south), half_circumference_m);
        let west = GeoPoint::new(0.0, -180.0).unwrap();
        let east = GeoPoint::new(0.0, 0.0).unwrap();
        assert_eq!(west.distance_m(&east), half_circumference_m);
    }

    #[test]
    fn road_distance_adds_thirty_percent() {
        assert_eq!(road_distance_m(100_000), 130_000);
        assert_eq!(road_distance_m(1), 1);
        assert_eq!(road_distance_m(0), 0);
        assert_eq!(road_distance_m(u64::MAX), u64::MAX / 100);
    }

    #[test]
    fn out_of_range_and_non_finite_coordinates_are_refused() {
        assert!(GeoPoint::new(90.0, 180.0).is_ok());
        assert!(GeoPoint::new(-90.0, -180.0).is_ok());
        assert!(matches!(GeoPoint::new(90.1, 0.0), Err(GeoError::LatitudeOutOfRange(_))));
        assert!(matches!(GeoPoint::new(0.0, -180.5), Err(GeoError::LongitudeOutOfRange(_))));
        assert_eq!(GeoPoint::new(f64::NAN, 0.0), Err(GeoError::NotFinite));
        assert_eq!(GeoPoint::new(0.0, f64::INFINITY), Err(GeoError::NotFinite));
        assert_eq!(
            GeoPoint::new(91.0, 0.0).unwrap_err().to_string(),
            "latitude 91 is out of range: it must be within -90 and 90 degrees"
        );
    }

    fn any_point() -> impl Strategy<Value = GeoPoint> {
        (-90.0..=90.0f64, -180.0..=180.0f64)
            .prop_map(|(latitude, longitude)| GeoPoint::new(latitude, longitude).unwrap())
    }

    proptest! {
        #[test]
        fn distance_is_symmetric(first in any_point(), second in any_point()) {
            prop_assert_eq!(first.distance_m(&second), second.distance_m(&first));
        }

        #[test]
        fn distance_to_itself_is_zero(point in any_point()) {
            prop_assert_eq!(point.distance_m(&point), 0);
        }

        #[test]
        fn no_distance_exceeds_half_the_circumference(first in any_point(), second in any_point()) {
            let half_circumference_m = (std::f64::consts::PI * EARTH_RADIUS_M).round() as u64;
            prop_assert!(first.distance_m(&second) <= half_circumference_m);
        }
    }
}
