//! A steady stream of events writes no log line per event, nor one per checkpoint: the
//! operator's log (INFO) says when the relay starts and stops, not each second of its work.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use symbiose_feed::testing::NatsServer;

use crate::support::{RelayTask, append_organizations, eventually, open_store, relay_options};

/// Events appended one at a time, every [`PACE`]: about three seconds of a steady stream, so
/// three checkpoints at least.
const EVENTS: u64 = 300;
const PACE: Duration = Duration::from_millis(10);

/// What the subscriber wrote.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("not poisoned").extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_steady_stream_of_events_writes_no_info_line_per_event_or_checkpoint() {
    let Some(nats) = NatsServer::start_or_skip("a_steady_stream_of_events_writes_no_info_line") else {
        return;
    };
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    // A runtime on this thread only, so every task of the relay logs to this subscriber.
    tracing::subscriber::with_default(subscriber, || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
        runtime.block_on(async {
            let dir = tempfile::tempdir().expect("temporary directory");
            let store = open_store(&dir.path().join("events"));
            let client = symbiose_feed::connect(&nats.url(), None, "test").await.expect("connect");
            let relay = RelayTask::spawn(&store, &client, relay_options(dir.path()));
            let mut pace = tokio::time::interval(PACE);
            for index in 0..EVENTS {
                pace.tick().await;
                append_organizations(&store, index, 1, 1).await;
            }
            let metrics = relay.metrics.clone();
            eventually("the relay to publish every event", || metrics.stats().published >= EVENTS).await;
            relay.stop().await;
        });
    });
    let text = String::from_utf8(captured.0.lock().expect("not poisoned").clone()).expect("UTF-8 logs");
    let checkpoints = text.lines().filter(|line| line.contains("relay checkpoint")).count();
    assert_eq!(checkpoints, 0, "checkpoint lines are debug lines:\n{text}");
    let lines = text.lines().count();
    assert!((1..=10).contains(&lines), "{lines} lines at INFO for {EVENTS} events:\n{text}");
}
