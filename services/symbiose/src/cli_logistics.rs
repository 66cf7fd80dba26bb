//! The command-line client of logistics: carrier profiles, quotes, shipments from booking to
//! acceptance, pallet balances and the Annex VII document.

use clap::Subcommand;
use symbiose_proto::common::v1 as common;
use symbiose_proto::listings::v1 as listings;
use symbiose_proto::logistics::v1 as pb;
use symbiose_proto::logistics::v1::logistics_service_client::LogisticsServiceClient;

use crate::cli::{Authed, GradeArg, Output, country, price_minor, status_error};
use crate::cli_matching::{money, quantity as show_quantity};

#[derive(Debug, Subcommand)]
pub enum CarrierCommand {
    /// Register (or replace) your carrier profile.
    Register(Box<RegisterCarrierArgs>),
}

#[derive(Debug, clap::Args)]
pub struct RegisterCarrierArgs {
    /// A depot at a town of the reference table (repeat for several).
    #[arg(long, required = true)]
    depot: Vec<String>,
    /// The countries served: FR,DE.
    #[arg(long, value_delimiter = ',', required = true)]
    countries: Vec<String>,
    /// A place is served within this distance of a depot.
    #[arg(long)]
    radius_km: u32,
    /// A vehicle: "name:payload kg:pallet places", with ":tail-lift" and ":adr" as it has them
    /// (repeat for several).
    #[arg(long, required = true)]
    vehicle: Vec<String>,
    /// Per road km, decimal: "1.80".
    #[arg(long)]
    per_km: String,
    /// Per tonne carried, decimal.
    #[arg(long)]
    per_tonne: String,
    /// The minimum charge, decimal.
    #[arg(long)]
    minimum: String,
    #[arg(long, default_value = "EUR")]
    currency: String,
    /// Takes on EUR pallet exchange.
    #[arg(long)]
    pallet_exchange: bool,
}

#[derive(Debug, Subcommand)]
pub enum QuoteCommand {
    /// The valid quotes of a deal's transport, cheapest first.
    List { deal: String },
    /// Answer a deal's transport with your own price (a carrier).
    Submit {
        deal: String,
        /// Decimal: "85.00".
        #[arg(long)]
        price: String,
        #[arg(long, default_value = "EUR")]
        currency: String,
        #[arg(long, default_value_t = 48)]
        valid_hours: u32,
    },
}

/// Pallets exchanged at a stop.
#[derive(Debug, clap::Args)]
pub struct ExchangeArgs {
    #[arg(long, value_enum)]
    pallet_grade: Option<GradeArg>,
    /// Pallets the carrier handed over.
    #[arg(long, default_value_t = 0)]
    handed_over: u32,
    /// Pallets the carrier took.
    #[arg(long, default_value_t = 0)]
    taken_back: u32,
}

#[derive(Debug, Subcommand)]
pub enum ShipmentCommand {
    /// Book a quote for a deal's transport (a party of the deal): prints the shipment.
    Book {
        deal: String,
        #[arg(long)]
        quote: String,
        /// Required for hazardous waste crossing a border.
        #[arg(long, default_value = "")]
        prior_notification: String,
    },
    /// Report the pickup (the carrier), with the quantity counted or weighed.
    Pickup {
        shipment: String,
        #[arg(long)]
        quantity: String,
        #[arg(long)]
        unit: String,
        #[command(flatten)]
        pallets: ExchangeArgs,
    },
    /// Report a border crossing (the carrier): the country entered.
    Border {
        shipment: String,
        #[arg(long)]
        country: String,
    },
    /// Report the delivery (the carrier): received, accepted and refused.
    Deliver {
        shipment: String,
        #[arg(long)]
        received: String,
        #[arg(long)]
        accepted: String,
        #[arg(long, default_value = "0")]
        refused: String,
        #[arg(long)]
        unit: String,
        #[arg(long, default_value = "")]
        reason: String,
        #[command(flatten)]
        pallets: ExchangeArgs,
    },
    /// Confirm what was accepted (the receiver): the shipment closes.
    Accept { shipment: String },
    /// A shipment with its history.
    Show { shipment: String },
    /// The Annex VII document of a cross-border shipment of green-listed waste.
    AnnexVii {
        shipment: String,
        /// Also write the document as a PDF to this file (replaced if it exists).
        #[arg(long, value_name = "FILE")]
        pdf: Option<std::path::PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum PalletCommand {
    /// Your EUR pallet balances: positive, the counterparty owes you.
    Balances,
    /// Settle pallets owed: by a return (recorded by the one who receives them) or, with
    /// --payment, by a payment (made by the one who owes them).
    Settle {
        #[arg(long)]
        counterparty: String,
        #[arg(long, value_enum)]
        pallet_grade: GradeArg,
        #[arg(long)]
        count: u32,
        /// Decimal amount paid for them.
        #[arg(long)]
        payment: Option<String>,
        #[arg(long, default_value = "EUR")]
        currency: String,
    },
}

fn grade(grade: GradeArg) -> i32 {
    match grade {
        GradeArg::New => listings::PalletGrade::New,
        GradeArg::A => listings::PalletGrade::A,
        GradeArg::B => listings::PalletGrade::B,
        GradeArg::C => listings::PalletGrade::C,
        GradeArg::Unsorted => listings::PalletGrade::Unsorted,
    }
    .into()
}

fn grade_name(value: i32) -> String {
    listings::PalletGrade::try_from(value)
        .map_or("?", |grade| grade.as_str_name().trim_start_matches("PALLET_GRADE_"))
        .to_lowercase()
}

fn quantity(amount: &str, unit: &str, flag: &str) -> anyhow::Result<common::Quantity> {
    let unit = symbiose_domain::Unit::from_symbol(unit)
        .ok_or_else(|| anyhow::anyhow!("--unit: {unit:?} is not kg, t, l, m3, piece or pallet"))?;
    let quantity = symbiose_domain::Quantity::parse(amount, unit, true)
        .map_err(|error| anyhow::anyhow!("{flag}: {error}"))?;
    Ok(quantity.into())
}

fn exchange(arguments: ExchangeArgs) -> anyhow::Result<Option<pb::PalletExchange>> {
    if arguments.handed_over == 0 && arguments.taken_back == 0 {
        return Ok(None);
    }
    let pallet_grade = arguments
        .pallet_grade
        .ok_or_else(|| anyhow::anyhow!("--pallet-grade: required with pallets exchanged"))?;
    Ok(Some(pb::PalletExchange {
        grade: grade(pallet_grade),
        handed_over: arguments.handed_over,
        taken_back: arguments.taken_back,
    }))
}

fn vehicle(text: &str) -> anyhow::Result<pb::Vehicle> {
    let invalid =
        || anyhow::anyhow!("--vehicle: {text:?} is not \"name:payload kg:pallet places[:tail-lift][:adr]\"");
    let mut parts = text.split(':');
    let name = parts.next().filter(|name| !name.trim().is_empty()).ok_or_else(invalid)?;
    let payload_kg = parts.next().and_then(|value| value.trim().parse().ok()).ok_or_else(invalid)?;
    let pallet_places = parts.next().and_then(|value| value.trim().parse().ok()).ok_or_else(invalid)?;
    let mut vehicle = pb::Vehicle {
        vehicle_id: String::new(),
        name: name.trim().to_owned(),
        payload_kg,
        pallet_places,
        tail_lift: false,
        dangerous_goods: false,
    };
    for flag in parts {
        match flag.trim() {
            "tail-lift" => vehicle.tail_lift = true,
            "adr" => vehicle.dangerous_goods = true,
            _ => return Err(invalid()),
        }
    }
    Ok(vehicle)
}

fn country_name(value: i32) -> String {
    common::Country::try_from(value)
        .map_or("?", |country| country.as_str_name().trim_start_matches("COUNTRY_"))
        .to_lowercase()
}

fn print_quote(quote: &pb::Quote) {
    let expires = quote.expires_at.map(|at| at.to_string()).unwrap_or_default();
    println!(
        "quote {}  {}  carrier {}  {:.1} km by road, {} min, {:.1} kg CO2e{}  until {expires}",
        quote.quote_id,
        money(quote.price.as_ref()),
        quote.carrier_organization_id,
        quote.road_distance_km,
        quote.duration_minutes,
        quote.co2_kg,
        if quote.automatic {
            format!("  ({})", quote.vehicle)
        } else {
            "  (the carrier's own price)".to_owned()
        },
    );
}

fn print_shipment(shipment: &pb::Shipment) {
    let state = pb::ShipmentState::try_from(shipment.state)
        .map_or("?", |state| state.as_str_name().trim_start_matches("SHIPMENT_STATE_"))
        .to_lowercase();
    println!("shipment {}  {state}", shipment.shipment_id);
    println!(
        "  deal {}  carrier {}  {} -> {}{}",
        shipment.deal_id,
        shipment.carrier_organization_id,
        country_name(shipment.pickup_country),
        country_name(shipment.delivery_country),
        if shipment.pallet_exchange { "  pallet exchange" } else { "" }
    );
    println!("  expected {}", show_quantity(shipment.expected.as_ref()));
    for step in &shipment.history {
        let state = pb::ShipmentState::try_from(step.state)
            .map_or("?", |state| state.as_str_name().trim_start_matches("SHIPMENT_STATE_"))
            .to_lowercase();
        let mut line = format!("  {}  {state}", step.at.map(|at| at.to_string()).unwrap_or_default());
        if step.country != 0 {
            line.push_str(&format!("  into {}", country_name(step.country)));
        }
        if step.quantity.is_some() {
            line.push_str(&format!("  {}", show_quantity(step.quantity.as_ref())));
        }
        if let Some(pallets) = &step.pallets {
            line.push_str(&format!(
                "  pallets {}: {} handed over, {} taken",
                grade_name(pallets.grade),
                pallets.handed_over,
                pallets.taken_back
            ));
        }
        if !step.note.is_empty() {
            line.push_str(&format!("  ({})", step.note));
        }
        println!("{line}");
    }
}

pub async fn carrier_command(channel: Authed, command: CarrierCommand) -> anyhow::Result<bool> {
    let CarrierCommand::Register(arguments) = command;
    let RegisterCarrierArgs {
        depot,
        countries,
        radius_km,
        vehicle: vehicles,
        per_km,
        per_tonne,
        minimum,
        currency,
        pallet_exchange,
    } = *arguments;
    let depots = depot
        .iter()
        .map(|town| {
            let place = symbiose_domain::geo::place(town)
                .ok_or_else(|| anyhow::anyhow!("--depot: {town:?} is not a town of the reference table"))?;
            Ok(pb::Depot {
                depot_id: String::new(),
                name: town.clone(),
                location: Some(place.point.into()),
                country: common::Country::from(place.country).into(),
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let profile = pb::CarrierProfile {
        carrier_organization_id: String::new(),
        depots,
        countries: countries.iter().map(|code| country(code)).collect::<anyhow::Result<_>>()?,
        radius_km,
        vehicles: vehicles.iter().map(|text| vehicle(text)).collect::<anyhow::Result<_>>()?,
        rates: Some(pb::Rates {
            per_km_minor: price_minor(&per_km)?,
            per_tonne_minor: price_minor(&per_tonne)?,
            minimum_charge_minor: price_minor(&minimum)?,
            currency_code: currency,
        }),
        pallet_exchange,
    };
    let mut client = LogisticsServiceClient::new(channel);
    let request = pb::RegisterCarrierRequest { request_id: String::new(), profile: Some(profile) };
    let registered = client.register_carrier(request).await.map_err(status_error)?.into_inner();
    println!("carrier profile registered (version {})", registered.version);
    Ok(true)
}

pub async fn quote_command(channel: Authed, command: QuoteCommand, output: Output) -> anyhow::Result<bool> {
    let mut client = LogisticsServiceClient::new(channel);
    match command {
        QuoteCommand::List { deal } => {
            let (mut quotes, mut page_token) = (Vec::new(), String::new());
            loop {
                let request = pb::ListQuotesRequest {
                    deal_id: deal.clone(),
                    min_position: 0,
                    page_size: 0,
                    page_token,
                };
                let page = client.list_quotes(request).await.map_err(status_error)?.into_inner();
                quotes.extend(page.quotes);
                if page.next_page_token.is_empty() {
                    break;
                }
                page_token = page.next_page_token;
            }
            let listed = pb::ListQuotesResponse { quotes, next_page_token: String::new() };
            if output.json(&listed)? {
                return Ok(true);
            }
            listed.quotes.iter().for_each(print_quote);
            println!("({} quotes)", listed.quotes.len());
        }
        QuoteCommand::Submit { deal, price, currency, valid_hours } => {
            let request = pb::SubmitQuoteRequest {
                request_id: String::new(),
                deal_id: deal,
                price: Some(common::Money { amount_minor: price_minor(&price)?, currency_code: currency }),
                valid_hours,
            };
            let submitted = client.submit_quote(request).await.map_err(status_error)?.into_inner();
            if let Some(quote) = &submitted.quote {
                print_quote(quote);
            }
        }
    }
    Ok(true)
}

pub async fn shipment_command(
    channel: Authed,
    command: ShipmentCommand,
    output: Output,
) -> anyhow::Result<bool> {
    let mut client = LogisticsServiceClient::new(channel);
    let shipment = match command {
        ShipmentCommand::Book { deal, quote, prior_notification } => {
            let request = pb::BookShipmentRequest {
                request_id: String::new(),
                deal_id: deal,
                quote_id: quote,
                prior_notification_number: prior_notification,
            };
            client.book_shipment(request).await.map_err(status_error)?.into_inner().shipment
        }
        ShipmentCommand::Pickup { shipment, quantity: amount, unit, pallets } => {
            let request = pb::ReportPickupRequest {
                request_id: String::new(),
                shipment_id: shipment,
                quantity: Some(quantity(&amount, &unit, "--quantity")?),
                pallets: exchange(pallets)?,
            };
            client.report_pickup(request).await.map_err(status_error)?.into_inner().shipment
        }
        ShipmentCommand::Border { shipment, country: code } => {
            let request = pb::ReportBorderCrossingRequest {
                request_id: String::new(),
                shipment_id: shipment,
                country: country(&code)?,
                at: None,
            };
            client.report_border_crossing(request).await.map_err(status_error)?.into_inner().shipment
        }
        ShipmentCommand::Deliver { shipment, received, accepted, refused, unit, reason, pallets } => {
            let request = pb::ReportDeliveryRequest {
                request_id: String::new(),
                shipment_id: shipment,
                received: Some(quantity(&received, &unit, "--received")?),
                accepted: Some(quantity(&accepted, &unit, "--accepted")?),
                refused: match refused.trim() {
                    "0" | "0.0" | "0.000" => None,
                    refused => Some(quantity(refused, &unit, "--refused")?),
                },
                refusal_reason: reason,
                pallets: exchange(pallets)?,
            };
            client.report_delivery(request).await.map_err(status_error)?.into_inner().shipment
        }
        ShipmentCommand::Accept { shipment } => {
            let request = pb::ConfirmAcceptanceRequest { request_id: String::new(), shipment_id: shipment };
            client.confirm_acceptance(request).await.map_err(status_error)?.into_inner().shipment
        }
        ShipmentCommand::Show { shipment } => {
            let request = pb::GetShipmentRequest { shipment_id: shipment, min_position: 0 };
            let shown = client.get_shipment(request).await.map_err(status_error)?.into_inner();
            if output.json(&shown)? {
                return Ok(true);
            }
            shown.shipment
        }
        ShipmentCommand::AnnexVii { shipment, pdf } => {
            let request =
                pb::GetAnnexViiRequest { shipment_id: shipment, min_position: 0, include_pdf: pdf.is_some() };
            let annex = client.get_annex_vii(request).await.map_err(status_error)?.into_inner();
            if pdf.is_none() && output.json(&annex)? {
                return Ok(true);
            }
            print!("{}", annex.text);
            if let Some(path) = pdf {
                anyhow::Context::with_context(std::fs::write(&path, &annex.pdf), || {
                    format!("writing the PDF to {}", path.display())
                })?;
                eprintln!("PDF written to {} ({} bytes)", path.display(), annex.pdf.len());
            }
            return Ok(true);
        }
    };
    if let Some(shipment) = &shipment {
        print_shipment(shipment);
    }
    Ok(true)
}

pub async fn pallet_command(channel: Authed, command: PalletCommand, output: Output) -> anyhow::Result<bool> {
    let mut client = LogisticsServiceClient::new(channel);
    let print = |balance: &pb::PalletBalance| {
        println!(
            "{}  grade {}  {:+}",
            balance.counterparty_organization_id,
            grade_name(balance.grade),
            balance.pallets
        );
    };
    match command {
        PalletCommand::Balances => {
            let request = pb::GetPalletBalancesRequest { min_position: 0 };
            let response = client.get_pallet_balances(request).await.map_err(status_error)?.into_inner();
            if output.json(&response)? {
                return Ok(true);
            }
            let balances = response.balances;
            balances.iter().for_each(print);
            println!("({} balances)", balances.len());
        }
        PalletCommand::Settle { counterparty, pallet_grade, count, payment, currency } => {
            let payment = match payment {
                Some(amount) => {
                    Some(common::Money { amount_minor: price_minor(&amount)?, currency_code: currency })
                }
                None => None,
            };
            let request = pb::SettlePalletBalanceRequest {
                request_id: String::new(),
                counterparty_organization_id: counterparty,
                grade: grade(pallet_grade),
                pallets: count,
                payment,
            };
            let settled = client.settle_pallet_balance(request).await.map_err(status_error)?.into_inner();
            if let Some(balance) = &settled.balance {
                print(balance);
            }
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::vehicle;

    #[test]
    fn vehicles_read_from_the_command_line() {
        let truck = vehicle("Porteur 12 t:12000:18:tail-lift").expect("a vehicle");
        assert_eq!(
            (truck.name.as_str(), truck.payload_kg, truck.pallet_places),
            ("Porteur 12 t", 12_000, 18)
        );
        assert!(truck.tail_lift && !truck.dangerous_goods);
        assert!(vehicle("Citerne:10000:0:adr").expect("a tanker").dangerous_goods);
        assert!(vehicle("Fourgon:heavy:6").is_err());
        assert!(vehicle("Fourgon:500:6:wings").is_err());
    }
}
