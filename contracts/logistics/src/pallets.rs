//! Pallet debts settled, in the stream `pallet_account-<id of the pair>`: by a return, or by a
//! payment that settlement moves.

use prost::Message as _;
use symbiose_contract::Stored;
use symbiose_domain::{Money, PalletGrade};
use symbiose_eventstore::RecordedEvent;
use symbiose_proto::convert::{id, timestamp_from_ms};
use symbiose_proto::logistics::v1 as pb;
use uuid::Uuid;

use crate::PALLET_BALANCE_SETTLED;
use crate::wire::{bad, field, grade_from_wire, grade_to_wire, ms};

/// How a debt of pallets is settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum SettleBy {
    /// The debtor gives back `count` pallets of the grade.
    Return { count: i64 },
    /// The debtor pays `amount` for `count` pallets.
    Payment { count: i64, amount: Money },
}

impl SettleBy {
    pub fn count(&self) -> i64 {
        match self {
            SettleBy::Return { count } | SettleBy::Payment { count, .. } => *count,
        }
    }
}

/// A settlement, decided: `debtor` owes `creditor` `by.count()` pallets fewer. A payment
/// carries its amount for the settlement service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Settlement {
    pub settlement_id: Uuid,
    pub debtor: Uuid,
    pub creditor: Uuid,
    pub grade: PalletGrade,
    pub by: SettleBy,
    pub at_ms: i64,
}

impl Settlement {
    /// What settlement moves for it: the amount the debtor pays the creditor, when it is paid.
    pub fn payment(&self) -> Option<Money> {
        match self.by {
            SettleBy::Payment { amount, .. } => Some(amount),
            SettleBy::Return { .. } => None,
        }
    }
}

/// `settlement` in its stored form.
pub fn encode(settlement: &Settlement) -> (&'static str, Vec<u8>) {
    let (pallets, payment) = match settlement.by {
        SettleBy::Return { count } => (count, None),
        SettleBy::Payment { count, amount } => (count, Some(amount.into())),
    };
    (
        PALLET_BALANCE_SETTLED,
        pb::PalletBalanceSettled {
            settlement_id: settlement.settlement_id.to_string(),
            debtor_organization_id: settlement.debtor.to_string(),
            creditor_organization_id: settlement.creditor.to_string(),
            grade: grade_to_wire(settlement.grade),
            pallets,
            payment,
            at: Some(timestamp_from_ms(settlement.at_ms)),
        }
        .encode_to_vec(),
    )
}

/// A settlement from its stored form.
pub fn decode(event_type: &str, payload: &[u8]) -> Result<Settlement, String> {
    if event_type != PALLET_BALANCE_SETTLED {
        return Err(format!("{event_type} is not a pallet account event"));
    }
    let field = field(event_type);
    let settled = pb::PalletBalanceSettled::decode(payload).map_err(bad(event_type))?;
    let count = settled.pallets;
    let by = match settled.payment {
        Some(amount) => SettleBy::Payment { count, amount: Money::try_from(amount).map_err(&field)? },
        None => SettleBy::Return { count },
    };
    Ok(Settlement {
        settlement_id: id(&settled.settlement_id, "settlement_id").map_err(&field)?,
        debtor: id(&settled.debtor_organization_id, "debtor_organization_id").map_err(&field)?,
        creditor: id(&settled.creditor_organization_id, "creditor_organization_id").map_err(&field)?,
        grade: grade_from_wire(settled.grade, "grade").map_err(&field)?,
        by,
        at_ms: ms(settled.at.as_ref(), "at").map_err(&field)?,
    })
}

/// The event `recorded` holds, whatever shape it was written in (through [`crate::upcast`]).
pub fn decode_recorded(recorded: &RecordedEvent) -> Result<Settlement, String> {
    let stored = crate::upcast(Stored::of(recorded))?;
    decode(stored.event_type, &stored.payload)
}
