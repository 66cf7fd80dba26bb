//! Power loss, simulated: the store runs on a [`SimDisk`] while writers append concurrently;
//! then, at points of the disk's record picked by a seeded generator, the power goes: what
//! was not synced is lost or torn (see `sim_disk`), the store is opened on what remains, and
//!
//! - it opens (a torn append is cut, never taken for damage);
//! - every acknowledged append is there, whole, at the positions it was given, with its
//!   stream's versions in order;
//! - nothing else is there but whole appends the writers made (an append not acknowledged
//!   may have reached the disk: then all of it, never part);
//! - it takes appends again, and they survive a clean close and reopen.
//!
//! Each seed runs several generations: the next one appends on from what a power loss left,
//! and the acknowledgements of every earlier generation must still hold.
//!
//! A seed fixes the appends, the crash points and every choice of what a power loss keeps;
//! it does not fix how the store's writer, sync and indexing threads interleave, which decides
//! how appends group into writes. So a failing run keeps itself whole: the image it opened and
//! what was appended and acknowledged, under `target/tmp/power-loss/<run>/`, and
//! `SYMBIOSE_POWER_LOSS_REPLAY=<that directory>` checks exactly that again (the image also
//! opens with `EmbeddedStore::open` or `symbiose store verify`).
//! `SYMBIOSE_POWER_LOSS_SEED=<seed>` runs one seed; `SYMBIOSE_POWER_LOSS_SEEDS` sets the
//! number of seeds (default 300).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use symbiose_eventstore::embedded::{EmbeddedStore, Options};
use symbiose_eventstore::{
    AppendResult, EventData, EventStore, ExpectedVersion, Position, RecordedEvent, StreamName,
};
use uuid::Uuid;

use crate::sim_disk::{Image, Random, SimDisk};

const SEEDS_DEFAULT: u64 = 300;
const GENERATIONS: usize = 3;
/// Crash points checked in each generation besides the one the next generation goes on from.
const EXTRA_CRASHES: usize = 3;
const STREAMS: u64 = 5;
const DIR: &str = "/data/store";

/// Small segments, so that runs start new segments and write their index files.
fn options() -> Options {
    Options { segment_bytes_max: 6 * 1024, ..Options::default() }
}

/// An append the writers made.
#[derive(Debug, Clone)]
struct Batch {
    stream: StreamName,
    events: Vec<EventData>,
}

/// What the writers did, across generations.
#[derive(Debug, Default)]
struct Model {
    batches: Vec<Batch>,
    /// Where each id was sent: its batch and its place in it.
    ids: HashMap<Uuid, (usize, usize)>,
    results: HashMap<usize, AppendResult>,
    /// Appends acknowledged before the crash point of their generation: they must survive.
    acknowledged: Vec<usize>,
}

#[derive(Debug, Default)]
struct Totals {
    crashes: usize,
    acknowledged: usize,
    lost_operations: usize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_acknowledged_append_is_lost_when_the_power_goes() {
    if let Ok(kept) = std::env::var("SYMBIOSE_POWER_LOSS_REPLAY") {
        return replay(Path::new(&kept)).await;
    }
    let seeds: Vec<u64> = match std::env::var("SYMBIOSE_POWER_LOSS_SEED") {
        Ok(seed) => vec![seed.parse().expect("SYMBIOSE_POWER_LOSS_SEED is a number")],
        Err(_) => {
            let count = std::env::var("SYMBIOSE_POWER_LOSS_SEEDS")
                .ok()
                .and_then(|value| value.parse().ok())
                .unwrap_or(SEEDS_DEFAULT);
            (0..count).collect()
        }
    };
    assert!(!seeds.is_empty(), "SYMBIOSE_POWER_LOSS_SEEDS must be at least 1: no run proves nothing");
    let started = Instant::now();
    let mut totals = Totals::default();
    for seed in &seeds {
        run_seed(*seed, &mut totals).await;
    }
    println!(
        "power loss, simulated: {} seeds, {} crashes and reopenings, {} acknowledged appends checked, {} \
         unsynced operations lost, in {:.1} s",
        seeds.len(),
        totals.crashes,
        totals.acknowledged,
        totals.lost_operations,
        started.elapsed().as_secs_f64()
    );
    assert_eq!(totals.crashes, seeds.len() * GENERATIONS * (1 + EXTRA_CRASHES));
    assert!(totals.acknowledged > 0, "no append was acknowledged before a crash point: nothing was checked");
    assert!(totals.lost_operations > 0, "no crash lost anything: the disk never lost power for real");
}

async fn run_seed(seed: u64, totals: &mut Totals) {
    let mut random = Random::new(seed);
    let mut model = Model::default();
    let dir = Path::new(DIR);
    let mut image = Image::new();
    for generation in 0..GENERATIONS {
        let disk = SimDisk::from_image(&image, &[dir]);
        let acked_before = model.acknowledged.clone();
        let store = open(&disk, &image, seed, generation, "the generation's open");
        write(&store, &disk, &mut model, &mut random).await;
        store.close().await;

        let len = disk.trace_len();
        let mut next = None;
        for crash in 0..=EXTRA_CRASHES {
            let point = random.below(len as u64 + 1) as usize;
            let (crashed, lost) = disk.crash_image(point, &mut random);
            let mut acknowledged = acked_before.clone();
            acknowledged.extend(disk.acked_before(point));
            let place = Place { seed, generation, point, lost: &lost };
            let store = open(&SimDisk::from_image(&crashed, &[dir]), &crashed, seed, generation, "reopen");
            if let Err(failure) = check(&store, &model, &acknowledged).await {
                fail(&place, &crashed, Some((&model, &acknowledged)), &failure);
            }
            store.close().await;
            totals.crashes += 1;
            totals.acknowledged += acknowledged.len();
            totals.lost_operations += lost.len();
            if crash == 0 {
                next = Some((crashed, acknowledged));
            }
        }
        let (crashed, acknowledged) = next.expect("the first crash of the generation");
        image = crashed;
        model.acknowledged = acknowledged;
    }
    // The last image takes appends, which survive a clean close and reopen.
    let disk = SimDisk::from_image(&image, &[dir]);
    let store = open(&disk, &image, seed, GENERATIONS, "the last open");
    let stream = StreamName::new("after-the-storm").expect("stream name");
    let event = EventData::new(Uuid::from_u64_pair(seed, u64::MAX), "Calm", Bytes::from_static(b"calm"));
    let result = store.append(&stream, ExpectedVersion::Any, vec![event.clone()]).await;
    let result =
        result.unwrap_or_else(|error| panic!("seed {seed}: the recovered store refuses an append: {error}"));
    store.close().await;
    let store = open(&disk, &image, seed, GENERATIONS, "the reopen after a clean close");
    let read = store.read_all(result.first_position, 1).await.expect("read the last append");
    assert_eq!(read.first().map(|event| event.id), Some(event.id), "seed {seed}: the last append is gone");
    store.close().await;
}

fn open(disk: &SimDisk, image: &Image, seed: u64, generation: usize, what: &str) -> EmbeddedStore {
    match EmbeddedStore::open_on(Arc::new(disk.clone()), DIR, options()) {
        Ok((store, _)) => store,
        Err(error) => {
            let place = Place { seed, generation, point: 0, lost: &[] };
            fail(&place, image, None, &format!("{what} fails: {error}"))
        }
    }
}

/// Concurrent appends, in waves: each wave sends a few appends at once (to the same stream or
/// not, some with an expected version that may no longer hold, some repeating an earlier
/// append) and waits for their answers.
async fn write(store: &EmbeddedStore, disk: &SimDisk, model: &mut Model, random: &mut Random) {
    let waves = 3 + random.below(8);
    for _ in 0..waves {
        let mut tasks = Vec::new();
        for _ in 0..1 + random.below(6) {
            let number = model.batches.len();
            let batch = if !model.batches.is_empty() && random.chance(8) {
                model.batches[random.below(model.batches.len() as u64) as usize].clone()
            } else {
                new_batch(model, number, random)
            };
            let expected = if random.chance(4) {
                let info = store.stream_info(&batch.stream).await.expect("stream info");
                info.map_or(ExpectedVersion::NoStream, |info| ExpectedVersion::Exact(info.last_version))
            } else {
                ExpectedVersion::Any
            };
            model.batches.push(batch.clone());
            let (store, disk) = (store.clone(), disk.clone());
            tasks.push(tokio::spawn(async move {
                let result = store.append(&batch.stream, expected, batch.events).await;
                if result.is_ok() {
                    disk.ack(number);
                }
                (number, result)
            }));
        }
        for task in tasks {
            let (number, result) = task.await.expect("append task");
            if let Ok(result) = result {
                model.results.insert(number, result);
            }
        }
    }
}

fn new_batch(model: &mut Model, number: usize, random: &mut Random) -> Batch {
    let stream = StreamName::new(&format!("stream-{}", random.below(STREAMS))).expect("stream name");
    let count = 1 + random.below(3) as usize;
    let events = (0..count)
        .map(|place| {
            let id = Uuid::from_u64_pair(number as u64 + 1, place as u64);
            model.ids.insert(id, (number, place));
            let most = if random.chance(3) { 2500 } else { 200 };
            let len = 1 + random.below(most) as usize;
            let payload: Vec<u8> = (0..len).map(|_| random.next() as u8).collect();
            EventData::new(id, format!("Made{place}"), payload)
                .with_metadata(Bytes::from(format!("batch {number}")))
        })
        .collect();
    Batch { stream, events }
}

/// The checks of a store opened after a power loss (see the module's note).
async fn check(store: &EmbeddedStore, model: &Model, acknowledged: &[usize]) -> Result<(), String> {
    let mut log: Vec<RecordedEvent> = Vec::new();
    loop {
        let page = store
            .read_all(Position::from_u64(log.len() as u64), 500)
            .await
            .map_err(|error| format!("reading the log: {error}"))?;
        if page.is_empty() {
            break;
        }
        log.extend(page);
    }
    if log.len() as u64 != store.head().as_u64() {
        return Err(format!("the log reads {} events, its head is {}", log.len(), store.head()));
    }
    let mut at: HashMap<Uuid, u64> = HashMap::new();
    let mut versions: BTreeMap<String, u64> = BTreeMap::new();
    for (position, event) in log.iter().enumerate() {
        let Some((number, place)) = model.ids.get(&event.id).copied() else {
            return Err(format!("event {} at position {position} was never appended", event.id));
        };
        let sent = &model.batches[number].events[place];
        if event.position.as_u64() != position as u64
            || event.payload != sent.payload
            || event.metadata != sent.metadata
            || event.event_type != sent.event_type
        {
            return Err(format!("event {} at position {position} is not what was appended", event.id));
        }
        if at.insert(event.id, event.position.as_u64()).is_some() {
            return Err(format!("event {} is in the log twice", event.id));
        }
        let version = versions.entry(event.stream.as_str().to_owned()).or_default();
        if event.version != *version {
            return Err(format!("{} has version {} after {} events", event.stream, event.version, version));
        }
        *version += 1;
    }
    // Whole appends only: an append's events all there, one after the other, or none.
    for (number, batch) in model.batches.iter().enumerate() {
        let positions: Vec<Option<u64>> =
            batch.events.iter().map(|event| at.get(&event.id).copied()).collect();
        if positions.iter().all(Option::is_none) {
            continue;
        }
        let first = positions[0].ok_or_else(|| format!("append {number} is there in part"))?;
        for (place, position) in positions.iter().enumerate() {
            if *position != Some(first + place as u64) {
                return Err(format!("append {number} is there in part or out of order"));
            }
        }
    }
    for number in acknowledged {
        let batch = &model.batches[*number];
        let Some(first) = at.get(&batch.events[0].id).copied() else {
            return Err(format!("acknowledged event lost: append {number}, event {}", batch.events[0].id));
        };
        let result = model.results.get(number).ok_or_else(|| format!("append {number} has no answer"))?;
        if result.first_position.as_u64() != first {
            return Err(format!(
                "acknowledged append {number} was given position {}, it is at {first}",
                result.first_position
            ));
        }
    }
    Ok(())
}

struct Place<'a> {
    seed: u64,
    generation: usize,
    point: usize,
    lost: &'a [String],
}

/// Keeps the run (the image, and what was appended and acknowledged) where
/// `SYMBIOSE_POWER_LOSS_REPLAY` checks it again, and fails with where it happened.
fn fail(place: &Place<'_>, image: &Image, run: Option<(&Model, &[usize])>, failure: &str) -> ! {
    let kept = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("power-loss")
        .join(format!("seed-{}-generation-{}-point-{}", place.seed, place.generation, place.point));
    let _ = std::fs::remove_dir_all(&kept);
    for (path, bytes) in image {
        let relative = path.strip_prefix(DIR).unwrap_or(path);
        let target = kept.join("store").join(relative);
        if let Some(parent) = target.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        let _ = std::fs::write(&target, bytes);
    }
    if let Some((model, acknowledged)) = run {
        let _ = std::fs::write(kept.join("appends"), write_run(model, acknowledged));
    }
    panic!(
        "{failure}\n  seed {} (SYMBIOSE_POWER_LOSS_SEED={}), generation {}, power lost after operation {}\n  \
         lost: {}\n  the image: {}",
        place.seed,
        place.seed,
        place.generation,
        place.point,
        if place.lost.is_empty() { "nothing".to_owned() } else { place.lost.join("; ") },
        kept.display()
    )
}

/// Checks a run kept by a failure again: the same image, the same expectations.
async fn replay(kept: &Path) {
    let appends = std::fs::read_to_string(kept.join("appends"))
        .unwrap_or_else(|error| panic!("reading {}: {error}", kept.join("appends").display()));
    let (model, acknowledged) = read_run(&appends);
    let mut image = Image::new();
    let store_dir = kept.join("store");
    for entry in std::fs::read_dir(&store_dir).expect("the kept image") {
        let entry = entry.expect("an entry of the kept image");
        let bytes = std::fs::read(entry.path()).expect("a file of the kept image");
        image.insert(Path::new(DIR).join(entry.file_name()), bytes);
    }
    let store = open(&SimDisk::from_image(&image, &[Path::new(DIR)]), &image, 0, 0, "the replay's open");
    let result = check(&store, &model, &acknowledged).await;
    store.close().await;
    if let Err(failure) = result {
        panic!("{failure}\n  replayed from {}", kept.display());
    }
    println!("the kept run at {} passes its checks now", kept.display());
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(&text[at..at + 2], 16).expect("hex digits"))
        .collect()
}

/// One line per append (`append <stream> <id>:<type>:<metadata>:<payload> ...`, bytes in
/// hex), one per answer (`answer <append> <first position>`), and the acknowledged ones.
fn write_run(model: &Model, acknowledged: &[usize]) -> String {
    let mut text = String::new();
    for batch in &model.batches {
        text.push_str(&format!("append {}", batch.stream));
        for event in &batch.events {
            let (metadata, payload) = (hex(&event.metadata), hex(&event.payload));
            text.push_str(&format!(" {}:{}:{metadata}:{payload}", event.id, event.event_type));
        }
        text.push('\n');
    }
    for (number, result) in &model.results {
        text.push_str(&format!("answer {number} {} {}\n", result.first_position, result.last_position));
    }
    let acknowledged: Vec<String> = acknowledged.iter().map(ToString::to_string).collect();
    text.push_str(&format!("acknowledged {}\n", acknowledged.join(" ")));
    text
}

fn read_run(text: &str) -> (Model, Vec<usize>) {
    let mut model = Model::default();
    let mut acknowledged = Vec::new();
    for line in text.lines() {
        let mut words = line.split(' ');
        match words.next() {
            Some("append") => {
                let number = model.batches.len();
                let stream = StreamName::new(words.next().expect("a stream")).expect("a stream name");
                let mut events = Vec::new();
                for (place, word) in words.enumerate() {
                    let parts: Vec<&str> = word.split(':').collect();
                    let id: Uuid = parts[0].parse().expect("an event id");
                    model.ids.entry(id).or_insert((number, place));
                    events.push(EventData::new(id, parts[1], unhex(parts[3])).with_metadata(unhex(parts[2])));
                }
                model.batches.push(Batch { stream, events });
            }
            Some("answer") => {
                let numbers: Vec<u64> = words.map(|word| word.parse().expect("a number")).collect();
                let result = AppendResult {
                    next_expected_version: 0,
                    first_position: Position::from_u64(numbers[1]),
                    last_position: Position::from_u64(numbers[2]),
                };
                model.results.insert(numbers[0] as usize, result);
            }
            Some("acknowledged") => {
                acknowledged = words
                    .filter(|word| !word.is_empty())
                    .map(|word| word.parse().expect("a number"))
                    .collect();
            }
            _ => {}
        }
    }
    (model, acknowledged)
}
