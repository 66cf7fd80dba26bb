//! The command-line client: what a person tries first against a running server.

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use symbiose_proto::reference::v1 as pb;
use symbiose_proto::reference::v1::reference_service_client::ReferenceServiceClient;
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// Most codes `waste-codes search` prints.
const SEARCH_LIMIT_MAX: usize = 1000;

#[derive(Debug, Parser)]
#[command(
    name = "symbiose",
    version,
    about = "Symbiose: a marketplace backend for industrial waste and by-products"
)]
pub struct Cli {
    /// Address of the server, for the client subcommands.
    #[arg(long, global = true, env = "SYMBIOSE_SERVER", default_value = "http://127.0.0.1:50051")]
    pub server: String,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the standalone server (the default); configured by SYMBIOSE_* variables.
    Serve,
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
pub async fn run(server: &str, command: Command) -> ExitCode {
    match execute(server, command).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}

async fn execute(server: &str, command: Command) -> anyhow::Result<bool> {
    let channel = connect(server).await?;
    match command {
        Command::Serve => anyhow::bail!("serve is not a client subcommand"),
        Command::Health => health(channel).await,
        Command::WasteCodes(WasteCodesCommand::Search { text, chapter, sub_chapter, hazardous, limit }) => {
            let request = pb::ListWasteCodesRequest {
                chapter: chapter.unwrap_or_default(),
                sub_chapter: sub_chapter.unwrap_or_default(),
                hazardous,
                text: text.unwrap_or_default(),
                page_size: 0,
                page_token: String::new(),
            };
            search_waste_codes(channel, request, limit.min(SEARCH_LIMIT_MAX)).await
        }
        Command::WasteCodes(WasteCodesCommand::Show { code }) => show_waste_code(channel, code).await,
        Command::Families => families(channel).await,
        Command::Identifier(IdentifierCommand::Validate { identifier, kind }) => {
            validate_identifier(channel, identifier, kind).await
        }
    }
}

async fn connect(server: &str) -> anyhow::Result<Channel> {
    let endpoint = Channel::from_shared(server.to_owned())
        .map_err(|error| anyhow::anyhow!("--server {server:?} is not a URL: {error}"))?
        .connect_timeout(std::time::Duration::from_secs(5))
        .timeout(std::time::Duration::from_secs(30));
    endpoint.connect().await.map_err(|error| anyhow::anyhow!("cannot reach {server}: {error}"))
}

fn status_error(status: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{:?}: {}", status.code(), status.message())
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
    channel: Channel,
    mut request: pb::ListWasteCodesRequest,
    limit: usize,
) -> anyhow::Result<bool> {
    let mut client = ReferenceServiceClient::new(channel);
    let mut printed = 0;
    let mut total = 0;
    while printed < limit {
        let response = client.list_waste_codes(request.clone()).await.map_err(status_error)?.into_inner();
        total = response.total_size;
        for entry in response.waste_codes.iter().take(limit - printed) {
            println!("{:<10} {}", entry.display_code, entry.description);
            printed += 1;
        }
        if response.next_page_token.is_empty() {
            break;
        }
        request.page_token = response.next_page_token;
    }
    println!("({printed} of {total} codes)");
    Ok(true)
}

async fn show_waste_code(channel: Channel, code: String) -> anyhow::Result<bool> {
    let response = ReferenceServiceClient::new(channel)
        .get_waste_code(pb::GetWasteCodeRequest { code })
        .await
        .map_err(status_error)?
        .into_inner();
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

async fn families(channel: Channel) -> anyhow::Result<bool> {
    let response = ReferenceServiceClient::new(channel)
        .list_material_families(pb::ListMaterialFamiliesRequest {})
        .await
        .map_err(status_error)?
        .into_inner();
    for family in response.families {
        let label = family.label.unwrap_or_default();
        println!("{:<14} {} | {} | {}", family.key, label.en, label.fr, label.de);
    }
    Ok(true)
}

async fn validate_identifier(
    channel: Channel,
    identifier: String,
    kind: Option<KindArg>,
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
