//! The client as a person sets it up: named profiles instead of exported tokens, the order in
//! which a token is chosen, `--output json` for scripts, contacts set and erased, and a clear
//! message when an address serves another service.

use std::path::Path;
use std::process::{Command, Output};

use super::{BINARY, ServerProcess, stderr, stdout};

/// The client with its profiles in `config_dir` and the operator token of `data_dir` (if it
/// holds one), and nothing from the caller's environment.
fn client(config_dir: &Path, data_dir: &Path, args: &[&str]) -> Output {
    Command::new(BINARY)
        .env("SYMBIOSE_CONFIG_DIR", config_dir)
        .env("SYMBIOSE_DATA_DIR", data_dir)
        .env_remove("SYMBIOSE_TOKEN")
        .env_remove("SYMBIOSE_SERVER")
        .env_remove("SYMBIOSE_PROFILE")
        .args(args)
        .output()
        .expect("run the client")
}

/// Registers an organization (with a site, as the walk-through does) and issues its token:
/// (id, token).
fn organization_with_token(
    server: &ServerProcess,
    name: &str,
    country: &str,
    identifier: &str,
) -> (String, String) {
    let (token, _site, id) =
        server.member(name, country, identifier, "producer,buyer", ("Kehl", "48.5724", "7.8154"));
    (id, token)
}

fn json(output: &Output) -> serde_json::Value {
    assert!(output.status.success(), "{}", stderr(output));
    serde_json::from_str(&stdout(output)).unwrap_or_else(|error| panic!("JSON: {error}: {}", stdout(output)))
}

#[test]
fn a_saved_profile_replaces_the_exported_token_and_a_flag_still_comes_first() {
    let server = ServerProcess::start();
    let (kehl, kehl_token) =
        organization_with_token(&server, "Kehler Palettenservice GmbH", "DE", "DE136695976");
    let config = tempfile::tempdir().expect("a configuration directory");
    let config_dir = config.path().join("symbiose");
    let no_data = config.path().join("no-data");
    let operator_data = server.data_dir.path().join("data");

    let login = client(
        &config_dir,
        &no_data,
        &["login", "--as", "kehl", "--token", &kehl_token, "--server", &server.url],
    );
    assert!(login.status.success(), "{}", stderr(&login));
    assert!(stdout(&login).contains("saved profile kehl"), "{}", stdout(&login));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let file = std::fs::metadata(config_dir.join("profiles.toml")).expect("the profiles file");
        assert_eq!(file.permissions().mode() & 0o777, 0o600, "readable by its owner only");
    }

    // The profiles are listed by name and server, never with their token.
    for listing in [&["profiles"][..], &["login", "--list"][..]] {
        let listed = client(&config_dir, &no_data, listing);
        assert!(listed.status.success(), "{}", stderr(&listed));
        let text = stdout(&listed);
        assert!(text.contains("kehl") && text.contains(&server.url), "{text}");
        assert!(!text.contains(&kehl_token), "a token printed: {text}");
    }

    // The profile's token and server, with no token anywhere else.
    let shown = client(&config_dir, &no_data, &["--as", "kehl", "organization", "show", &kehl]);
    assert!(shown.status.success(), "{}", stderr(&shown));
    assert!(stdout(&shown).contains("Kehler Palettenservice GmbH"), "{}", stdout(&shown));

    // The profile comes before the operator token of the data directory: an organization
    // cannot register another.
    let register = [
        "organization",
        "register",
        "--name",
        "Palettes de l'Est SAS",
        "--country",
        "FR",
        "--identifier",
        "732 829 320 00074",
        "--roles",
        "producer",
    ];
    let as_kehl = client(&config_dir, &operator_data, &[&["--as", "kehl"][..], &register[..]].concat());
    assert_eq!(as_kehl.status.code(), Some(2), "{}", stdout(&as_kehl));
    assert!(stderr(&as_kehl).contains("PermissionDenied"), "{}", stderr(&as_kehl));
    // --token comes before the profile: the operator's token registers it.
    let operator_token =
        std::fs::read_to_string(operator_data.join("operator.token")).expect("the operator token");
    let with_flag = client(
        &config_dir,
        &no_data,
        &[&["--as", "kehl", "--token", operator_token.trim()][..], &register[..]].concat(),
    );
    assert!(with_flag.status.success(), "{}", stderr(&with_flag));

    // A profile that does not exist, or a name that cannot be one, is named in the error.
    let unknown = client(&config_dir, &no_data, &["--as", "strasbourg", "organization", "show", &kehl]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(
        stderr(&unknown).contains("--as: no profile \"strasbourg\"") && stderr(&unknown).contains("kehl"),
        "{}",
        stderr(&unknown)
    );
    let bad_name = client(&config_dir, &no_data, &["login", "--as", "ke hl", "--token", &kehl_token]);
    assert_eq!(bad_name.status.code(), Some(2));
    assert!(stderr(&bad_name).contains("--as: \"ke hl\" is not a profile name"), "{}", stderr(&bad_name));
    let no_token = client(&config_dir, &no_data, &["login", "--as", "other"]);
    assert_eq!(no_token.status.code(), Some(2));
    assert!(stderr(&no_token).contains("--token: required"), "{}", stderr(&no_token));

    let logout = client(&config_dir, &no_data, &["logout", "--as", "kehl"]);
    assert!(logout.status.success(), "{}", stderr(&logout));
    let gone = client(&config_dir, &no_data, &["--as", "kehl", "organization", "show", &kehl]);
    assert_eq!(gone.status.code(), Some(2));
    assert!(stderr(&gone).contains("no profile \"kehl\""), "{}", stderr(&gone));
}

#[test]
fn read_commands_answer_json_and_contacts_are_set_then_erased() {
    let server = ServerProcess::start();
    let (organization, _) =
        organization_with_token(&server, "Palettes de l'Est SAS", "FR", "732 829 320 00074");

    let code = json(&server.cli(&["--output", "json", "waste-codes", "show", "15 01 03"]));
    assert_eq!(code["wasteCode"]["displayCode"], "15 01 03", "{code}");
    let codes =
        json(&server.cli(&["waste-codes", "search", "packaging", "--limit", "3", "--output", "json"]));
    assert_eq!(codes["wasteCodes"].as_array().map(Vec::len), Some(3), "{codes}");
    let families = json(&server.cli(&["--output", "json", "families"]));
    assert!(families["families"].as_array().is_some_and(|families| families.len() >= 9), "{families}");
    let catalog = json(&server.cli(&["--output", "json", "catalog", "search", "--near", "Strasbourg"]));
    assert_eq!(catalog["entries"], serde_json::json!([]), "{catalog}");
    let balances = json(&server.cli(&["--output", "json", "money", "balances"]));
    assert!(balances["balances"].is_array(), "{balances}");

    let set = server.cli(&[
        "organization",
        "set-contacts",
        &organization,
        "--person",
        "Marie Keller",
        "--phone",
        "+33 3 88 00 00 00",
        "--email",
        "marie.keller@palettes-est.fr",
    ]);
    assert!(set.status.success(), "{}", stderr(&set));
    let shown = json(&server.cli(&["--output", "json", "organization", "show", &organization]));
    let contact = &shown["organization"]["contacts"][0];
    assert_eq!(contact["name"], "Marie Keller", "{shown}");
    assert_eq!(contact["email"], "marie.keller@palettes-est.fr", "{shown}");
    assert_eq!(contact["phone"], "+33 3 88 00 00 00", "{shown}");
    assert_eq!(shown["organization"]["contactsErased"], false, "{shown}");
    let text = stdout(&server.cli(&["organization", "show", &organization]));
    assert!(text.contains("contact:     Marie Keller"), "{text}");

    let erased = server.cli(&["organization", "erase-contacts", &organization]);
    assert!(erased.status.success(), "{}", stderr(&erased));
    let shown = json(&server.cli(&["--output", "json", "organization", "show", &organization]));
    assert_eq!(shown["organization"]["contacts"], serde_json::json!([]), "{shown}");
    assert_eq!(shown["organization"]["contactsErased"], true, "{shown}");
    let text = stdout(&server.cli(&["organization", "show", &organization]));
    assert!(text.contains("contacts:    erased") && !text.contains("Marie Keller"), "{text}");
}

#[test]
fn a_call_to_a_process_that_serves_another_service_says_what_it_serves() {
    let listings =
        ServerProcess::spawn(env!("CARGO_BIN_EXE_symbiose-listings"), super::data_dir_with_a_new_key(), &[]);
    let config = tempfile::tempdir().expect("a configuration directory");
    let data_dir = listings.data_dir.path().join("data");

    // Pointed at it with --server.
    let deals = client(config.path(), &data_dir, &["--server", &listings.url, "deal", "list"]);
    assert_eq!(deals.status.code(), Some(2), "{}", stdout(&deals));
    let said = stderr(&deals);
    assert!(said.contains(&format!("{} does not serve matching", listings.url)), "{said}");
    assert!(said.contains("(it serves listings, organizations, reference)"), "{said}");
    assert!(!said.contains("Unimplemented"), "{said}");

    // Named as the matching process in a profile: the message names the profile's flag, and
    // the calls to the listings process go through.
    let token = std::fs::read_to_string(data_dir.join("operator.token")).expect("the operator token");
    let login = client(
        config.path(),
        &data_dir,
        &[
            "login",
            "--as",
            "ops",
            "--token",
            token.trim(),
            "--listings",
            &listings.url,
            "--matching",
            &listings.url,
        ],
    );
    assert!(login.status.success(), "{}", stderr(&login));
    let families = client(config.path(), &data_dir, &["--as", "ops", "families"]);
    assert!(families.status.success(), "{}", stderr(&families));
    let proposals = client(config.path(), &data_dir, &["--as", "ops", "proposal", "list"]);
    assert_eq!(proposals.status.code(), Some(2));
    assert!(stderr(&proposals).contains("the profile's --matching"), "{}", stderr(&proposals));
}

#[test]
fn a_reader_that_stops_early_stops_the_client_quietly() {
    let server = ServerProcess::start();
    let mut listing = Command::new(BINARY)
        .args(["--server", &server.url, "waste-codes", "search", "--limit", "1000"])
        .env("SYMBIOSE_DATA_DIR", server.data_dir.path().join("data"))
        .env_remove("SYMBIOSE_TOKEN")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start the client");
    // The reader goes away before the client prints its first line.
    drop(listing.stdout.take());
    let output = listing.wait_with_output().expect("the client ends");
    assert!(output.status.success(), "{:?}: {}", output.status, stderr(&output));
    assert_eq!(stderr(&output), "", "nothing reported");
}

#[test]
fn a_file_of_listings_is_imported_once_and_its_refused_lines_printed() {
    let server = ServerProcess::start();
    let (token, site, _) = server.member(
        "Palettes de l'Est SAS",
        "FR",
        "732 829 320 00074",
        "producer",
        ("Strasbourg", "48.5734", "7.7521"),
    );
    let dir = tempfile::tempdir().expect("a directory");
    let file = dir.path().join("offers.csv");
    // The README's sample, at this organization's site.
    let lines = [
        "side,family,waste_code,legal_status,description,quantity,unit,price_per_unit,currency,site_id,expires_at,delivery,pallet_grade".to_owned(),
        format!("offer,pallets,15 01 03,waste,\"EUR/EPAL 1200x800, grade B\",40,pallet,3.50,EUR,{site},2099-03-31T17:00:00Z,buyer_collects,b"),
        format!("offer,pallets,15 01 03,waste,EUR/EPAL 1200x800 grade A,25,pallet,5,EUR,{site},2099-03-31T17:00:00Z,buyer_collects,a"),
        format!("offer,pallets,15 01 03,waste,Broken pallets,12,crate,0,EUR,{site},2099-03-31T17:00:00Z,buyer_collects,unsorted"),
    ];
    std::fs::write(&file, lines.join("\n") + "\n").expect("the file written");
    let path = file.to_str().expect("a UTF-8 path");
    let import = ["--token", &token, "listing", "import", path, "--id", "catalogue-2027-03", "--publish"];

    let first = server.cli(&import);
    assert_eq!(first.status.code(), Some(1), "a line refused: {}", stderr(&first));
    let printed: Vec<Vec<String>> = stdout(&first)
        .lines()
        .map(|line| line.split_whitespace().map(str::to_owned).collect())
        .filter(|words: &Vec<String>| !words.is_empty())
        .collect();
    let expected: Vec<Vec<String>> = [
        "lines 3",
        "created 2",
        "already present 0",
        "refused 1",
        "line field reason",
        "4 terms.quantity.unit \"crate\" is not kg, t, l, m3, piece or pallet",
    ]
    .iter()
    .map(|line| line.split_whitespace().map(str::to_owned).collect())
    .collect();
    assert_eq!(printed, expected, "{}", stdout(&first));

    let again = server.cli(&[&["--output", "json"], &import[..]].concat());
    assert_eq!(again.status.code(), Some(1), "the line still refused: {}", stderr(&again));
    let again: serde_json::Value = serde_json::from_str(&stdout(&again)).expect("JSON");
    assert_eq!((again["created"].as_u64(), again["alreadyPresent"].as_u64()), (Some(0), Some(2)), "{again}");
    assert_eq!(again["refusals"][0]["field"], "terms.quantity.unit", "{again}");
}
