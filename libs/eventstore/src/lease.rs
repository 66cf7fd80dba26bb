//! Leases: work that must run once for a whole platform (a context's relay to NATS, its imports,
//! its reactors) runs in one process at a time, among replicas sharing a store.
//!
//! A lease is a name, a holder and a deadline, kept by the store
//! ([`EventStore::acquire_lease`](crate::EventStore::acquire_lease)): a holder renews it before
//! its deadline; once the deadline has passed without a renewal, anyone may take it. Each change
//! of holder counts one more generation. On PostgreSQL the lease is a row of
//! `symbiose_leases` whose deadline is the database's clock, so the replicas' clocks do not
//! matter. A store that one process owns (the embedded store, whose directory is locked) grants
//! every lease to its process at once.
//!
//! [`keep`] runs a job under a lease: it takes the lease when it can, starts the job, renews
//! the lease every [`LeaseOptions::renew`], and stops the job when the lease is lost (another
//! holder took it, or no renewal succeeded for a whole TTL: the process may have been cut off
//! from the store, and someone else may hold it already). Two holders may overlap by up to one
//! TTL around such a cut; the jobs run under leases are safe if they do (the relay publishes
//! with the stream sequence it expects; reactions are idempotent by their derived event ids),
//! the lease only keeps them from running twice as a rule.
//!
//! A store whose only atomic operation is an append at an expected version (EventStoreDB) keeps
//! a lease as the last record of a log of its own ([`LeaseLog`]), and [`Observed`] decides on
//! it: a holder renews by appending after its own last record, a release appends a released
//! record, and a contender takes a free or released lease at once, or another holder's after it
//! has seen the same last record, unchanged, for a whole TTL of its own clock. No clock is
//! compared with another: a holder that renews moves the record, so a contender waits again.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::EventStore;
use crate::model::StoreError;

/// The default time a lease lasts without renewal, in milliseconds: how long a replica that
/// dies holding it keeps the others waiting.
pub const LEASE_TTL_MS_DEFAULT: u64 = 5_000;
/// The shortest and longest TTLs allowed.
pub const LEASE_TTL_MS_MIN: u64 = 500;
pub const LEASE_TTL_MS_MAX: u64 = 600_000;
/// Renewals per TTL: a holder renews five times within its TTL, so four renewals in a row may
/// fail (a slow store, a lost connection) before the lease is lost.
const RENEWALS_PER_TTL: u32 = 5;
/// Lease names: at most this many bytes, of letters, digits, '.', '_' and '-'.
pub const LEASE_NAME_BYTES_MAX: usize = 128;
/// Holder names: at most this many bytes.
pub const LEASE_HOLDER_BYTES_MAX: usize = 200;

/// How long a lease lasts and how often it is renewed and tried for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseOptions {
    /// The time a lease lasts without renewal.
    pub ttl: Duration,
    /// How often a holder renews, and how often the others try to take it.
    pub renew: Duration,
}

impl LeaseOptions {
    /// A TTL of `ttl_ms` (clamped to [`LEASE_TTL_MS_MIN`]..=[`LEASE_TTL_MS_MAX`]), renewed
    /// five times within it.
    pub fn with_ttl_ms(ttl_ms: u64) -> LeaseOptions {
        let ttl = Duration::from_millis(ttl_ms.clamp(LEASE_TTL_MS_MIN, LEASE_TTL_MS_MAX));
        LeaseOptions { ttl, renew: ttl / RENEWALS_PER_TTL }
    }
}

impl Default for LeaseOptions {
    fn default() -> LeaseOptions {
        LeaseOptions::with_ttl_ms(LEASE_TTL_MS_DEFAULT)
    }
}

/// Checks a lease's name and holder.
pub fn check_lease(name: &str, holder: &str) -> Result<(), StoreError> {
    let valid_name = !name.is_empty()
        && name.len() <= LEASE_NAME_BYTES_MAX
        && name.bytes().all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-'));
    if !valid_name {
        return Err(StoreError::InvalidInput(format!(
            "lease name {name:?} must be 1 to {LEASE_NAME_BYTES_MAX} letters, digits, '.', '_' or '-'"
        )));
    }
    if holder.is_empty() || holder.len() > LEASE_HOLDER_BYTES_MAX {
        return Err(StoreError::InvalidInput(format!(
            "lease holder must be 1 to {LEASE_HOLDER_BYTES_MAX} bytes"
        )));
    }
    Ok(())
}

/// A name for this process as a lease holder: the host's name (a pod's name in Kubernetes), the
/// process id and a random part, so a restarted process is a new holder.
pub fn holder_name() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|host| !host.is_empty())
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok().map(|host| host.trim().to_owned()))
        .filter(|host| !host.is_empty())
        .unwrap_or_else(|| "host".to_owned());
    let host: String = host.chars().take(120).collect();
    let random = uuid::Uuid::now_v7().simple().to_string();
    format!("{host}-{}-{}", std::process::id(), &random[random.len() - 8..])
}

/// What a job under a lease is given: the generation of the lease it runs under, and the
/// signal to stop (the lease was lost, or the process stops).
#[derive(Debug, Clone)]
pub struct Held {
    generation: u64,
    stop: watch::Receiver<bool>,
}

impl Held {
    /// How many times the lease changed hands, this holding included.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Completes when the job must stop.
    pub fn stopped(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut stop = self.stop.clone();
        async move {
            let _ = stop.wait_for(|stop| *stop).await;
        }
    }
}

/// What the keeper of a lease reports, for readiness and the logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseState {
    /// The first attempt has not been answered yet.
    Starting,
    /// This process holds the lease and runs the job.
    Held { generation: u64 },
    /// Another process holds the lease (or the store does not answer).
    Elsewhere,
    /// The keeper stopped.
    Stopped,
}

/// A job kept under a lease: its state, and the task, which ends when the process stops or
/// when the job ends on its own (with the job's error, if any).
#[derive(Debug)]
pub struct Kept {
    pub state: watch::Receiver<LeaseState>,
    pub task: JoinHandle<Result<(), String>>,
}

impl Kept {
    /// Runs `serve` beside the kept job: `serve` is given a receiver that turns true when it
    /// must stop, which happens when `shutdown` completes or when the job ends on its own (it
    /// failed: the process must not go on without it). Once `serve` returns, the job is told
    /// to stop through `stop` (the sender of the keeper's stop signal) and awaited. Returns
    /// what `serve` returned and the job's outcome.
    pub async fn alongside<T, F>(
        self,
        stop: watch::Sender<bool>,
        shutdown: impl Future<Output = ()> + Send + 'static,
        serve: impl FnOnce(watch::Receiver<bool>) -> F,
    ) -> (T, Result<(), String>)
    where
        F: Future<Output = T>,
    {
        let (shut, shutting) = watch::channel(false);
        let (ended, job_ended) = tokio::sync::oneshot::channel();
        let mut task = self.task;
        tokio::spawn(async move {
            let outcome = tokio::select! {
                () = shutdown => None,
                outcome = &mut task => Some(outcome),
            };
            if let Some(Ok(Err(reason))) = &outcome {
                tracing::error!(%reason, "the work kept under a lease failed: the process stops");
            }
            let _ = shut.send(true);
            let _ = ended.send((outcome, task));
        });
        let served = serve(shutting).await;
        let _ = stop.send(true);
        let outcome = match job_ended.await {
            Ok((Some(outcome), _)) => outcome,
            Ok((None, task)) => task.await,
            Err(_) => Ok(Ok(())),
        };
        (
            served,
            outcome.unwrap_or_else(|error| Err(format!("the work kept under a lease panicked: {error}"))),
        )
    }
}

/// Completes when `shutting` turns true (or its sender is gone): what [`Kept::alongside`]
/// gives a server to stop at.
pub async fn when_true(mut shutting: watch::Receiver<bool>) {
    let _ = shutting.wait_for(|shutting| *shutting).await;
}

/// Runs `job` whenever this process holds the lease `name` of `store`, as `holder`, until
/// `stop` turns true: the job is stopped (through [`Held::stopped`]) when the lease is lost,
/// and started again when it is taken again. If the job ends on its own, the lease is released
/// and the keeper ends with the job's outcome. At a stop the job is told to stop, awaited, and
/// the lease released, so another replica takes it at once rather than after the TTL.
pub fn keep<S, J, F>(
    store: S,
    name: String,
    holder: String,
    options: LeaseOptions,
    stop: watch::Receiver<bool>,
    mut job: J,
) -> Kept
where
    S: EventStore,
    J: FnMut(Held) -> F + Send + 'static,
    F: Future<Output = Result<(), String>> + Send + 'static,
{
    let (report, state) = watch::channel(LeaseState::Starting);
    let task = tokio::spawn(async move {
        let mut stop = stop;
        let outcome = 'keeping: loop {
            if *stop.borrow() {
                break Ok(());
            }
            let generation = match try_lease(&store, &name, &holder, options).await {
                Ok(Some(generation)) => generation,
                Ok(None) => {
                    report.send_replace(LeaseState::Elsewhere);
                    if pause(&mut stop, options.renew).await {
                        break Ok(());
                    }
                    continue;
                }
                Err(error) => {
                    tracing::warn!(lease = %name, %error, "cannot take a lease: trying again");
                    report.send_replace(LeaseState::Elsewhere);
                    if pause(&mut stop, options.renew).await {
                        break Ok(());
                    }
                    continue;
                }
            };
            tracing::info!(lease = %name, holder = %holder, generation, "lease taken: starting its work");
            report.send_replace(LeaseState::Held { generation });
            let (lose, lost) = watch::channel(false);
            let mut running = tokio::spawn(job(Held { generation, stop: lost }));
            let mut renewed = Instant::now();
            loop {
                tokio::select! {
                    ended = &mut running => {
                        let outcome = ended.unwrap_or_else(|error| Err(format!("the job panicked: {error}")));
                        release(&store, &name, &holder).await;
                        report.send_replace(LeaseState::Stopped);
                        break 'keeping outcome;
                    }
                    () = until_stopped(&mut stop) => {
                        let _ = lose.send(true);
                        let outcome = (&mut running)
                            .await
                            .unwrap_or_else(|error| Err(format!("the job panicked: {error}")));
                        release(&store, &name, &holder).await;
                        break 'keeping outcome;
                    }
                    () = tokio::time::sleep(options.renew) => {
                        let lost_because = match try_lease(&store, &name, &holder, options).await {
                            Ok(Some(renewed_generation)) if renewed_generation == generation => {
                                renewed = Instant::now();
                                None
                            }
                            Ok(_) => Some("another holder took it".to_owned()),
                            Err(error) if renewed.elapsed() + options.renew >= options.ttl => {
                                Some(format!("no renewal for a whole TTL ({error})"))
                            }
                            Err(error) => {
                                tracing::warn!(lease = %name, %error, "cannot renew a lease: trying again");
                                None
                            }
                        };
                        if let Some(reason) = lost_because {
                            tracing::warn!(lease = %name, holder = %holder, generation, %reason, "lease lost: stopping its work");
                            let _ = lose.send(true);
                            if let Ok(Err(error)) = (&mut running).await {
                                tracing::warn!(lease = %name, %error, "the work under a lost lease ended with an error");
                            }
                            report.send_replace(LeaseState::Elsewhere);
                            continue 'keeping;
                        }
                    }
                }
            }
        };
        report.send_replace(LeaseState::Stopped);
        outcome
    });
    Kept { state, task }
}

/// One attempt to take or renew the lease, bounded by a renewal period: a store that does not
/// answer must not keep a holder running its job past the deadline it cannot renew.
async fn try_lease<S: EventStore>(
    store: &S,
    name: &str,
    holder: &str,
    options: LeaseOptions,
) -> Result<Option<u64>, StoreError> {
    match tokio::time::timeout(options.renew, store.acquire_lease(name, holder, options.ttl)).await {
        Ok(answer) => answer,
        Err(_) => Err(StoreError::Io(format!("no answer from the store within {:?}", options.renew))),
    }
}

/// Completes when `stop` turns true or its sender is gone.
async fn until_stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// Sleeps `duration` unless `stop` turns true first (then true).
async fn pause(stop: &mut watch::Receiver<bool>, duration: Duration) -> bool {
    // A closed channel (the owner gone) stops too.
    tokio::time::timeout(duration, until_stopped(stop)).await.is_ok()
}

async fn release<S: EventStore>(store: &S, name: &str, holder: &str) {
    match store.release_lease(name, holder).await {
        Ok(()) => tracing::info!(lease = %name, holder = %holder, "lease released"),
        Err(error) => {
            tracing::warn!(lease = %name, %error, "cannot release a lease: it passes on at its deadline");
        }
    }
}

/// A lease's record in a [`LeaseLog`]: who holds it, its generation, and whether it was given up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRecord {
    pub holder: String,
    pub generation: u64,
    pub released: bool,
}

/// The first word of an encoded [`LeaseRecord`].
const LEASE_RECORD_VERSION: &str = "lease/1";

impl LeaseRecord {
    /// `lease/1 <generation> held|released <holder>`: one line, readable in a server's UI.
    pub fn encode(&self) -> bytes::Bytes {
        let state = if self.released { "released" } else { "held" };
        bytes::Bytes::from(format!("{LEASE_RECORD_VERSION} {} {state} {}", self.generation, self.holder))
    }

    /// The record [`LeaseRecord::encode`] wrote, or `None` for anything else.
    pub fn decode(bytes: &[u8]) -> Option<LeaseRecord> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut parts = text.splitn(4, ' ');
        if parts.next()? != LEASE_RECORD_VERSION {
            return None;
        }
        let generation = parts.next()?.parse().ok()?;
        let released = match parts.next()? {
            "held" => false,
            "released" => true,
            _ => return None,
        };
        let holder = parts.next()?.to_owned();
        (!holder.is_empty() && holder.len() <= LEASE_HOLDER_BYTES_MAX).then_some(LeaseRecord {
            holder,
            generation,
            released,
        })
    }
}

/// A log of lease records with one atomic operation, an append at an expected revision: what a
/// store without a clock or a row to update keeps its leases in (EventStoreDB: a stream per
/// lease). [`Observed`] takes and renews leases over it.
pub trait LeaseLog: Send + Sync {
    /// The last record of the lease `name` with its revision, if it has one.
    fn last_record(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<(u64, LeaseRecord)>, StoreError>> + Send;

    /// Appends `record` to the lease `name` if its last revision is still `expected` (`None`:
    /// it has no record yet). `Ok(false)` when another writer came first.
    fn append_record(
        &self,
        name: &str,
        expected: Option<u64>,
        record: &LeaseRecord,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// The most leases an [`Observed`] remembers records of; past it, it forgets them all (each
/// contender then waits one more TTL).
const OBSERVED_LEASES_MAX: usize = 1_024;

/// Leases over a [`LeaseLog`], as one process sees them: for each lease another holds, the last
/// record seen and when this process first saw it. That record's holder is taken to be gone
/// once it has stayed the last for a whole TTL of this process's clock: a holder renews five
/// times per TTL, each renewal a new record.
#[derive(Debug, Default)]
pub struct Observed {
    seen: Mutex<HashMap<String, (u64, std::time::Instant)>>,
}

impl Observed {
    pub fn new() -> Observed {
        Observed::default()
    }

    /// Takes the lease `name` for `holder`, or renews it: its generation, or `None` while
    /// another holder has it (see [`EventStore::acquire_lease`](crate::EventStore::acquire_lease)).
    pub async fn acquire<L: LeaseLog>(
        &self,
        log: &L,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<Option<u64>, StoreError> {
        check_lease(name, holder)?;
        let last = log.last_record(name).await?;
        let Some((expected, record)) = self.next_record(name, holder, last, ttl, std::time::Instant::now())
        else {
            return Ok(None);
        };
        if log.append_record(name, expected, &record).await? { Ok(Some(record.generation)) } else { Ok(None) }
    }

    /// Gives up the lease `name` if `holder` holds it: a released record after its own.
    pub async fn release<L: LeaseLog>(&self, log: &L, name: &str, holder: &str) -> Result<(), StoreError> {
        check_lease(name, holder)?;
        if let Some((revision, record)) = log.last_record(name).await?
            && record.holder == holder
            && !record.released
        {
            // Another writer first means the lease had already moved on: nothing to give up.
            log.append_record(name, Some(revision), &LeaseRecord { released: true, ..record }).await?;
        }
        Ok(())
    }

    /// What `holder` appends to the lease `name` whose last record is `last`, at `now`, and at
    /// which expected revision: `None` while another holder has it.
    pub fn next_record(
        &self,
        name: &str,
        holder: &str,
        last: Option<(u64, LeaseRecord)>,
        ttl: Duration,
        now: std::time::Instant,
    ) -> Option<(Option<u64>, LeaseRecord)> {
        let Some((revision, record)) = last else {
            return Some((None, LeaseRecord { holder: holder.to_owned(), generation: 1, released: false }));
        };
        let take = |generation| {
            Some((Some(revision), LeaseRecord { holder: holder.to_owned(), generation, released: false }))
        };
        if record.holder == holder {
            // A renewal, or the holder that gave it up taking it again: the same generation, as
            // on PostgreSQL, where a generation counts changes of holder.
            return take(record.generation);
        }
        if record.released {
            return take(record.generation.saturating_add(1));
        }
        let mut seen = self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match seen.get(name) {
            Some(&(seen_revision, since)) if seen_revision == revision => {
                if now.saturating_duration_since(since) >= ttl {
                    seen.remove(name);
                    take(record.generation.saturating_add(1))
                } else {
                    None
                }
            }
            _ => {
                if seen.len() >= OBSERVED_LEASES_MAX && !seen.contains_key(name) {
                    seen.clear();
                }
                seen.insert(name.to_owned(), (revision, now));
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    fn record(holder: &str, generation: u64, released: bool) -> LeaseRecord {
        LeaseRecord { holder: holder.to_owned(), generation, released }
    }

    #[test]
    fn a_lease_record_reads_back_as_written_and_nothing_else_reads() {
        for written in [record("pod-a-12-0f3e", 1, false), record("a holder with spaces", 7, true)] {
            assert_eq!(LeaseRecord::decode(&written.encode()), Some(written));
        }
        assert_eq!(&record("b", 3, true).encode()[..], b"lease/1 3 released b");
        for bad in
            ["", "lease/1", "lease/2 1 held a", "lease/1 x held a", "lease/1 1 taken a", "lease/1 1 held "]
        {
            assert_eq!(LeaseRecord::decode(bad.as_bytes()), None, "{bad:?}");
        }
        assert_eq!(LeaseRecord::decode(&[0xff, 0xfe]), None);
    }

    #[test]
    fn a_free_or_released_lease_is_taken_at_once_and_a_holder_renews_its_own() {
        let observed = Observed::new();
        let ttl = Duration::from_secs(2);
        let now = Instant::now();
        assert_eq!(observed.next_record("jobs", "a", None, ttl, now), Some((None, record("a", 1, false))));
        assert_eq!(
            observed.next_record("jobs", "a", Some((4, record("a", 1, false))), ttl, now),
            Some((Some(4), record("a", 1, false))),
            "a renewal keeps the generation"
        );
        assert_eq!(
            observed.next_record("jobs", "b", Some((5, record("a", 1, true))), ttl, now),
            Some((Some(5), record("b", 2, false))),
            "a released lease goes to the next holder, one generation on"
        );
        assert_eq!(
            observed.next_record("jobs", "a", Some((5, record("a", 1, true))), ttl, now),
            Some((Some(5), record("a", 1, false))),
            "the holder that released it takes it again in the same generation"
        );
    }

    #[test]
    fn another_holders_lease_is_taken_only_after_its_record_stayed_the_last_for_a_ttl() {
        let observed = Observed::new();
        let ttl = Duration::from_secs(2);
        let start = Instant::now();
        let held = |revision| Some((revision, record("a", 3, false)));
        assert_eq!(observed.next_record("jobs", "b", held(10), ttl, start), None, "first seen");
        assert_eq!(observed.next_record("jobs", "b", held(10), ttl, start + ttl / 2), None, "half a TTL");
        // The holder renewed: the wait starts again from the new record.
        assert_eq!(observed.next_record("jobs", "b", held(11), ttl, start + ttl), None, "renewed");
        assert_eq!(observed.next_record("jobs", "b", held(11), ttl, start + ttl * 3 / 2), None);
        assert_eq!(
            observed.next_record("jobs", "b", held(11), ttl, start + ttl * 2),
            Some((Some(11), record("b", 4, false))),
            "a TTL after the last renewal was seen"
        );
        // Leases are watched apart.
        assert_eq!(observed.next_record("other", "b", held(11), ttl, start + ttl * 2), None);
    }
}
