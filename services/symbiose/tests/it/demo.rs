//! `symbiose demo` at its default size against a server process: the marketplace it builds (its
//! stories seen through the client as their parties see them), and a second run that succeeds
//! and adds nothing.

use std::process::Output;

use super::{ServerProcess, first_word_after, stderr, stdout};

/// The summary of a run at the default size: 80 members, the carrier, 2,000 listings and the
/// two listings of each of the 5 stories.
const SUMMARY: &str = "81 organizations (a producer and a recycler in each of 40 towns, and a carrier), \
                       2010 listings published in 9 material families\n\
                       5 deals agreed and paid into escrow, 4 shipments delivered (3 across a border), \
                       4 invoices, 2 pallet balances\n";

#[test]
fn the_demo_builds_a_marketplace_with_finished_deals_and_a_second_run_adds_nothing() {
    let server = ServerProcess::start();
    let first = server.cli(&["demo"]);
    assert!(first.status.success(), "{}", stderr(&first));
    let summary = stdout(&first);
    assert!(summary.starts_with(SUMMARY), "{summary}");
    // Not a terminal: plain progress lines, one per phase and a few in between.
    assert!(stderr(&first).contains("listings: 2086/2086 steps"), "{}", stderr(&first));

    // The pallets story, Strasbourg to Kehl, as the operator and its parties see it.
    let story =
        summary.lines().find(|line| line.trim_start().starts_with("pallets")).expect("the pallets story");
    let deal = word_after(story, "deal").expect("a deal");
    let shipment = word_after(story, "shipment").expect("a shipment");
    let invoice = word_after(story, "invoice").expect("an invoice");
    let shown = succeeded(server.cli(&["deal", "show", &deal]));
    assert!(shown.contains("40 pallet at 3.50 EUR") && shown.contains("documents: annex-vii"), "{shown}");
    let seller = word_after(&shown, "seller").expect("a seller");
    let buyer = word_after(&shown, "buyer").expect("a buyer");
    let tracked = succeeded(server.cli(&["shipment", "show", &shipment]));
    assert!(
        tracked.contains("closed")
            && tracked.contains("france -> germany")
            && tracked.contains("into germany")
            && tracked.contains("delivered  40 pallet"),
        "{tracked}"
    );
    let seller_token =
        succeeded(server.cli(&["token", "issue", "--organization", &seller])).trim().to_owned();
    let buyer_token = succeeded(server.cli(&["token", "issue", "--organization", &buyer])).trim().to_owned();
    let invoices = succeeded(server.as_member(&seller_token, &["invoice", "list"]));
    assert!(invoices.contains(&invoice) && invoices.contains("intra_eu_exempt"), "{invoices}");
    // The carrier gave the producer 35 pallets for 40: it owes 5.
    let balances = succeeded(server.as_member(&seller_token, &["pallets", "balances"]));
    assert!(balances.contains("grade a  +5"), "{balances}");
    let deals = succeeded(server.as_member(&buyer_token, &["deal", "list"]));
    assert!(deals.contains(&deal), "{deals}");
    // Every listing left open is in the catalog: the 2,000 and what the pallets story left.
    let catalog = open_entries(&server);
    assert_eq!(catalog, 2002);

    // The same seed again: every call repeats a request id, and the same marketplace is there.
    let second = server.cli(&["demo"]);
    assert!(second.status.success(), "{}", stderr(&second));
    assert_eq!(stdout(&second), summary);
    assert_eq!(open_entries(&server), catalog);
    assert_eq!(succeeded(server.as_member(&seller_token, &["invoice", "list"])), invoices);
    assert_eq!(succeeded(server.as_member(&seller_token, &["pallets", "balances"])), balances);
    assert_eq!(succeeded(server.as_member(&buyer_token, &["deal", "list"])), deals);

    let too_many = server.cli(&["demo", "--listings", "20001"]);
    assert_eq!(too_many.status.code(), Some(2));
    assert!(stderr(&too_many).contains("--listings must be at most 20000"), "{}", stderr(&too_many));
}

/// The word after the first `word` of `text`.
fn word_after(text: &str, word: &str) -> Option<String> {
    let mut words = text.split_whitespace();
    words.by_ref().find(|each| *each == word)?;
    words.next().map(str::to_owned)
}

/// What a successful client call printed.
#[track_caller]
pub(crate) fn succeeded(output: Output) -> String {
    assert!(output.status.success(), "{}{}", stdout(&output), stderr(&output));
    stdout(&output)
}

/// The open entries of the catalog, rebuilt from the log by the operator: exact at that moment.
#[track_caller]
fn open_entries(server: &ServerProcess) -> usize {
    let rebuilt = succeeded(server.cli(&["catalog", "rebuild"]));
    first_word_after(&rebuilt, "rebuilt: ").and_then(|count| count.parse().ok()).expect("a count of entries")
}
