//! `symbiose store`: the event log on disk checked and repaired offline, in the data
//! directory of a server that is stopped; never over gRPC. The embedded store only: a server
//! with `SYMBIOSE_STORE=postgres` keeps its events in PostgreSQL, whose own tools check them.

use std::path::Path;
use std::process::ExitCode;

use clap::Subcommand;
use symbiose_eventstore::embedded::{self, IndexFile, VerifyReport};
use symbiose_kit::config::STORE;

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
}

/// Runs a `store` subcommand on the log in `<data_dir>/events`; the exit code is 0 on
/// success, 1 when `verify` found a problem, 2 on an error (the directory in use by a running
/// server, a repair refused, a store that is not the embedded one).
pub fn run(data_dir: &Path, command: StoreCommand) -> ExitCode {
    if let Err(error) = embedded_only(std::env::var(STORE).ok().as_deref()) {
        eprintln!("error: {error}");
        return ExitCode::from(2);
    }
    let events_dir = data_dir.join(crate::EVENTS_DIR);
    let outcome = match command {
        StoreCommand::Verify => embedded::verify(&events_dir).map(|report| {
            print!("{}", describe(&report));
            report.is_sound()
        }),
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

/// Refuses a store the configuration (`store`, the value of `SYMBIOSE_STORE`) names other than
/// the embedded one: there is no log on disk to check.
fn embedded_only(store: Option<&str>) -> Result<(), String> {
    match store.map(str::trim) {
        None | Some("") => Ok(()),
        Some(store) if store.eq_ignore_ascii_case("embedded") => Ok(()),
        Some(store) => Err(format!(
            "{STORE}={store:?}: `symbiose store` checks and repairs the embedded store only; \
             this server keeps its events elsewhere (PostgreSQL checks its own data)"
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
    fn only_the_embedded_store_is_checked() {
        for store in [None, Some(""), Some("embedded"), Some("Embedded ")] {
            assert_eq!(embedded_only(store), Ok(()), "{store:?}");
        }
        let refused = embedded_only(Some("postgres")).expect_err("postgres");
        assert!(refused.starts_with("SYMBIOSE_STORE=\"postgres\""), "{refused}");
        assert!(refused.contains("embedded store only"), "{refused}");
    }
}
