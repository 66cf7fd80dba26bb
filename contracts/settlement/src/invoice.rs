//! Invoices issued, in the stream `invoices-<id of the issuer's sequence of the year>`: each
//! the next number of the sequence, with the invoice as issued and its printable text. An
//! issued invoice never changes, so what is stored is the document itself, as data.

use prost::Message as _;
use symbiose_contract::Stored;
use symbiose_domain::{Country, Money, Quantity};
use symbiose_eventstore::RecordedEvent;
use symbiose_proto::common::v1 as common;
use symbiose_proto::convert::{FieldError, country_from_wire, id, required, timestamp_from_ms};
use symbiose_proto::settlement::v1 as pb;
use uuid::Uuid;

use crate::INVOICE_ISSUED;
use crate::wire::{bad, field, ms};

/// A party as printed on an invoice.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InvoiceParty {
    pub organization: Uuid,
    pub name: String,
    /// Lines separated by `\n`.
    pub address: String,
    pub country: Country,
    /// Its legal identifiers as printed (SIREN, SIRET, UID...).
    pub identifiers: Vec<String>,
    pub vat_number: Option<String>,
}

/// A line as printed on an invoice.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InvoiceLine {
    pub description: String,
    pub quantity: Quantity,
    pub unit_price: Money,
    pub net: Money,
}

/// An invoice as issued: what it printed, field for field.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IssuedInvoice {
    pub invoice_id: Uuid,
    /// `FR-2026-000001`.
    pub number: String,
    /// ISO 8601 date.
    pub issue_date: String,
    pub deal_id: Uuid,
    pub issuer: InvoiceParty,
    pub customer: InvoiceParty,
    /// `goods` or `service`.
    pub supply: String,
    pub lines: Vec<InvoiceLine>,
    pub net_total: Money,
    /// The regime's kind (`vat::regime_kind`).
    pub vat_regime: String,
    pub vat_rate_bp: u32,
    pub vat: Money,
    pub gross_total: Money,
    pub mentions: Vec<String>,
}

/// The next number of an issuer's sequence of the year, and the invoice it numbered.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Issued {
    pub issuer: Uuid,
    pub year: i32,
    /// 1 to 8 upper-case ASCII letters or digits.
    pub prefix: String,
    /// The number within the year.
    pub number: u32,
    pub invoice: IssuedInvoice,
    /// The printable document as issued.
    pub text: String,
    pub at_ms: i64,
}

/// `issued` in its stored form.
pub fn encode(issued: &Issued) -> (&'static str, Vec<u8>) {
    (
        INVOICE_ISSUED,
        pb::InvoiceIssued {
            issuer_organization_id: issued.issuer.to_string(),
            year: issued.year,
            prefix: issued.prefix.clone(),
            sequence_number: issued.number,
            invoice: Some(invoice_to_stored(&issued.invoice)),
            text: issued.text.clone(),
            at: Some(timestamp_from_ms(issued.at_ms)),
        }
        .encode_to_vec(),
    )
}

/// An invoice issued from its stored form.
pub fn decode(event_type: &str, payload: &[u8]) -> Result<Issued, String> {
    if event_type != INVOICE_ISSUED {
        return Err(format!("{event_type} is not an invoice event"));
    }
    let field = field(event_type);
    let issued = pb::InvoiceIssued::decode(payload).map_err(bad(event_type))?;
    let invoice = issued.invoice.ok_or_else(|| format!("{event_type}: invoice is required"))?;
    Ok(Issued {
        issuer: id(&issued.issuer_organization_id, "issuer_organization_id").map_err(&field)?,
        year: issued.year,
        prefix: issued.prefix,
        number: issued.sequence_number,
        invoice: invoice_from_stored(invoice).map_err(|error| field(error.under("invoice")))?,
        text: issued.text,
        at_ms: ms(issued.at.as_ref(), "at").map_err(&field)?,
    })
}

/// The event `recorded` holds, whatever shape it was written in (through [`crate::upcast`]).
pub fn decode_recorded(recorded: &RecordedEvent) -> Result<Issued, String> {
    let stored = crate::upcast(Stored::of(recorded))?;
    decode(stored.event_type, &stored.payload)
}

fn party_to_stored(party: &InvoiceParty) -> pb::StoredInvoiceParty {
    pb::StoredInvoiceParty {
        organization_id: party.organization.to_string(),
        name: party.name.clone(),
        address: party.address.clone(),
        country: common::Country::from(party.country).into(),
        identifiers: party.identifiers.clone(),
        vat_number: party.vat_number.clone().unwrap_or_default(),
    }
}

fn party_from_stored(party: Option<pb::StoredInvoiceParty>, field: &str) -> Result<InvoiceParty, FieldError> {
    let party = party.ok_or_else(|| FieldError::required(field))?;
    let under = |error: FieldError| error.under(field);
    Ok(InvoiceParty {
        organization: id(&party.organization_id, "organization_id").map_err(under)?,
        name: party.name,
        address: party.address,
        country: country_from_wire(party.country, "country").map_err(under)?,
        identifiers: party.identifiers,
        vat_number: (!party.vat_number.is_empty()).then_some(party.vat_number),
    })
}

fn invoice_to_stored(invoice: &IssuedInvoice) -> pb::StoredInvoice {
    pb::StoredInvoice {
        invoice_id: invoice.invoice_id.to_string(),
        number: invoice.number.clone(),
        issue_date: invoice.issue_date.clone(),
        deal_id: invoice.deal_id.to_string(),
        issuer: Some(party_to_stored(&invoice.issuer)),
        customer: Some(party_to_stored(&invoice.customer)),
        supply: invoice.supply.clone(),
        lines: invoice
            .lines
            .iter()
            .map(|line| pb::StoredInvoiceLine {
                description: line.description.clone(),
                quantity: Some(line.quantity.into()),
                unit_price: Some(line.unit_price.into()),
                net: Some(line.net.into()),
            })
            .collect(),
        net_total: Some(invoice.net_total.into()),
        vat_regime: invoice.vat_regime.clone(),
        vat_rate_bp: invoice.vat_rate_bp,
        vat: Some(invoice.vat.into()),
        gross_total: Some(invoice.gross_total.into()),
        mentions: invoice.mentions.clone(),
    }
}

fn invoice_from_stored(invoice: pb::StoredInvoice) -> Result<IssuedInvoice, FieldError> {
    let lines = invoice
        .lines
        .into_iter()
        .enumerate()
        .map(|(index, line)| {
            let under = |error: FieldError| error.under(&format!("lines[{index}]"));
            Ok(InvoiceLine {
                description: line.description,
                quantity: required(line.quantity, "quantity").map_err(under)?,
                unit_price: required(line.unit_price, "unit_price").map_err(under)?,
                net: required(line.net, "net").map_err(under)?,
            })
        })
        .collect::<Result<Vec<_>, FieldError>>()?;
    Ok(IssuedInvoice {
        invoice_id: id(&invoice.invoice_id, "invoice_id")?,
        number: invoice.number,
        issue_date: invoice.issue_date,
        deal_id: id(&invoice.deal_id, "deal_id")?,
        issuer: party_from_stored(invoice.issuer, "issuer")?,
        customer: party_from_stored(invoice.customer, "customer")?,
        supply: invoice.supply,
        lines,
        net_total: required(invoice.net_total, "net_total")?,
        vat_regime: invoice.vat_regime,
        vat_rate_bp: invoice.vat_rate_bp,
        vat: required(invoice.vat, "vat")?,
        gross_total: required(invoice.gross_total, "gross_total")?,
        mentions: invoice.mentions,
    })
}
