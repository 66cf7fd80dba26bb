//! Each service as a process of its own, as the chart deploys them: a real nats-server, the
//! five service binaries on free ports with a data directory each and the platform's one
//! signing key, and the whole cross-border exchange through their gRPC ports (with the
//! command-line client), with four services killed with SIGKILL in the middle of the flow and
//! started again: the flow completes, with nothing lost and nothing done twice, and the
//! delivered lot's passport tells its story on the passports process's web port; once with each
//! service's events in its data directory, once in a PostgreSQL database of its own, once with
//! mutual TLS on every gRPC port, the services calling each other over it. Each
//! process's log is in `<its data directory>/stderr.log`, and printed when the test fails.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use symbiose_feed::testing::NatsServer;

use super::{
    CARRIER_PROFILE, ServerProcess, data_dir_with_a_new_key, first_line_word, first_word_after, stderr,
    stdout,
};

pub(crate) const LISTINGS: &str = env!("CARGO_BIN_EXE_symbiose-listings");
pub(crate) const MATCHING: &str = env!("CARGO_BIN_EXE_symbiose-matching");
pub(crate) const LOGISTICS: &str = env!("CARGO_BIN_EXE_symbiose-logistics");
pub(crate) const SETTLEMENT: &str = env!("CARGO_BIN_EXE_symbiose-settlement");
pub(crate) const PASSPORTS: &str = env!("CARGO_BIN_EXE_symbiose-passports");
/// The declaration of the passports the multi-process tests make: reconditioned EUR pallets.
pub(crate) const PALLETS_DECLARATION: [&str; 10] = [
    "--name",
    "Palettes EUR reconditionnées",
    "--family",
    "pallets",
    "--component",
    "Bois de résineux:96:declared",
    "--component",
    "Clous acier:4:declared",
    "--recycled",
    "100",
];
/// Longest wait for what another service does on an event (it comes through NATS).
pub(crate) const REACTION_WAIT: Duration = Duration::from_secs(30);

/// The server PostgreSQL test databases are made on, its superuser trusted on the loopback.
pub(crate) const POSTGRES_SERVER: &str = "postgres://postgres@127.0.0.1:5432";
/// Longest wait to connect to PostgreSQL.
const POSTGRES_CONNECT_WAIT: Duration = Duration::from_secs(5);

/// Where each service keeps its events.
enum Stores {
    /// In its data directory.
    Embedded,
    /// In a PostgreSQL database of its own.
    Postgres(Databases),
}

impl Stores {
    /// The variables that give `binary` its store.
    fn env(&self, binary: &str) -> Vec<(&'static str, String)> {
        match self {
            Stores::Embedded => Vec::new(),
            Stores::Postgres(databases) => vec![
                ("SYMBIOSE_STORE", "postgres".to_owned()),
                ("SYMBIOSE_POSTGRES_URL", format!("{POSTGRES_SERVER}/{}", databases.name(binary))),
            ],
        }
    }
}

/// A database `symbiose_test_<random>` for each service binary, made on the local PostgreSQL and
/// dropped (its connections ended) when this is dropped, the test failed or not.
pub(crate) struct Databases {
    pub(crate) names: Vec<(&'static str, String)>,
}

impl Databases {
    /// The five databases, or `None` after printing that `test` was skipped because PostgreSQL
    /// does not answer. Panics if it does not answer where `CI` is set.
    pub(crate) fn create_or_skip(test: &str) -> Option<Databases> {
        if let Err(error) = on_postgres(&[]) {
            let cause =
                std::error::Error::source(&error).map(|cause| format!(": {cause}")).unwrap_or_default();
            let reason = format!("PostgreSQL does not answer at {POSTGRES_SERVER}: {error}{cause}");
            assert!(
                std::env::var_os("CI").is_none_or(|value| value.is_empty()),
                "{test}: {reason} (CI is set: this test must run)"
            );
            println!("skipped {test}: {reason}");
            return None;
        }
        let names = [LISTINGS, MATCHING, LOGISTICS, SETTLEMENT, PASSPORTS]
            .map(|binary| (binary, format!("symbiose_test_{}", uuid::Uuid::now_v7().simple())));
        let databases = Databases { names: names.to_vec() };
        // The names are ours (letters, digits, `_`): nothing to quote.
        let create = names.map(|(_, name)| format!("CREATE DATABASE {name}"));
        on_postgres(&create).expect("create the databases");
        Some(databases)
    }

    /// `binary`'s database.
    pub(crate) fn name(&self, binary: &str) -> &str {
        self.names.iter().find(|(of, _)| *of == binary).map(|(_, name)| name.as_str()).expect("a database")
    }
}

impl Drop for Databases {
    fn drop(&mut self) {
        let drop = self.names.iter().map(|(_, name)| format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        if let Err(error) = on_postgres(&drop.collect::<Vec<_>>()) {
            eprintln!("the test databases were not dropped: {error}");
        }
    }
}

/// Runs `statements` one after the other (`CREATE DATABASE` cannot share a transaction) in the
/// `postgres` database; the rows each returned.
fn on_postgres(statements: &[String]) -> Result<Vec<Vec<tokio_postgres::Row>>, tokio_postgres::Error> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    runtime.block_on(async { query(&format!("{POSTGRES_SERVER}/postgres"), statements).await })
}

/// Runs `statements` in the database at `url`; the rows each returned.
pub(crate) async fn query(
    url: &str,
    statements: &[String],
) -> Result<Vec<Vec<tokio_postgres::Row>>, tokio_postgres::Error> {
    let mut config: tokio_postgres::Config = url.parse()?;
    config.connect_timeout(POSTGRES_CONNECT_WAIT);
    let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    let mut rows = Vec::new();
    for statement in statements {
        rows.push(client.query(statement.as_str(), &[]).await?);
    }
    Ok(rows)
}

/// The platform: NATS, the listings service's address, settlement's (the one logistics calls:
/// settlement is always started at it), the platform's key, and where each service keeps its
/// events.
struct Platform<'a> {
    nats_url: String,
    listings_url: String,
    settlement_addr: String,
    signing_key: Vec<u8>,
    stores: &'a Stores,
    /// Mutual TLS on every gRPC port, and between the services, when set.
    tls: Option<&'a Pki>,
}

/// A CA, the certificate every service serves and presents to the others (as the chart
/// mounts one Secret in every pod: server and client authentication, for 127.0.0.1), and a
/// partner's client certificate for the command-line client.
pub(crate) struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    pub(crate) fn new() -> Pki {
        use rcgen::{
            BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
            KeyPair, KeyUsagePurpose,
        };
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.distinguished_name.push(DnType::CommonName, "symbiose services CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
        let ca = CertifiedIssuer::self_signed(ca_params, ca_key).expect("CA certificate");
        let dir = tempfile::tempdir().expect("a directory for the certificates");
        std::fs::write(dir.path().join("ca.crt"), ca.pem()).expect("write");
        for (name, sans, usages) in [
            (
                "services",
                vec!["127.0.0.1".to_owned(), "localhost".to_owned()],
                vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth],
            ),
            ("partner", Vec::new(), vec![ExtendedKeyUsagePurpose::ClientAuth]),
        ] {
            let key = KeyPair::generate().expect("a key");
            let mut params = CertificateParams::new(sans).expect("params");
            params.distinguished_name.push(DnType::CommonName, name);
            params.extended_key_usages = usages;
            let cert = params.signed_by(&key, &ca).expect("a certificate");
            std::fs::write(dir.path().join(format!("{name}.crt")), cert.pem()).expect("write");
            std::fs::write(dir.path().join(format!("{name}.key")), key.serialize_pem()).expect("write");
        }
        Pki { dir }
    }

    pub(crate) fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    /// What a service gets: its port serves mutual TLS, and (`calls`: it calls others) it
    /// trusts the CA and presents its certificate to them.
    fn server_env(&self, calls: bool) -> Vec<(&'static str, String)> {
        let mut env = vec![
            ("SYMBIOSE_TLS_CERT", self.path("services.crt")),
            ("SYMBIOSE_TLS_KEY", self.path("services.key")),
            ("SYMBIOSE_TLS_CLIENT_CA", self.path("ca.crt")),
        ];
        if calls {
            env.extend([
                ("SYMBIOSE_SERVICES_CA", self.path("ca.crt")),
                ("SYMBIOSE_SERVICES_CLIENT_CERT", self.path("services.crt")),
                ("SYMBIOSE_SERVICES_CLIENT_KEY", self.path("services.key")),
            ]);
        }
        env
    }

    /// What the command-line client of a partner gets.
    pub(crate) fn client_args(&self) -> Vec<String> {
        [
            "--ca",
            &self.path("ca.crt"),
            "--client-cert",
            &self.path("partner.crt"),
            "--client-key",
            &self.path("partner.key"),
        ]
        .map(str::to_owned)
        .to_vec()
    }
}

impl Platform<'_> {
    /// Starts `binary` on `data_dir` with the platform's key (where the chart mounts it from
    /// its Secret), its store, NATS and the listings service's address.
    fn start(&self, binary: &str, data_dir: tempfile::TempDir) -> ServerProcess {
        let keys = data_dir.path().join("data/keys");
        std::fs::create_dir_all(&keys).expect("the keys directory");
        std::fs::write(keys.join("signing.key"), &self.signing_key).expect("the signing key");
        let settlement_url = format!("{}://{}", self.scheme(), self.settlement_addr);
        let mut env = vec![
            ("SYMBIOSE_NATS_URL", self.nats_url.as_str()),
            ("SYMBIOSE_LISTINGS_URL", self.listings_url.as_str()),
            ("SYMBIOSE_SETTLEMENT_URL", settlement_url.as_str()),
        ];
        if binary == SETTLEMENT {
            env.push(("SYMBIOSE_LISTEN_ADDR", self.settlement_addr.as_str()));
        }
        let store = self.stores.env(binary);
        env.extend(store.iter().map(|(key, value)| (*key, value.as_str())));
        self.spawn(binary, data_dir, env, true)
    }

    fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }

    /// Starts `binary` with `env`, and the TLS of the platform: `calls` says whether it is given
    /// the addresses of other services (and so their CA and its client certificate).
    fn spawn(
        &self,
        binary: &str,
        data_dir: tempfile::TempDir,
        env: Vec<(&str, &str)>,
        calls: bool,
    ) -> ServerProcess {
        match self.tls {
            None => ServerProcess::spawn(binary, data_dir, &env),
            Some(pki) => {
                let tls = pki.server_env(calls);
                let env: Vec<(&str, &str)> =
                    env.into_iter().chain(tls.iter().map(|(key, value)| (*key, value.as_str()))).collect();
                ServerProcess::spawn_tls(binary, data_dir, &env, pki.client_args())
            }
        }
    }

    /// Starts the listings service (again) on `data_dir`, with its store, at the address the
    /// others know.
    fn start_listings(&self, data_dir: tempfile::TempDir) -> ServerProcess {
        let addr = self.listings_url.split_once("://").map_or(self.listings_url.as_str(), |(_, addr)| addr);
        let mut env = vec![("SYMBIOSE_NATS_URL", self.nats_url.as_str()), ("SYMBIOSE_LISTEN_ADDR", addr)];
        let store = self.stores.env(LISTINGS);
        env.extend(store.iter().map(|(key, value)| (*key, value.as_str())));
        self.spawn(LISTINGS, data_dir, env, false)
    }

    /// Kills `process` with SIGKILL and starts it again on its data directory.
    fn kill_and_restart(&self, binary: &str, process: ServerProcess) -> ServerProcess {
        let data_dir = process.kill();
        self.start(binary, data_dir)
    }
}

/// `127.0.0.1:<port>` with a port from 20000 to 29999 that is free now (the system hands out
/// ephemeral ports from 32768 on).
pub(crate) fn free_port_below_ephemeral() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let seed = u64::from(std::process::id()) ^ u64::from(now.subsec_nanos());
    (0..1000)
        .map(|attempt| 20_000 + (seed.wrapping_mul(7919).wrapping_add(attempt * 104_729)) % 10_000)
        .find_map(|port| {
            std::net::TcpListener::bind(("127.0.0.1", port as u16)).ok().map(|_| format!("127.0.0.1:{port}"))
        })
        .expect("a free port from 20000 to 29999")
}

/// Runs `args` against `process` with `token` until it succeeds and its output satisfies
/// `done` (a service learns of the others' events through NATS, shortly after they happen);
/// the output.
fn until(process: &ServerProcess, token: &str, args: &[&str], done: impl Fn(&str) -> bool) -> String {
    let output =
        until_output(process, token, args, |output| output.status.success() && done(&stdout(output)));
    stdout(&output)
}

/// Runs `args` against `process` with `token` until `done` says yes to what it printed, within
/// [`REACTION_WAIT`]; that run.
fn until_output(
    process: &ServerProcess,
    token: &str,
    args: &[&str],
    done: impl Fn(&Output) -> bool,
) -> Output {
    let deadline = Instant::now() + REACTION_WAIT;
    loop {
        let output = process.as_member(token, args);
        if done(&output) {
            return output;
        }
        assert!(
            Instant::now() < deadline,
            "{args:?} never gave the expected answer: {}{}",
            stdout(&output),
            stderr(&output)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The pallets a listing shown by the client has left to reserve.
pub(crate) fn available(shown: &str) -> Option<f64> {
    let line = shown.lines().find_map(|line| line.strip_prefix("available:"))?;
    line.split_whitespace().next()?.parse().ok()
}

/// `GET path` at `base_url` (`http://host:port`) with `Accept-Language: language`, over a plain
/// TCP connection: the status and the body.
pub(crate) fn http_get(base_url: &str, path: &str, language: &str) -> (u16, String) {
    use std::io::{Read as _, Write as _};
    let host = base_url.trim_start_matches("http://");
    let mut connection = std::net::TcpStream::connect(host).expect("connect to the web port");
    connection.set_read_timeout(Some(REACTION_WAIT)).expect("a read timeout");
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept-Language: {language}\r\nConnection: close\r\n\r\n"
    );
    connection.write_all(request.as_bytes()).expect("send the request");
    let mut answer = Vec::new();
    connection.read_to_end(&mut answer).expect("read the answer");
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((answer.as_str(), ""));
    let status = head.split_whitespace().nth(1).and_then(|code| code.parse().ok()).unwrap_or(0);
    (status, body.to_owned())
}

pub(crate) fn succeeded(output: Output, what: &str) -> Output {
    assert!(output.status.success(), "{what}: {}", stderr(&output));
    output
}

#[test]
fn each_service_alone_carries_a_cross_border_deal_through_kills_and_restarts() {
    cross_border_exchange("each_service_alone_carries_a_cross_border_deal", &Stores::Embedded, None);
}

/// The same exchange with mutual TLS on every gRPC port, as the chart's production values
/// install it: each service serves TLS and asks for a client certificate from the platform's
/// CA, and presents its own when it calls another (matching reserving at listings, logistics
/// paying through settlement and reading contacts at listings); the partner's client presents
/// one too. A client without a certificate, or speaking plaintext, is refused.
#[test]
fn each_service_alone_under_mutual_tls_carries_a_cross_border_deal_through_kills_and_restarts() {
    let pki = Pki::new();
    let test = "each_service_alone_under_mutual_tls_carries_a_cross_border_deal";
    cross_border_exchange(test, &Stores::Embedded, Some(&pki));
}

/// The same exchange, kills and restarts with each service's events in a PostgreSQL database
/// of its own; every database holds its service's events at the end. Skipped with a message
/// where PostgreSQL does not answer, failed under `CI`.
#[test]
fn each_service_alone_on_postgres_carries_a_cross_border_deal_through_kills_and_restarts() {
    let test = "each_service_alone_on_postgres_carries_a_cross_border_deal";
    let Some(databases) = Databases::create_or_skip(test) else { return };
    let stores = Stores::Postgres(databases);
    cross_border_exchange(test, &stores, None);
    let Stores::Postgres(databases) = &stores else { unreachable!() };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    for (binary, name) in &databases.names {
        let rows = runtime
            .block_on(query(
                &format!("{POSTGRES_SERVER}/{name}"),
                &["SELECT count(*) FROM symbiose_events".to_owned()],
            ))
            .unwrap_or_else(|error| panic!("{binary}'s events in {name}: {error}"));
        let events: i64 = rows[0][0].get(0);
        assert!(events > 0, "{binary} wrote no event in {name}");
    }
}

/// The cross-border exchange through the five services alone, each with its events where
/// `stores` says, four of them killed with SIGKILL and started again on the way, and the
/// delivered lot's passport read on the passports process's web port.
fn cross_border_exchange(test: &str, stores: &Stores, tls: Option<&Pki>) {
    let Some(nats) = NatsServer::start_or_skip(test) else {
        return;
    };
    let started = Instant::now();
    let nats_url = nats.url();
    // The listings service is started again at the same address: a port below the system's
    // ephemeral range, so that no client connection takes it while the service is down.
    let listings_addr = free_port_below_ephemeral();
    let listings_data = data_dir_with_a_new_key();
    let signing_key =
        std::fs::read(listings_data.path().join("data/keys/signing.key")).expect("the platform's key");
    // Settlement too is started again at its address, the one logistics calls.
    let settlement_addr = free_port_below_ephemeral();
    let platform = Platform {
        nats_url,
        listings_url: format!("{}://{listings_addr}", if tls.is_some() { "https" } else { "http" }),
        settlement_addr,
        signing_key,
        stores,
        tls,
    };
    let listings = platform.start_listings(listings_data);
    let matching = platform.start(MATCHING, tempfile::tempdir().expect("a data directory"));
    let settlement = platform.start(SETTLEMENT, tempfile::tempdir().expect("a data directory"));
    let mut logistics = platform.start(LOGISTICS, tempfile::tempdir().expect("a data directory"));
    let passports = platform.start(PASSPORTS, tempfile::tempdir().expect("a data directory"));

    // The directory, at the listings service.
    let (producer, producer_site, producer_id) = listings.member(
        "Palettes de l'Est SAS",
        "FR",
        "73282932000074",
        "producer",
        ("Strasbourg", "48.5734", "7.7521"),
    );
    let (buyer, buyer_site, buyer_id) = listings.member(
        "Kehler Palettenservice GmbH",
        "DE",
        "DE136695976",
        "buyer",
        ("Kehl", "48.5724", "7.8154"),
    );
    let (carrier, carrier_id) = listings.carrier();

    // Logistics and settlement know the organizations from the listings' events on NATS; the
    // carrier's token, issued by the listings service, is good at logistics (one signing key).
    let registered = until(&logistics, &carrier, CARRIER_PROFILE, |_| true);
    assert!(registered.starts_with("carrier profile registered"), "{registered}");
    let operator = std::fs::read_to_string(listings.data_dir.path().join("data/operator.token"))
        .expect("the operator token");
    let deposited = until(
        &settlement,
        operator.trim(),
        &["money", "deposit", "--organization", &buyer_id, "--amount", "500.00"],
        |_| true,
    );
    assert!(deposited.contains("available 500.00 EUR"), "{deposited}");

    // Offer and request at the listings service; matching proposes the pair from their events,
    // and reserves the offer through the listings service's gRPC port.
    let offer = listings.publish_pallets(&producer, "offer", &producer_site, "3.50");
    listings.publish_pallets(&buyer, "request", &buyer_site, "4.00");
    let proposals = until(&matching, &buyer, &["proposal", "list"], |text| text.contains("proposal "));
    let proposal = first_word_after(&proposals, "proposal ").expect("a proposal");
    let accepted =
        succeeded(matching.as_member(&producer, &["proposal", "accept", &proposal]), "the producer accepts");
    assert!(
        stdout(&accepted).contains(&format!("proposal {proposal}  open"))
            && stdout(&accepted).contains(&format!("accepted by: {producer_id}")),
        "{}",
        stdout(&accepted)
    );
    // SIGKILL settlement in the middle of the agreement: the deal is agreed while it is down.
    let settlement_data = settlement.kill();
    // SIGKILL the listings service too: the buyer's acceptance, the last, cannot reserve the
    // offer and says so; the proposal holds every acceptance, and matching concludes it by
    // itself once the listings service is back, with no one asking again.
    let listings_data = listings.kill();
    let refused = matching.as_member(&buyer, &["proposal", "accept", &proposal]);
    assert!(
        !refused.status.success() && stderr(&refused).contains("Unavailable"),
        "the acceptance says the listings service is away: {}{}",
        stdout(&refused),
        stderr(&refused)
    );
    let listings = platform.start_listings(listings_data);
    let concluded = until(&matching, &buyer, &["proposal", "list"], |text| {
        text.contains(&format!("{proposal}  concluded"))
    });
    assert!(concluded.contains("40 pallet  at 3.50 EUR"), "{concluded}");
    let deals = until(&matching, &buyer, &["deal", "list"], |text| text.contains("agreed"));
    let deal = first_word_after(&deals, "deal ").expect("a deal");
    let shown = until(&matching, &buyer, &["deal", "show", &deal], |text| text.contains("agreed"));
    assert!(shown.contains("40 pallet at 3.50 EUR = 140.00 EUR"), "{shown}");
    let reserved =
        until(&listings, &producer, &["listing", "show", &offer], |text| available(text) == Some(0.0));
    assert!(reserved.contains("published"), "{reserved}");

    // Logistics opened the deal's transport from matching's DealAgreed, and quotes it.
    let quotes = until(&logistics, &buyer, &["quote", "list", &deal], |text| text.contains("quote "));
    assert!(quotes.contains("90.00 EUR") && quotes.contains("6.1 km by road"), "{quotes}");
    assert_eq!(quotes.lines().filter(|line| line.starts_with("quote ")).count(), 1, "one carrier: {quotes}");
    let quote = first_word_after(&quotes, "quote ").expect("a quote");
    // Settlement, started again, finds the DealAgreed it missed waiting on NATS, and holds the
    // deal's escrow once.
    let settlement = platform.start(SETTLEMENT, settlement_data);
    let held =
        until(&settlement, &buyer, &["money", "balances"], |text| text.contains("available 357.20 EUR"));
    assert!(held.contains("held 142.80 EUR"), "the escrow of 140.00 + 2% fee: {held}");
    let booked =
        succeeded(logistics.as_member(&buyer, &["shipment", "book", &deal, "--quote", &quote]), "book");
    let shipment = first_line_word(&booked, "shipment ").expect("a shipment");
    logistics.carry_pallets(&carrier, &shipment);
    // SIGKILL the listings service before the receiver's acceptance: matching's delivery will
    // find it away, and must wait for it.
    let listings_data = listings.kill();
    let closed = succeeded(logistics.as_member(&buyer, &["shipment", "accept", &shipment]), "accept");
    assert!(stdout(&closed).contains("closed"), "{}", stdout(&closed));

    // SIGKILL logistics right after the receiver's acceptance, before its relay may have put
    // the ShipmentClosed on NATS: started again, it relays it from its checkpoint, once.
    logistics = platform.kill_and_restart(LOGISTICS, logistics);
    let shown = until(&logistics, &buyer, &["shipment", "show", &shipment], |text| text.contains("closed"));
    assert!(shown.contains("two with broken boards"), "{shown}");

    // Settlement paid the 38 pallets accepted once, and invoiced them once.
    let transfers = until(&settlement, &buyer, &["money", "transfers", &deal], |text| {
        text.contains("settlement   133.00 EUR")
    });
    assert_eq!(transfers.matches("settlement   133.00 EUR").count(), 1, "paid once: {transfers}");
    let paid =
        until(&settlement, &producer, &["money", "balances"], |text| text.contains("available 133.00 EUR"));
    assert!(paid.contains(&producer_id), "{paid}");
    let refunded =
        until(&settlement, &buyer, &["money", "balances"], |text| text.contains("available 364.34 EUR"));
    assert!(refunded.contains("held 0.00 EUR"), "the 7.14 not delivered released: {refunded}");
    let invoices = until(&settlement, &producer, &["invoice", "list"], |text| text.contains("-000001"));
    assert!(invoices.contains("intra_eu_exempt") && !invoices.contains("-000002"), "one invoice: {invoices}");
    // The listings service, started again at its address: matching's delivery, which found it
    // away, goes through; the reservation becomes the 38 delivered, the 2 refused back on offer.
    let listings = platform.start_listings(listings_data);
    let offered =
        until(&listings, &producer, &["listing", "show", &offer], |text| available(text) == Some(2.0));
    assert!(offered.contains("published"), "{offered}");
    let balances = until(&logistics, &producer, &["pallets", "balances"], |text| text.contains(&carrier_id));
    assert!(balances.contains(&format!("{carrier_id}  grade b  +5")), "{balances}");
    // The buyer pays the carrier for the 4 pallets it kept: logistics has settlement move the
    // money over gRPC first, then records the balance settled.
    let settle = [
        "pallets",
        "settle",
        "--counterparty",
        &carrier_id,
        "--pallet-grade",
        "b",
        "--count",
        "4",
        "--payment",
        "28.00",
    ];
    let settled = until(&logistics, &buyer, &settle, |_| true);
    assert!(settled.contains("+0"), "{settled}");
    let paid =
        until(&settlement, &carrier, &["money", "balances"], |text| text.contains("available 28.00 EUR"));
    assert!(paid.contains(&carrier_id), "{paid}");
    // The Annex VII document names the producer's contact, which logistics reads from the
    // listings service over gRPC (the contacts are sealed with the listings service's keys).
    let contact = [
        "organization",
        "set-contacts",
        &producer_id,
        "--person",
        "Paul Lambert",
        "--phone",
        "+33 3 88 11 22 33",
        "--function",
        "logistics",
    ];
    succeeded(listings.as_member(&producer, &contact), "the producer's contact");
    let annex = succeeded(logistics.as_member(&producer, &["shipment", "annex-vii", &shipment]), "annex");
    let text = stdout(&annex);
    assert!(
        text.contains("Contact person: Paul Lambert") && text.contains("Tel.: +33 3 88 11 22 33"),
        "{text}"
    );

    // The passport of the delivered lot, made by its receiver at the passports process, which
    // knows the shipment and the deal from logistics' and matching's events on NATS: a draft,
    // then (the process killed with SIGKILL and started again on its data directory) published.
    let create = [&["passport", "create", "--shipment", &shipment][..], &PALLETS_DECLARATION].concat();
    let created = until(&passports, &buyer, &create, |text| text.starts_with("passport "));
    let passport = first_word_after(&created, "passport ").expect("a passport");
    let passports = platform.kill_and_restart(PASSPORTS, passports);
    let published = until(&passports, &buyer, &["passport", "publish", &passport], |_| true);
    assert!(published.contains("(published)"), "{published}");
    let shown = succeeded(passports.as_member(&producer, &["passport", "show", &passport]), "the passport");
    let story = stdout(&shown);
    for step in
        ["origin · Strasbourg · Palettes de l'Est SAS", "delivery · Kehl · Kehler Palettenservice GmbH"]
    {
        assert!(story.contains(step), "the chain of custody shows {step:?}: {story}");
    }
    let web_url = passports.web_url.as_deref().expect("the passports process serves its web port");
    let (status, page) = http_get(web_url, &format!("/p/{passport}"), "de-DE,de;q=0.9");
    assert_eq!(status, 200, "{page}");
    for text in
        ["Palettes EUR reconditionnées", "Geschichte der Partie", "Strasbourg", "Kehl", "Grenzübertritt"]
    {
        assert!(page.contains(text), "the German page shows {text:?}: {page}");
    }
    let (status, missing) = http_get(web_url, "/p/0190a0b2-5c1e-7000-8000-000000000000", "fr");
    assert_eq!(status, 404, "an unknown passport: {missing}");

    // The territory context runs in the passports process on the same imported events: the
    // Eurodistrict's figures this year (one producer: its volumes withheld, its partnership
    // counted) and the producer's register of outgoing waste, with its one lot.
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as i64)
        .unwrap_or_default();
    let today = symbiose_domain::Country::Fr.date_at(now_ms);
    let year = today.year().to_string();
    let figures = until(
        &passports,
        &producer,
        &["territory", "figures", "strasbourg-ortenau", "--period", &year],
        |text| text.contains("partnerships: 1 (1 across a border)"),
    );
    assert!(figures.contains("volumes: withheld"), "{figures}");
    let register_dir = tempfile::tempdir().expect("a directory for the register");
    let register = register_dir.path().join("sortants.csv");
    let month = format!("{:04}-{:02}", today.year(), today.month());
    let exported = succeeded(
        passports.as_member(
            &producer,
            &[
                "register",
                "export",
                "--kind",
                "outgoing",
                "--organization",
                &producer_id,
                "--period",
                &month,
                "--out",
                &register.display().to_string(),
            ],
        ),
        "the producer's register",
    );
    assert!(stdout(&exported).ends_with(": 1 rows\n"), "{}", stdout(&exported));
    let written = std::fs::read_to_string(&register).expect("the register's file");
    assert!(
        written.contains("Palettes de l'Est SAS") && written.contains("Kehler Palettenservice GmbH"),
        "{written}"
    );

    // A token revoked at the listings service is refused by every other service once the
    // revocation reaches it on NATS.
    let issued = succeeded(listings.cli(&["token", "issue", "--organization", &buyer_id]), "a second token");
    let second = stdout(&issued).trim().to_owned();
    let token_id = stderr(&issued)
        .lines()
        .find_map(|line| line.strip_prefix("token id "))
        .expect("the token's id")
        .trim()
        .to_owned();
    let asks: [(&ServerProcess, &[&str]); 4] = [
        (&matching, &["proposal", "list"]),
        (&logistics, &["pallets", "balances"]),
        (&settlement, &["money", "balances"]),
        (&passports, &["passport", "list", "--mine"]),
    ];
    // What each answers the buyer before the revocation: its proposal, its pallet balances
    // (settled: none left), its money (364.34 less the 28.00 paid the carrier), its passport.
    let answers = [
        format!("proposal {proposal}  concluded"),
        "(0 balances)".to_owned(),
        "available 336.34 EUR".to_owned(),
        format!("{passport}  published"),
    ];
    for ((service, args), answer) in asks.iter().zip(&answers) {
        let output = succeeded(service.as_member(&second, args), "the second token, before its revocation");
        assert!(stdout(&output).contains(answer.as_str()), "{args:?}: {}", stdout(&output));
    }
    let revoked = succeeded(listings.cli(&["token", "revoke", &token_id]), "revoke the second token");
    assert_eq!(stdout(&revoked).trim(), "revoked");
    for (service, args) in asks {
        let refused = until_output(service, &second, args, |output| !output.status.success());
        assert!(stderr(&refused).contains("has been revoked"), "{args:?}: {}", stderr(&refused));
    }
    // Nothing came twice later either: one payment, one invoice.
    let transfers = succeeded(settlement.as_member(&buyer, &["money", "transfers", &deal]), "transfers");
    assert_eq!(stdout(&transfers).matches("settlement   133.00 EUR").count(), 1, "{}", stdout(&transfers));
    let invoices = succeeded(settlement.as_member(&producer, &["invoice", "list"]), "invoices");
    assert!(!stdout(&invoices).contains("-000002"), "{}", stdout(&invoices));
    let offered = succeeded(listings.as_member(&producer, &["listing", "show", &offer]), "the offer");
    assert_eq!(available(&stdout(&offered)), Some(2.0), "{}", stdout(&offered));
    if let Some(pki) = tls {
        // Under mutual TLS, a client that presents no certificate, or speaks plaintext, is
        // refused at every port.
        for service in [&listings, &matching, &logistics, &settlement, &passports] {
            let anonymous = Command::new(super::BINARY)
                .args(["--server", &service.url, "--ca", &pki.path("ca.crt"), "health"])
                .output()
                .expect("run the client");
            assert!(!anonymous.status.success(), "a client without a certificate: {}", stdout(&anonymous));
            let plaintext = service.url.replacen("https://", "http://", 1);
            let refused =
                Command::new(super::BINARY).args(["--server", &plaintext, "health"]).output().expect("run");
            assert!(!refused.status.success(), "a plaintext client at {plaintext}: {}", stdout(&refused));
            let served = succeeded(service.cli(&["health"]), "the partner's client, with its certificate");
            assert!(stdout(&served).contains("SERVING"), "{}", stdout(&served));
        }
    }
    println!("{test}: the multi-process flow took {:.1} s", started.elapsed().as_secs_f64());
}

/// The `symbiose` binary called by the name of a service alone (as the image links each name
/// to it) runs that service: without the platform's key it refuses to start, naming the file,
/// where the one-process server would make a key; called `symbiose` it is the server.
#[test]
fn the_symbiose_binary_called_by_a_service_name_runs_that_service() {
    let links = tempfile::tempdir().expect("a directory for the links");
    for name in symbiose::alone::BINARIES {
        let link = links.path().join(name);
        std::os::unix::fs::symlink(super::BINARY, &link).expect("link the binary");
        let data_dir = tempfile::tempdir().expect("a data directory");
        let output = std::process::Command::new(&link)
            .env("SYMBIOSE_LISTEN_ADDR", "127.0.0.1:0")
            .env("SYMBIOSE_METRICS_ADDR", "off")
            .env("SYMBIOSE_WEB_ADDR", "127.0.0.1:0")
            .env("SYMBIOSE_DATA_DIR", data_dir.path().join("data"))
            .env("SYMBIOSE_NATS_URL", "nats://127.0.0.1:1")
            .env("SYMBIOSE_LISTINGS_URL", "http://127.0.0.1:1")
            .env("SYMBIOSE_SETTLEMENT_URL", "http://127.0.0.1:1")
            .output()
            .expect("run the link");
        let said = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{name} started");
        assert!(said.contains("keys/signing.key") && said.contains("symbiose key create"), "{name}: {said}");
        assert!(!data_dir.path().join("data/keys/signing.key").exists(), "{name} made a key of its own");
    }
}

/// A service alone that lacks what it needs stops at start, naming the setting, before it
/// writes anything.
#[test]
fn a_service_alone_without_nats_or_the_listings_address_stops_naming_the_setting() {
    let run = |binary: &str, env: &[(&str, &str)]| {
        let data_dir = tempfile::tempdir().expect("a data directory");
        let output = std::process::Command::new(binary)
            .env("SYMBIOSE_LISTEN_ADDR", "127.0.0.1:0")
            .env("SYMBIOSE_METRICS_ADDR", "off")
            .env("SYMBIOSE_WEB_ADDR", "127.0.0.1:0")
            .env("SYMBIOSE_DATA_DIR", data_dir.path().join("data"))
            .env_remove("SYMBIOSE_NATS_URL")
            .env_remove("SYMBIOSE_LISTINGS_URL")
            .envs(env.iter().copied())
            .output()
            .expect("run the service");
        assert!(!output.status.success(), "{binary} started");
        assert!(!data_dir.path().join("data").exists(), "{binary} wrote its data directory");
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    for binary in [MATCHING, LOGISTICS, SETTLEMENT, PASSPORTS] {
        let said = run(
            binary,
            &[
                ("SYMBIOSE_LISTINGS_URL", "http://127.0.0.1:1"),
                ("SYMBIOSE_SETTLEMENT_URL", "http://127.0.0.1:1"),
            ],
        );
        assert!(said.contains("SYMBIOSE_NATS_URL"), "{binary}: {said}");
    }
    let said = run(MATCHING, &[("SYMBIOSE_NATS_URL", "nats://127.0.0.1:1")]);
    assert!(said.contains("SYMBIOSE_LISTINGS_URL"), "{said}");
    let said = run(LOGISTICS, &[("SYMBIOSE_NATS_URL", "nats://127.0.0.1:1")]);
    assert!(said.contains("SYMBIOSE_SETTLEMENT_URL"), "{said}");
    let said =
        run(MATCHING, &[("SYMBIOSE_NATS_URL", "nats://127.0.0.1:1"), ("SYMBIOSE_LISTINGS_URL", "listings")]);
    assert!(said.contains("SYMBIOSE_LISTINGS_URL") && said.contains("http://host:port"), "{said}");
    // Every setting given but the platform's key: each refuses to start, naming the file,
    // rather than make a key of its own that would refuse every token the others issue.
    let settings = [
        ("SYMBIOSE_NATS_URL", "nats://127.0.0.1:1"),
        ("SYMBIOSE_LISTINGS_URL", "http://127.0.0.1:1"),
        ("SYMBIOSE_SETTLEMENT_URL", "http://127.0.0.1:1"),
    ];
    for binary in [LISTINGS, MATCHING, LOGISTICS, SETTLEMENT, PASSPORTS] {
        let said = run(binary, &settings);
        assert!(
            said.contains("keys/signing.key") && said.contains("symbiose key create"),
            "{binary}: {said}"
        );
    }
}
