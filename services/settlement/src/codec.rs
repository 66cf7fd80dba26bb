//! The wire form of settlement: ledger, escrow and invoice events to and from `events.proto`
//! (`symbiose.settlement.v1.<type>`), and invoices to `settlement.proto`.

use prost::Message as _;
use symbiose_domain::input::echo;
use symbiose_domain::{Country, Money};
use symbiose_proto::common::v1 as common;
use symbiose_proto::convert::{
    FieldError, country_from_wire, ms_from_timestamp, required, timestamp_from_ms,
};
use symbiose_proto::settlement::v1 as pb;
use uuid::Uuid;

use crate::invoice::{Invoice, PartyDetails};
use crate::ledger::{self, AccountId, Transfer, TransferCode};
use crate::vat::{self, Regime, Supply};

pub const TRANSFERRED: &str = "symbiose.settlement.v1.Transferred";
pub const PENDING_CREATED: &str = "symbiose.settlement.v1.PendingCreated";
pub const PENDING_POSTED: &str = "symbiose.settlement.v1.PendingPosted";
pub const PENDING_VOIDED: &str = "symbiose.settlement.v1.PendingVoided";
pub const ESCROW_HELD: &str = "symbiose.settlement.v1.EscrowHeld";
pub const ESCROW_REFUSED: &str = "symbiose.settlement.v1.EscrowRefused";
pub const ESCROW_RELEASED: &str = "symbiose.settlement.v1.EscrowReleased";
pub const ESCROW_CANCELLED: &str = "symbiose.settlement.v1.EscrowCancelled";
pub const INVOICE_ISSUED: &str = "symbiose.settlement.v1.InvoiceIssued";

/// Every mention a regime may carry: a stored regime names one of them.
const MENTIONS: [&str; 13] = [
    vat::MENTION_REVERSE_CHARGE_FR,
    vat::MENTION_REVERSE_CHARGE_DE,
    vat::MENTION_INTRA_EU_FR,
    vat::MENTION_INTRA_EU_DE,
    vat::MENTION_INTRA_EU_OTHER,
    vat::MENTION_EXPORT_FR,
    vat::MENTION_EXPORT_DE,
    vat::MENTION_EXPORT_EU_OTHER,
    vat::MENTION_EXPORT_CH,
    vat::MENTION_SERVICE_REVERSE_CHARGE_FR,
    vat::MENTION_SERVICE_REVERSE_CHARGE_DE,
    vat::MENTION_SERVICE_REVERSE_CHARGE_CH,
    vat::MENTION_SERVICE_REVERSE_CHARGE_OTHER,
];

pub use symbiose_proto::convert::id;

fn ms(timestamp: Option<&prost_types::Timestamp>, field: &str) -> Result<i64, FieldError> {
    timestamp.map_or(Ok(0), |at| ms_from_timestamp(at, field))
}

fn money(value: Option<common::Money>, field: &str) -> Result<Money, FieldError> {
    required(value, field)
}

pub fn code_from_name(name: &str) -> Option<TransferCode> {
    [
        TransferCode::Deposit,
        TransferCode::Payout,
        TransferCode::Escrow,
        TransferCode::Settlement,
        TransferCode::Fee,
        TransferCode::Vat,
        TransferCode::Refund,
        TransferCode::PalletPayment,
    ]
    .into_iter()
    .find(|code| code.name() == name)
}

fn transfer_to_wire(transfer: &Transfer) -> pb::LedgerTransfer {
    pb::LedgerTransfer {
        transfer_id: transfer.id.to_string(),
        debit_account: transfer.debit.key(),
        credit_account: transfer.credit.key(),
        amount: Some(transfer.amount.into()),
        code: transfer.code.name().to_owned(),
        deal_id: transfer.deal_id.map(|deal| deal.to_string()).unwrap_or_default(),
    }
}

fn transfer_from_wire(transfer: pb::LedgerTransfer) -> Result<Transfer, FieldError> {
    let account = |key: &str, field: &str| {
        AccountId::parse_key(key)
            .map_err(|_| FieldError::new(field, format!("{:?} is not an account key", echo(key))))
    };
    Ok(Transfer {
        id: id(&transfer.transfer_id, "transfer_id")?,
        debit: account(&transfer.debit_account, "debit_account")?,
        credit: account(&transfer.credit_account, "credit_account")?,
        amount: money(transfer.amount, "amount")?,
        code: code_from_name(&transfer.code).ok_or_else(|| {
            FieldError::new("code", format!("{:?} is not a transfer code", echo(&transfer.code)))
        })?,
        deal_id: if transfer.deal_id.is_empty() { None } else { Some(id(&transfer.deal_id, "deal_id")?) },
    })
}

pub fn encode_ledger_event(event: &ledger::Event) -> (&'static str, Vec<u8>) {
    match event {
        ledger::Event::Transferred { transfer, at_ms } => (
            TRANSFERRED,
            pb::Transferred {
                transfer: Some(transfer_to_wire(transfer)),
                at: Some(timestamp_from_ms(*at_ms)),
            }
            .encode_to_vec(),
        ),
        ledger::Event::PendingCreated { transfer, at_ms } => (
            PENDING_CREATED,
            pb::PendingCreated {
                transfer: Some(transfer_to_wire(transfer)),
                at: Some(timestamp_from_ms(*at_ms)),
            }
            .encode_to_vec(),
        ),
        ledger::Event::PendingPosted { id, amount, released, at_ms } => (
            PENDING_POSTED,
            pb::PendingPosted {
                transfer_id: id.to_string(),
                amount: Some((*amount).into()),
                released: Some((*released).into()),
                at: Some(timestamp_from_ms(*at_ms)),
            }
            .encode_to_vec(),
        ),
        ledger::Event::PendingVoided { id, released, at_ms } => (
            PENDING_VOIDED,
            pb::PendingVoided {
                transfer_id: id.to_string(),
                released: Some((*released).into()),
                at: Some(timestamp_from_ms(*at_ms)),
            }
            .encode_to_vec(),
        ),
    }
}

pub fn decode_ledger_event(event_type: &str, payload: &[u8]) -> Result<ledger::Event, String> {
    let bad = |error: prost::DecodeError| format!("{event_type}: {error}");
    let field = |error: FieldError| format!("{event_type}: {error}");
    let transfer = |transfer: Option<pb::LedgerTransfer>| -> Result<Transfer, String> {
        transfer_from_wire(transfer.ok_or_else(|| format!("{event_type}: transfer is required"))?)
            .map_err(field)
    };
    Ok(match event_type {
        TRANSFERRED => {
            let event = pb::Transferred::decode(payload).map_err(bad)?;
            ledger::Event::Transferred {
                transfer: transfer(event.transfer)?,
                at_ms: ms(event.at.as_ref(), "at").map_err(field)?,
            }
        }
        PENDING_CREATED => {
            let event = pb::PendingCreated::decode(payload).map_err(bad)?;
            ledger::Event::PendingCreated {
                transfer: transfer(event.transfer)?,
                at_ms: ms(event.at.as_ref(), "at").map_err(field)?,
            }
        }
        PENDING_POSTED => {
            let event = pb::PendingPosted::decode(payload).map_err(bad)?;
            ledger::Event::PendingPosted {
                id: id(&event.transfer_id, "transfer_id").map_err(field)?,
                amount: money(event.amount, "amount").map_err(field)?,
                released: money(event.released, "released").map_err(field)?,
                at_ms: ms(event.at.as_ref(), "at").map_err(field)?,
            }
        }
        PENDING_VOIDED => {
            let event = pb::PendingVoided::decode(payload).map_err(bad)?;
            ledger::Event::PendingVoided {
                id: id(&event.transfer_id, "transfer_id").map_err(field)?,
                released: money(event.released, "released").map_err(field)?,
                at_ms: ms(event.at.as_ref(), "at").map_err(field)?,
            }
        }
        other => return Err(format!("{other} is not a ledger event")),
    })
}

pub fn regime_to_wire(regime: &Regime) -> pb::VatRegime {
    let (kind, country) = match regime {
        Regime::DomesticStandard { country, .. } => ("domestic_standard", Some(*country)),
        Regime::DomesticReverseCharge { country, .. } => ("domestic_reverse_charge", Some(*country)),
        Regime::IntraEuExempt { .. } => ("intra_eu_exempt", None),
        Regime::Export { .. } => ("export", None),
        Regime::ServiceReverseCharge { .. } => ("service_reverse_charge", None),
    };
    pb::VatRegime {
        kind: kind.to_owned(),
        country: country.map_or(0, |country| common::Country::from(country).into()),
        rate_bp: regime.rate_bp(),
        mention: regime.mention().unwrap_or_default().to_owned(),
    }
}

pub fn regime_kind(regime: &Regime) -> &'static str {
    match regime {
        Regime::DomesticStandard { .. } => "domestic_standard",
        Regime::DomesticReverseCharge { .. } => "domestic_reverse_charge",
        Regime::IntraEuExempt { .. } => "intra_eu_exempt",
        Regime::Export { .. } => "export",
        Regime::ServiceReverseCharge { .. } => "service_reverse_charge",
    }
}

fn regime_from_wire(regime: pb::VatRegime) -> Result<Regime, String> {
    let mention = || -> Result<&'static str, String> {
        MENTIONS
            .into_iter()
            .find(|known| *known == regime.mention)
            .ok_or_else(|| format!("{:?} is not a mention of the VAT rules", regime.mention))
    };
    let country = || -> Result<Country, String> {
        country_from_wire(regime.country, "regime.country").map_err(|error| error.to_string())
    };
    Ok(match regime.kind.as_str() {
        "domestic_standard" => Regime::DomesticStandard { country: country()?, rate_bp: regime.rate_bp },
        "domestic_reverse_charge" => {
            Regime::DomesticReverseCharge { country: country()?, mention: mention()? }
        }
        "intra_eu_exempt" => Regime::IntraEuExempt { mention: mention()? },
        "export" => Regime::Export { mention: mention()? },
        "service_reverse_charge" => Regime::ServiceReverseCharge { mention: mention()? },
        other => return Err(format!("{other:?} is not a VAT regime")),
    })
}

/// What the escrow of a deal records.
#[derive(Debug, Clone, PartialEq)]
pub enum EscrowEvent {
    Held { fee_rate_bp: u32, regime: Regime, pending_id: Uuid, held: Money },
    Refused { reason: String },
    Released { accepted_milli: i64 },
    Cancelled,
}

pub fn encode_escrow_event(deal_id: Uuid, event: &EscrowEvent) -> (&'static str, Vec<u8>) {
    let deal_id = deal_id.to_string();
    match event {
        EscrowEvent::Held { fee_rate_bp, regime, pending_id, held } => (
            ESCROW_HELD,
            pb::EscrowHeld {
                deal_id,
                fee_rate_bp: *fee_rate_bp,
                regime: Some(regime_to_wire(regime)),
                pending_transfer_id: pending_id.to_string(),
                held: Some((*held).into()),
            }
            .encode_to_vec(),
        ),
        EscrowEvent::Refused { reason } => {
            (ESCROW_REFUSED, pb::EscrowRefused { deal_id, reason: reason.clone() }.encode_to_vec())
        }
        EscrowEvent::Released { accepted_milli } => {
            (ESCROW_RELEASED, pb::EscrowReleased { deal_id, accepted_milli: *accepted_milli }.encode_to_vec())
        }
        EscrowEvent::Cancelled => (ESCROW_CANCELLED, pb::EscrowCancelled { deal_id }.encode_to_vec()),
    }
}

pub fn decode_escrow_event(event_type: &str, payload: &[u8]) -> Result<EscrowEvent, String> {
    let bad = |error: prost::DecodeError| format!("{event_type}: {error}");
    let field = |error: FieldError| format!("{event_type}: {error}");
    Ok(match event_type {
        ESCROW_HELD => {
            let held = pb::EscrowHeld::decode(payload).map_err(bad)?;
            EscrowEvent::Held {
                fee_rate_bp: held.fee_rate_bp,
                regime: regime_from_wire(
                    held.regime.ok_or_else(|| format!("{event_type}: regime is required"))?,
                )
                .map_err(|error| format!("{event_type}: {error}"))?,
                pending_id: id(&held.pending_transfer_id, "pending_transfer_id").map_err(field)?,
                held: money(held.held, "held").map_err(field)?,
            }
        }
        ESCROW_REFUSED => {
            EscrowEvent::Refused { reason: pb::EscrowRefused::decode(payload).map_err(bad)?.reason }
        }
        ESCROW_RELEASED => EscrowEvent::Released {
            accepted_milli: pb::EscrowReleased::decode(payload).map_err(bad)?.accepted_milli,
        },
        ESCROW_CANCELLED => EscrowEvent::Cancelled,
        other => return Err(format!("{other} is not an escrow event")),
    })
}

fn party_to_wire(party: &PartyDetails) -> pb::InvoiceParty {
    pb::InvoiceParty {
        organization_id: party.organization.to_string(),
        name: party.name.clone(),
        address: party.address.clone(),
        country: common::Country::from(party.country).into(),
        identifiers: party.identifiers.iter().map(ToString::to_string).collect(),
        vat_number: party.vat_number.as_ref().map(ToString::to_string).unwrap_or_default(),
    }
}

pub fn invoice_to_wire(invoice_id: Uuid, invoice: &Invoice) -> pb::Invoice {
    pb::Invoice {
        invoice_id: invoice_id.to_string(),
        number: invoice.number.clone(),
        issue_date: invoice.issue_date.to_string(),
        deal_id: invoice.deal_id.to_string(),
        issuer: Some(party_to_wire(&invoice.issuer)),
        customer: Some(party_to_wire(&invoice.customer)),
        supply: match invoice.supply {
            Supply::Goods => "goods",
            Supply::Service => "service",
        }
        .to_owned(),
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
        vat_regime: regime_kind(&invoice.regime).to_owned(),
        vat_rate_bp: invoice.regime.rate_bp(),
        vat: Some(invoice.vat.into()),
        gross_total: Some(invoice.gross_total.into()),
        mentions: invoice.mentions.clone(),
    }
}

/// An issued invoice as stored: the sequence's facts, the invoice as data and as text.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredInvoice {
    pub issuer: Uuid,
    pub year: i32,
    pub prefix: String,
    pub number: u32,
    pub invoice: pb::Invoice,
    pub text: String,
    pub at_ms: i64,
}

pub fn encode_invoice(stored: &StoredInvoice) -> (&'static str, Vec<u8>) {
    (
        INVOICE_ISSUED,
        pb::InvoiceIssued {
            issuer_organization_id: stored.issuer.to_string(),
            year: stored.year,
            prefix: stored.prefix.clone(),
            sequence_number: stored.number,
            invoice: Some(stored.invoice.clone()),
            text: stored.text.clone(),
            at: Some(timestamp_from_ms(stored.at_ms)),
        }
        .encode_to_vec(),
    )
}

pub fn decode_invoice(event_type: &str, payload: &[u8]) -> Result<StoredInvoice, String> {
    if event_type != INVOICE_ISSUED {
        return Err(format!("{event_type} is not an invoice event"));
    }
    let field = |error: FieldError| format!("{event_type}: {error}");
    let issued = pb::InvoiceIssued::decode(payload).map_err(|error| format!("{event_type}: {error}"))?;
    Ok(StoredInvoice {
        issuer: id(&issued.issuer_organization_id, "issuer_organization_id").map_err(field)?,
        year: issued.year,
        prefix: issued.prefix,
        number: issued.sequence_number,
        invoice: issued.invoice.ok_or_else(|| format!("{event_type}: invoice is required"))?,
        text: issued.text,
        at_ms: ms(issued.at.as_ref(), "at").map_err(field)?,
    })
}

#[cfg(test)]
mod tests {
    use symbiose_domain::Currency;

    use super::*;

    #[test]
    fn ledger_and_escrow_events_read_back_as_written() {
        let buyer = Uuid::now_v7();
        let transfer = Transfer {
            id: Uuid::now_v7(),
            debit: AccountId::available(buyer, Currency::Eur),
            credit: AccountId::escrow(Currency::Eur),
            amount: Money::new(14_280, Currency::Eur).expect("money"),
            code: TransferCode::Escrow,
            deal_id: Some(Uuid::now_v7()),
        };
        let released = Money::new(714, Currency::Eur).expect("money");
        for event in [
            ledger::Event::Transferred { transfer, at_ms: 1 },
            ledger::Event::PendingCreated { transfer, at_ms: 2 },
            ledger::Event::PendingPosted {
                id: transfer.id,
                amount: Money::new(13_566, Currency::Eur).expect("money"),
                released,
                at_ms: 3,
            },
            ledger::Event::PendingVoided { id: transfer.id, released, at_ms: 4 },
        ] {
            let (event_type, payload) = encode_ledger_event(&event);
            assert_eq!(decode_ledger_event(event_type, &payload), Ok(event));
        }
        for event in [
            EscrowEvent::Held {
                fee_rate_bp: 200,
                regime: Regime::IntraEuExempt { mention: vat::MENTION_INTRA_EU_FR },
                pending_id: transfer.id,
                held: transfer.amount,
            },
            EscrowEvent::Held {
                fee_rate_bp: 200,
                regime: Regime::DomesticStandard { country: Country::Fr, rate_bp: 2000 },
                pending_id: transfer.id,
                held: transfer.amount,
            },
            EscrowEvent::Refused { reason: "short of 12.00 EUR".into() },
            EscrowEvent::Released { accepted_milli: 38_000 },
            EscrowEvent::Cancelled,
        ] {
            let (event_type, payload) = encode_escrow_event(Uuid::now_v7(), &event);
            assert_eq!(decode_escrow_event(event_type, &payload), Ok(event));
        }
        assert_eq!(code_from_name("pallet_payment"), Some(TransferCode::PalletPayment));
        assert_eq!(code_from_name("gift"), None);
    }
}
