//! The data of the Annex VII document: the information that travels with a shipment of
//! green-listed waste for recovery across a border (Reg. (EU) 2024/1157; Switzerland applies
//! the same rule), signed by the person who arranges the shipment.
//!
//! It is required (`required`) when the material is waste, crosses a border and is not
//! hazardous. Hazardous (or amber-listed) waste goes through prior notification and consent
//! instead, with its own documents. The hazardous flag of the List of Waste stands in for the
//! green and amber lists here, as it does in matching's rules.
//!
//! `AnnexVii::build` fills the boxes from plain values:
//!
//! - box 3, the actual quantity, in tonnes when the mass is known (the masses matching uses,
//!   rounded up to the kilogram: EUR pallets at 25 kg) and in m3 for litres and m3;
//! - box 8, the recovery operation (Annex II of Directive 2008/98/EC), from the material
//!   family unless the contract names another (`recovery_operation`);
//! - box 10, the Basel Annex IX code from a small table of List of Waste entries whose
//!   green-list entry is plain (`basel_code`), else "not listed" unless given;
//! - box 11, the transit countries from the border crossings reported
//!   (`transit_countries`);
//! - boxes 13 and 14, the date and the quantity received, from the delivery once recorded.
//!
//! Contacts are personal data: the document is built on demand from the directory and
//! printed, never stored in an event. A contact the organization erased prints as erased.
//!
//! Every box the data cannot fill says so (`TO_BE_COMPLETED`), and the signatures are left to
//! the hand (`SIGNED_BY_HAND`): no box of the printed form is silently empty. The printed form
//! is text (`render_text`) or a PDF of the same lines (`render_pdf`).

mod pdf;

use symbiose_domain::{Country, MaterialFamily, Quantity, Unit, WasteCode};

use crate::RejectionKind;
use crate::quote::Load;

/// Carriers on one document: the form has boxes 5(a), 5(b) and 5(c).
pub const CARRIERS_MAX: usize = 3;
/// Longest text of one field (a name, an address line, a description), in bytes.
pub const FIELD_BYTES_MAX: usize = 500;
/// Most address lines of one party.
pub const ADDRESS_LINES_MAX: usize = 6;
/// What box 10(i) says of a waste with no Basel Annex IX entry.
pub const NOT_LISTED: &str = "not listed";
/// What a box, or a part of one, says when the data does not fill it.
pub const TO_BE_COMPLETED: &str = "to be completed";
/// What a contact erased at its organization's request prints as.
pub const ERASED: &str = "erased at the organization's request (not available)";
/// What a code or a carrier the shipment does not have prints as.
pub const NOT_APPLICABLE: &str = "not applicable";
/// Where a signatory signs.
pub const SIGNED_BY_HAND: &str = "(signed by hand)";

/// The contact of a party, as the form asks for it. The directory asks a telephone or an
/// e-mail address of each contact: the other may be empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    pub person: String,
    pub telephone: String,
    pub email: String,
}

/// What the document knows of a party's contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartyContact {
    /// From the directory.
    Listed(Contact),
    /// The organization erased its contacts: the document says so and shows nothing of them.
    Erased,
    /// None in the directory, or the directory could not be asked: to be completed by hand.
    Missing,
}

/// Boxes 13 and 14: the delivery, as the carrier recorded it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Receipt {
    pub at_ms: i64,
    /// What arrived, in the unit of the pickup.
    pub quantity: Quantity,
}

/// Boxes 13 and 14 as printed: the date and the quantity received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    pub at_ms: i64,
    /// In kg (shown in tonnes), when the mass is known.
    pub mass_kg: Option<i64>,
    /// In litres (shown in m3), when the lot is counted in volume.
    pub volume_litres: Option<i64>,
}

/// One party of the document: arranger, consignee, carrier, generator or recovery facility.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Party {
    pub name: String,
    pub address_lines: Vec<String>,
    pub country: Country,
    /// Its registration number (SIRET, VAT number, UID...).
    pub identifier: String,
    /// Whether `address_lines` hold a street address; a carrier known only by its depot's
    /// name has its street address to be completed.
    pub full_address: bool,
    pub contact: PartyContact,
}

/// Box 10: the codes that identify the waste.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WasteIdentification {
    /// (i) Basel Annex IX, or `NOT_LISTED`.
    pub basel_annex_ix: String,
    /// (ii) OECD, if different from (i).
    pub oecd: Option<String>,
    /// (iii) Annex IIIA of the regulation (mixtures).
    pub annex_iiia: Option<String>,
    /// (iv) Annex IIIB of the regulation.
    pub annex_iiib: Option<String>,
    /// (v) EU List of Waste.
    pub list_of_waste: WasteCode,
    /// (vi) National code.
    pub national: Option<String>,
}

/// Box 11: the countries concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Countries {
    pub dispatch: Country,
    pub transit: Vec<Country>,
    pub destination: Country,
}

/// What a document is built from.
#[derive(Debug, Clone, PartialEq)]
pub struct Inputs {
    pub arranger: Party,
    pub consignee: Party,
    pub carriers: Vec<Party>,
    pub generator: Party,
    pub recovery_facility: Party,
    pub family: MaterialFamily,
    /// The actual quantity: counted or weighed at pickup.
    pub quantity: Quantity,
    pub shipment_date_ms: i64,
    pub description: String,
    pub waste_code: WasteCode,
    /// The contract's recovery operation, when it is not the family's usual one.
    pub recovery_operation: Option<String>,
    /// The Basel Annex IX code, when the table does not know it or the contract says another.
    pub basel_code: Option<String>,
    pub oecd_code: Option<String>,
    pub national_code: Option<String>,
    pub dispatch: Country,
    /// The countries entered, in order, as the carrier reported them.
    pub border_crossings: Vec<Country>,
    pub destination: Country,
    /// The delivery, once recorded: boxes 13 and 14.
    pub receipt: Option<Receipt>,
}

/// The boxes of the Annex VII document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnexVii {
    /// Box 1: the person who arranges the shipment.
    pub arranger: Party,
    /// Box 2: the importer or consignee.
    pub consignee: Party,
    /// Box 3: the actual quantity in kg (shown in tonnes), when the mass is known.
    pub mass_kg: Option<i64>,
    /// Box 3: the actual volume in litres (shown in m3), when the lot is counted in volume.
    pub volume_litres: Option<i64>,
    /// Box 4: the actual date of shipment.
    pub shipment_date_ms: i64,
    /// Box 5: the carriers, in order; the first takes the waste on the date of shipment.
    pub carriers: Vec<Party>,
    /// Box 6: the waste generator (original producer, new producer or collector).
    pub generator: Party,
    /// Box 7: the recovery facility.
    pub recovery_facility: Party,
    /// Box 8: the recovery operation, an R-code.
    pub recovery_operation: String,
    /// Box 9: the usual description of the waste.
    pub description: String,
    /// Box 10.
    pub codes: WasteIdentification,
    /// Box 11.
    pub countries: Countries,
    /// Boxes 13 and 14: the receipt by the consignee at the recovery facility, once delivered.
    pub received: Option<Received>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("hazardous waste is shipped under prior notification and consent, not with Annex VII")]
    Hazardous,
    #[error("the shipment does not cross a border")]
    NotCrossBorder,
    #[error("a document names 1 to {CARRIERS_MAX} carriers")]
    CarrierCount,
    #[error("{0} is empty or longer than {FIELD_BYTES_MAX} bytes")]
    BadField(&'static str),
    #[error("a recovery operation is R1 to R13")]
    BadRecoveryOperation,
}

impl Rejection {
    pub fn kind(&self) -> RejectionKind {
        match self {
            Rejection::Hazardous | Rejection::NotCrossBorder => RejectionKind::FailedPrecondition,
            Rejection::CarrierCount => RejectionKind::InvalidArgument { field: "carriers" },
            Rejection::BadField(field) => RejectionKind::InvalidArgument { field },
            Rejection::BadRecoveryOperation => RejectionKind::InvalidArgument { field: "recovery_operation" },
        }
    }
}

/// Whether a shipment travels with an Annex VII document: waste, across a border, not
/// hazardous.
pub fn required(cross_border: bool, hazardous: bool, legal_status_is_waste: bool) -> bool {
    cross_border && legal_status_is_waste && !hazardous
}

/// The usual recovery operation of a family (Annex II of Directive 2008/98/EC): the domain's
/// table ([`MaterialFamily::recovery_operation`]), which passports show too. Metal packaging
/// (drums) is R4 and composting of biowaste R3: the contract names them through
/// `Inputs::recovery_operation`.
pub fn recovery_operation(family: MaterialFamily) -> &'static str {
    family.recovery_operation()
}

/// The Basel Annex IX (green list) entry of a List of Waste code, for the entries where it is
/// plain:
///
/// | Basel | entry | List of Waste |
/// |---|---|---|
/// | B1010 | metal and metal-alloy wastes in metallic, non-dispersible form | 15 01 04, 17 04 01, 17 04 02, 17 04 05, 19 12 02, 19 12 03, 20 01 40 |
/// | B2040 | other wastes containing mainly inorganic constituents: broken concrete | 17 01 01 |
/// | B3011 | plastic waste | 07 02 13, 12 01 05, 15 01 02, 20 01 39 |
/// | B3020 | paper, paperboard and paper product wastes | 15 01 01, 19 12 01, 20 01 01 |
/// | B3050 | untreated cork and wood waste | 03 01 05, 15 01 03, 17 02 01, 19 12 07, 20 01 38 |
///
/// Any other code is `None` (box 10(i) then says `NOT_LISTED` unless the contract gives one).
/// Within the EU, plastic waste may fall under the EU entry EU3011 instead of B3011: the
/// contract overrides through `Inputs::basel_code`.
pub fn basel_code(waste_code: WasteCode) -> Option<&'static str> {
    Some(match waste_code.as_str() {
        "150104" | "170401" | "170402" | "170405" | "191202" | "191203" | "200140" => "B1010",
        "170101" => "B2040",
        "070213" | "120105" | "150102" | "200139" => "B3011",
        "150101" | "191201" | "200101" => "B3020",
        "030105" | "150103" | "170201" | "191207" | "200138" => "B3050",
        _ => return None,
    })
}

/// The countries crossed between dispatch and destination, in order, each once: the
/// countries entered, but the dispatch and destination countries.
pub fn transit_countries(dispatch: Country, crossings: &[Country], destination: Country) -> Vec<Country> {
    let mut transit = Vec::new();
    for &country in crossings {
        if country != dispatch && country != destination && !transit.contains(&country) {
            transit.push(country);
        }
    }
    transit
}

impl AnnexVii {
    pub fn build(inputs: Inputs) -> Result<AnnexVii, Rejection> {
        if inputs.waste_code.is_hazardous() {
            return Err(Rejection::Hazardous);
        }
        if inputs.dispatch == inputs.destination {
            return Err(Rejection::NotCrossBorder);
        }
        if inputs.carriers.is_empty() || inputs.carriers.len() > CARRIERS_MAX {
            return Err(Rejection::CarrierCount);
        }
        let parties = [&inputs.arranger, &inputs.consignee, &inputs.generator, &inputs.recovery_facility];
        for party in parties.into_iter().chain(&inputs.carriers) {
            check_party(party)?;
        }
        check_text("description", &inputs.description)?;
        let recovery_operation = match inputs.recovery_operation {
            Some(code) => parse_recovery_operation(&code)?,
            None => recovery_operation(inputs.family).to_owned(),
        };
        let basel_annex_ix = match inputs.basel_code {
            Some(code) => {
                check_text("basel_code", &code)?;
                code.trim().to_owned()
            }
            None => basel_code(inputs.waste_code).unwrap_or(NOT_LISTED).to_owned(),
        };
        let (mass_kg, volume_litres) = measure(inputs.family, inputs.quantity, inputs.waste_code);
        let received = inputs.receipt.map(|receipt| {
            let (mass_kg, volume_litres) = measure(inputs.family, receipt.quantity, inputs.waste_code);
            Received { at_ms: receipt.at_ms, mass_kg, volume_litres }
        });
        Ok(AnnexVii {
            mass_kg,
            volume_litres,
            received,
            shipment_date_ms: inputs.shipment_date_ms,
            carriers: inputs.carriers,
            recovery_operation,
            description: inputs.description.trim().to_owned(),
            codes: WasteIdentification {
                basel_annex_ix,
                oecd: inputs.oecd_code,
                annex_iiia: None,
                annex_iiib: None,
                list_of_waste: inputs.waste_code,
                national: inputs.national_code,
            },
            countries: Countries {
                dispatch: inputs.dispatch,
                transit: transit_countries(inputs.dispatch, &inputs.border_crossings, inputs.destination),
                destination: inputs.destination,
            },
            arranger: inputs.arranger,
            consignee: inputs.consignee,
            generator: inputs.generator,
            recovery_facility: inputs.recovery_facility,
        })
    }

    /// The document as printable text, box by box in the form's order, with the lines the
    /// signatories fill in by hand.
    pub fn render_text(&self) -> String {
        let mut text = String::new();
        for line in self.lines() {
            text.push_str(&line);
            text.push('\n');
        }
        text
    }

    /// The same lines as `render_text`, as a PDF of A4 pages.
    pub fn render_pdf(&self) -> Vec<u8> {
        pdf::render(TITLE, &self.lines())
    }

    /// The printed lines: a box starts a line with its number.
    fn lines(&self) -> Vec<String> {
        // Shipped from the dispatch site: the day there, in its time zone.
        let shipped_on = date(self.shipment_date_ms, self.countries.dispatch);
        let mut lines = Vec::new();
        let mut line = |content: String| lines.push(content);
        line(TITLE.into());
        line("Regulation (EU) 2024/1157 on shipments of waste: green-listed waste for recovery".into());
        line(String::new());
        line("1. Person who arranges the shipment".into());
        party_lines(&self.arranger, "   ", &mut line);
        line("2. Importer/consignee".into());
        party_lines(&self.consignee, "   ", &mut line);
        line(format!("3. Actual quantity: {}", quantity(self.mass_kg, self.volume_litres)));
        line(format!("4. Actual date of shipment: {shipped_on}"));
        line("5. Carriers".into());
        for (index, label) in
            ["(a) First carrier", "(b) Second carrier", "(c) Third carrier"].iter().enumerate()
        {
            match self.carriers.get(index) {
                Some(carrier) => {
                    line(format!("   {label}:"));
                    party_lines(carrier, "      ", &mut line);
                    let transfer = if index == 0 { shipped_on.clone() } else { TO_BE_COMPLETED.into() };
                    line(format!("      Means of transport: R (road)   Date of transfer: {transfer}"));
                    line(format!("      Signature: {SIGNED_BY_HAND}"));
                }
                None => line(format!("   {label}: {NOT_APPLICABLE} (no further carrier)")),
            }
        }
        line("6. Waste generator (original producer(s), new producer(s) or collector)".into());
        party_lines(&self.generator, "   ", &mut line);
        line("7. Recovery facility".into());
        party_lines(&self.recovery_facility, "   ", &mut line);
        line(format!("8. Recovery operation: {}", self.recovery_operation));
        line(format!("9. Usual description of the waste: {}", self.description));
        line("10. Waste identification (fill in relevant codes)".into());
        let codes = &self.codes;
        let optional = |code: &Option<String>| code.clone().unwrap_or_else(|| NOT_APPLICABLE.into());
        line(format!("   (i) Basel Annex IX: {}", codes.basel_annex_ix));
        line(format!("   (ii) OECD (if different from (i)): {}", optional(&codes.oecd)));
        line(format!("   (iii) Annex IIIA: {}", optional(&codes.annex_iiia)));
        line(format!("   (iv) Annex IIIB: {}", optional(&codes.annex_iiib)));
        line(format!("   (v) EU list of wastes: {}", codes.list_of_waste.display_form()));
        line(format!("   (vi) National code: {}", optional(&codes.national)));
        line("11. Countries/States concerned".into());
        let transit = if self.countries.transit.is_empty() {
            "none".to_owned()
        } else {
            self.countries.transit.iter().map(|country| country_name(*country)).collect::<Vec<_>>().join(", ")
        };
        line(format!(
            "   Export/dispatch: {}   Transit: {transit}   Import/destination: {}",
            country_name(self.countries.dispatch),
            country_name(self.countries.destination)
        ));
        line(
            "12. Declaration of the person who arranges the shipment: I hereby declare that the above".into(),
        );
        line(
            "    information is complete and correct to my best knowledge. I also declare that effective"
                .into(),
        );
        line("    written contractual obligations have been entered into with the consignee.".into());
        line(format!("    Name: {}", self.arranger.name));
        line(format!("    Date: {TO_BE_COMPLETED} (at signature)   Signature: {SIGNED_BY_HAND}"));
        // Received at the recovery facility: the day there.
        let received_on = self.received.map_or_else(
            || TO_BE_COMPLETED.to_owned(),
            |received| date(received.at_ms, self.countries.destination),
        );
        line("13. Signature upon receipt of the waste by the consignee".into());
        line(format!("    Name: {}", self.consignee.name));
        line(format!("    Date: {received_on}   Signature: {SIGNED_BY_HAND}"));
        line("14. To be completed by the recovery facility or by the laboratory".into());
        match &self.received {
            Some(received) => {
                line("    Shipment received at recovery facility [X] or laboratory [ ]".into());
                line(format!(
                    "    Quantity received: {}",
                    quantity(received.mass_kg, received.volume_litres)
                ));
            }
            None => {
                line(format!("    Shipment received at recovery facility or laboratory: {TO_BE_COMPLETED}"));
                line(format!("    Quantity received: {TO_BE_COMPLETED}"));
            }
        }
        line(format!("    Name: {}", self.recovery_facility.name));
        line(format!("    Date: {received_on}   Signature: {SIGNED_BY_HAND}"));
        lines
    }
}

/// The document's first line, and the PDF's title.
const TITLE: &str = "ANNEX VII - INFORMATION ACCOMPANYING SHIPMENTS OF WASTE";

/// Box 3 and box 14's quantity: the mass in kg (rounded up, from the masses matching uses)
/// and, for a lot counted in volume, the volume in litres (rounded up).
fn measure(family: MaterialFamily, quantity: Quantity, waste_code: WasteCode) -> (Option<i64>, Option<i64>) {
    let volume_litres = match quantity.unit() {
        Unit::Litre | Unit::CubicMetre => quantity.convert(Unit::Litre).ok().map(|litres| {
            // Litres in thousandths: rounded up to the litre.
            (litres.amount_milli() + 999) / 1000
        }),
        _ => None,
    };
    (Load::of(family, quantity, Some(waste_code)).mass_kg, volume_litres)
}

/// `Tonnes (Mg): 1.000   m3: not applicable`: a lot weighed has no volume; a quantity with
/// neither is to be completed.
fn quantity(mass_kg: Option<i64>, volume_litres: Option<i64>) -> String {
    let missing = if mass_kg.is_none() && volume_litres.is_none() { TO_BE_COMPLETED } else { NOT_APPLICABLE };
    let tonnes = mass_kg.map_or(missing.to_owned(), thousandths);
    let cubic_metres = volume_litres.map_or(missing.to_owned(), thousandths);
    format!("Tonnes (Mg): {tonnes}   m3: {cubic_metres}")
}

fn check_text(field: &'static str, value: &str) -> Result<(), Rejection> {
    if value.trim().is_empty() || value.len() > FIELD_BYTES_MAX {
        return Err(Rejection::BadField(field));
    }
    Ok(())
}

fn check_party(party: &Party) -> Result<(), Rejection> {
    check_text("name", &party.name)?;
    check_text("identifier", &party.identifier)?;
    if party.address_lines.is_empty() || party.address_lines.len() > ADDRESS_LINES_MAX {
        return Err(Rejection::BadField("address_lines"));
    }
    for address_line in &party.address_lines {
        check_text("address_lines", address_line)?;
    }
    // A contact's empty field prints as to be completed; only its length is bounded.
    if let PartyContact::Listed(contact) = &party.contact {
        for (field, value) in [
            ("contact.person", &contact.person),
            ("contact.telephone", &contact.telephone),
            ("contact.email", &contact.email),
        ] {
            if value.len() > FIELD_BYTES_MAX {
                return Err(Rejection::BadField(field));
            }
        }
    }
    Ok(())
}

/// `R1` to `R13`, in any case, with surrounding whitespace.
fn parse_recovery_operation(code: &str) -> Result<String, Rejection> {
    let code = code.trim().to_ascii_uppercase();
    let number = code.strip_prefix('R').and_then(|digits| digits.parse::<u8>().ok());
    match number {
        Some(1..=13) if !code[1..].starts_with('0') => Ok(code),
        _ => Err(Rejection::BadRecoveryOperation),
    }
}

/// A party's lines under its box, each starting with `indent`.
fn party_lines(party: &Party, indent: &str, line: &mut impl FnMut(String)) {
    line(format!("{indent}Name: {}", party.name));
    let street =
        if party.full_address { String::new() } else { format!(" (street address {TO_BE_COMPLETED})") };
    line(format!(
        "{indent}Address: {}, {}{street}",
        party.address_lines.join(", "),
        country_name(party.country)
    ));
    line(format!("{indent}Registration No: {}", party.identifier));
    let or_missing = |value: &str| {
        if value.trim().is_empty() { TO_BE_COMPLETED.to_owned() } else { value.trim().to_owned() }
    };
    match &party.contact {
        PartyContact::Listed(contact) => {
            line(format!("{indent}Contact person: {}", or_missing(&contact.person)));
            line(format!(
                "{indent}Tel.: {}   E-mail: {}",
                or_missing(&contact.telephone),
                or_missing(&contact.email)
            ));
        }
        PartyContact::Erased => {
            line(format!("{indent}Contact person: {ERASED}"));
            line(format!("{indent}Tel.: erased   E-mail: erased"));
        }
        PartyContact::Missing => {
            line(format!("{indent}Contact person: {TO_BE_COMPLETED}"));
            line(format!("{indent}Tel.: {TO_BE_COMPLETED}   E-mail: {TO_BE_COMPLETED}"));
        }
    }
}

fn country_name(country: Country) -> String {
    format!("{} ({})", country.name_en(), country.code())
}

/// `1234` thousandths as `1.234`.
fn thousandths(value: i64) -> String {
    format!("{}.{:03}", value / 1000, value % 1000)
}

/// The date of a time in ms in `country`'s time zone (the site's), as `YYYY-MM-DD`.
fn date(at_ms: i64, country: Country) -> String {
    country.date_at(at_ms).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{NOW_MS, quantity};

    fn party(name: &str, country: Country, identifier: &str) -> Party {
        Party {
            name: name.into(),
            address_lines: match country {
                Country::De => vec!["Hafenstraße 1".into(), "77694 Kehl".into()],
                _ => vec!["1 rue du Port du Rhin".into(), "67100 Strasbourg".into()],
            },
            country,
            identifier: identifier.into(),
            full_address: true,
            contact: PartyContact::Listed(Contact {
                person: "Logistics desk".into(),
                telephone: "+33 3 88 00 00 00".into(),
                email: "logistics@example.org".into(),
            }),
        }
    }

    fn listed(person: &str, telephone: &str, email: &str) -> PartyContact {
        PartyContact::Listed(Contact {
            person: person.into(),
            telephone: telephone.into(),
            email: email.into(),
        })
    }

    /// The lines of box `number`: from its heading to the next box's.
    #[track_caller]
    fn section(text: &str, number: usize) -> &str {
        let start = text.find(&format!("\n{number}. ")).expect("the box");
        let end =
            text[start + 1..].find(&format!("\n{}. ", number + 1)).map_or(text.len(), |end| start + 1 + end);
        &text[start..end]
    }

    #[track_caller]
    fn has(text: &str, expected: &[&str]) {
        assert!(!expected.is_empty());
        for expected in expected {
            assert!(text.contains(expected), "{expected:?} is missing from\n{text}");
        }
    }

    /// The pallets of `inputs`, delivered in Kehl the next day (38 of the 40 arrived), each
    /// party with its own contact as the directory gives it; the carrier's contact has no
    /// e-mail address.
    fn delivered() -> Inputs {
        let mut producer = party("Emballages du Rhin SAS", Country::Fr, "FR 12 345678901");
        producer.contact = listed("Claire Martin", "+33 3 88 12 34 56", "c.martin@emballages-rhin.example");
        let mut repairer = party("Kehler Palettenservice GmbH", Country::De, "DE123456789");
        repairer.contact = listed("Jonas Weber", "+49 7851 123456", "j.weber@kehler-paletten.example");
        let carrier = Party {
            address_lines: vec!["12 route du Rhin".into(), "67100 Strasbourg".into()],
            contact: listed("Luc Meyer", "+33 6 12 34 56 78", ""),
            ..party("Transports Ill et Rhin", Country::Fr, "FR 98 765432109")
        };
        Inputs {
            arranger: producer.clone(),
            consignee: repairer.clone(),
            carriers: vec![carrier],
            generator: producer,
            recovery_facility: repairer,
            receipt: Some(Receipt { at_ms: NOW_MS + 86_400_000, quantity: quantity(38, Unit::Pallet) }),
            ..inputs()
        }
    }

    /// 40 EUR pallets, grade B, wooden packaging waste, from a producer in Strasbourg to a
    /// pallet repairer in Kehl.
    fn inputs() -> Inputs {
        let producer = party("Emballages du Rhin SAS", Country::Fr, "FR 12 345678901");
        Inputs {
            arranger: producer.clone(),
            consignee: party("Kehler Palettenservice GmbH", Country::De, "DE123456789"),
            carriers: vec![party("Transports Ill et Rhin", Country::Fr, "FR 98 765432109")],
            generator: producer,
            recovery_facility: party("Kehler Palettenservice GmbH", Country::De, "DE123456789"),
            family: MaterialFamily::Pallets,
            quantity: quantity(40, Unit::Pallet),
            shipment_date_ms: NOW_MS,
            description: "EUR/EPAL pallets 1200x800, grade B, for repair and reuse".into(),
            waste_code: WasteCode::parse("150103").expect("code"),
            recovery_operation: None,
            basel_code: None,
            oecd_code: None,
            national_code: None,
            dispatch: Country::Fr,
            border_crossings: vec![Country::De],
            destination: Country::De,
            receipt: None,
        }
    }

    /// ms since the epoch of an RFC 3339 instant.
    fn unix_ms(instant: &str) -> i64 {
        instant.parse::<jiff::Timestamp>().expect("an instant").as_millisecond()
    }

    #[test]
    fn dates_are_the_days_at_the_sites_not_in_utc() {
        // Shipped from Strasbourg at 00:30 on 1 January (23:30 UTC the day before), received in
        // Kehl at 00:30 on 1 July, summer time (22:30 UTC on 30 June).
        let inputs = Inputs {
            shipment_date_ms: unix_ms("2026-12-31T23:30:00Z"),
            receipt: Some(Receipt {
                at_ms: unix_ms("2027-06-30T22:30:00Z"),
                quantity: quantity(40, Unit::Pallet),
            }),
            ..inputs()
        };
        let text = AnnexVii::build(inputs).expect("a document").render_text();
        has(section(&text, 4), &["2027-01-01"]);
        has(section(&text, 5), &["Date of transfer: 2027-01-01"]);
        has(section(&text, 13), &["Date: 2027-07-01"]);
        assert!(!text.contains("2026-12-31") && !text.contains("2027-06-30"), "{text}");
    }

    #[test]
    fn required_for_green_listed_waste_across_a_border_only() {
        assert!(required(true, false, true));
        assert!(!required(false, false, true), "within one country");
        assert!(!required(true, true, true), "hazardous: prior notification");
        assert!(!required(true, false, false), "not waste");
    }

    #[test]
    fn the_document_of_pallets_from_strasbourg_to_kehl() {
        let document = AnnexVii::build(inputs()).expect("a document");
        // 40 pallets x 25 kg = 1 t.
        assert_eq!(document.mass_kg, Some(1000));
        assert_eq!(document.volume_litres, None);
        assert_eq!(document.recovery_operation, "R3");
        assert_eq!(document.codes.basel_annex_ix, "B3050");
        assert_eq!(
            document.countries,
            Countries { dispatch: Country::Fr, transit: vec![], destination: Country::De }
        );
        let text = document.render_text();
        let boxes = [
            "1. Person who arranges the shipment",
            "2. Importer/consignee",
            "3. Actual quantity: Tonnes (Mg): 1.000   m3: not applicable",
            // NOW_MS, 1,790,000,000,000 ms, is 2026-09-21 at 13:33 UTC.
            "4. Actual date of shipment: 2026-09-21",
            "5. Carriers",
            "(a) First carrier:",
            "Means of transport: R (road)   Date of transfer: 2026-09-21",
            "(b) Second carrier: not applicable (no further carrier)",
            "6. Waste generator",
            "7. Recovery facility",
            "8. Recovery operation: R3",
            "9. Usual description of the waste: EUR/EPAL pallets 1200x800, grade B",
            "10. Waste identification",
            "(i) Basel Annex IX: B3050",
            "(v) EU list of wastes: 15 01 03",
            "11. Countries/States concerned",
            "Export/dispatch: France (FR)   Transit: none   Import/destination: Germany (DE)",
            "12. Declaration of the person who arranges the shipment",
            "13. Signature upon receipt of the waste by the consignee",
            "14. To be completed by the recovery facility",
            "Name: Kehler Palettenservice GmbH",
            "Registration No: DE123456789",
        ];
        for expected in boxes {
            assert!(text.contains(expected), "{expected:?} is missing from\n{text}");
        }
        let numbered: Vec<usize> =
            (1..=14).map(|number| text.find(&format!("\n{number}. ")).expect("every box")).collect();
        assert!(numbered.windows(2).all(|pair| pair[0] < pair[1]), "boxes in order");
    }

    #[test]
    fn a_delivered_shipment_fills_every_box_the_data_allows() {
        let document = AnnexVii::build(delivered()).expect("a document");
        // 38 pallets x 25 kg.
        assert_eq!(
            document.received,
            Some(Received { at_ms: NOW_MS + 86_400_000, mass_kg: Some(950), volume_litres: None })
        );
        let text = document.render_text();
        let arranger = [
            "Name: Emballages du Rhin SAS",
            "Address: 1 rue du Port du Rhin, 67100 Strasbourg, France (FR)",
            "Registration No: FR 12 345678901",
            "Contact person: Claire Martin",
            "Tel.: +33 3 88 12 34 56   E-mail: c.martin@emballages-rhin.example",
        ];
        let repairer = [
            "Name: Kehler Palettenservice GmbH",
            "Address: Hafenstraße 1, 77694 Kehl, Germany (DE)",
            "Registration No: DE123456789",
            "Contact person: Jonas Weber",
            "Tel.: +49 7851 123456   E-mail: j.weber@kehler-paletten.example",
        ];
        has(section(&text, 1), &arranger);
        has(section(&text, 2), &repairer);
        has(section(&text, 3), &["Tonnes (Mg): 1.000   m3: not applicable"]);
        has(section(&text, 4), &["2026-09-21"]);
        has(
            section(&text, 5),
            &[
                "(a) First carrier:",
                "Name: Transports Ill et Rhin",
                "Address: 12 route du Rhin, 67100 Strasbourg, France (FR)",
                "Registration No: FR 98 765432109",
                "Contact person: Luc Meyer",
                // The directory has no e-mail address for him.
                "Tel.: +33 6 12 34 56 78   E-mail: to be completed",
                "Means of transport: R (road)   Date of transfer: 2026-09-21",
                "Signature: (signed by hand)",
                "(b) Second carrier: not applicable",
                "(c) Third carrier: not applicable",
            ],
        );
        has(section(&text, 6), &arranger);
        has(section(&text, 7), &repairer);
        has(section(&text, 12), &["Name: Emballages du Rhin SAS", "Date: to be completed (at signature)"]);
        has(
            section(&text, 13),
            &["Name: Kehler Palettenservice GmbH", "Date: 2026-09-22   Signature: (signed by hand)"],
        );
        has(
            section(&text, 14),
            &[
                "Shipment received at recovery facility [X] or laboratory [ ]",
                "Quantity received: Tonnes (Mg): 0.950   m3: not applicable",
                "Name: Kehler Palettenservice GmbH",
                "Date: 2026-09-22",
            ],
        );
        assert!(!text.contains(ERASED), "{text}");
        assert_eq!(text.matches(TO_BE_COMPLETED).count(), 2, "the e-mail and box 12's date:\n{text}");
    }

    #[test]
    fn what_the_data_does_not_give_is_marked_to_be_completed() {
        let mut inputs = delivered();
        // Not delivered yet; the consignee erased its contacts, the carrier is known by its
        // depot only and the directory gave none of its contacts.
        inputs.receipt = None;
        inputs.consignee.contact = PartyContact::Erased;
        inputs.recovery_facility.contact = PartyContact::Erased;
        inputs.carriers[0].address_lines = vec!["Depot Port du Rhin".into()];
        inputs.carriers[0].full_address = false;
        inputs.carriers[0].contact = PartyContact::Missing;
        let text = AnnexVii::build(inputs).expect("a document").render_text();
        let erased = [
            "Contact person: erased at the organization's request (not available)",
            "Tel.: erased   E-mail: erased",
        ];
        has(section(&text, 2), &erased);
        has(section(&text, 7), &erased);
        for number in [2, 7] {
            assert!(!section(&text, number).contains("Jonas Weber"), "{text}");
        }
        has(
            section(&text, 5),
            &[
                "Address: Depot Port du Rhin, France (FR) (street address to be completed)",
                "Contact person: to be completed",
                "Tel.: to be completed   E-mail: to be completed",
            ],
        );
        has(section(&text, 13), &["Date: to be completed   Signature: (signed by hand)"]);
        has(
            section(&text, 14),
            &[
                "Shipment received at recovery facility or laboratory: to be completed",
                "Quantity received: to be completed",
                "Date: to be completed",
            ],
        );
        has(section(&text, 1), &["Contact person: Claire Martin"]);
    }

    #[test]
    fn the_pdf_reads_back_with_every_box() {
        let document = AnnexVii::build(delivered()).expect("a document");
        let pdf = document.render_pdf();
        assert!(pdf.starts_with(b"%PDF-"), "a PDF");
        let read = lopdf::Document::load_mem(&pdf).expect("a PDF lopdf reads");
        let pages: Vec<u32> = read.get_pages().keys().copied().collect();
        assert_eq!(pages.len(), 2, "two A4 pages");
        let text = read.extract_text(&pages).expect("its text");
        let expected = [
            TITLE,
            "1. Person who arranges the shipment",
            "Contact person: Claire Martin",
            "Tel.: +33 3 88 12 34 56   E-mail: c.martin@emballages-rhin.example",
            // Hafenstraße comes back from WinAnsiEncoding.
            "Address: Hafenstraße 1, 77694 Kehl, Germany (DE)",
            "Contact person: Jonas Weber",
            "Tel.: +49 7851 123456   E-mail: j.weber@kehler-paletten.example",
            "3. Actual quantity: Tonnes (Mg): 1.000",
            "4. Actual date of shipment: 2026-09-21",
            "Address: 12 route du Rhin, 67100 Strasbourg, France (FR)",
            "Contact person: Luc Meyer",
            "Tel.: +33 6 12 34 56 78   E-mail: to be completed",
            "8. Recovery operation: R3",
            "(i) Basel Annex IX: B3050",
            "(v) EU list of wastes: 15 01 03",
            "13. Signature upon receipt of the waste by the consignee",
            "Date: 2026-09-22   Signature: (signed by hand)",
            "Shipment received at recovery facility [X] or laboratory [ ]",
            "Quantity received: Tonnes (Mg): 0.950   m3: not applicable",
        ];
        has(&text, &expected);
    }

    #[test]
    fn transit_countries_come_from_the_crossings() {
        // Strasbourg to Basel through Germany.
        assert_eq!(transit_countries(Country::Fr, &[Country::De, Country::Ch], Country::Ch), [Country::De]);
        assert_eq!(
            transit_countries(
                Country::Lu,
                &[Country::Be, Country::Fr, Country::Be, Country::De],
                Country::De
            ),
            [Country::Be, Country::Fr]
        );
        let water = Inputs {
            family: MaterialFamily::ProcessWater,
            quantity: quantity(30, Unit::CubicMetre),
            waste_code: WasteCode::parse("161002").expect("code"),
            destination: Country::Ch,
            border_crossings: vec![Country::De, Country::Ch],
            ..inputs()
        };
        let document = AnnexVii::build(water).expect("a document");
        assert_eq!(document.countries.transit, [Country::De]);
        assert_eq!((document.mass_kg, document.volume_litres), (Some(30_000), Some(30_000)));
        assert_eq!(document.codes.basel_annex_ix, NOT_LISTED);
        assert!(document.render_text().contains("Tonnes (Mg): 30.000   m3: 30.000"));
    }

    #[test]
    fn overrides_and_refusals() {
        let drums = Inputs {
            family: MaterialFamily::Packaging,
            quantity: quantity(2, Unit::Tonne),
            waste_code: WasteCode::parse("150104").expect("code"),
            recovery_operation: Some(" r4 ".into()),
            ..inputs()
        };
        let document = AnnexVii::build(drums).expect("a document");
        assert_eq!(
            (document.recovery_operation.as_str(), document.codes.basel_annex_ix.as_str()),
            ("R4", "B1010")
        );
        for bad in ["R0", "R14", "D1", "R03", ""] {
            let inputs = Inputs { recovery_operation: Some(bad.into()), ..inputs() };
            assert_eq!(AnnexVii::build(inputs), Err(Rejection::BadRecoveryOperation), "{bad}");
        }
        let hazardous = Inputs { waste_code: WasteCode::parse("150110").expect("code"), ..inputs() };
        assert_eq!(AnnexVii::build(hazardous), Err(Rejection::Hazardous));
        let domestic = Inputs { destination: Country::Fr, ..inputs() };
        assert_eq!(AnnexVii::build(domestic), Err(Rejection::NotCrossBorder));
        assert_eq!(AnnexVii::build(Inputs { carriers: vec![], ..inputs() }), Err(Rejection::CarrierCount));
        let unnamed = Inputs { description: " ".into(), ..inputs() };
        assert_eq!(AnnexVii::build(unnamed), Err(Rejection::BadField("description")));
        assert_eq!(date(0, Country::Fr), "1970-01-01");
        assert_eq!(date(951_782_400_000, Country::De), "2000-02-29");
    }
}
