//! `MatchIndex`: the open candidates, and the best compatible counterparts of a listing.
//!
//! Candidates live in a slab; their entries (a point and a summary) are in partitions: side,
//! material family, unit, currency and waste code. The rules demand the family, unit and
//! currency equal, so a search reads only the partitions of its group; and it reads only the
//! waste codes the material rule admits: for an offer, the requests naming its code and those
//! naming none; for a request naming a code, the offers of that code and of the codes it also
//! accepts (a request is indexed under each); for a request naming none, every code.
//!
//! Points lie on a sphere of the earth's radius (x, y, z in km), as in the catalog, so a ball
//! around a point in space is a disc around it on the map. Each entry carries a summary of what
//! the rules read but the accepted codes and the quality's text (owner, waste code, quality,
//! quantities, window, price, country, reach), so entries that cannot match are passed over
//! without reading the candidate; what passes is checked with `rules::check`, the one
//! definition of a match, and scored with `score::score`, before `find` keeps it.
//!
//! A partition keeps its entries in packed trees (see [`tree`]) whose every node carries the
//! bounds of what lies under it: its box in space, its lowest and highest price, quantity,
//! start and end of availability, its largest reach, its countries. From them a search knows,
//! before reading a node, the best score any counterpart under it could reach (the nearest
//! point of the box, the best price, the largest lot, the earliest start, each component at
//! its best, see [`Query::bound`]), or that none of them can match at all.
//!
//! `find` is exact: it returns the best `limit` by score among every compatible counterpart in
//! the index, the same as an exhaustive scan with `rules::check` and `score::score` would, with
//! the same tie-breaks. It walks the nodes of every partition it reads best bound first,
//! keeping the best `limit` matches found so far, and stops once no unread node's bound can
//! reach the last of them: a threshold algorithm. Where the best lie close and cheap, a search
//! reads a few leaves; a request whose best counterpart is far reads farther, as it must.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};

use symbiose_domain::{Country, Currency, GeoPoint, MaterialFamily, Unit, WasteCode};
use symbiose_listings_contract::listing::{Delivery, Side};
use symbiose_listings_contract::organization::Permit;
use uuid::Uuid;

use crate::rules::{self, QualityKey};
use crate::score::{self, Score};
use crate::{Candidate, Fit};

mod tree;

use tree::{Bounds, Entry, Partition, Tree, country_bit};

/// Most matches one `find` returns.
pub const MATCHES_MAX: usize = 100;
/// Compatible offers, the nearest, a consolidation chooses its loads from.
pub const COMPATIBLE_MAX: usize = 32;
/// Entries the search for those reads at most.
pub const EXAMINED_MAX: usize = 4096;

/// The earth's radius of the domain's distances, in km, for the index's coordinates.
const EARTH_RADIUS_KM: f64 = symbiose_domain::geo::EARTH_RADIUS_M / 1000.0;
/// Margin of the distances the index derives from chords, in km: the chord-derived distance and
/// the haversine differ by rounding only, and neither a summary nor a bound may ever refuse or
/// rank below what the rules and the score give.
const SUMMARY_DISTANCE_MARGIN_KM: f64 = 0.01;
/// Slack of the comparisons between a bound and a score: they are computed by the same
/// functions from the same integers, but their distances differ by rounding.
const SCORE_SLACK: f64 = 1e-9;

/// A compatible counterpart, with why it fits and how well.
#[derive(Debug, Clone, PartialEq)]
pub struct Match {
    pub counterpart: Uuid,
    pub fit: Fit,
    pub score: Score,
}

/// The open candidates of both sides, and the permits of their owners. In a snapshot it is
/// its candidates and permits; restoring builds the partitions again.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(from = "SavedIndex")]
pub struct MatchIndex {
    slab: Vec<Option<Candidate>>,
    free: Vec<usize>,
    slots: HashMap<Uuid, usize>,
    groups: HashMap<GroupKey, HashMap<Option<WasteCode>, Partition>>,
    permits: HashMap<Uuid, Vec<Permit>>,
}

/// A [`MatchIndex`] as a snapshot holds it: its candidates in the order of their slots, and
/// the permits.
#[derive(serde::Deserialize)]
struct SavedIndex {
    candidates: Vec<Candidate>,
    permits: HashMap<Uuid, Vec<Permit>>,
}

impl serde::Serialize for MatchIndex {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(serde::Serialize)]
        struct SavedRef<'a> {
            candidates: Vec<&'a Candidate>,
            permits: &'a HashMap<Uuid, Vec<Permit>>,
        }
        SavedRef { candidates: self.slab.iter().flatten().collect(), permits: &self.permits }
            .serialize(serializer)
    }
}

impl From<SavedIndex> for MatchIndex {
    fn from(saved: SavedIndex) -> MatchIndex {
        let mut index = MatchIndex::bulk_load(saved.candidates);
        for (organization, permits) in saved.permits {
            index.set_permits(organization, permits);
        }
        index
    }
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

/// A node waiting in a search, by its key: its bound, or its distance negated.
#[derive(Debug, Clone, Copy)]
struct Pending {
    key: f64,
    tree: u32,
    node: u32,
}

impl PartialEq for Pending {
    fn eq(&self, other: &Pending) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for Pending {}

impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Pending) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Pending {
    fn cmp(&self, other: &Pending) -> Ordering {
        self.key.total_cmp(&other.key)
    }
}

/// An entry waiting in a nearest-first walk, by its squared distance negated.
#[derive(Debug, Clone, Copy)]
struct Near<'a> {
    key: f64,
    entry: &'a Entry,
}

impl Near<'_> {
    fn of<'a>(entry: &'a Entry, center: &[f64; 3]) -> Near<'a> {
        Near { key: -distance_2(&entry.point, center), entry }
    }
}

impl PartialEq for Near<'_> {
    fn eq(&self, other: &Near<'_>) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for Near<'_> {}

impl PartialOrd for Near<'_> {
    fn partial_cmp(&self, other: &Near<'_>) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Near<'_> {
    fn cmp(&self, other: &Near<'_>) -> Ordering {
        self.key.total_cmp(&other.key).then(other.entry.summary.slot.cmp(&self.entry.summary.slot))
    }
}

/// What a search for the counterparts of one candidate reads of it, once.
#[derive(Debug)]
struct Query<'a> {
    of: &'a Candidate,
    summary: Summary,
    center: [f64; 3],
    /// Whether the counterparts are offers (the candidate is a request).
    of_offers: bool,
    country: u8,
    /// The bits of the counterparts' qualities rule 7 admits.
    qualities: u32,
    now_ms: i64,
}

impl Query<'_> {
    fn of(of: &Candidate, now_ms: i64) -> Query<'_> {
        Query {
            of,
            summary: Summary::of(of, usize::MAX),
            center: to_space(&of.place.point),
            of_offers: of.side == Side::Request,
            country: country_bit(of.place.country),
            qualities: QualityKey::of(&of.quality).compatible_bits(of.side == Side::Offer),
            now_ms,
        }
    }

    /// The (offer, request) summaries of the pair of the query's candidate and `other`.
    fn pair<'s>(&'s self, other: &'s Summary) -> (&'s Summary, &'s Summary) {
        if self.of_offers { (other, &self.summary) } else { (&self.summary, other) }
    }

    /// The distance of `entry`, in km, if its summary and the permit rule admit it.
    fn admits(&self, index: &MatchIndex, entry: &Entry) -> Option<f64> {
        let distance_km = arc_of_chord_km(distance_2(&entry.point, &self.center).sqrt());
        let (offer, request) = self.pair(&entry.summary);
        (Summary::may_match(offer, request, distance_km, self.now_ms)
            && index.may_receive(offer, request.owner, self.now_ms))
        .then_some(distance_km)
    }

    /// The best score any counterpart within `bounds` could reach, `None` if none of them can
    /// match: each component at its best over the bounds. The score is monotone in each of
    /// what it reads (lower for a farther point, a dearer offer, a cheaper request, a smaller
    /// lot, a later start), so its value at the bounds' best is at least every entry's.
    fn bound(&self, bounds: &Bounds) -> Option<f64> {
        let query = &self.summary;
        // The chord to the box, never longer than the arc to any point in it.
        let distance_km = (bounds.distance_2(&self.center).sqrt() - SUMMARY_DISTANCE_MARGIN_KM).max(0.0);
        let reach_km = query.reach_km.min(bounds.reach_max);
        let window_start = self.now_ms.max(query.available_from_ms);
        if distance_km > f64::from(reach_km)
            || bounds.qualities & self.qualities == 0
            || bounds.until_max < window_start
            || bounds.from_min > query.available_until_ms
        {
            return None;
        }
        let [distance, price, quantity, timing] = if self.of_offers {
            // The counterparts are offers, the query's candidate the request.
            let wanted = query.available_milli;
            let largest_lot = bounds.available_max.min(wanted);
            if bounds.price_min > query.price_minor
                || largest_lot < query.minimum_lot_milli
                || (!query.accepts_other_countries && bounds.countries & self.country == 0)
            {
                return None;
            }
            score::components(
                (distance_km, query.reach_km),
                (bounds.price_min, query.price_minor),
                (largest_lot, wanted),
                (bounds.from_min, (query.available_from_ms, query.available_until_ms)),
                self.now_ms,
            )
        } else {
            // The counterparts are requests, the query's candidate the offer.
            let available = query.available_milli;
            if bounds.price_max < query.price_minor
                || (bounds.available_max < available && bounds.available_max < query.minimum_lot_milli)
                || available < bounds.minimum_lot_min
                || (!bounds.accepts_other_countries && bounds.countries & self.country == 0)
            {
                return None;
            }
            let smallest_wanted = bounds.available_min;
            score::components(
                (distance_km, bounds.reach_max),
                (query.price_minor, bounds.price_max),
                (available.min(smallest_wanted), smallest_wanted),
                (query.available_from_ms, (bounds.from_max, bounds.until_max)),
                self.now_ms,
            )
        };
        Some(score::weighted(distance, price, quantity, timing))
    }
}

/// The best matches found so far, best first, at most `limit`.
#[derive(Debug)]
struct Best {
    limit: usize,
    /// With the position of each counterpart's publication, the tie-break after the score.
    matches: Vec<(Match, u64)>,
}

impl Best {
    fn new(limit: usize) -> Best {
        Best { limit, matches: Vec::with_capacity(limit + 1) }
    }

    /// Whether a counterpart whose score is at most `bound` could still enter.
    fn may_take(&self, bound: f64) -> bool {
        self.matches.len() < self.limit
            || self.matches.last().is_some_and(|(last, _)| bound + SCORE_SLACK >= last.score.total)
    }

    fn offer(&mut self, found: Match, position: u64) {
        let order = |(a, a_position): &(Match, u64), (b, b_position): &(Match, u64)| {
            a.score
                .best_first(&b.score)
                .then(b_position.cmp(a_position))
                .then(a.counterpart.cmp(&b.counterpart))
        };
        let candidate = (found, position);
        let at = self.matches.partition_point(|each| order(each, &candidate).is_lt());
        if at < self.limit {
            self.matches.insert(at, candidate);
            self.matches.truncate(self.limit);
        }
    }

    fn into_matches(self) -> Vec<Match> {
        self.matches.into_iter().map(|(found, _)| found).collect()
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
        let mut entries: HashMap<(GroupKey, Option<WasteCode>), Vec<Entry>> = HashMap::new();
        for (slot, candidate) in index.slab.iter().enumerate() {
            if let Some(candidate) = candidate {
                let group = GroupKey::of(candidate);
                for code in indexed_codes(candidate) {
                    entries.entry((group, code)).or_default().push(entry(candidate, slot));
                }
            }
        }
        for ((group, code), entries) in entries {
            index.groups.entry(group).or_default().insert(code, Partition::of(entries));
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
            group.entry(code).or_default().insert(entry(&candidate, slot));
        }
        self.slots.insert(candidate.id, slot);
        self.slab[slot] = Some(candidate);
    }

    /// Removes the candidate of `id`, and returns it if it was there.
    pub fn remove(&mut self, id: Uuid) -> Option<Candidate> {
        let slot = self.slots.remove(&id)?;
        let candidate = self.slab[slot].take()?;
        self.free.push(slot);
        let entry = entry(&candidate, slot);
        for code in indexed_codes(&candidate) {
            if let Some(partition) =
                self.groups.get_mut(&GroupKey::of(&candidate)).and_then(|group| group.get_mut(&code))
            {
                let removed = partition.remove(&entry);
                debug_assert!(removed, "every stored candidate is in each partition of its codes");
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
    /// not, best first: requests for an offer, offers for a request. Exact: the best by score
    /// among every compatible counterpart of the index (see the module's documentation). Ties
    /// go to the higher distance component, then to the most recently published, then to the
    /// smaller id.
    pub fn find(&self, of: &Candidate, limit: usize, now_ms: i64) -> Vec<Match> {
        let limit = limit.min(MATCHES_MAX);
        if limit == 0 {
            return Vec::new();
        }
        let query = Query::of(of, now_ms);
        let mut best = Best::new(limit);
        let mut trees: Vec<&Tree> = Vec::new();
        let mut pending = BinaryHeap::new();
        for partition in self.counterpart_partitions(of, Some(now_ms)) {
            for entry in partition.buffer() {
                self.consider(&query, entry, &mut best);
            }
            for tree in partition.trees() {
                let root = tree.root();
                if let Some(bound) = query.bound(&tree.node(root).bounds) {
                    pending.push(Pending { key: bound, tree: trees.len() as u32, node: root });
                }
                trees.push(tree);
            }
        }
        while let Some(Pending { key: bound, tree: at, node }) = pending.pop() {
            if !best.may_take(bound) {
                break;
            }
            let tree = trees[at as usize];
            let read = tree.node(node);
            if read.leaf {
                for entry in tree.leaf_entries(read) {
                    self.consider(&query, entry, &mut best);
                }
                continue;
            }
            for (child, node) in tree.children(read) {
                if node.len > 0
                    && let Some(bound) = query.bound(&node.bounds)
                    && best.may_take(bound)
                {
                    pending.push(Pending { key: bound, tree: at, node: child });
                }
            }
        }
        best.into_matches()
    }

    /// Checks `entry` against `query` and keeps it in `best` if it makes the cut: a bound of its
    /// score first, then its summary, then the rules and the score themselves.
    fn consider(&self, query: &Query, entry: &Entry, best: &mut Best) {
        // The chord is never longer than the arc: a score from it is a bound, found without
        // the arc's trigonometry, and most entries read stop here.
        let chord_km = distance_2(&entry.point, &query.center).sqrt();
        let (offer, request) = query.pair(&entry.summary);
        let reachable =
            Summary::total(offer, request, (chord_km - SUMMARY_DISTANCE_MARGIN_KM).max(0.0), query.now_ms);
        if !best.may_take(reachable) {
            return;
        }
        if query.admits(self, entry).is_none() {
            return;
        }
        let Some(Some(other)) = self.slab.get(entry.summary.slot) else { return };
        let (offer, request) = if query.of_offers { (other, query.of) } else { (query.of, other) };
        if let Ok(fit) = rules::check(offer, request, self.buyer_permits(offer, request), query.now_ms) {
            let score = score::score(offer, request, &fit, query.now_ms);
            best.offer(Match { counterpart: other.id, fit, score }, other.published_position);
        }
    }

    /// The compatible counterparts of `of`, nearest first: at most [`COMPATIBLE_MAX`], among the
    /// first [`EXAMINED_MAX`] entries the summaries admit by the nodes' bounds.
    pub(crate) fn compatible(&self, of: &Candidate, now_ms: i64) -> Vec<(&Candidate, Fit)> {
        let query = Query::of(of, now_ms);
        let mut found: Vec<(&Candidate, Fit)> = Vec::new();
        let mut examined = 0;
        self.walk_nearest(
            of,
            Some(now_ms),
            |bounds| query.bound(bounds).is_some(),
            |entry, _| {
                examined += 1;
                if query.admits(self, entry).is_some()
                    && let Some(Some(other)) = self.slab.get(entry.summary.slot)
                {
                    let (offer, request) = if query.of_offers { (other, of) } else { (of, other) };
                    if let Ok(fit) = rules::check(offer, request, self.buyer_permits(offer, request), now_ms)
                    {
                        found.push((other, fit));
                    }
                }
                found.len() < COMPATIBLE_MAX && examined < EXAMINED_MAX
            },
        );
        found.sort_by(|(a, a_fit), (b, b_fit)| {
            a_fit.distance_km.total_cmp(&b_fit.distance_km).then(a.id.cmp(&b.id))
        });
        found
    }

    /// Visits the entries of the partitions a search for `of` reads (the permit rule applied to
    /// them at `permits_at_ms`, if given), nearest first, through
    /// the nodes `open` accepts, while `visit` (given each entry and its squared distance in
    /// space) asks for more.
    fn walk_nearest(
        &self,
        of: &Candidate,
        permits_at_ms: Option<i64>,
        open: impl Fn(&Bounds) -> bool,
        mut visit: impl FnMut(&Entry, f64) -> bool,
    ) {
        let center = to_space(&of.place.point);
        let mut trees: Vec<&Tree> = Vec::new();
        let mut pending = BinaryHeap::new();
        // Entries read but not visited yet, nearest on top: those of the buffers, then those of
        // each leaf read, which interleave with the nodes still pending.
        let mut near: BinaryHeap<Near> = BinaryHeap::new();
        for partition in self.counterpart_partitions(of, permits_at_ms) {
            near.extend(partition.buffer().iter().map(|entry| Near::of(entry, &center)));
            for tree in partition.trees() {
                let root = tree.node(tree.root());
                if open(&root.bounds) {
                    let key = -root.bounds.distance_2(&center);
                    pending.push(Pending { key, tree: trees.len() as u32, node: tree.root() });
                }
                trees.push(tree);
            }
        }
        loop {
            let next_node = pending.peek().map_or(f64::NEG_INFINITY, |node| node.key);
            if let Some(nearest) = near.peek()
                && nearest.key >= next_node
            {
                let Near { key, entry } = near.pop().expect("peeked");
                if !visit(entry, -key) {
                    return;
                }
                continue;
            }
            let Some(Pending { tree: at, node, .. }) = pending.pop() else { return };
            let tree = trees[at as usize];
            let read = tree.node(node);
            if read.leaf {
                near.extend(tree.leaf_entries(read).iter().map(|entry| Near::of(entry, &center)));
                continue;
            }
            for (child, node) in tree.children(read) {
                if node.len > 0 && open(&node.bounds) {
                    pending.push(Pending { key: -node.bounds.distance_2(&center), tree: at, node: child });
                }
            }
        }
    }

    /// The partitions a search for `of` reads: the counterparts of its group under the codes
    /// the material rule admits (see the module's documentation). With `permits_at_ms`, for a
    /// request, not those of a hazardous code its owner holds no valid permit for: the permit
    /// rule refuses every offer there.
    fn counterpart_partitions(&self, of: &Candidate, permits_at_ms: Option<i64>) -> Vec<&Partition> {
        let Some(group) = self.groups.get(&GroupKey::of(of).counterparts()) else {
            return Vec::new();
        };
        let receivable = |code: &Option<WasteCode>| match (permits_at_ms, of.side, code) {
            (Some(now_ms), Side::Request, Some(code)) if code.is_hazardous() => {
                self.permits_of(of.owner).iter().any(|permit| permit.accepts(*code, now_ms))
            }
            _ => true,
        };
        let codes: Vec<Option<WasteCode>> = match (of.side, of.waste_code) {
            (Side::Offer, Some(code)) => vec![Some(code), None],
            (Side::Offer, None) => vec![None],
            (Side::Request, Some(_)) => indexed_codes(of),
            (Side::Request, None) => group.keys().copied().collect(),
        };
        codes.iter().filter(|code| receivable(code)).filter_map(|code| group.get(code)).collect()
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
        let mut nearest = Vec::with_capacity(count);
        if count == 0 {
            return nearest;
        }
        self.walk_nearest(
            of,
            None,
            |_| true,
            |entry, _| {
                if let Some(Some(candidate)) = self.slab.get(entry.summary.slot) {
                    nearest.push(candidate.id);
                }
                nearest.len() < count
            },
        );
        nearest
    }

    /// A free slot of the slab, empty.
    fn free_slot(&mut self) -> usize {
        self.free.pop().unwrap_or_else(|| {
            self.slab.push(None);
            self.slab.len() - 1
        })
    }
}

fn entry(candidate: &Candidate, slot: usize) -> Entry {
    Entry { point: to_space(&candidate.place.point), summary: Summary::of(candidate, slot) }
}

/// The squared straight-line distance between two points in space, km^2.
fn distance_2(a: &[f64; 3], b: &[f64; 3]) -> f64 {
    (0..3).map(|axis| (a[axis] - b[axis]).powi(2)).sum()
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

/// The great-circle arc of a chord, in km.
fn arc_of_chord_km(chord_km: f64) -> f64 {
    2.0 * EARTH_RADIUS_KM * (chord_km / (2.0 * EARTH_RADIUS_KM)).clamp(0.0, 1.0).asin()
}

#[cfg(test)]
mod tests;
