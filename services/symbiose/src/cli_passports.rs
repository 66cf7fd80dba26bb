//! The command-line client of passports: a lot's passport created, amended, published,
//! withdrawn, shown and listed; and institutions' end-of-life instructions.

use clap::{Args, Subcommand};
use symbiose_proto::common::v1 as common;
use symbiose_proto::passports::v1 as pb;
use symbiose_proto::passports::v1::passport_service_client::PassportServiceClient;

use crate::cli::{Authed, Output, status_error};

/// What a passport declares, restated whole by an amendment.
#[derive(Debug, Args)]
pub struct DeclarationArgs {
    /// What the lot is called on its page.
    #[arg(long)]
    name: String,
    /// The material family: pallets, packaging, plastics, metals, solvents, wood, compost,
    /// aggregates, process_water.
    #[arg(long)]
    family: String,
    /// The List of Waste code, six digits.
    #[arg(long, default_value = "")]
    waste_code: String,
    /// A component, repeated: `material:percent:basis[:document]`, the basis `declared`,
    /// `analysed` or `certified` (the last two name their document): "PEHD:97:certified:RecyClass 2026-0042".
    #[arg(long = "component", required = true)]
    components: Vec<String>,
    /// The recycled content, in percent: "97" or "97.5".
    #[arg(long, default_value = "0")]
    recycled: String,
    /// An input passport, repeated, for what is made from other lots: `passport id:percent` of
    /// the product's mass.
    #[arg(long = "input")]
    inputs: Vec<String>,
    /// The GTIN (8, 12, 13 or 14 digits), for a GS1 Digital Link.
    #[arg(long, default_value = "")]
    gtin: String,
    /// The batch or lot number (letters, digits, '-', '.', '_'; at most 20).
    #[arg(long, default_value = "")]
    batch: String,
    #[arg(long, default_value = "")]
    description_fr: String,
    #[arg(long, default_value = "")]
    description_de: String,
    #[arg(long, default_value = "")]
    description_en: String,
    /// Repair and reuse advice, in French.
    #[arg(long, default_value = "")]
    advice_fr: String,
    #[arg(long, default_value = "")]
    advice_de: String,
    #[arg(long, default_value = "")]
    advice_en: String,
}

#[derive(Debug, Subcommand)]
pub enum PassportCommand {
    /// Create the passport of your offer (--listing) or of a lot delivered to you (--shipment):
    /// prints its id and its page's address. It is a draft until published.
    Create {
        #[arg(long, conflicts_with = "shipment", required_unless_present = "shipment")]
        listing: Option<String>,
        #[arg(long)]
        shipment: Option<String>,
        #[command(flatten)]
        declaration: Box<DeclarationArgs>,
        /// Makes a repeated command apply once.
        #[arg(long, default_value = "")]
        request_id: String,
    },
    /// Restate a passport's declaration whole.
    Amend {
        passport: String,
        #[command(flatten)]
        declaration: Box<DeclarationArgs>,
        #[arg(long, default_value = "")]
        request_id: String,
    },
    /// Put a passport on its public page.
    Publish { passport: String },
    /// Withdraw a passport for good; its page says so, with the reason.
    Withdraw {
        passport: String,
        #[arg(long)]
        reason: String,
    },
    /// A passport: its declaration, the story of its lot, its end-of-life instructions.
    Show { passport: String },
    /// Passports: the published ones and your drafts (--mine: yours only).
    List {
        #[arg(long)]
        mine: bool,
        #[arg(long, default_value = "")]
        listing: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum InstructionsCommand {
    /// Publish end-of-life instructions for a material family or a waste code, in French,
    /// German and English (an institution's): prints their id.
    Publish {
        #[arg(long, conflicts_with = "waste_code", required_unless_present = "waste_code")]
        family: Option<String>,
        #[arg(long)]
        waste_code: Option<String>,
        #[arg(long)]
        fr: String,
        #[arg(long)]
        de: String,
        #[arg(long)]
        en: String,
        /// The document they come from.
        #[arg(long)]
        source_title: String,
        #[arg(long, default_value = "")]
        source_url: String,
        #[arg(long, default_value = "")]
        request_id: String,
    },
    /// Withdraw instructions you published.
    Withdraw { instructions: String },
    /// Published instructions, for a family or a waste code if given.
    List {
        #[arg(long, default_value = "")]
        family: String,
        #[arg(long, default_value = "")]
        waste_code: String,
    },
}

/// A percentage with at most two decimals, in basis points: "97.5" is 9750.
fn percent_bp(text: &str, what: &str) -> anyhow::Result<u32> {
    let text = text.trim().trim_end_matches('%').trim();
    let (whole, fraction) = text.split_once(['.', ',']).unwrap_or((text, ""));
    let valid = !whole.is_empty()
        && whole.len() <= 3
        && fraction.len() <= 2
        && whole.bytes().chain(fraction.bytes()).all(|byte| byte.is_ascii_digit());
    if !valid {
        anyhow::bail!("{what}: {text:?} is not a percentage with at most two decimals");
    }
    let hundredths: u32 = format!("{fraction:0<2}").parse().unwrap_or(0);
    Ok(whole.parse::<u32>().unwrap_or(u32::MAX / 200) * 100 + hundredths)
}

fn family(key: &str) -> anyhow::Result<i32> {
    let family = symbiose_domain::MaterialFamily::from_key(key.trim())
        .ok_or_else(|| anyhow::anyhow!("--family: {key:?} is not a material family"))?;
    Ok(common::MaterialFamily::from(family).into())
}

fn waste_code(code: &str) -> Option<common::WasteCode> {
    let code = code.trim();
    (!code.is_empty()).then(|| common::WasteCode { code: code.to_owned(), hazardous: false })
}

fn component(text: &str) -> anyhow::Result<pb::Component> {
    let mut parts = text.splitn(4, ':');
    let (material, share, basis, document) = (parts.next(), parts.next(), parts.next(), parts.next());
    let (Some(material), Some(share), Some(basis)) = (material, share, basis) else {
        anyhow::bail!("--component: {text:?} is not material:percent:basis[:document]");
    };
    let basis = match basis.trim() {
        "declared" => pb::CompositionBasis::Declared,
        "analysed" | "analyzed" => pb::CompositionBasis::Analysed,
        "certified" => pb::CompositionBasis::Certified,
        other => anyhow::bail!("--component: {other:?} is not declared, analysed or certified"),
    };
    Ok(pb::Component {
        material: material.trim().to_owned(),
        share_bp: percent_bp(share, "--component")?,
        basis: basis.into(),
        document: document.unwrap_or_default().trim().to_owned(),
    })
}

fn input(text: &str) -> anyhow::Result<pb::PassportInput> {
    let (passport, share) =
        text.rsplit_once(':').ok_or_else(|| anyhow::anyhow!("--input: {text:?} is not passport:percent"))?;
    Ok(pb::PassportInput { passport_id: passport.trim().to_owned(), share_bp: percent_bp(share, "--input")? })
}

impl DeclarationArgs {
    fn to_wire(&self) -> anyhow::Result<pb::Declaration> {
        Ok(pb::Declaration {
            name: self.name.clone(),
            description: Some(common::LocalizedText {
                en: self.description_en.clone(),
                fr: self.description_fr.clone(),
                de: self.description_de.clone(),
            }),
            family: family(&self.family)?,
            waste_code: waste_code(&self.waste_code),
            composition: self.components.iter().map(|text| component(text)).collect::<anyhow::Result<_>>()?,
            recycled_content_bp: percent_bp(&self.recycled, "--recycled")?,
            advice: Some(common::LocalizedText {
                en: self.advice_en.clone(),
                fr: self.advice_fr.clone(),
                de: self.advice_de.clone(),
            }),
            inputs: self.inputs.iter().map(|text| input(text)).collect::<anyhow::Result<_>>()?,
            gtin: self.gtin.clone(),
            batch: self.batch.clone(),
        })
    }
}

fn state(passport: &pb::Passport) -> &'static str {
    match passport.state() {
        pb::PassportState::Draft => "draft",
        pb::PassportState::Published => "published",
        pb::PassportState::Withdrawn => "withdrawn",
        pb::PassportState::Unspecified => "unknown",
    }
}

fn percent(share_bp: u32) -> String {
    match share_bp % 100 {
        0 => format!("{}%", share_bp / 100),
        hundredths => format!("{}.{hundredths:02}%", share_bp / 100),
    }
}

fn print_summary(passport: &pb::Passport) {
    println!("passport {} ({})", passport.passport_id, state(passport));
    println!("page: {}", passport.page_url);
    if !passport.digital_link.is_empty() {
        println!("digital link: {}", passport.digital_link);
    }
}

fn print_passport(passport: &pb::Passport) {
    print_summary(passport);
    let Some(declaration) = &passport.declaration else { return };
    println!("name: {}", declaration.name);
    for component in &declaration.composition {
        let basis = component.basis().as_str_name().trim_start_matches("COMPOSITION_BASIS_").to_lowercase();
        let document =
            if component.document.is_empty() { String::new() } else { format!(" ({})", component.document) };
        println!("  {} {} {basis}{document}", component.material, percent(component.share_bp));
    }
    println!("recycled content: {}", percent(declaration.recycled_content_bp));
    for step in &passport.custody {
        let date = step
            .at
            .as_ref()
            .map(|at| symbiose_domain::Country::Fr.date_at(at.seconds.saturating_mul(1000)).to_string())
            .unwrap_or_default();
        let mut line = format!("  {date} {}", step.kind);
        for part in [&step.town, &step.organization_name, &step.recovery_operation] {
            if !part.is_empty() {
                line.push_str(&format!(" · {part}"));
            }
        }
        if step.distance_m > 0 {
            line.push_str(&format!(
                " · {} km · {:.1} kg CO2e",
                step.distance_m.div_ceil(1000),
                step.co2_g as f64 / 1000.0
            ));
        }
        println!("{line}");
    }
    for instructions in &passport.instructions {
        let text = instructions.text.as_ref().map(|text| text.en.as_str()).unwrap_or_default();
        println!("end of life ({}): {text}", instructions.institution_name);
    }
    if !passport.withdrawal_reason.is_empty() {
        println!("withdrawn: {}", passport.withdrawal_reason);
    }
}

pub async fn passport_command(
    channel: Authed,
    command: PassportCommand,
    output: Output,
) -> anyhow::Result<bool> {
    let mut client = PassportServiceClient::new(channel);
    let passport = match command {
        PassportCommand::Create { listing, shipment, declaration, request_id } => {
            let subject = match (listing, shipment) {
                (Some(listing), _) => pb::create_passport_request::Subject::ListingId(listing),
                (None, Some(shipment)) => pb::create_passport_request::Subject::ShipmentId(shipment),
                (None, None) => {
                    anyhow::bail!("--listing or --shipment: a passport is of an offer or of a delivery")
                }
            };
            let request = pb::CreatePassportRequest {
                request_id,
                subject: Some(subject),
                declaration: Some(declaration.to_wire()?),
            };
            let response = client.create_passport(request).await.map_err(status_error)?.into_inner();
            if output.json(&response)? {
                return Ok(true);
            }
            response.passport
        }
        PassportCommand::Amend { passport, declaration, request_id } => {
            let request = pb::AmendPassportRequest {
                request_id,
                passport_id: passport,
                declaration: Some(declaration.to_wire()?),
            };
            let response = client.amend_passport(request).await.map_err(status_error)?.into_inner();
            if output.json(&response)? {
                return Ok(true);
            }
            response.passport
        }
        PassportCommand::Publish { passport } => {
            let request = pb::PublishPassportRequest { request_id: String::new(), passport_id: passport };
            let response = client.publish_passport(request).await.map_err(status_error)?.into_inner();
            if output.json(&response)? {
                return Ok(true);
            }
            response.passport
        }
        PassportCommand::Withdraw { passport, reason } => {
            let request =
                pb::WithdrawPassportRequest { request_id: String::new(), passport_id: passport, reason };
            let response = client.withdraw_passport(request).await.map_err(status_error)?.into_inner();
            if output.json(&response)? {
                return Ok(true);
            }
            response.passport
        }
        PassportCommand::Show { passport } => {
            let request = pb::GetPassportRequest { passport_id: passport, min_position: 0 };
            let response = client.get_passport(request).await.map_err(status_error)?.into_inner();
            if output.json(&response)? {
                return Ok(true);
            }
            if let Some(passport) = &response.passport {
                print_passport(passport);
            }
            return Ok(true);
        }
        PassportCommand::List { mine, listing } => {
            let mut page_token = String::new();
            let mut count = 0usize;
            loop {
                let request = pb::ListPassportsRequest {
                    page_size: 100,
                    page_token,
                    mine,
                    listing_id: listing.clone(),
                    min_position: 0,
                };
                let response = client.list_passports(request).await.map_err(status_error)?.into_inner();
                if output.json(&response)? {
                    return Ok(true);
                }
                for passport in &response.passports {
                    let name = passport
                        .declaration
                        .as_ref()
                        .map(|declaration| declaration.name.as_str())
                        .unwrap_or_default();
                    println!("{}  {:<9}  {name}", passport.passport_id, state(passport));
                }
                count += response.passports.len();
                if response.next_page_token.is_empty() {
                    break;
                }
                page_token = response.next_page_token;
            }
            println!("({count} passports)");
            return Ok(true);
        }
    };
    if let Some(passport) = &passport {
        print_summary(passport);
    }
    Ok(true)
}

fn print_instructions(instructions: &pb::Instructions) {
    let scope = match &instructions.scope {
        Some(pb::instructions::Scope::Family(family)) => common::MaterialFamily::try_from(*family)
            .map(|family| family.as_str_name().trim_start_matches("MATERIAL_FAMILY_").to_lowercase())
            .unwrap_or_default(),
        Some(pb::instructions::Scope::WasteCode(code)) => code.code.clone(),
        None => String::new(),
    };
    let withdrawn = if instructions.withdrawn { " (withdrawn)" } else { "" };
    println!(
        "instructions {} for {scope} by {}{withdrawn}",
        instructions.instructions_id, instructions.institution_name
    );
}

pub async fn instructions_command(
    channel: Authed,
    command: InstructionsCommand,
    output: Output,
) -> anyhow::Result<bool> {
    let mut client = PassportServiceClient::new(channel);
    match command {
        InstructionsCommand::Publish {
            family: key,
            waste_code: code,
            fr,
            de,
            en,
            source_title,
            source_url,
            request_id,
        } => {
            let scope = match (key, code) {
                (Some(key), _) => pb::publish_instructions_request::Scope::Family(family(&key)?),
                (None, Some(code)) => pb::publish_instructions_request::Scope::WasteCode(
                    waste_code(&code).ok_or_else(|| anyhow::anyhow!("--waste-code is empty"))?,
                ),
                (None, None) => anyhow::bail!("--family or --waste-code: instructions apply to one of them"),
            };
            let request = pb::PublishInstructionsRequest {
                request_id,
                scope: Some(scope),
                text: Some(common::LocalizedText { en, fr, de }),
                source_title,
                source_url,
            };
            let response = client.publish_instructions(request).await.map_err(status_error)?.into_inner();
            if output.json(&response)? {
                return Ok(true);
            }
            if let Some(instructions) = &response.instructions {
                print_instructions(instructions);
            }
        }
        InstructionsCommand::Withdraw { instructions } => {
            let request =
                pb::WithdrawInstructionsRequest { request_id: String::new(), instructions_id: instructions };
            let response = client.withdraw_instructions(request).await.map_err(status_error)?.into_inner();
            if output.json(&response)? {
                return Ok(true);
            }
            if let Some(instructions) = &response.instructions {
                print_instructions(instructions);
            }
        }
        InstructionsCommand::List { family: key, waste_code } => {
            let family = if key.trim().is_empty() { 0 } else { family(&key)? };
            let mut page_token = String::new();
            loop {
                let request = pb::ListInstructionsRequest {
                    page_size: 100,
                    page_token,
                    family,
                    waste_code: waste_code.clone(),
                    min_position: 0,
                };
                let response = client.list_instructions(request).await.map_err(status_error)?.into_inner();
                if output.json(&response)? {
                    return Ok(true);
                }
                response.instructions.iter().for_each(print_instructions);
                if response.next_page_token.is_empty() {
                    break;
                }
                page_token = response.next_page_token;
            }
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_read_as_basis_points() {
        assert_eq!(percent_bp("97", "x").ok(), Some(9_700));
        assert_eq!(percent_bp("97.5", "x").ok(), Some(9_750));
        assert_eq!(percent_bp("0,05 %", "x").ok(), Some(5));
        assert!(percent_bp("97.555", "x").is_err());
        assert!(percent_bp("-3", "x").is_err());
        assert!(percent_bp("", "x").is_err());
    }

    #[test]
    fn a_component_reads_material_share_basis_and_document() {
        let read = component("PEHD:97:certified:RecyClass: 2026-0042").expect("a component");
        assert_eq!(
            (read.material.as_str(), read.share_bp, read.document.as_str()),
            ("PEHD", 9_700, "RecyClass: 2026-0042")
        );
        assert!(component("PEHD:97").is_err());
        assert!(component("PEHD:97:guessed").is_err());
    }
}
