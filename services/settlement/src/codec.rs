//! The wire form of settlement: its events are the contract's (`symbiose-settlement-contract`:
//! the typed events and their stored form), named here as the service uses them; and invoices
//! to `settlement.proto`, the API's form.

use symbiose_proto::common::v1 as common;
use symbiose_proto::settlement::v1 as pb;
use symbiose_settlement_contract::invoice::{InvoiceParty as IssuedParty, IssuedInvoice};
use uuid::Uuid;

use crate::invoice::{Invoice, PartyDetails};
use crate::vat::Supply;

pub use symbiose_proto::convert::id;
pub use symbiose_settlement_contract::escrow::{
    EscrowEvent, decode as decode_escrow_event, decode_recorded as decode_recorded_escrow_event,
    encode as encode_escrow_event,
};
/// An issued invoice as stored: the sequence's facts, the invoice as data and as text.
pub use symbiose_settlement_contract::invoice::{
    Issued as StoredInvoice, decode as decode_invoice, decode_recorded as decode_recorded_invoice,
    encode as encode_invoice,
};
pub use symbiose_settlement_contract::ledger::{
    decode as decode_ledger_event, decode_recorded as decode_recorded_ledger_event,
    encode as encode_ledger_event,
};
pub use symbiose_settlement_contract::vat::regime_kind;
pub use symbiose_settlement_contract::{
    ESCROW_CANCELLED, ESCROW_HELD, ESCROW_REFUSED, ESCROW_RELEASED, INVOICE_ISSUED, PENDING_CREATED,
    PENDING_POSTED, PENDING_VOIDED, TRANSFERRED,
};

fn party_record(party: &PartyDetails) -> IssuedParty {
    IssuedParty {
        organization: party.organization,
        name: party.name.clone(),
        address: party.address.clone(),
        country: party.country,
        identifiers: party.identifiers.iter().map(ToString::to_string).collect(),
        vat_number: party.vat_number.as_ref().map(ToString::to_string),
    }
}

/// `invoice` as it is issued and stored, under the id `invoice_id`.
pub fn invoice_record(invoice_id: Uuid, invoice: &Invoice) -> IssuedInvoice {
    IssuedInvoice {
        invoice_id,
        number: invoice.number.clone(),
        issue_date: invoice.issue_date.to_string(),
        deal_id: invoice.deal_id,
        issuer: party_record(&invoice.issuer),
        customer: party_record(&invoice.customer),
        supply: match invoice.supply {
            Supply::Goods => "goods",
            Supply::Service => "service",
        }
        .to_owned(),
        lines: invoice.lines.clone(),
        net_total: invoice.net_total,
        vat_regime: regime_kind(&invoice.regime).to_owned(),
        vat_rate_bp: invoice.regime.rate_bp(),
        vat: invoice.vat,
        gross_total: invoice.gross_total,
        mentions: invoice.mentions.clone(),
    }
}

fn party_to_wire(party: &IssuedParty) -> pb::InvoiceParty {
    pb::InvoiceParty {
        organization_id: party.organization.to_string(),
        name: party.name.clone(),
        address: party.address.clone(),
        country: common::Country::from(party.country).into(),
        identifiers: party.identifiers.clone(),
        vat_number: party.vat_number.clone().unwrap_or_default(),
    }
}

/// An issued invoice as the API shows it.
pub fn invoice_to_wire(invoice: &IssuedInvoice) -> pb::Invoice {
    pb::Invoice {
        invoice_id: invoice.invoice_id.to_string(),
        number: invoice.number.clone(),
        issue_date: invoice.issue_date.clone(),
        deal_id: invoice.deal_id.to_string(),
        issuer: Some(party_to_wire(&invoice.issuer)),
        customer: Some(party_to_wire(&invoice.customer)),
        supply: invoice.supply.clone(),
        lines: invoice
            .lines
            .iter()
            .map(|line| pb::InvoiceLine {
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
