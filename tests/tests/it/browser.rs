//! What the tests of the public web port share: a marketplace up to a delivered lot (regenerated
//! HDPE offered, sold, carried across a border and accepted), a plain HTTP/1.1 GET, and headless
//! Chromium to render a page as a visitor's browser does.

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use symbiose_proto::common::v1 as common;
use symbiose_proto::listings::v1 as pb;
use symbiose_proto::logistics::v1 as logistics;
use symbiose_proto::logistics::v1::logistics_service_client::LogisticsServiceClient;
use symbiose_tests::TestServer;
use symbiose_tests::fixtures::{Member, at};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const TRANSPORT_WAIT: Duration = Duration::from_secs(20);

/// Regenerated HDPE pellets (EWC 19 12 04, waste), `tonnes` of them at `price_minor` euro cents
/// a tonne, at `site_id`, for 30 days, other countries accepted.
pub(crate) fn hdpe_terms(
    side: pb::ListingSide,
    site_id: &str,
    tonnes: i64,
    price_minor: i64,
) -> pb::ListingTerms {
    pb::ListingTerms {
        side: side.into(),
        family: common::MaterialFamily::Plastics.into(),
        waste_code: "19 12 04".into(),
        legal_status: pb::LegalStatus::Waste.into(),
        description: "rHDPE pellets, grey".into(),
        quality: Some(pb::Quality {
            kind: Some(pb::quality::Kind::Plastic(pb::PlasticQuality {
                polymer: pb::Polymer::Hdpe.into(),
                form: pb::PlasticForm::Pellets.into(),
            })),
        }),
        quantity: Some(self::tonnes(tonnes)),
        minimum_lot: None,
        recurrence: None,
        site_id: site_id.into(),
        location: None,
        available_from: Some(at(0)),
        available_until: Some(at(30 * 86_400)),
        price_per_unit: Some(common::Money { amount_minor: price_minor, currency_code: "EUR".into() }),
        delivery: Some(pb::DeliveryTerms {
            mode: pb::DeliveryMode::BuyerCollects.into(),
            seller_delivery_km: 0,
        }),
        max_distance_km: 0,
        accepts_other_countries: true,
        attachments: vec![],
        expires_at: Some(at(60 * 86_400)),
    }
}

pub(crate) fn tonnes(count: i64) -> common::Quantity {
    common::Quantity {
        amount_milli: count * 1000,
        unit: common::Unit::Tonne.into(),
        basis: common::QuantityBasis::Estimated.into(),
    }
}

/// The lot of `deal_id`, `lot_tonnes` of it, carried by `carrier` into `border` (the country
/// of the delivery; `None` for a lot that stays in its country) and accepted whole by `buyer`:
/// the shipment's id.
pub(crate) async fn delivered(
    server: &TestServer,
    deal_id: &str,
    buyer: &Member,
    carrier: &Member,
    lot_tonnes: i64,
    border: Option<common::Country>,
) -> String {
    let mut buyer_side = LogisticsServiceClient::new(server.authed(&buyer.token).await.expect("channel"));
    let mut carrier_side = LogisticsServiceClient::new(server.authed(&carrier.token).await.expect("channel"));
    let deadline = Instant::now() + TRANSPORT_WAIT;
    let quote = loop {
        let quotes = buyer_side
            .list_quotes(logistics::ListQuotesRequest { deal_id: deal_id.into(), ..Default::default() })
            .await
            .expect("quotes")
            .into_inner()
            .quotes;
        if let Some(quote) = quotes.into_iter().next() {
            break quote;
        }
        assert!(Instant::now() < deadline, "no quote for deal {deal_id}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let shipment_id = buyer_side
        .book_shipment(logistics::BookShipmentRequest {
            request_id: String::new(),
            deal_id: deal_id.into(),
            quote_id: quote.quote_id,
            prior_notification_number: String::new(),
        })
        .await
        .expect("booked")
        .into_inner()
        .shipment
        .expect("a shipment")
        .shipment_id;
    carrier_side
        .report_pickup(logistics::ReportPickupRequest {
            request_id: String::new(),
            shipment_id: shipment_id.clone(),
            quantity: Some(tonnes(lot_tonnes)),
            pallets: None,
        })
        .await
        .expect("picked up");
    if let Some(border) = border {
        carrier_side
            .report_border_crossing(logistics::ReportBorderCrossingRequest {
                request_id: String::new(),
                shipment_id: shipment_id.clone(),
                country: border.into(),
                at: None,
            })
            .await
            .expect("crossed");
    }
    carrier_side
        .report_delivery(logistics::ReportDeliveryRequest {
            request_id: String::new(),
            shipment_id: shipment_id.clone(),
            received: Some(tonnes(lot_tonnes)),
            accepted: Some(tonnes(lot_tonnes)),
            refused: None,
            refusal_reason: String::new(),
            pallets: None,
        })
        .await
        .expect("delivered");
    buyer_side
        .confirm_acceptance(logistics::ConfirmAcceptanceRequest {
            request_id: String::new(),
            shipment_id: shipment_id.clone(),
        })
        .await
        .expect("accepted");
    shipment_id
}

/// An answer of the web port: its status, headers (names in lower case) and body.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Answer {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("a UTF-8 body")
    }
}

/// `GET path` on the web port at `addr`, over a plain HTTP/1.1 connection, with `headers`.
pub(crate) async fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Answer {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect to the web port");
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read");
    let split = raw.windows(4).position(|window| window == b"\r\n\r\n").expect("a header block");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .expect("a status");
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers.iter().any(|(name, value)| name == "transfer-encoding" && value.contains("chunked")) {
        body = unchunked(&body);
    }
    Answer { status, headers, body }
}

fn unchunked(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = body.windows(2).position(|window| window == b"\r\n").expect("a chunk size");
        let size = usize::from_str_radix(std::str::from_utf8(&body[..line_end]).expect("ascii").trim(), 16)
            .expect("hex");
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&body[line_end + 2..line_end + 2 + size]);
        body = &body[line_end + 2 + size + 2..];
    }
}

/// Debian's Chromium, if installed.
pub(crate) fn chromium() -> Option<&'static str> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|path| std::path::Path::new(path).exists())
}

/// Runs headless Chromium on `url` with `args`, as a phone's screen (412 px wide).
pub(crate) fn run_chromium(
    binary: &str,
    profile: &std::path::Path,
    args: &[&str],
    url: &str,
) -> std::process::Output {
    Command::new(binary)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(["--window-size=412,1600", "--force-device-scale-factor=2"])
        .args(args)
        .arg(url)
        .output()
        .expect("run chromium")
}
