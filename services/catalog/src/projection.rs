//! The catalog's state: every listing the log told of (drafts too, since a draft may be
//! published later), the open published ones as entries, and an index of their points.
//! Pure: events in, state out; no I/O, no clock.
//!
//! The index is two R-trees: one bulk-loaded by a rebuild that afterwards only loses entries,
//! and one that takes every entry indexed since. `rstar` 0.12's bulk load can put leaves at
//! different depths, and an insert into such a tree then panics ("This is a bug in rstar",
//! georust/rstar#239), which would poison the catalog's lock; removing from it is safe, and a
//! tree built by inserts alone is always well formed. A search reads both, nearest first.

use std::collections::{BTreeMap, HashMap};

use rstar::RTree;
use rstar::primitives::GeomWithData;
use symbiose_domain::GeoPoint;
use symbiose_listings_contract::listing::{self, Event, Listing, ListingState};
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
    /// Boxed as its state holds it, so a listing moves between its state and its entry without
    /// a copy.
    pub listing: Box<Listing>,
    /// The log position of its last publication: the recency order.
    pub published_position: u64,
    /// The listing's version: its last event's place in its stream.
    pub version: u64,
}

/// The catalog's state, built by [`Projection::apply`] one event at a time.
#[derive(Debug, Default)]
pub struct Projection {
    /// Every listing the log told of but the open ones, whose state is their entry: a listing
    /// is in `listings` or in `entries`, never in both.
    listings: HashMap<Uuid, Folded>,
    entries: BTreeMap<Uuid, Entry>,
    /// The points of the entries open at the last rebuild, bulk-loaded, then only removed from.
    loaded: RTree<IndexedPoint>,
    /// The points of every entry indexed since, one insert at a time.
    inserted: RTree<IndexedPoint>,
}

impl Projection {
    /// Applies the listing event `event` of listing `id`, at log `position`, the `version`-th
    /// of its stream.
    pub fn apply(&mut self, id: Uuid, version: u64, position: u64, event: &Event) {
        let mut folded = match self.entries.remove(&id) {
            Some(entry) => {
                let point = IndexedPoint::new(to_space(&entry.listing.place.point), id);
                let removed = self.loaded.remove(&point).or_else(|| self.inserted.remove(&point));
                debug_assert!(removed.is_some(), "every entry is in the index");
                Folded::from(entry)
            }
            None => self.listings.remove(&id).unwrap_or_default(),
        };
        folded.fold(version, position, event);
        match folded.into_entry() {
            Ok(entry) => {
                self.inserted.insert(IndexedPoint::new(to_space(&entry.listing.place.point), id));
                self.entries.insert(id, entry);
            }
            Err(folded) => {
                self.listings.insert(id, folded);
            }
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
        let center = to_space(point);
        // Both trees nearest first, merged: the nearer of the two next points comes first.
        let mut loaded = self.loaded.nearest_neighbor_iter_with_distance_2(&center).peekable();
        let mut inserted = self.inserted.nearest_neighbor_iter_with_distance_2(&center).peekable();
        std::iter::from_fn(move || match (loaded.peek(), inserted.peek()) {
            (Some((_, loaded_2)), Some((_, inserted_2))) if inserted_2 < loaded_2 => inserted.next(),
            (Some(_), _) => loaded.next(),
            (None, _) => inserted.next(),
        })
        .take_while(move |(_, distance_2)| *distance_2 <= chord_km * chord_km)
        .filter_map(move |(indexed, _)| {
            let entry = self.entries.get(&indexed.data)?;
            let distance_km = point.distance_km(&entry.listing.place.point);
            (distance_km <= radius_km).then_some((entry, distance_km))
        })
    }

    /// Whether the index holds exactly the entries' points, each once (for tests): as many
    /// points as entries, and every entry's point in one tree or the other.
    pub fn index_matches_entries(&self) -> bool {
        self.loaded.size() + self.inserted.size() == self.entries.len()
            && self.entries.iter().all(|(id, entry)| {
                let point = IndexedPoint::new(to_space(&entry.listing.place.point), *id);
                self.loaded.contains(&point) || self.inserted.contains(&point)
            })
    }

    /// Every listing's state and version, in id order (for tests).
    pub fn listing_states(&self) -> BTreeMap<Uuid, (ListingState, u64)> {
        let open = self
            .entries
            .iter()
            .map(|(id, entry)| (*id, (ListingState::Published(entry.listing.clone()), entry.version)));
        let others = self.listings.iter().map(|(id, folded)| (*id, (folded.state.clone(), folded.version)));
        open.chain(others).collect()
    }
}

/// A listing as a snapshot of the catalog holds it: its state (an open one as its entry's
/// listing), its version and the position of its last publication.
#[derive(serde::Serialize)]
struct SavedRef<'a> {
    id: Uuid,
    state: SavedStateRef<'a>,
    version: u64,
    published_position: Option<u64>,
}

#[derive(serde::Serialize)]
enum SavedStateRef<'a> {
    Folded(&'a ListingState),
    Open(&'a Listing),
}

#[derive(serde::Deserialize)]
struct Saved {
    id: Uuid,
    state: SavedState,
    version: u64,
    published_position: Option<u64>,
}

#[derive(serde::Deserialize)]
enum SavedState {
    Folded(ListingState),
    Open(Box<Listing>),
}

impl Projection {
    /// The projection's listings, encoded for a snapshot: [`Rebuild::restore`] reads them back.
    pub fn encode(&self) -> Result<Vec<u8>, String> {
        let open = self.entries.iter().map(|(id, entry)| SavedRef {
            id: *id,
            state: SavedStateRef::Open(&entry.listing),
            version: entry.version,
            published_position: Some(entry.published_position),
        });
        let others = self.listings.iter().map(|(id, folded)| SavedRef {
            id: *id,
            state: SavedStateRef::Folded(&folded.state),
            version: folded.version,
            published_position: folded.published_position,
        });
        let saved: Vec<SavedRef<'_>> = open.chain(others).collect();
        symbiose_shell::snapshot::encode(&saved)
    }
}

/// A rebuild in progress: the listings' states folded from their events, with no entry and no
/// index until [`Rebuild::finish`] builds them once (bulk-loading the R-tree is much faster
/// than a million inserts; later entries go to the other tree, see the module's
/// documentation).
#[derive(Debug, Default)]
pub struct Rebuild {
    listings: HashMap<Uuid, Folded>,
}

impl Rebuild {
    /// The rebuild a snapshot's `bytes` ([`Projection::encode`]) hold, to fold the events
    /// after it into and finish.
    pub fn restore(bytes: &[u8]) -> Result<Rebuild, String> {
        let saved: Vec<Saved> = symbiose_shell::snapshot::decode(bytes)?;
        let listings = saved
            .into_iter()
            .map(|Saved { id, state, version, published_position }| {
                let state = match state {
                    SavedState::Folded(state) => state,
                    SavedState::Open(listing) => ListingState::Published(listing),
                };
                (id, Folded { open_at: open_at(&state), state, version, published_position })
            })
            .collect();
        Ok(Rebuild { listings })
    }

    /// Folds the listing event `event` of listing `id`, at log `position`, the `version`-th
    /// of its stream.
    pub fn push(&mut self, id: Uuid, version: u64, position: u64, event: &Event) {
        self.listings.entry(id).or_default().fold(version, position, event);
    }

    /// The projection of everything pushed. The open listings move from their states to their
    /// entries without a look at the listings themselves (a look each, at a million listings
    /// seldom in cache, would cost more than all the rest); the R-tree is bulk-loaded on a
    /// second thread while the entries are put in id order.
    pub fn finish(self) -> Projection {
        let Rebuild { mut listings } = self;
        let mut open = Vec::new();
        let mut points = Vec::new();
        listings.retain(|id, folded| {
            let Some(point) = folded.open_at else { return true };
            match std::mem::take(folded).into_entry() {
                Ok(entry) => {
                    open.push((*id, entry));
                    points.push((*id, point));
                    false
                }
                Err(shut) => {
                    *folded = shut;
                    true
                }
            }
        });
        listings.shrink_to_fit();
        let (entries, loaded) = std::thread::scope(|scope| {
            let loaded = scope.spawn(move || {
                RTree::bulk_load(
                    points.into_iter().map(|(id, point)| IndexedPoint::new(to_space(&point), id)).collect(),
                )
            });
            // In id order, so that building the map is one linear pass.
            open.sort_unstable_by_key(|(id, _)| id.as_u128());
            let entries: BTreeMap<Uuid, Entry> = open.into_iter().collect();
            (entries, loaded.join().expect("bulk-loading the R-tree does not panic"))
        });
        Projection { listings, entries, loaded, inserted: RTree::new() }
    }
}

/// A listing's state folded from its events, with what an entry needs besides.
#[derive(Debug, Default)]
struct Folded {
    state: ListingState,
    /// Its last event's place in its stream.
    version: u64,
    /// The log position of its last `Published` event.
    published_position: Option<u64>,
    /// Where it is if it is open (published, with something left to reserve), as of its last
    /// event: known while the listing is at hand, so a rebuild finishes without looking at it.
    open_at: Option<GeoPoint>,
}

impl Folded {
    fn fold(&mut self, version: u64, position: u64, event: &Event) {
        if matches!(event, Event::Published) {
            self.published_position = Some(position);
        }
        self.state = listing::evolve(std::mem::take(&mut self.state), event);
        self.version = version;
        self.open_at = open_at(&self.state);
    }

    /// The entry of an open listing; any other state back as it was.
    fn into_entry(self) -> Result<Entry, Folded> {
        match self.state {
            ListingState::Published(listing) if self.open_at.is_some() => Ok(Entry {
                listing,
                // A listing is published only by a `Published` event, which set it.
                published_position: self.published_position.unwrap_or_default(),
                version: self.version,
            }),
            state => Err(Folded { state, ..self }),
        }
    }
}

impl From<Entry> for Folded {
    fn from(entry: Entry) -> Folded {
        Folded {
            version: entry.version,
            open_at: Some(entry.listing.place.point),
            published_position: Some(entry.published_position),
            state: ListingState::Published(entry.listing),
        }
    }
}

/// Where a listing in `state` is, if it is open: published, with something left to reserve.
fn open_at(state: &ListingState) -> Option<GeoPoint> {
    match state {
        ListingState::Published(listing) if listing.available_milli() > 0 => Some(listing.place.point),
        _ => None,
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
