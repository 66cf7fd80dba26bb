//! The chronological waste registers of the arrêté du 31 mai 2021 (fixing the content of the
//! registers of articles R. 541-43 and R. 541-43-1 of the Code de l'environnement), written
//! from the deals and the shipments for one organization and one period, as CSV or XLSX.
//!
//! **Which register, which shipments, which date.** Only lots whose deal says they are waste
//! (`LegalStatus::Waste`) are listed: by-products, end-of-waste and products for reuse are not
//! waste and have no place in a waste register. A shipment whose deal is not in the view is not
//! listed (a deal is agreed before its shipment is booked, so this does not happen in a whole
//! log).
//!
//! | register | article | holder | listed when | dated by |
//! |---|---|---|---|---|
//! | `Outgoing` (déchets sortants) | art. 2 | the producer: the deal's seller | picked up in the period | the pickup |
//! | `Incoming` (déchets entrants) | art. 1 | the receiver: the deal's buyer | delivered in the period | the delivery |
//! | `Transported` (déchets transportés) | art. 3 | the carrier | picked up in the period | the pickup (and the delivery) |
//! | `Managed` (déchets gérés) | art. 4 | the platform, broker of every deal | picked up in the period | the pickup |
//!
//! Rows are in the order of that instant, then of booking. For `Managed` the `organization`
//! argument is ignored: the register is the platform's and lists every shipment (the gRPC layer
//! lets the operator alone ask for it). A date is the calendar day where it happened: a pickup
//! in the pickup's country, a delivery in the delivery's (every country served is on Central
//! European time, so this is also the holder's day); the start of the platform's management
//! (the deal's agreement) in France.
//!
//! **Columns.** [`columns`] lists them per register, in the order of the article's points
//! a) to e), with the headers Trackdéchets' registry exports use (`back/src/registry/columns.ts`
//! of MTES-MCT/trackdechets), then one column of ours, `Référence Symbiose de l'expédition`:
//! the shipment id, which links an organization's incoming and outgoing rows (art. 10) and is
//! the reference of the shipment's Annex VII document (logistics' `GetAnnexVii` is asked by
//! shipment id; the printed form carries no other number).
//!
//! - Parties are the site's: the seller's is the site of the offer (`terms.site_id`), the
//!   buyer's the site of the request; a carrier's address is its first site's. An identifier is
//!   written in its compact form: the SIRET for a French establishment, the VAT number or UID
//!   for the others (hence the headers `SIRET ou numéro de TVA`). An address is
//!   `street, postal code city, country code`.
//! - The seller is written as both initial producer (*producteur initial*) and sender
//!   (*expéditeur*): on the marketplace the seller offers the waste its site produced, and no
//!   event says otherwise.
//! - The broker (*courtier*) of the producer's, receiver's and carrier's registers is the
//!   platform: the organization of the directory with the operator role (the earliest
//!   registered, if several).
//! - The number of the notification (prior notification and consent, for hazardous or
//!   amber-listed waste) when the shipment has one; else, when the deal needs the Annex VII
//!   document, `Annexe VII <shipment id>`.
//! - The treatment code is the material family's usual recovery operation
//!   (`MaterialFamily::recovery_operation`, Annex II of Directive 2008/98/EC): the operation
//!   planned, which the receiver may change.
//!
//! **Always empty.** The text asks for these and no event of Symbiose records them, so their
//! cells are written empty rather than guessed:
//!
//! - `POP` (persistent organic pollutants, art. R. 541-8): the listings do not say.
//! - `Code du déchet (convention de Bâle)`: logistics derives it for the Annex VII only.
//! - `N° de bordereau`: the platform issues no *bordereau de suivi* (for hazardous waste it is
//!   Trackdéchets', outside the marketplace).
//! - `Éco-organisme raison sociale`, `Éco-organisme SIREN`: no deal names an eco-organisation.
//! - `Courtier récépissé`: the directory holds no broker's receipt (its permits are treatment
//!   and transport ones).
//! - `Qualification du traitement finale` (re-use, recycling, energy recovery, disposal): what
//!   the receiver did in the end, which it does not report to the platform.
//! - `Transporteur immatriculation` and `Code ADR` (transported register): vehicles are known
//!   by id, not by plate, and no dangerous-goods code is recorded.
//! - `Transporteur récépissé`, when the carrier declared no transport permit.
//!
//! The *négociant* columns are left out: the platform brokers and never owns the waste, so a
//! trader is never *le cas échéant* here.
//!
//! **Formats**, as Trackdéchets' CSV and XLSX exports: dates ISO 8601 (`2026-03-10`), yes/no as
//! `O`/`N`, decimal numbers with a point and without trailing zeros (`12.5`), quantities in
//! tonnes when the mass is known (to the kilogram, with `symbiose_domain::freight`'s masses per
//! unit), else in m3 for volumes (to the litre), else in the lot's own unit (pieces), with the
//! unit in the next column. The CSV separates fields with `;`, quotes a field holding `;`,
//! `"`, CR or LF (quotes doubled), ends lines with CRLF and starts with a UTF-8 byte order mark
//! so that Excel set to French reads it as UTF-8 (Trackdéchets writes none: ours is the
//! difference). Values are written as the directory holds them: a register reproduces them.
//! The XLSX has one sheet named after the register, a bold frozen header row, and the
//! quantities as numbers.

use rust_xlsxwriter::{Format, Workbook};
use symbiose_domain::freight::mass_g_per_unit;
use symbiose_domain::lot::LegalStatus;
use symbiose_domain::{Country, Dimension, MaterialFamily, Quantity, Role, Unit};
use symbiose_listings_contract::organization::{Address, Organization};
use symbiose_matching_contract::deal::{Deal, RequiredDocument};
use uuid::Uuid;

use crate::facts::{Facts, ShipmentFacts};
use crate::period::Period;

/// Most rows of one export. One export is one XLSX sheet (which holds 1,048,576 rows), and the
/// rows are built before they are streamed, once [`row_count`] said they are at most this
/// many: the cap bounds what one call holds in memory (a row is under 2 KiB: at most about
/// 500 MiB). A register longer than this is asked for by shorter periods.
pub const ROWS_MAX: usize = 250_000;

/// The byte order mark of UTF-8, first in a CSV file.
pub const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// The four registers of the arrêté du 31 mai 2021 Symbiose keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RegisterKind {
    /// Déchets sortants (art. 2): the producer's, the seller of the deal.
    Outgoing,
    /// Déchets entrants (art. 1): the receiver's, the buyer of the deal.
    Incoming,
    /// Déchets transportés (art. 3): the carrier's.
    Transported,
    /// Déchets gérés (art. 4): the platform's, broker of every deal.
    Managed,
}

impl RegisterKind {
    pub const ALL: [RegisterKind; 4] =
        [RegisterKind::Outgoing, RegisterKind::Incoming, RegisterKind::Transported, RegisterKind::Managed];

    /// The kind of a key, exactly as [`kind_key`] writes it.
    pub fn from_key(key: &str) -> Option<RegisterKind> {
        RegisterKind::ALL.into_iter().find(|kind| kind_key(*kind) == key)
    }
}

/// A stable key for URLs and logs: `outgoing`, `incoming`, `transported`, `managed`.
pub fn kind_key(kind: RegisterKind) -> &'static str {
    match kind {
        RegisterKind::Outgoing => "outgoing",
        RegisterKind::Incoming => "incoming",
        RegisterKind::Transported => "transported",
        RegisterKind::Managed => "managed",
    }
}

/// The French word in a file's name: `sortants`, `entrants`, `transportes`, `geres`.
pub fn file_key(kind: RegisterKind) -> &'static str {
    match kind {
        RegisterKind::Outgoing => "sortants",
        RegisterKind::Incoming => "entrants",
        RegisterKind::Transported => "transportes",
        RegisterKind::Managed => "geres",
    }
}

/// The name of the register, also the XLSX sheet's (at most 31 characters).
pub fn title(kind: RegisterKind) -> &'static str {
    match kind {
        RegisterKind::Outgoing => "Déchets sortants",
        RegisterKind::Incoming => "Déchets entrants",
        RegisterKind::Transported => "Déchets transportés",
        RegisterKind::Managed => "Déchets gérés",
    }
}

/// The column headers of a register, in the order of its article's points.
pub fn columns(kind: RegisterKind) -> &'static [&'static str] {
    match kind {
        RegisterKind::Outgoing => OUTGOING_COLUMNS,
        RegisterKind::Incoming => INCOMING_COLUMNS,
        RegisterKind::Transported => TRANSPORTED_COLUMNS,
        RegisterKind::Managed => MANAGED_COLUMNS,
    }
}

/// The shipments of `kind`'s register for `organization` over `period`, with their deal, in the
/// register's order (the instant it is dated by, then booking).
fn listed<'a>(
    facts: &'a Facts,
    kind: RegisterKind,
    organization: Uuid,
    period: &Period,
) -> Vec<(i64, usize, &'a ShipmentFacts, &'a Deal)> {
    let mut dated = Vec::new();
    for (booking, shipment_id) in facts.shipment_order.iter().enumerate() {
        let Some(shipment) = facts.shipments.get(shipment_id) else { continue };
        let Some(deal) = facts.deals.get(&shipment.deal_id) else { continue };
        if deal.legal_status != LegalStatus::Waste {
            continue;
        }
        let holds = match kind {
            RegisterKind::Outgoing => shipment.seller == organization,
            RegisterKind::Incoming => shipment.buyer == organization,
            RegisterKind::Transported => shipment.carrier == organization,
            RegisterKind::Managed => true,
        };
        let at_ms = match kind {
            RegisterKind::Incoming => shipment.delivered.map(|delivered| delivered.at_ms),
            _ => shipment.picked_up.map(|(_, at_ms)| at_ms),
        };
        let Some(at_ms) = at_ms.filter(|at_ms| holds && period.contains(*at_ms)) else { continue };
        dated.push((at_ms, booking, shipment, deal));
    }
    dated.sort_by_key(|(at_ms, booking, _, _)| (*at_ms, *booking));
    dated
}

/// How many rows [`rows`] gives, without writing them: what an export checks against
/// [`ROWS_MAX`] first.
pub fn row_count(facts: &Facts, kind: RegisterKind, organization: Uuid, period: &Period) -> usize {
    listed(facts, kind, organization, period).len()
}

/// The rows of `kind` for `organization` over `period`, in chronological order, each as long as
/// [`columns`]. `organization` is ignored for [`RegisterKind::Managed`].
pub fn rows(facts: &Facts, kind: RegisterKind, organization: Uuid, period: &Period) -> Vec<Vec<String>> {
    let broker = platform(facts);
    listed(facts, kind, organization, period)
        .into_iter()
        .map(|(_, _, shipment, deal)| {
            let line = Line::of(facts, deal, shipment, broker);
            let row = match kind {
                RegisterKind::Outgoing => line.outgoing(),
                RegisterKind::Incoming => line.incoming(),
                RegisterKind::Transported => line.transported(),
                RegisterKind::Managed => line.managed(),
            };
            debug_assert_eq!(
                row.len(),
                columns(kind).len(),
                "a {} row has one cell per column",
                kind_key(kind)
            );
            row
        })
        .collect()
}

/// The byte order mark and the header line of `kind`'s CSV file.
pub fn csv_header(kind: RegisterKind) -> Vec<u8> {
    let header: Vec<String> = columns(kind).iter().map(|column| (*column).to_owned()).collect();
    let mut bytes = UTF8_BOM.to_vec();
    bytes.extend(csv_line(&header));
    bytes
}

/// One CSV line: fields separated by `;`, quoted when they hold `;`, `"`, CR or LF (quotes
/// doubled), ended by CRLF.
pub fn csv_line(row: &[String]) -> Vec<u8> {
    let mut line = Vec::with_capacity(row.iter().map(|field| field.len() + 1).sum::<usize>() + 2);
    for (index, field) in row.iter().enumerate() {
        if index > 0 {
            line.push(b';');
        }
        if field.contains([';', '"', '\r', '\n']) {
            line.push(b'"');
            line.extend(field.replace('"', "\"\"").into_bytes());
            line.push(b'"');
        } else {
            line.extend(field.as_bytes());
        }
    }
    line.extend(b"\r\n");
    line
}

/// An XLSX workbook of one sheet named after the register: the header in bold, frozen, then
/// `rows`; quantities written as numbers.
pub fn xlsx(kind: RegisterKind, rows: &[Vec<String>]) -> Result<Vec<u8>, String> {
    if rows.len() > ROWS_MAX {
        return Err(format!("{} rows: one sheet holds at most {ROWS_MAX}", rows.len()));
    }
    let columns = columns(kind);
    let numeric: Vec<bool> = columns.iter().map(|column| column.starts_with("Quantité")).collect();
    let mut workbook = Workbook::new();
    let sheet = workbook.add_worksheet();
    let error = |error: rust_xlsxwriter::XlsxError| error.to_string();
    sheet.set_name(title(kind)).map_err(error)?;
    let bold = Format::new().set_bold();
    for (column, header) in columns.iter().enumerate() {
        let column = u16::try_from(column).map_err(|_| "too many columns".to_owned())?;
        sheet.write_string_with_format(0, column, *header, &bold).map_err(error)?;
        sheet.set_column_width(column, 20).map_err(error)?;
    }
    sheet.set_freeze_panes(1, 0).map_err(error)?;
    for (index, row) in rows.iter().enumerate() {
        if row.len() != columns.len() {
            return Err(format!("row {} has {} cells for {} columns", index + 1, row.len(), columns.len()));
        }
        // Below ROWS_MAX + 1, checked above.
        let line = u32::try_from(index + 1).map_err(|_| "too many rows".to_owned())?;
        for (column, cell) in row.iter().enumerate() {
            if cell.is_empty() {
                continue;
            }
            let column_index = u16::try_from(column).map_err(|_| "too many columns".to_owned())?;
            match cell.parse::<f64>() {
                Ok(number) if numeric[column] => {
                    sheet.write_number(line, column_index, number).map_err(error)?
                }
                _ => sheet.write_string(line, column_index, cell).map_err(error)?,
            };
        }
    }
    workbook.save_to_buffer().map_err(error)
}

// Headers shared by several registers, as Trackdéchets writes them.
const DESCRIPTION: &str = "Dénomination usuelle";
const WASTE_CODE: &str = "Code du déchet";
const HAZARDOUS: &str = "Déchet dangereux";
const POP: &str = "POP";
const BASEL_CODE: &str = "Code du déchet (convention de Bâle)";
const FORM_NUMBER: &str = "N° de bordereau";
const UNIT: &str = "Unité";
const PRODUCER_NAME: &str = "Producteur initial raison sociale";
const PRODUCER_ID: &str = "Producteur initial SIRET ou numéro de TVA";
const PRODUCER_ADDRESS: &str = "Producteur initial adresse";
const SENDER_NAME: &str = "Expéditeur raison sociale";
const SENDER_ID: &str = "Expéditeur SIRET ou numéro de TVA";
const SENDER_ADDRESS: &str = "Expéditeur adresse";
const ECO_NAME: &str = "Éco-organisme raison sociale";
const ECO_SIREN: &str = "Éco-organisme SIREN";
const BROKER_NAME: &str = "Courtier raison sociale";
const BROKER_ID: &str = "Courtier SIRET";
const BROKER_RECEIPT: &str = "Courtier récépissé";
const CARRIER_NAME: &str = "Transporteur raison sociale";
const CARRIER_ID: &str = "Transporteur SIRET ou numéro de TVA";
const CARRIER_ADDRESS: &str = "Transporteur adresse";
const CARRIER_RECEIPT: &str = "Transporteur récépissé";
const NOTIFICATION: &str = "Numéro de notification ou de document";
const DESTINATION_NAME: &str = "Destination raison sociale";
const DESTINATION_ID: &str = "Destination SIRET ou numéro de TVA";
const DESTINATION_ADDRESS: &str = "Destination adresse";
const OPERATION_PLANNED: &str = "Code opération prévu";
const OPERATION_MODE: &str = "Qualification du traitement final";
const SHIPMENT_REFERENCE: &str = "Référence Symbiose de l'expédition";

/// Art. 2: a) the date of dispatch; b) the waste; c) its origin; d) its management and
/// transport; e) its destination.
const OUTGOING_COLUMNS: &[&str] = &[
    "Date d'expédition",
    DESCRIPTION,
    WASTE_CODE,
    HAZARDOUS,
    POP,
    BASEL_CODE,
    FORM_NUMBER,
    "Quantité de déchet sortant",
    UNIT,
    SENDER_NAME,
    SENDER_ID,
    SENDER_ADDRESS,
    PRODUCER_NAME,
    PRODUCER_ID,
    PRODUCER_ADDRESS,
    ECO_NAME,
    ECO_SIREN,
    BROKER_NAME,
    BROKER_ID,
    BROKER_RECEIPT,
    CARRIER_NAME,
    CARRIER_ID,
    CARRIER_ADDRESS,
    CARRIER_RECEIPT,
    NOTIFICATION,
    DESTINATION_NAME,
    DESTINATION_ID,
    DESTINATION_ADDRESS,
    OPERATION_PLANNED,
    OPERATION_MODE,
    SHIPMENT_REFERENCE,
];

/// Art. 1: a) the date of reception; b) the waste (what arrived, and what was accepted of it);
/// c) its origin, management and transport; d) the treatment at the establishment.
const INCOMING_COLUMNS: &[&str] = &[
    "Date de réception",
    DESCRIPTION,
    WASTE_CODE,
    HAZARDOUS,
    POP,
    BASEL_CODE,
    FORM_NUMBER,
    "Quantité de déchet entrant",
    "Quantité acceptée",
    UNIT,
    PRODUCER_NAME,
    PRODUCER_ID,
    PRODUCER_ADDRESS,
    SENDER_NAME,
    SENDER_ID,
    SENDER_ADDRESS,
    ECO_NAME,
    ECO_SIREN,
    BROKER_NAME,
    BROKER_ID,
    BROKER_RECEIPT,
    CARRIER_NAME,
    CARRIER_ID,
    CARRIER_ADDRESS,
    CARRIER_RECEIPT,
    NOTIFICATION,
    DESTINATION_NAME,
    DESTINATION_ID,
    DESTINATION_ADDRESS,
    "Code opération",
    OPERATION_MODE,
    SHIPMENT_REFERENCE,
];

/// Art. 3: a) the dates of pickup and unloading; b) the waste; c) its transport; d) its origin
/// and management; e) its destination.
const TRANSPORTED_COLUMNS: &[&str] = &[
    "Date d'enlèvement",
    "Date de déchargement",
    DESCRIPTION,
    WASTE_CODE,
    HAZARDOUS,
    POP,
    BASEL_CODE,
    FORM_NUMBER,
    "Quantité de déchet transporté",
    UNIT,
    CARRIER_NAME,
    CARRIER_ID,
    CARRIER_ADDRESS,
    CARRIER_RECEIPT,
    "Transporteur immatriculation",
    "Code ADR",
    PRODUCER_NAME,
    PRODUCER_ID,
    PRODUCER_ADDRESS,
    SENDER_NAME,
    SENDER_ID,
    SENDER_ADDRESS,
    ECO_NAME,
    ECO_SIREN,
    BROKER_NAME,
    BROKER_ID,
    BROKER_RECEIPT,
    DESTINATION_NAME,
    DESTINATION_ID,
    DESTINATION_ADDRESS,
    NOTIFICATION,
    SHIPMENT_REFERENCE,
];

/// Art. 4: a) the dates the broker managed the waste; b) the waste; c) its origin, management
/// and transport; d) its destination.
const MANAGED_COLUMNS: &[&str] = &[
    "Date de début de gestion",
    "Date de fin de gestion",
    DESCRIPTION,
    WASTE_CODE,
    HAZARDOUS,
    POP,
    BASEL_CODE,
    FORM_NUMBER,
    "Quantité de déchet géré",
    UNIT,
    ECO_NAME,
    ECO_SIREN,
    PRODUCER_NAME,
    PRODUCER_ID,
    PRODUCER_ADDRESS,
    SENDER_NAME,
    SENDER_ID,
    SENDER_ADDRESS,
    CARRIER_NAME,
    CARRIER_ID,
    CARRIER_ADDRESS,
    CARRIER_RECEIPT,
    NOTIFICATION,
    DESTINATION_NAME,
    DESTINATION_ID,
    DESTINATION_ADDRESS,
    OPERATION_PLANNED,
    OPERATION_MODE,
    SHIPMENT_REFERENCE,
];

/// What a cell the data cannot fill holds.
const UNKNOWN: &str = "";

/// A party as the registers write it: name, identifier, address.
#[derive(Debug, Clone, Default)]
struct Party {
    name: String,
    identifier: String,
    address: String,
}

impl Party {
    fn of(organization: Option<&Organization>, address: Option<&Address>) -> Party {
        Party {
            name: organization.map(|organization| organization.legal_name.clone()).unwrap_or_default(),
            identifier: organization
                .map(|organization| organization.identifier.to_string())
                .unwrap_or_default(),
            address: address.map(address_text).unwrap_or_default(),
        }
    }
}

/// Every cell one shipment can give, before a register picks its own.
struct Line {
    picked_up_on: String,
    delivered_on: String,
    agreed_on: String,
    description: String,
    waste_code: String,
    hazardous: String,
    picked_up_amount: String,
    received_amount: String,
    accepted_amount: String,
    unit: String,
    seller: Party,
    buyer: Party,
    carrier: Party,
    carrier_receipt: String,
    broker: Party,
    notification: String,
    operation: String,
    shipment_id: String,
}

impl Line {
    fn of(facts: &Facts, deal: &Deal, shipment: &ShipmentFacts, broker: Option<&Organization>) -> Line {
        let offer = facts.listing(deal.offer_id);
        let request = facts.listing(deal.request_id);
        let seller = facts.organizations.get(&shipment.seller);
        let buyer = facts.organizations.get(&shipment.buyer);
        let carrier = facts.organizations.get(&shipment.carrier);
        let seller_address = site_address(seller, offer.map(|offer| offer.terms.site_id));
        let buyer_address = site_address(buyer, request.map(|request| request.terms.site_id));
        let carrier_address = carrier.and_then(|carrier| carrier.sites.first()).map(|site| &site.address);
        let description = offer
            .map(|offer| offer.terms.description.trim())
            .filter(|description| !description.is_empty())
            .or(deal.waste_code.map(|code| code.entry().description))
            .unwrap_or(UNKNOWN)
            .to_owned();
        let hazardous = shipment.hazardous || deal.waste_code.is_some_and(|code| code.is_hazardous());
        let notification = match &shipment.prior_notification_number {
            Some(number) if !number.trim().is_empty() => number.trim().to_owned(),
            _ if deal.documents.contains(&RequiredDocument::AnnexVii) => {
                format!("Annexe VII {}", shipment.shipment_id)
            }
            _ => UNKNOWN.to_owned(),
        };
        let unit = shipment.unit();
        let amount = |quantity_milli: i64| amount(deal.family, quantity_milli, unit);
        let picked_up = shipment.picked_up.map(|(quantity, _)| quantity).unwrap_or(shipment.quantity);
        let (picked_up_amount, unit_text) = amount_of(deal.family, picked_up);
        Line {
            picked_up_on: date(shipment.picked_up.map(|(_, at_ms)| at_ms), shipment.pickup.country),
            delivered_on: date(
                shipment.delivered.map(|delivered| delivered.at_ms),
                shipment.delivery.country,
            ),
            agreed_on: date(Some(deal.agreed_at_ms), Country::Fr),
            description,
            waste_code: deal.waste_code.map(|code| code.display_form()).unwrap_or_default(),
            hazardous: if hazardous { "O" } else { "N" }.to_owned(),
            picked_up_amount,
            received_amount: shipment
                .delivered
                .map(|delivered| amount_of(deal.family, delivered.received).0)
                .unwrap_or_default(),
            accepted_amount: if shipment.delivered.is_some() {
                amount(shipment.accepted_milli()).0
            } else {
                String::new()
            },
            unit: unit_text.to_owned(),
            seller: Party::of(seller, seller_address),
            buyer: Party::of(buyer, buyer_address),
            carrier: Party::of(carrier, carrier_address),
            carrier_receipt: facts.carrier_receipt(shipment.carrier).unwrap_or(UNKNOWN).to_owned(),
            broker: Party::of(broker, None),
            notification,
            operation: deal.family.recovery_operation().to_owned(),
            shipment_id: shipment.shipment_id.to_string(),
        }
    }

    /// The cells of the waste itself: description, code, hazardous, POP, Basel code, form.
    fn waste(&self) -> [String; 6] {
        [
            self.description.clone(),
            self.waste_code.clone(),
            self.hazardous.clone(),
            UNKNOWN.to_owned(),
            UNKNOWN.to_owned(),
            UNKNOWN.to_owned(),
        ]
    }

    fn party(party: &Party) -> [String; 3] {
        [party.name.clone(), party.identifier.clone(), party.address.clone()]
    }

    fn eco_organisation() -> [String; 2] {
        [UNKNOWN.to_owned(), UNKNOWN.to_owned()]
    }

    fn broker(&self) -> [String; 3] {
        [self.broker.name.clone(), self.broker.identifier.clone(), UNKNOWN.to_owned()]
    }

    fn carrier(&self) -> [String; 4] {
        [
            self.carrier.name.clone(),
            self.carrier.identifier.clone(),
            self.carrier.address.clone(),
            self.carrier_receipt.clone(),
        ]
    }

    fn outgoing(self) -> Vec<String> {
        let mut row = vec![self.picked_up_on.clone()];
        row.extend(self.waste());
        row.extend([self.picked_up_amount.clone(), self.unit.clone()]);
        row.extend(Line::party(&self.seller));
        row.extend(Line::party(&self.seller));
        row.extend(Line::eco_organisation());
        row.extend(self.broker());
        row.extend(self.carrier());
        row.push(self.notification.clone());
        row.extend(Line::party(&self.buyer));
        row.extend([self.operation.clone(), UNKNOWN.to_owned(), self.shipment_id.clone()]);
        row
    }

    fn incoming(self) -> Vec<String> {
        let mut row = vec![self.delivered_on.clone()];
        row.extend(self.waste());
        row.extend([self.received_amount.clone(), self.accepted_amount.clone(), self.unit.clone()]);
        row.extend(Line::party(&self.seller));
        row.extend(Line::party(&self.seller));
        row.extend(Line::eco_organisation());
        row.extend(self.broker());
        row.extend(self.carrier());
        row.push(self.notification.clone());
        row.extend(Line::party(&self.buyer));
        row.extend([self.operation.clone(), UNKNOWN.to_owned(), self.shipment_id.clone()]);
        row
    }

    fn transported(self) -> Vec<String> {
        let mut row = vec![self.picked_up_on.clone(), self.delivered_on.clone()];
        row.extend(self.waste());
        row.extend([self.picked_up_amount.clone(), self.unit.clone()]);
        row.extend(self.carrier());
        row.extend([UNKNOWN.to_owned(), UNKNOWN.to_owned()]);
        row.extend(Line::party(&self.seller));
        row.extend(Line::party(&self.seller));
        row.extend(Line::eco_organisation());
        row.extend(self.broker());
        row.extend(Line::party(&self.buyer));
        row.extend([self.notification.clone(), self.shipment_id.clone()]);
        row
    }

    fn managed(self) -> Vec<String> {
        let mut row = vec![self.agreed_on.clone(), self.delivered_on.clone()];
        row.extend(self.waste());
        row.extend([self.picked_up_amount.clone(), self.unit.clone()]);
        row.extend(Line::eco_organisation());
        row.extend(Line::party(&self.seller));
        row.extend(Line::party(&self.seller));
        row.extend(self.carrier());
        row.push(self.notification.clone());
        row.extend(Line::party(&self.buyer));
        row.extend([self.operation.clone(), UNKNOWN.to_owned(), self.shipment_id.clone()]);
        row
    }
}

/// The address of `organization`'s site `site_id`, when both are known.
fn site_address(organization: Option<&Organization>, site_id: Option<Uuid>) -> Option<&Address> {
    let (organization, site_id) = organization.zip(site_id)?;
    organization.site(site_id).map(|site| &site.address)
}

/// The platform as the directory knows it: the organization with the operator role registered
/// first (by id when two registered at the same instant).
fn platform(facts: &Facts) -> Option<&Organization> {
    facts
        .organizations
        .values()
        .filter(|organization| organization.roles.contains(&Role::Operator))
        .min_by_key(|organization| (organization.registered_at_ms, organization.id))
}

/// `1 rue du Port du Rhin, 67100 Strasbourg, FR`.
fn address_text(address: &Address) -> String {
    format!(
        "{}, {} {}, {}",
        address.street.trim(),
        address.postal_code.trim(),
        address.city.trim(),
        address.country.code()
    )
}

/// The ISO date of `at_ms` in `country`, or empty.
fn date(at_ms: Option<i64>, country: Country) -> String {
    at_ms.map(|at_ms| country.date_at(at_ms).to_string()).unwrap_or_default()
}

fn amount_of(family: MaterialFamily, quantity: Quantity) -> (String, &'static str) {
    amount(family, quantity.amount_milli(), quantity.unit())
}

/// `milli` thousandths of `unit` as the registers write it: in tonnes to the kilogram when its
/// mass is known, in m3 to the litre for a volume, else in its own unit; with the unit.
fn amount(family: MaterialFamily, milli: i64, unit: Unit) -> (String, &'static str) {
    let milli = i128::from(milli);
    let rounded = |value: i128| (value + 500).div_euclid(1000);
    if let Some(grams_per_unit) = mass_g_per_unit(family, unit) {
        let kg = rounded(milli * i128::from(grams_per_unit) / 1000);
        return (thousandths(kg), "t");
    }
    match unit.dimension() {
        Dimension::Volume => {
            let millilitres = if unit == Unit::CubicMetre { milli * 1000 } else { milli };
            (thousandths(rounded(millilitres)), "m3")
        }
        _ => (thousandths(milli), unit.symbol()),
    }
}

/// `12500` -> `12.5`, `12000` -> `12`, `1` -> `0.001`.
fn thousandths(value: i128) -> String {
    let sign = if value < 0 { "-" } else { "" };
    let value = value.abs();
    let (whole, fraction) = (value / 1000, value % 1000);
    if fraction == 0 {
        format!("{sign}{whole}")
    } else {
        format!("{sign}{whole}.{}", format!("{fraction:03}").trim_end_matches('0'))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::io::Read;

    use symbiose_domain::lot::{Place, Quality};
    use symbiose_domain::{Currency, GeoPoint, Identifier, Money, WasteCode};
    use symbiose_listings_contract::listing::{Delivery, Listing, ListingState, Side, Terms};
    use symbiose_listings_contract::organization::{Contacts, Permit, PermitKind, Site};
    use symbiose_matching_contract::deal::DealStatus;

    use super::*;
    use crate::facts::Delivered;

    // 2026-03-10T08:00Z (09:00 in Strasbourg; delivered 7 hours later) and 2026-04-02T08:00Z.
    const MARCH_10_PICKUP_MS: i64 = 1_773_129_600_000;
    const APRIL_2_MS: i64 = 1_775_116_800_000;
    // 2026-02-20T10:00Z.
    const FEBRUARY_20_MS: i64 = 1_771_581_600_000;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    const PRODUCER: u128 = 1;
    const RECEIVER: u128 = 2;
    const CARRIER: u128 = 3;
    const OPERATOR: u128 = 4;
    const OTHER: u128 = 5;
    const PRODUCER_SITE: u128 = 11;
    const RECEIVER_SITE: u128 = 12;
    const CARRIER_SITE: u128 = 13;
    const OFFER: u128 = 21;
    const REQUEST: u128 = 22;
    const DEAL: u128 = 31;
    const OTHER_DEAL: u128 = 32;
    const SHIPMENT: u128 = 41;
    const LATER_SHIPMENT: u128 = 42;
    const OTHER_SHIPMENT: u128 = 43;

    fn point() -> GeoPoint {
        GeoPoint::new(48.57, 7.79).unwrap()
    }

    fn organization(
        n: u128,
        name: &str,
        country: Country,
        identifier: &str,
        role: Role,
        sites: Vec<Site>,
    ) -> Organization {
        Organization {
            id: id(n),
            legal_name: name.to_owned(),
            country,
            identifier: Identifier::parse(identifier).unwrap(),
            roles: BTreeSet::from([role]),
            sites,
            permits: Vec::new(),
            contacts: Contacts::None,
            registered_at_ms: 0,
        }
    }

    fn site(n: u128, street: &str, postal_code: &str, city: &str, country: Country) -> Site {
        Site {
            site_id: id(n),
            name: city.to_owned(),
            address: Address {
                street: street.to_owned(),
                postal_code: postal_code.to_owned(),
                city: city.to_owned(),
                country,
            },
            location: point(),
        }
    }

    fn tonnes(milli: i64) -> Quantity {
        Quantity::new(milli, Unit::Tonne, true).unwrap()
    }

    fn listing(n: u128, owner: u128, side: Side, site: u128, description: &str) -> ListingState {
        let terms = Terms {
            side,
            family: MaterialFamily::Plastics,
            waste_code: Some(WasteCode::parse("070213").unwrap()),
            legal_status: LegalStatus::Waste,
            description: description.to_owned(),
            quality: Quality::Unspecified,
            quantity: tonnes(12_500),
            minimum_lot: None,
            recurrence_days: 0,
            site_id: id(site),
            location: Some(point()),
            available_from_ms: 0,
            available_until_ms: 0,
            price_per_unit: Money::new(5_000, Currency::Eur).unwrap(),
            delivery: Delivery::BuyerCollects,
            max_distance_km: 0,
            accepts_other_countries: true,
            attachments: Vec::new(),
            expires_at_ms: 0,
        };
        ListingState::Published(Box::new(Listing {
            id: id(n),
            owner: id(owner),
            terms,
            place: Place { point: point(), country: Country::Fr },
            reservations: BTreeMap::new(),
            delivered_milli: 0,
            published_once: true,
        }))
    }

    fn deal(n: u128, seller: u128, buyer: u128) -> Deal {
        Deal {
            id: id(n),
            proposal_id: id(n + 100),
            offer_id: id(OFFER),
            request_id: id(REQUEST),
            seller: id(seller),
            buyer: id(buyer),
            family: MaterialFamily::Plastics,
            waste_code: Some(WasteCode::parse("070213").unwrap()),
            legal_status: LegalStatus::Waste,
            quantity: tonnes(12_500),
            price_per_unit: Money::new(5_000, Currency::Eur).unwrap(),
            pickup: Place { point: point(), country: Country::Fr },
            delivery: Place { point: point(), country: Country::De },
            distance_km: 12.0,
            documents: vec![RequiredDocument::AnnexVii],
            agreed_at_ms: FEBRUARY_20_MS,
            status: DealStatus::Agreed,
        }
    }

    fn shipment(n: u128, deal: u128, seller: u128, buyer: u128, picked_up_ms: i64) -> ShipmentFacts {
        ShipmentFacts {
            shipment_id: id(n),
            deal_id: id(deal),
            seller: id(seller),
            buyer: id(buyer),
            carrier: id(CARRIER),
            pickup: Place { point: point(), country: Country::Fr },
            delivery: Place { point: point(), country: Country::De },
            pickup_town: None,
            delivery_town: None,
            quantity: tonnes(12_500),
            hazardous: false,
            prior_notification_number: None,
            road_distance_km: 12.0,
            co2_kg: 10.0,
            booked_at_ms: picked_up_ms - 86_400_000,
            picked_up: Some((tonnes(12_500), picked_up_ms)),
            pallets_picked_up: None,
            borders: vec![(Country::De, picked_up_ms + 3_600_000)],
            delivered: Some(Delivered {
                received: tonnes(12_500),
                accepted_milli: 12_000,
                refused_milli: 500,
                at_ms: picked_up_ms + 25_200_000,
            }),
            closed: None,
        }
    }

    /// A Strasbourg producer, a Kehl receiver, a carrier, the platform; one shipment in March,
    /// one of the same deal in April, and one in March between the carrier's other customers.
    fn facts() -> Facts {
        let mut carrier = organization(
            CARRIER,
            "Transports Rhénans; Fils",
            Country::Fr,
            "73282932000074",
            Role::Carrier,
            vec![site(CARRIER_SITE, "5 rue de l'Industrie", "67400", "Illkirch-Graffenstaden", Country::Fr)],
        );
        carrier.permits.push(Permit {
            permit_id: id(51),
            kind: PermitKind::Transport,
            number: "67-2024-0042".to_owned(),
            issued_by: "Préfecture du Bas-Rhin".to_owned(),
            valid_until_ms: i64::MAX,
            accepted_waste_codes: Vec::new(),
            hazardous_accepted: false,
            dangerous_goods_allowed: false,
        });
        let mut facts = Facts::default();
        for organization in [
            organization(
                PRODUCER,
                "Plasturgie Strasbourg SAS",
                Country::Fr,
                "55210055400013",
                Role::Producer,
                vec![site(PRODUCER_SITE, "1 rue du Port du Rhin", "67100", "Strasbourg", Country::Fr)],
            ),
            organization(
                RECEIVER,
                "Kehler Kunststoff GmbH",
                Country::De,
                "DE812345673",
                Role::Recycler,
                vec![site(RECEIVER_SITE, "Hafenstraße 10", "77694", "Kehl", Country::De)],
            ),
            carrier,
            organization(OPERATOR, "Symbiose SAS", Country::Fr, "FR40303265045", Role::Operator, Vec::new()),
            organization(OTHER, "Autre Entreprise", Country::De, "DE143567896", Role::Producer, Vec::new()),
        ] {
            facts.organizations.insert(organization.id, organization);
        }
        facts.listings.insert(
            id(OFFER),
            listing(OFFER, PRODUCER, Side::Offer, PRODUCER_SITE, "Chutes de PEHD broyées"),
        );
        facts
            .listings
            .insert(id(REQUEST), listing(REQUEST, RECEIVER, Side::Request, RECEIVER_SITE, "PEHD à recycler"));
        facts.deals.insert(id(DEAL), deal(DEAL, PRODUCER, RECEIVER));
        facts.deals.insert(id(OTHER_DEAL), deal(OTHER_DEAL, OTHER, OTHER));
        let shipments = [
            shipment(LATER_SHIPMENT, DEAL, PRODUCER, RECEIVER, APRIL_2_MS),
            shipment(SHIPMENT, DEAL, PRODUCER, RECEIVER, MARCH_10_PICKUP_MS),
            shipment(OTHER_SHIPMENT, OTHER_DEAL, OTHER, OTHER, MARCH_10_PICKUP_MS + 3_600_000),
        ];
        for shipment in shipments {
            facts.shipment_order.push(shipment.shipment_id);
            facts.shipments.insert(shipment.shipment_id, shipment);
        }
        facts
    }

    fn march() -> Period {
        Period::parse("2026-03").unwrap()
    }

    #[track_caller]
    fn check(kind: RegisterKind, organization: u128, expected: &[&[&str]]) {
        let rows = rows(&facts(), kind, id(organization), &march());
        let expected: Vec<Vec<String>> =
            expected.iter().map(|row| row.iter().map(|cell| (*cell).to_owned()).collect()).collect();
        assert_eq!(rows, expected);
        for row in &rows {
            assert_eq!(row.len(), columns(kind).len());
        }
    }

    const SHIPMENT_ID: &str = "00000000-0000-0000-0000-000000000029";
    const OTHER_SHIPMENT_ID: &str = "00000000-0000-0000-0000-00000000002b";

    #[test]
    fn the_producer_lists_what_left_its_site_in_the_period() {
        check(
            RegisterKind::Outgoing,
            PRODUCER,
            &[&[
                "2026-03-10",
                "Chutes de PEHD broyées",
                "07 02 13",
                "N",
                "",
                "",
                "",
                "12.5",
                "t",
                "Plasturgie Strasbourg SAS",
                "55210055400013",
                "1 rue du Port du Rhin, 67100 Strasbourg, FR",
                "Plasturgie Strasbourg SAS",
                "55210055400013",
                "1 rue du Port du Rhin, 67100 Strasbourg, FR",
                "",
                "",
                "Symbiose SAS",
                "FR40303265045",
                "",
                "Transports Rhénans; Fils",
                "73282932000074",
                "5 rue de l'Industrie, 67400 Illkirch-Graffenstaden, FR",
                "67-2024-0042",
                "Annexe VII 00000000-0000-0000-0000-000000000029",
                "Kehler Kunststoff GmbH",
                "DE812345673",
                "Hafenstraße 10, 77694 Kehl, DE",
                "R3",
                "",
                SHIPMENT_ID,
            ]],
        );
    }

    #[test]
    fn the_receiver_lists_what_arrived_and_what_it_accepted() {
        check(
            RegisterKind::Incoming,
            RECEIVER,
            &[&[
                "2026-03-10",
                "Chutes de PEHD broyées",
                "07 02 13",
                "N",
                "",
                "",
                "",
                "12.5",
                "12",
                "t",
                "Plasturgie Strasbourg SAS",
                "55210055400013",
                "1 rue du Port du Rhin, 67100 Strasbourg, FR",
                "Plasturgie Strasbourg SAS",
                "55210055400013",
                "1 rue du Port du Rhin, 67100 Strasbourg, FR",
                "",
                "",
                "Symbiose SAS",
                "FR40303265045",
                "",
                "Transports Rhénans; Fils",
                "73282932000074",
                "5 rue de l'Industrie, 67400 Illkirch-Graffenstaden, FR",
                "67-2024-0042",
                "Annexe VII 00000000-0000-0000-0000-000000000029",
                "Kehler Kunststoff GmbH",
                "DE812345673",
                "Hafenstraße 10, 77694 Kehl, DE",
                "R3",
                "",
                SHIPMENT_ID,
            ]],
        );
    }

    #[test]
    fn the_carrier_lists_every_customer_in_order_of_pickup() {
        let other_row: &[&str] = &[
            "2026-03-10",
            "2026-03-10",
            "Chutes de PEHD broyées",
            "07 02 13",
            "N",
            "",
            "",
            "",
            "12.5",
            "t",
            "Transports Rhénans; Fils",
            "73282932000074",
            "5 rue de l'Industrie, 67400 Illkirch-Graffenstaden, FR",
            "67-2024-0042",
            "",
            "",
            // The other organization has no site: its addresses are unknown.
            "Autre Entreprise",
            "DE143567896",
            "",
            "Autre Entreprise",
            "DE143567896",
            "",
            "",
            "",
            "Symbiose SAS",
            "FR40303265045",
            "",
            "Autre Entreprise",
            "DE143567896",
            "",
            "Annexe VII 00000000-0000-0000-0000-00000000002b",
            OTHER_SHIPMENT_ID,
        ];
        check(
            RegisterKind::Transported,
            CARRIER,
            &[
                &[
                    "2026-03-10",
                    "2026-03-10",
                    "Chutes de PEHD broyées",
                    "07 02 13",
                    "N",
                    "",
                    "",
                    "",
                    "12.5",
                    "t",
                    "Transports Rhénans; Fils",
                    "73282932000074",
                    "5 rue de l'Industrie, 67400 Illkirch-Graffenstaden, FR",
                    "67-2024-0042",
                    "",
                    "",
                    "Plasturgie Strasbourg SAS",
                    "55210055400013",
                    "1 rue du Port du Rhin, 67100 Strasbourg, FR",
                    "Plasturgie Strasbourg SAS",
                    "55210055400013",
                    "1 rue du Port du Rhin, 67100 Strasbourg, FR",
                    "",
                    "",
                    "Symbiose SAS",
                    "FR40303265045",
                    "",
                    "Kehler Kunststoff GmbH",
                    "DE812345673",
                    "Hafenstraße 10, 77694 Kehl, DE",
                    "Annexe VII 00000000-0000-0000-0000-000000000029",
                    SHIPMENT_ID,
                ],
                other_row,
            ],
        );
    }

    #[test]
    fn the_platform_lists_every_shipment_whoever_asks() {
        let expected: &[&[&str]] = &[
            &[
                "2026-02-20",
                "2026-03-10",
                "Chutes de PEHD broyées",
                "07 02 13",
                "N",
                "",
                "",
                "",
                "12.5",
                "t",
                "",
                "",
                "Plasturgie Strasbourg SAS",
                "55210055400013",
                "1 rue du Port du Rhin, 67100 Strasbourg, FR",
                "Plasturgie Strasbourg SAS",
                "55210055400013",
                "1 rue du Port du Rhin, 67100 Strasbourg, FR",
                "Transports Rhénans; Fils",
                "73282932000074",
                "5 rue de l'Industrie, 67400 Illkirch-Graffenstaden, FR",
                "67-2024-0042",
                "Annexe VII 00000000-0000-0000-0000-000000000029",
                "Kehler Kunststoff GmbH",
                "DE812345673",
                "Hafenstraße 10, 77694 Kehl, DE",
                "R3",
                "",
                SHIPMENT_ID,
            ],
            &[
                "2026-02-20",
                "2026-03-10",
                "Chutes de PEHD broyées",
                "07 02 13",
                "N",
                "",
                "",
                "",
                "12.5",
                "t",
                "",
                "",
                "Autre Entreprise",
                "DE143567896",
                "",
                "Autre Entreprise",
                "DE143567896",
                "",
                "Transports Rhénans; Fils",
                "73282932000074",
                "5 rue de l'Industrie, 67400 Illkirch-Graffenstaden, FR",
                "67-2024-0042",
                "Annexe VII 00000000-0000-0000-0000-00000000002b",
                "Autre Entreprise",
                "DE143567896",
                "",
                "R3",
                "",
                OTHER_SHIPMENT_ID,
            ],
        ];
        check(RegisterKind::Managed, OPERATOR, expected);
        check(RegisterKind::Managed, PRODUCER, expected);
    }

    #[test]
    fn an_organization_sees_nothing_of_others_nor_of_other_periods() {
        check(RegisterKind::Outgoing, RECEIVER, &[]);
        check(RegisterKind::Incoming, PRODUCER, &[]);
        check(RegisterKind::Transported, PRODUCER, &[]);
        let april = Period::parse("2026-04").unwrap();
        let april_rows = rows(&facts(), RegisterKind::Outgoing, id(PRODUCER), &april);
        assert_eq!(april_rows.len(), 1);
        assert_eq!(april_rows[0][0], "2026-04-02");
    }

    #[test]
    fn a_lot_that_is_not_waste_is_in_no_register() {
        let mut facts = facts();
        for deal in facts.deals.values_mut() {
            deal.legal_status = LegalStatus::ByProduct;
        }
        for kind in RegisterKind::ALL {
            assert_eq!(rows(&facts, kind, id(PRODUCER), &march()), Vec::<Vec<String>>::new());
        }
    }

    #[test]
    fn a_prior_notification_number_is_the_reference() {
        let mut facts = facts();
        let shipment = facts.shipments.get_mut(&id(SHIPMENT)).unwrap();
        shipment.prior_notification_number = Some("FR2026000123".to_owned());
        let row = &rows(&facts, RegisterKind::Outgoing, id(PRODUCER), &march())[0];
        assert_eq!(row[24], "FR2026000123");
    }

    #[test]
    fn a_csv_line_quotes_what_needs_it() {
        let row: Vec<String> = ["2026-03-10", "Transports Rhénans; Fils", "dit \"TRF\"", "12.5", ""]
            .iter()
            .map(|cell| (*cell).to_owned())
            .collect();
        assert_eq!(
            csv_line(&row),
            "2026-03-10;\"Transports Rhénans; Fils\";\"dit \"\"TRF\"\"\";12.5;\r\n".as_bytes()
        );
        assert_eq!(csv_line(&["a\nb".to_owned()]), b"\"a\nb\"\r\n");
        let header = csv_header(RegisterKind::Outgoing);
        assert!(header.starts_with(b"\xEF\xBB\xBFDate d'exp\xC3\xA9dition;D\xC3\xA9nomination usuelle;"));
        assert!(header.ends_with(b";R\xC3\xA9f\xC3\xA9rence Symbiose de l'exp\xC3\xA9dition\r\n"));
    }

    #[test]
    fn quantities_are_in_tonnes_or_cubic_metres_when_they_can_be() {
        assert_eq!(amount(MaterialFamily::Plastics, 12_500, Unit::Tonne), ("12.5".to_owned(), "t"));
        assert_eq!(amount(MaterialFamily::Metals, 1_234_567, Unit::Kilogram), ("1.235".to_owned(), "t"));
        // A EUR pallet weighs 25 kg.
        assert_eq!(amount(MaterialFamily::Pallets, 40_000, Unit::Pallet), ("1".to_owned(), "t"));
        assert_eq!(amount(MaterialFamily::Solvents, 500_000, Unit::Litre), ("0.5".to_owned(), "m3"));
        assert_eq!(amount(MaterialFamily::Solvents, 3_000, Unit::CubicMetre), ("3".to_owned(), "m3"));
        assert_eq!(amount(MaterialFamily::Packaging, 10_000, Unit::Piece), ("10".to_owned(), "piece"));
    }

    #[test]
    fn keys_read_back() {
        for kind in RegisterKind::ALL {
            assert_eq!(RegisterKind::from_key(kind_key(kind)), Some(kind));
            assert!(title(kind).chars().count() <= 31);
        }
        assert_eq!(RegisterKind::from_key("sortants"), None);
    }

    #[test]
    fn the_workbook_is_a_zip_of_one_sheet_with_the_headers() {
        let rows = rows(&facts(), RegisterKind::Outgoing, id(PRODUCER), &march());
        let bytes = xlsx(RegisterKind::Outgoing, &rows).unwrap();
        assert!(bytes.starts_with(b"PK"));
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        let mut read = |name: &str| {
            let mut text = String::new();
            archive.by_name(name).unwrap().read_to_string(&mut text).unwrap();
            text
        };
        let workbook = read("xl/workbook.xml");
        assert!(workbook.contains("name=\"Déchets sortants\""), "{workbook}");
        let sheet = read("xl/worksheets/sheet1.xml");
        // Frozen header, and the quantity as a number.
        assert!(sheet.contains("ySplit=\"1\""), "{sheet}");
        assert!(sheet.contains("<v>12.5</v>"), "{sheet}");
        // Headers and texts are shared strings.
        let strings = read("xl/sharedStrings.xml");
        for header in columns(RegisterKind::Outgoing) {
            let escaped = header.replace('\'', "&apos;");
            assert!(strings.contains(header) || strings.contains(&escaped), "{header} missing");
        }
        assert!(strings.contains("Transports Rhénans; Fils"));
    }
}
