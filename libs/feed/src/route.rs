//! Where an event goes on NATS: its context, subject and JetStream stream, derived from its
//! type name alone, and the configuration of the streams.

use std::time::Duration;

use async_nats::jetstream::stream;

/// The first token of every subject and type name.
pub const SUBJECT_ROOT: &str = "symbiose";
/// The version of the contracts relayed: types `symbiose.<context>.v1.<Name>`.
pub const CONTRACT_VERSION: &str = "v1";
/// The subject prefix of parked messages: `symbiose.deadletter.<consumer>`.
pub const DEAD_LETTER_SUBJECT_PREFIX: &str = "symbiose.deadletter";
/// The stream that keeps parked messages, over `symbiose.deadletter.>`.
pub const DEAD_LETTER_STREAM: &str = "SYMBIOSE_DEADLETTER";
/// Longest context name, in bytes (a stream name is `SYMBIOSE_` and this, upper case).
pub const CONTEXT_BYTES_MAX: usize = 64;

/// How long JetStream remembers a `Nats-Msg-Id` to drop a second publish of it.
///
/// Sized for the relay's worst replay. The relay moves its checkpoint only after JetStream
/// acknowledged a publish, and saves it at least every [`crate::RELAY_CHECKPOINT_EVENTS_MAX`]
/// events and every [`crate::RELAY_CHECKPOINT_INTERVAL_MS`] (1 s), so a relay that crashes
/// replays at most the events acknowledged in the last second, plus the
/// [`crate::RELAY_IN_FLIGHT_MAX`] publishes it had in flight. Within one run, a NATS error
/// replays the window in flight after at most the ack timeout (5 s) and a backoff (at most
/// 5 s). Two minutes cover both with a wide margin, a process restart included, and keep the
/// server's memory of ids to two minutes of traffic. Beyond the window, the relay does not
/// rely on it: before publishing it reads the position of the last event each stream holds
/// and skips what the stream already has (see `relay`), and consumers are idempotent by
/// position.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// The NATS route of an event type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// `listings`, from `symbiose.listings.v1.OrganizationRegistered`.
    pub context: String,
    /// `symbiose.listings.v1.organization_registered`.
    pub subject: String,
}

/// The route of a protobuf full type name `symbiose.<context>.v1.<Name>`, or `None` for any
/// other name (it is not relayed).
pub fn route(event_type: &str) -> Option<Route> {
    let mut parts = event_type.split('.');
    let (root, context, version, name) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || root != SUBJECT_ROOT || version != CONTRACT_VERSION {
        return None;
    }
    if !is_context(context) || !is_message_name(name) {
        return None;
    }
    Some(Route {
        context: context.to_owned(),
        subject: format!("{SUBJECT_ROOT}.{context}.{CONTRACT_VERSION}.{}", snake_case(name)),
    })
}

/// `SYMBIOSE_LISTINGS` for `listings`.
pub fn stream_name(context: &str) -> String {
    format!("{}_{}", SUBJECT_ROOT.to_ascii_uppercase(), context.to_ascii_uppercase())
}

/// `symbiose.listings.v1.>` for `listings`: every subject of the context's stream.
pub fn stream_subjects(context: &str) -> String {
    format!("{SUBJECT_ROOT}.{context}.{CONTRACT_VERSION}.>")
}

/// `/symbiose/listings`: the CloudEvents source of a context's events.
pub fn source(context: &str) -> String {
    format!("/{SUBJECT_ROOT}/{context}")
}

/// `symbiose.deadletter.<consumer>`.
pub fn dead_letter_subject(consumer: &str) -> String {
    format!("{DEAD_LETTER_SUBJECT_PREFIX}.{consumer}")
}

/// The JetStream stream of a context, as the relay creates or updates it at start: file
/// storage, every version-1 subject of the context, the duplicate window above, no limit on
/// age or size (the history is what partners and new consumers replay).
pub fn stream_config(context: &str) -> stream::Config {
    stream::Config {
        name: stream_name(context),
        description: Some(format!("Symbiose {context} events, relayed from the {context} event store")),
        subjects: vec![stream_subjects(context)],
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        discard: stream::DiscardPolicy::Old,
        duplicate_window: DUPLICATE_WINDOW,
        ..Default::default()
    }
}

/// How many JetStream replicas the relay gives the streams it creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StreamReplicas {
    /// 3 when the NATS server is part of a cluster, 1 when it runs alone (a cluster of two
    /// JetStream servers cannot keep 3: set the count there).
    #[default]
    Auto,
    /// This many (1 to [`STREAM_REPLICAS_MAX`]).
    Exactly(usize),
}

/// The most replicas JetStream keeps of a stream.
pub const STREAM_REPLICAS_MAX: usize = 5;
/// The replicas [`StreamReplicas::Auto`] gives a stream on a cluster.
pub const CLUSTER_STREAM_REPLICAS: usize = 3;

impl StreamReplicas {
    /// The replicas for a server that is (`clustered`) or is not part of a cluster.
    pub fn resolve(self, clustered: bool) -> usize {
        match self {
            StreamReplicas::Auto if clustered => CLUSTER_STREAM_REPLICAS,
            StreamReplicas::Auto => 1,
            StreamReplicas::Exactly(replicas) => replicas,
        }
    }
}

/// What differs between a stream's settings on the server (`found`) and the relay's
/// (`wanted`), among those the platform relies on: the subjects it takes, where and how long
/// it keeps them, its duplicate window and its replicas. One line per setting, naming both
/// values; empty when they agree.
pub fn stream_differences(found: &stream::Config, wanted: &stream::Config) -> Vec<String> {
    let mut differences = Vec::new();
    let mut compare = |setting: &str, found: String, wanted: String| {
        if found != wanted {
            differences.push(format!("{setting} {found} (the relay's: {wanted})"));
        }
    };
    compare("subjects", format!("{:?}", found.subjects), format!("{:?}", wanted.subjects));
    compare("storage", format!("{:?}", found.storage), format!("{:?}", wanted.storage));
    compare("retention", format!("{:?}", found.retention), format!("{:?}", wanted.retention));
    compare("discard", format!("{:?}", found.discard), format!("{:?}", wanted.discard));
    // The server answers -1 for the limits made as 0: none.
    let limit = |value: i64| if value <= 0 { "none".to_owned() } else { value.to_string() };
    compare("max_messages", limit(found.max_messages), limit(wanted.max_messages));
    compare("max_bytes", limit(found.max_bytes), limit(wanted.max_bytes));
    compare("max_age", format!("{:?}", found.max_age), format!("{:?}", wanted.max_age));
    compare(
        "duplicate_window",
        format!("{:?}", found.duplicate_window),
        format!("{:?}", wanted.duplicate_window),
    );
    // The server answers 0 for a stream made without a count: one replica.
    compare("replicas", found.num_replicas.max(1).to_string(), wanted.num_replicas.max(1).to_string());
    differences
}

/// The stream of parked messages, over `symbiose.deadletter.>`.
pub fn dead_letter_stream_config() -> stream::Config {
    stream::Config {
        name: DEAD_LETTER_STREAM.to_owned(),
        description: Some("Symbiose messages a consumer gave up on, with the error".to_owned()),
        subjects: vec![format!("{DEAD_LETTER_SUBJECT_PREFIX}.>")],
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        discard: stream::DiscardPolicy::Old,
        duplicate_window: DUPLICATE_WINDOW,
        ..Default::default()
    }
}

/// A context name: lower-case ASCII letters, digits and `_`, starting with a letter.
pub fn is_context(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= CONTEXT_BYTES_MAX
        && chars.next().is_some_and(|first| first.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name != "deadletter"
}

/// A protobuf message name: ASCII letters and digits, starting with an upper-case letter.
fn is_message_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|first| first.is_ascii_uppercase()) && chars.all(|c| c.is_ascii_alphanumeric())
}

/// `OrganizationRegistered` -> `organization_registered`; an acronym stays one word
/// (`VATRegimeApplied` -> `vat_regime_applied`).
pub fn snake_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut snake = String::with_capacity(name.len() + 8);
    for (index, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() {
            let previous = index.checked_sub(1).map(|before| chars[before]);
            let next_is_lower = chars.get(index + 1).is_some_and(char::is_ascii_lowercase);
            let starts_word = previous.is_some_and(|previous| {
                previous.is_ascii_lowercase()
                    || previous.is_ascii_digit()
                    || (previous.is_ascii_uppercase() && next_is_lower)
            });
            if starts_word {
                snake.push('_');
            }
            snake.push(c.to_ascii_lowercase());
        } else {
            snake.push(c);
        }
    }
    snake
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_type_name_gives_its_context_and_subject() {
        assert_eq!(
            route("symbiose.listings.v1.OrganizationRegistered"),
            Some(Route {
                context: "listings".to_owned(),
                subject: "symbiose.listings.v1.organization_registered".to_owned(),
            })
        );
        assert_eq!(
            route("symbiose.settlement.v1.VATRegimeApplied").map(|route| route.subject),
            Some("symbiose.settlement.v1.vat_regime_applied".to_owned())
        );
        assert_eq!(stream_name("listings"), "SYMBIOSE_LISTINGS");
        assert_eq!(stream_subjects("listings"), "symbiose.listings.v1.>");
        assert_eq!(source("listings"), "/symbiose/listings");
    }

    #[test]
    fn other_names_are_not_routed() {
        for name in [
            "OrganizationRegistered",
            "BenchEvent",
            "symbiose.listings.v2.OrganizationRegistered",
            "symbiose.listings.v1.organizationRegistered",
            "symbiose.Listings.v1.OrganizationRegistered",
            "symbiose.listings.v1.Organization.Registered",
            "symbiose.listings.v1.",
            "symbiose.deadletter.v1.Parked",
            "other.listings.v1.OrganizationRegistered",
            "symbiose.list ings.v1.OrganizationRegistered",
            "symbiose.listings.v1.Organization*",
        ] {
            assert_eq!(route(name), None, "{name}");
        }
    }

    #[test]
    fn snake_case_splits_words_and_keeps_acronyms_whole() {
        for (name, snake) in [
            ("OrganizationRegistered", "organization_registered"),
            ("SiteAdded", "site_added"),
            ("ListingPublished", "listing_published"),
            ("VATRegimeApplied", "vat_regime_applied"),
            ("Co2Estimated", "co2_estimated"),
            ("AnnexVIIIssued", "annex_vii_issued"),
            ("A", "a"),
        ] {
            assert_eq!(snake_case(name), snake, "{name}");
        }
    }

    #[test]
    fn replicas_are_three_on_a_cluster_one_alone_unless_set() {
        assert_eq!(StreamReplicas::Auto.resolve(true), 3);
        assert_eq!(StreamReplicas::Auto.resolve(false), 1);
        assert_eq!(StreamReplicas::Exactly(5).resolve(false), 5);
        assert_eq!(StreamReplicas::Exactly(1).resolve(true), 1);
    }

    #[test]
    fn a_stream_with_other_settings_is_told_apart_setting_by_setting() {
        let wanted = stream::Config { num_replicas: 3, ..stream_config("listings") };
        assert!(stream_differences(&wanted, &wanted).is_empty());
        // The server says 0 for one replica.
        let one =
            stream::Config { num_replicas: 0, max_messages: -1, max_bytes: -1, ..stream_config("listings") };
        assert!(stream_differences(&one, &stream::Config { num_replicas: 1, ..one.clone() }).is_empty());
        let found = stream::Config {
            num_replicas: 1,
            max_age: Duration::from_secs(86_400),
            storage: stream::StorageType::Memory,
            ..wanted.clone()
        };
        let differences = stream_differences(&found, &wanted);
        assert_eq!(differences.len(), 3, "{differences:?}");
        assert!(differences.iter().any(|line| line == "replicas 1 (the relay's: 3)"), "{differences:?}");
        assert!(differences.iter().any(|line| line.starts_with("storage Memory")), "{differences:?}");
        assert!(differences.iter().any(|line| line.starts_with("max_age 86400s")), "{differences:?}");
    }

    #[test]
    fn the_stream_keeps_every_v1_subject_of_its_context_with_the_duplicate_window() {
        let config = stream_config("listings");
        assert_eq!(config.name, "SYMBIOSE_LISTINGS");
        assert_eq!(config.subjects, vec!["symbiose.listings.v1.>".to_owned()]);
        assert_eq!(config.duplicate_window, DUPLICATE_WINDOW);
        assert_eq!(config.storage, stream::StorageType::File);
    }
}
