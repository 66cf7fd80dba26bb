//! `MatchIndex`: the open candidates, and the best compatible counterparts of a listing.
//!
//! Candidates live in a slab; their places are in R-trees (`rstar`), per partition: side,
//! material family, unit, currency and waste code. The rules demand the family, unit and
//! currency equal, so a search reads only the partitions of its group; and it reads only the
//! waste codes the material rule admits: for an offer, the requests naming its code and those
//! naming none; for a request naming a code, the offers of that code and of the codes it also
//! accepts (a request is indexed under each); for a request naming none, every code.
//!
//! Points lie on a sphere of the earth's radius (x, y, z in km), as in the catalog, so a ball
//! around a point in space is a disc around it on the map. Each leaf carries a summary of what
//! the rules read but the accepted codes and the quality's text (owner, waste code, quality,
//! quantities, window, price, country, reach), so entries that cannot match are passed over
//! without reading the candidate; what passes is checked with `rules::check`, the one
//! definition of a match, before `find` returns it. Nodes are wide (up to 64 entries, see
//! `WideNodes`): a search is bound by memory reads, not by comparisons.
//!
//! A partition has two trees: one bulk-loaded by [`MatchIndex::bulk_load`] that afterwards
//! only loses entries, and one that takes every later insert. `rstar` 0.12's bulk load can put
//! leaves at different depths, and an insert into such a tree then panics ("This is a bug in
//! rstar", georust/rstar#239); a tree built by inserts alone is always well formed. A search
//! reads both.
//!
//! A search reads the counterpart partitions in widening rings around the listing's place: a
//! disc of [`RING_KM_FIRST`] km, then rings out to [`RING_GROWTH`] times the last radius (each
//! entry is read once: a ring's selection skips subtrees inside the last disc), up to the
//! search radius (for a request, its maximum distance; for an offer, the largest maximum
//! distance of the indexed requests of its partition, and no farther than it delivers if it
//! only delivers). It stops widening once the summaries admit [`COMPATIBLE_ENOUGH`]
//! counterparts, and stops altogether after [`COMPATIBLE_MAX`] admitted or [`EXAMINED_MAX`]
//! entries read. `find` then ranks what it found by score, computed from the summaries, and
//! checks the best with `rules::check`, down the ranking, until it holds `limit` matches.
//!
//! So the best `limit` are chosen among the compatible counterparts within the last disc read
//! in full (the nearest ones) and those met in the next ring before a bound stopped it. That is
//! a deliberate bound, so a search costs about the same with a thousand or a million listings
//! around: a farther counterpart that would score higher on price is not seen once enough
//! nearer ones are.

use std::collections::{BTreeMap, HashMap};

use rstar::primitives::GeomWithData;
use rstar::{AABB, PointDistance, RStarInsertionStrategy, RTree, RTreeParams, SelectionFunction};
use symbiose_domain::{Country, Currency, GeoPoint, MaterialFamily, Unit, WasteCode};
use symbiose_listings_contract::listing::{Delivery, Side};
use symbiose_listings_contract::organization::Permit;
use uuid::Uuid;

use crate::rules::{self, QualityKey};
use crate::score::{self, Score};
use crate::{Candidate, Fit};

/// Most matches one `find` returns.
pub const MATCHES_MAX: usize = 100;
/// Radius of the first disc a search reads, in km.
pub const RING_KM_FIRST: f64 = 5.0;
/// Each ring of a search reaches this many times as far as the last (the area read is four
/// times the last): few rings, so few descents of the trees.
pub const RING_GROWTH: f64 = 2.0;
/// Counterparts the summaries admit after which a search stops widening.
pub const COMPATIBLE_ENOUGH: usize = 32;
/// Counterparts the summaries admit after which a search stops.
pub const COMPATIBLE_MAX: usize = 256;
/// Entries a search reads at most, over all its rings.
pub const EXAMINED_MAX: usize = 512;

/// The earth's radius of the domain's distances, in km, for the index's coordinates.
const EARTH_RADIUS_KM: f64 = symbiose_domain::geo::EARTH_RADIUS_M / 1000.0;
/// Margin of the leaf summary's distance test, in km: the chord-derived distance and the
/// haversine differ by rounding only, and the summary must never refuse what the rules admit.
const SUMMARY_DISTANCE_MARGIN_KM: f64 = 0.01;

/// A compatible counterpart, with why it fits and how well.
#[derive(Debug, Clone, PartialEq)]
pub struct Match {
    pub counterpart: Uuid,
    pub fit: Fit,
    pub score: Score,
}

/// The open candidates of both sides, and the permits of their owners.
#[derive(Debug, Default)]
pub struct MatchIndex {
    slab: Vec<Option<Candidate>>,
    free: Vec<usize>,
    slots: HashMap<Uuid, usize>,
    groups: HashMap<GroupKey, HashMap<Option<WasteCode>, Partition>>,
    permits: HashMap<Uuid, Vec<Permit>>,
}

/// The candidates of one side, family, unit and currency: only the other side's group of the
/// same family, unit and currency can match them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct GroupKey {
    offers: bool,
    family: MaterialFamily,
    unit: Unit,
    currency: Currency,
}

impl GroupKey {
    fn of(candidate: &Candidate) -> GroupKey {
        GroupKey {
            offers: candidate.side == Side::Offer,
            family: candidate.family,
            unit: candidate.unit,
            currency: candidate.price_per_unit.currency(),
        }
    }

    fn counterparts(self) -> GroupKey {
        GroupKey { offers: !self.offers, ..self }
    }
}

/// The codes a candidate is indexed under: an offer's own; a request's own and those it also
/// accepts, or none when it names none.
fn indexed_codes(candidate: &Candidate) -> Vec<Option<WasteCode>> {
    let mut codes = vec![candidate.waste_code];
    if candidate.side == Side::Request && candidate.waste_code.is_some() {
        for code in &candidate.accepted_waste_codes {
            if !codes.contains(&Some(*code)) {
                codes.push(Some(*code));
            }
        }
    }
    codes
}

#[derive(Debug, Default)]
struct Partition {
    /// Bulk-loaded, then only removed from.
    loaded: RTree<Leaf, WideNodes>,
    /// Every candidate inserted since, one at a time.
    inserted: RTree<Leaf, WideNodes>,
    /// How many candidates have each reach: for requests, the largest is an offer's radius.
    reaches: BTreeMap<u32, usize>,
}

impl Partition {
    fn largest_reach_km(&self) -> u32 {
        self.reaches.keys().next_back().copied().unwrap_or(0)
    }

    fn add_reach(&mut self, reach_km: u32) {
        *self.reaches.entry(reach_km).or_default() += 1;
    }

    fn remove_reach(&mut self, reach_km: u32) {
        if let Some(count) = self.reaches.get_mut(&reach_km) {
            *count -= 1;
            if *count == 0 {
                self.reaches.remove(&reach_km);
            }
        }
    }

    /// The leaves of both trees in `ring`.
    fn in_ring(&self, ring: Ring) -> impl Iterator<Item = &Leaf> {
        self.loaded
            .locate_with_selection_function(ring)
            .chain(self.inserted.locate_with_selection_function(ring))
    }
}

/// The points farther than `inner_2` and at most `outer_2` from `center` (squared straight-line
/// distances in space, km^2): one ring of a search.
#[derive(Debug, Clone, Copy)]
struct Ring {
    center: [f64; 3],
    inner_2: f64,
    outer_2: f64,
}

impl SelectionFunction<Leaf> for Ring {
    fn should_unpack_parent(&self, envelope: &AABB<[f64; 3]>) -> bool {
        let (lower, upper) = (envelope.lower(), envelope.upper());
        let farthest_2: f64 = (0..3)
            .map(|axis| {
                let farthest =
                    (self.center[axis] - lower[axis]).abs().max((upper[axis] - self.center[axis]).abs());
                farthest * farthest
            })
            .sum();
        envelope.distance_2(&self.center) <= self.outer_2 && farthest_2 > self.inner_2
    }

    fn should_unpack_leaf(&self, leaf: &Leaf) -> bool {
        let distance_2 = leaf.geom().distance_2(&self.center);
        distance_2 > self.inner_2 && distance_2 <= self.outer_2
    }
}

/// Nodes of up to 64 entries, not `rstar`'s default 6: a search is bound by memory, not by
/// comparisons, and wide nodes make the trees shallow and each node's entries contiguous
/// (`matching-bench` on the 2-core machine: p99 of `find` about 0.33 ms with 6, 0.23 ms with
/// 32, 0.20 to 0.25 ms with 64).
#[derive(Debug)]
struct WideNodes;

impl RTreeParams for WideNodes {
    const MIN_SIZE: usize = 24;
    const MAX_SIZE: usize = 64;
    const REINSERTION_COUNT: usize = 16;
    type DefaultInsertionStrategy = RStarInsertionStrategy;
}

/// A leaf of a tree: the candidate's point on the sphere and its summary.
type Leaf = GeomWithData<[f64; 3], Summary>;

/// What the rules read but the accepted codes and texts, next to the point so a search reads
/// it without a lookup.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Summary {
    slot: usize,
    owner: Uuid,
    waste_code: Option<WasteCode>,
    /// A request that accepts other codes besides its own.
    more_codes: bool,
    quality: QualityKey,
    price_minor: i64,
    available_milli: i64,
    minimum_lot_milli: i64,
    available_from_ms: i64,
    available_until_ms: i64,
    country: Country,
    accepts_other_countries: bool,
    /// A request's maximum distance; an offer's delivery distance if it only delivers, else
    /// unlimited.
    reach_km: u32,
    published_position: u64,
}

impl Summary {
    fn of(candidate: &Candidate, slot: usize) -> Summary {
        Summary {
            slot,
            owner: candidate.owner,
            waste_code: candidate.waste_code,
            more_codes: !candidate.accepted_waste_codes.is_empty(),
            quality: QualityKey::of(&candidate.quality),
            price_minor: candidate.price_per_unit.minor(),
            available_milli: candidate.available_milli,
            minimum_lot_milli: candidate.minimum_lot_milli,
            available_from_ms: candidate.available_from_ms,
            available_until_ms: candidate.available_until_ms,
            country: candidate.place.country,
            accepts_other_countries: candidate.accepts_other_countries,
            reach_km: reach_km(candidate),
            published_position: candidate.published_position,
        }
    }

    /// The score's total of the pair, from the summaries: the one `score::score` gives once the
    /// rules admit the pair at `distance_km`.
    fn total(offer: &Summary, request: &Summary, distance_km: f64, now_ms: i64) -> f64 {
        let lot_milli = offer.available_milli.min(request.available_milli);
        let [distance, price, quantity, timing] = score::components(
            (distance_km, request.reach_km),
            (offer.price_minor, request.price_minor),
            (lot_milli, request.available_milli),
            (offer.available_from_ms, (request.available_from_ms, request.available_until_ms)),
            now_ms,
        );
        score::weighted(distance, price, quantity, timing)
    }

    /// Whether the rules the summaries hold admit the pair at `distance_km` (the permit rule
    /// aside): a necessary condition of `rules::check`, never a sufficient one.
    fn may_match(offer: &Summary, request: &Summary, distance_km: f64, now_ms: i64) -> bool {
        let material = match request.waste_code {
            None => true,
            Some(wanted) => offer.waste_code.is_some_and(|code| code == wanted || request.more_codes),
        };
        offer.owner != request.owner
            && material
            && rules::quality_satisfies(offer.quality, request.quality)
            && offer.price_minor <= request.price_minor
            && (offer.country == request.country || request.accepts_other_countries)
            && rules::reservable_lot_milli(
                (offer.available_milli, offer.minimum_lot_milli),
                (request.available_milli, request.minimum_lot_milli),
            )
            .is_some()
            && rules::windows_meet(
                (offer.available_from_ms, offer.available_until_ms),
                (request.available_from_ms, request.available_until_ms),
                now_ms,
            )
            && distance_km <= f64::from(offer.reach_km.min(request.reach_km)) + SUMMARY_DISTANCE_MARGIN_KM
    }
}

fn reach_km(candidate: &Candidate) -> u32 {
    match (candidate.side, candidate.delivery) {
        (Side::Request, _) => candidate.max_distance_km,
        (Side::Offer, Delivery::SellerDelivers { within_km }) => within_km,
        (Side::Offer, _) => u32::MAX,
    }
}

impl MatchIndex {
    pub fn new() -> MatchIndex {
        MatchIndex::default()
    }

    /// An index of `candidates` built at once (bulk-loading each tree is much faster than
    /// inserting one candidate at a time). A later candidate of the same id replaces an
    /// earlier one; candidates with nothing left are left out.
    pub fn bulk_load(candidates: impl IntoIterator<Item = Candidate>) -> MatchIndex {
        let mut index = MatchIndex::new();
        for candidate in candidates {
            if let Some(slot) = index.slots.remove(&candidate.id) {
                index.slab[slot] = None;
                index.free.push(slot);
            }
            if candidate.is_open() {
                let slot = index.free_slot();
                index.slots.insert(candidate.id, slot);
                index.slab[slot] = Some(candidate);
            }
        }
        let mut leaves: HashMap<(GroupKey, Option<WasteCode>), Vec<Leaf>> = HashMap::new();
        for (slot, candidate) in index.slab.iter().enumerate() {
            if let Some(candidate) = candidate {
                let group = GroupKey::of(candidate);
                for code in indexed_codes(candidate) {
                    leaves.entry((group, code)).or_default().push(leaf(candidate, slot));
                    let partition = index.groups.entry(group).or_default().entry(code).or_default();
                    partition.add_reach(reach_km(candidate));
                }
            }
        }
        for ((group, code), leaves) in leaves {
            index.groups.entry(group).or_default().entry(code).or_default().loaded =
                RTree::bulk_load_with_params(leaves);
        }
        index
    }

    /// Adds `candidate`, or replaces the candidate of its id. A candidate with nothing left
    /// (see [`Candidate::is_open`]) is removed instead.
    pub fn upsert(&mut self, candidate: Candidate) {
        self.remove(candidate.id);
        if !candidate.is_open() {
            return;
        }
        let slot = self.free_slot();
        let group = self.groups.entry(GroupKey::of(&candidate)).or_default();
        for code in indexed_codes(&candidate) {
            let partition = group.entry(code).or_default();
            partition.inserted.insert(leaf(&candidate, slot));
            partition.add_reach(reach_km(&candidate));
        }
        self.slots.insert(candidate.id, slot);
        self.slab[slot] = Some(candidate);
    }

    /// Removes the candidate of `id`, and returns it if it was there.
    pub fn remove(&mut self, id: Uuid) -> Option<Candidate> {
        let slot = self.slots.remove(&id)?;
        let candidate = self.slab[slot].take()?;
        self.free.push(slot);
        let leaf = leaf(&candidate, slot);
        for code in indexed_codes(&candidate) {
            if let Some(partition) =
                self.groups.get_mut(&GroupKey::of(&candidate)).and_then(|group| group.get_mut(&code))
            {
                let removed = partition.inserted.remove(&leaf).or_else(|| partition.loaded.remove(&leaf));
                debug_assert!(
                    removed.is_some(),
                    "every stored candidate is in a tree of each partition of its codes"
                );
                partition.remove_reach(reach_km(&candidate));
            }
        }
        Some(candidate)
    }

    /// Sets the permits of organization `organization` (its treatment permits decide whether
    /// it may receive hazardous waste). No permits forgets it.
    pub fn set_permits(&mut self, organization: Uuid, permits: Vec<Permit>) {
        if permits.is_empty() {
            self.permits.remove(&organization);
        } else {
            self.permits.insert(organization, permits);
        }
    }

    /// The permits of `organization`, none if unknown.
    pub fn permits_of(&self, organization: Uuid) -> &[Permit] {
        self.permits.get(&organization).map_or(&[], Vec::as_slice)
    }

    pub fn get(&self, id: Uuid) -> Option<&Candidate> {
        self.slab.get(*self.slots.get(&id)?)?.as_ref()
    }

    /// How many open candidates the index holds.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The best `limit` (at most [`MATCHES_MAX`]) compatible counterparts of the indexed
    /// candidate `id`, best first; `None` if it is not indexed.
    pub fn find_for(&self, id: Uuid, limit: usize, now_ms: i64) -> Option<Vec<Match>> {
        Some(self.find(self.get(id)?, limit, now_ms))
    }

    /// The best `limit` (at most [`MATCHES_MAX`]) compatible counterparts of `of`, indexed or
    /// not, best first: requests for an offer, offers for a request. Chosen among the nearest
    /// compatible ones (see the module's documentation). Ties go to the most recently
    /// published, then to the smaller id.
    pub fn find(&self, of: &Candidate, limit: usize, now_ms: i64) -> Vec<Match> {
        let limit = limit.min(MATCHES_MAX);
        if limit == 0 {
            return Vec::new();
        }
        let summary = Summary::of(of, usize::MAX);
        let of_offers = of.side == Side::Request;
        let mut ranked: Vec<(f64, u64, usize)> = self
            .search(of, &summary, now_ms)
            .into_iter()
            .map(|(leaf, distance_km)| {
                let (offer, request) = if of_offers { (leaf, &summary) } else { (&summary, leaf) };
                (Summary::total(offer, request, distance_km, now_ms), leaf.published_position, leaf.slot)
            })
            .collect();
        ranked.sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2)));
        let mut matches: Vec<(Match, u64)> = Vec::with_capacity(limit);
        for (_, _, slot) in ranked {
            if matches.len() == limit {
                break;
            }
            let Some(Some(other)) = self.slab.get(slot) else { continue };
            let (offer, request) = if of_offers { (other, of) } else { (of, other) };
            if let Ok(fit) = rules::check(offer, request, self.buyer_permits(offer, request), now_ms) {
                let score = score::score(offer, request, &fit, now_ms);
                matches.push((Match { counterpart: other.id, fit, score }, other.published_position));
            }
        }
        matches.sort_unstable_by(|(a, a_position), (b, b_position)| {
            a.score
                .best_first(&b.score)
                .then(b_position.cmp(a_position))
                .then(a.counterpart.cmp(&b.counterpart))
        });
        matches.into_iter().map(|(found, _)| found).collect()
    }

    /// The compatible counterparts of `of` within the bounds of a search (see the module's
    /// documentation), nearest first.
    pub(crate) fn compatible(&self, of: &Candidate, now_ms: i64) -> Vec<(&Candidate, Fit)> {
        let summary = Summary::of(of, usize::MAX);
        let mut found: Vec<(&Candidate, Fit)> = self
            .search(of, &summary, now_ms)
            .into_iter()
            .filter_map(|(leaf, _)| {
                let other = self.slab.get(leaf.slot)?.as_ref()?;
                let (offer, request) = if of.side == Side::Request { (other, of) } else { (of, other) };
                let fit = rules::check(offer, request, self.buyer_permits(offer, request), now_ms).ok()?;
                Some((other, fit))
            })
            .collect();
        found.sort_by(|(a, a_fit), (b, b_fit)| {
            a_fit.distance_km.total_cmp(&b_fit.distance_km).then(a.id.cmp(&b.id))
        });
        found
    }

    /// The counterparts of `of` (whose summary is `summary`) the summaries admit, with their
    /// distance in km, within the bounds of a search (see the module's documentation).
    fn search<'a>(&'a self, of: &Candidate, summary: &Summary, now_ms: i64) -> Vec<(&'a Summary, f64)> {
        let mut seen = Vec::new();
        let partitions = self.counterpart_partitions(of);
        let radius_km = f64::from(match of.side {
            Side::Request => of.max_distance_km,
            Side::Offer => partitions
                .iter()
                .map(|partition| partition.largest_reach_km())
                .max()
                .unwrap_or(0)
                .min(reach_km(of)),
        });
        let center = to_space(&of.place.point);
        let of_offers = of.side == Side::Request;
        let mut examined = 0;
        let mut ring = Ring { center, inner_2: -1.0, outer_2: -1.0 };
        let mut disc_km = RING_KM_FIRST.min(radius_km);
        'rings: loop {
            ring.outer_2 = chord_of_arc_km(disc_km).powi(2);
            for leaf in partitions.iter().flat_map(|partition| partition.in_ring(ring)) {
                examined += 1;
                if examined > EXAMINED_MAX {
                    break 'rings;
                }
                let distance_km = arc_of_chord_km(leaf.geom().distance_2(&center).sqrt());
                let (offer, request) = if of_offers { (&leaf.data, summary) } else { (summary, &leaf.data) };
                if Summary::may_match(offer, request, distance_km, now_ms)
                    && self.may_receive(offer, request.owner, now_ms)
                {
                    seen.push((&leaf.data, distance_km));
                    if seen.len() >= COMPATIBLE_MAX {
                        break 'rings;
                    }
                }
            }
            if seen.len() >= COMPATIBLE_ENOUGH || disc_km >= radius_km {
                break;
            }
            ring.inner_2 = ring.outer_2;
            disc_km = (disc_km * RING_GROWTH).min(radius_km);
        }
        seen
    }

    /// The partitions a search for `of` reads: the counterparts of its group under the codes
    /// the material rule admits (see the module's documentation).
    fn counterpart_partitions(&self, of: &Candidate) -> Vec<&Partition> {
        let Some(group) = self.groups.get(&GroupKey::of(of).counterparts()) else {
            return Vec::new();
        };
        match (of.side, of.waste_code) {
            (Side::Offer, Some(code)) => {
                [Some(code), None].iter().filter_map(|code| group.get(code)).collect()
            }
            (Side::Offer, None) => group.get(&None).into_iter().collect(),
            (Side::Request, Some(_)) => indexed_codes(of).iter().filter_map(|code| group.get(code)).collect(),
            (Side::Request, None) => group.values().collect(),
        }
    }

    /// The permits `rules::check` reads for the pair: the buyer's, when the offer is hazardous.
    fn buyer_permits(&self, offer: &Candidate, request: &Candidate) -> &[Permit] {
        if offer.is_hazardous() { self.permits_of(request.owner) } else { &[] }
    }

    /// The permit rule on a summary: whether `buyer` may receive the offer's material.
    fn may_receive(&self, offer: &Summary, buyer: Uuid, now_ms: i64) -> bool {
        match offer.waste_code {
            Some(code) if code.is_hazardous() => {
                self.permits_of(buyer).iter().any(|permit| permit.accepts(code, now_ms))
            }
            _ => true,
        }
    }

    /// The ids of the `count` nearest candidates of the partitions a search for `of` reads, with
    /// no rule applied: the lower bound a search is measured against.
    pub fn nearest(&self, of: &Candidate, count: usize) -> Vec<Uuid> {
        let center = to_space(&of.place.point);
        let mut nearest: Vec<(f64, usize)> = self
            .counterpart_partitions(of)
            .into_iter()
            .flat_map(|partition| [&partition.loaded, &partition.inserted])
            .flat_map(|tree| tree.nearest_neighbor_iter_with_distance_2(&center).take(count))
            .map(|(leaf, distance_2)| (distance_2, leaf.data.slot))
            .collect();
        nearest.sort_by(|a, b| a.0.total_cmp(&b.0));
        nearest
            .into_iter()
            .take(count)
            .filter_map(|(_, slot)| Some(self.slab.get(slot)?.as_ref()?.id))
            .collect()
    }

    /// A free slot of the slab, empty.
    fn free_slot(&mut self) -> usize {
        self.free.pop().unwrap_or_else(|| {
            self.slab.push(None);
            self.slab.len() - 1
        })
    }
}

fn leaf(candidate: &Candidate, slot: usize) -> Leaf {
    Leaf::new(to_space(&candidate.place.point), Summary::of(candidate, slot))
}

/// A point on the sphere, in km from the earth's centre.
pub(crate) fn to_space(point: &GeoPoint) -> [f64; 3] {
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

/// The great-circle arc of a chord, in km.
fn arc_of_chord_km(chord_km: f64) -> f64 {
    2.0 * EARTH_RADIUS_KM * (chord_km / (2.0 * EARTH_RADIUS_KM)).clamp(0.0, 1.0).asin()
}

#[cfg(test)]
mod tests;
