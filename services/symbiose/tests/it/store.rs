//! `symbiose store verify` and `symbiose store repair` as an operator runs them, on the data
//! directory of a stopped server.

use std::path::Path;
use std::process::{Command, Output};

use symbiose_eventstore::embedded::{EmbeddedStore, Options};
use symbiose_eventstore::{EventData, EventStore as _, ExpectedVersion, StreamName};

use crate::{BINARY, stderr, stdout};

/// Appends of the log the test damages.
const APPENDS: u64 = 20;

fn store_command(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(BINARY)
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("SYMBIOSE_DATA_DIR")
        .arg("store")
        .args(args)
        .output()
        .expect("run the client")
}

#[tokio::test]
async fn store_verify_names_the_damage_and_store_repair_cuts_there() {
    let data_dir = tempfile::tempdir().expect("dir");
    let events_dir = data_dir.path().join(symbiose::EVENTS_DIR);
    let (store, _) = EmbeddedStore::open(&events_dir, Options::default()).expect("open");
    let stream = StreamName::new("listing-1").expect("name");
    for index in 0..APPENDS {
        let event =
            EventData::new(uuid::Uuid::now_v7(), "ThingHappened", format!("payload {index}").into_bytes());
        store.append(&stream, ExpectedVersion::Any, vec![event]).await.expect("append");
    }
    store.close().await;

    let sound = store_command(data_dir.path(), &["verify"]);
    assert_eq!(sound.status.code(), Some(0), "{}", stdout(&sound));
    assert!(stdout(&sound).contains(&format!("1 segments, {APPENDS} events: sound")), "{}", stdout(&sound));

    let segment = std::fs::read_dir(&events_dir)
        .expect("list")
        .map(|entry| entry.expect("entry").path())
        .find(|path| path.extension().is_some_and(|extension| extension == "seg"))
        .expect("a segment");
    let mut bytes = std::fs::read(&segment).expect("read");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x10;
    std::fs::write(&segment, &bytes).expect("write");

    let found = store_command(data_dir.path(), &["verify"]);
    assert_eq!(found.status.code(), Some(1), "{}", stdout(&found));
    let line = stdout(&found).lines().find(|line| line.starts_with("damage ")).map(str::to_owned);
    let line = line.unwrap_or_else(|| panic!("a damage line: {}", stdout(&found)));
    // "damage <segment> offset <offset>: <reason>"
    let words: Vec<&str> = line.split_whitespace().collect();
    let (file, offset) = (words[1], words[3].trim_end_matches(':'));
    assert_eq!(file, segment.file_name().expect("name").to_string_lossy());
    let offset_bytes: usize = offset.parse().expect("an offset");
    assert!(offset_bytes <= middle, "{line}");

    let inside = (offset_bytes + 1).to_string();
    let refused = store_command(data_dir.path(), &["repair", "--segment", file, "--offset", &inside]);
    assert_eq!(refused.status.code(), Some(2), "an offset inside a record is refused");
    assert!(
        stderr(&refused).contains(&format!("offset {inside} is not a record boundary")),
        "{}",
        stderr(&refused)
    );
    let repaired = store_command(data_dir.path(), &["repair", "--segment", file, "--offset", offset]);
    assert_eq!(repaired.status.code(), Some(0), "{}", String::from_utf8_lossy(&repaired.stderr));
    assert!(stdout(&repaired).contains("kept in"), "{}", stdout(&repaired));
    let kept = events_dir.join(format!("{file}.cut-{offset}"));
    assert!(std::fs::read(&kept).expect("the cut bytes") == bytes[offset_bytes..]);

    let after = store_command(data_dir.path(), &["verify"]);
    assert_eq!(after.status.code(), Some(0), "{}", stdout(&after));
    let (store, report) =
        EmbeddedStore::open(&events_dir, Options::default()).expect("open after the repair");
    assert!((1..APPENDS).contains(&report.events), "the events before the damage: {}", report.events);
    store.close().await;
    assert!(
        stdout(&after).contains(&format!("1 segments, {} events: sound", report.events)),
        "{}",
        stdout(&after)
    );
}
