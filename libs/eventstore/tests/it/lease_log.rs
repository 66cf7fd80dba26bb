//! Leases over a log with only an append at an expected revision ([`LeaseLog`], what the
//! EventStoreDB backend keeps its leases in), decided by [`Observed`]: here the log is a stream
//! of the embedded store, whose appends at an expected version are as atomic as the server's.
//! The same contest runs on an EventStoreDB server when one is named (`eventstoredb.rs`).

use std::future::Future;
use std::time::{Duration, Instant};

use symbiose_eventstore::embedded::{EmbeddedStore, Options};
use symbiose_eventstore::lease::{LeaseLog, LeaseRecord, Observed};
use symbiose_eventstore::{
    Direction, EventData, EventStore, ExpectedVersion, STREAM_END, StoreError, StreamName,
};
use uuid::Uuid;

/// A lease log in the streams `lease-<name>` of an embedded store.
struct StreamLeases(EmbeddedStore);

fn lease_stream(name: &str) -> StreamName {
    StreamName::new(&format!("lease-{name}")).expect("a lease's stream name")
}

impl LeaseLog for StreamLeases {
    async fn last_record(&self, name: &str) -> Result<Option<(u64, LeaseRecord)>, StoreError> {
        match self.0.read_stream(&lease_stream(name), STREAM_END, Direction::Backward, 1).await {
            Ok(events) => Ok(events.into_iter().next().map(|event| {
                let record = LeaseRecord::decode(&event.payload).expect("a lease record");
                (event.version, record)
            })),
            Err(StoreError::StreamNotFound(_)) => Ok(None),
            Err(error) => Err(error),
        }
    }

    async fn append_record(
        &self,
        name: &str,
        expected: Option<u64>,
        record: &LeaseRecord,
    ) -> Result<bool, StoreError> {
        let expected = expected.map_or(ExpectedVersion::NoStream, ExpectedVersion::Exact);
        let event = EventData::new(Uuid::now_v7(), "lease", record.encode());
        match self.0.append(&lease_stream(name), expected, vec![event]).await {
            Ok(_) => Ok(true),
            Err(StoreError::WrongExpectedVersion { .. }) => Ok(false),
            Err(error) => Err(error),
        }
    }
}

/// One process contending for leases: what a test asks of it.
pub(crate) trait Contender: Sync {
    fn acquire(&self, name: &str, ttl: Duration) -> impl Future<Output = Option<u64>> + Send;
    fn release(&self, name: &str) -> impl Future<Output = ()> + Send;
}

/// A contender over a [`LeaseLog`] with an [`Observed`] of its own, as a process has.
struct Process<'a> {
    log: &'a StreamLeases,
    observed: Observed,
    holder: &'static str,
}

impl Contender for Process<'_> {
    async fn acquire(&self, name: &str, ttl: Duration) -> Option<u64> {
        self.observed.acquire(self.log, name, self.holder, ttl).await.expect("acquire")
    }

    async fn release(&self, name: &str) {
        self.observed.release(self.log, name, self.holder).await.expect("release");
    }
}

/// The contest both backends must pass: one holder at a time; a holder that renews keeps it
/// however long others wait; one that stops renewing loses it a TTL after its last renewal was
/// seen, not before; a release hands it over at once; of two taking a released lease at the
/// same time, one wins. Returns how long after the holder's last renewal the lease moved.
pub(crate) async fn contest(a: &impl Contender, b: &impl Contender, c: &impl Contender) -> Duration {
    let ttl = Duration::from_millis(600);
    let name = "matching.jobs";
    assert_eq!(a.acquire(name, ttl).await, Some(1), "a takes the free lease");
    assert_eq!(b.acquire(name, ttl).await, None, "b finds it held");
    // a renews five times per TTL for two TTLs: b, trying as often, never gets it.
    let mut last_renewal = Instant::now();
    for _ in 0..10 {
        tokio::time::sleep(ttl / 5).await;
        assert_eq!(a.acquire(name, ttl).await, Some(1), "a renews");
        last_renewal = Instant::now();
        assert_eq!(b.acquire(name, ttl).await, None, "b waits while a renews");
    }
    // a stops renewing (killed): b takes it, a TTL after it saw a's last record.
    let generation = loop {
        if let Some(generation) = b.acquire(name, ttl).await {
            break generation;
        }
        assert!(
            last_renewal.elapsed() < ttl * 3,
            "b still waits {:?} after a's last renewal",
            last_renewal.elapsed()
        );
        tokio::time::sleep(ttl / 5).await;
    };
    let takeover = last_renewal.elapsed();
    assert_eq!(generation, 2, "a change of holder counts one generation");
    assert!(
        takeover >= ttl,
        "b took the lease {takeover:?} after a's last renewal, within its TTL of {ttl:?}"
    );
    assert_eq!(a.acquire(name, ttl).await, None, "a, back, finds it held by b");
    // A release hands it over at once.
    b.release(name).await;
    assert_eq!(a.acquire(name, ttl).await, Some(3), "a takes the released lease at once");
    // Only the holder releases.
    b.release(name).await;
    assert_eq!(c.acquire(name, ttl).await, None, "b's release of a lease it no longer holds changed nothing");
    // Two at once on a released lease: one wins.
    a.release(name).await;
    let (for_b, for_c) = tokio::join!(b.acquire(name, ttl), c.acquire(name, ttl));
    assert_eq!(
        [for_b, for_c].iter().filter(|taken| taken.is_some()).count(),
        1,
        "one of two takes a released lease: b {for_b:?}, c {for_c:?}"
    );
    assert_eq!(for_b.or(for_c), Some(4));
    // Leases are apart.
    assert_eq!(c.acquire("logistics.jobs", ttl).await, Some(1));
    takeover
}

#[tokio::test]
async fn a_lease_kept_in_a_log_has_one_holder_and_moves_a_ttl_after_its_last_renewal() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (store, _) = EmbeddedStore::open(dir.path(), Options::default()).expect("open a store");
    let log = StreamLeases(store.clone());
    let process = |holder| Process { log: &log, observed: Observed::new(), holder };
    let (a, b, c) = (process("a"), process("b"), process("c"));
    let takeover = contest(&a, &b, &c).await;
    println!("a lease kept in a log moved {takeover:?} after its holder's last renewal (TTL 600 ms)");
    // What the log holds: every record, each decoding.
    let records =
        store.read_stream(&lease_stream("matching.jobs"), 0, Direction::Forward, 1_000).await.expect("read");
    assert!(records.iter().all(|event| LeaseRecord::decode(&event.payload).is_some()));
    store.close().await;
}
