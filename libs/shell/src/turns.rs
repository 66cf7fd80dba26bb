//! Commands on one aggregate, taken in turn inside a process.
//!
//! Optimistic concurrency alone makes a hot aggregate (an offer many buyers want at once, the
//! ledger every payment goes through) answer ABORTED once a command has lost the race
//! [`crate::COMMAND_ATTEMPTS_MAX`] times. Inside one process nothing forces that race: commands
//! on the same stream wait for each other here, in arrival order, so each one loads the state
//! the previous one wrote and its append meets no conflict. The expected version stays on every
//! append, for the writers of other processes; the retry loop is only for them now.
//!
//! Each stream has a bounded queue: past [`TURN_WAITERS_MAX`] commands waiting on one stream,
//! the next is refused with RESOURCE_EXHAUSTED rather than queued without end. A stream's entry
//! lives only while a command holds or waits for its turn, so the map is as large as the number
//! of commands in flight.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use symbiose_eventstore::StreamName;
use symbiose_kit::ApiError;
use tokio::sync::OwnedMutexGuard;

/// Commands waiting for their turn on one stream (besides the one holding it), at most.
pub const TURN_WAITERS_MAX: usize = 4096;

/// Streams in the map past which entries nobody holds are swept at the next turn taken.
const TURN_STREAMS_SWEEP: usize = 1024;

type Slot = Arc<tokio::sync::Mutex<()>>;

/// The turns of every stream a process writes. Cloning shares them.
#[derive(Debug, Clone, Default)]
pub struct Turns {
    slots: Arc<Mutex<HashMap<String, Slot>>>,
}

/// A command's turn on one stream: the next command on it waits until this is dropped.
#[derive(Debug)]
pub struct Turn {
    key: String,
    slots: Arc<Mutex<HashMap<String, Slot>>>,
    guard: Option<OwnedMutexGuard<()>>,
}

impl Turns {
    pub fn new() -> Turns {
        Turns::default()
    }

    /// Waits for the turn on `stream` (FIFO: tokio's mutex is fair).
    pub async fn take(&self, stream: &StreamName) -> Result<Turn, ApiError> {
        let key = stream.as_str().to_owned();
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if slots.len() >= TURN_STREAMS_SWEEP {
                // Entries left by commands cancelled while they waited: nobody holds them.
                slots.retain(|_, slot| Arc::strong_count(slot) > 1);
            }
            let slot = slots.entry(key.clone()).or_default();
            // The map's reference, the command holding the turn, and one per command waiting.
            if Arc::strong_count(slot) > TURN_WAITERS_MAX + 1 {
                return Err(ApiError::ResourceExhausted(format!(
                    "{stream}: {TURN_WAITERS_MAX} commands are already waiting for it"
                )));
            }
            slot.clone()
        };
        let guard = slot.lock_owned().await;
        Ok(Turn { key, slots: self.slots.clone(), guard: Some(guard) })
    }

    /// Streams with a command holding or waiting for their turn.
    pub fn streams(&self) -> usize {
        self.slots.lock().unwrap_or_else(std::sync::PoisonError::into_inner).len()
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        let mut slots = self.slots.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        // Released under the map's lock, so no waiter can appear between the release and the
        // count below.
        drop(self.guard.take());
        if let Some(slot) = slots.get(&self.key)
            && Arc::strong_count(slot) == 1
        {
            slots.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn name(text: &str) -> StreamName {
        StreamName::new(text).expect("a stream name")
    }

    #[tokio::test]
    async fn one_command_at_a_time_per_stream_and_the_map_empties() {
        let turns = Turns::new();
        let inside = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..200 {
            let (turns, inside, most) = (turns.clone(), inside.clone(), most.clone());
            tasks.push(tokio::spawn(async move {
                let _turn = turns.take(&name("listing-1")).await.expect("a turn");
                let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                tokio::task::yield_now().await;
                inside.fetch_sub(1, Ordering::SeqCst);
            }));
        }
        for task in tasks {
            task.await.expect("no panic");
        }
        assert_eq!(most.load(Ordering::SeqCst), 1, "never two commands on one stream at once");
        assert_eq!(turns.streams(), 0, "no entry is left behind");
    }

    #[tokio::test]
    async fn a_stream_with_its_queue_full_refuses_the_next_command() {
        let turns = Turns::new();
        let held = turns.take(&name("ledger-EUR")).await.expect("a turn");
        let mut waiting = Vec::new();
        for _ in 0..TURN_WAITERS_MAX {
            let turns = turns.clone();
            waiting.push(tokio::spawn(async move { turns.take(&name("ledger-EUR")).await.map(|_| ()) }));
        }
        // Every waiter has cloned its slot once it first runs.
        while turns.slots.lock().expect("not poisoned").get("ledger-EUR").map(Arc::strong_count)
            != Some(TURN_WAITERS_MAX + 2)
        {
            tokio::task::yield_now().await;
        }
        let refused = turns.take(&name("ledger-EUR")).await.expect_err("the queue is full");
        assert!(matches!(refused, ApiError::ResourceExhausted(_)), "{refused}");
        drop(held);
        for waiter in waiting {
            waiter.await.expect("no panic").expect("each waiter gets its turn");
        }
        assert_eq!(turns.streams(), 0);
    }

    #[tokio::test]
    async fn other_streams_do_not_wait_and_a_cancelled_wait_leaves_nothing() {
        let turns = Turns::new();
        let held = turns.take(&name("listing-1")).await.expect("a turn");
        let other = tokio::time::timeout(std::time::Duration::from_secs(5), turns.take(&name("listing-2")))
            .await
            .expect("another stream is free")
            .expect("a turn");
        assert_eq!(turns.streams(), 2);
        let waiting = tokio::spawn({
            let turns = turns.clone();
            async move { turns.take(&name("listing-1")).await.map(|_| ()) }
        });
        tokio::task::yield_now().await;
        waiting.abort();
        let _ = waiting.await;
        drop(other);
        drop(held);
        assert_eq!(turns.streams(), 0);
    }
}
