//! Catch-up subscriptions to the whole log, written once for every backend.

use std::collections::VecDeque;

use crate::{EventStore, Position, RecordedEvent, StoreError};

/// Events a subscription reads from the store at once: the most it ever holds.
pub const SUBSCRIPTION_PAGE_EVENTS: usize = 512;

/// Every event of the log from a position on, in order, each once.
///
/// It reads the log a page at a time from the next position it owes, and when it has caught
/// up it waits for the head to move. Catch-up and live are the same loop, so nothing is
/// missed or repeated at the switch; and since the subscriber pulls, a slow one only falls
/// behind, it never makes the store buffer.
#[derive(Debug)]
pub struct Subscription<S> {
    store: S,
    next_position: Position,
    page: VecDeque<RecordedEvent>,
}

impl<S: EventStore> Subscription<S> {
    pub fn new(store: S, from_position: Position) -> Subscription<S> {
        Subscription { store, next_position: from_position, page: VecDeque::new() }
    }

    /// The next event, waiting for one if the subscription has caught up.
    pub async fn next(&mut self) -> Result<RecordedEvent, StoreError> {
        loop {
            if let Some(event) = self.page.pop_front() {
                return Ok(event);
            }
            let events = self.store.read_all(self.next_position, SUBSCRIPTION_PAGE_EVENTS).await?;
            match events.last() {
                Some(last) => {
                    self.next_position = last.position.after();
                    self.page.extend(events);
                }
                None => {
                    self.store.wait_for_head(self.next_position).await?;
                }
            }
        }
    }

    /// The position of the next event it will deliver, counting those it holds.
    pub fn position(&self) -> Position {
        self.page.front().map_or(self.next_position, |event| event.position)
    }
}
