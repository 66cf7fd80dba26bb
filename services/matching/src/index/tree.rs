//! The trees of a partition: entries (a point and its summary) in packed trees whose every node
//! carries the bounds of what lies under it, so a search can tell how well the best entry of a
//! whole node could score before reading any of it.
//!
//! A [`Tree`] is built once from its entries and afterwards only loses entries. Its order is
//! sort-tile-recursive over four keys: the two coordinates of the map, the price and the
//! quantity. A node then holds entries close in space and alike in price and quantity, so its
//! bounds are tight on what weighs in the score, not only on where it lies. Leaves hold up to
//! [`LEAF_MAX`] entries, inner nodes up to [`FANOUT`] children, contiguous in one array.
//!
//! Removing an entry swaps it with the last live entry of its leaf: the bounds of its nodes stay
//! as they were, wider than what is left, which a search tolerates (a bound may be loose, never
//! short). A tree that has lost half of what it was built with is built again from what is left.
//!
//! A [`Partition`] takes inserts the logarithmic way: into a buffer of at most [`BUFFER_MAX`]
//! entries, read entry by entry; a full buffer becomes a tree, merged with the trees of the
//! levels below it (level `i` holds at most `BUFFER_MAX << i` entries), so each entry is rebuilt
//! about log2(n / `BUFFER_MAX`) times over its life, and a search reads a handful of trees.

use symbiose_domain::Country;

use super::Summary;

/// Most entries in a leaf.
pub(super) const LEAF_MAX: usize = 16;
/// Most children of an inner node.
pub(super) const FANOUT: usize = 16;
/// Most entries a partition holds outside its trees.
pub(super) const BUFFER_MAX: usize = 128;

/// A candidate as a partition holds it: its point on the sphere (km) and its summary.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Entry {
    pub(super) point: [f64; 3],
    pub(super) summary: Summary,
}

/// What the entries under a node can be at best or at worst: their box in space and the ranges
/// of what the score and the rules read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Bounds {
    pub(super) lower: [f64; 3],
    pub(super) upper: [f64; 3],
    pub(super) price_min: i64,
    pub(super) price_max: i64,
    pub(super) available_min: i64,
    pub(super) available_max: i64,
    pub(super) minimum_lot_min: i64,
    pub(super) from_min: i64,
    pub(super) from_max: i64,
    pub(super) until_max: i64,
    pub(super) reach_max: u32,
    /// One bit per country ([`country_bit`]).
    pub(super) countries: u8,
    /// Whether any of them accepts material from another country.
    pub(super) accepts_other_countries: bool,
    /// One bit per quality (`QualityKey::bit`).
    pub(super) qualities: u32,
}

/// The bit of `country` in [`Bounds::countries`].
pub(super) fn country_bit(country: Country) -> u8 {
    1 << Country::ALL.iter().position(|each| *each == country).unwrap_or(0)
}

impl Bounds {
    fn of(entry: &Entry) -> Bounds {
        let summary = &entry.summary;
        Bounds {
            lower: entry.point,
            upper: entry.point,
            price_min: summary.price_minor,
            price_max: summary.price_minor,
            available_min: summary.available_milli,
            available_max: summary.available_milli,
            minimum_lot_min: summary.minimum_lot_milli,
            from_min: summary.available_from_ms,
            from_max: summary.available_from_ms,
            until_max: summary.available_until_ms,
            reach_max: summary.reach_km,
            countries: country_bit(summary.country),
            accepts_other_countries: summary.accepts_other_countries,
            qualities: summary.quality.bit(),
        }
    }

    fn merge(&mut self, other: &Bounds) {
        for axis in 0..3 {
            self.lower[axis] = self.lower[axis].min(other.lower[axis]);
            self.upper[axis] = self.upper[axis].max(other.upper[axis]);
        }
        self.price_min = self.price_min.min(other.price_min);
        self.price_max = self.price_max.max(other.price_max);
        self.available_min = self.available_min.min(other.available_min);
        self.available_max = self.available_max.max(other.available_max);
        self.minimum_lot_min = self.minimum_lot_min.min(other.minimum_lot_min);
        self.from_min = self.from_min.min(other.from_min);
        self.from_max = self.from_max.max(other.from_max);
        self.until_max = self.until_max.max(other.until_max);
        self.reach_max = self.reach_max.max(other.reach_max);
        self.countries |= other.countries;
        self.accepts_other_countries |= other.accepts_other_countries;
        self.qualities |= other.qualities;
    }

    fn covering(items: impl Iterator<Item = Bounds>) -> Bounds {
        items
            .reduce(|mut bounds, each| {
                bounds.merge(&each);
                bounds
            })
            .expect("a node is built over at least one entry")
    }

    /// The squared straight-line distance from `center` to the box, 0 inside it.
    pub(super) fn distance_2(&self, center: &[f64; 3]) -> f64 {
        (0..3)
            .map(|axis| {
                let outside = (self.lower[axis] - center[axis]).max(center[axis] - self.upper[axis]).max(0.0);
                outside * outside
            })
            .sum()
    }

    /// Whether `entry` lies within the bounds on everything a removal searches by.
    fn may_hold(&self, entry: &Entry) -> bool {
        (0..3).all(|axis| self.lower[axis] <= entry.point[axis] && entry.point[axis] <= self.upper[axis])
            && (self.price_min..=self.price_max).contains(&entry.summary.price_minor)
            && (self.available_min..=self.available_max).contains(&entry.summary.available_milli)
    }
}

/// A node of a tree: leaves hold `entries[first..first + len]`, inner nodes
/// `nodes[first..first + len]`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Node {
    pub(super) bounds: Bounds,
    pub(super) first: u32,
    pub(super) len: u32,
    pub(super) leaf: bool,
}

/// A packed tree of entries with the bounds of each node (see the module's documentation).
#[derive(Debug, Default)]
pub(super) struct Tree {
    entries: Vec<Entry>,
    nodes: Vec<Node>,
    /// Entries still in the tree.
    live: usize,
}

impl Tree {
    /// A tree of `entries`, none if there are none.
    pub(super) fn build(mut entries: Vec<Entry>) -> Option<Tree> {
        if entries.is_empty() {
            return None;
        }
        tile(&mut entries, &KEYS);
        let mut nodes: Vec<Node> = entries
            .chunks(LEAF_MAX)
            .enumerate()
            .map(|(at, chunk)| Node {
                bounds: Bounds::covering(chunk.iter().map(Bounds::of)),
                first: (at * LEAF_MAX) as u32,
                len: chunk.len() as u32,
                leaf: true,
            })
            .collect();
        let mut level = 0..nodes.len();
        while level.len() > 1 {
            let start = nodes.len();
            for first in level.clone().step_by(FANOUT) {
                let end = (first + FANOUT).min(level.end);
                let bounds = Bounds::covering(nodes[first..end].iter().map(|node| node.bounds));
                nodes.push(Node { bounds, first: first as u32, len: (end - first) as u32, leaf: false });
            }
            level = start..nodes.len();
        }
        Some(Tree { live: entries.len(), entries, nodes })
    }

    /// The root, the last node.
    pub(super) fn root(&self) -> u32 {
        (self.nodes.len() - 1) as u32
    }

    pub(super) fn node(&self, at: u32) -> &Node {
        &self.nodes[at as usize]
    }

    /// The live entries of the leaf `node`.
    pub(super) fn leaf_entries(&self, node: &Node) -> &[Entry] {
        &self.entries[node.first as usize..(node.first + node.len) as usize]
    }

    /// The children of the inner node `node`, with their indices.
    pub(super) fn children(&self, node: &Node) -> impl Iterator<Item = (u32, &Node)> {
        (node.first..node.first + node.len).map(|at| (at, &self.nodes[at as usize]))
    }

    /// Every live entry, the tree consumed.
    fn into_entries(self) -> Vec<Entry> {
        let Tree { entries, nodes, .. } = self;
        let mut live = Vec::with_capacity(entries.len());
        for node in nodes.iter().filter(|node| node.leaf) {
            live.extend_from_slice(&entries[node.first as usize..(node.first + node.len) as usize]);
        }
        live
    }

    /// Removes `entry` (the same point and summary), if the tree holds it.
    fn remove(&mut self, entry: &Entry) -> bool {
        let mut stack = vec![self.root()];
        while let Some(at) = stack.pop() {
            let node = self.nodes[at as usize];
            if node.len == 0 || !node.bounds.may_hold(entry) {
                continue;
            }
            if !node.leaf {
                stack.extend(node.first..node.first + node.len);
                continue;
            }
            let (first, last) = (node.first as usize, (node.first + node.len) as usize);
            if let Some(found) = self.entries[first..last].iter().position(|each| each == entry) {
                self.entries.swap(first + found, last - 1);
                self.nodes[at as usize].len -= 1;
                self.live -= 1;
                return true;
            }
        }
        false
    }
}

/// A key the entries are tiled by, and its weight: a key of weight `w` among keys weighing `W`
/// in all cuts its entries into about `leaves^(w / W)` slabs.
type TileKey = (fn(&Entry) -> f64, f64);

/// The keys the entries are tiled by, outermost first: space weighs most (the distance is the
/// score's heaviest component, and the walks nearest first read space alone), price and
/// quantity less (`matching-bench`: 536 entries read per `find` on average with these weights,
/// 557 with both at 0.5, 586 at 0.3, 627 with all four of equal weight, 842 with the start of
/// availability as a fifth key).
const KEYS: [TileKey; 4] = [
    (|entry| entry.point[2], 1.0),
    (|entry| entry.point[1].atan2(entry.point[0]), 1.0),
    (|entry| entry.summary.price_minor as f64, 0.7),
    (|entry| entry.summary.available_milli as f64, 0.5),
];

/// Sorts `entries` sort-tile-recursively by `keys`: into slabs along the first key, each slab
/// along the rest, slabs cut at whole leaves; the last key orders within the last slabs.
fn tile(entries: &mut [Entry], keys: &[TileKey]) {
    let Some(((key, weight), rest)) = keys.split_first() else { return };
    if entries.len() <= LEAF_MAX {
        return;
    }
    entries.sort_unstable_by(|a, b| key(a).total_cmp(&key(b)));
    let leaves = entries.len().div_ceil(LEAF_MAX);
    let weights: f64 = keys.iter().map(|(_, weight)| weight).sum();
    let slabs = (leaves as f64).powf(weight / weights).ceil().max(1.0) as usize;
    let slab = leaves.div_ceil(slabs) * LEAF_MAX;
    for chunk in entries.chunks_mut(slab) {
        tile(chunk, rest);
    }
}

/// The entries of one partition: a buffer and trees by level (see the module's documentation).
#[derive(Debug, Default)]
pub(super) struct Partition {
    buffer: Vec<Entry>,
    levels: Vec<Option<Tree>>,
}

impl Partition {
    /// A partition of `entries`, in one tree.
    pub(super) fn of(entries: Vec<Entry>) -> Partition {
        let mut partition = Partition::default();
        if entries.len() <= BUFFER_MAX {
            partition.buffer = entries;
            return partition;
        }
        let level = (0..).find(|level| capacity(*level) >= entries.len()).unwrap_or(0);
        partition.levels.resize_with(level + 1, || None);
        partition.levels[level] = Tree::build(entries);
        partition
    }

    pub(super) fn buffer(&self) -> &[Entry] {
        &self.buffer
    }

    pub(super) fn trees(&self) -> impl Iterator<Item = &Tree> {
        self.levels.iter().flatten()
    }

    pub(super) fn insert(&mut self, entry: Entry) {
        self.buffer.push(entry);
        if self.buffer.len() < BUFFER_MAX {
            return;
        }
        let mut carry = std::mem::take(&mut self.buffer);
        for level in 0.. {
            if level == self.levels.len() {
                self.levels.push(None);
            }
            match self.levels[level].take() {
                Some(tree) => carry.extend(tree.into_entries()),
                None if carry.len() <= capacity(level) => {
                    self.levels[level] = Tree::build(carry);
                    return;
                }
                None => {}
            }
        }
    }

    /// Removes `entry`, and says whether it was there.
    pub(super) fn remove(&mut self, entry: &Entry) -> bool {
        if let Some(at) = self.buffer.iter().position(|each| each == entry) {
            self.buffer.swap_remove(at);
            return true;
        }
        for level in &mut self.levels {
            let Some(tree) = level else { continue };
            if tree.remove(entry) {
                if tree.live * 2 < tree.entries.len() {
                    *level = level.take().and_then(|tree| Tree::build(tree.into_entries()));
                }
                return true;
            }
        }
        false
    }
}

/// Most entries of the tree of `level`.
fn capacity(level: usize) -> usize {
    BUFFER_MAX << level.min(40)
}
