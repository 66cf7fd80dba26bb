//! `--pages`: the passports' public web port measured as a phone reaches it. The run starts the
//! standalone server with its web port on a free loopback port, publishes through gRPC a
//! passport of an offer (with a GTIN and a batch, its page in French and German), then drives
//! from N concurrent HTTP/1.1 clients (one kept-alive connection each) every address a scan
//! leads to: the page in each language, its JSON-LD, its QR code as SVG and PNG, its sheet of
//! labels, and the GS1 Digital Link's redirect. The baseline, measured in the same run on the
//! same port and through the same stack: the plain 404 page of an address that names no
//! passport, which reads nothing and renders nothing. For each address it prints requests/s,
//! p50 and p99, the bytes of the answer and the time to first byte of a lone request, and the
//! ratio of its p50 to the baseline's.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use symbiose_proto::common::v1 as common;
use symbiose_proto::passports::v1 as passports;
use symbiose_proto::passports::v1::passport_service_client::PassportServiceClient;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;

use super::histogram::Histogram;
use super::{Plan, process, setup};

/// Largest answer a client reads, in bytes (the label sheet of 96 labels is well under it).
const BODY_BYTES_MAX: usize = 8 * 1024 * 1024;
/// Largest header block a client reads, in bytes.
const HEAD_BYTES_MAX: usize = 16 * 1024;
/// Longest wait for one answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);
/// The passport's GTIN and batch, for its Digital Link.
const GTIN: &str = "03012345678902";
const BATCH: &str = "LOAD-2026";

/// One address measured, and what it must answer.
struct Address {
    label: &'static str,
    path: String,
    language: &'static str,
    status: u16,
}

/// What one address gave under load.
struct Measured {
    label: &'static str,
    requests: u64,
    elapsed: Duration,
    latency: Histogram,
    bytes: usize,
    first_byte: Duration,
}

/// Runs the pages' measurement of `plan`: its numbers of clients, warm-up and window.
pub(crate) async fn run(plan: &Plan) -> anyhow::Result<()> {
    let binary = std::env::current_exe().context("finding this executable")?.with_file_name("symbiose");
    let data_dir = tempfile::tempdir().context("a data directory for the server")?;
    let web = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .context("a free port for the web port")?;
    let web_addr = web.to_string();
    let base_url = format!("http://{web_addr}");
    let env = [
        (symbiose_kit::config::WEB_ADDR, web_addr.as_str()),
        (symbiose_kit::config::PUBLIC_BASE_URL, base_url.as_str()),
    ];
    let server =
        process::start_server_with(&binary, data_dir.path(), None, &env, Duration::from_secs(60)).await?;
    let address = server.address.to_string();
    let channel = process::connect(&address).await?;
    let operator = setup::authed(&channel, &server.operator_token)?;
    let members = setup::register(&operator, &channel, 1).await.context("registering the producer")?;
    let seeded = setup::seed(&channel, &members, 2).await.context("publishing its offer")?;
    let offer = seeded[0].offers.first().context("the producer's offer")?;
    let passport_id = publish_passport(&channel, &members[0].token, offer).await?;
    println!(
        "symbiose-load --pages: the web port of {} at {web_addr}, passport {passport_id}, {} s warm-up and {} s measured per address",
        binary.display(),
        plan.warm_up.as_secs(),
        plan.measured.as_secs()
    );

    let page = format!("/p/{passport_id}");
    let addresses = [
        Address {
            label: "404 page (baseline)",
            path: "/p/0190a0b2-5c1e-7000-8000-000000000000".to_owned(),
            language: "fr",
            status: 404,
        },
        Address { label: "page, French", path: page.clone(), language: "fr-FR,fr;q=0.9", status: 200 },
        Address { label: "page, German", path: page.clone(), language: "de-DE,de;q=0.9", status: 200 },
        Address { label: "JSON-LD", path: format!("{page}/passport.jsonld"), language: "fr", status: 200 },
        Address { label: "QR code, SVG", path: format!("{page}/qr.svg"), language: "fr", status: 200 },
        Address { label: "QR code, PNG", path: format!("{page}/qr.png"), language: "fr", status: 200 },
        Address { label: "labels, 8 (PDF)", path: format!("{page}/labels.pdf"), language: "fr", status: 200 },
        Address {
            label: "Digital Link",
            path: format!("/01/{GTIN}/10/{BATCH}"),
            language: "fr",
            status: 307,
        },
    ];
    for &clients in &plan.clients {
        println!("\n{clients} clients, one kept-alive HTTP/1.1 connection each");
        println!(
            "{:<20} {:>10} {:>9} {:>9} {:>9} {:>11} {:>9}",
            "address", "requests/s", "p50 ms", "p99 ms", "bytes", "1st byte ms", "p50 ×404"
        );
        let mut baseline_p50 = None;
        for address in &addresses {
            let measured = measure(&web_addr, address, clients, plan.warm_up, plan.measured).await?;
            let p50 = measured.latency.quantile(0.5);
            let baseline = *baseline_p50.get_or_insert(p50);
            println!(
                "{:<20} {:>10.0} {:>9.2} {:>9.2} {:>9} {:>11.2} {:>9.1}",
                measured.label,
                measured.requests as f64 / measured.elapsed.as_secs_f64(),
                millis(p50),
                millis(measured.latency.quantile(0.99)),
                measured.bytes,
                millis(measured.first_byte),
                p50.as_secs_f64() / baseline.as_secs_f64().max(1e-9),
            );
        }
    }
    drop(server);
    Ok(())
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1_000.0
}

/// Creates and publishes, as the offer's owner, a passport of `offer` with a GTIN and a batch;
/// its id.
async fn publish_passport(
    channel: &tonic::transport::Channel,
    token: &str,
    offer: &str,
) -> anyhow::Result<String> {
    let mut client = PassportServiceClient::new(setup::authed(channel, token)?);
    let texts = |fr: &str, de: &str, en: &str| {
        Some(common::LocalizedText { fr: fr.to_owned(), de: de.to_owned(), en: en.to_owned() })
    };
    let declaration = passports::Declaration {
        name: "Palettes EUR reconditionnées".to_owned(),
        description: texts(
            "Palettes EUR triées et réparées, prêtes au réemploi.",
            "Sortierte und reparierte EUR-Paletten, bereit zur Wiederverwendung.",
            "Sorted and repaired EUR pallets, ready for reuse.",
        ),
        family: common::MaterialFamily::Pallets.into(),
        waste_code: Some(common::WasteCode { code: "150103".to_owned(), hazardous: false }),
        composition: vec![
            passports::Component {
                material: "Bois de résineux".to_owned(),
                share_bp: 9_600,
                basis: passports::CompositionBasis::Declared.into(),
                document: String::new(),
            },
            passports::Component {
                material: "Clous acier".to_owned(),
                share_bp: 400,
                basis: passports::CompositionBasis::Declared.into(),
                document: String::new(),
            },
        ],
        recycled_content_bp: 0,
        advice: texts(
            "Une planche cassée se remplace ; la palette repart pour un cycle.",
            "Ein gebrochenes Brett wird ersetzt; die Palette geht in einen weiteren Umlauf.",
            "A broken board is replaced; the pallet goes round again.",
        ),
        inputs: vec![],
        gtin: GTIN.to_owned(),
        batch: BATCH.to_owned(),
    };
    let created = client
        .create_passport(passports::CreatePassportRequest {
            request_id: String::new(),
            subject: Some(passports::create_passport_request::Subject::ListingId(offer.to_owned())),
            declaration: Some(declaration),
        })
        .await
        .map_err(setup::status("CreatePassport"))?
        .into_inner();
    let passport_id = created.passport.context("CreatePassport answered no passport")?.passport_id;
    client
        .publish_passport(passports::PublishPassportRequest {
            request_id: String::new(),
            passport_id: passport_id.clone(),
        })
        .await
        .map_err(setup::status("PublishPassport"))?;
    Ok(passport_id)
}

/// Drives `address` from `clients` connections: a warm-up, then the measured window.
async fn measure(
    web_addr: &str,
    address: &Address,
    clients: usize,
    warm_up: Duration,
    window: Duration,
) -> anyhow::Result<Measured> {
    // One lone request first: the answer's size and its time to first byte.
    let mut lone = Connection::open(web_addr).await?;
    let (status, body, first_byte) = lone.get(&address.path, address.language).await?;
    anyhow::ensure!(
        status == address.status,
        "{} ({}) answered {status}, not {}",
        address.label,
        address.path,
        address.status
    );
    drop(lone);
    let mut tasks = tokio::task::JoinSet::new();
    let start = Instant::now() + warm_up;
    let end = start + window;
    for _ in 0..clients {
        let (web_addr, path, language, expected) =
            (web_addr.to_owned(), address.path.clone(), address.language, address.status);
        tasks.spawn(async move {
            let mut connection = Connection::open(&web_addr).await?;
            let mut latency = Histogram::default();
            let mut requests = 0_u64;
            loop {
                let sent = Instant::now();
                if sent >= end {
                    break;
                }
                let (status, _, _) = connection.get(&path, language).await?;
                anyhow::ensure!(status == expected, "{path} answered {status} under load, not {expected}");
                if sent >= start {
                    latency.record(sent.elapsed());
                    requests += 1;
                }
            }
            Ok::<_, anyhow::Error>((latency, requests))
        });
    }
    let mut latency = Histogram::default();
    let mut requests = 0;
    while let Some(joined) = tasks.join_next().await {
        let (client_latency, client_requests) = joined.context("a client failed")??;
        latency.merge(&client_latency);
        requests += client_requests;
    }
    Ok(Measured { label: address.label, requests, elapsed: window, latency, bytes: body.len(), first_byte })
}

/// A kept-alive HTTP/1.1 connection to the web port.
struct Connection {
    stream: BufReader<TcpStream>,
    host: String,
}

impl Connection {
    async fn open(web_addr: &str) -> anyhow::Result<Connection> {
        let stream =
            TcpStream::connect(web_addr).await.with_context(|| format!("connecting to {web_addr}"))?;
        stream.set_nodelay(true)?;
        Ok(Connection { stream: BufReader::new(stream), host: web_addr.to_owned() })
    }

    /// `GET path` with `Accept-Language: language`: the status, the body and the time to the
    /// first byte of the answer. Every answer of the web port states its length: one that does
    /// not (chunked, or delimited by the connection's end) is refused rather than misread on a
    /// kept-alive connection.
    async fn get(&mut self, path: &str, language: &str) -> anyhow::Result<(u16, Vec<u8>, Duration)> {
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: {}\r\nAccept-Language: {language}\r\n\r\n", self.host);
        let sent = Instant::now();
        self.stream.get_mut().write_all(request.as_bytes()).await?;
        tokio::time::timeout(ANSWER_TIMEOUT, async {
            let mut line = String::new();
            let mut head_bytes = (&mut self.stream).take(HEAD_BYTES_MAX as u64).read_line(&mut line).await?;
            let first_byte = sent.elapsed();
            anyhow::ensure!(line.ends_with('\n'), "the status line is cut or too long: {line:?}");
            let status = line
                .split_whitespace()
                .nth(1)
                .and_then(|code| code.parse().ok())
                .with_context(|| format!("not an HTTP status line: {line:?}"))?;
            let mut length = None;
            loop {
                line.clear();
                let left = HEAD_BYTES_MAX.saturating_sub(head_bytes) as u64;
                let read = (&mut self.stream).take(left).read_line(&mut line).await?;
                head_bytes += read;
                anyhow::ensure!(line.ends_with('\n'), "the answer's head is cut or too long");
                let header = line.trim_end();
                if header.is_empty() {
                    break;
                }
                if let Some((name, value)) = header.split_once(':') {
                    anyhow::ensure!(
                        !name.eq_ignore_ascii_case("transfer-encoding"),
                        "{path}: an answer in chunks ({header}), which this client does not read"
                    );
                    if name.eq_ignore_ascii_case("content-length") {
                        length = Some(value.trim().parse::<usize>().context("a Content-Length")?);
                    }
                }
            }
            let length =
                length.with_context(|| format!("{path}: an answer ({status}) without its length"))?;
            anyhow::ensure!(length <= BODY_BYTES_MAX, "an answer of {length} bytes");
            let mut body = vec![0; length];
            self.stream.read_exact(&mut body).await?;
            Ok((status, body, first_byte))
        })
        .await
        .with_context(|| format!("{path}: no answer within {} s", ANSWER_TIMEOUT.as_secs()))?
    }
}
