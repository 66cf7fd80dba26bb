//! The command-line client of the territory context: territories' figures and their
//! comparison, the flows across borders, an organization's supply diagnosis, and the legal
//! waste registers written to a file.

use clap::{Subcommand, ValueEnum};
use symbiose_proto::territory::v1 as pb;
use symbiose_proto::territory::v1::territory_service_client::TerritoryServiceClient;
use tokio::io::AsyncWriteExt;

use crate::cli::{Authed, Output, status_error};
use crate::cli_output::{print_table, table};

#[derive(Debug, Subcommand)]
pub enum TerritoryCommand {
    /// Every territory figures are kept for, with its code.
    List,
    /// A territory's figures over a period: what was exchanged, how far it travelled, what it
    /// saved (public aggregates: a figure of fewer than 3 producers or receivers is withheld).
    Figures {
        /// The territory's code: FR-67, DE-08317, CH-BS, LU, strasbourg-ortenau...
        territory: String,
        /// A year (2026), a quarter (2026-Q3), a month (2026-11) or days (2026-01-15..2026-02-14).
        #[arg(long)]
        period: String,
        /// Compare with this period.
        #[arg(long)]
        baseline: Option<String>,
    },
    /// The origin-destination matrix of a period's deliveries, by country or by region.
    Flows {
        /// A year, a quarter, a month or days.
        #[arg(long)]
        period: String,
        /// Only the deliveries from or to this territory.
        #[arg(long)]
        territory: Option<String>,
        /// Name places by region (département, Kreis, canton) instead of country.
        #[arg(long)]
        regions: bool,
    },
    /// What the open offers within 50, 100 and 200 km could supply to an organization: each of
    /// its open requests, each family it bought over the last year.
    Diagnose {
        /// The organization (yours, unless you are the operator).
        #[arg(long)]
        organization: String,
    },
}

/// A register of the arrêté du 31 mai 2021.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RegisterArg {
    /// Outgoing waste (déchets sortants).
    Outgoing,
    /// Incoming waste (déchets entrants).
    Incoming,
    /// Transported waste (déchets transportés).
    Transported,
    /// Managed waste (déchets gérés): the platform's brokerage (operator).
    Managed,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FormatArg {
    Csv,
    Xlsx,
}

#[derive(Debug, Subcommand)]
pub enum RegisterCommand {
    /// Writes an organization's register over a period to a file (CSV: UTF-8, `;`; or XLSX).
    Export {
        /// Which register.
        #[arg(long, value_enum)]
        kind: RegisterArg,
        /// The organization (yours, unless you are the operator); not for `managed`.
        #[arg(long, default_value = "")]
        organization: String,
        /// A year, a quarter, a month (2026-11) or days.
        #[arg(long)]
        period: String,
        #[arg(long, value_enum, default_value = "csv")]
        format: FormatArg,
        /// The file to write; by default the name the server gives, in the current directory.
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
}

fn kg(value: i64) -> String {
    format!("{:.3} t", value as f64 / 1000.0)
}

fn percent(bp: u32) -> String {
    format!("{:.1} %", f64::from(bp) / 100.0)
}

fn family_name(value: i32) -> String {
    symbiose_proto::common::v1::MaterialFamily::try_from(value)
        .map(|family| family.as_str_name().trim_start_matches("MATERIAL_FAMILY_").to_lowercase())
        .unwrap_or_else(|_| value.to_string())
}

fn print_figures(figures: &pb::Figures) {
    let total = figures.total.clone().unwrap_or_default();
    println!("{} ({}), {}", figures.territory_name, figures.territory, figures.period);
    if figures.total_withheld {
        println!("volumes: withheld (fewer than 3 producers or 3 receivers)");
    } else {
        println!("deliveries: {}", total.shipments);
        println!("accepted: {} (delivered {})", kg(total.accepted_kg), kg(total.delivered_kg));
        if figures.distance_withheld {
            println!("travelled: withheld (a band of distance of fewer than 3 producers or 3 receivers)");
        } else {
            let within: Vec<String> = figures
                .share_within_bp
                .iter()
                .zip(["50", "100", "200"])
                .map(|(share, km)| format!("{} within {km} km", percent(*share)))
                .collect();
            println!("travelled: {}", within.join(", "));
        }
        println!("transport: {:.1} km, {:.1} kg CO2e", figures.transport_km, figures.transport_co2_kg);
        println!("  factor: {} ({})", figures.emission_factor_source, figures.emission_factor_version);
        if figures.pallets_withheld {
            println!("EUR pallets reused: withheld");
        } else {
            println!("EUR pallets reused: {}", figures.pallets_reused);
        }
        if figures.water_withheld {
            println!("process water reused: withheld");
        } else {
            println!("process water reused: {:.3} m3", figures.water_reused_litres as f64 / 1000.0);
        }
        let avoided = figures.gate_fees_avoided.as_ref().map_or(0, |money| money.amount_minor);
        println!(
            "disposal costs avoided: {:.2} EUR ({})",
            avoided as f64 / 100.0,
            figures.disposal_reference_source
        );
    }
    println!(
        "active: {} producers, {} receivers, {} carriers",
        figures.active_producers, figures.active_receivers, figures.active_carriers
    );
    println!(
        "partnerships: {} ({} across a border)",
        figures.partnerships, figures.cross_border_partnerships
    );
    let mut families = table(&["family", "deliveries", "delivered", "accepted"]);
    for row in &figures.families {
        let volumes = row.volumes.clone().unwrap_or_default();
        if row.withheld {
            families.add_row(vec![
                family_name(row.family),
                "withheld".to_owned(),
                String::new(),
                String::new(),
            ]);
        } else {
            families.add_row(vec![
                family_name(row.family),
                volumes.shipments.to_string(),
                kg(volumes.delivered_kg),
                kg(volumes.accepted_kg),
            ]);
        }
    }
    print_table(&mut families);
    print_flows(&figures.flows_by_country);
}

fn print_flows(flows: &[pb::Flow]) {
    let mut cells = table(&["from", "to", "deliveries", "accepted"]);
    for flow in flows {
        if flow.withheld {
            cells.add_row(vec![
                flow.origin.clone(),
                flow.destination.clone(),
                "withheld".to_owned(),
                String::new(),
            ]);
        } else {
            cells.add_row(vec![
                flow.origin.clone(),
                flow.destination.clone(),
                flow.shipments.to_string(),
                kg(flow.accepted_kg),
            ]);
        }
    }
    print_table(&mut cells);
}

pub async fn territory_command(
    channel: Authed,
    command: TerritoryCommand,
    output: Output,
) -> anyhow::Result<bool> {
    let mut client = TerritoryServiceClient::new(channel);
    match command {
        TerritoryCommand::List => {
            let response = client
                .list_territories(pb::ListTerritoriesRequest {})
                .await
                .map_err(status_error)?
                .into_inner();
            if output.json(&response)? {
                return Ok(true);
            }
            let mut territories = table(&["code", "name", "towns"]);
            for territory in &response.territories {
                territories.add_row(vec![
                    territory.code.clone(),
                    territory.name.clone(),
                    territory.towns.join(", "),
                ]);
            }
            print_table(&mut territories);
        }
        TerritoryCommand::Figures { territory, period, baseline: None } => {
            let response = client
                .get_figures(pb::GetFiguresRequest { territory, period })
                .await
                .map_err(status_error)?
                .into_inner();
            if output.json(&response)? {
                return Ok(true);
            }
            print_figures(&response.figures.unwrap_or_default());
        }
        TerritoryCommand::Figures { territory, period, baseline: Some(baseline_period) } => {
            let response = client
                .compare_figures(pb::CompareFiguresRequest { territory, period, baseline_period })
                .await
                .map_err(status_error)?
                .into_inner();
            if output.json(&response)? {
                return Ok(true);
            }
            print_figures(&response.current.unwrap_or_default());
            let mut changes = table(&["figure", "baseline", "current", "change"]);
            for change in &response.changes {
                if change.withheld {
                    changes.add_row(vec![
                        change.figure.clone(),
                        "withheld".to_owned(),
                        String::new(),
                        String::new(),
                    ]);
                } else {
                    changes.add_row(vec![
                        change.figure.clone(),
                        format!("{:.1}", change.baseline),
                        format!("{:.1}", change.current),
                        format!("{:+.1} %", change.change_bp as f64 / 100.0),
                    ]);
                }
            }
            print_table(&mut changes);
        }
        TerritoryCommand::Flows { period, territory, regions } => {
            let level = if regions { pb::FlowLevel::Region } else { pb::FlowLevel::Country };
            let request =
                pb::GetFlowsRequest { territory: territory.unwrap_or_default(), period, level: level.into() };
            let response = client.get_flows(request).await.map_err(status_error)?.into_inner();
            if output.json(&response)? {
                return Ok(true);
            }
            print_flows(&response.flows);
        }
        TerritoryCommand::Diagnose { organization } => {
            let request = pb::DiagnoseSupplyRequest { organization_id: organization };
            let response = client.diagnose_supply(request).await.map_err(status_error)?.into_inner();
            if output.json(&response)? {
                return Ok(true);
            }
            let mut needs =
                table(&["need", "family", "needed", "within 50 km", "within 100 km", "within 200 km"]);
            for need in response.requests.iter().chain(&response.families) {
                let needed = need.needed.unwrap_or_default();
                let unit = symbiose_proto::convert::unit_from_wire(needed.unit, "unit")
                    .map(|unit| unit.symbol())
                    .unwrap_or_default();
                let mut row = vec![
                    if need.request_id.is_empty() {
                        "bought over the last year".to_owned()
                    } else {
                        need.request_id.clone()
                    },
                    family_name(need.family),
                    format!("{:.3} {unit}", needed.amount_milli as f64 / 1000.0),
                ];
                for coverage in &need.coverage {
                    row.push(format!(
                        "{} ({} offers, {:.1} kg CO2e)",
                        percent(coverage.share_bp),
                        coverage.offers,
                        coverage.co2_kg
                    ));
                }
                needs.add_row(row);
            }
            print_table(&mut needs);
        }
    }
    Ok(true)
}

pub async fn register_command(channel: Authed, command: RegisterCommand) -> anyhow::Result<bool> {
    let mut client = TerritoryServiceClient::new(channel);
    let RegisterCommand::Export { kind, organization, period, format, out } = command;
    let kind = match kind {
        RegisterArg::Outgoing => pb::RegisterKind::Outgoing,
        RegisterArg::Incoming => pb::RegisterKind::Incoming,
        RegisterArg::Transported => pb::RegisterKind::Transported,
        RegisterArg::Managed => pb::RegisterKind::Managed,
    };
    let format = match format {
        FormatArg::Csv => pb::ExportFormat::Csv,
        FormatArg::Xlsx => pb::ExportFormat::Xlsx,
    };
    let request = pb::ExportRegisterRequest {
        organization_id: organization,
        kind: kind.into(),
        period,
        format: format.into(),
    };
    let mut chunks = client.export_register(request).await.map_err(status_error)?.into_inner();
    let mut file: Option<(std::path::PathBuf, tokio::fs::File)> = None;
    let mut rows = None;
    while let Some(chunk) = chunks.message().await.map_err(status_error)? {
        if file.is_none() {
            let path = out.clone().unwrap_or_else(|| std::path::PathBuf::from(&chunk.file_name));
            let created = tokio::fs::File::create(&path)
                .await
                .map_err(|error| anyhow::anyhow!("{}: {error}", path.display()))?;
            file = Some((path, created));
        }
        if let Some((_, file)) = &mut file {
            file.write_all(&chunk.data).await?;
        }
        if chunk.last {
            rows = Some(chunk.rows);
        }
    }
    let (Some((path, mut file)), Some(rows)) = (file, rows) else {
        anyhow::bail!("the register's export ended before its last chunk");
    };
    file.flush().await?;
    file.sync_all().await?;
    println!("{}: {rows} rows", path.display());
    Ok(true)
}
