//! The in-memory index: where each stream's events are, which batches were appended, and
//! where in the files a position lies. Rebuilt on open by a scan of the log.

use std::collections::HashMap;

use uuid::Uuid;

use super::disk::FileRef;
use super::record::Format;
use crate::model::StreamName;

/// One sparse entry every this many bytes of log: a lookup by position scans at most about
/// this much plus one record.
pub(crate) const SPARSE_SPACING_BYTES: u64 = 16 * 1024;

#[derive(Debug, Default)]
pub(crate) struct StreamState {
    /// The position of each version: `positions[v]` is where version `v` lies.
    pub(crate) positions: Vec<u64>,
    pub(crate) deleted: bool,
}

impl StreamState {
    pub(crate) fn last_version(&self) -> Option<u64> {
        (self.positions.len() as u64).checked_sub(1)
    }
}

#[derive(Debug)]
pub(crate) struct SegmentRef {
    pub(crate) name: String,
    pub(crate) file: FileRef,
    pub(crate) format: Format,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct SparseEntry {
    pub(crate) first_position: u64,
    pub(crate) segment: usize,
    pub(crate) offset: u64,
}

/// How far the log is durable: readers never look past it.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Committed {
    /// The number of events committed: the next position.
    pub(crate) position: u64,
    pub(crate) segment: usize,
    pub(crate) end: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Index {
    pub(crate) streams: HashMap<StreamName, StreamState>,
    /// The first event id of every batch, and the batch's first position: the key of
    /// idempotent appends.
    pub(crate) batch_first_ids: HashMap<Uuid, u64>,
    pub(crate) sparse: Vec<SparseEntry>,
    pub(crate) segments: Vec<SegmentRef>,
    /// The next position to assign, counting appends not yet durable.
    pub(crate) next_position: u64,
    pub(crate) committed: Committed,
}

impl Index {
    /// Records that a batch of `count` events of `stream` starting at `first_position` lies
    /// in `segment` at `offset`.
    pub(crate) fn add_events(
        &mut self,
        stream: &StreamName,
        first_id: Uuid,
        first_position: u64,
        count: usize,
        segment: usize,
        offset: u64,
    ) {
        self.add_sparse(first_position, segment, offset);
        let state = match self.streams.get_mut(stream.as_str()) {
            Some(state) => state,
            None => self.streams.entry(stream.clone()).or_default(),
        };
        state.positions.extend(first_position..first_position + count as u64);
        self.batch_first_ids.insert(first_id, first_position);
        self.next_position = first_position + count as u64;
    }

    pub(crate) fn mark_deleted(&mut self, stream: &StreamName, segment: usize, offset: u64) {
        self.add_sparse(self.next_position, segment, offset);
        if let Some(state) = self.streams.get_mut(stream.as_str()) {
            state.deleted = true;
        }
    }

    fn add_sparse(&mut self, first_position: u64, segment: usize, offset: u64) {
        let needed = match self.sparse.last() {
            None => true,
            Some(last) => last.segment != segment || offset >= last.offset + SPARSE_SPACING_BYTES,
        };
        if needed {
            self.sparse.push(SparseEntry { first_position, segment, offset });
        }
    }

    /// Where to start scanning for `position`: a record at or before the one that holds it.
    pub(crate) fn locate(&self, position: u64) -> Option<SparseEntry> {
        let after = self.sparse.partition_point(|entry| entry.first_position <= position);
        after.checked_sub(1).map(|index| self.sparse[index])
    }
}
