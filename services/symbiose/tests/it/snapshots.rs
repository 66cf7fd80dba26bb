//! The views' snapshots through restarts of the server: a server with snapshots saves each view
//! and the catalog once they have caught up; started again, it restores them instead of
//! replaying the log, answers every query as a replay from the first event does, and goes on
//! from there.

use std::collections::BTreeSet;

use super::*;

/// The views of the one-process server, by the names its log gives them.
const VIEWS: [&str; 7] = [
    "directory",
    "listings view",
    "matching view",
    "settlement view",
    "logistics view",
    "passports view",
    "territory view",
];

/// A snapshot for each view as soon as it has caught up after one event.
const SNAPSHOTS_ON: (&str, &str) = ("SYMBIOSE_VIEW_SNAPSHOT_EVENTS", "1");
const SNAPSHOTS_OFF: (&str, &str) = ("SYMBIOSE_VIEW_SNAPSHOT_EVENTS", "0");

/// The views named by the log lines of `data_dir`'s server that say `message`, from line
/// `from` on.
fn views_saying(data_dir: &std::path::Path, message: &str, from: usize) -> BTreeSet<String> {
    let log = std::fs::read_to_string(data_dir.join("stderr.log")).unwrap_or_default();
    log.lines()
        .skip(from)
        .filter(|line| line.contains(&format!("\"message\":\"{message}")))
        .filter_map(|line| line.split("\"view\":\"").nth(1).and_then(|rest| rest.split('"').next()))
        .map(str::to_owned)
        .collect()
}

fn log_lines(data_dir: &std::path::Path) -> usize {
    std::fs::read_to_string(data_dir.join("stderr.log")).unwrap_or_default().lines().count()
}

/// Waits, within a bound, for a line of the server's log from line `from` on to hold `text`.
fn wait_for_line(server: &ServerProcess, text: &str, from: usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let log = std::fs::read_to_string(server.data_dir.path().join("stderr.log")).unwrap_or_default();
        if log.lines().skip(from).any(|line| line.contains(text)) {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "no line says {text:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits, within a bound, for every view to log `message` from line `from` on.
fn wait_for_every_view(server: &ServerProcess, message: &str, from: usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let every: BTreeSet<String> = VIEWS.iter().map(|view| (*view).to_owned()).collect();
    loop {
        let said = views_saying(server.data_dir.path(), message, from);
        if said == every {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "only {said:?} said {message:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// What the members and the operator read of the walk-through's outcome, query by query: one
/// or more from each view.
fn answers(server: &ServerProcess, shipped: &Shipped, revoked_token: &str) -> Vec<(String, String)> {
    let queries: [(&str, &[&str]); 14] = [
        (&shipped.buyer, &["catalog", "search", "--near", "Strasbourg", "--family", "pallets"]),
        (&shipped.producer, &["listing", "show", &shipped.offer]),
        (&shipped.buyer, &["listing", "show", &shipped.request]),
        (&shipped.buyer, &["matches", "find", &shipped.request]),
        (&shipped.buyer, &["proposal", "list"]),
        (&shipped.producer, &["deal", "list"]),
        (&shipped.buyer, &["deal", "show", &shipped.deal]),
        (&shipped.buyer, &["quote", "list", &shipped.deal]),
        (&shipped.buyer, &["shipment", "show", &shipped.shipment]),
        (&shipped.producer, &["pallets", "balances"]),
        (&shipped.carrier, &["pallets", "balances"]),
        (&shipped.buyer, &["money", "transfers", &shipped.deal]),
        (&shipped.producer, &["invoice", "list"]),
        (&shipped.buyer, &["money", "balances"]),
    ];
    let mut answers: Vec<(String, String)> = queries
        .iter()
        .map(|(token, args)| {
            let output = server.as_member(token, args);
            assert!(output.status.success(), "{args:?}: {}", stderr(&output));
            (args.join(" "), stdout(&output))
        })
        .collect();
    let directory = server.cli(&["organization", "show", &shipped.buyer_id]);
    assert!(directory.status.success(), "{}", stderr(&directory));
    answers.push(("organization show".to_owned(), stdout(&directory)));
    let refused = server.as_member(revoked_token, &["proposal", "list"]);
    assert!(!refused.status.success(), "a revoked token stays refused: {}", stdout(&refused));
    answers.push(("a revoked token".to_owned(), stderr(&refused)));
    answers
}

#[test]
fn a_restart_restores_each_view_from_its_snapshot_and_answers_as_a_replay_does() {
    // The walk-through and a revoked token, with no snapshot.
    let server = ServerProcess::spawn(BINARY, tempfile::tempdir().expect("a directory"), &[SNAPSHOTS_OFF]);
    let shipped = server.ship_pallets_across_the_border();
    let issued = server.cli(&["token", "issue", "--organization", &shipped.buyer_id]);
    assert!(issued.status.success(), "{}", stderr(&issued));
    let revoked_token = stdout(&issued).trim().to_owned();
    let said = stderr(&issued);
    let token_id = said.lines().find_map(|line| line.strip_prefix("token id ")).expect("the token's id");
    let revoke = server.cli(&["token", "revoke", token_id.trim()]);
    assert_eq!(stdout(&revoke).trim(), "revoked", "{}", stderr(&revoke));
    // An offer left open, for the catalog.
    let open = server.publish_pallets(&shipped.producer, "offer", &shipped.producer_site, "3.20");
    let (_, data_dir) = server.terminate_keeping_data();
    assert!(!data_dir.path().join("data/events/snapshots").exists(), "snapshots off: none saved");

    // Started with snapshots on, each view replays the log from its first event, then saves
    // its snapshot once it has caught up.
    let from = log_lines(data_dir.path());
    let replayed = ServerProcess::spawn(BINARY, data_dir, &[SNAPSHOTS_ON]);
    wait_for_every_view(&replayed, "a view saved its snapshot", from);
    wait_for_line(&replayed, "the catalog saved its snapshot", from);
    assert!(
        views_saying(replayed.data_dir.path(), "a view restored its snapshot", from).is_empty(),
        "nothing to restore on the first start with snapshots"
    );
    let answered_by_the_replay = answers(&replayed, &shipped, &revoked_token);
    assert!(
        answered_by_the_replay[0].1.contains(&open),
        "the open offer in the catalog: {:?}",
        answered_by_the_replay[0]
    );
    let data_dir = replayed.kill();
    for view in [
        "listings.directory",
        "listings.market",
        "matching.view",
        "settlement.view",
        "logistics.view",
        "catalog.projection",
    ] {
        assert!(data_dir.path().join("data/events/snapshots").join(view).is_file(), "the snapshot of {view}");
    }

    // Killed and started again: every view restores its snapshot and answers the same.
    let from = log_lines(data_dir.path());
    let restored = ServerProcess::spawn(BINARY, data_dir, &[SNAPSHOTS_ON]);
    wait_for_every_view(&restored, "a view restored its snapshot", from);
    wait_for_line(&restored, "catalog caught up with the log", from);
    let log = std::fs::read_to_string(restored.data_dir.path().join("stderr.log")).expect("the log");
    let caught_up = log.lines().skip(from).find(|line| line.contains("catalog caught up with the log"));
    assert!(
        caught_up.is_some_and(|line| line.contains("\"from_snapshot\":true")),
        "the catalog from its snapshot: {caught_up:?}"
    );
    assert_eq!(answers(&restored, &shipped, &revoked_token), answered_by_the_replay);

    // And goes on from there: a new offer is listed and found for a new request of the buyer.
    let (producer, site, _) = restored.member(
        "Recyclage Mosellan SARL",
        "FR",
        "35600000000048",
        "producer",
        ("Metz", "49.1193", "6.1757"),
    );
    let offer = restored.publish_pallets(&producer, "offer", &site, "3.00");
    let shown = restored.as_member(&producer, &["listing", "show", &offer]);
    assert!(stdout(&shown).contains("published"), "{}", stdout(&shown));
    let request = restored.publish_pallets(&shipped.buyer, "request", &shipped.buyer_site, "4.00");
    let found = restored.as_member(&shipped.buyer, &["matches", "find", &request]);
    assert!(stdout(&found).contains(&offer), "{}", stdout(&found));
    let listed =
        restored.as_member(&shipped.buyer, &["catalog", "search", "--near", "Metz", "--family", "pallets"]);
    assert!(stdout(&listed).contains(&offer) && stdout(&listed).contains(&open), "{}", stdout(&listed));
}
