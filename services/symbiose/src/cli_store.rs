//! `symbiose store`: the event log on disk checked and repaired offline, in the data
//! directory of a server that is stopped; never over gRPC. The embedded store only: a server
//! with `SYMBIOSE_STORE=postgres` keeps its events in PostgreSQL, whose own tools check them.
//! `copy` is the exception: a whole log copied from one store to another, of either backend.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::Subcommand;
use symbiose_eventstore::copy::{LogDigest, copy_log, digest_log};
use symbiose_eventstore::embedded::{self, EmbeddedStore, IndexFile, VerifyReport};
use symbiose_eventstore::postgres::{PostgresOptions, PostgresStore};
use symbiose_eventstore::{AnyStore, EventStore as _};
use symbiose_kit::config::{PostgresUrl, STORE};

use crate::progress::Progress;

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Scan every segment of the event log and its index files: one line per segment and one
    /// per problem; exit 0 if the log is sound, 1 if a problem was found.
    Verify,
    /// Cut a segment of the event log at a record boundary (where `verify` says damage
    /// starts), keeping the cut bytes beside it in `<segment>.cut-<offset>`.
    Repair {
        /// The segment file, as `verify` names it: "00000000000000000000.seg".
        #[arg(long)]
        segment: String,
        /// Where to cut, in bytes from the start of the file.
        #[arg(long)]
        offset: u64,
        /// Also set aside every later segment (renamed `<segment>.cut`), for a cut in a
        /// segment that is not the last.
        #[arg(long)]
        drop_later_segments: bool,
    },
    /// Back up the data directory (SYMBIOSE_DATA_DIR, --data-dir) of a service on the embedded
    /// store, while it runs: the relay's and the reactors' checkpoints and the views'
    /// snapshots, then the event log as far as it is written (each segment as long as it is
    /// when read: the copy ends at its last whole record, after every append acknowledged
    /// before the backup started), then the vault's keys and the signing key. Writes
    /// `manifest.json` with the backup's number of events and their SHA-256 digest. Archive
    /// the directory as you like (`tar -czf`); it holds secrets: keep it as you keep the keys.
    Backup {
        /// A new (or empty) directory for the backup.
        #[arg(long, value_name = "DIR")]
        to: PathBuf,
    },
    /// Restore a backup made by `store backup` into the data directory, which must hold no
    /// event log and no vault (a signing key already there must be the backup's). The restored
    /// log is read again and its digest compared with the backup's: exit 0 if equal, 1 if not.
    /// Before starting the service on it, see the README's runbook for NATS.
    Restore {
        /// The backup's directory.
        #[arg(long, value_name = "DIR")]
        from: PathBuf,
    },
    /// Copy a whole event log from one store to another, embedded or PostgreSQL: every event
    /// with its stream, version, id, type, payload and metadata, in log order, so positions
    /// and versions come out the same, and soft-deleted streams deleted in the target. Then
    /// both logs are read again and their event counts and SHA-256 digests printed: exit 0 if
    /// they are equal, 1 if not, 2 on an error or a refusal.
    ///
    /// Resumable: run it again after an interruption and it goes on from the target's last
    /// event, once it has checked that the target's events are the source's (a target holding
    /// other events is refused, nothing written). Not kept: the time each event was recorded
    /// (the target records the time of the copy), and how the source grouped events into
    /// appends (consecutive events of a stream are written in one). The source's servers
    /// should be stopped (an embedded store in use is refused); events a PostgreSQL source
    /// gets during the copy are left for the next run.
    Copy {
        /// The store to copy from: `embedded:<events dir>` (the `events` folder of a data
        /// directory) or `postgres:<url>` (`postgres:postgres://user:password@host:5432/db`).
        #[arg(long, value_name = "STORE", value_parser = StoreAddress::parse)]
        from: StoreAddress,
        /// The store to copy to, named the same way: an empty one, or one an interrupted copy
        /// from the same source left (an embedded directory is made if missing; a PostgreSQL
        /// database must exist, its tables are made).
        #[arg(long, value_name = "STORE", value_parser = StoreAddress::parse)]
        to: StoreAddress,
    },
}

/// A store named on the command line. Shown with its URL's password hidden.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreAddress {
    Embedded(PathBuf),
    Postgres(PostgresUrl),
}

impl StoreAddress {
    /// `embedded:<events dir>` or `postgres:<url>`.
    fn parse(text: &str) -> Result<StoreAddress, String> {
        if let Some(dir) = text.strip_prefix("embedded:") {
            if dir.is_empty() {
                return Err("embedded: needs the events directory, like embedded:./data/events".to_owned());
            }
            return Ok(StoreAddress::Embedded(PathBuf::from(dir)));
        }
        if let Some(url) = text.strip_prefix("postgres:") {
            return PostgresUrl::parse(url).map(StoreAddress::Postgres).map_err(|error| error.reason);
        }
        Err("must be embedded:<events dir> or postgres:<url>".to_owned())
    }

    /// Opens the store; `existing` refuses an embedded directory that is not there (a source).
    async fn open(&self, existing: bool) -> Result<AnyStore, String> {
        match self {
            StoreAddress::Embedded(dir) => {
                if existing && !dir.join("00000000000000000000.seg").exists() {
                    return Err(format!("{self}: no event log there"));
                }
                let (store, _) = EmbeddedStore::open(dir, embedded::Options::default())
                    .map_err(|error| format!("{self}: {error}"))?;
                Ok(store.into())
            }
            StoreAddress::Postgres(url) => PostgresStore::connect(url.expose(), PostgresOptions::default())
                .await
                .map(AnyStore::from)
                .map_err(|error| format!("{self}: {error}")),
        }
    }
}

impl std::fmt::Display for StoreAddress {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreAddress::Embedded(dir) => write!(formatter, "embedded:{}", dir.display()),
            StoreAddress::Postgres(url) => write!(formatter, "postgres:{url}"),
        }
    }
}

/// Runs a `store` subcommand on the log in `<data_dir>/events`; the exit code is 0 on
/// success, 1 when `verify` found a problem, 2 on an error (the directory in use by a running
/// server, a repair refused, a store that is not the embedded one). `copy` works on the
/// stores it names, whatever the data directory and `SYMBIOSE_STORE`.
pub async fn run(data_dir: &Path, command: StoreCommand) -> ExitCode {
    if let StoreCommand::Copy { from, to } = command {
        return match copy(&from, &to).await {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::from(1),
            Err(error) => {
                eprintln!("error: {error}");
                ExitCode::from(2)
            }
        };
    }
    if let Err(error) = embedded_only(std::env::var(STORE).ok().as_deref()) {
        eprintln!("error: {error}");
        return ExitCode::from(2);
    }
    let backed_up = match &command {
        StoreCommand::Backup { to } => Some(crate::cli_backup::backup(data_dir, to).await.map(|_| true)),
        StoreCommand::Restore { from } => Some(crate::cli_backup::restore(from, data_dir).await),
        _ => None,
    };
    if let Some(outcome) = backed_up {
        return match outcome {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::from(1),
            Err(error) => {
                eprintln!("error: {error}");
                ExitCode::from(2)
            }
        };
    }
    let events_dir = data_dir.join(crate::EVENTS_DIR);
    let outcome = match command {
        StoreCommand::Verify => embedded::verify(&events_dir).map(|report| {
            print!("{}", describe(&report));
            report.is_sound()
        }),
        StoreCommand::Copy { .. } => unreachable!("copy is run above"),
        StoreCommand::Backup { .. } | StoreCommand::Restore { .. } => unreachable!("run above"),
        StoreCommand::Repair { segment, offset, drop_later_segments } => {
            embedded::repair(&events_dir, &segment, offset, drop_later_segments).map(|repaired| {
                match &repaired.kept {
                    Some(kept) => println!(
                        "cut {segment} at offset {offset}: {} bytes kept in {}",
                        repaired.cut_bytes,
                        kept.display()
                    ),
                    None => println!("cut {segment} at offset {offset}: nothing after it"),
                }
                for aside in &repaired.set_aside {
                    println!("set aside {}", aside.display());
                }
                true
            })
        }
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(2)
        }
    }
}

/// Copies `from` into `to`, then digests both: `Ok(true)` if they are equal.
async fn copy(from: &StoreAddress, to: &StoreAddress) -> Result<bool, String> {
    if from == to {
        return Err(format!("{from} is both the source and the target"));
    }
    let source = from.open(true).await?;
    let target = match to.open(false).await {
        Ok(target) => target,
        Err(error) => {
            source.close().await;
            return Err(error);
        }
    };
    let outcome = copy_open(from, to, &source, &target).await;
    source.close().await;
    target.close().await;
    outcome
}

async fn copy_open(
    from: &StoreAddress,
    to: &StoreAddress,
    source: &AnyStore,
    target: &AnyStore,
) -> Result<bool, String> {
    let (source_head, target_head) = (source.head().as_u64(), target.head().as_u64());
    println!("copying {from} ({source_head} events) to {to} ({target_head} events)");
    let started = Instant::now();
    let mut progress = Progress::new(source_head.saturating_sub(target_head));
    progress.phase("copying events");
    let mut shown = 0;
    let copied = copy_log(source, target, source_head, |copied| {
        progress.advance(copied - shown);
        shown = copied;
    })
    .await;
    progress.finish();
    let copied = copied.map_err(|error| format!("copying {from} to {to}: {error}"))?;
    let events = copied.to_position - copied.from_position;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "copied {events} events (positions {} to {}) in {} appends, {} streams deleted, in {seconds:.1} s ({:.0} events/s)",
        copied.from_position,
        copied.to_position,
        copied.appends,
        copied.deleted_streams,
        events as f64 / seconds.max(0.001)
    );
    let source_digest =
        digest(source, "digesting source").await.map_err(|error| format!("reading {from}: {error}"))?;
    let target_digest =
        digest(target, "digesting target").await.map_err(|error| format!("reading {to}: {error}"))?;
    println!("source: {source_digest}");
    println!("target: {target_digest}");
    if source_digest == target_digest {
        println!("verified: the target's events are the source's");
        Ok(true)
    } else {
        println!("the logs differ");
        Ok(false)
    }
}

async fn digest(store: &AnyStore, phase: &'static str) -> Result<LogDigest, symbiose_eventstore::StoreError> {
    let mut progress = Progress::new(store.head().as_u64());
    progress.phase(phase);
    let mut shown = 0;
    let digest = digest_log(store, |read| {
        progress.advance(read - shown);
        shown = read;
    })
    .await;
    progress.finish();
    digest
}

/// Refuses a store the configuration (`store`, the value of `SYMBIOSE_STORE`) names other than
/// the embedded one: there is no log on disk to check.
fn embedded_only(store: Option<&str>) -> Result<(), String> {
    match store.map(str::trim) {
        None | Some("") => Ok(()),
        Some(store) if store.eq_ignore_ascii_case("embedded") => Ok(()),
        Some(store) => Err(format!(
            "{STORE}={store:?}: `symbiose store` checks, repairs, backs up and restores the embedded store \
             only; this server keeps its events, checkpoints and vault keys in its database: back them \
             up with the database's own tools (pg_dump, or the operator's backups and volume snapshots)"
        )),
    }
}

/// One line per segment, one per problem, and a last line that sums up.
fn describe(report: &VerifyReport) -> String {
    let mut text = String::new();
    for segment in &report.segments {
        let positions = match (segment.first_position, segment.last_position) {
            (Some(first), Some(last)) => format!("positions {first} to {last}"),
            _ => "no event".to_owned(),
        };
        let index = match segment.index {
            IndexFile::NotSealed => "last segment",
            IndexFile::Missing => "index missing",
            IndexFile::Sound => "index sound",
            IndexFile::Bad => "index bad",
            IndexFile::NotChecked => "index not checked",
        };
        text.push_str(&format!(
            "{}: format {}, {} bytes, {} records, {} events, {positions}, {index}\n",
            segment.file, segment.format, segment.bytes, segment.records, segment.events
        ));
    }
    for problem in &report.problems {
        text.push_str(&format!(
            "{} {} offset {}: {}\n",
            problem.kind, problem.file, problem.offset, problem.reason
        ));
    }
    let problems = match report.problems.len() {
        0 => "sound".to_owned(),
        1 => "1 problem".to_owned(),
        count => format!("{count} problems"),
    };
    text.push_str(&format!("{} segments, {} events: {problems}\n", report.segments.len(), report.events()));
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_is_named_by_its_backend_and_shown_without_its_password() {
        assert_eq!(
            StoreAddress::parse("embedded:./data/events"),
            Ok(StoreAddress::Embedded(PathBuf::from("./data/events")))
        );
        let postgres =
            StoreAddress::parse("postgres:postgres://symbiose:hunter2@db:5432/symbiose").expect("valid");
        assert_eq!(postgres.to_string(), "postgres:postgres://symbiose:***@db:5432/symbiose");
        assert!(!format!("{postgres:?}").contains("hunter2"));
        for bad in ["./data/events", "embedded:", "postgres:", "postgres:db:5432/symbiose", "sqlite:x"] {
            assert!(StoreAddress::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_the_embedded_store_is_checked() {
        for store in [None, Some(""), Some("embedded"), Some("Embedded ")] {
            assert_eq!(embedded_only(store), Ok(()), "{store:?}");
        }
        let refused = embedded_only(Some("postgres")).expect_err("postgres");
        assert!(refused.starts_with("SYMBIOSE_STORE=\"postgres\""), "{refused}");
        assert!(refused.contains("embedded store only"), "{refused}");
    }
}
