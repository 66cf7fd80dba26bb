//! `ImportListings` through gRPC, as a partner's system calls it: a file of 100,000 offers
//! with 1% bad lines imported and published in one call, reported line by line, sent again
//! with no effect; an import cut short and sent again; a file refused whole.

use std::time::Instant;

use symbiose_proto::catalog::v1 as catalog;
use symbiose_proto::catalog::v1::catalog_service_client::CatalogServiceClient;
use symbiose_proto::common::v1 as common;
use symbiose_proto::listings::v1 as pb;
use symbiose_proto::listings::v1::listing_service_client::ListingServiceClient;
use symbiose_tests::fixtures::{self, Member};
use symbiose_tests::{AuthedChannel, TestServer};
use tonic::Code;

type Listings = ListingServiceClient<AuthedChannel>;

/// Bytes of the file each message carries: well under the server's message size.
const CHUNK_BYTES: usize = 1024 * 1024;
/// Listing lines of the large import, and one in how many is bad.
const LARGE_IMPORT_LINES: usize = 100_000;
const BAD_LINE_EVERY: usize = 100;
/// Largest page of `ListMyListings`.
const PAGE_SIZE: i32 = 200;

const HEADER: &str = "side,family,waste_code,legal_status,description,quantity,unit,minimum_lot,\
                      price_per_unit,currency,site_id,available_from,expires_at,delivery,pallet_grade";

/// An RFC 3339 time `seconds_from_now` away.
fn rfc3339(seconds_from_now: i64) -> String {
    let at = fixtures::at(seconds_from_now);
    let days = at.seconds.div_euclid(86_400);
    let seconds = at.seconds.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        seconds / 3600,
        seconds % 3600 / 60,
        seconds % 60
    )
}

/// The kinds of bad line the large file holds, each with the field its refusal names.
const BAD_KINDS: [(&str, &str); 6] = [
    ("a unit that does not exist", "terms.quantity.unit"),
    ("a price with three decimals", "terms.price_per_unit.amount_minor"),
    ("another organization's site", "terms.site_id"),
    ("waste without its code", "terms.waste_code"),
    ("an expiry passed", "terms.expires_at"),
    ("a request from a producer only", "terms.side"),
];

/// Offer `index` of a file: `count` grade-B EUR pallets at `site`, published for 60 days;
/// a bad line of kind `bad` (an index of [`BAD_KINDS`]) if asked.
fn offer_line(index: usize, site: &str, other_site: &str, bad: Option<usize>) -> String {
    let (mut side, mut waste_code, mut unit, mut price, mut site) =
        ("offer", "15 01 03", "pallet", format!("{}.{:02}", 3 + index % 5, index % 100), site);
    let (from, mut expires) = (rfc3339(0), rfc3339(60 * 86_400));
    match bad {
        Some(0) => unit = "crate",
        Some(1) => price = "3.505".to_owned(),
        Some(2) => site = other_site,
        Some(3) => waste_code = "",
        Some(4) => expires = rfc3339(-86_400),
        Some(5) => side = "request",
        _ => {}
    }
    format!(
        "{side},pallets,{waste_code},waste,\"Lot {index}, EUR/EPAL 1200x800\",{},{unit},1,{price},EUR,\
         {site},{from},{expires},buyer_collects,b",
        10 + index % 90
    )
}

/// A CSV file of `lines` offers, every `BAD_LINE_EVERY`th bad (kinds in turn), and the bad
/// lines' numbers in the file with the field their refusal must name.
fn offers_file(lines: usize, site: &str, other_site: &str) -> (Vec<u8>, Vec<(u32, &'static str)>) {
    let mut file = String::with_capacity(lines * 200);
    file.push_str(HEADER);
    file.push('\n');
    let mut bad_lines = Vec::new();
    for index in 0..lines {
        let bad = (index % BAD_LINE_EVERY == BAD_LINE_EVERY - 1).then(|| bad_lines.len() % BAD_KINDS.len());
        if let Some(kind) = bad {
            // The header is line 1.
            bad_lines.push((index as u32 + 2, BAD_KINDS[kind].1));
        }
        file.push_str(&offer_line(index, site, other_site, bad));
        file.push('\n');
    }
    (file.into_bytes(), bad_lines)
}

/// Sends `file` as import `import_id`, in chunks after the header.
async fn import(
    listings: &mut Listings,
    import_id: &str,
    format: pb::ImportFormat,
    publish: bool,
    file: &[u8],
) -> Result<pb::ImportListingsResponse, tonic::Status> {
    let header = pb::ImportHeader { import_id: import_id.to_owned(), format: format.into(), publish };
    let mut messages =
        vec![pb::ImportListingsRequest { part: Some(pb::import_listings_request::Part::Header(header)) }];
    messages.extend(file.chunks(CHUNK_BYTES).map(|chunk| pb::ImportListingsRequest {
        part: Some(pb::import_listings_request::Part::Chunk(chunk.to_vec())),
    }));
    listings.import_listings(tokio_stream::iter(messages)).await.map(tonic::Response::into_inner)
}

/// Every listing of the caller in `state` (unspecified: all), as of `min_position`.
async fn my_listings(
    listings: &mut Listings,
    state: pb::ListingState,
    min_position: u64,
) -> Vec<pb::Listing> {
    let mut all = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = listings
            .list_my_listings(pb::ListMyListingsRequest {
                state: state.into(),
                family: 0,
                page_size: PAGE_SIZE,
                page_token,
                min_position,
            })
            .await
            .expect("a page of my listings")
            .into_inner();
        all.extend(page.listings);
        if page.next_page_token.is_empty() {
            return all;
        }
        page_token = page.next_page_token;
    }
}

async fn producer(server: &TestServer, number: u32, town: &str) -> Member {
    fixtures::member(
        server,
        &format!("Palettes {number} SAS"),
        common::Country::France,
        &fixtures::siren(number),
        &[common::Role::Producer],
        town,
    )
    .await
    .expect("a producer")
}

/// Longest a large import may take, in a debug build, before the server or the client gives up.
const LARGE_IMPORT_TIMEOUT_MS: u64 = 300_000;

/// A channel whose calls carry `token` and may take [`LARGE_IMPORT_TIMEOUT_MS`].
async fn patient_channel(server: &TestServer, token: &str) -> AuthedChannel {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", server.grpc_addr))
        .expect("an address")
        .timeout(std::time::Duration::from_millis(LARGE_IMPORT_TIMEOUT_MS))
        .connect()
        .await
        .expect("connected");
    AuthedChannel::new(channel, symbiose::cli::Bearer::new(token).expect("a token fit for a header"))
}

/// Longest wait for the catalog to fold the events of a large import.
const CATALOG_WAIT_MS: u64 = 120_000;

/// Waits, within a bound, for the catalog to reflect `position`: one search with it as
/// `min_position` answers once it does (each search waits 5 s at most).
async fn catalog_reaches(search: &mut CatalogServiceClient<AuthedChannel>, position: u64) {
    let deadline = Instant::now() + std::time::Duration::from_millis(CATALOG_WAIT_MS);
    loop {
        let request =
            catalog::SearchCatalogRequest { page_size: 1, min_position: position, ..Default::default() };
        match search.search_catalog(request).await {
            Ok(_) => return,
            Err(status) if status.code() == Code::Unavailable && Instant::now() < deadline => {}
            Err(status) => panic!("the catalog does not reach position {position}: {status}"),
        }
    }
}

// The server's views, the catalog and matching follow the 200,000 events on the runtime's other
// thread; the import is not queued behind them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_offers_with_one_percent_bad_lines_are_imported_once() {
    // The whole call is bounded by the server's request timeout (10 s by default): a debug
    // build takes longer over 100,000 listings.
    let server = TestServer::start_with(|config| config.request_timeout_ms = LARGE_IMPORT_TIMEOUT_MS)
        .await
        .expect("server");
    let importer = producer(&server, 41_100_001, "Strasbourg").await;
    let neighbour = producer(&server, 41_100_002, "Mulhouse").await;
    let mut importer_listings = ListingServiceClient::new(patient_channel(&server, &importer.token).await);
    let mut neighbour_listings =
        ListingServiceClient::new(server.authed(&neighbour.token).await.expect("channel"));
    // The neighbour's own offers, before and after: an import touches nothing of them.
    let mut last_position = 0;
    for count in [10, 20, 30] {
        let terms = fixtures::pallet_terms(pb::ListingSide::Offer, &neighbour.site_id, count, 300);
        (_, last_position) = fixtures::publish(&server, &neighbour.token, terms).await.expect("published");
    }
    let neighbour_before =
        my_listings(&mut neighbour_listings, pb::ListingState::Unspecified, last_position).await;
    assert_eq!(neighbour_before.len(), 3);

    let (file, bad_lines) = offers_file(LARGE_IMPORT_LINES, &importer.site_id, &neighbour.site_id);
    assert_eq!(bad_lines.len(), LARGE_IMPORT_LINES / BAD_LINE_EVERY);
    let good = (LARGE_IMPORT_LINES - bad_lines.len()) as u32;
    let started = Instant::now();
    let report = import(&mut importer_listings, "catalogue-2026-12", pb::ImportFormat::Csv, true, &file)
        .await
        .expect("imported");
    let elapsed = started.elapsed();
    println!(
        "import of {LARGE_IMPORT_LINES} lines ({} bytes, {} refused): {:.2} s, {:.0} listings/s created",
        file.len(),
        bad_lines.len(),
        elapsed.as_secs_f64(),
        f64::from(report.created) / elapsed.as_secs_f64()
    );
    assert_eq!(
        (report.lines, report.created, report.already_present, report.refused, report.refusals_omitted),
        (LARGE_IMPORT_LINES as u32, good, 0, bad_lines.len() as u32, 0)
    );
    let refused: Vec<(u32, &str)> =
        report.refusals.iter().map(|refusal| (refusal.line, refusal.field.as_str())).collect();
    assert_eq!(refused, bad_lines, "each bad line, in line order, naming its field");
    assert!(report.refusals.iter().all(|refusal| !refusal.reason.is_empty()));
    let first = &report.refusals[0];
    assert_eq!(
        (first.line, first.field.as_str(), first.reason.as_str()),
        (101, "terms.quantity.unit", "\"crate\" is not kg, t, l, m3, piece or pallet")
    );

    // Every good line is a published offer of the importer, seen as the catalog sees it.
    let published = my_listings(&mut importer_listings, pb::ListingState::Published, report.position).await;
    assert_eq!(published.len(), good as usize);
    let all = my_listings(&mut importer_listings, pb::ListingState::Unspecified, 0).await;
    assert_eq!(all.len(), good as usize, "no draft, nothing else");
    let mut descriptions: Vec<&str> = published
        .iter()
        .map(|listing| listing.terms.as_ref().map_or("", |terms| terms.description.as_str()))
        .collect();
    descriptions.sort_unstable();
    descriptions.dedup();
    assert_eq!(descriptions.len(), good as usize, "each good line once");
    let mut search = CatalogServiceClient::new(server.authed(&neighbour.token).await.expect("channel"));
    catalog_reaches(&mut search, report.position).await;
    for listing in published.iter().step_by(published.len() / 20) {
        let entry = search
            .get_catalog_entry(catalog::GetCatalogEntryRequest {
                listing_id: listing.listing_id.clone(),
                ..Default::default()
            })
            .await
            .expect("an imported offer in the catalog")
            .into_inner()
            .entry
            .expect("an entry");
        assert_eq!(entry.owner_organization_id, importer.organization_id);
    }

    // Sent again (a partner's retry): nothing more, every good line already there.
    let started = Instant::now();
    let again = import(&mut importer_listings, "catalogue-2026-12", pb::ImportFormat::Csv, true, &file)
        .await
        .expect("imported again");
    println!("the same import sent again: {:.2} s", started.elapsed().as_secs_f64());
    assert_eq!(
        (again.lines, again.created, again.already_present, again.refused, again.position),
        (LARGE_IMPORT_LINES as u32, 0, good, bad_lines.len() as u32, 0)
    );
    assert_eq!(again.refusals, report.refusals);
    let head = fixtures::publish(
        &server,
        &neighbour.token,
        fixtures::pallet_terms(pb::ListingSide::Offer, &neighbour.site_id, 5, 300),
    )
    .await
    .expect("a later offer")
    .1;
    assert_eq!(
        my_listings(&mut importer_listings, pb::ListingState::Unspecified, head).await.len(),
        good as usize
    );
    let neighbour_after = my_listings(&mut neighbour_listings, pb::ListingState::Unspecified, head).await;
    assert_eq!(neighbour_after.len(), 4, "its three offers and the later one");
    for before in &neighbour_before {
        assert!(neighbour_after.contains(before), "{} unchanged", before.listing_id);
    }
    server.stop().await.expect("stopped");
}

#[tokio::test]
async fn an_import_cut_short_and_sent_again_applies_every_line_once() {
    let server = TestServer::start().await.expect("server");
    let importer = producer(&server, 41_100_003, "Colmar").await;
    let other = producer(&server, 41_100_004, "Metz").await;
    let mut listings = ListingServiceClient::new(server.authed(&importer.token).await.expect("channel"));
    let (file, bad_lines) = offers_file(1000, &importer.site_id, &other.site_id);
    let good = 1000 - bad_lines.len() as u32;
    // The partner's connection drops after the first half of the file: what reached the
    // server is a file of 500 lines, imported whole.
    let half =
        file.split(|byte| *byte == b'\n').take(501).map(|line| [line, b"\n"].concat()).collect::<Vec<_>>();
    let first = import(&mut listings, "nightly-17", pb::ImportFormat::Csv, true, &half.concat())
        .await
        .expect("the first half");
    assert_eq!((first.lines, first.created, first.already_present, first.refused), (500, 495, 0, 5));
    let whole =
        import(&mut listings, "nightly-17", pb::ImportFormat::Csv, true, &file).await.expect("the whole");
    assert_eq!(
        (whole.lines, whole.created, whole.already_present, whole.refused),
        (1000, good - first.created, first.created, bad_lines.len() as u32)
    );
    let all = my_listings(&mut listings, pb::ListingState::Unspecified, whole.position).await;
    assert_eq!(all.len(), good as usize);
    assert!(all.iter().all(|listing| listing.state == i32::from(pb::ListingState::Published)));
    let mut descriptions: Vec<String> = all
        .iter()
        .map(|listing| listing.terms.as_ref().map(|terms| terms.description.clone()).unwrap_or_default())
        .collect();
    descriptions.sort_unstable();
    descriptions.dedup();
    assert_eq!(descriptions.len(), good as usize, "every good line once");

    // Another file under the same import id: the line that changed is refused, naming the
    // import id, and nothing is written; the others are the same and already present.
    let changed =
        String::from_utf8(file.clone()).expect("UTF-8").replacen("\"Lot 0, ", "\"Lot 0 (changed), ", 1);
    let again = import(&mut listings, "nightly-17", pb::ImportFormat::Csv, true, changed.as_bytes())
        .await
        .expect("a changed file");
    assert_eq!(
        (again.created, again.already_present, again.refused),
        (0, good - 1, bad_lines.len() as u32 + 1)
    );
    let refusal = again.refusals.iter().find(|refusal| refusal.line == 2).expect("line 2 refused");
    assert_eq!(refusal.field, "header.import_id", "{refusal:?}");
    let after = my_listings(&mut listings, pb::ListingState::Unspecified, 0).await;
    assert_eq!(after.len(), good as usize, "nothing written");

    // The same lines under another import id are other listings: the id names the import.
    let drafts = import(&mut listings, "nightly-18", pb::ImportFormat::Csv, false, &half.concat())
        .await
        .expect("another import");
    assert_eq!(drafts.created, 495);
    let all_drafts = my_listings(&mut listings, pb::ListingState::Draft, drafts.position).await;
    assert_eq!(all_drafts.len(), 495, "not published: drafts");
    server.stop().await.expect("stopped");
}

#[tokio::test]
async fn json_lines_are_imported_like_csv_lines() {
    let server = TestServer::start().await.expect("server");
    let buyer = fixtures::member(
        &server,
        "Recyclage Rhône SA",
        common::Country::France,
        &fixtures::siren(41_100_005),
        &[common::Role::Recycler],
        "Reims",
    )
    .await
    .expect("a recycler");
    let mut listings = ListingServiceClient::new(server.authed(&buyer.token).await.expect("channel"));
    let expires = rfc3339(30 * 86_400);
    let site = &buyer.site_id;
    let file = format!(
        "{{\"side\":\"request\",\"family\":\"plastics\",\"legal_status\":\"by_product\",\"quantity\":12.5,\"unit\":\"t\",\"price_per_unit\":\"-20\",\"currency\":\"EUR\",\"site_id\":\"{site}\",\"expires_at\":\"{expires}\",\"delivery\":\"seller_delivers\",\"seller_delivery_km\":80,\"max_distance_km\":150,\"accepts_other_countries\":true,\"polymer\":\"hdpe\",\"plastic_form\":\"flakes\"}}\n\
         \n\
         {{\"side\":\"request\",\"family\":\"plastics\",\"colour\":\"blue\"}}\n"
    );
    let report = import(&mut listings, "plastics", pb::ImportFormat::JsonLines, true, file.as_bytes())
        .await
        .expect("imported");
    assert_eq!((report.lines, report.created, report.refused), (2, 1, 1));
    assert_eq!(
        report.refusals,
        [pb::ImportRefusal { line: 3, field: String::new(), reason: "\"colour\" is not a column".into() }]
    );
    let imported = my_listings(&mut listings, pb::ListingState::Published, report.position).await;
    let terms = imported[0].terms.clone().expect("terms");
    assert_eq!(
        terms.quantity.map(|quantity| (quantity.amount_milli, quantity.unit)),
        Some((12_500, common::Unit::Tonne.into()))
    );
    assert_eq!(terms.price_per_unit.map(|price| price.amount_minor), Some(-2000));
    assert_eq!(terms.max_distance_km, 150);
    server.stop().await.expect("stopped");
}

#[tokio::test]
async fn a_file_that_does_not_fit_is_refused_whole_and_writes_nothing() {
    let server = TestServer::start().await.expect("server");
    let importer = producer(&server, 41_100_006, "Nancy").await;
    let mut listings = ListingServiceClient::new(server.authed(&importer.token).await.expect("channel"));
    let (file, _) = offers_file(10, &importer.site_id, &importer.site_id);
    let renamed = String::from_utf8(file.clone()).expect("utf-8").replacen("pallet_grade", "colour", 1);
    let refused = import(&mut listings, "bad-header", pb::ImportFormat::Csv, true, renamed.as_bytes())
        .await
        .expect_err("an unknown column");
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(refused.message(), "chunk: line 1 (the header): unknown columns \"colour\"");
    let refused = import(&mut listings, "", pb::ImportFormat::Csv, true, &file).await.expect_err("no id");
    assert_eq!(
        (refused.code(), refused.message()),
        (Code::InvalidArgument, "header.import_id: must be 1 to 64 bytes")
    );
    let refused =
        import(&mut listings, "x", pb::ImportFormat::Unspecified, true, &file).await.expect_err("no format");
    assert_eq!((refused.code(), refused.message()), (Code::InvalidArgument, "header.format: is required"));
    let long_line = format!("{}\n{}\n", HEADER, "x".repeat(16 * 1024 + 1));
    let refused = import(&mut listings, "long", pb::ImportFormat::Csv, true, long_line.as_bytes())
        .await
        .expect_err("long");
    assert_eq!(refused.message(), "chunk: line 2 is longer than 16384 bytes");
    let (_, head) = fixtures::publish(
        &server,
        &importer.token,
        fixtures::pallet_terms(pb::ListingSide::Offer, &importer.site_id, 1, 100),
    )
    .await
    .expect("an offer");
    assert_eq!(
        my_listings(&mut listings, pb::ListingState::Unspecified, head).await.len(),
        1,
        "only that offer"
    );
    server.stop().await.expect("stopped");
}
