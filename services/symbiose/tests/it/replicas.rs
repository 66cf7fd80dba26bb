//! Every service as two replicas over a shared PostgreSQL store, as the chart runs them with an
//! external store: a real nats-server, a database per service shared by its two replicas, and
//! the cross-border exchange with its calls spread over both replicas of each service. In the
//! middle of it, the replica of each service that holds its lease (the relay, the imports, the
//! reactors) is killed with SIGKILL: the other takes the lease over and the flow completes,
//! with one deal, the escrow held once, one payment, one invoice, a passport written at one
//! passports replica and its page served by the other, and every event of every context on NATS
//! exactly once. Skipped with a message where PostgreSQL does not answer, failed
//! under `CI`.

use std::cell::Cell;
use std::process::Output;
use std::time::{Duration, Instant};

use symbiose_feed::testing::NatsServer;

use super::alone::{
    Databases, LISTINGS, LOGISTICS, MATCHING, PALLETS_DECLARATION, PASSPORTS, POSTGRES_SERVER, REACTION_WAIT,
    SETTLEMENT, available, free_port_below_ephemeral, http_get, query, succeeded,
};
use super::{
    CARRIER_PROFILE, ServerProcess, data_dir_with_a_new_key, first_line_word, first_word_after, stderr,
    stdout,
};

/// The lease TTL the replicas run with: a takeover within about this long after a SIGKILL.
const LEASE_TTL_MS: u64 = 2_000;

/// The two replicas of one service, called in turn.
struct Replicas {
    binary: &'static str,
    context: &'static str,
    processes: Vec<ServerProcess>,
    next: Cell<usize>,
}

impl Replicas {
    /// The next replica to call.
    fn any(&self) -> &ServerProcess {
        let index = self.next.get() % self.processes.len();
        self.next.set(index + 1);
        &self.processes[index]
    }

    /// Runs `args` with `token` on the replicas in turn until one succeeds and its output
    /// satisfies `done`, within [`REACTION_WAIT`]; that output.
    fn until(&self, token: &str, args: &[&str], done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + REACTION_WAIT;
        loop {
            let output = self.any().as_member(token, args);
            if output.status.success() && done(&stdout(&output)) {
                return stdout(&output);
            }
            assert!(
                Instant::now() < deadline,
                "{} {args:?} never gave the expected answer: {}{}",
                self.binary,
                stdout(&output),
                stderr(&output)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Runs `args` with `token` on the next replica; it must succeed.
    fn call(&self, token: &str, args: &[&str]) -> Output {
        succeeded(self.any().as_member(token, args), &format!("{} {args:?}", self.binary))
    }

    /// The database both replicas share.
    fn database_url(&self, databases: &Databases) -> String {
        format!("{POSTGRES_SERVER}/{}", databases.name(self.binary))
    }
}

/// The holder of `<context>.jobs` in `url`'s database, its generation, and the time from
/// `since` (the database's clock, in seconds since the epoch) to when it took it, if it did after.
fn lease(url: &str, context: &str, since: f64) -> Option<(String, i64, f64)> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let statement = format!(
        "SELECT holder, generation, extract(epoch FROM taken_at)::float8 - {since} FROM symbiose_leases \
         WHERE name = '{context}.jobs' AND expires_at > now()"
    );
    let rows = runtime.block_on(query(url, &[statement])).ok()?;
    rows[0].first().map(|row| (row.get(0), row.get(1), row.get(2)))
}

/// The database's clock, in seconds since the epoch.
fn database_now(url: &str) -> f64 {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let rows = runtime
        .block_on(query(url, &["SELECT extract(epoch FROM now())::float8".to_owned()]))
        .expect("the database's clock");
    rows[0][0].get(0)
}

/// Waits until the replica of `replicas` with process id `pid` holds its service's lease.
fn wait_for_holder(replicas: &Replicas, databases: &Databases, pid: u32) {
    let url = replicas.database_url(databases);
    let deadline = Instant::now() + REACTION_WAIT;
    loop {
        if let Some((holder, _, _)) = lease(&url, replicas.context, 0.0)
            && holds(&holder, pid)
        {
            return;
        }
        assert!(Instant::now() < deadline, "{} never took its lease", replicas.binary);
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether the lease holder's name (`<host>-<pid>-<random>`) is the process `pid`.
fn holds(holder: &str, pid: u32) -> bool {
    holder.rsplit('-').nth(1) == Some(pid.to_string().as_str())
}

/// The ids of the events of `context` in `url`'s database (its own, not those it imported).
fn event_ids(url: &str, context: &str) -> Vec<String> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let statement = format!(
        "SELECT event_id::text FROM symbiose_events WHERE event_type LIKE 'symbiose.{context}.v1.%' \
         ORDER BY position"
    );
    let rows = runtime.block_on(query(url, &[statement])).expect("the events");
    rows[0].iter().map(|row| row.get(0)).collect()
}

/// The `Nats-Msg-Id` of every message of `context`'s JetStream stream, in stream order.
fn published_ids(nats_url: &str, context: &str) -> Vec<String> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    runtime.block_on(async {
        let client = async_nats::connect(nats_url).await.expect("connect to NATS");
        let jetstream = async_nats::jetstream::new(client);
        let mut stream = jetstream
            .get_stream(symbiose_feed::route::stream_name(context))
            .await
            .expect("the context's stream");
        let last = stream.info().await.expect("the stream's state").state.last_sequence;
        let mut ids = Vec::new();
        for sequence in 1..=last {
            let message = stream.get_raw_message(sequence).await.expect("a message");
            let id = message
                .headers
                .get(symbiose_feed::cloudevents::NATS_MSG_ID)
                .map(|value| value.as_str().to_owned())
                .expect("a message id");
            ids.push(id);
        }
        ids
    })
}

/// NATS, a database per service, the platform's key and operator token, and the addresses
/// other services call: matching and logistics call the listings service, logistics calls
/// settlement, each at one address, as at a Kubernetes Service. Here that address is one
/// replica's, the second started: the first takes the service's lease.
struct Platform {
    databases: Databases,
    nats: NatsServer,
    signing_key: Vec<u8>,
    operator: String,
    listings_addr: String,
    settlement_addr: String,
}

impl Platform {
    /// The platform, or `None` where PostgreSQL or nats-server is missing (outside CI).
    fn start_or_skip(test: &str) -> Option<(Platform, ServerProcess)> {
        let databases = Databases::create_or_skip(test)?;
        let nats = NatsServer::start_or_skip(test)?;
        let first_data = data_dir_with_a_new_key();
        let signing_key = std::fs::read(first_data.path().join("data/keys/signing.key")).expect("the key");
        let mut platform = Platform {
            databases,
            nats,
            signing_key,
            operator: String::new(),
            listings_addr: free_port_below_ephemeral(),
            settlement_addr: free_port_below_ephemeral(),
        };
        let first = platform.start(LISTINGS, first_data, Some(&free_port_below_ephemeral()));
        platform.operator = std::fs::read_to_string(first.data_dir.path().join("data/operator.token"))
            .expect("the operator token")
            .trim()
            .to_owned();
        Some((platform, first))
    }

    /// Starts `binary` on `data_dir` (given the platform's key and operator token), on its
    /// service's database, at `addr` if given.
    fn start(&self, binary: &'static str, data_dir: tempfile::TempDir, addr: Option<&str>) -> ServerProcess {
        let keys = data_dir.path().join("data/keys");
        std::fs::create_dir_all(&keys).expect("the keys directory");
        std::fs::write(keys.join("signing.key"), &self.signing_key).expect("the signing key");
        if !self.operator.is_empty() {
            std::fs::write(data_dir.path().join("data/operator.token"), &self.operator)
                .expect("the operator token");
        }
        let url = format!("{POSTGRES_SERVER}/{}", self.databases.name(binary));
        let (listings_url, settlement_url) =
            (format!("http://{}", self.listings_addr), format!("http://{}", self.settlement_addr));
        let ttl = LEASE_TTL_MS.to_string();
        let nats_url = self.nats.url();
        let mut env = vec![
            ("SYMBIOSE_NATS_URL", nats_url.as_str()),
            ("SYMBIOSE_LISTINGS_URL", listings_url.as_str()),
            ("SYMBIOSE_SETTLEMENT_URL", settlement_url.as_str()),
            ("SYMBIOSE_STORE", "postgres"),
            ("SYMBIOSE_POSTGRES_URL", url.as_str()),
            ("SYMBIOSE_LEASE_TTL_MS", ttl.as_str()),
        ];
        if let Some(addr) = addr {
            env.push(("SYMBIOSE_LISTEN_ADDR", addr));
        }
        ServerProcess::spawn(binary, data_dir, &env)
    }

    /// Starts a new replica of `binary`, at `addr` or at a free port of its own (below the
    /// ephemeral range, so that it may be started again there).
    fn start_new(&self, binary: &'static str, addr: Option<&str>) -> ServerProcess {
        let addr = addr.map_or_else(free_port_below_ephemeral, str::to_owned);
        self.start(binary, tempfile::tempdir().expect("a data directory"), Some(&addr))
    }

    /// Two replicas of every service, the first of each holding its lease.
    fn replicas(&self, listings_holder: ServerProcess) -> [Replicas; 5] {
        let pair =
            |binary: &'static str, context: &'static str, first: ServerProcess, second: ServerProcess| {
                Replicas { binary, context, processes: vec![first, second], next: Cell::new(0) }
            };
        let listings_pid = listings_holder.pid();
        let listings =
            pair(LISTINGS, "listings", listings_holder, self.start_new(LISTINGS, Some(&self.listings_addr)));
        wait_for_holder(&listings, &self.databases, listings_pid);
        let settlement_holder = self.start_new(SETTLEMENT, None);
        let settlement_pid = settlement_holder.pid();
        let settlement = pair(
            SETTLEMENT,
            "settlement",
            settlement_holder,
            self.start_new(SETTLEMENT, Some(&self.settlement_addr)),
        );
        wait_for_holder(&settlement, &self.databases, settlement_pid);
        let matching_holder = self.start_new(MATCHING, None);
        let matching_pid = matching_holder.pid();
        let matching = pair(MATCHING, "matching", matching_holder, self.start_new(MATCHING, None));
        wait_for_holder(&matching, &self.databases, matching_pid);
        let logistics_holder = self.start_new(LOGISTICS, None);
        let logistics_pid = logistics_holder.pid();
        let logistics = pair(LOGISTICS, "logistics", logistics_holder, self.start_new(LOGISTICS, None));
        wait_for_holder(&logistics, &self.databases, logistics_pid);
        let passports_holder = self.start_new(PASSPORTS, None);
        let passports_pid = passports_holder.pid();
        let passports = pair(PASSPORTS, "passports", passports_holder, self.start_new(PASSPORTS, None));
        wait_for_holder(&passports, &self.databases, passports_pid);
        [listings, matching, logistics, settlement, passports]
    }
}

#[test]
fn two_replicas_of_every_service_carry_a_deal_through_the_loss_of_the_lease_holders() {
    let test = "two_replicas_of_every_service_carry_a_deal_through_the_loss_of_the_lease_holders";
    let Some((platform, listings_holder)) = Platform::start_or_skip(test) else { return };
    let started = Instant::now();
    let nats_url = platform.nats.url();
    let databases = &platform.databases;
    let operator = platform.operator.clone();
    let [listings, matching, logistics, settlement, passports] = platform.replicas(listings_holder);

    let (producer, producer_site, producer_id) = listings.any().member(
        "Palettes de l'Est SAS",
        "FR",
        "73282932000074",
        "producer",
        ("Strasbourg", "48.5734", "7.7521"),
    );
    let (buyer, buyer_site, buyer_id) = listings.any().member(
        "Kehler Palettenservice GmbH",
        "DE",
        "DE136695976",
        "buyer",
        ("Kehl", "48.5724", "7.8154"),
    );
    let (carrier, carrier_id) = listings.any().carrier();
    let registered = logistics.until(&carrier, CARRIER_PROFILE, |_| true);
    assert!(registered.starts_with("carrier profile registered"), "{registered}");
    let deposit = ["money", "deposit", "--organization", &buyer_id, "--amount", "500.00"];
    let deposited = settlement.until(&operator, &deposit, |_| true);
    assert!(deposited.contains("available 500.00 EUR"), "{deposited}");
    read_your_writes_across_replicas(&settlement, &operator, &buyer_id);
    let offer = listings.any().publish_pallets(&producer, "offer", &producer_site, "3.50");
    listings.any().publish_pallets(&buyer, "request", &buyer_site, "4.00");
    let proposals = matching.until(&buyer, &["proposal", "list"], |text| text.contains("proposal "));
    let proposal = first_word_after(&proposals, "proposal ").expect("a proposal");
    matching.call(&producer, &["proposal", "accept", &proposal]);
    // The producer's passport of its offer, written at one passports replica: its page is
    // served by both, each following the shared log.
    let origin = passport_published(&passports, &producer, &["--listing", &offer]);
    for replica in &passports.processes {
        let web_url = replica.web_url.as_deref().expect("a passports replica serves its web port");
        let page = web_page(web_url, &origin, "fr", "Histoire du lot");
        assert!(page.contains("Palettes EUR reconditionnées") && page.contains("Strasbourg"), "{page}");
    }

    // SIGKILL the replica of each service that holds its lease, in the middle of the deal:
    // (service, context, its database, the database's clock at the kill, the replica killed).
    let mut killed = Vec::new();
    for replicas in [&listings, &matching, &logistics, &settlement, &passports] {
        let url = replicas.database_url(databases);
        let (holder, generation, _) = lease(&url, replicas.context, 0.0).expect("a lease holder");
        assert_eq!(generation, 1, "{}: one holder since the start", replicas.binary);
        let index = replicas
            .processes
            .iter()
            .position(|process| holds(&holder, process.pid()))
            .unwrap_or_else(|| panic!("{}: the holder {holder} is one of the replicas", replicas.binary));
        let killed_at = kill(&replicas.processes[index], &url);
        killed.push((
            replicas.binary,
            replicas.context,
            url,
            killed_at,
            index,
            replicas.processes[1 - index].pid(),
        ));
    }
    // The calls go on to the replicas left.
    let index_of = |binary: &str| {
        killed.iter().find(|killed| killed.0 == binary).map(|killed| killed.4).expect("killed")
    };
    let listings = survivor(listings, index_of(LISTINGS));
    let matching = survivor(matching, index_of(MATCHING));
    let logistics = survivor(logistics, index_of(LOGISTICS));
    let settlement = survivor(settlement, index_of(SETTLEMENT));
    let passports = survivor(passports, index_of(PASSPORTS));

    matching.call(&buyer, &["proposal", "accept", &proposal]);
    let deals = matching.until(&buyer, &["deal", "list"], |text| text.contains("agreed"));
    let deal = first_word_after(&deals, "deal ").expect("a deal");
    assert_eq!(deals.matches("deal ").count(), 1, "one deal: {deals}");
    let reserved =
        listings.until(&producer, &["listing", "show", &offer], |text| available(text) == Some(0.0));
    assert!(reserved.contains("published"), "{reserved}");
    let quotes = logistics.until(&buyer, &["quote", "list", &deal], |text| text.contains("quote "));
    let quote = first_word_after(&quotes, "quote ").expect("a quote");
    let held = settlement.until(&buyer, &["money", "balances"], |text| text.contains("available 357.30 EUR"));
    assert!(
        held.contains("held 142.80 EUR"),
        "the escrow of 140.00 + 2% fee, held once (500.00 and ten deposits of 0.01 before): {held}"
    );
    let booked = logistics.call(&buyer, &["shipment", "book", &deal, "--quote", &quote]);
    let shipment = first_line_word(&booked, "shipment ").expect("a shipment");
    logistics.any().carry_pallets(&carrier, &shipment);
    let closed = logistics.call(&buyer, &["shipment", "accept", &shipment]);
    assert!(stdout(&closed).contains("closed"), "{}", stdout(&closed));
    let transfers = settlement
        .until(&buyer, &["money", "transfers", &deal], |text| text.contains("settlement   133.00 EUR"));
    assert_eq!(transfers.matches("settlement   133.00 EUR").count(), 1, "paid once: {transfers}");
    let invoices = settlement.until(&producer, &["invoice", "list"], |text| text.contains("-000001"));
    assert!(!invoices.contains("-000002"), "one invoice: {invoices}");
    let offered =
        listings.until(&producer, &["listing", "show", &offer], |text| available(text) == Some(2.0));
    assert!(offered.contains("published"), "{offered}");
    let balances = logistics.until(&producer, &["pallets", "balances"], |text| text.contains(&carrier_id));
    assert!(balances.contains(&format!("{carrier_id}  grade b  +5")), "{balances}");
    // The producer's contact, sealed by one listings replica's vault, read by logistics through
    // the other: the keys are in the shared database.
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
    listings.call(&producer, &contact);
    let annex = logistics.until(&producer, &["shipment", "annex-vii", &shipment], |text| {
        text.contains("Contact person: Paul Lambert")
    });
    assert!(annex.contains("Tel.: +33 3 88 11 22 33"), "{annex}");
    // The receiver's passport of the delivered lot, at the passports replica left, which took
    // over the imports: the lot's story runs from Strasbourg across the border to Kehl.
    let product = passport_published(&passports, &buyer, &["--shipment", &shipment]);
    let web_url = passports.any().web_url.clone().expect("the passports replica serves its web port");
    let page = web_page(&web_url, &product, "de", "Geschichte der Partie");
    for text in ["Strasbourg", "Kehl", "Grenzübertritt"] {
        assert!(page.contains(text), "the German page shows {text:?}: {page}");
    }

    // Each lease moved to the replica left, after the holder's deadline.
    for (binary, context, url, killed_at, _, pid) in &killed {
        let (holder, generation, after) = lease(url, context, *killed_at).expect("a lease holder");
        assert!(holds(&holder, *pid), "{binary}: the replica left holds the lease: {holder}");
        assert_eq!(generation, 2, "{binary}: taken over once");
        assert!(after > 0.0, "{binary}: taken after the kill");
        println!(
            "{test}: {context} took over its lease {after:.2} s after the SIGKILL (TTL {LEASE_TTL_MS} ms)"
        );
    }
    // Every event of every context on NATS, each once, in the order of its log.
    for (binary, context, url, _, _, _) in &killed {
        let stored = event_ids(url, context);
        assert!(!stored.is_empty(), "{binary} wrote events");
        let deadline = Instant::now() + REACTION_WAIT;
        loop {
            let published = published_ids(&nats_url, context);
            if published == stored {
                break;
            }
            let mut unique = published.clone();
            unique.sort();
            unique.dedup();
            assert_eq!(unique.len(), published.len(), "{binary}: an event published twice");
            assert!(
                Instant::now() < deadline,
                "{binary}: {} events stored, {} published",
                stored.len(),
                published.len()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    println!("{test}: the replicated flow took {:.1} s", started.elapsed().as_secs_f64());
}

/// A passport of `subject` (`--listing <id>` or `--shipment <id>`) created and published by
/// `token` at the passports replicas (asked again while the subject has not reached them); its id.
fn passport_published(passports: &Replicas, token: &str, subject: &[&str]) -> String {
    let mut create = vec!["passport", "create"];
    create.extend_from_slice(subject);
    create.extend_from_slice(&PALLETS_DECLARATION);
    let created = passports.until(token, &create, |text| text.starts_with("passport "));
    let passport = first_word_after(&created, "passport ").expect("a passport");
    let published = passports.until(token, &["passport", "publish", &passport], |_| true);
    assert!(published.contains("(published)"), "{published}");
    passport
}

/// The page of `passport` in `language` at the web port `web_url`, once it shows `heading`,
/// within [`REACTION_WAIT`].
fn web_page(web_url: &str, passport: &str, language: &str, heading: &str) -> String {
    let deadline = Instant::now() + REACTION_WAIT;
    loop {
        let (status, page) = http_get(web_url, &format!("/p/{passport}"), language);
        if status == 200 && page.contains(heading) {
            return page;
        }
        assert!(Instant::now() < deadline, "{web_url}/p/{passport} answered {status}: {page}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Kills `process` with SIGKILL; the clock of the database at `url` just after.
fn kill(process: &ServerProcess, url: &str) -> f64 {
    let status = std::process::Command::new("kill")
        .args(["-KILL", &process.pid().to_string()])
        .status()
        .expect("kill");
    assert!(status.success(), "SIGKILL");
    database_now(url)
}

/// `replicas` without the replica `index`, killed.
fn survivor(mut replicas: Replicas, index: usize) -> Replicas {
    drop(replicas.processes.remove(index));
    replicas
}

/// Runs the client with `args` and `token` at one of `urls` (from the `turn`th on) as a client
/// library with retries would: a replica that does not answer (stopping, or not started yet)
/// is left for the next, with the same arguments (and so the same request id), up to 50 times.
/// The output, and how many retries it took; or the first answer that is not a retry's case.
fn call_with_retries(
    urls: &[String],
    token: &str,
    args: &[&str],
    turn: usize,
) -> Result<(String, u32), String> {
    for attempt in 0..50_usize {
        let url = &urls[(turn + attempt) % urls.len()];
        let output = std::process::Command::new(super::BINARY)
            .args(["--server", url, "--token", token])
            .args(args)
            .output()
            .expect("run the client");
        if output.status.success() {
            return Ok((stdout(&output), attempt as u32));
        }
        let said = stderr(&output);
        if !(said.contains("cannot reach") || said.contains("Unavailable")) {
            return Err(format!("{url} {args:?}: {said}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!("{args:?}: no replica answered in 50 attempts"))
}

/// Every replica of every service stopped with SIGTERM and started again, one after the other,
/// while clients create listings and record deposits (each with a request id) and read from
/// matching and logistics, spread over the replicas: no call fails (the client tries the other
/// replica when one does not answer, as a client library does), and every acknowledged write is
/// there once at the end.
#[test]
fn a_rolling_restart_of_every_service_under_load_loses_no_call_and_no_write() {
    let test = "a_rolling_restart_of_every_service_under_load_loses_no_call_and_no_write";
    let Some((platform, listings_holder)) = Platform::start_or_skip(test) else { return };
    let mut services = platform.replicas(listings_holder);
    let [listings, _, _, settlement, _] = &services;
    let (producer, producer_site, producer_id) = listings.any().member(
        "Palettes de l'Est SAS",
        "FR",
        "73282932000074",
        "producer",
        ("Strasbourg", "48.5734", "7.7521"),
    );
    let urls = |replicas: &Replicas| {
        replicas.processes.iter().map(|process| process.url.clone()).collect::<Vec<_>>()
    };
    let (listings_urls, settlement_urls) = (urls(listings), urls(settlement));
    let (matching_urls, logistics_urls) = (urls(&services[1]), urls(&services[2]));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // One client creating listings and reading matching; one recording deposits and reading logistics.
    let listings_load = {
        let (stop, producer, site) = (stop.clone(), producer.clone(), producer_site.clone());
        std::thread::spawn(move || {
            let (mut created, mut retries, mut failures) = (Vec::new(), 0_u32, Vec::new());
            let mut turn = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let request_id = format!("rolling-{turn}");
                let create = [
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
                    "--request-id",
                    &request_id,
                ];
                match call_with_retries(&listings_urls, &producer, &create, turn) {
                    Ok((id, tried)) => {
                        created.push(id.trim().to_owned());
                        retries += tried;
                    }
                    Err(failure) => failures.push(failure),
                }
                match call_with_retries(&matching_urls, &producer, &["proposal", "list"], turn) {
                    Ok((_, tried)) => retries += tried,
                    Err(failure) => failures.push(failure),
                }
                turn += 1;
            }
            (created, retries, failures)
        })
    };
    let money_load = {
        let (stop, operator, organization) = (stop.clone(), platform.operator.clone(), producer_id.clone());
        let producer = producer.clone();
        std::thread::spawn(move || {
            let (mut deposited, mut retries, mut failures) = (0_u32, 0_u32, Vec::new());
            let mut turn = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let request_id = format!("deposit-{turn}");
                let deposit = [
                    "money",
                    "deposit",
                    "--organization",
                    &organization,
                    "--amount",
                    "1.00",
                    "--request-id",
                    &request_id,
                ];
                match call_with_retries(&settlement_urls, &operator, &deposit, turn) {
                    Ok((_, tried)) => {
                        deposited += 1;
                        retries += tried;
                    }
                    Err(failure) => failures.push(failure),
                }
                match call_with_retries(&logistics_urls, &producer, &["pallets", "balances"], turn) {
                    Ok((_, tried)) => retries += tried,
                    Err(failure) => failures.push(failure),
                }
                turn += 1;
            }
            (deposited, retries, failures)
        })
    };
    // The rolling restart: each replica of each service stopped with SIGTERM and started again
    // on its data directory and address, once the one before serves again.
    std::thread::sleep(Duration::from_secs(1));
    let restarting = Instant::now();
    for replicas in &mut services {
        for index in 0..replicas.processes.len() {
            let process = replicas.processes.remove(index);
            let addr = process.url.trim_start_matches("http://").to_owned();
            let (status, data_dir) = process.terminate_keeping_data();
            assert!(status.success(), "{} stopped well on SIGTERM: {status}", replicas.binary);
            let again = platform.start(replicas.binary, data_dir, Some(&addr));
            replicas.processes.insert(index, again);
        }
    }
    let restart_took = restarting.elapsed();
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let (created, listing_retries, listing_failures) = listings_load.join().expect("the listings client");
    let (deposited, money_retries, money_failures) = money_load.join().expect("the money client");
    assert!(
        listing_failures.is_empty() && money_failures.is_empty(),
        "failed calls: {listing_failures:?} {money_failures:?}"
    );
    assert!(!created.is_empty() && deposited > 0, "the clients wrote");

    // Every listing acknowledged is in the log once; every deposit acknowledged counted once.
    let [listings, _, _, settlement, _] = &services;
    let url = listings.database_url(&platform.databases);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let rows = runtime
        .block_on(query(
            &url,
            &["SELECT count(*) FROM symbiose_events WHERE event_type = 'symbiose.listings.v1.ListingCreated'".to_owned()],
        ))
        .expect("count the listings");
    let stored: i64 = rows[0][0].get(0);
    let mut distinct = created.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), created.len(), "each request created its own listing");
    assert_eq!(stored, created.len() as i64, "every listing acknowledged is stored once, and no other");
    let balance = settlement.until(&producer, &["money", "balances"], |text| text.contains(" EUR"));
    assert!(
        balance.contains(&format!("available {deposited}.00 EUR")),
        "{deposited} deposits of 1.00 acknowledged: {balance}"
    );
    let shown = listings.until(&producer, &["listing", "show", created.last().expect("one")], |_| true);
    assert!(shown.contains("draft"), "{shown}");
    println!(
        "{test}: 10 replicas restarted in {:.1} s under load: {} listings created and {deposited} deposits, \
         0 failed calls, {} calls retried on the other replica",
        restart_took.as_secs_f64(),
        created.len(),
        listing_retries + money_retries
    );
}

/// Read-your-writes across replicas: a deposit recorded at one replica of settlement, then the
/// balance read at the other with the deposit's position as `min_position`, at once and without
/// retrying, shows it; ten times, alternating. Deposits of 0.01 EUR each, so the buyer's
/// balance ends 0.10 EUR higher (recorded again with the same request id: no more).
fn read_your_writes_across_replicas(settlement: &Replicas, operator: &str, organization: &str) {
    use symbiose_proto::common::v1::Money;
    use symbiose_proto::settlement::v1 as pb;
    use symbiose_proto::settlement::v1::settlement_service_client::SettlementServiceClient;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let urls: Vec<String> = settlement.processes.iter().map(|process| process.url.clone()).collect();
    fn authorized<T>(token: &str, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        let value = format!("Bearer {token}").parse().expect("a header value");
        request.metadata_mut().insert("authorization", value);
        request
    }
    runtime.block_on(async {
        let mut clients = Vec::new();
        for url in &urls {
            clients.push(SettlementServiceClient::connect(url.clone()).await.expect("connect to settlement"));
        }
        let available = |response: pb::GetBalancesResponse| {
            response
                .balances
                .iter()
                .find(|balance| balance.currency_code == "EUR")
                .map(|balance| balance.available_minor)
        };
        let before = clients[1]
            .get_balances(authorized(
                operator,
                pb::GetBalancesRequest { organization_id: organization.to_owned(), min_position: 0 },
            ))
            .await
            .expect("the balance")
            .into_inner();
        let before = available(before).expect("an EUR balance");
        for round in 0..10_usize {
            let (writer, reader) = (round % 2, 1 - round % 2);
            for _ in 0..2 {
                // The second time, the same request id: recorded once.
                let deposit = pb::RecordDepositRequest {
                    request_id: format!("read-your-writes-{round}"),
                    organization_id: organization.to_owned(),
                    amount: Some(Money { amount_minor: 1, currency_code: "EUR".to_owned() }),
                };
                let written = clients[writer]
                    .record_deposit(authorized(operator, deposit))
                    .await
                    .expect("a deposit")
                    .into_inner();
                let read = clients[reader]
                    .get_balances(authorized(
                        operator,
                        pb::GetBalancesRequest {
                            organization_id: organization.to_owned(),
                            min_position: written.position,
                        },
                    ))
                    .await
                    .expect("the balance at the other replica")
                    .into_inner();
                assert_eq!(
                    available(read),
                    Some(before + round as i64 + 1),
                    "round {round}: the other replica reflects the deposit at position {}",
                    written.position
                );
            }
        }
    });
}
