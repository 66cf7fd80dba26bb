//! The escrow of a deal, in the stream `escrow-<deal id>`: the payer's money held (or refused),
//! then released at delivery or given back at cancellation.

use prost::Message as _;
use symbiose_contract::Stored;
use symbiose_domain::{Country, Money};
use symbiose_eventstore::RecordedEvent;
use symbiose_proto::common::v1 as common;
use symbiose_proto::convert::{country_from_wire, id, required};
use symbiose_proto::settlement::v1 as pb;
use uuid::Uuid;

use crate::vat::{MENTIONS, Regime, regime_kind};
use crate::wire::{bad, field};
use crate::{ESCROW_CANCELLED, ESCROW_HELD, ESCROW_REFUSED, ESCROW_RELEASED};

/// What the escrow of a deal records.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum EscrowEvent {
    Held { fee_rate_bp: u32, regime: Regime, pending_id: Uuid, held: Money },
    Refused { reason: String },
    Released { accepted_milli: i64 },
    Cancelled,
}

/// `event` of the escrow of `deal_id` in its stored form.
pub fn encode(deal_id: Uuid, event: &EscrowEvent) -> (&'static str, Vec<u8>) {
    let deal_id = deal_id.to_string();
    match event {
        EscrowEvent::Held { fee_rate_bp, regime, pending_id, held } => (
            ESCROW_HELD,
            pb::EscrowHeld {
                deal_id,
                fee_rate_bp: *fee_rate_bp,
                regime: Some(regime_to_stored(regime)),
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

/// An escrow event from its stored form.
pub fn decode(event_type: &str, payload: &[u8]) -> Result<EscrowEvent, String> {
    let bad = bad(event_type);
    let field = field(event_type);
    Ok(match event_type {
        ESCROW_HELD => {
            let held = pb::EscrowHeld::decode(payload).map_err(&bad)?;
            EscrowEvent::Held {
                fee_rate_bp: held.fee_rate_bp,
                regime: regime_from_stored(
                    held.regime.ok_or_else(|| format!("{event_type}: regime is required"))?,
                )
                .map_err(|error| format!("{event_type}: {error}"))?,
                pending_id: id(&held.pending_transfer_id, "pending_transfer_id").map_err(&field)?,
                held: required(held.held, "held").map_err(&field)?,
            }
        }
        ESCROW_REFUSED => {
            EscrowEvent::Refused { reason: pb::EscrowRefused::decode(payload).map_err(&bad)?.reason }
        }
        ESCROW_RELEASED => EscrowEvent::Released {
            accepted_milli: pb::EscrowReleased::decode(payload).map_err(&bad)?.accepted_milli,
        },
        ESCROW_CANCELLED => EscrowEvent::Cancelled,
        other => return Err(format!("{other} is not an escrow event")),
    })
}

/// The event `recorded` holds, whatever shape it was written in (through [`crate::upcast`]).
pub fn decode_recorded(recorded: &RecordedEvent) -> Result<EscrowEvent, String> {
    let stored = crate::upcast(Stored::of(recorded))?;
    decode(stored.event_type, &stored.payload)
}

fn regime_to_stored(regime: &Regime) -> pb::VatRegime {
    let country = match regime {
        Regime::DomesticStandard { country, .. } | Regime::DomesticReverseCharge { country, .. } => {
            Some(*country)
        }
        Regime::IntraEuExempt { .. } | Regime::Export { .. } | Regime::ServiceReverseCharge { .. } => None,
    };
    pb::VatRegime {
        kind: regime_kind(regime).to_owned(),
        country: country.map_or(0, |country| common::Country::from(country).into()),
        rate_bp: regime.rate_bp(),
        mention: regime.mention().unwrap_or_default().to_owned(),
    }
}

fn regime_from_stored(regime: pb::VatRegime) -> Result<Regime, String> {
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
