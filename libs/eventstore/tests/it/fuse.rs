//! Power lost under a real writing process, on a real file system that forgets what was not
//! synced (`symbiose-forgetfs`, mounted with FUSE): `eventstore-torture` appends with many
//! writers into a store on the mount and reports each acknowledgement; the power goes during
//! one of its syncs (the machine halts: that sync never returns), it is killed with SIGKILL,
//! and the disk's durable image is mounted afresh, as after a reboot. Every acknowledged event
//! must be there, at its position, with its id, each stream in order: no append is
//! acknowledged before its `fdatasync` returns. Each cycle appends on from what the last power
//! loss left.
//!
//! With the feature `unsafe-ack-before-sync` (a store that answers before it syncs) this test
//! fails with "acknowledged event lost".

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead as _, BufReader};
use std::os::unix::process::ExitStatusExt as _;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use symbiose_eventstore::embedded::{EmbeddedStore, Options};
use symbiose_eventstore::{Direction, EventStore, RecordedEvent, StreamName};
use symbiose_forgetfs::{Disk, Lost, Mounted, fuse_or_skip};
use uuid::Uuid;

use crate::crash::{Ack, parse};

const TORTURE: &str = env!("CARGO_BIN_EXE_eventstore-torture");
/// A store that answers before it syncs is caught in about three cycles out of four: as the
/// writer runs ahead of the syncs, a group is often made durable by the sync before its own,
/// before it is answered. Ten cycles catch it but for about one run in a million.
const CYCLES: usize = 10;
const WRITERS: &str = "32";
/// Acknowledgements read before the power is set to go, at least...
const ACKS_BEFORE_CUT_MIN: usize = 200;
/// ...and up to this many more, at random.
const ACKS_BEFORE_CUT_SPREAD: usize = 200;
/// Longest wait for those acknowledgements; the power is set to go then whatever they reached.
const ACKS_WAIT_MS: u64 = 10_000;
/// Lines read ahead of the test from the writer's output, at most.
const LINES_QUEUED_MAX: usize = 1024;
/// The power goes during one of the writer's next syncs, up to this many: a different moment
/// each cycle.
const SYNCS_BEFORE_CUT_SPREAD: u32 = 8;
/// Longest wait for that sync.
const CUT_WAIT_MS: u64 = 10_000;
/// The writer prints the acknowledgements it had before the power went a moment after: it is
/// killed once none has come for this long (or the wait for the sync runs out).
const ACKS_QUIET_MS: u64 = 50;
/// Streams read back by stream after each power loss.
const STREAMS_READ_BACK: usize = 4;
/// The store's directory on the mount, two levels the store makes itself (durably: each new
/// directory's name synced in its parent) at its first start.
const STORE_DIR: &str = "data/events";

fn options() -> Options {
    Options { segment_bytes_max: 256 * 1024, ..Options::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_acknowledged_event_is_lost_when_the_power_goes() {
    if !fuse_or_skip("no_acknowledged_event_is_lost_when_the_power_goes") {
        return;
    }
    let started = Instant::now();
    let mut disk = Disk::new();
    let mut acknowledged: Vec<Ack> = Vec::new();
    let mut forgotten_bytes = 0;

    for cycle in 0..CYCLES {
        let mounted = disk.mount_temporary().expect("mount the disk");
        let dir = mounted.path().join(STORE_DIR);
        let child = Command::new(TORTURE)
            .args(["--dir", dir.to_str().expect("utf-8 path"), "--writers", WRITERS])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the torture writer");
        let jitter = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).expect("clock").subsec_nanos();
        let cut = Cut {
            acks_before: ACKS_BEFORE_CUT_MIN + jitter as usize % ACKS_BEFORE_CUT_SPREAD,
            syncs_before: u64::from(jitter % SYNCS_BEFORE_CUT_SPREAD),
        };
        let (acks, image, lost) = run_until_the_power_goes(child, mounted, cut, cycle);
        assert!(!acks.is_empty(), "cycle {cycle}: the writer acknowledged nothing before the power went");
        let acks_this_cycle = acks.len();
        acknowledged.extend(acks);
        forgotten_bytes += lost.bytes;

        // The reboot: the durable image, mounted afresh, with nothing in any cache.
        let mounted = image.mount_temporary().expect("mount the image left by the power loss");
        let dir = mounted.path().join(STORE_DIR);
        let (store, report) = EmbeddedStore::open(&dir, options())
            .unwrap_or_else(|error| panic!("cycle {cycle}: open after the power loss: {error}"));
        verify(&store, &acknowledged, cycle).await;
        let acknowledged_events: u64 = acknowledged.iter().map(|ack| ack.ids.len() as u64).sum();
        assert!(
            report.events >= acknowledged_events,
            "cycle {cycle}: {} events after the power loss, {acknowledged_events} acknowledged",
            report.events
        );
        println!(
            "cycle {cycle}: {acks_this_cycle} acknowledgements, the power loss forgot {} bytes and {} \
             entries, the store reopened with {} events ({} bytes of a torn write cut)",
            lost.bytes, lost.entries, report.events, report.truncated_bytes
        );
        store.close().await;
        // The next cycle starts from what the store left on the disk, synced or not.
        (disk, _) = mounted.power_loss();
    }

    println!(
        "power loss under eventstore-torture: {CYCLES} cycles, {} acknowledgements, {forgotten_bytes} bytes \
         forgotten, {:?}",
        acknowledged.len(),
        started.elapsed()
    );
    assert!(
        forgotten_bytes > 0,
        "no power loss forgot a byte: the writer was never caught with unsynced data, so this run proved nothing"
    );
}

/// When the power goes in a cycle: during the sync that comes `syncs_before` syncs after the
/// writer's `acks_before`th acknowledgement.
#[derive(Debug, Clone, Copy)]
struct Cut {
    acks_before: usize,
    syncs_before: u64,
}

/// Reads the writer's acknowledgements until the power goes at `cut`, kills the writer with
/// SIGKILL while the machine is halted, and returns every acknowledgement it printed, with the
/// disk the power loss left and what it forgot.
fn run_until_the_power_goes(
    mut child: Child,
    mounted: Mounted,
    cut: Cut,
    cycle: usize,
) -> (Vec<Ack>, Disk, Lost) {
    let stdout = child.stdout.take().expect("stdout");
    let (sender, lines) = mpsc::sync_channel(LINES_QUEUED_MAX);
    let reader = std::thread::spawn(move || {
        let mut stdout = BufReader::new(stdout);
        loop {
            let mut line = String::new();
            match stdout.read_line(&mut line) {
                // A line cut by the kill was never printed whole: not an acknowledgement.
                Ok(0) | Err(_) => break,
                Ok(_) if !line.ends_with('\n') => break,
                Ok(_) => {
                    if sender.send(line).is_err() {
                        break;
                    }
                }
            }
        }
    });
    let parse_line = |line: String| {
        parse(line.trim_end()).unwrap_or_else(|| panic!("cycle {cycle}: not an ack line: {line:?}"))
    };
    let mut acks = Vec::new();
    let deadline = Instant::now() + Duration::from_millis(ACKS_WAIT_MS);
    while acks.len() < cut.acks_before {
        match lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => acks.push(parse_line(line)),
            Err(_) => break,
        }
    }
    // The power goes during a sync: the moment where a store that answers too early has
    // acknowledged what is not yet on the disk. The writer hangs there, as on a halted machine,
    // so it never sees an error it could act on before it is killed.
    mounted.halt_after_syncs(cut.syncs_before);
    let deadline = Instant::now() + Duration::from_millis(CUT_WAIT_MS);
    while mounted.has_power() && Instant::now() < deadline {
        if let Ok(line) = lines.recv_timeout(Duration::from_millis(1)) {
            acks.push(parse_line(line));
        }
    }
    assert!(!mounted.has_power(), "cycle {cycle}: the writer made no sync in {CUT_WAIT_MS} ms");
    while Instant::now() < deadline {
        match lines.recv_timeout(Duration::from_millis(ACKS_QUIET_MS)) {
            Ok(line) => acks.push(parse_line(line)),
            Err(_) => break,
        }
    }
    child.kill().expect("SIGKILL the writer");
    // The power loss fails the operations the halt held, so the writer can finish dying.
    let (disk, lost) = mounted.power_loss();
    // What it printed up to the kill was acknowledged too: the last of those are the ones a
    // store that answers too early has not synced.
    acks.extend(lines.iter().map(parse_line));
    reader.join().expect("the reader thread");
    let status = child.wait().expect("wait for the writer");
    assert_eq!(status.signal(), Some(9), "cycle {cycle}: the writer ended with {status}, not by the SIGKILL");
    (acks, disk, lost)
}

/// Every acknowledged event is in the log once, at the position, version and stream it was
/// acknowledged with; positions have no gap; each stream's versions follow in the log, and a
/// few streams read back whole by stream.
async fn verify(store: &EmbeddedStore, acknowledged: &[Ack], cycle: usize) {
    let all = crate::read_whole_log(store).await;
    for (expected, event) in all.iter().enumerate() {
        assert_eq!(event.position.as_u64(), expected as u64, "cycle {cycle}: positions without gaps");
    }
    let by_id: HashMap<Uuid, usize> =
        all.iter().enumerate().map(|(index, event)| (event.id, index)).collect();
    assert_eq!(by_id.len(), all.len(), "cycle {cycle}: no event twice");
    for ack in acknowledged {
        let first_version = ack.last_version + 1 - ack.ids.len() as u64;
        for (offset, id) in ack.ids.iter().enumerate() {
            let position = ack.first_position + offset as u64;
            let version = first_version + offset as u64;
            let Some(index) = by_id.get(id) else {
                panic!(
                    "cycle {cycle}: acknowledged event lost: {id} of {} (position {position}, version \
                     {version}) is not in the log after the power loss ({} events there)",
                    ack.stream,
                    all.len()
                );
            };
            let event = &all[*index];
            assert_eq!(event.stream.as_str(), ack.stream, "cycle {cycle}: {id} in its stream");
            assert_eq!(event.position.as_u64(), position, "cycle {cycle}: {id} at its position");
            assert_eq!(event.version, version, "cycle {cycle}: {id} at its version");
        }
    }
    let mut by_stream: BTreeMap<&str, Vec<&RecordedEvent>> = BTreeMap::new();
    for event in &all {
        by_stream.entry(event.stream.as_str()).or_default().push(event);
    }
    for (name, events) in &by_stream {
        for (version, event) in events.iter().enumerate() {
            assert_eq!(event.version, version as u64, "cycle {cycle}: {name} versions in order");
        }
    }
    // Reading by stream looks each event up on its own: a few streams are enough to check it.
    for (name, events) in by_stream.iter().take(STREAMS_READ_BACK) {
        let stream = StreamName::new(name).expect("name");
        let read = store.read_stream(&stream, 0, Direction::Forward, 10_000).await.expect("read stream");
        let ids: Vec<Uuid> = read.iter().map(|event| event.id).collect();
        let expected: Vec<Uuid> = events.iter().map(|event| event.id).collect();
        assert_eq!(ids, expected, "cycle {cycle}: {name} reads back by stream as in the log");
    }
}
