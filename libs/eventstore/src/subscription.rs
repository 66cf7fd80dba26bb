//! Catch-up subscriptions to the whole log, written once for every backend.

use std::collections::VecDeque;

use crate::{EventStore, Position, READ_EVENTS_MAX, RecordedEvent, StoreError};

/// Events a subscription reads from the store at once when it follows the head; while it
/// catches up, each full page doubles the next, up to [`READ_EVENTS_MAX`] and to what
/// [`SUBSCRIPTION_PAGE_BYTES`] holds at the last page's bytes per event, so a long log of small
/// events is read in few queries.
pub const SUBSCRIPTION_PAGE_EVENTS: usize = 512;
/// Bytes of payload and metadata a grown page is sized for, at the last page's bytes per event.
pub const SUBSCRIPTION_PAGE_BYTES: usize = 8 * 1024 * 1024;

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
    /// Events the next read asks for.
    page_events: usize,
}

impl<S: EventStore> Subscription<S> {
    pub fn new(store: S, from_position: Position) -> Subscription<S> {
        Subscription {
            store,
            next_position: from_position,
            page: VecDeque::new(),
            page_events: SUBSCRIPTION_PAGE_EVENTS,
        }
    }

    /// The next event, waiting for one if the subscription has caught up.
    pub async fn next(&mut self) -> Result<RecordedEvent, StoreError> {
        loop {
            if let Some(event) = self.page.pop_front() {
                return Ok(event);
            }
            let events = self.store.read_all(self.next_position, self.page_events).await?;
            self.page_events = if events.len() >= self.page_events {
                let bytes: usize =
                    events.iter().map(|event| event.payload.len() + event.metadata.len()).sum();
                let fitting = SUBSCRIPTION_PAGE_BYTES / (bytes / events.len() + 1);
                (self.page_events * 2).min(READ_EVENTS_MAX).min(fitting).max(SUBSCRIPTION_PAGE_EVENTS)
            } else {
                SUBSCRIPTION_PAGE_EVENTS
            };
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
