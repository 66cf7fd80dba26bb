//! A context's whole history, then its live events, for a stateless reader: [`Replay`] reads a
//! context's JetStream stream from its first message through an ordered consumer (ephemeral,
//! one per reader, no acknowledgements; the client recreates it where it left off if a
//! message goes missing), so every replica of a read model rebuilds on its own at start and
//! follows on, without sharing a durable consumer (which would split the messages between
//! them) and without a checkpoint to keep.
//!
//! It says where the history ended when it was opened ([`Replay::head_at_open`]), so a reader
//! can fold the history in bulk and switch to one event at a time once it is past it.

use std::fmt;

use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use async_nats::jetstream::{self};
use tokio_stream::StreamExt as _;

use crate::{FeedError, cloudevents, route};

/// One message of the stream: its sequence in the stream, and the event it carries (or why it
/// carries none: such a message is skipped by the reader, never a reason to stop).
pub struct Replayed {
    pub stream_sequence: u64,
    pub event: Result<symbiose_eventstore::RecordedEvent, String>,
}

impl fmt::Debug for Replayed {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Replayed")
            .field("stream_sequence", &self.stream_sequence)
            .field("event", &self.event.as_ref().map(|event| event.position))
            .finish()
    }
}

/// Every message of one context's stream, in stream order, from the first.
pub struct Replay {
    messages: Box<pull::Ordered>,
    head_at_open: u64,
    context: String,
}

impl fmt::Debug for Replay {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Replay")
            .field("context", &self.context)
            .field("head_at_open", &self.head_at_open)
            .finish_non_exhaustive()
    }
}

impl Replay {
    /// Opens the replay of `context` (creating its stream if absent, so a reader may start
    /// before the relay), for the reader named `reader` (in the consumer's description).
    pub async fn open(
        jetstream: jetstream::Context,
        context: &str,
        reader: &str,
    ) -> Result<Replay, FeedError> {
        if !route::is_context(context) {
            return Err(FeedError::Invalid {
                what: "context",
                reason: format!("{context:?} is not a context name"),
            });
        }
        let mut stream = jetstream
            .get_or_create_stream(route::stream_config(context))
            .await
            .map_err(|error| FeedError::nats(&format!("opening the stream of {context}"), error))?;
        let head_at_open = stream
            .info()
            .await
            .map_err(|error| FeedError::nats(&format!("reading the stream of {context}"), error))?
            .state
            .last_sequence;
        let consumer = stream
            .create_consumer(pull::OrderedConfig {
                description: Some(format!("Symbiose {reader}: replay of the {context} events")),
                filter_subject: route::stream_subjects(context),
                deliver_policy: DeliverPolicy::All,
                ..Default::default()
            })
            .await
            .map_err(|error| FeedError::nats(&format!("creating the replay of {context}"), error))?;
        let messages = consumer
            .messages()
            .await
            .map_err(|error| FeedError::nats(&format!("reading the replay of {context}"), error))?;
        Ok(Replay { messages: Box::new(messages), head_at_open, context: context.to_owned() })
    }

    /// The stream's last sequence when the replay was opened: the history ends there.
    pub fn head_at_open(&self) -> u64 {
        self.head_at_open
    }

    /// The next message, waiting for one. An error means the replay cannot go on (the
    /// client gave up recreating its consumer): the reader opens a new one.
    pub async fn next(&mut self) -> Result<Replayed, FeedError> {
        match self.messages.next().await {
            Some(Ok(message)) => {
                let stream_sequence = message.info().map(|info| info.stream_sequence).map_err(|error| {
                    FeedError::nats(&format!("reading the replay of {}", self.context), error)
                })?;
                let event = cloudevents::event(message.headers.as_ref(), message.payload.clone());
                Ok(Replayed { stream_sequence, event })
            }
            Some(Err(error)) => Err(FeedError::nats(&format!("replaying {}", self.context), error)),
            None => Err(FeedError::Nats(format!("the replay of {} ended", self.context))),
        }
    }
}
