//! The `symbiose` binary as a person uses it: the server started as a real process, the
//! command-line client against it, and a graceful stop on SIGTERM.

mod alone;
mod cli_client;
mod demo;
mod listings_alone;
mod readme;
mod replicas;
mod snapshots;
mod store;

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

const BINARY: &str = env!("CARGO_BIN_EXE_symbiose");
/// Longest wait for the server to say where it listens, or to exit.
const SERVER_WAIT_MS: u64 = 30_000;
/// Lines of a server's log a failing test shows.
const LOG_LINES_SHOWN: usize = 40;

/// A data directory holding a new platform signing key, made as an operator makes the
/// platform's first one (`symbiose key create`): a service alone refuses to start without it.
fn data_dir_with_a_new_key() -> tempfile::TempDir {
    let data_dir = tempfile::tempdir().expect("a data directory");
    let output = Command::new(BINARY)
        .args(["key", "create", "--data-dir"])
        .arg(data_dir.path().join("data"))
        .output()
        .expect("run symbiose key create");
    assert!(output.status.success(), "key create: {}", String::from_utf8_lossy(&output.stderr));
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(said.contains("signing.key"), "key create names the file it wrote: {said}");
    assert_eq!(
        std::fs::metadata(data_dir.path().join("data/keys/signing.key")).expect("the key").len(),
        32,
        "a 32-byte seed"
    );
    data_dir
}

/// The server binary, started on free ports with its data in a temporary directory.
struct ServerProcess {
    child: Option<Child>,
    url: String,
    /// `http://` and the address of its public web port, when it logged one.
    web_url: Option<String>,
    data_dir: tempfile::TempDir,
    /// The client's TLS settings for this server's port (`--ca`, `--client-cert`,
    /// `--client-key`), when it serves TLS.
    client_tls: Vec<String>,
}

impl ServerProcess {
    fn start() -> ServerProcess {
        ServerProcess::spawn(BINARY, tempfile::tempdir().expect("temporary directory"), &[])
    }

    /// Starts `binary` on free ports with its data in `data_dir` (a fresh one, or that of a
    /// process killed before) and the variables `env` on top, and waits for it to listen.
    fn spawn(binary: &str, data_dir: tempfile::TempDir, env: &[(&str, &str)]) -> ServerProcess {
        ServerProcess::spawn_tls(binary, data_dir, env, Vec::new())
    }

    /// [`ServerProcess::spawn`] for a server whose gRPC port serves TLS (its `env` says so):
    /// the client reaches it at `https://` with `client_tls` (`--ca` and the like).
    fn spawn_tls(
        binary: &str,
        data_dir: tempfile::TempDir,
        env: &[(&str, &str)],
        client_tls: Vec<String>,
    ) -> ServerProcess {
        let mut child = Command::new(binary)
            .env("SYMBIOSE_LISTEN_ADDR", "127.0.0.1:0")
            .env("SYMBIOSE_METRICS_ADDR", "127.0.0.1:0")
            .env("SYMBIOSE_WEB_ADDR", "127.0.0.1:0")
            .env("SYMBIOSE_DATA_DIR", data_dir.path().join("data"))
            .env("SYMBIOSE_LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| panic!("start {binary}: {error}"));
        // The server logs the address it bound; port 0 let the system choose it. Its log is
        // kept in its data directory (a process started again appends to it).
        let stderr = child.stderr.take().expect("stderr");
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(data_dir.path().join("stderr.log"))
            .expect("the process's log file");
        let (sender, receiver) = std::sync::mpsc::sync_channel(1);
        // The web port is bound and logged before the gRPC port.
        let web_addr = std::sync::Arc::new(std::sync::Mutex::new(None::<String>));
        let web_seen = web_addr.clone();
        std::thread::spawn(move || {
            let mut sender = Some(sender);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = writeln!(log, "{line}");
                if line.contains("web listening")
                    && let Some(addr) =
                        line.split("\"addr\":\"").nth(1).and_then(|rest| rest.split('"').next())
                {
                    *web_seen.lock().expect("the web address") = Some(addr.to_owned());
                }
                if line.contains("gRPC listening")
                    && let Some(addr) =
                        line.split("\"addr\":\"").nth(1).and_then(|rest| rest.split('"').next())
                    && let Some(sender) = sender.take()
                {
                    let _ = sender.send(addr.to_owned());
                }
            }
        });
        let addr = receiver.recv_timeout(Duration::from_millis(SERVER_WAIT_MS)).unwrap_or_else(|_| {
            let exited = child.try_wait().ok().flatten();
            let log = std::fs::read(data_dir.path().join("stderr.log")).unwrap_or_default();
            let log = String::from_utf8_lossy(&log);
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            let _ = child.kill();
            panic!(
                "{binary} did not say where it listens within {SERVER_WAIT_MS} ms ({}); the last lines of its log:\n{}",
                exited.map_or("still running".to_owned(), |status| format!("it exited: {status}")),
                tail.join("\n")
            )
        });
        let web_url = web_addr.lock().expect("the web address").as_ref().map(|addr| format!("http://{addr}"));
        let scheme = if client_tls.is_empty() { "http" } else { "https" };
        ServerProcess { child: Some(child), url: format!("{scheme}://{addr}"), web_url, data_dir, client_tls }
    }

    /// The process's id.
    fn pid(&self) -> u32 {
        self.child.as_ref().expect("a running server").id()
    }

    /// Kills the process with SIGKILL (no graceful stop, no last checkpoint) and waits for it;
    /// its data directory, to start it again on.
    fn kill(mut self) -> tempfile::TempDir {
        let mut child = self.child.take().expect("a running server");
        child.kill().expect("SIGKILL");
        child.wait().expect("wait");
        std::mem::replace(&mut self.data_dir, tempfile::tempdir().expect("a placeholder"))
    }

    /// Runs the client as a person on the server's machine would: the operator token is
    /// read from the server's data directory.
    fn cli(&self, args: &[&str]) -> Output {
        Command::new(BINARY)
            .arg("--server")
            .arg(&self.url)
            .args(&self.client_tls)
            .env("SYMBIOSE_DATA_DIR", self.data_dir.path().join("data"))
            .env_remove("SYMBIOSE_TOKEN")
            .args(args)
            .output()
            .expect("run the client")
    }

    /// Sends SIGTERM and waits, with a bound, for the process to exit.
    fn terminate(self) -> std::process::ExitStatus {
        self.terminate_keeping_data().0
    }

    /// Sends SIGTERM and waits, with a bound, for the process to exit; its data directory, to
    /// start it again on.
    fn terminate_keeping_data(mut self) -> (std::process::ExitStatus, tempfile::TempDir) {
        let mut child = self.child.take().expect("a running server");
        let status = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().expect("kill");
        assert!(status.success());
        let (sender, receiver) = std::sync::mpsc::sync_channel(1);
        std::thread::spawn(move || {
            let status = child.wait();
            let _ = sender.send(status);
        });
        let status = match receiver.recv_timeout(Duration::from_millis(SERVER_WAIT_MS)) {
            Ok(status) => status.expect("wait"),
            Err(_) => panic!("the server did not stop after SIGTERM"),
        };
        (status, std::mem::replace(&mut self.data_dir, tempfile::tempdir().expect("a placeholder")))
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // A failing test shows what its servers said last.
        if std::thread::panicking()
            && let Ok(log) = std::fs::read_to_string(self.data_dir.path().join("stderr.log"))
        {
            let lines: Vec<&str> = log.lines().collect();
            let tail = lines[lines.len().saturating_sub(LOG_LINES_SHOWN)..].join("\n");
            eprintln!("--- the last lines of the server at {} ---\n{tail}", self.url);
        }
    }
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The word after `prefix` on the first line of `output` that starts with it.
fn first_line_word(output: &Output, prefix: &str) -> Option<String> {
    first_word_after(&stdout(output), prefix)
}

/// The word after `prefix` on the first line of `text` that starts with it.
fn first_word_after(text: &str, prefix: &str) -> Option<String> {
    text.lines()
        .find_map(|line| line.strip_prefix(prefix))
        .and_then(|rest| rest.split_whitespace().next())
        .map(str::to_owned)
}

/// The carrier profile of the walk-throughs: a 12 t truck from Strasbourg, France and Germany.
const CARRIER_PROFILE: &[&str] = &[
    "carrier",
    "register",
    "--depot",
    "Strasbourg",
    "--countries",
    "FR,DE",
    "--radius-km",
    "100",
    "--vehicle",
    "Porteur 12 t:12000:18:tail-lift",
    "--per-km",
    "1.80",
    "--per-tonne",
    "15.00",
    "--minimum",
    "90.00",
    "--pallet-exchange",
];

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_person_checks_health_searches_codes_and_validates_identifiers() {
    let server = ServerProcess::start();

    let health = server.cli(&["health"]);
    assert!(health.status.success(), "{}", stderr(&health));
    assert_eq!(stdout(&health).trim(), "SERVING");

    let show = server.cli(&["waste-codes", "show", "15 01 03"]);
    assert!(show.status.success(), "{}", stderr(&show));
    let text = stdout(&show);
    assert!(text.contains("15 01 03") && text.to_lowercase().contains("wooden packaging"), "{text}");
    assert!(text.contains("hazardous:   no"), "{text}");

    let search = server.cli(&["waste-codes", "search", "packaging", "--chapter", "15", "--limit", "3"]);
    assert!(search.status.success(), "{}", stderr(&search));
    let text = stdout(&search);
    assert!(text.contains("15 01 01"), "{text}");
    assert!(text.contains("(3 of "), "{text}");

    let families = server.cli(&["families"]);
    assert!(stdout(&families).contains("Palettes"), "{}", stdout(&families));

    let catalog = server.cli(&[
        "catalog",
        "search",
        "--near",
        "Karlsruhe",
        "--radius-km",
        "100",
        "--family",
        "pallets",
    ]);
    assert!(catalog.status.success(), "{}", stderr(&catalog));
    assert_eq!(stdout(&catalog).trim(), "(0 listings)");
    let too_far = server.cli(&["catalog", "search", "--near", "Karlsruhe", "--radius-km", "5000"]);
    assert_eq!(too_far.status.code(), Some(2));
    assert!(stderr(&too_far).contains("radius_km"), "{}", stderr(&too_far));

    let valid = server.cli(&["identifier", "validate", "CHE-109.322.551"]);
    assert!(valid.status.success(), "{}", stderr(&valid));
    assert!(stdout(&valid).contains("valid: CH_UID CHE-109.322.551"), "{}", stdout(&valid));

    let invalid = server.cli(&["identifier", "validate", "732829321"]);
    assert_eq!(invalid.status.code(), Some(1));
    assert!(stdout(&invalid).starts_with("not valid:"), "{}", stdout(&invalid));

    let unknown = server.cli(&["waste-codes", "show", "999999"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(stderr(&unknown).contains("NotFound"), "{}", stderr(&unknown));

    let status = server.terminate();
    assert!(status.success(), "a graceful stop exits 0: {status:?}");
}

#[test]
fn a_newcomer_registers_an_organization_adds_a_site_and_gets_its_token() {
    let server = ServerProcess::start();
    let register = server.cli(&[
        "organization",
        "register",
        "--name",
        "Palettes de l'Est SAS",
        "--country",
        "FR",
        "--identifier",
        "732 829 320 00074",
        "--roles",
        "producer,buyer",
    ]);
    assert!(register.status.success(), "{}", stderr(&register));
    let organization = stdout(&register).trim().to_owned();
    assert_eq!(organization.len(), 36, "an id: {organization}");

    let site = server.cli(&[
        "organization",
        "add-site",
        "--organization",
        &organization,
        "--name",
        "Port du Rhin",
        "--street",
        "1 rue du Havre",
        "--postal-code",
        "67100",
        "--city",
        "Strasbourg",
        "--country",
        "FR",
        "--latitude",
        "48.5734",
        "--longitude",
        "7.7521",
    ]);
    assert!(site.status.success(), "{}", stderr(&site));

    let token = server.cli(&["token", "issue", "--organization", &organization, "--roles", "producer"]);
    assert!(token.status.success(), "{}", stderr(&token));
    let token = stdout(&token).trim().to_owned();
    assert_eq!(token.split('.').count(), 3, "a JWT: {token}");

    // The organization's own token reads its own record.
    let show = Command::new(BINARY)
        .args(["--server", &server.url, "--token", &token, "organization", "show", &organization])
        .output()
        .expect("run the client");
    assert!(show.status.success(), "{}", stderr(&show));
    let text = stdout(&show);
    assert!(text.contains("Palettes de l'Est SAS") && text.contains("Port du Rhin"), "{text}");
    assert!(text.contains("roles:       producer, buyer"), "{text}");

    // The producer publishes 40 EUR pallets, grade B, every week, at its Strasbourg site.
    let site = stdout(&site).trim().to_owned();
    assert_eq!(site.len(), 36, "add-site prints the site's id: {site}");
    let as_producer = |args: &[&str]| {
        Command::new(BINARY)
            .args(["--server", &server.url, "--token", &token])
            .args(args)
            .output()
            .expect("run the client")
    };
    let create = as_producer(&[
        "listing",
        "create",
        "--side",
        "offer",
        "--family",
        "pallets",
        "--site",
        &site,
        "--quantity",
        "40",
        "--unit",
        "pallet",
        "--waste-code",
        "15 01 03",
        "--pallet-grade",
        "b",
        "--price",
        "3.50",
        "--every-days",
        "7",
        "--description",
        "EUR/EPAL grade B",
    ]);
    assert!(create.status.success(), "{}", stderr(&create));
    let listing = stdout(&create).trim().to_owned();
    let publish = as_producer(&["listing", "publish", &listing]);
    assert!(publish.status.success(), "{}", stderr(&publish));
    assert!(stdout(&publish).starts_with("published (version "), "{}", stdout(&publish));
    let show = as_producer(&["listing", "show", &listing]);
    let text = stdout(&show);
    assert!(text.contains("state:       published"), "{text}");
    assert!(
        text.contains("quantity:    40 pallet") && text.contains("price:       3.50 EUR per unit"),
        "{text}"
    );
    assert!(text.contains("48.5734, 7.7521 (france)"), "{text}");
    let bad = as_producer(&[
        "listing",
        "create",
        "--side",
        "offer",
        "--family",
        "pallets",
        "--site",
        &site,
        "--quantity",
        "40",
        "--unit",
        "pallet",
        "--waste-code",
        "99 99 99",
    ]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        stderr(&bad).contains("InvalidArgument") && stderr(&bad).contains("terms.waste_code"),
        "{}",
        stderr(&bad)
    );

    // Registering the same identifier again is refused, naming it.
    let again = server.cli(&[
        "organization",
        "register",
        "--name",
        "Copy",
        "--country",
        "FR",
        "--identifier",
        "73282932000074",
        "--roles",
        "buyer",
    ]);
    assert_eq!(again.status.code(), Some(2));
    assert!(
        stderr(&again).contains("FailedPrecondition") && stderr(&again).contains("legal_identifier"),
        "{}",
        stderr(&again)
    );
}

impl ServerProcess {
    /// Registers an organization with a site at `town` (`latitude`, `longitude`) and returns
    /// its token, its site and its id, as the README's walk-through does.
    fn member(
        &self,
        name: &str,
        country: &str,
        identifier: &str,
        roles: &str,
        town: (&str, &str, &str),
    ) -> (String, String, String) {
        let register = self.cli(&[
            "organization",
            "register",
            "--name",
            name,
            "--country",
            country,
            "--identifier",
            identifier,
            "--roles",
            roles,
        ]);
        assert!(register.status.success(), "{}", stderr(&register));
        let organization = stdout(&register).trim().to_owned();
        let (city, latitude, longitude) = town;
        let site = self.cli(&[
            "organization",
            "add-site",
            "--organization",
            &organization,
            "--name",
            city,
            "--street",
            "1 Hafenstrasse",
            "--postal-code",
            "00000",
            "--city",
            city,
            "--country",
            country,
            "--latitude",
            latitude,
            "--longitude",
            longitude,
        ]);
        assert!(site.status.success(), "{}", stderr(&site));
        let site = stdout(&site).trim().to_owned();
        assert_eq!(site.len(), 36, "add-site prints the site's id: {site}");
        let token = self.cli(&["token", "issue", "--organization", &organization]);
        assert!(token.status.success(), "{}", stderr(&token));
        let token = stdout(&token).trim().to_owned();
        assert_eq!(token.split('.').count(), 3, "a JWT: {token}");
        (token, site, organization)
    }

    /// Creates and publishes 40 EUR pallets of grade B (EWC 15 01 03) at `site` with `token`,
    /// at `price` each; the listing's id.
    fn publish_pallets(&self, token: &str, side: &str, site: &str, price: &str) -> String {
        let create = self.as_member(
            token,
            &[
                "listing",
                "create",
                "--side",
                side,
                "--family",
                "pallets",
                "--site",
                site,
                "--quantity",
                "40",
                "--unit",
                "pallet",
                "--waste-code",
                "15 01 03",
                "--pallet-grade",
                "b",
                "--price",
                price,
            ],
        );
        assert!(create.status.success(), "{}", stderr(&create));
        let id = stdout(&create).trim().to_owned();
        assert_eq!(id.len(), 36, "listing create prints the listing's id: {id}");
        let publish = self.as_member(token, &["listing", "publish", &id]);
        assert!(publish.status.success(), "{}", stderr(&publish));
        assert!(stdout(&publish).starts_with("published (version "), "{}", stdout(&publish));
        id
    }

    /// Runs `args` with `token` until a line of its output starts with `prefix` (within a
    /// bound: what a reactor writes comes shortly after the call that caused it); the word after it.
    fn poll(&self, token: &str, args: &[&str], prefix: &str) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let output = self.as_member(token, args);
            assert!(output.status.success(), "{}", stderr(&output));
            if let Some(word) = first_line_word(&output, prefix) {
                return word;
            }
            assert!(std::time::Instant::now() < deadline, "nothing for {args:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Registers the carrier of the walk-throughs, Transports du Rhin SARL, as the operator;
    /// its token and its id.
    fn carrier(&self) -> (String, String) {
        let register = self.cli(&[
            "organization",
            "register",
            "--name",
            "Transports du Rhin SARL",
            "--country",
            "FR",
            "--identifier",
            "552100554",
            "--roles",
            "carrier",
        ]);
        assert!(register.status.success(), "{}", stderr(&register));
        let carrier_id = stdout(&register).trim().to_owned();
        assert_eq!(carrier_id.len(), 36, "register prints the organization's id: {carrier_id}");
        let token = self.cli(&["token", "issue", "--organization", &carrier_id]);
        assert!(token.status.success(), "{}", stderr(&token));
        (stdout(&token).trim().to_owned(), carrier_id)
    }

    /// The carrier's reports of the walk-throughs on `shipment`: 40 pallets picked up (35
    /// handed over, 40 taken back) once settlement holds the buyer's payment (the pickup is
    /// refused until then, and asked again), the border into Germany, 40 received of which 38
    /// accepted and 2 refused (40 handed over, 36 taken back).
    fn carry_pallets(&self, carrier: &str, shipment: &str) {
        let steps: [&[&str]; 3] = [
            &[
                "shipment",
                "pickup",
                shipment,
                "--quantity",
                "40",
                "--unit",
                "pallet",
                "--pallet-grade",
                "b",
                "--handed-over",
                "35",
                "--taken-back",
                "40",
            ],
            &["shipment", "border", shipment, "--country", "DE"],
            &[
                "shipment",
                "deliver",
                shipment,
                "--received",
                "40",
                "--accepted",
                "38",
                "--refused",
                "2",
                "--unit",
                "pallet",
                "--reason",
                "two with broken boards",
                "--pallet-grade",
                "b",
                "--handed-over",
                "40",
                "--taken-back",
                "36",
            ],
        ];
        // What the shipment shows after each report.
        let said =
            ["picked_up", "into germany", "pallets b: 40 handed over, 36 taken  (two with broken boards)"];
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let output = self.as_member(carrier, steps[0]);
            if output.status.success() {
                assert!(stdout(&output).contains(said[0]), "{:?}: {}", steps[0], stdout(&output));
                assert!(
                    stdout(&output).contains("pallets b: 35 handed over, 40 taken"),
                    "{:?}: {}",
                    steps[0],
                    stdout(&output)
                );
                break;
            }
            assert!(
                stderr(&output).contains("not funded yet") && std::time::Instant::now() < deadline,
                "{:?}: {}",
                steps[0],
                stderr(&output)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        for (step, said) in steps[1..].iter().zip(&said[1..]) {
            let output = self.as_member(carrier, step);
            assert!(output.status.success(), "{step:?}: {}", stderr(&output));
            assert!(stdout(&output).contains(said), "{step:?}: {}", stdout(&output));
        }
    }

    /// Runs the client with `token`.
    fn as_member(&self, token: &str, args: &[&str]) -> Output {
        Command::new(BINARY)
            .args(["--server", &self.url, "--token", token])
            .args(&self.client_tls)
            .args(args)
            .output()
            .expect("run the client")
    }
}

/// The README's cross-border walk-through: pallets in Strasbourg, a pallet repairer in Kehl.
#[test]
fn a_cross_border_pallet_deal_through_the_cli() {
    let server = ServerProcess::start();
    let (producer, producer_site, producer_id) = server.member(
        "Palettes de l'Est SAS",
        "FR",
        "732 829 320 00074",
        "producer",
        ("Strasbourg", "48.5734", "7.7521"),
    );
    let (buyer, buyer_site, _) = server.member(
        "Kehler Palettenservice GmbH",
        "DE",
        "DE136695976",
        "buyer",
        ("Kehl", "48.5724", "7.8154"),
    );
    let offer = server.publish_pallets(&producer, "offer", &producer_site, "3.50");
    let request = server.publish_pallets(&buyer, "request", &buyer_site, "4.00");

    let found = server.as_member(&buyer, &["matches", "find", &request]);
    assert!(found.status.success(), "{}", stderr(&found));
    let text = stdout(&found);
    assert!(text.contains(&offer) && text.contains("cross-border: annex-vii"), "{text}");

    // The proposer proposes the pair shortly after the publication: poll, with a bound.
    let proposal = server.poll(&buyer, &["proposal", "list"], "proposal ");
    let seller_accepts = server.as_member(&producer, &["proposal", "accept", &proposal]);
    assert!(seller_accepts.status.success(), "{}", stderr(&seller_accepts));
    let text = stdout(&seller_accepts);
    assert!(
        text.contains(&format!("proposal {proposal}  open"))
            && text.contains(&format!("accepted by: {producer_id}")),
        "{text}"
    );
    assert!(!text.contains("deal "), "no deal on one acceptance: {text}");
    let buyer_accepts = server.as_member(&buyer, &["proposal", "accept", &proposal]);
    assert!(buyer_accepts.status.success(), "{}", stderr(&buyer_accepts));
    let text = stdout(&buyer_accepts);
    assert!(text.contains("concluded") && text.contains("40 pallet at 3.50 EUR = 140.00 EUR"), "{text}");
    let deal = first_line_word(&buyer_accepts, "deal ").expect("a deal id");

    let shown = server.as_member(&producer, &["deal", "show", &deal]);
    assert!(
        stdout(&shown).contains("agreed") && stdout(&shown).contains("documents: annex-vii"),
        "{}",
        stdout(&shown)
    );
    let cancelled = server.as_member(&buyer, &["deal", "cancel", &deal, "--reason", "the truck is not free"]);
    assert!(cancelled.status.success(), "{}", stderr(&cancelled));
    assert!(stdout(&cancelled).contains("cancelled"), "{}", stdout(&cancelled));
    let again = server.as_member(&producer, &["proposal", "accept", &proposal]);
    assert!(again.status.success(), "accepting a concluded proposal changes nothing: {}", stderr(&again));
    let text = stdout(&again);
    assert!(text.contains(&format!("proposal {proposal}  concluded")), "{text}");
    assert!(!text.contains("agreed"), "no deal agreed again: {text}");
}

/// What the shipment walk-through leaves behind: its members' tokens and ids, the listings, the
/// deal and the shipment.
struct Shipped {
    producer: String,
    producer_site: String,
    buyer: String,
    buyer_id: String,
    buyer_site: String,
    carrier: String,
    carrier_id: String,
    offer: String,
    request: String,
    deal: String,
    shipment: String,
}

impl ServerProcess {
    /// The README's walk-through up to the receiver's acceptance: two members and a carrier, the
    /// buyer's deposit, an offer and a request, the proposal both accept, the carrier's quote,
    /// the booking, pickup, border and delivery, and the acceptance that closes the shipment.
    fn ship_pallets_across_the_border(&self) -> Shipped {
        let server = self;
        let (producer, producer_site, _) = server.member(
            "Palettes de l'Est SAS",
            "FR",
            "73282932000074",
            "producer",
            ("Strasbourg", "48.5734", "7.7521"),
        );
        let (buyer, buyer_site, buyer_id) = server.member(
            "Kehler Palettenservice GmbH",
            "DE",
            "DE136695976",
            "buyer",
            ("Kehl", "48.5724", "7.8154"),
        );
        // A carrier with no site of its own: its depot is its address.
        let (carrier, carrier_id) = server.carrier();
        let profile = server.as_member(&carrier, CARRIER_PROFILE);
        assert!(profile.status.success(), "{}", stderr(&profile));
        assert!(stdout(&profile).starts_with("carrier profile registered"), "{}", stdout(&profile));

        let deposit = server.cli(&["money", "deposit", "--organization", &buyer_id, "--amount", "500.00"]);
        assert!(stdout(&deposit).contains("available 500.00 EUR"), "{}", stdout(&deposit));
        let offer = server.publish_pallets(&producer, "offer", &producer_site, "3.50");
        let request = server.publish_pallets(&buyer, "request", &buyer_site, "4.00");
        let proposal = server.poll(&buyer, &["proposal", "list"], "proposal ");
        let seller_accepts = server.as_member(&producer, &["proposal", "accept", &proposal]);
        assert!(
            stdout(&seller_accepts).contains(&format!("proposal {proposal}  open")),
            "{}{}",
            stdout(&seller_accepts),
            stderr(&seller_accepts)
        );
        let accepted = server.as_member(&buyer, &["proposal", "accept", &proposal]);
        let deal = first_line_word(&accepted, "deal ").expect("a deal");

        // By hand: 6.057 km by road, 1 t: 1.80 x 6.057 + 15.00 = 25.90, under the minimum: 90.00 EUR.
        let quote = server.poll(&buyer, &["quote", "list", &deal], "quote ");
        let quotes = server.as_member(&buyer, &["quote", "list", &deal]);
        assert!(
            stdout(&quotes).contains("90.00 EUR") && stdout(&quotes).contains("6.1 km by road"),
            "{}",
            stdout(&quotes)
        );
        let booked = server.as_member(&buyer, &["shipment", "book", &deal, "--quote", &quote]);
        assert!(booked.status.success(), "{}", stderr(&booked));
        let shipment = first_line_word(&booked, "shipment ").expect("a shipment");
        server.carry_pallets(&carrier, &shipment);
        let closed = server.as_member(&buyer, &["shipment", "accept", &shipment]);
        let text = stdout(&closed);
        assert!(
            text.contains("closed")
                && text.contains("into germany")
                && text.contains("two with broken boards"),
            "{text}"
        );
        Shipped {
            producer,
            producer_site,
            buyer,
            buyer_id,
            buyer_site,
            carrier,
            carrier_id,
            offer,
            request,
            deal,
            shipment,
        }
    }
}

/// The README's walk-through goes on: a carrier quotes, the buyer books, the carrier reports
/// pickup, border and delivery, the receiver accepts; pallet balances and Annex VII.
#[test]
fn a_cross_border_shipment_through_the_cli() {
    let server = ServerProcess::start();
    let Shipped { producer, buyer, carrier_id, deal, shipment, .. } = server.ship_pallets_across_the_border();
    // The escrow paid the producer for the 38 pallets accepted, and the producer invoiced them.
    let transfers = server.as_member(&buyer, &["money", "transfers", &deal]);
    let text = stdout(&transfers);
    assert!(text.contains("partly_posted") && text.contains("settlement   133.00 EUR"), "{text}");
    let invoices = server.as_member(&producer, &["invoice", "list"]);
    assert!(
        stdout(&invoices).contains("-000001") && stdout(&invoices).contains("intra_eu_exempt"),
        "{}",
        stdout(&invoices)
    );
    let balances = server.as_member(&producer, &["pallets", "balances"]);
    assert!(stdout(&balances).contains(&format!("{carrier_id}  grade b  +5")), "{}", stdout(&balances));
    let paid = server.as_member(
        &buyer,
        &[
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
        ],
    );
    assert!(stdout(&paid).contains("+0"), "{}", stdout(&paid));
    let pdf_dir = tempfile::tempdir().expect("a directory for the PDF");
    let pdf = pdf_dir.path().join("annex-vii.pdf");
    let pdf_arg = pdf.to_str().expect("a UTF-8 path");
    let annex = server.as_member(&producer, &["shipment", "annex-vii", &shipment, "--pdf", pdf_arg]);
    assert!(annex.status.success(), "{}", stderr(&annex));
    let text = stdout(&annex);
    assert!(
        text.contains("Transports du Rhin SARL") && text.contains("B3050") && text.contains("15 01 03"),
        "{text}"
    );
    // Delivered: boxes 13 and 14 are filled from the delivery.
    assert!(text.contains("Shipment received at recovery facility [X]"), "{text}");
    let written = std::fs::read(&pdf).expect("the PDF written");
    assert!(written.starts_with(b"%PDF-") && written.ends_with(b"%%EOF"), "a whole PDF");
    assert!(stderr(&annex).contains(&format!("PDF written to {pdf_arg} ({} bytes)", written.len())));
}

#[test]
fn the_client_says_plainly_when_no_server_answers() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let output = Command::new(BINARY)
        .args(["--server", &format!("http://127.0.0.1:{port}"), "health"])
        .output()
        .expect("run the client");
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("cannot reach"), "{}", stderr(&output));
}

#[test]
fn a_bad_setting_stops_the_server_at_start_naming_the_key() {
    let output = Command::new(BINARY)
        .env("SYMBIOSE_REQUEST_TIMEOUT_MS", "soon")
        .env("SYMBIOSE_LISTEN_ADDR", "127.0.0.1:0")
        .output()
        .expect("run the server");
    assert!(!output.status.success());
    assert!(stderr(&output).contains("SYMBIOSE_REQUEST_TIMEOUT_MS"), "{}", stderr(&output));
}
