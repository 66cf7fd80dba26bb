//! The `Stored*` messages were split from the API messages field for field: every event written
//! before the split decodes the same. Each API message, filled in every field, encoded, decoded
//! as its stored twin and encoded again gives the same bytes, and back.

use prost::Message;
use symbiose_proto::common::v1 as common;
use symbiose_proto::settlement::v1 as pb;

#[track_caller]
fn same_bytes<Api: Message + Default + PartialEq + std::fmt::Debug, Stored: Message + Default>(api: &Api) {
    let bytes = api.encode_to_vec();
    let stored = Stored::decode(bytes.as_slice()).expect("decodes as the stored message");
    assert_eq!(stored.encode_to_vec(), bytes, "stored form differs");
    assert_eq!(&Api::decode(stored.encode_to_vec().as_slice()).expect("decodes back"), api);
}

fn money(minor: i64) -> Option<common::Money> {
    Some(common::Money { amount_minor: minor, currency_code: "EUR".into() })
}

fn party(name: &str) -> pb::InvoiceParty {
    pb::InvoiceParty {
        organization_id: "0191b4a8-3f5e-7c2a-9d10-3c4b5a6d7e8f".into(),
        name: name.into(),
        address: "1 rue de la Paix\n75002 Paris".into(),
        country: common::Country::France.into(),
        identifiers: vec!["552100554".into(), "55210055400013".into()],
        vat_number: "FR44552100554".into(),
    }
}

fn line() -> pb::InvoiceLine {
    pb::InvoiceLine {
        description: "Baled cardboard".into(),
        quantity: Some(common::Quantity { amount_milli: 38_000, unit: common::Unit::Tonne.into(), basis: 2 }),
        unit_price: money(9_000),
        net: money(342_000),
    }
}

#[test]
fn an_invoice_is_stored_as_the_api_wrote_it() {
    same_bytes::<_, pb::StoredInvoiceParty>(&party("Papeterie"));
    same_bytes::<_, pb::StoredInvoiceLine>(&line());
    same_bytes::<_, pb::StoredInvoice>(&pb::Invoice {
        invoice_id: "0191b4a8-3f5e-7c2a-9d10-000000000001".into(),
        number: "FR-2026-000001".into(),
        issue_date: "2026-12-02".into(),
        deal_id: "0191b4a8-3f5e-7c2a-9d10-000000000002".into(),
        issuer: Some(party("Papeterie")),
        customer: Some(party("Cartonnerie")),
        supply: "goods".into(),
        lines: vec![line(), line()],
        net_total: money(684_000),
        vat_regime: "domestic_standard".into(),
        vat_rate_bp: 2000,
        vat: money(136_800),
        gross_total: money(820_800),
        mentions: vec!["Autoliquidation".into(), "Escompte: néant".into()],
    });
}
