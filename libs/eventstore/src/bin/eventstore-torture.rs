//! `eventstore-torture --dir PATH [--writers N] [--appends N]`: appends to an embedded store
//! from many concurrent writers and prints one line per acknowledged append, so that another
//! process can kill it at any moment and check that every acknowledged event survived.
//!
//! Each writer appends to its own stream `torture-<writer>` with the exact expected version,
//! going on from where the stream is, one to four events at a time. A line reads
//! `ack <stream> <last version> <first position> <id>,<id>,...`.

use std::io::Write as _;

use bytes::Bytes;
use symbiose_eventstore::embedded::{EmbeddedStore, Options};
use symbiose_eventstore::{EventData, EventStore, ExpectedVersion, StreamName};
use uuid::Uuid;

/// Most writers and appends per writer accepted on the command line.
const WRITERS_MAX: usize = 1024;
const APPENDS_MAX: usize = 1_000_000;

#[tokio::main]
async fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let mut dir = None;
    let mut writers = 64;
    let mut appends = 100_000;
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--dir" => dir = Some(value()?),
            "--writers" => writers = value()?.parse().map_err(|_| "--writers takes a number")?,
            "--appends" => appends = value()?.parse().map_err(|_| "--appends takes a number")?,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let dir = dir.ok_or("--dir is required")?;
    if writers == 0 || writers > WRITERS_MAX || appends > APPENDS_MAX {
        return Err(format!("--writers must be 1 to {WRITERS_MAX}, --appends at most {APPENDS_MAX}"));
    }
    let (store, report) =
        EmbeddedStore::open(&dir, Options { segment_bytes_max: 256 * 1024, ..Options::default() })
            .map_err(|error| error.to_string())?;
    eprintln!("opened {dir}: {report:?}");

    let mut tasks = Vec::new();
    for writer in 0..writers {
        let store = store.clone();
        tasks.push(tokio::spawn(async move { write(store, writer, appends).await }));
    }
    for task in tasks {
        task.await.map_err(|error| error.to_string())??;
    }
    store.close().await;
    Ok(())
}

async fn write(store: EmbeddedStore, writer: usize, appends: usize) -> Result<(), String> {
    let stream = StreamName::new(&format!("torture-{writer}")).map_err(|error| error.to_string())?;
    let info = store.stream_info(&stream).await.map_err(|error| error.to_string())?;
    let mut expected =
        info.map_or(ExpectedVersion::NoStream, |info| ExpectedVersion::Exact(info.last_version));
    for append in 0..appends {
        let count = 1 + (writer + append) % 4;
        let events: Vec<EventData> = (0..count)
            .map(|index| {
                EventData::new(
                    Uuid::now_v7(),
                    "TortureEvent",
                    Bytes::from(format!("{writer}/{append}/{index} {:0>120}", 0)),
                )
            })
            .collect();
        let ids: Vec<String> = events.iter().map(|event| event.id.to_string()).collect();
        let result = store.append(&stream, expected, events).await.map_err(|error| error.to_string())?;
        expected = ExpectedVersion::Exact(result.next_expected_version);
        let line = format!(
            "ack {stream} {} {} {}\n",
            result.next_expected_version,
            result.first_position,
            ids.join(",")
        );
        std::io::stdout().lock().write_all(line.as_bytes()).map_err(|error| error.to_string())?;
    }
    Ok(())
}
