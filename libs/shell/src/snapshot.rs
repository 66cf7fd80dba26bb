//! Snapshots of the read models: a view's state with the position it reflects, kept in the
//! store ([`EventStore::save_snapshot`]), so a process catches up from there instead of from
//! the log's first event.
//!
//! A snapshot is only a cache of the log. It is read back only by the build that wrote it (its
//! envelope carries a fingerprint of the running executable): a new build replays the log once
//! and snapshots again, so a change to a view's shape can never be read with the old shape's
//! meaning. Its body carries a CRC-32C; one that does not check, or does not decode, is set
//! aside with a warning and the view replays the log. With snapshots off, every view replays the
//! log from its first event, and the state is the same.

use std::sync::OnceLock;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use symbiose_eventstore::{EventStore, Position};
use uuid::Uuid;

use crate::follow::View;

/// Events a view applies, by default, between two of its snapshots.
pub const SNAPSHOT_EVENTS_DEFAULT: u64 = 50_000;
/// Shortest time, by default, between two snapshots of a view.
pub const SNAPSHOT_INTERVAL_MS_DEFAULT: u64 = 60_000;

/// When a followed view saves its snapshot: once it has applied `events` events since the
/// last one (or since the one it started from), has caught up with the log, and `interval`
/// has passed since its last save. Zero events: snapshots off, neither read nor saved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshots {
    pub events: u64,
    pub interval: Duration,
}

impl Snapshots {
    /// No snapshot read or saved: every start replays the log from its first event.
    pub const OFF: Snapshots = Snapshots { events: 0, interval: Duration::ZERO };

    /// A snapshot every `events` events (0: off), at most one a minute.
    pub const fn every(events: u64) -> Snapshots {
        Snapshots { events, interval: Duration::from_millis(SNAPSHOT_INTERVAL_MS_DEFAULT) }
    }

    pub const fn with_interval(self, interval: Duration) -> Snapshots {
        Snapshots { interval, ..self }
    }

    pub const fn is_on(&self) -> bool {
        self.events > 0
    }
}

impl Default for Snapshots {
    fn default() -> Snapshots {
        Snapshots::every(SNAPSHOT_EVENTS_DEFAULT)
    }
}

/// A view that can be saved and restored.
pub trait Snapshot: View {
    /// The name its snapshot is kept under in the store (letters, digits, `.`, `_`, `-`).
    const NAME: &'static str;

    /// The view's state, encoded.
    fn encode(&self) -> Result<Vec<u8>, String>;

    /// A view in the state `bytes` encode, made from this fresh one (whose shared parts it
    /// keeps); decoded while the view goes on answering, then swapped in whole.
    fn restored(&self, bytes: &[u8]) -> Result<Self, String>
    where
        Self: Sized;
}

/// `value` in postcard, serde's compact binary form.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, String> {
    postcard::to_allocvec(value).map_err(|error| error.to_string())
}

/// A `T` from its postcard form; every byte must be used.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    match postcard::take_from_bytes(bytes) {
        Ok((value, [])) => Ok(value),
        Ok((_, rest)) => Err(format!("{} bytes left over after the state", rest.len())),
        Err(error) => Err(error.to_string()),
    }
}

/// The first bytes of a snapshot's envelope (and its version).
const MAGIC: &[u8; 8] = b"SYMVIEW2";
/// Magic, the build's fingerprint (CRC-32C and length of the executable), the id of the event
/// at the snapshot's position (its anchor in the log), the body's CRC-32C.
const ENVELOPE_BYTES: usize = 8 + 12 + 16 + 4;
/// Longest wait, at start, for the store's head as this process knows it to reach a
/// snapshot's position (another replica may have saved it just after this one read the head).
const HEAD_WAIT_MS: u64 = 1_000;

/// What identifies the running build: the CRC-32C and the length of its executable, read once.
/// `None` where the executable cannot be read: snapshots are then neither read nor saved.
pub(crate) fn build_fingerprint() -> Option<[u8; 12]> {
    static FINGERPRINT: OnceLock<Option<[u8; 12]>> = OnceLock::new();
    *FINGERPRINT.get_or_init(|| {
        let read = std::env::current_exe().and_then(std::fs::read);
        match read {
            Ok(executable) => {
                let mut fingerprint = [0_u8; 12];
                fingerprint[..4].copy_from_slice(&crc32c::crc32c(&executable).to_le_bytes());
                fingerprint[4..].copy_from_slice(&(executable.len() as u64).to_le_bytes());
                Some(fingerprint)
            }
            Err(error) => {
                tracing::warn!(%error, "the executable cannot be read: views are not snapshotted");
                None
            }
        }
    })
}

/// `body` sealed for this build, as a store keeps it, anchored to `anchor`, the id of the event
/// at the snapshot's position; `None` where the running executable has no fingerprint
/// (snapshots are then not kept).
pub fn sealed(anchor: Uuid, body: &[u8]) -> Option<Vec<u8>> {
    build_fingerprint().map(|build| seal(build, anchor, body))
}

/// The snapshot `name` kept in `store`, if this build sealed it, it checks, it belongs to the
/// log ([`in_log`]) and `decode` reads its body (off the async threads): its position and what
/// `decode` made; `Ok(None)` if none was saved; else why it is set aside.
pub async fn restore<S, T, D>(store: &S, name: &str, decode: D) -> Result<Option<(Position, T)>, String>
where
    S: EventStore,
    T: Send + 'static,
    D: FnOnce(&[u8]) -> Result<T, String> + Send + 'static,
{
    let stored = match store.load_snapshot(name).await {
        Ok(Some(stored)) => stored,
        Ok(None) => return Ok(None),
        Err(error) => return Err(format!("it could not be read: {error}")),
    };
    let off_thread = |error: tokio::task::JoinError| error.to_string();
    let (anchor, body) =
        tokio::task::spawn_blocking(move || open(stored.body)).await.map_err(off_thread)??;
    in_log(store, stored.position, anchor).await?;
    let decoded = tokio::task::spawn_blocking(move || decode(&body)).await.map_err(off_thread)?;
    let decoded = decoded.map_err(|error| format!("it does not decode: {error}"))?;
    Ok(Some((stored.position, decoded)))
}

/// The anchor and the body of `sealed` if this build sealed it and it checks; else why it is
/// set aside. It reads the whole body (its checksum): call it off the async threads.
fn open(sealed: bytes::Bytes) -> Result<(Uuid, bytes::Bytes), String> {
    let Some(build) = build_fingerprint() else {
        return Err(String::from("the running executable has no fingerprint"));
    };
    match unseal(build, &sealed) {
        Unsealed::Body { anchor, .. } => Ok((anchor, sealed.slice(ENVELOPE_BYTES..))),
        Unsealed::OtherBuild => Err(String::from("another build wrote it")),
        Unsealed::Damaged(reason) => Err(reason.to_owned()),
    }
}

/// Whether the snapshot taken at `position` belongs to the log of `store`: the event there is
/// `anchor`. A snapshot beyond the log (a log restored from an older backup), or whose position
/// now holds another event (a log cut by a repair and written again since), is not.
async fn in_log<S: EventStore>(store: &S, position: Position, anchor: Uuid) -> Result<(), String> {
    let within =
        tokio::time::timeout(Duration::from_millis(HEAD_WAIT_MS), store.wait_for_head(position)).await;
    if !matches!(within, Ok(Ok(_))) {
        return Err(format!("it is beyond the log (position {position}, head {})", store.head()));
    }
    match store.read_all(position, 1).await {
        Ok(events)
            if events.first().is_some_and(|event| event.position == position && event.id == anchor) =>
        {
            Ok(())
        }
        Ok(_) => Err(format!(
            "the log holds another event at its position {position}: the log was cut and written again since"
        )),
        Err(error) => Err(format!("its position cannot be read: {error}")),
    }
}

/// `body` in its envelope.
pub(crate) fn seal(fingerprint: [u8; 12], anchor: Uuid, body: &[u8]) -> Vec<u8> {
    let mut sealed = Vec::with_capacity(ENVELOPE_BYTES + body.len());
    sealed.extend_from_slice(MAGIC);
    sealed.extend_from_slice(&fingerprint);
    sealed.extend_from_slice(anchor.as_bytes());
    sealed.extend_from_slice(&crc32c::crc32c(body).to_le_bytes());
    sealed.extend_from_slice(body);
    sealed
}

/// Why a snapshot was set aside.
#[derive(Debug, PartialEq, Eq)]
enum Unsealed<'a> {
    Body {
        anchor: Uuid,
        body: &'a [u8],
    },
    /// Written by another build: expected at each upgrade.
    OtherBuild,
    Damaged(&'static str),
}

/// The anchor and body of `sealed`, if this build wrote it and it checks.
fn unseal(fingerprint: [u8; 12], sealed: &[u8]) -> Unsealed<'_> {
    if sealed.len() < ENVELOPE_BYTES || &sealed[..8] != MAGIC {
        return Unsealed::Damaged("not a snapshot of this format");
    }
    if sealed[8..20] != fingerprint {
        return Unsealed::OtherBuild;
    }
    let anchor = Uuid::from_bytes(sealed[20..36].try_into().expect("sixteen bytes"));
    let crc = u32::from_le_bytes(sealed[36..40].try_into().expect("four bytes"));
    let body = &sealed[ENVELOPE_BYTES..];
    if crc32c::crc32c(body) != crc {
        return Unsealed::Damaged("its checksum does not match");
    }
    Unsealed::Body { anchor, body }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_body_opens_only_with_its_build_and_intact() {
        let (build, anchor) = ([7_u8; 12], Uuid::now_v7());
        let sealed = seal(build, anchor, b"state");
        assert_eq!(unseal(build, &sealed), Unsealed::Body { anchor, body: b"state" });
        assert_eq!(unseal([8_u8; 12], &sealed), Unsealed::OtherBuild);
        let mut flipped = sealed.clone();
        *flipped.last_mut().expect("a body") ^= 1;
        assert_eq!(unseal(build, &flipped), Unsealed::Damaged("its checksum does not match"));
        assert_eq!(unseal(build, &sealed[..10]), Unsealed::Damaged("not a snapshot of this format"));
    }

    #[test]
    fn decode_refuses_bytes_left_over() {
        let mut bytes = encode(&(1_u32, String::from("a"))).expect("encodes");
        assert_eq!(decode::<(u32, String)>(&bytes), Ok((1, String::from("a"))));
        bytes.push(0);
        assert!(decode::<(u32, String)>(&bytes).is_err_and(|error| error.contains("left over")));
    }

    #[test]
    fn the_running_build_has_a_fingerprint() {
        assert!(build_fingerprint().is_some());
    }
}
