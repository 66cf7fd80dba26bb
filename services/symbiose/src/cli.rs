//! The command-line client: what a person tries first against a running server.

use std::process::ExitCode;

pub use crate::cli_output::Output;
use clap::{Parser, Subcommand, ValueEnum};
use symbiose_domain::Role;
use symbiose_proto::catalog::v1::catalog_service_client::CatalogServiceClient;
use symbiose_proto::common::v1 as common;
use symbiose_proto::listings::v1 as listings;
use symbiose_proto::listings::v1::listing_service_client::ListingServiceClient;
use symbiose_proto::listings::v1::organization_service_client::OrganizationServiceClient;
use symbiose_proto::reference::v1 as pb;
use symbiose_proto::reference::v1::reference_service_client::ReferenceServiceClient;
use tonic::metadata::MetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// Most codes `waste-codes search` prints.
const SEARCH_LIMIT_MAX: usize = 1000;

#[derive(Debug, Parser)]
#[command(
    name = "symbiose",
    version,
    about = "Symbiose: a marketplace backend for industrial waste and by-products",
    after_help = "The token of a call: --token (or SYMBIOSE_TOKEN), else the token of the profile \
                  named by --as, else the operator token the server wrote in its data directory. \
                  The address: --server (or SYMBIOSE_SERVER), else the profile's address of the \
                  service called, else its server, else http://127.0.0.1:50051."
)]
pub struct Cli {
    /// Address of the server, for the client subcommands [default: the profile's addresses,
    /// else http://127.0.0.1:50051].
    #[arg(long, global = true, env = "SYMBIOSE_SERVER")]
    pub server: Option<String>,
    /// Bearer token for the client subcommands; it comes before a profile's token, and without
    /// either the operator token the server wrote in its data directory is used.
    #[arg(long, global = true, env = "SYMBIOSE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// For `https://` addresses: the PEM file of the CA the services' certificates chain to,
    /// the only one trusted.
    #[arg(long, global = true, env = "SYMBIOSE_SERVICES_CA", value_name = "PEM")]
    pub ca: Option<std::path::PathBuf>,
    /// For services that require client certificates (mutual TLS): the PEM file of the
    /// certificate chain to present, with --client-key.
    #[arg(
        long,
        global = true,
        env = "SYMBIOSE_SERVICES_CLIENT_CERT",
        value_name = "PEM",
        requires = "client_key"
    )]
    pub client_cert: Option<std::path::PathBuf>,
    /// The PEM file of the private key of --client-cert.
    #[arg(
        long,
        global = true,
        env = "SYMBIOSE_SERVICES_CLIENT_KEY",
        value_name = "PEM",
        requires = "client_cert"
    )]
    pub client_key: Option<std::path::PathBuf>,
    /// The profile to use (saved by `symbiose login --as <name>`): its token and addresses.
    #[arg(long = "as", global = true, env = "SYMBIOSE_PROFILE", value_name = "PROFILE")]
    pub profile: Option<String>,
    /// How read commands print their answer: aligned text, or the response as JSON.
    #[arg(long, global = true, value_enum, default_value_t = Output::Table)]
    pub output: Output,
    /// The server's data directory, where the operator token is read from, and whose event
    /// log `store` works on.
    #[arg(long, global = true, env = "SYMBIOSE_DATA_DIR", default_value = "./data")]
    pub data_dir: std::path::PathBuf,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the standalone server (the default); configured by SYMBIOSE_* variables.
    Serve,
    /// Save a profile: a token and the addresses of the services, under the name given by
    /// --as (`symbiose login --as kehl --token <token> [--server URL] [--matching URL ...]`);
    /// `--list` shows the profiles.
    Login(Box<LoginArgs>),
    /// Remove the profile named by --as.
    Logout,
    /// The saved profiles: their names and addresses, never their tokens.
    Profiles,
    /// Check that the server answers and serves.
    Health,
    /// The European List of Waste.
    #[command(subcommand)]
    WasteCodes(WasteCodesCommand),
    /// The material families, in English, French and German.
    Families,
    /// Business identifiers: SIREN, SIRET, VAT numbers, Swiss UID.
    #[command(subcommand)]
    Identifier(IdentifierCommand),
    /// The directory of organizations.
    #[command(subcommand)]
    Organization(OrganizationCommand),
    /// Tokens (the operator's).
    #[command(subcommand)]
    Token(TokenCommand),
    /// Offers and requests.
    #[command(subcommand)]
    Listing(ListingCommand),
    /// The catalog of open offers and requests.
    #[command(subcommand)]
    Catalog(CatalogCommand),
    /// Matches for one of your listings.
    #[command(subcommand)]
    Matches(crate::cli_matching::MatchCommand),
    /// Proposals of matching: list, accept, decline.
    #[command(subcommand)]
    Proposal(crate::cli_matching::ProposalCommand),
    /// Deals: list, show, cancel.
    #[command(subcommand)]
    Deal(crate::cli_matching::DealCommand),
    /// Carrier profiles (a carrier's).
    #[command(subcommand)]
    Carrier(crate::cli_logistics::CarrierCommand),
    /// Quotes for a deal's transport.
    #[command(subcommand)]
    Quote(crate::cli_logistics::QuoteCommand),
    /// Shipments: book, report pickup, border crossing and delivery, accept, show, Annex VII.
    #[command(subcommand)]
    Shipment(crate::cli_logistics::ShipmentCommand),
    /// EUR pallet balances and their settlement.
    #[command(subcommand)]
    Pallets(crate::cli_logistics::PalletCommand),
    /// Money: balances, statements, a deal's transfers, deposits.
    #[command(subcommand)]
    Money(crate::cli_settlement::MoneyCommand),
    /// Invoices issued and received.
    #[command(subcommand)]
    Invoice(crate::cli_settlement::InvoiceCommand),
    /// Material passports: what a lot is made of, where it came from, how to reuse it; their
    /// public pages, QR codes and labels are on the web port.
    #[command(subcommand)]
    Passport(crate::cli_passports::PassportCommand),
    /// End-of-life instructions by institutions, which passports show.
    #[command(subcommand)]
    Instructions(crate::cli_passports::InstructionsCommand),
    /// Territories' figures, the flows across borders and supply diagnoses; their public
    /// dashboard is on the web port, at /territories.
    #[command(subcommand)]
    Territory(crate::cli_territory::TerritoryCommand),
    /// The legal waste registers (arrêté du 31 mai 2021): outgoing, incoming, transported,
    /// managed, as CSV or XLSX.
    #[command(subcommand)]
    Register(crate::cli_territory::RegisterCommand),
    /// The platform's token signing key, on this machine (no server needed).
    #[command(subcommand)]
    Key(KeyCommand),
    /// The event log on disk, checked or repaired offline, the server stopped (the embedded
    /// store only: with SYMBIOSE_STORE=postgres the events are in PostgreSQL, which checks its
    /// own data, and this command refuses to run); and a whole log copied from one store to
    /// another, embedded or PostgreSQL (`copy`).
    #[command(subcommand)]
    Store(crate::cli_store::StoreCommand),
    /// Fill a running server with a marketplace to explore: organizations in every town of the
    /// region and its borders, listings of every material, and deals carried through escrow,
    /// transport and delivery to their invoices (operator token).
    Demo {
        /// How many listings to publish, besides the stories' own.
        #[arg(long, default_value_t = 2000)]
        listings: usize,
        /// Another seed makes other organizations; the same seed again adds nothing.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

#[derive(Debug, clap::Args)]
pub struct LoginArgs {
    /// Show the saved profiles (names and addresses, never tokens) instead of saving one.
    #[arg(long, conflicts_with_all = ["listings", "catalog", "matching", "logistics", "settlement", "passports"])]
    list: bool,
    /// Where each service runs when they are processes of their own; a service not named here
    /// is called at --server.
    #[command(flatten)]
    addresses: crate::cli_profile::Addresses,
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Make the platform's signing key in `<data dir>/keys/signing.key`, once: every process of
    /// the platform (each service alone, each catalog replica) gets a copy of this file. An
    /// existing key is never replaced.
    Create,
}

#[derive(Debug, Subcommand)]
pub enum CatalogCommand {
    /// Search the open offers and requests: nearest first around a town or a point.
    Search(Box<SearchCatalogArgs>),
    /// Rebuild the catalog from the first event of the log (operator token); queries are
    /// served from the previous state until it is done.
    Rebuild,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SortArg {
    Distance,
    Price,
    Recency,
}

#[derive(Debug, clap::Args)]
pub struct SearchCatalogArgs {
    #[arg(long, value_enum)]
    side: Option<SideArg>,
    /// pallets, packaging, plastics, metals, solvents, wood, compost, aggregates, process_water.
    #[arg(long)]
    family: Option<String>,
    #[arg(long)]
    waste_code: Option<String>,
    /// A chapter of the List of Waste: "15".
    #[arg(long)]
    chapter: Option<String>,
    #[arg(long)]
    hazardous: Option<bool>,
    #[arg(long, value_enum)]
    legal_status: Option<LegalStatusArg>,
    #[arg(long, value_enum)]
    pallet_grade: Option<GradeArg>,
    /// A town of the reference table ("Karlsruhe"), as the point to search around.
    #[arg(long, conflicts_with_all = ["latitude", "longitude"])]
    near: Option<String>,
    #[arg(long, requires = "longitude", allow_hyphen_values = true)]
    latitude: Option<f64>,
    #[arg(long, requires = "latitude", allow_hyphen_values = true)]
    longitude: Option<f64>,
    /// Search radius around the point, in km.
    #[arg(long, default_value_t = 200)]
    radius_km: u32,
    /// Countries, comma-separated: "FR,DE".
    #[arg(long, value_delimiter = ',')]
    country: Vec<String>,
    /// Currency of the price range and of the price order.
    #[arg(long)]
    currency: Option<String>,
    /// Lowest price per unit, decimal: "1.50".
    #[arg(long, allow_hyphen_values = true)]
    price_min: Option<String>,
    #[arg(long, allow_hyphen_values = true)]
    price_max: Option<String>,
    #[arg(long, value_enum)]
    sort: Option<SortArg>,
    /// en, fr or de.
    #[arg(long, default_value = "")]
    language: String,
    /// Most hits printed (one page, at most 200).
    #[arg(long, default_value_t = 20)]
    limit: i32,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SideArg {
    Offer,
    Request,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LegalStatusArg {
    Waste,
    ByProduct,
    EndOfWaste,
    ProductForReuse,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PolymerArg {
    Pet,
    Hdpe,
    Pp,
    Ldpe,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PlasticFormArg {
    Flakes,
    Pellets,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum GradeArg {
    New,
    A,
    B,
    C,
    Unsorted,
}

#[derive(Debug, Subcommand)]
pub enum ListingCommand {
    /// Create a draft listing at one of your sites: prints its id.
    Create(Box<CreateListingArgs>),
    /// Publish a draft.
    Publish { listing: String },
    /// Show a listing.
    Show { listing: String },
    /// Import listings from a CSV or JSON-lines file, each created (and published with
    /// --publish) once, whatever the retries: prints what was refused and why.
    Import(crate::cli_import::ImportArgs),
}

#[derive(Debug, clap::Args)]
pub struct CreateListingArgs {
    #[arg(long, value_enum)]
    side: SideArg,
    /// pallets, packaging, plastics, metals, solvents, wood, compost, aggregates, process_water.
    #[arg(long)]
    family: String,
    #[arg(long)]
    site: String,
    /// Decimal amount: "40", "12.5".
    #[arg(long)]
    quantity: String,
    /// kg, t, l, m3, piece, pallet.
    #[arg(long)]
    unit: String,
    /// Waste code ("15 01 03"); required for waste.
    #[arg(long)]
    waste_code: Option<String>,
    #[arg(long, value_enum, default_value = "waste")]
    legal_status: LegalStatusArg,
    #[arg(long, value_enum)]
    pallet_grade: Option<GradeArg>,
    /// Recycled plastics: the polymer (with --form).
    #[arg(long, value_enum, requires = "form", conflicts_with = "pallet_grade")]
    polymer: Option<PolymerArg>,
    /// Recycled plastics: flakes or pellets (with --polymer).
    #[arg(long, value_enum, requires = "polymer")]
    form: Option<PlasticFormArg>,
    #[arg(long, default_value = "")]
    description: String,
    /// Price per unit, decimal, negative for a gate fee: "3.50".
    #[arg(long, default_value = "0", allow_hyphen_values = true)]
    price: String,
    #[arg(long, default_value = "EUR")]
    currency: String,
    /// For a recurring lot: every how many days.
    #[arg(long, default_value_t = 0)]
    every_days: u32,
    #[arg(long, default_value_t = 60)]
    expires_in_days: u32,
    /// Requests: how far the material may come from.
    #[arg(long, default_value_t = 0)]
    max_distance_km: u32,
    #[arg(long, default_value = "")]
    request_id: String,
}

#[derive(Debug, Subcommand)]
pub enum OrganizationCommand {
    /// Register an organization (operator): prints its id.
    Register {
        #[arg(long)]
        name: String,
        /// FR, DE, CH, BE or LU.
        #[arg(long)]
        country: String,
        /// SIREN, SIRET, VAT number or Swiss UID.
        #[arg(long)]
        identifier: String,
        /// Comma-separated: producer, buyer, recycler, carrier, institution.
        #[arg(long, value_delimiter = ',', required = true)]
        roles: Vec<Role>,
        /// Makes a repeated command apply once.
        #[arg(long, default_value = "")]
        request_id: String,
    },
    /// Add a site to an organization: prints its id.
    AddSite {
        #[arg(long)]
        organization: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        street: String,
        #[arg(long)]
        postal_code: String,
        #[arg(long)]
        city: String,
        #[arg(long)]
        country: String,
        #[arg(long, allow_hyphen_values = true)]
        latitude: f64,
        #[arg(long, allow_hyphen_values = true)]
        longitude: f64,
        #[arg(long, default_value = "")]
        request_id: String,
    },
    /// Show an organization.
    Show { organization: String },
    /// List organizations (their public part): id, name, country and roles, every page.
    List {
        /// Only those holding this role.
        #[arg(long)]
        role: Option<Role>,
        /// Only those of this country: FR, DE, CH, BE or LU.
        #[arg(long)]
        country: Option<String>,
    },
    /// Set an organization's contact person, replacing its contacts (kept sealed: personal data).
    SetContacts {
        organization: String,
        /// The person's name.
        #[arg(long)]
        person: String,
        #[arg(long, default_value = "")]
        email: String,
        #[arg(long, default_value = "")]
        phone: String,
        /// What the person does ("logistics", "quality").
        #[arg(long, default_value = "")]
        function: String,
        #[arg(long, default_value = "")]
        request_id: String,
    },
    /// Erase an organization's contacts for good: their key is deleted, so no copy of the log
    /// can reveal them again.
    EraseContacts {
        organization: String,
        #[arg(long, default_value = "")]
        request_id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Issue a token for an organization (operator): prints the token.
    Issue {
        #[arg(long)]
        organization: String,
        /// Comma-separated subset of the organization's roles; all of them if absent.
        #[arg(long, value_delimiter = ',')]
        roles: Vec<Role>,
        /// Validity in days; the server's default if absent.
        #[arg(long, default_value_t = 0)]
        ttl_days: u32,
    },
    /// Revoke a token by its id.
    Revoke { token_id: String },
}

#[derive(Debug, Subcommand)]
pub enum WasteCodesCommand {
    /// Search codes by words of their description, chapter, and hazardousness.
    Search {
        /// Words of the description ("wooden packaging").
        text: Option<String>,
        /// Two-digit chapter ("15").
        #[arg(long)]
        chapter: Option<String>,
        /// Four-digit sub-chapter ("1501").
        #[arg(long)]
        sub_chapter: Option<String>,
        /// Only hazardous codes (true) or only non-hazardous ones (false).
        #[arg(long)]
        hazardous: Option<bool>,
        /// Most codes to print.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Show one code ("150103", "15 01 03" or "15 01 03*").
    Show { code: String },
}

#[derive(Debug, Subcommand)]
pub enum IdentifierCommand {
    /// Say which kind an identifier is and whether its check digits hold.
    Validate {
        identifier: String,
        /// The kind expected, if not to be recognised.
        #[arg(long, value_enum)]
        kind: Option<KindArg>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum KindArg {
    Siren,
    Siret,
    FrVat,
    DeVat,
    ChUid,
    BeEnterprise,
    BeVat,
    LuVat,
}

/// Runs one client subcommand; the exit code is 0 on success, 1 when the answer is "no"
/// (not serving, not valid), 2 on an error.
pub async fn run(cli: Cli) -> ExitCode {
    let Some(command) = cli.command else { return ExitCode::from(2) };
    stop_quietly_when_the_reader_stops();
    let tls = cli.ca.clone().map(|ca_path| symbiose_kit::config::ServicesTls {
        ca_path,
        client: cli.client_cert.clone().zip(cli.client_key.clone()),
    });
    if tls.is_none() && cli.client_cert.is_some() {
        eprintln!("error: --client-cert is for https:// addresses: it needs --ca (SYMBIOSE_SERVICES_CA)");
        return ExitCode::from(2);
    }
    let _ = CLIENT_TLS.set(tls);
    if let Command::Key(KeyCommand::Create) = command {
        return create_key(&cli.data_dir);
    }
    if let Command::Store(command) = command {
        return crate::cli_store::run(&cli.data_dir, command).await;
    }
    let outcome = match command {
        Command::Login(arguments) => login(cli.profile, cli.token, cli.server, cli.output, *arguments),
        Command::Logout => logout(cli.profile),
        Command::Profiles => list_profiles(cli.output),
        command => call(cli.profile, cli.token, cli.server, &cli.data_dir, cli.output, command).await,
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}

/// A reader that stops early (`| head -1`, `| awk '{ print; exit }'`) closes the pipe: the
/// client then stops quietly with 0, as Unix tools do, instead of reporting a panic
/// (`println!` panics on a closed standard output, and restoring SIGPIPE would need `unsafe`).
fn stop_quietly_when_the_reader_stops() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(0);
        }
        report(info);
    }));
}

/// The directory of the profiles, from the process's environment.
fn profiles_dir() -> anyhow::Result<std::path::PathBuf> {
    crate::cli_profile::config_dir(|key| std::env::var(key).ok())
}

/// `symbiose login --as <name> --token <token>`: saves a profile (or, with `--list`, shows them).
fn login(
    name: Option<String>,
    token: Option<String>,
    server: Option<String>,
    output: Output,
    arguments: LoginArgs,
) -> anyhow::Result<bool> {
    if arguments.list {
        return list_profiles(output);
    }
    let name = name.ok_or_else(|| anyhow::anyhow!("--as: required, the name of the profile to save"))?;
    let token = token
        .map(|token| token.trim().to_owned())
        .filter(|token| !token.is_empty())
        .ok_or_else(|| anyhow::anyhow!("--token: required, the token the profile keeps"))?;
    if Bearer::new(&token).is_none() {
        anyhow::bail!("--token: has characters a header cannot hold");
    }
    if let Some(server) = &server {
        crate::cli_profile::check_address("server", server)?;
    }
    for (flag, address) in arguments.addresses.named() {
        crate::cli_profile::check_address(flag, address)?;
    }
    let dir = profiles_dir()?;
    let profile = crate::cli_profile::Profile { server, token, addresses: arguments.addresses };
    crate::cli_profile::save(&dir, &name, profile)?;
    println!("saved profile {name} in {}", dir.join(crate::cli_profile::PROFILES_FILE).display());
    Ok(true)
}

/// `symbiose logout --as <name>`: removes a profile.
fn logout(name: Option<String>) -> anyhow::Result<bool> {
    let name = name.ok_or_else(|| anyhow::anyhow!("--as: required, the name of the profile to remove"))?;
    if !crate::cli_profile::remove(&profiles_dir()?, &name)? {
        anyhow::bail!("--as: no profile {name:?}");
    }
    println!("removed profile {name}");
    Ok(true)
}

/// `symbiose profiles` (or `login --list`): names and addresses, never tokens.
fn list_profiles(output: Output) -> anyhow::Result<bool> {
    let profiles = crate::cli_profile::load(&profiles_dir()?)?;
    let rows: Vec<(String, String, Vec<String>)> = profiles
        .iter()
        .map(|(name, profile)| {
            let server =
                profile.server.clone().unwrap_or_else(|| crate::cli_profile::DEFAULT_SERVER.to_owned());
            let services = profile
                .addresses
                .named()
                .iter()
                .map(|(service, address)| format!("{service}={address}"))
                .collect();
            (name.clone(), server, services)
        })
        .collect();
    if output == Output::Json {
        let json: Vec<serde_json::Value> = rows
            .iter()
            .map(|(name, server, _)| {
                let mut entry = serde_json::json!({ "name": name, "server": server });
                for (service, address) in profiles[name].addresses.named() {
                    entry[service] = address.into();
                }
                entry
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&json)?);
        return Ok(true);
    }
    let mut table = crate::cli_output::table(&["profile", "server", "services alone"]);
    for (name, server, services) in &rows {
        table.add_row([name.as_str(), server.as_str(), services.join(" ").as_str()]);
    }
    if !rows.is_empty() {
        crate::cli_output::print_table(&mut table);
    }
    println!("({} profiles)", rows.len());
    Ok(true)
}

/// A client subcommand: its token and address chosen (flags and variables, then the profile,
/// then the operator's token and the default address), then the call.
async fn call(
    profile: Option<String>,
    token: Option<String>,
    server: Option<String>,
    data_dir: &std::path::Path,
    output: Output,
    command: Command,
) -> anyhow::Result<bool> {
    let profile = match profile {
        Some(name) => Some(crate::cli_profile::find(&profiles_dir()?, &name)?),
        None => None,
    };
    let token = token
        .or_else(|| profile.as_ref().map(|profile| profile.token.clone()))
        .or_else(|| std::fs::read_to_string(data_dir.join("operator.token")).ok());
    let service = Service::of(&command);
    let (address, flag) = match (server, &profile) {
        (Some(server), _) => (server, "--server"),
        (None, Some(profile)) => match service.address(&profile.addresses) {
            Some(address) => (address.to_owned(), service.flag()),
            None => (
                profile.server.clone().unwrap_or_else(|| crate::cli_profile::DEFAULT_SERVER.to_owned()),
                "--server",
            ),
        },
        (None, None) => (crate::cli_profile::DEFAULT_SERVER.to_owned(), "--server"),
    };
    match execute(&address, token.as_deref().map(str::trim), output, command).await {
        Err(error) if unimplemented(&error) => Err(wrong_process(&address, flag, service).await),
        outcome => outcome,
    }
}

/// Which service a subcommand calls, hence which process's address it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Service {
    /// Health and the demo: the server itself.
    Server,
    /// Listings, organizations, tokens and the reference data: the listings process.
    Listings,
    Catalog,
    Matching,
    Logistics,
    Settlement,
    /// Passports and end-of-life instructions: the passports process.
    Passports,
}

impl Service {
    fn of(command: &Command) -> Service {
        match command {
            Command::Serve
            | Command::Login(_)
            | Command::Logout
            | Command::Profiles
            | Command::Health
            | Command::Key(_)
            | Command::Store(_)
            | Command::Demo { .. } => Service::Server,
            Command::WasteCodes(_)
            | Command::Families
            | Command::Identifier(_)
            | Command::Organization(_)
            | Command::Token(_)
            | Command::Listing(_) => Service::Listings,
            Command::Catalog(_) => Service::Catalog,
            Command::Matches(_) | Command::Proposal(_) | Command::Deal(_) => Service::Matching,
            Command::Carrier(_) | Command::Quote(_) | Command::Shipment(_) | Command::Pallets(_) => {
                Service::Logistics
            }
            Command::Money(_) | Command::Invoice(_) => Service::Settlement,
            // The passports' process serves the territory context too.
            Command::Passport(_)
            | Command::Instructions(_)
            | Command::Territory(_)
            | Command::Register(_) => Service::Passports,
        }
    }

    fn address(self, addresses: &crate::cli_profile::Addresses) -> Option<&str> {
        match self {
            Service::Server => None,
            Service::Listings => addresses.listings.as_deref(),
            Service::Catalog => addresses.catalog.as_deref(),
            Service::Matching => addresses.matching.as_deref(),
            Service::Logistics => addresses.logistics.as_deref(),
            Service::Settlement => addresses.settlement.as_deref(),
            Service::Passports => addresses.passports.as_deref(),
        }
    }

    /// The `login` flag of the service's address.
    fn flag(self) -> &'static str {
        match self {
            Service::Server => "--server",
            Service::Listings => "--listings",
            Service::Catalog => "--catalog",
            Service::Matching => "--matching",
            Service::Logistics => "--logistics",
            Service::Settlement => "--settlement",
            Service::Passports => "--passports",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Service::Server => "this call",
            Service::Listings => "listings",
            Service::Catalog => "the catalog",
            Service::Matching => "matching",
            Service::Logistics => "logistics",
            Service::Settlement => "settlement",
            Service::Passports => "passports",
        }
    }
}

/// Whether a call failed as UNIMPLEMENTED: the process at that address does not serve it.
fn unimplemented(error: &anyhow::Error) -> bool {
    error.downcast_ref::<CallFailed>().is_some_and(|failed| failed.0.code() == tonic::Code::Unimplemented)
}

/// The error of a call to a process that does not serve it: what that process serves (asked of
/// its gRPC health service), and which address to set.
async fn wrong_process(address: &str, flag: &str, service: Service) -> anyhow::Error {
    let serves = match served_services(address).await {
        Ok(names) if !names.is_empty() => format!("it serves {}", names.join(", ")),
        Ok(_) => "it serves no Symbiose service".to_owned(),
        Err(error) => format!("it does not say what it serves ({error:#})"),
    };
    let (name, service_flag) = (service.name(), service.flag());
    let hint = if flag == "--server" {
        format!(
            "point --server at the process of {name}, or keep each process's address in a profile \
             (symbiose login --as <name> --token <token> {service_flag} URL ...)"
        )
    } else {
        format!(
            "correct the profile's {flag} address (symbiose login --as <name> --token <token> {flag} URL ...)"
        )
    };
    anyhow::anyhow!("{address} does not serve {name} ({serves}); {hint}")
}

/// The Symbiose services a process may serve, by their gRPC name, with the word the client
/// says for each.
const SERVICE_NAMES: &[(&str, &str)] = &[
    (symbiose_proto::listings::v1::listing_service_server::SERVICE_NAME, "listings"),
    (symbiose_proto::listings::v1::organization_service_server::SERVICE_NAME, "organizations"),
    (symbiose_proto::reference::v1::reference_service_server::SERVICE_NAME, "reference"),
    (symbiose_proto::catalog::v1::catalog_service_server::SERVICE_NAME, "catalog"),
    (symbiose_proto::matching::v1::matching_service_server::SERVICE_NAME, "matching"),
    (symbiose_proto::logistics::v1::logistics_service_server::SERVICE_NAME, "logistics"),
    (symbiose_proto::settlement::v1::settlement_service_server::SERVICE_NAME, "settlement"),
    (symbiose_proto::passports::v1::passport_service_server::SERVICE_NAME, "passports"),
    (symbiose_proto::territory::v1::territory_service_server::SERVICE_NAME, "territory"),
];

/// The Symbiose services the process at `address` serves ("listings", "matching"), asked of
/// its gRPC health service, which knows exactly the services it serves (reflection would
/// describe every Symbiose file, served or not).
async fn served_services(address: &str) -> anyhow::Result<Vec<&'static str>> {
    let mut health = HealthClient::new(connect(address).await?);
    let mut served = Vec::new();
    for (service, word) in SERVICE_NAMES {
        let request = tonic_health::pb::HealthCheckRequest { service: (*service).to_owned() };
        match health.check(request).await {
            Ok(_) => served.push(*word),
            Err(status) if status.code() == tonic::Code::NotFound => {}
            Err(status) => return Err(status_error(status)),
        }
    }
    Ok(served)
}

/// `symbiose key create`: the platform's signing key, made where the data directory says.
fn create_key(data_dir: &std::path::Path) -> ExitCode {
    let keys_dir = data_dir.join(symbiose_kit::auth::KEYS_DIR);
    match symbiose_kit::TokenAuthority::create(&keys_dir) {
        Ok(authority) => {
            println!(
                "created {} (key id {}): copy it to <data dir>/keys/ of every process of the platform",
                keys_dir.join(symbiose_kit::auth::SIGNING_KEY_FILE).display(),
                authority.key_id()
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(2)
        }
    }
}

/// Adds the bearer token to every call.
#[derive(Debug, Clone)]
pub struct Bearer(Option<MetadataValue<tonic::metadata::Ascii>>);

impl Bearer {
    /// A bearer of `token`, or `None` if it cannot be a header value.
    pub fn new(token: &str) -> Option<Bearer> {
        format!("Bearer {}", token.trim()).parse().ok().map(|value| Bearer(Some(value)))
    }
}

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request.metadata_mut().insert("authorization", value.clone());
        }
        Ok(request)
    }
}

pub(crate) type Authed = InterceptedService<Channel, Bearer>;

async fn execute(
    server: &str,
    token: Option<&str>,
    output: Output,
    command: Command,
) -> anyhow::Result<bool> {
    let raw = connect(server).await?;
    let bearer = match token {
        Some(token) => Some(
            format!("Bearer {token}")
                .parse()
                .map_err(|_| anyhow::anyhow!("the token has characters a header cannot hold"))?,
        ),
        None => None,
    };
    let channel = InterceptedService::new(raw.clone(), Bearer(bearer));
    match command {
        Command::Serve
        | Command::Key(_)
        | Command::Store(_)
        | Command::Login(_)
        | Command::Logout
        | Command::Profiles => anyhow::bail!("not a client subcommand"),
        Command::Health => health(raw).await,
        Command::WasteCodes(WasteCodesCommand::Search { text, chapter, sub_chapter, hazardous, limit }) => {
            let request = pb::ListWasteCodesRequest {
                chapter: chapter.unwrap_or_default(),
                sub_chapter: sub_chapter.unwrap_or_default(),
                hazardous,
                text: text.unwrap_or_default(),
                page_size: 0,
                page_token: String::new(),
            };
            search_waste_codes(channel, request, limit.min(SEARCH_LIMIT_MAX), output).await
        }
        Command::WasteCodes(WasteCodesCommand::Show { code }) => show_waste_code(channel, code, output).await,
        Command::Families => families(channel, output).await,
        Command::Identifier(IdentifierCommand::Validate { identifier, kind }) => {
            validate_identifier(channel, identifier, kind, output).await
        }
        Command::Organization(command) => organization(channel, command, output).await,
        Command::Token(command) => token_command(channel, command).await,
        Command::Listing(command) => listing_command(channel, command, output).await,
        Command::Catalog(CatalogCommand::Search(arguments)) => {
            search_catalog(channel, *arguments, output).await
        }
        Command::Catalog(CatalogCommand::Rebuild) => {
            let mut client = CatalogServiceClient::new(channel);
            let request = symbiose_proto::catalog::v1::RebuildCatalogRequest {};
            let progress = crate::progress::Spinner::start("rebuilding the catalog from the first event");
            let response = client.rebuild_catalog(request).await.map_err(status_error);
            progress.done();
            let response = response?.into_inner();
            if output.json(&response)? {
                return Ok(true);
            }
            println!(
                "rebuilt: {} open entries, up to position {}, in {} ms",
                response.entries, response.position, response.duration_ms
            );
            Ok(true)
        }
        Command::Matches(command) => crate::cli_matching::match_command(channel, command, output).await,
        Command::Proposal(command) => crate::cli_matching::proposal_command(channel, command, output).await,
        Command::Deal(command) => crate::cli_matching::deal_command(channel, command, output).await,
        Command::Carrier(command) => crate::cli_logistics::carrier_command(channel, command).await,
        Command::Quote(command) => crate::cli_logistics::quote_command(channel, command, output).await,
        Command::Shipment(command) => crate::cli_logistics::shipment_command(channel, command, output).await,
        Command::Pallets(command) => crate::cli_logistics::pallet_command(channel, command, output).await,
        Command::Money(command) => crate::cli_settlement::money_command(channel, command, output).await,
        Command::Invoice(command) => crate::cli_settlement::invoice_command(channel, command, output).await,
        Command::Passport(command) => crate::cli_passports::passport_command(channel, command, output).await,
        Command::Instructions(command) => {
            crate::cli_passports::instructions_command(channel, command, output).await
        }
        Command::Territory(command) => {
            crate::cli_territory::territory_command(channel, command, output).await
        }
        Command::Register(command) => crate::cli_territory::register_command(channel, command).await,
        Command::Demo { listings, seed } => crate::demo::run(raw, channel, listings, seed).await,
    }
}

/// Minor units of a decimal price with at most two decimals: "3.50" is 350, "-12" is -1200.
pub(crate) fn price_minor(text: &str) -> anyhow::Result<i64> {
    let invalid = || anyhow::anyhow!("--price: {text:?} is not a price with at most two decimals");
    let (negative, digits) = match text.trim().strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.trim()),
    };
    let (units, cents) = digits.split_once('.').unwrap_or((digits, ""));
    if units.is_empty()
        || cents.len() > 2
        || !units.bytes().chain(cents.bytes()).all(|byte| byte.is_ascii_digit())
    {
        return Err(invalid());
    }
    let units: i64 = units.parse().map_err(|_| invalid())?;
    let cents: i64 = format!("{cents:0<2}").parse().map_err(|_| invalid())?;
    let minor = units.checked_mul(100).and_then(|minor| minor.checked_add(cents)).ok_or_else(invalid)?;
    Ok(if negative { -minor } else { minor })
}

async fn listing_command(channel: Authed, command: ListingCommand, output: Output) -> anyhow::Result<bool> {
    let mut client = ListingServiceClient::new(channel);
    match command {
        ListingCommand::Create(arguments) => {
            let CreateListingArgs {
                side,
                family,
                site,
                quantity,
                unit,
                waste_code,
                legal_status,
                pallet_grade,
                polymer,
                form,
                description,
                price,
                currency,
                every_days,
                expires_in_days,
                max_distance_km,
                request_id,
            } = *arguments;
            let family = symbiose_domain::MaterialFamily::from_key(&family)
                .ok_or_else(|| anyhow::anyhow!("--family: {family:?} is not a material family"))?;
            let unit = symbiose_domain::Unit::from_symbol(&unit)
                .ok_or_else(|| anyhow::anyhow!("--unit: {unit:?} is not kg, t, l, m3, piece or pallet"))?;
            let quantity = symbiose_domain::Quantity::parse(&quantity, unit, false)
                .map_err(|error| anyhow::anyhow!("--quantity: {error}"))?;
            let now_s = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs() as i64;
            let terms = listings::ListingTerms {
                side: match side {
                    SideArg::Offer => listings::ListingSide::Offer,
                    SideArg::Request => listings::ListingSide::Request,
                }
                .into(),
                family: common::MaterialFamily::from(family).into(),
                waste_code: waste_code.unwrap_or_default(),
                legal_status: match legal_status {
                    LegalStatusArg::Waste => listings::LegalStatus::Waste,
                    LegalStatusArg::ByProduct => listings::LegalStatus::ByProduct,
                    LegalStatusArg::EndOfWaste => listings::LegalStatus::EndOfWaste,
                    LegalStatusArg::ProductForReuse => listings::LegalStatus::ProductForReuse,
                }
                .into(),
                description,
                quality: pallet_grade
                    .map(|grade| listings::Quality {
                        kind: Some(listings::quality::Kind::PalletGrade(
                            match grade {
                                GradeArg::New => listings::PalletGrade::New,
                                GradeArg::A => listings::PalletGrade::A,
                                GradeArg::B => listings::PalletGrade::B,
                                GradeArg::C => listings::PalletGrade::C,
                                GradeArg::Unsorted => listings::PalletGrade::Unsorted,
                            }
                            .into(),
                        )),
                    })
                    .or(polymer.zip(form).map(|(polymer, form)| listings::Quality {
                        kind: Some(listings::quality::Kind::Plastic(listings::PlasticQuality {
                            polymer: match polymer {
                                PolymerArg::Pet => listings::Polymer::Pet,
                                PolymerArg::Hdpe => listings::Polymer::Hdpe,
                                PolymerArg::Pp => listings::Polymer::Pp,
                                PolymerArg::Ldpe => listings::Polymer::Ldpe,
                            }
                            .into(),
                            form: match form {
                                PlasticFormArg::Flakes => listings::PlasticForm::Flakes,
                                PlasticFormArg::Pellets => listings::PlasticForm::Pellets,
                            }
                            .into(),
                        })),
                    })),
                quantity: Some(quantity.into()),
                minimum_lot: None,
                recurrence: (every_days > 0).then_some(listings::Recurrence { every_days }),
                site_id: site,
                location: None,
                available_from: Some(prost_types::Timestamp { seconds: now_s, nanos: 0 }),
                available_until: None,
                price_per_unit: Some(common::Money {
                    amount_minor: price_minor(&price)?,
                    currency_code: currency,
                }),
                delivery: Some(listings::DeliveryTerms {
                    mode: listings::DeliveryMode::BuyerCollects.into(),
                    seller_delivery_km: 0,
                }),
                max_distance_km,
                accepts_other_countries: true,
                attachments: Vec::new(),
                expires_at: Some(prost_types::Timestamp {
                    seconds: now_s + i64::from(expires_in_days) * 86_400,
                    nanos: 0,
                }),
            };
            let response = client
                .create_listing(listings::CreateListingRequest { request_id, terms: Some(terms) })
                .await
                .map_err(status_error)?
                .into_inner();
            println!("{}", response.listing_id);
        }
        ListingCommand::Import(arguments) => {
            return crate::cli_import::import(client, arguments, output).await;
        }
        ListingCommand::Publish { listing } => {
            let response = client
                .publish_listing(listings::PublishListingRequest {
                    request_id: String::new(),
                    listing_id: listing,
                })
                .await
                .map_err(status_error)?
                .into_inner();
            println!("published (version {})", response.version);
        }
        ListingCommand::Show { listing } => {
            let response = client
                .get_listing(listings::GetListingRequest { listing_id: listing })
                .await
                .map_err(status_error)?
                .into_inner();
            if output.json(&response)? {
                return Ok(true);
            }
            let listing = response.listing.ok_or_else(|| anyhow::anyhow!("the server answered nothing"))?;
            let terms = listing.terms.clone().unwrap_or_default();
            let quantity = |quantity: Option<common::Quantity>| {
                quantity
                    .and_then(|quantity| symbiose_domain::Quantity::try_from(quantity).ok())
                    .map_or_else(|| "0".to_owned(), |quantity| quantity.to_string())
            };
            let price = terms
                .price_per_unit
                .clone()
                .and_then(|price| symbiose_domain::Money::try_from(price).ok())
                .map_or_else(|| "none".to_owned(), |price| price.to_string());
            let point = listing.point.unwrap_or_default();
            println!("id:          {}", listing.listing_id);
            println!(
                "state:       {}",
                listing.state().as_str_name().trim_start_matches("LISTING_STATE_").to_lowercase()
            );
            println!(
                "side:        {}",
                terms.side().as_str_name().trim_start_matches("LISTING_SIDE_").to_lowercase()
            );
            println!(
                "material:    {} {}",
                terms.family().as_str_name().trim_start_matches("MATERIAL_FAMILY_").to_lowercase(),
                terms.waste_code
            );
            println!("quantity:    {}", quantity(terms.quantity));
            println!("available:   {}", quantity(listing.available));
            println!("price:       {price} per unit");
            println!(
                "at:          {:.4}, {:.4} ({})",
                point.latitude,
                point.longitude,
                listing.country().as_str_name().trim_start_matches("COUNTRY_").to_lowercase()
            );
            println!("version:     {}", response.version);
        }
    }
    Ok(true)
}

async fn search_catalog(
    channel: Authed,
    arguments: SearchCatalogArgs,
    output: Output,
) -> anyhow::Result<bool> {
    let SearchCatalogArgs {
        side,
        family,
        waste_code,
        chapter,
        hazardous,
        legal_status,
        pallet_grade,
        near,
        latitude,
        longitude,
        radius_km,
        country: countries,
        currency,
        price_min,
        price_max,
        sort,
        language,
        limit,
    } = arguments;
    let family = match family {
        None => common::MaterialFamily::Unspecified,
        Some(key) => symbiose_domain::MaterialFamily::from_key(&key)
            .map(common::MaterialFamily::from)
            .ok_or_else(|| anyhow::anyhow!("--family: {key:?} is not a material family"))?,
    };
    let point = match (near, latitude, longitude) {
        (Some(town), _, _) => {
            let place = symbiose_domain::geo::place(&town)
                .ok_or_else(|| anyhow::anyhow!("--near: {town:?} is not a town of the reference table"))?;
            Some(common::GeoPoint::from(place.point))
        }
        (None, Some(latitude), Some(longitude)) => Some(common::GeoPoint { latitude, longitude }),
        _ => None,
    };
    let price = |text: Option<String>| text.map(|text| price_minor(&text)).transpose();
    let request = symbiose_proto::catalog::v1::SearchCatalogRequest {
        side: side.map_or(listings::ListingSide::Unspecified, |side| match side {
            SideArg::Offer => listings::ListingSide::Offer,
            SideArg::Request => listings::ListingSide::Request,
        }) as i32,
        material_family: family.into(),
        waste_code: waste_code.unwrap_or_default(),
        waste_chapter: chapter.unwrap_or_default(),
        hazardous,
        legal_status: legal_status.map_or(listings::LegalStatus::Unspecified, |status| match status {
            LegalStatusArg::Waste => listings::LegalStatus::Waste,
            LegalStatusArg::ByProduct => listings::LegalStatus::ByProduct,
            LegalStatusArg::EndOfWaste => listings::LegalStatus::EndOfWaste,
            LegalStatusArg::ProductForReuse => listings::LegalStatus::ProductForReuse,
        }) as i32,
        pallet_grade: pallet_grade.map_or(listings::PalletGrade::Unspecified, |grade| match grade {
            GradeArg::New => listings::PalletGrade::New,
            GradeArg::A => listings::PalletGrade::A,
            GradeArg::B => listings::PalletGrade::B,
            GradeArg::C => listings::PalletGrade::C,
            GradeArg::Unsorted => listings::PalletGrade::Unsorted,
        }) as i32,
        radius_km: if point.is_some() { radius_km } else { 0 },
        near: point,
        countries: countries.iter().map(|code| country(code)).collect::<anyhow::Result<_>>()?,
        currency: currency.unwrap_or_default(),
        price_min_minor: price(price_min)?,
        price_max_minor: price(price_max)?,
        available_on_ms: 0,
        sort: sort.map_or(symbiose_proto::catalog::v1::CatalogSort::Unspecified, |sort| match sort {
            SortArg::Distance => symbiose_proto::catalog::v1::CatalogSort::Distance,
            SortArg::Price => symbiose_proto::catalog::v1::CatalogSort::Price,
            SortArg::Recency => symbiose_proto::catalog::v1::CatalogSort::Recency,
        }) as i32,
        page_size: limit,
        page_token: String::new(),
        language,
        min_position: 0,
    };
    let mut client = CatalogServiceClient::new(channel);
    let response = client.search_catalog(request).await.map_err(status_error)?.into_inner();
    if output.json(&response)? {
        return Ok(true);
    }
    let mut table = crate::cli_output::table(&[]);
    for entry in &response.entries {
        let available = entry
            .available
            .and_then(|quantity| symbiose_domain::Quantity::try_from(quantity).ok())
            .map_or_else(|| "0".to_owned(), |quantity| quantity.to_string());
        let price = entry
            .price_per_unit
            .clone()
            .and_then(|price| symbiose_domain::Money::try_from(price).ok())
            .map_or_else(|| "-".to_owned(), |price| price.to_string());
        let distance = entry.distance_km.map_or_else(|| "-".to_owned(), |km| format!("{km:.1} km"));
        table.add_row([
            distance,
            entry.side().as_str_name().trim_start_matches("LISTING_SIDE_").to_lowercase(),
            entry.material_family_label.clone(),
            available,
            format!("{price}/unit"),
            entry.country().as_str_name().trim_start_matches("COUNTRY_").to_lowercase(),
            entry.listing_id.clone(),
        ]);
    }
    right_align(&mut table, &[0, 3, 4]);
    if !response.entries.is_empty() {
        crate::cli_output::print_table(&mut table);
    }
    let more = if response.next_page_token.is_empty() { "" } else { ", more follow" };
    println!("({} listings{more})", response.entries.len());
    Ok(true)
}

pub(crate) fn country(code: &str) -> anyhow::Result<i32> {
    let country: symbiose_domain::Country =
        code.parse().map_err(|error| anyhow::anyhow!("--country: {error}"))?;
    Ok(common::Country::from(country).into())
}

fn roles(roles: &[Role]) -> Vec<i32> {
    roles.iter().map(|role| common::Role::from(*role).into()).collect()
}

async fn organization(channel: Authed, command: OrganizationCommand, output: Output) -> anyhow::Result<bool> {
    let mut client = OrganizationServiceClient::new(channel);
    match command {
        OrganizationCommand::Register { name, country: code, identifier, roles: wanted, request_id } => {
            let response = client
                .register_organization(listings::RegisterOrganizationRequest {
                    request_id,
                    legal_name: name,
                    country: country(&code)?,
                    legal_identifier: identifier,
                    roles: roles(&wanted),
                })
                .await
                .map_err(status_error)?
                .into_inner();
            println!("{}", response.organization_id);
        }
        OrganizationCommand::AddSite {
            organization,
            name,
            street,
            postal_code,
            city,
            country: code,
            latitude,
            longitude,
            request_id,
        } => {
            let response = client
                .add_site(listings::AddSiteRequest {
                    request_id,
                    organization_id: organization,
                    name,
                    address: Some(listings::Address { street, postal_code, city, country: country(&code)? }),
                    location: Some(common::GeoPoint { latitude, longitude }),
                })
                .await
                .map_err(status_error)?
                .into_inner();
            println!("{}", response.site_id);
        }
        OrganizationCommand::List { role, country: code } => {
            let role = role.map_or(0, |role| common::Role::from(role).into());
            let country = match code {
                Some(code) => country(&code)?,
                None => 0,
            };
            let mut page_token = String::new();
            let mut organizations = Vec::new();
            // At most 10,000 organizations: 50 pages of 200; more are said to follow.
            let mut more = false;
            for page in 0..50 {
                let request = listings::ListOrganizationsRequest {
                    role,
                    country,
                    page_size: 200,
                    page_token: page_token.clone(),
                    min_position: 0,
                };
                let response = client.list_organizations(request).await.map_err(status_error)?.into_inner();
                organizations.extend(response.organizations);
                if response.next_page_token.is_empty() {
                    break;
                }
                more = page == 49;
                page_token = response.next_page_token;
            }
            let whole = listings::ListOrganizationsResponse {
                organizations,
                next_page_token: if more { page_token } else { String::new() },
            };
            if output.json(&whole)? {
                return Ok(true);
            }
            let mut listed = crate::cli_output::table(&["id", "name", "country", "roles"]);
            for organization in &whole.organizations {
                let role_names: Vec<String> = organization
                    .roles
                    .iter()
                    .filter_map(|role| symbiose_proto::convert::role_from_wire(*role, "role").ok())
                    .map(|role| role.key().to_owned())
                    .collect();
                let country = symbiose_proto::convert::country_from_wire(organization.country, "country")
                    .map(|country| country.code().to_owned())
                    .unwrap_or_default();
                listed.add_row(vec![
                    organization.organization_id.clone(),
                    organization.legal_name.clone(),
                    country,
                    role_names.join(","),
                ]);
            }
            crate::cli_output::print_table(&mut listed);
            if more {
                println!("(the first {} organizations; more follow)", whole.organizations.len());
            }
        }
        OrganizationCommand::Show { organization } => {
            let response = client
                .get_organization(listings::GetOrganizationRequest { organization_id: organization })
                .await
                .map_err(status_error)?
                .into_inner();
            if output.json(&response)? {
                return Ok(true);
            }
            let organization =
                response.organization.ok_or_else(|| anyhow::anyhow!("the server answered nothing"))?;
            println!("id:          {}", organization.organization_id);
            println!("name:        {}", organization.legal_name);
            println!("identifier:  {}", organization.legal_identifier);
            let role_names: Vec<String> = organization
                .roles
                .iter()
                .filter_map(|role| symbiose_proto::convert::role_from_wire(*role, "role").ok())
                .map(|role| role.key().to_owned())
                .collect();
            println!("roles:       {}", role_names.join(", "));
            for site in &organization.sites {
                let address = site.address.clone().unwrap_or_default();
                let location = site.location.unwrap_or_default();
                println!(
                    "site:        {} ({}, {} {}) at {:.4}, {:.4} [{}]",
                    site.name,
                    address.street,
                    address.postal_code,
                    address.city,
                    location.latitude,
                    location.longitude,
                    site.site_id
                );
            }
            for contact in &organization.contacts {
                let parts = [&contact.name, &contact.email, &contact.phone, &contact.function];
                let parts: Vec<&str> =
                    parts.iter().map(|part| part.as_str()).filter(|part| !part.is_empty()).collect();
                println!("contact:     {}", parts.join("  "));
            }
            if organization.contacts_erased {
                println!("contacts:    erased");
            }
            println!("version:     {}", response.version);
        }
        OrganizationCommand::SetContacts { organization, person, email, phone, function, request_id } => {
            let contact = listings::Contact { name: person, email, phone, function };
            let response = client
                .set_contacts(listings::SetContactsRequest {
                    request_id,
                    organization_id: organization,
                    contacts: vec![contact],
                })
                .await
                .map_err(status_error)?
                .into_inner();
            println!("contacts set (version {})", response.version);
        }
        OrganizationCommand::EraseContacts { organization, request_id } => {
            let response = client
                .erase_contacts(listings::EraseContactsRequest { request_id, organization_id: organization })
                .await
                .map_err(status_error)?
                .into_inner();
            println!("contacts erased (version {})", response.version);
        }
    }
    Ok(true)
}

/// Aligns the `columns` of `table` (numbers, amounts) on the right.
fn right_align(table: &mut comfy_table::Table, columns: &[usize]) {
    for index in columns {
        if let Some(column) = table.column_mut(*index) {
            column.set_cell_alignment(comfy_table::CellAlignment::Right);
        }
    }
}

async fn token_command(channel: Authed, command: TokenCommand) -> anyhow::Result<bool> {
    let mut client = OrganizationServiceClient::new(channel);
    match command {
        TokenCommand::Issue { organization, roles: wanted, ttl_days } => {
            let response = client
                .issue_token(listings::IssueTokenRequest {
                    organization_id: organization,
                    roles: roles(&wanted),
                    ttl_days,
                })
                .await
                .map_err(status_error)?
                .into_inner();
            eprintln!("token id {}", response.token_id);
            println!("{}", response.token);
        }
        TokenCommand::Revoke { token_id } => {
            client.revoke_token(listings::RevokeTokenRequest { token_id }).await.map_err(status_error)?;
            println!("revoked");
        }
    }
    Ok(true)
}

/// How the client reaches `https://` addresses: --ca, and --client-cert with --client-key.
static CLIENT_TLS: std::sync::OnceLock<Option<symbiose_kit::config::ServicesTls>> =
    std::sync::OnceLock::new();

async fn connect(server: &str) -> anyhow::Result<Channel> {
    let mut endpoint = Channel::from_shared(server.to_owned())
        .map_err(|error| anyhow::anyhow!("--server {server:?} is not a URL: {error}"))?
        .connect_timeout(std::time::Duration::from_secs(5))
        .timeout(std::time::Duration::from_secs(30));
    if server.starts_with("https://") {
        let Some(tls) = CLIENT_TLS.get().and_then(Option::as_ref) else {
            anyhow::bail!(
                "{server} is https://: name the CA its certificate chains to with --ca (or SYMBIOSE_SERVICES_CA)"
            );
        };
        endpoint = endpoint
            .tls_config(symbiose_kit::client::client_tls_config(tls)?)
            .map_err(|error| anyhow::anyhow!("the TLS settings for {server}: {error}"))?;
    }
    endpoint
        .connect()
        .await
        .map_err(|error| anyhow::Error::new(error).context(format!("cannot reach {server}")))
}

/// A call the server answered with an error status, printed as `Code: message`.
#[derive(Debug)]
pub(crate) struct CallFailed(tonic::Status);

impl std::fmt::Display for CallFailed {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{:?}: {}", self.0.code(), self.0.message())
    }
}

impl std::error::Error for CallFailed {}

/// A call's failure as the user reads it. A connection that broke mid-call (the server
/// stopping, say) surfaces from the HTTP/2 layer as INTERNAL; it is said as UNAVAILABLE, what
/// gRPC names a server gone away, so a caller knows the call may be tried again (at another
/// replica), with the same request id.
pub(crate) fn status_error(status: tonic::Status) -> anyhow::Error {
    let status =
        if status.code() == tonic::Code::Internal && status.message().starts_with("h2 protocol error") {
            tonic::Status::unavailable(format!("the connection broke during the call ({})", status.message()))
        } else {
            status
        };
    anyhow::Error::new(CallFailed(status))
}

async fn health(channel: Channel) -> anyhow::Result<bool> {
    let response = HealthClient::new(channel)
        .check(tonic_health::pb::HealthCheckRequest { service: String::new() })
        .await
        .map_err(status_error)?
        .into_inner();
    let status = ServingStatus::try_from(response.status).unwrap_or(ServingStatus::Unknown);
    println!("{}", status.as_str_name());
    Ok(status == ServingStatus::Serving)
}

async fn search_waste_codes(
    channel: Authed,
    mut request: pb::ListWasteCodesRequest,
    limit: usize,
    output: Output,
) -> anyhow::Result<bool> {
    let mut client = ReferenceServiceClient::new(channel);
    let mut found = pb::ListWasteCodesResponse::default();
    while found.waste_codes.len() < limit {
        let response = client.list_waste_codes(request.clone()).await.map_err(status_error)?.into_inner();
        found.total_size = response.total_size;
        let wanted = limit - found.waste_codes.len();
        found.waste_codes.extend(response.waste_codes.into_iter().take(wanted));
        if response.next_page_token.is_empty() {
            break;
        }
        request.page_token = response.next_page_token;
    }
    if output.json(&found)? {
        return Ok(true);
    }
    let mut table = crate::cli_output::table(&[]);
    for entry in &found.waste_codes {
        table.add_row([&entry.display_code, &entry.description]);
    }
    if !found.waste_codes.is_empty() {
        crate::cli_output::print_table(&mut table);
    }
    println!("({} of {} codes)", found.waste_codes.len(), found.total_size);
    Ok(true)
}

async fn show_waste_code(channel: Authed, code: String, output: Output) -> anyhow::Result<bool> {
    let response = ReferenceServiceClient::new(channel)
        .get_waste_code(pb::GetWasteCodeRequest { code })
        .await
        .map_err(status_error)?
        .into_inner();
    if output.json(&response)? {
        return Ok(true);
    }
    let entry = response.waste_code.ok_or_else(|| anyhow::anyhow!("the server answered without a code"))?;
    let hazardous = entry.waste_code.as_ref().is_some_and(|code| code.hazardous);
    println!("code:        {}", entry.display_code);
    println!("description: {}", entry.description);
    println!("hazardous:   {}", if hazardous { "yes" } else { "no" });
    println!("entry type:  {}", entry_type_label(entry.entry_type()));
    println!("chapter:     {} {}", entry.chapter, entry.chapter_title);
    println!("sub-chapter: {} {}", entry.sub_chapter, entry.sub_chapter_title);
    Ok(true)
}

fn entry_type_label(entry_type: pb::WasteEntryType) -> &'static str {
    match entry_type {
        pb::WasteEntryType::AbsoluteHazardous => "absolute hazardous",
        pb::WasteEntryType::MirrorHazardous => "mirror hazardous (its pair is the non-hazardous entry)",
        pb::WasteEntryType::AbsoluteNonHazardous => "absolute non-hazardous",
        pb::WasteEntryType::MirrorNonHazardous => "mirror non-hazardous (its pair is the hazardous entry)",
        pb::WasteEntryType::Unspecified => "unspecified",
    }
}

async fn families(channel: Authed, output: Output) -> anyhow::Result<bool> {
    let response = ReferenceServiceClient::new(channel)
        .list_material_families(pb::ListMaterialFamiliesRequest {})
        .await
        .map_err(status_error)?
        .into_inner();
    if output.json(&response)? {
        return Ok(true);
    }
    let mut table = crate::cli_output::table(&[]);
    for family in response.families {
        let label = family.label.unwrap_or_default();
        table.add_row([family.key, format!("{} | {} | {}", label.en, label.fr, label.de)]);
    }
    crate::cli_output::print_table(&mut table);
    Ok(true)
}

async fn validate_identifier(
    channel: Authed,
    identifier: String,
    kind: Option<KindArg>,
    output: Output,
) -> anyhow::Result<bool> {
    let kind = kind.map_or(pb::IdentifierKind::Unspecified, |kind| match kind {
        KindArg::Siren => pb::IdentifierKind::Siren,
        KindArg::Siret => pb::IdentifierKind::Siret,
        KindArg::FrVat => pb::IdentifierKind::FrVat,
        KindArg::DeVat => pb::IdentifierKind::DeVat,
        KindArg::ChUid => pb::IdentifierKind::ChUid,
        KindArg::BeEnterprise => pb::IdentifierKind::BeEnterprise,
        KindArg::BeVat => pb::IdentifierKind::BeVat,
        KindArg::LuVat => pb::IdentifierKind::LuVat,
    });
    let response = ReferenceServiceClient::new(channel)
        .validate_identifier(pb::ValidateIdentifierRequest { identifier, kind: kind.into() })
        .await
        .map_err(status_error)?
        .into_inner();
    if output.json(&response)? {
        return Ok(response.valid);
    }
    let kind = response.kind().as_str_name().trim_start_matches("IDENTIFIER_KIND_").to_owned();
    let country = symbiose_proto::convert::country_from_wire(response.country, "country")
        .map(|country| country.code())
        .unwrap_or("unknown country");
    if response.valid {
        println!("valid: {kind} {} ({country})", response.display_form);
    } else {
        println!("not valid: {}", response.reason);
    }
    Ok(response.valid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_broken_mid_call_is_said_unavailable_and_other_failures_as_they_are() {
        let broken = status_error(tonic::Status::internal("h2 protocol error: http2 error")).to_string();
        assert_eq!(
            broken,
            "Unavailable: the connection broke during the call (h2 protocol error: http2 error)"
        );
        assert_eq!(status_error(tonic::Status::internal("a bug")).to_string(), "Internal: a bug");
    }

    #[test]
    fn prices_are_read_as_exact_minor_units() {
        assert_eq!(price_minor("3.50").expect("price"), 350);
        assert_eq!(price_minor("3.5").expect("price"), 350);
        assert_eq!(price_minor("-12").expect("price"), -1200);
        assert_eq!(price_minor("0").expect("price"), 0);
        for bad in ["", "3.505", "abc", "1e3", "-", "3,50"] {
            assert!(price_minor(bad).is_err(), "{bad}");
        }
    }
}
