//! What an operator runs on a closed store: `verify` says what is wrong and where, `repair`
//! cuts the log at a record boundary and keeps what it cuts.

use symbiose_eventstore::embedded::{self, IndexFile, ProblemKind};
use symbiose_eventstore::{EventStore, ExpectedVersion, Position, READ_EVENTS_MAX, StoreError, StreamName};
use uuid::Uuid;

use crate::damage::{Fixture, damage, event, file_name, open, segments};

#[tokio::test]
async fn verify_finds_a_sound_log_sound() {
    let fixture = Fixture::build().await;
    let report = embedded::verify(fixture.path()).expect("verify");
    assert!(report.is_sound(), "{:?}", report.problems);
    assert_eq!(report.events(), fixture.events());
    let files: Vec<String> = segments(fixture.path()).iter().map(|path| file_name(path)).collect();
    assert_eq!(report.segments.iter().map(|segment| segment.file.clone()).collect::<Vec<_>>(), files);
    let mut next = 0;
    for (number, segment) in report.segments.iter().enumerate() {
        assert_eq!(segment.format, 2);
        assert_eq!(segment.first_position, Some(next), "{segment:?}");
        next = segment.last_position.expect("events") + 1;
        let sealed = number + 1 < report.segments.len();
        assert_eq!(segment.index, if sealed { IndexFile::Sound } else { IndexFile::NotSealed });
    }
    assert_eq!(next, fixture.events());
}

#[tokio::test]
async fn verify_names_damage_torn_tails_and_bad_index_files() {
    let fixture = Fixture::build().await;
    let segment_count = segments(fixture.path()).len();

    let sealed = fixture.in_sealed();
    let trial = fixture.copy();
    damage(trial.path(), &sealed.file, |bytes| bytes[sealed.range.start + 20] ^= 0x08);
    let report = embedded::verify(trial.path()).expect("verify");
    assert_eq!(report.segments.len(), segment_count, "every segment is still scanned");
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    let problem = &report.problems[0];
    assert_eq!(
        (problem.kind, &problem.file, problem.offset),
        (ProblemKind::Damage, &sealed.file, sealed.range.start as u64)
    );

    let tail = fixture.tail();
    let trial = fixture.copy();
    damage(trial.path(), &tail.file, |bytes| bytes.truncate(tail.range.end - 10));
    let report = embedded::verify(trial.path()).expect("verify");
    let kinds: Vec<(ProblemKind, u64)> =
        report.problems.iter().map(|problem| (problem.kind, problem.offset)).collect();
    assert_eq!(kinds, [(ProblemKind::TornTail, tail.range.start as u64)]);

    let middle = fixture.middle_of_last();
    let trial = fixture.copy();
    damage(trial.path(), &middle.file, |bytes| bytes[middle.range.start + 1] ^= 0x01);
    let report = embedded::verify(trial.path()).expect("verify");
    let kinds: Vec<(ProblemKind, u64)> =
        report.problems.iter().map(|problem| (problem.kind, problem.offset)).collect();
    assert_eq!(kinds, [(ProblemKind::Damage, middle.range.start as u64)]);

    let trial = fixture.copy();
    let index_file = sealed.file.replace(".seg", ".idx");
    damage(trial.path(), &index_file, |bytes| *bytes.last_mut().expect("bytes") ^= 0x01);
    let report = embedded::verify(trial.path()).expect("verify");
    let problems: Vec<(ProblemKind, &str)> =
        report.problems.iter().map(|problem| (problem.kind, problem.file.as_str())).collect();
    assert_eq!(problems, [(ProblemKind::Index, index_file.as_str())]);
    assert_eq!(report.segments[0].index, IndexFile::Bad);
}

#[tokio::test]
async fn verify_and_repair_refuse_a_store_another_process_has_open() {
    let fixture = Fixture::build().await;
    let (store, _) = open(fixture.path()).expect("open");
    let verified = embedded::verify(fixture.path());
    assert!(matches!(verified, Err(StoreError::Locked(_))), "{verified:?}");
    let tail = fixture.tail();
    let repaired = embedded::repair(fixture.path(), &tail.file, tail.range.start as u64, false);
    assert!(matches!(repaired, Err(StoreError::Locked(_))), "{repaired:?}");
    store.close().await;
}

#[tokio::test]
async fn repair_cuts_at_a_damaged_record_and_keeps_the_cut_bytes() {
    let fixture = Fixture::build().await;
    let middle = fixture.middle_of_last();
    let trial = fixture.copy();
    let damaged = damage(trial.path(), &middle.file, |bytes| bytes[middle.range.start + 30] ^= 0x40);
    let error = open(trial.path()).map(|_| ()).expect_err("damage");
    assert!(matches!(&error, StoreError::Corrupted { offset, .. } if *offset == middle.range.start as u64));

    let inside = embedded::repair(trial.path(), &middle.file, middle.range.start as u64 + 1, false);
    assert!(
        matches!(&inside, Err(StoreError::InvalidInput(reason)) if reason.contains("record boundary")),
        "{inside:?}"
    );
    let past = embedded::repair(trial.path(), &middle.file, middle.range.end as u64, false);
    assert!(
        matches!(past, Err(StoreError::InvalidInput(_))),
        "past the damage, no boundary is known: {past:?}"
    );
    assert!(
        std::fs::read(trial.path().join(&middle.file)).expect("read") == damaged,
        "a refusal changes nothing"
    );

    let repaired =
        embedded::repair(trial.path(), &middle.file, middle.range.start as u64, false).expect("repair");
    assert_eq!(repaired.cut_bytes, (damaged.len() - middle.range.start) as u64);
    assert!(repaired.set_aside.is_empty());
    let kept = repaired.kept.expect("the cut bytes are kept");
    assert_eq!(file_name(&kept), format!("{}.cut-{}", middle.file, middle.range.start));
    assert!(std::fs::read(&kept).expect("read") == damaged[middle.range.start..]);
    let again =
        embedded::repair(trial.path(), &middle.file, middle.range.start as u64, false).expect("again");
    assert_eq!((again.cut_bytes, again.kept), (0, None), "repairing twice cuts nothing more");

    let (store, report) = open(trial.path()).expect("open after the repair");
    let before = fixture.ids_before(middle.record);
    assert_eq!(report.events, before.len() as u64);
    let read: Vec<Uuid> = store
        .read_all(Position::START, READ_EVENTS_MAX)
        .await
        .expect("read all")
        .iter()
        .map(|event| event.id)
        .collect();
    assert!(read == before);
    let next = store
        .append(&StreamName::new("listing-9").expect("name"), ExpectedVersion::NoStream, vec![event("after")])
        .await
        .expect("append after the repair");
    assert_eq!(next.first_position.as_u64(), before.len() as u64);
    store.close().await;
    assert!(embedded::verify(trial.path()).expect("verify").is_sound());
}

#[tokio::test]
async fn repair_in_a_sealed_segment_sets_the_later_ones_aside_only_when_asked() {
    let fixture = Fixture::build().await;
    let sealed = fixture.in_sealed();
    let trial = fixture.copy();
    damage(trial.path(), &sealed.file, |bytes| bytes[sealed.range.start + 3] ^= 0x02);
    let later = segments(trial.path()).split_off(1);
    let later_bytes: Vec<Vec<u8>> = later.iter().map(|path| std::fs::read(path).expect("read")).collect();

    let refused = embedded::repair(trial.path(), &sealed.file, sealed.range.start as u64, false);
    assert!(
        matches!(&refused, Err(StoreError::InvalidInput(reason)) if reason.contains("--drop-later-segments")),
        "{refused:?}"
    );
    assert_eq!(segments(trial.path()).len(), later.len() + 1, "a refusal changes nothing");

    let repaired =
        embedded::repair(trial.path(), &sealed.file, sealed.range.start as u64, true).expect("repair");
    assert_eq!(repaired.set_aside.len(), later.len());
    for ((aside, path), bytes) in repaired.set_aside.iter().zip(&later).zip(&later_bytes) {
        assert_eq!(file_name(aside), format!("{}.cut", file_name(path)));
        assert!(std::fs::read(aside).expect("a set-aside segment is kept") == *bytes);
    }
    assert_eq!(segments(trial.path()).len(), 1);
    assert!(!trial.path().join(sealed.file.replace(".seg", ".idx")).exists(), "its index file is gone");

    let (store, report) = open(trial.path()).expect("open after the repair");
    let before = fixture.ids_before(sealed.record);
    assert_eq!(report.events, before.len() as u64);
    let read: Vec<Uuid> = store
        .read_all(Position::START, READ_EVENTS_MAX)
        .await
        .expect("read all")
        .iter()
        .map(|event| event.id)
        .collect();
    assert!(read == before);
    store.close().await;
}
