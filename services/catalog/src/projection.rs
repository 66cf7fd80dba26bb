//! The catalog's state: every listing the log told of (drafts too, since a draft may be
//! published later), the open published ones as entries, and an R-tree of their points.
//! Pure: events in, state out; no I/O, no clock.

use std::collections::{BTreeMap, HashMap};

use rstar::RTree;
use rstar::primitives::GeomWithData;
use symbiose_domain::GeoPoint;
use symbiose_listings::listing::{self, Event, Listing, ListingState};
use uuid::Uuid;

/// The earth's radius of the domain's distances, in km, for the index's coordinates.
const EARTH_RADIUS_KM: f64 = symbiose_domain::geo::EARTH_RADIUS_M / 1000.0;

/// A point of the index: the listing's place on a sphere of the earth's radius (x, y, z in
/// km), so the straight-line (chord) distance grows with the great-circle distance and the
/// tree's nearest-first order is the order on the map.
pub(crate) type IndexedPoint = GeomWithData<[f64; 3], Uuid>;

/// An open, published listing as the catalog shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub listing: Listing,
    /// The log position of its last publication: the recency order.
    pub published_position: u64,
    /// The listing's version: its last event's place in its stream.
    pub version: u64,
}

/// The catalog's state, built by [`Projection::apply`] one event at a time.
#[derive(Debug, Default)]
pub struct Projection {
    listings: HashMap<Uuid, (ListingState, u64)>,
    published_at: HashMap<Uuid, u64>,
    entries: BTreeMap<Uuid, Entry>,
    index: RTree<IndexedPoint>,
}

impl Projection {
    /// Applies the listing event `event` of listing `id`, at log `position`, the `version`-th
    /// of its stream.
    pub fn apply(&mut self, id: Uuid, version: u64, position: u64, event: &Event) {
        if matches!(event, Event::Published) {
            self.published_at.insert(id, position);
        }
        let (state, _) = self.listings.remove(&id).unwrap_or_default();
        let state = listing::evolve(state, event);
        let open = match &state {
            ListingState::Published(listing) if listing.available_milli() > 0 => {
                Some(listing.as_ref().clone())
            }
            _ => None,
        };
        self.listings.insert(id, (state, version));
        if let Some(old) = self.entries.remove(&id) {
            let removed = self.index.remove(&IndexedPoint::new(to_space(&old.listing.place.point), id));
            debug_assert!(removed.is_some(), "every entry is in the index");
        }
        if let Some(listing) = open {
            let published_position = self.published_at.get(&id).copied().unwrap_or(position);
            self.index.insert(IndexedPoint::new(to_space(&listing.place.point), id));
            self.entries.insert(id, Entry { listing, published_position, version });
        }
    }

    /// Builds the state of `events` (listing id, version, position, event) at once, the way a
    /// rebuild does: folding first, then bulk-loading the index.
    pub fn rebuild<'a>(events: impl IntoIterator<Item = (Uuid, u64, u64, &'a Event)>) -> Projection {
        let mut rebuild = Rebuild::default();
        for (id, version, position, event) in events {
            rebuild.push(id, version, position, event);
        }
        rebuild.finish()
    }

    pub fn entry(&self, id: Uuid) -> Option<&Entry> {
        self.entries.get(&id)
    }

    /// Every open entry, in listing id order.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The open entries within `radius_km` of `point`, nearest first, with their distance.
    pub fn within(&self, point: &GeoPoint, radius_km: f64) -> impl Iterator<Item = (&Entry, f64)> {
        let chord_km = chord_of_arc_km(radius_km);
        self.index
            .nearest_neighbor_iter_with_distance_2(&to_space(point))
            .take_while(move |(_, distance_2)| *distance_2 <= chord_km * chord_km)
            .filter_map(move |(indexed, _)| {
                let entry = self.entries.get(&indexed.data)?;
                let distance_km = point.distance_km(&entry.listing.place.point);
                (distance_km <= radius_km).then_some((entry, distance_km))
            })
    }

    /// Whether the index holds exactly the entries' points (for tests).
    pub fn index_matches_entries(&self) -> bool {
        self.index.size() == self.entries.len()
            && self.entries.iter().all(|(id, entry)| {
                self.index.contains(&IndexedPoint::new(to_space(&entry.listing.place.point), *id))
            })
    }

    /// Every listing's state and version, in id order (for tests).
    pub fn listing_states(&self) -> BTreeMap<Uuid, (&ListingState, u64)> {
        self.listings.iter().map(|(id, (state, version))| (*id, (state, *version))).collect()
    }
}

/// A rebuild in progress: the listings' states folded from their events, with no entry and no
/// index until [`Rebuild::finish`] builds them once (bulk-loading the R-tree is much faster
/// than a million inserts).
#[derive(Debug, Default)]
pub struct Rebuild {
    published_at: HashMap<Uuid, u64>,
    states: HashMap<Uuid, (ListingState, u64)>,
}

impl Rebuild {
    /// Folds the listing event `event` of listing `id`, at log `position`, the `version`-th
    /// of its stream.
    pub fn push(&mut self, id: Uuid, version: u64, position: u64, event: &Event) {
        if matches!(event, Event::Published) {
            self.published_at.insert(id, position);
        }
        let (state, _) = self.states.remove(&id).unwrap_or_default();
        self.states.insert(id, (listing::evolve(state, event), version));
    }

    /// The projection of everything pushed.
    pub fn finish(self) -> Projection {
        let Rebuild { published_at, states } = self;
        let mut entries = BTreeMap::new();
        let mut points = Vec::new();
        for (id, (state, version)) in &states {
            if let ListingState::Published(listing) = state
                && listing.available_milli() > 0
            {
                let published_position = published_at.get(id).copied().unwrap_or(0);
                points.push(IndexedPoint::new(to_space(&listing.place.point), *id));
                entries.insert(
                    *id,
                    Entry { listing: listing.as_ref().clone(), published_position, version: *version },
                );
            }
        }
        Projection { listings: states, published_at, entries, index: RTree::bulk_load(points) }
    }
}

/// A point on the sphere, in km from the earth's centre.
fn to_space(point: &GeoPoint) -> [f64; 3] {
    let (latitude, longitude) = (point.latitude().to_radians(), point.longitude().to_radians());
    [
        EARTH_RADIUS_KM * latitude.cos() * longitude.cos(),
        EARTH_RADIUS_KM * latitude.cos() * longitude.sin(),
        EARTH_RADIUS_KM * latitude.sin(),
    ]
}

/// The chord of a great-circle arc, slightly widened so rounding never drops a point at the
/// edge (the exact distance is checked after).
fn chord_of_arc_km(arc_km: f64) -> f64 {
    2.0 * EARTH_RADIUS_KM
        * (arc_km / (2.0 * EARTH_RADIUS_KM)).min(std::f64::consts::FRAC_PI_2).sin()
        * 1.000_001
        + 0.001
}

#[cfg(test)]
mod tests;
