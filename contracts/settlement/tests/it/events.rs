//! Every typed event of settlement reads back as written.

use symbiose_domain::{Country, Currency, Money, Quantity, Unit};
use symbiose_settlement_contract::escrow::{self, EscrowEvent};
use symbiose_settlement_contract::invoice::{self, InvoiceLine, InvoiceParty, Issued, IssuedInvoice};
use symbiose_settlement_contract::ledger::{self, AccountId, Transfer, TransferCode};
use symbiose_settlement_contract::vat::{MENTION_INTRA_EU_FR, Regime};
use uuid::Uuid;

fn eur(minor: i64) -> Money {
    Money::new(minor, Currency::Eur).expect("money")
}

#[test]
fn ledger_and_escrow_events_read_back_as_written() {
    let buyer = Uuid::now_v7();
    let transfer = Transfer {
        id: Uuid::now_v7(),
        debit: AccountId::available(buyer, Currency::Eur),
        credit: AccountId::escrow(Currency::Eur),
        amount: eur(14_280),
        code: TransferCode::Escrow,
        deal_id: Some(Uuid::now_v7()),
    };
    for event in [
        ledger::Event::Transferred { transfer, at_ms: 1 },
        ledger::Event::PendingCreated { transfer, at_ms: 2 },
        ledger::Event::PendingPosted { id: transfer.id, amount: eur(13_566), released: eur(714), at_ms: 3 },
        ledger::Event::PendingVoided { id: transfer.id, released: eur(714), at_ms: 4 },
    ] {
        let (event_type, payload) = ledger::encode(&event);
        assert_eq!(ledger::decode(event_type, &payload), Ok(event));
    }
    for event in [
        EscrowEvent::Held {
            fee_rate_bp: 200,
            regime: Regime::IntraEuExempt { mention: MENTION_INTRA_EU_FR },
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
        let (event_type, payload) = escrow::encode(Uuid::now_v7(), &event);
        assert_eq!(escrow::decode(event_type, &payload), Ok(event));
    }
    assert_eq!(TransferCode::from_name("pallet_payment"), Some(TransferCode::PalletPayment));
    assert_eq!(TransferCode::from_name("gift"), None);
    assert!(ledger::decode(escrow::encode(Uuid::now_v7(), &EscrowEvent::Cancelled).0, &[]).is_err());
}

#[test]
fn an_invoice_issued_reads_back_as_written() {
    let party = |name: &str, vat_number: Option<&str>| InvoiceParty {
        organization: Uuid::now_v7(),
        name: name.into(),
        address: "1 rue de la Paix\n75002 Paris".into(),
        country: Country::Fr,
        identifiers: vec!["552100554".into()],
        vat_number: vat_number.map(Into::into),
    };
    let issued = Issued {
        issuer: Uuid::now_v7(),
        year: 2026,
        prefix: "FR".into(),
        number: 1,
        invoice: IssuedInvoice {
            invoice_id: Uuid::now_v7(),
            number: "FR-2026-000001".into(),
            issue_date: "2026-12-02".into(),
            deal_id: Uuid::now_v7(),
            issuer: party("Papeterie", Some("FR44552100554")),
            customer: party("Cartonnerie", None),
            supply: "goods".into(),
            lines: vec![InvoiceLine {
                description: "Baled cardboard".into(),
                quantity: Quantity::new(38_000, Unit::Tonne, true).expect("quantity"),
                unit_price: eur(9_000),
                net: eur(342_000),
            }],
            net_total: eur(342_000),
            vat_regime: "domestic_standard".into(),
            vat_rate_bp: 2000,
            vat: eur(68_400),
            gross_total: eur(410_400),
            mentions: vec![],
        },
        text: "FACTURE FR-2026-000001".into(),
        at_ms: 1_764_633_600_000,
    };
    let (event_type, payload) = invoice::encode(&issued);
    assert_eq!(invoice::decode(event_type, &payload), Ok(issued));
}
