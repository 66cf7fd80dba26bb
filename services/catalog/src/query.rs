//! A catalog search: the filters, the order, the page; run against the projection.

use std::cmp::Ordering;

use symbiose_domain::lot::{LegalStatus, Quality};
use symbiose_domain::{Country, Currency, GeoPoint, MaterialFamily, PalletGrade, WasteCode};
use symbiose_listings_contract::listing::Side;
use uuid::Uuid;

use crate::projection::{Entry, Projection};

/// Largest search radius, in km.
pub const RADIUS_KM_MAX: u32 = 1000;
/// Largest page of a search.
pub const PAGE_SIZE_MAX: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    Distance,
    Price,
    Recency,
}

/// A parsed search: every filter optional, a page size within [`PAGE_SIZE_MAX`].
#[derive(Debug, Clone)]
pub struct Query {
    pub side: Option<Side>,
    pub family: Option<MaterialFamily>,
    pub waste_code: Option<WasteCode>,
    pub waste_chapter: Option<String>,
    pub hazardous: Option<bool>,
    pub legal_status: Option<LegalStatus>,
    pub pallet_grade: Option<PalletGrade>,
    pub near: Option<(GeoPoint, u32)>,
    pub countries: Vec<Country>,
    pub currency: Option<Currency>,
    pub price_min_minor: Option<i64>,
    pub price_max_minor: Option<i64>,
    pub available_on_ms: Option<i64>,
    pub sort: Sort,
    pub page_size: usize,
    /// The sort key of the last hit of the previous page.
    pub after: Option<Key>,
}

/// Where a hit stands in the order of a search: its sort value, then its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key {
    pub value: i64,
    pub id: Uuid,
}

impl Key {
    pub fn to_token(self) -> String {
        format!("{}:{}", self.value, self.id)
    }

    pub fn from_token(text: &str) -> Option<Key> {
        let (value, id) = text.split_once(':')?;
        Some(Key { value: value.parse().ok()?, id: Uuid::parse_str(id).ok()? })
    }
}

/// One hit: the entry and its distance from the point searched.
#[derive(Debug, Clone)]
pub struct Hit {
    pub entry: Entry,
    pub distance_km: Option<f64>,
}

/// A page of hits and the key to continue after, if more follow.
#[derive(Debug, Clone)]
pub struct Page {
    pub hits: Vec<Hit>,
    pub next: Option<Key>,
}

impl Query {
    fn matches(&self, entry: &Entry) -> bool {
        let listing = &entry.listing;
        let terms = &listing.terms;
        let code = terms.waste_code;
        self.side.is_none_or(|side| terms.side == side)
            && self.family.is_none_or(|family| terms.family == family)
            && self.waste_code.is_none_or(|wanted| code == Some(wanted))
            && self
                .waste_chapter
                .as_deref()
                .is_none_or(|chapter| code.is_some_and(|code| code.chapter() == chapter))
            && self
                .hazardous
                .is_none_or(|hazardous| code.is_some_and(|code| code.is_hazardous()) == hazardous)
            && self.legal_status.is_none_or(|status| terms.legal_status == status)
            && self.pallet_grade.is_none_or(|grade| terms.quality == Quality::PalletGrade(grade))
            && (self.countries.is_empty() || self.countries.contains(&listing.place.country))
            && self.currency.is_none_or(|currency| terms.price_per_unit.currency() == currency)
            && self.price_min_minor.is_none_or(|min| terms.price_per_unit.minor() >= min)
            && self.price_max_minor.is_none_or(|max| terms.price_per_unit.minor() <= max)
            && self.available_on_ms.is_none_or(|at| {
                terms.available_from_ms <= at
                    && (terms.available_until_ms == 0 || at <= terms.available_until_ms)
            })
    }

    fn key(&self, entry: &Entry, distance_km: Option<f64>) -> Key {
        let value = match self.sort {
            // Metres: whole numbers sort exactly and survive the page token.
            Sort::Distance => distance_km.map_or(0, |km| (km * 1000.0).round() as i64),
            Sort::Price => entry.listing.terms.price_per_unit.minor(),
            // Newest first: the larger position comes first.
            Sort::Recency => -i64::try_from(entry.published_position).unwrap_or(i64::MAX),
        };
        Key { value, id: entry.listing.id }
    }

    /// Runs the query: every match after `self.after` in the order asked, one page of them.
    pub fn run(&self, projection: &Projection) -> Page {
        let mut keyed: Vec<(Key, &Entry, Option<f64>)> = match &self.near {
            // Nearest first: the index yields entries in distance order, so the page is
            // complete once it holds one more than a page and the next entry is farther
            // (by more than a metre, for the rounding of the key) than all it holds.
            Some((point, radius_km)) if self.sort == Sort::Distance => {
                let mut keyed = Vec::new();
                let mut farthest = i64::MIN;
                for (entry, distance_km) in projection.within(point, f64::from(*radius_km)) {
                    if !self.matches(entry) {
                        continue;
                    }
                    let key = self.key(entry, Some(distance_km));
                    if self.after.is_some_and(|after| key <= after) {
                        continue;
                    }
                    if keyed.len() > self.page_size && key.value > farthest.saturating_add(1) {
                        break;
                    }
                    farthest = farthest.max(key.value);
                    keyed.push((key, entry, Some(distance_km)));
                }
                keyed
            }
            Some((point, radius_km)) => projection
                .within(point, f64::from(*radius_km))
                .filter(|(entry, _)| self.matches(entry))
                .map(|(entry, distance_km)| (self.key(entry, Some(distance_km)), entry, Some(distance_km)))
                .collect(),
            None => projection
                .entries()
                .filter(|entry| self.matches(entry))
                .map(|entry| (self.key(entry, None), entry, None))
                .collect(),
        };
        if let Some(after) = self.after {
            keyed.retain(|(key, _, _)| *key > after);
        }
        let take = self.page_size.min(keyed.len());
        if take < keyed.len() {
            keyed.select_nth_unstable_by(take, |a, b| a.0.cmp(&b.0));
            keyed.truncate(take + 1);
        }
        keyed.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(Ordering::Equal));
        let more = keyed.len() > take;
        keyed.truncate(take);
        let next = if more { keyed.last().map(|(key, _, _)| *key) } else { None };
        let hits = keyed
            .into_iter()
            .map(|(_, entry, distance_km)| Hit { entry: entry.clone(), distance_km })
            .collect();
        Page { hits, next }
    }
}
