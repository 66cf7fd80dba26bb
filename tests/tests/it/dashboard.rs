//! The public territory dashboard end to end: three producers of Strasbourg sell regenerated
//! HDPE to three receivers in Kehl, one producer of Offenburg to one receiver in Strasbourg, and
//! two pairs from Strasbourg to Haguenau; the lots are carried and accepted. Then the Eurodistrict
//! Strasbourg-Ortenau's page, as a visitor meets it over HTTP and in headless Chromium: the
//! tonnes put in, the flow from France to Germany with its tonnes, the flow back (one pair
//! only) and the flows within France (two) withheld, the charts, and each table as CSV.

use std::time::{Duration, Instant};

use symbiose_domain::Country;
use symbiose_proto::common::v1 as common;
use symbiose_proto::listings::v1 as pb;
use symbiose_tests::TestServer;
use symbiose_tests::fixtures::{self, Member, agree, member};

use crate::browser::{Answer, chromium, delivered, get, hdpe_terms, run_chromium};

/// Longest the territory view may take to hold the deliveries once they are accepted.
const VIEW_WAIT: Duration = Duration::from_secs(20);
/// The smallest a screenshot of the page may be: a blank page is a few kilobytes.
const SCREENSHOT_BYTES_MIN: usize = 20 * 1024;
const TERRITORY: &str = "strasbourg-ortenau";

/// A German USt-IdNr built from `number` (8 digits and the ISO 7064 MOD 11,10 check digit).
pub(crate) fn de_vat(number: u32) -> String {
    let body = format!("{:08}", number % 100_000_000);
    let mut product = 10;
    for digit in body.bytes().map(|byte| u32::from(byte - b'0')) {
        let sum = match (digit + product) % 10 {
            0 => 10,
            sum => sum,
        };
        product = (2 * sum) % 11;
    }
    let check = match 11 - product {
        10 => 0,
        check => check,
    };
    format!("DE{body}{check}")
}

/// The year it is in Paris: the dashboard's periods follow the French calendar.
pub(crate) fn this_year() -> i16 {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as i64)
        .unwrap_or_default();
    Country::Fr.date_at(now_ms).year()
}

/// `seller` sells `tonnes` of regenerated HDPE to `buyer`, paid through escrow, carried by
/// `carrier` into `border` (`None` within a country) and accepted whole: the shipment's id.
pub(crate) async fn sold_and_delivered(
    server: &TestServer,
    seller: &Member,
    buyer: &Member,
    carrier: &Member,
    tonnes: i64,
    border: Option<common::Country>,
) -> String {
    fixtures::deposit(server, &buyer.organization_id, 5_000_000).await.expect("a deposit");
    let deal = agree(
        server,
        seller,
        hdpe_terms(pb::ListingSide::Offer, &seller.site_id, tonnes, 45_000),
        buyer,
        hdpe_terms(pb::ListingSide::Request, &buyer.site_id, tonnes, 50_000),
    )
    .await
    .expect("a deal");
    fixtures::escrow_held(server, &buyer.token, &deal.deal_id).await.expect("the payment held");
    delivered(server, &deal.deal_id, buyer, carrier, tonnes, border).await
}

/// A producer of Strasbourg and a receiver of Haguenau (Bas-Rhin, outside the Eurodistrict),
/// the `index`th such pair.
pub(crate) async fn local_pair(server: &TestServer, index: u32) -> (Member, Member) {
    let seller = member(
        server,
        &format!("Plasturgie Strasbourg {index} SAS"),
        common::Country::France,
        &fixtures::siren(6_100 + index),
        &[common::Role::Producer],
        "Strasbourg",
    )
    .await
    .expect("a producer in Strasbourg");
    let buyer = member(
        server,
        &format!("Emballages Haguenau {index} SAS"),
        common::Country::France,
        &fixtures::siren(6_200 + index),
        &[common::Role::Buyer],
        "Haguenau",
    )
    .await
    .expect("a receiver in Haguenau");
    (seller, buyer)
}

/// The lines of a CSV file of the dashboard: a byte order mark, then CRLF-ended lines.
fn csv_lines(answer: &Answer) -> Vec<String> {
    let text = answer.text();
    let text = text.strip_prefix('\u{feff}').unwrap_or_else(|| panic!("no byte order mark: {text:?}"));
    assert!(text.ends_with("\r\n"), "{text:?}");
    text.split_terminator("\r\n").map(str::to_owned).collect()
}

/// The part of `page` from the element `<tag id="id"` to the end of that tag's element.
fn section<'a>(page: &'a str, tag: &str, id: &str) -> &'a str {
    let start = page.find(&format!("<{tag} id=\"{id}\"")).unwrap_or_else(|| panic!("no #{id}: {page}"));
    let rest = &page[start..];
    let end = rest.find(&format!("</{tag}>")).unwrap_or_else(|| panic!("#{id} is not closed"));
    &rest[..end]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_of_a_eurodistrict_shows_its_flows_across_the_rhine_and_withholds_the_small_ones() {
    let server = TestServer::start().await.expect("server");
    let web = server.web_addr.expect("the test server serves the web port");
    let carrier = fixtures::rhine_carrier(&server).await.expect("carrier");
    let mut organizations = Vec::new();
    for (index, tonnes) in [(1u32, 2), (2, 3), (3, 4)] {
        let seller = member(
            &server,
            &format!("Plasturgie Strasbourg {index} SAS"),
            common::Country::France,
            &fixtures::siren(6_000 + index),
            &[common::Role::Producer],
            "Strasbourg",
        )
        .await
        .expect("a producer in Strasbourg");
        let buyer = member(
            &server,
            &format!("Kunststoffwerk Kehl {index} GmbH"),
            common::Country::Germany,
            &de_vat(14_000_000 + index),
            &[common::Role::Buyer],
            "Kehl",
        )
        .await
        .expect("a receiver in Kehl");
        sold_and_delivered(&server, &seller, &buyer, &carrier, tonnes, Some(common::Country::Germany)).await;
        organizations.extend([seller.organization_id, buyer.organization_id]);
    }
    // One pair the other way: too few organizations for its flow to be public.
    let offenburg = member(
        &server,
        "Recycling Offenburg GmbH",
        common::Country::Germany,
        &de_vat(15_000_001),
        &[common::Role::Producer],
        "Offenburg",
    )
    .await
    .expect("a producer in Offenburg");
    let strasbourg = member(
        &server,
        "Emballages du Port SAS",
        common::Country::France,
        &fixtures::siren(6_010),
        &[common::Role::Buyer],
        "Strasbourg",
    )
    .await
    .expect("a receiver in Strasbourg");
    sold_and_delivered(&server, &offenburg, &strasbourg, &carrier, 5, Some(common::Country::France)).await;
    organizations.extend([offenburg.organization_id, strasbourg.organization_id]);
    // Two pairs from Strasbourg to Haguenau, 1 t each: withheld too, and with the flow back they sum
    // three producers and three receivers, so the total less the flow to Germany gives none of
    // them away.
    for index in [4u32, 5] {
        let (seller, buyer) = local_pair(&server, index).await;
        sold_and_delivered(&server, &seller, &buyer, &carrier, 1, None).await;
        organizations.extend([seller.organization_id, buyer.organization_id]);
    }

    // The page in English, once the view holds the six deliveries: 16 t accepted.
    let year = this_year();
    let page_path = format!("/territories/{TERRITORY}?period={year}");
    let headline = "<tr id=\"accepted\"><th>Tonnes accepted</th><td class=\"n\">16\u{a0}t</td>";
    let deadline = Instant::now() + VIEW_WAIT;
    let english = loop {
        let answer = get(web, &format!("{page_path}&lang=en"), &[]).await;
        assert_eq!(answer.status, 200, "{}", answer.text());
        if answer.text().contains(headline) {
            break answer;
        }
        assert!(Instant::now() < deadline, "the page never showed 16 t accepted:\n{}", answer.text());
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(english.header("content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(english.header("content-language"), Some("en"));
    let policy = english.header("content-security-policy").expect("a content security policy");
    assert!(policy.contains("default-src 'none'"), "{policy}");
    let page = english.text();
    assert!(page.contains("<tr id=\"deliveries\"><th>Deliveries</th><td class=\"n\">6</td>"), "{page}");
    let countries = section(&page, "table", "flows-countries");
    assert!(
        countries.contains(
            "<td>France <span class=\"muted\">FR</span></td><td>Germany <span class=\"muted\">DE</span></td><td class=\"n\">3</td><td class=\"n\">9\u{a0}t</td>"
        ),
        "{countries}"
    );
    let back = countries.split("<tr>").find(|row| row.starts_with("<td>Germany")).expect("the flow back");
    assert!(back.contains("withheld (fewer than 3 organizations)"), "{back}");
    assert!(!page.contains("5\u{a0}t"), "the withheld flow's tonnes are nowhere on the page");
    // The charts, drawn inline: tonnes per family, distances, and the map with its flow.
    assert_eq!(page.matches("<svg").count(), 3, "{page}");
    assert!(section(&page, "figure", "families-chart").contains("Recycled plastics"), "{page}");
    let map = section(&page, "figure", "flows-map");
    for text in ["Bas-Rhin", "Ortenaukreis", "9\u{a0}t"] {
        assert!(map.contains(text), "{text:?} missing from the map: {map}");
    }
    // Nothing fetched from elsewhere, no organization named.
    for forbidden in ["<script", "src=", "<link", "url(", "Kehl 1 GmbH", "Offenburg GmbH"] {
        assert!(!page.contains(forbidden), "{forbidden:?} on the page");
    }
    for id in &organizations {
        assert!(!page.contains(id.as_str()), "an organization's id on the page");
    }

    // Each table as CSV, in French by default: `;`, a decimal comma, withheld cells empty.
    let flows = get(web, &format!("/territories/{TERRITORY}/flows-countries.csv?period={year}"), &[]).await;
    assert_eq!(flows.status, 200);
    assert_eq!(flows.header("content-type"), Some("text/csv; charset=utf-8"));
    assert_eq!(
        flows.header("content-disposition"),
        Some(format!("attachment; filename=\"{TERRITORY}-{year}-flows-countries.csv\"").as_str())
    );
    assert_eq!(
        csv_lines(&flows),
        [
            "origin;origin_name;destination;destination_name;deliveries;accepted_kg;withheld",
            "DE;Allemagne;FR;France;;;true",
            "FR;France;DE;Allemagne;3;9000;false",
            "FR;France;FR;France;;;true",
        ]
    );
    let regions =
        get(web, &format!("/territories/{TERRITORY}/flows-regions.csv?period={year}&lang=de"), &[]).await;
    assert_eq!(
        csv_lines(&regions),
        [
            "origin;origin_name;destination;destination_name;deliveries;accepted_kg;withheld",
            "DE-08317;Ortenaukreis;FR-67;Bas-Rhin;;;true",
            "FR-67;Bas-Rhin;DE-08317;Ortenaukreis;3;9000;false",
            "FR-67;Bas-Rhin;FR-67;Bas-Rhin;;;true",
        ]
    );
    let headline_csv = get(web, &format!("/territories/{TERRITORY}/headline.csv?period={year}"), &[]).await;
    let lines = csv_lines(&headline_csv);
    assert_eq!(lines[0], "indicator;name;value;unit;withheld;source");
    assert_eq!(lines[1], "accepted;Tonnes acceptées;16000;kg;false;");
    assert_eq!(lines[3], "deliveries;Livraisons;6;;false;");
    let families = get(web, &format!("/territories/{TERRITORY}/families.csv?period={year}"), &[]).await;
    assert_eq!(csv_lines(&families)[2], "total;Total;6;16000;16000;false");
    // The page links each table's file.
    for table in ["headline", "families", "flows-countries", "flows-regions"] {
        let href = format!("href=\"/territories/{TERRITORY}/{table}.csv?period={year}&amp;lang=en\"");
        assert!(page.contains(&href), "{href}");
    }

    // Wrong addresses: a plain page naming the parameter.
    let unknown =
        get(web, &format!("/territories/atlantis?period={year}"), &[("Accept-Language", "en")]).await;
    assert_eq!(unknown.status, 404);
    assert!(unknown.text().contains("territory: &quot;atlantis&quot;"), "{}", unknown.text());
    for period in ["2026-Q5", "tomorrow", &"9".repeat(40)] {
        let bad = get(web, &format!("/territories/{TERRITORY}?period={period}"), &[]).await;
        assert_eq!(bad.status, 400, "{period}");
        assert!(bad.text().contains("period:"), "{period}: {}", bad.text());
    }
    let table = get(web, &format!("/territories/{TERRITORY}/secrets.csv"), &[]).await;
    assert_eq!(table.status, 404);
    assert!(table.text().contains("table:"), "{}", table.text());
    let index = get(web, "/territories", &[("Accept-Language", "de-DE,de;q=0.9")]).await;
    assert_eq!(index.status, 200);
    assert!(index.text().contains(&format!("href=\"/territories/{TERRITORY}?period={year}&amp;lang=de\"")));

    // The page in a real browser, in German: its text, its charts, and a screenshot.
    let Some(chromium) = chromium() else {
        assert!(
            std::env::var_os("CI").is_none_or(|value| value.is_empty()),
            "chromium is not installed (CI is set: .ci/run installs Debian's chromium)"
        );
        println!("skipped the browser part: Debian's chromium is not installed (apt-get install chromium)");
        return;
    };
    let profile = tempfile::tempdir().expect("a browser profile");
    let url = format!("http://{web}{page_path}&lang=de");
    let (binary, profile_dir, dom_url) = (chromium.to_owned(), profile.path().to_owned(), url.clone());
    let dom =
        tokio::task::spawn_blocking(move || run_chromium(&binary, &profile_dir, &["--dump-dom"], &dom_url))
            .await
            .expect("chromium ran");
    // The DOM as Chromium serializes it: a no-break space as `&nbsp;`.
    let rendered = String::from_utf8_lossy(&dom.stdout).replace("&nbsp;", "\u{a0}");
    for text in [
        "Grenzüberschreitende Ströme",
        "<td class=\"n\">16\u{a0}t</td>",
        "nicht veröffentlicht (weniger als 3 Organisationen)",
        "Frankreich",
    ] {
        assert!(
            rendered.contains(text),
            "{text:?} missing: {rendered}{}",
            String::from_utf8_lossy(&dom.stderr)
        );
    }
    assert_eq!(rendered.matches("<svg").count(), 3, "{rendered}");
    let shot = profile.path().join("dashboard.png");
    let (binary, profile_dir, shot_arg) =
        (chromium.to_owned(), profile.path().to_owned(), format!("--screenshot={}", shot.display()));
    // A phone's width, tall enough for the whole page with its charts.
    let ran = tokio::task::spawn_blocking(move || {
        run_chromium(&binary, &profile_dir, &["--window-size=412,4200", &shot_arg], &url)
    })
    .await
    .expect("chromium ran");
    let bytes = std::fs::read(&shot)
        .unwrap_or_else(|error| panic!("no screenshot ({error}): {}", String::from_utf8_lossy(&ran.stderr)));
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(bytes.len() > SCREENSHOT_BYTES_MIN, "a screenshot of {} bytes", bytes.len());
    let reader = png::Decoder::new(std::io::Cursor::new(&bytes)).read_info().expect("a PNG");
    // 412 x 4200 CSS pixels at a device scale of 2.
    assert_eq!((reader.info().width, reader.info().height), (824, 8400));
    let kept = std::env::temp_dir().join("symbiose-dashboard-de.png");
    std::fs::copy(&shot, &kept).expect("keep the screenshot");
    println!("the dashboard's screenshot: {} bytes, kept at {}", bytes.len(), kept.display());
}
