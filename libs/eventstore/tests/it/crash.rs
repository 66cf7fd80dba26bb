//! Crashes of a real process: `eventstore-torture` appends with many writers and reports
//! each acknowledgement; it is killed with SIGKILL at a random moment, many times over; after
//! each kill every acknowledged event is in the log exactly once, in order, and the log takes
//! appends again.
//!
//! `SYMBIOSE_CRASH_CYCLES` sets the number of kills (default 12).

use std::collections::{HashMap, HashSet};
use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};

use bytes::Bytes;
use symbiose_eventstore::embedded::{EmbeddedStore, Options};
use symbiose_eventstore::{Direction, EventData, EventStore, ExpectedVersion, StreamName};
use uuid::Uuid;

const TORTURE: &str = env!("CARGO_BIN_EXE_eventstore-torture");
const CYCLES_DEFAULT: usize = 12;
/// Most acknowledgements read before a kill.
const ACKS_BEFORE_KILL_MAX: u64 = 3000;

/// A small xorshift generator: the kill moments only need to differ from run to run.
struct Random(u64);

impl Random {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound
    }
}

#[derive(Debug)]
pub(crate) struct Ack {
    pub(crate) stream: String,
    pub(crate) last_version: u64,
    pub(crate) first_position: u64,
    pub(crate) ids: Vec<Uuid>,
}

pub(crate) fn parse(line: &str) -> Option<Ack> {
    let mut parts = line.split(' ');
    if parts.next()? != "ack" {
        return None;
    }
    let stream = parts.next()?.to_owned();
    let last_version = parts.next()?.parse().ok()?;
    let first_position = parts.next()?.parse().ok()?;
    let ids = parts.next()?.split(',').map(|id| id.parse().ok()).collect::<Option<Vec<Uuid>>>()?;
    Some(Ack { stream, last_version, first_position, ids })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_acknowledged_event_is_lost_when_the_writer_is_killed() {
    let cycles = std::env::var("SYMBIOSE_CRASH_CYCLES")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(CYCLES_DEFAULT);
    assert!(cycles >= 1, "SYMBIOSE_CRASH_CYCLES must be at least 1: a run of no cycle proves nothing");
    let dir = tempfile::tempdir().expect("dir");
    let seed =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("time").as_nanos() as u64;
    let mut random = Random(seed | 1);
    let mut acknowledged: Vec<Ack> = Vec::new();

    for cycle in 0..cycles {
        let kill_after = 1 + random.below(ACKS_BEFORE_KILL_MAX);
        let mut child = Command::new(TORTURE)
            .args(["--dir", dir.path().to_str().expect("utf-8 path"), "--writers", "64"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the torture writer");
        let stdout = child.stdout.take().expect("stdout");
        let mut seen = 0;
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let ack = parse(&line).unwrap_or_else(|| panic!("cycle {cycle}: not an ack line: {line:?}"));
            acknowledged.push(ack);
            seen += 1;
            if seen == kill_after {
                child.kill().expect("SIGKILL");
                break;
            }
        }
        // The writer acknowledged as many appends as the cycle waited for, and died of the
        // SIGKILL, not of itself: a writer that stopped early would make the cycle prove less.
        assert_eq!(seen, kill_after, "cycle {cycle}: the writer stopped after {seen} acknowledgements");
        let status = child.wait().expect("wait for the writer");
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9),
            "cycle {cycle}: the writer ended with {status}, not by the SIGKILL"
        );

        let (store, report) =
            EmbeddedStore::open(dir.path(), Options { segment_bytes_max: 256 * 1024, ..Options::default() })
                .unwrap_or_else(|error| panic!("cycle {cycle}: reopen after SIGKILL: {error}"));
        verify(&store, &acknowledged, cycle).await;
        assert!(report.events >= acknowledged.iter().map(|ack| ack.ids.len() as u64).sum::<u64>());
        // The log takes appends again.
        let probe = StreamName::new(&format!("probe-{cycle}")).expect("name");
        let event = EventData::new(Uuid::now_v7(), "Probe", Bytes::from_static(b"probe"));
        let appended =
            store.append(&probe, ExpectedVersion::NoStream, vec![event]).await.expect("append after reopen");
        assert_eq!(appended.first_position.as_u64(), report.events, "cycle {cycle}: no gap after recovery");
        store.close().await;
    }
    assert!(
        acknowledged.len() >= cycles,
        "{} acknowledgements over {cycles} cycles: each cycle waits for at least one",
        acknowledged.len()
    );
}

/// Every acknowledged event is in the log once, at the position and version it was given.
async fn verify(store: &EmbeddedStore, acknowledged: &[Ack], cycle: usize) {
    let all = crate::read_whole_log(store).await;
    for (expected, event) in all.iter().enumerate() {
        assert_eq!(event.position.as_u64(), expected as u64, "cycle {cycle}: positions without gaps");
    }
    let ids: HashSet<Uuid> = all.iter().map(|event| event.id).collect();
    assert_eq!(ids.len(), all.len(), "cycle {cycle}: no event twice");
    let by_id: HashMap<Uuid, usize> =
        all.iter().enumerate().map(|(index, event)| (event.id, index)).collect();
    for ack in acknowledged {
        let first_version = ack.last_version + 1 - ack.ids.len() as u64;
        for (offset, id) in ack.ids.iter().enumerate() {
            let index = *by_id
                .get(id)
                .unwrap_or_else(|| panic!("cycle {cycle}: acknowledged event {id} of {} lost", ack.stream));
            let event = &all[index];
            assert_eq!(event.stream.as_str(), ack.stream);
            assert_eq!(
                event.position.as_u64(),
                ack.first_position + offset as u64,
                "cycle {cycle}: position kept"
            );
            assert_eq!(event.version, first_version + offset as u64, "cycle {cycle}: version kept");
        }
    }
    // Streams read back in version order, whole.
    let streams: HashSet<&str> = acknowledged.iter().map(|ack| ack.stream.as_str()).collect();
    for name in streams {
        let stream = StreamName::new(name).expect("name");
        let events = store.read_stream(&stream, 0, Direction::Forward, 10_000).await.expect("read stream");
        for (version, event) in events.iter().enumerate() {
            assert_eq!(event.version, version as u64, "cycle {cycle}: {name} versions in order");
        }
    }
}
