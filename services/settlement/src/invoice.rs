//! Invoices: numbers without gaps, and the printable document.
//!
//! The InvoiceSequence aggregate numbers one issuer's invoices of one calendar year:
//! `<prefix>-<year>-<n:06>`, such as `FR-2026-000001`, with `n` the last number plus one, so
//! the numbers of a year have no gap and follow the order of issue (CGI art. 242 nonies A,
//! I-2°: "une séquence chronologique et continue"; UStG § 14 Abs. 4 Nr. 4: "fortlaufende
//! Nummer"). The rules it keeps:
//!
//! - one sequence per issuer and year (`sequence_id` names its stream); an issue whose date is
//!   in another year, or for another issuer, is refused, and so is a date before the last
//!   invoice's (chronological order);
//! - the prefix is 1 to `PREFIX_BYTES_MAX` upper-case ASCII letters or digits, fixed by the
//!   year's first invoice;
//! - at most `INVOICE_NUMBER_MAX` invoices a year (six digits);
//! - idempotent by invoice id: issuing the same invoice id for the same deal again gives no
//!   event (the shell derives the id from the deal, so a redelivered fact issues once); the
//!   same invoice id for another deal, or another invoice id for a deal already invoiced in
//!   the sequence, is refused.
//!
//! An `Invoice` is built from plain inputs (names, addresses, identifiers, lines) by
//! `Invoice::new`, which computes the totals and the mentions the regime requires, and printed
//! by `render_text`.
//!
//! Gate fees: when the price is negative, the producer pays the receiver for the service of
//! taking the material. The invoice is then a service invoice issued by the receiver (the
//! deal's buyer) to the producer (the deal's seller), with positive amounts: the absolute
//! unit price, taxed as a service (`vat::Supply::Service`). So no invoice line is ever
//! negative; `roles` gives who issues and at which unit price.
//!
//! VAT is computed once on the net total (not line by line), rounded half away from zero, so
//! it equals what `escrow` holds and pays for the same deal.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};

use symbiose_domain::{Country, Currency, Identifier, Money, MoneyError, Quantity};
use symbiose_matching_contract::deal::{self, Deal};
use uuid::Uuid;

use crate::RejectionKind;
use crate::vat::{self, Regime, Supply};

/// Longest prefix of an issuer's numbers, in bytes.
pub const PREFIX_BYTES_MAX: usize = 8;
/// Most invoices of one issuer in one year: the number has six digits.
pub const INVOICE_NUMBER_MAX: u32 = 999_999;
/// Most lines on one invoice.
pub const LINES_MAX: usize = 100;
/// Longest name of a party, in bytes.
pub const NAME_BYTES_MAX: usize = 200;
/// Longest address of a party, in bytes (lines separated by `\n`).
pub const ADDRESS_BYTES_MAX: usize = 500;
/// Longest description of a line, in bytes.
pub const DESCRIPTION_BYTES_MAX: usize = 500;
/// Most identifiers (SIREN, SIRET, enterprise number...) printed for one party.
pub const IDENTIFIERS_MAX: usize = 5;

/// Namespace of the ids of invoice sequences.
const SEQUENCE_NAMESPACE: Uuid = Uuid::from_u128(0x696e_766f_6963_4573_9e71_5c0d_2b4a_61f3);

/// The id of the sequence (and stream) of `issuer`'s invoices of `year`.
pub fn sequence_id(issuer: Uuid, year: i32) -> Uuid {
    Uuid::new_v5(&SEQUENCE_NAMESPACE, format!("invoice-sequence/{issuer}/{year}").as_bytes())
}

/// `<prefix>-<year>-<n:06>`.
pub fn format_number(prefix: &str, year: i32, number: u32) -> String {
    format!("{prefix}-{year}-{number:06}")
}

/// A day of the proleptic Gregorian calendar: the date printed on an invoice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub struct CalendarDate {
    year: i32,
    month: u8,
    day: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{year:04}-{month:02}-{day:02} is not a date")]
pub struct DateError {
    year: i32,
    month: u8,
    day: u8,
}

impl CalendarDate {
    pub fn new(year: i32, month: u8, day: u8) -> Result<CalendarDate, DateError> {
        let valid = i16::try_from(year)
            .ok()
            .filter(|year| (1..=9999).contains(year))
            .zip(i8::try_from(month).ok())
            .zip(i8::try_from(day).ok())
            .is_some_and(|((year, month), day)| jiff::civil::Date::new(year, month, day).is_ok());
        if !valid {
            return Err(DateError { year, month, day });
        }
        Ok(CalendarDate { year, month, day })
    }

    /// The date of an invoice issued at `unix_ms` by an issuer established in `country`: the
    /// day in the issuer's time zone, not in UTC (an invoice of 00:30 in Paris on 1 January is
    /// of the new year, and so is its number).
    pub fn issued_at(unix_ms: i64, country: Country) -> CalendarDate {
        CalendarDate::from(country.date_at(unix_ms))
    }

    /// The date of `text`, `YYYY-MM-DD` (as [`fmt::Display`] writes it).
    pub fn parse(text: &str) -> Result<CalendarDate, String> {
        let date: jiff::civil::Date =
            text.parse().map_err(|error| format!("{text:?} is not a date: {error}"))?;
        CalendarDate::new(i32::from(date.year()), date.month().unsigned_abs(), date.day().unsigned_abs())
            .map_err(|error| format!("{text:?}: {error}"))
    }

    pub fn year(&self) -> i32 {
        self.year
    }

    pub fn month(&self) -> u8 {
        self.month
    }

    pub fn day(&self) -> u8 {
        self.day
    }
}

/// A date of jiff's calendar (years -9999 to 9999); one before 0001-01-01 is taken as that day.
impl From<jiff::civil::Date> for CalendarDate {
    fn from(date: jiff::civil::Date) -> CalendarDate {
        if date.year() < 1 {
            return CalendarDate { year: 1, month: 1, day: 1 };
        }
        CalendarDate {
            year: i32::from(date.year()),
            month: date.month().unsigned_abs(),
            day: date.day().unsigned_abs(),
        }
    }
}

/// ISO 8601: `2026-03-14`.
impl fmt::Display for CalendarDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

/// An invoice number given, in its sequence.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Issued {
    pub invoice_id: Uuid,
    pub deal_id: Uuid,
    pub number: u32,
    /// `format_number(prefix, year, number)`.
    pub formatted: String,
    pub issue_date: CalendarDate,
}

/// One issuer's invoice numbers of one year.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InvoiceSequence {
    pub issuer: Uuid,
    pub year: i32,
    pub prefix: String,
    /// The last number given: the count of invoices of the year.
    pub last: u32,
    pub last_issue_date: CalendarDate,
    issued: BTreeMap<Uuid, Issued>,
    by_deal: BTreeMap<Uuid, Uuid>,
}

impl InvoiceSequence {
    /// The invoice of an id, if issued.
    pub fn issued(&self, invoice_id: Uuid) -> Option<&Issued> {
        self.issued.get(&invoice_id)
    }

    /// The invoice of a deal in this sequence, if any.
    pub fn of_deal(&self, deal_id: Uuid) -> Option<&Issued> {
        self.by_deal.get(&deal_id).and_then(|invoice_id| self.issued.get(invoice_id))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum SequenceState {
    #[default]
    Absent,
    Open(Box<InvoiceSequence>),
}

impl SequenceState {
    pub fn sequence(&self) -> Option<&InvoiceSequence> {
        match self {
            SequenceState::Absent => None,
            SequenceState::Open(sequence) => Some(sequence),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Command {
    /// Gives `invoice_id` the next number of `issuer`'s sequence of `year`.
    Issue {
        invoice_id: Uuid,
        deal_id: Uuid,
        issuer: Uuid,
        prefix: String,
        year: i32,
        issue_date: CalendarDate,
    },
}

/// What the shell passes in.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct Context {
    pub now_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Event {
    Issued { issuer: Uuid, year: i32, prefix: String, issued: Issued, at_ms: i64 },
}

/// Why an issue is refused; `kind` says how it reaches the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("a prefix is 1 to {PREFIX_BYTES_MAX} upper-case ASCII letters or digits")]
    BadPrefix,
    #[error("the issue date {issue_date} is not in {year}")]
    YearMismatch { year: i32, issue_date: CalendarDate },
    #[error("the sequence is another issuer's")]
    IssuerMismatch,
    #[error("the sequence's prefix is {0}")]
    PrefixMismatch(String),
    #[error("the issue date is before the last invoice's, {last}")]
    DateBeforeLast { last: CalendarDate },
    #[error("invoice {invoice_id} was issued for another deal")]
    InvoiceIdConflict { invoice_id: Uuid },
    #[error("the deal is already invoiced as {number}")]
    DealAlreadyInvoiced { number: String },
    #[error("the year has its {INVOICE_NUMBER_MAX} invoices")]
    SequenceExhausted,
}

impl Rejection {
    pub fn kind(&self) -> RejectionKind {
        let field = match self {
            Rejection::IssuerMismatch
            | Rejection::PrefixMismatch(_)
            | Rejection::DateBeforeLast { .. }
            | Rejection::InvoiceIdConflict { .. }
            | Rejection::DealAlreadyInvoiced { .. }
            | Rejection::SequenceExhausted => return RejectionKind::FailedPrecondition,
            Rejection::BadPrefix => "prefix",
            Rejection::YearMismatch { .. } => "issue_date",
        };
        RejectionKind::InvalidArgument { field }
    }
}

pub fn decide(state: &SequenceState, command: Command, context: &Context) -> Result<Vec<Event>, Rejection> {
    let Command::Issue { invoice_id, deal_id, issuer, prefix, year, issue_date } = command;
    let prefix_ok = !prefix.is_empty()
        && prefix.len() <= PREFIX_BYTES_MAX
        && prefix.bytes().all(|byte| byte.is_ascii_uppercase() || byte.is_ascii_digit());
    if !prefix_ok {
        return Err(Rejection::BadPrefix);
    }
    if issue_date.year() != year {
        return Err(Rejection::YearMismatch { year, issue_date });
    }
    let number = match state.sequence() {
        None => 1,
        Some(sequence) => {
            if sequence.issuer != issuer {
                return Err(Rejection::IssuerMismatch);
            }
            if sequence.year != year {
                return Err(Rejection::YearMismatch { year: sequence.year, issue_date });
            }
            if let Some(issued) = sequence.issued(invoice_id) {
                return if issued.deal_id == deal_id {
                    Ok(vec![])
                } else {
                    Err(Rejection::InvoiceIdConflict { invoice_id })
                };
            }
            if let Some(issued) = sequence.of_deal(deal_id) {
                return Err(Rejection::DealAlreadyInvoiced { number: issued.formatted.clone() });
            }
            if sequence.prefix != prefix {
                return Err(Rejection::PrefixMismatch(sequence.prefix.clone()));
            }
            if issue_date < sequence.last_issue_date {
                return Err(Rejection::DateBeforeLast { last: sequence.last_issue_date });
            }
            if sequence.last >= INVOICE_NUMBER_MAX {
                return Err(Rejection::SequenceExhausted);
            }
            sequence.last + 1
        }
    };
    let formatted = format_number(&prefix, year, number);
    let issued = Issued { invoice_id, deal_id, number, formatted, issue_date };
    Ok(vec![Event::Issued { issuer, year, prefix, issued, at_ms: context.now_ms }])
}

/// Applies an event. Total: events are facts.
pub fn evolve(state: SequenceState, event: &Event) -> SequenceState {
    let Event::Issued { issuer, year, prefix, issued, .. } = event;
    let mut sequence = match state {
        SequenceState::Absent => Box::new(InvoiceSequence {
            issuer: *issuer,
            year: *year,
            prefix: prefix.clone(),
            last: 0,
            last_issue_date: issued.issue_date,
            issued: BTreeMap::new(),
            by_deal: BTreeMap::new(),
        }),
        SequenceState::Open(sequence) => sequence,
    };
    sequence.last = sequence.last.max(issued.number);
    sequence.last_issue_date = sequence.last_issue_date.max(issued.issue_date);
    sequence.by_deal.insert(issued.deal_id, issued.invoice_id);
    sequence.issued.insert(issued.invoice_id, issued.clone());
    SequenceState::Open(sequence)
}

/// Who invoices whom for a deal, and at which unit price.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Roles {
    pub issuer: Uuid,
    pub customer: Uuid,
    pub supply: Supply,
    /// Zero or more.
    pub unit_price: Money,
}

/// The roles of a deal's invoice: the seller invoices the buyer for the goods; for a gate fee
/// (a negative price) the buyer, who takes the material, invoices the seller for the service
/// at the fee's absolute value.
pub fn roles(deal: &Deal) -> Roles {
    if deal.price_per_unit.is_negative() {
        Roles {
            issuer: deal.buyer,
            customer: deal.seller,
            supply: Supply::Service,
            unit_price: deal.price_per_unit.negated(),
        }
    } else {
        Roles {
            issuer: deal.seller,
            customer: deal.buyer,
            supply: Supply::Goods,
            unit_price: deal.price_per_unit,
        }
    }
}

/// A party as printed on an invoice.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PartyDetails {
    pub organization: Uuid,
    pub name: String,
    /// Lines separated by `\n`.
    pub address: String,
    pub country: Country,
    /// Registration numbers printed with the name (SIREN, SIRET, enterprise number...).
    pub identifiers: Vec<Identifier>,
    pub vat_number: Option<Identifier>,
}

/// A line as asked.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LineInput {
    pub description: String,
    pub quantity: Quantity,
    pub unit_price: Money,
}

/// A line of an invoice, with its net (`deal::total(quantity, unit_price)`: rounded half away
/// from zero), as the settlement contract records it.
pub use symbiose_settlement_contract::invoice::InvoiceLine;

/// What `Invoice::new` is built from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Draft {
    /// The formatted number the sequence gave.
    pub number: String,
    pub issue_date: CalendarDate,
    pub deal_id: Uuid,
    pub issuer: PartyDetails,
    pub customer: PartyDetails,
    pub supply: Supply,
    pub lines: Vec<LineInput>,
    pub regime: Regime,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Invoice {
    pub number: String,
    pub issue_date: CalendarDate,
    pub deal_id: Uuid,
    /// The supplier: the seller of goods, or the receiver paid a gate fee.
    pub issuer: PartyDetails,
    pub customer: PartyDetails,
    pub supply: Supply,
    pub lines: Vec<InvoiceLine>,
    pub net_total: Money,
    pub regime: Regime,
    pub vat: Money,
    pub gross_total: Money,
    pub currency: Currency,
    /// What the regime requires printed, in order.
    pub mentions: Vec<String>,
}

/// Why an invoice cannot be drawn up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvoiceError {
    #[error("an invoice has 1 to {LINES_MAX} lines")]
    LineCount,
    #[error("the {party} name is 1 to {NAME_BYTES_MAX} bytes")]
    BadName { party: &'static str },
    #[error("the {party} address is at most {ADDRESS_BYTES_MAX} bytes")]
    AddressTooLong { party: &'static str },
    #[error("the {party} has at most {IDENTIFIERS_MAX} identifiers")]
    TooManyIdentifiers { party: &'static str },
    #[error("a line's description is 1 to {DESCRIPTION_BYTES_MAX} bytes")]
    BadDescription,
    #[error("a line's unit price is zero or more: a gate fee is invoiced by its receiver")]
    NegativeUnitPrice,
    #[error("every line is in the same currency")]
    MixedCurrencies,
    #[error("the regime requires the {party}'s VAT number")]
    VatNumberRequired { party: &'static str },
    #[error("the total is too large")]
    TooLarge,
}

impl InvoiceError {
    pub fn kind(&self) -> RejectionKind {
        let field = match self {
            InvoiceError::LineCount
            | InvoiceError::BadDescription
            | InvoiceError::NegativeUnitPrice
            | InvoiceError::MixedCurrencies
            | InvoiceError::TooLarge => "lines",
            InvoiceError::BadName { party }
            | InvoiceError::AddressTooLong { party }
            | InvoiceError::TooManyIdentifiers { party } => party,
            InvoiceError::VatNumberRequired { party } => return field_vat_number(party),
        };
        RejectionKind::InvalidArgument { field }
    }
}

fn field_vat_number(party: &str) -> RejectionKind {
    if party == "issuer" {
        RejectionKind::InvalidArgument { field: "issuer.vat_number" }
    } else {
        RejectionKind::InvalidArgument { field: "customer.vat_number" }
    }
}

impl From<MoneyError> for InvoiceError {
    fn from(_: MoneyError) -> InvoiceError {
        InvoiceError::TooLarge
    }
}

impl Invoice {
    /// Checks the inputs, computes each line's net, the totals and the VAT, and lists the
    /// mentions the regime requires.
    pub fn new(draft: Draft) -> Result<Invoice, InvoiceError> {
        let Draft { number, issue_date, deal_id, issuer, customer, supply, lines, regime } = draft;
        check_party(&issuer, "issuer")?;
        check_party(&customer, "customer")?;
        if lines.is_empty() || lines.len() > LINES_MAX {
            return Err(InvoiceError::LineCount);
        }
        let currency = lines[0].unit_price.currency();
        let mut net_total = Money::zero(currency);
        let mut priced = Vec::with_capacity(lines.len());
        for line in lines {
            if line.description.is_empty() || line.description.len() > DESCRIPTION_BYTES_MAX {
                return Err(InvoiceError::BadDescription);
            }
            if line.unit_price.is_negative() {
                return Err(InvoiceError::NegativeUnitPrice);
            }
            if line.unit_price.currency() != currency {
                return Err(InvoiceError::MixedCurrencies);
            }
            let net = deal::total(line.quantity, line.unit_price)?;
            net_total = net_total.checked_add(net)?;
            priced.push(InvoiceLine {
                description: line.description,
                quantity: line.quantity,
                unit_price: line.unit_price,
                net,
            });
        }
        let vat = vat::vat_amount(net_total, &regime);
        let gross_total = net_total.checked_add(vat)?;
        let mentions = mentions(&regime, &issuer, &customer)?;
        Ok(Invoice {
            number,
            issue_date,
            deal_id,
            issuer,
            customer,
            supply,
            lines: priced,
            net_total,
            regime,
            vat,
            gross_total,
            currency,
            mentions,
        })
    }

    /// The invoice as a printable text document.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        let title = match self.supply {
            Supply::Goods => "INVOICE / FACTURE / RECHNUNG",
            Supply::Service => "INVOICE FOR SERVICES / FACTURE DE PRESTATION / RECHNUNG FÜR LEISTUNGEN",
        };
        let (issuer_role, customer_role) = match self.supply {
            Supply::Goods => ("Seller / Vendeur / Verkäufer", "Buyer / Acheteur / Käufer"),
            Supply::Service => {
                ("Service provider / Prestataire / Leistender", "Customer / Client / Leistungsempfänger")
            }
        };
        // Writing to a String cannot fail.
        let _ = writeln!(out, "{title}");
        let _ = writeln!(out, "No. {}", self.number);
        let _ = writeln!(out, "Date: {}", self.issue_date);
        let _ = writeln!(out, "Deal: {}", self.deal_id);
        let _ = writeln!(out);
        render_party(&mut out, issuer_role, &self.issuer);
        let _ = writeln!(out);
        render_party(&mut out, customer_role, &self.customer);
        let _ = writeln!(out);
        let _ = writeln!(out, "{:<40} {:>16} {:>18} {:>18}", "Description", "Quantity", "Unit price", "Net");
        for line in &self.lines {
            let quantity =
                format!("{} {}", format_milli(line.quantity.amount_milli()), line.quantity.unit().symbol());
            let _ = writeln!(
                out,
                "{:<40} {:>16} {:>18} {:>18}",
                line.description,
                quantity,
                line.unit_price.to_string(),
                line.net.to_string()
            );
        }
        let _ = writeln!(out);
        let _ =
            writeln!(out, "{:<40} {:>54}", "Net total / Total HT / Nettobetrag", self.net_total.to_string());
        let vat_label = format!("VAT / TVA / USt {}", format_rate(self.regime.rate_bp()));
        let _ = writeln!(out, "{:<40} {:>54}", vat_label, self.vat.to_string());
        let _ =
            writeln!(out, "{:<40} {:>54}", "Total / Total TTC / Gesamtbetrag", self.gross_total.to_string());
        if !self.mentions.is_empty() {
            let _ = writeln!(out);
            for mention in &self.mentions {
                let _ = writeln!(out, "{mention}");
            }
        }
        out
    }
}

fn check_party(party: &PartyDetails, role: &'static str) -> Result<(), InvoiceError> {
    if party.name.trim().is_empty() || party.name.len() > NAME_BYTES_MAX {
        return Err(InvoiceError::BadName { party: role });
    }
    if party.address.len() > ADDRESS_BYTES_MAX {
        return Err(InvoiceError::AddressTooLong { party: role });
    }
    if party.identifiers.len() > IDENTIFIERS_MAX {
        return Err(InvoiceError::TooManyIdentifiers { party: role });
    }
    Ok(())
}

/// The regime's mention, then, where the regime rests on them, both VAT numbers.
fn mentions(
    regime: &Regime,
    issuer: &PartyDetails,
    customer: &PartyDetails,
) -> Result<Vec<String>, InvoiceError> {
    let mut mentions: Vec<String> = regime.mention().map(str::to_owned).into_iter().collect();
    if regime.needs_vat_numbers() {
        let issuer_number =
            issuer.vat_number.as_ref().ok_or(InvoiceError::VatNumberRequired { party: "issuer" })?;
        let customer_number =
            customer.vat_number.as_ref().ok_or(InvoiceError::VatNumberRequired { party: "customer" })?;
        mentions.push(format!(
            "VAT numbers / Numéros de TVA / USt-IdNr.: {} (issuer), {} (customer)",
            issuer_number.normalized(),
            customer_number.normalized()
        ));
    }
    Ok(mentions)
}

fn render_party(out: &mut String, role: &str, party: &PartyDetails) {
    let _ = writeln!(out, "{role}");
    let _ = writeln!(out, "  {}", party.name);
    for line in party.address.lines() {
        let _ = writeln!(out, "  {line}");
    }
    let _ = writeln!(out, "  {}", party.country.name_en());
    for identifier in &party.identifiers {
        let _ = writeln!(out, "  {} {}", identifier.kind().name(), identifier.display_form());
    }
    if let Some(number) = &party.vat_number {
        let _ = writeln!(out, "  VAT {}", number.normalized());
    }
}

/// `38`, `2.5`, `0.125`: milli-units without trailing zeros.
fn format_milli(amount_milli: i64) -> String {
    let sign = if amount_milli < 0 { "-" } else { "" };
    let magnitude = amount_milli.unsigned_abs();
    let (whole, fraction) = (magnitude / 1000, magnitude % 1000);
    if fraction == 0 {
        return format!("{sign}{whole}");
    }
    let digits = format!("{fraction:03}");
    format!("{sign}{whole}.{}", digits.trim_end_matches('0'))
}

/// `20.00 %`, `8.10 %`, `0.00 %`.
fn format_rate(rate_bp: u32) -> String {
    format!("{}.{:02} %", rate_bp / 100, rate_bp % 100)
}

#[cfg(test)]
mod tests;
