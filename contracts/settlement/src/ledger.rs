//! The ledgers' events, one ledger per currency in the stream `ledger-<currency>`: transfers
//! made at once, and pending (two-phase) transfers created, then posted or voided. Accounts
//! are named by their keys (`available:<organization>:EUR`, `escrow:EUR`...).

use std::fmt;

use prost::Message as _;
use symbiose_contract::Stored;
use symbiose_domain::input::echo;
use symbiose_domain::{Currency, Money};
use symbiose_eventstore::RecordedEvent;
use symbiose_proto::convert::{FieldError, id, required, timestamp_from_ms};
use symbiose_proto::settlement::v1 as pb;
use uuid::Uuid;

use crate::wire::{bad, field, ms};
use crate::{PENDING_CREATED, PENDING_POSTED, PENDING_VOIDED, TRANSFERRED};

/// What an account is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub enum AccountKind {
    /// An organization's money on the platform. Never negative.
    Available,
    /// Payments held until delivery. Never negative.
    Escrow,
    /// The platform's fees earned. Never negative.
    Fees,
    /// VAT invoiced on settled deals, until paid out. Never negative.
    VatCollected,
    /// The world outside the platform: deposits come from it, payouts go to it. May go
    /// negative: it is minus the money on the platform.
    External,
}

impl AccountKind {
    pub const ALL: [AccountKind; 5] = [
        AccountKind::Available,
        AccountKind::Escrow,
        AccountKind::Fees,
        AccountKind::VatCollected,
        AccountKind::External,
    ];

    /// The name in account keys: `available`, `escrow`, `fees`, `vat_collected`, `external`.
    pub fn name(self) -> &'static str {
        match self {
            AccountKind::Available => "available",
            AccountKind::Escrow => "escrow",
            AccountKind::Fees => "fees",
            AccountKind::VatCollected => "vat_collected",
            AccountKind::External => "external",
        }
    }

    /// Whether the balance may go below zero: only the world's.
    pub fn may_go_negative(self) -> bool {
        self == AccountKind::External
    }
}

/// An account: its kind, the organization for `Available` (and only for it), the currency.
/// Built by its constructors, so an `Available` account always names its organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub struct AccountId {
    kind: AccountKind,
    organization: Option<Uuid>,
    currency: Currency,
}

/// Why a key is not an account.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountKeyError {
    #[error("account key {0:?} is not <kind>[:<organization>]:<currency>")]
    Malformed(String),
}

impl AccountId {
    pub fn available(organization: Uuid, currency: Currency) -> AccountId {
        AccountId { kind: AccountKind::Available, organization: Some(organization), currency }
    }

    pub fn escrow(currency: Currency) -> AccountId {
        AccountId { kind: AccountKind::Escrow, organization: None, currency }
    }

    pub fn fees(currency: Currency) -> AccountId {
        AccountId { kind: AccountKind::Fees, organization: None, currency }
    }

    pub fn vat_collected(currency: Currency) -> AccountId {
        AccountId { kind: AccountKind::VatCollected, organization: None, currency }
    }

    pub fn external(currency: Currency) -> AccountId {
        AccountId { kind: AccountKind::External, organization: None, currency }
    }

    pub fn kind(&self) -> AccountKind {
        self.kind
    }

    pub fn organization(&self) -> Option<Uuid> {
        self.organization
    }

    pub fn currency(&self) -> Currency {
        self.currency
    }

    /// The stable key: `available:<organization uuid>:EUR`, `escrow:EUR`, `fees:CHF`,
    /// `vat_collected:EUR`, `external:EUR`. It never changes for an account, so it may be
    /// stored and used as a page token.
    pub fn key(&self) -> String {
        match self.organization {
            Some(organization) => format!("{}:{organization}:{}", self.kind.name(), self.currency),
            None => format!("{}:{}", self.kind.name(), self.currency),
        }
    }

    /// The account of a key written by `key`.
    pub fn parse_key(key: &str) -> Result<AccountId, AccountKeyError> {
        let malformed = || AccountKeyError::Malformed(key.chars().take(120).collect());
        let parts: Vec<&str> = key.split(':').collect();
        let (kind, organization, currency) = match parts.as_slice() {
            [kind, currency] => (*kind, None, *currency),
            [kind, organization, currency] => (*kind, Some(*organization), *currency),
            _ => return Err(malformed()),
        };
        let kind = AccountKind::ALL.into_iter().find(|k| k.name() == kind).ok_or_else(malformed)?;
        let currency: Currency = currency.parse().map_err(|_| malformed())?;
        match (kind, organization) {
            (AccountKind::Available, Some(organization)) => {
                let organization = Uuid::try_parse(organization).map_err(|_| malformed())?;
                Ok(AccountId::available(organization, currency))
            }
            (AccountKind::Available, None) | (_, Some(_)) => Err(malformed()),
            (kind, None) => Ok(AccountId { kind, organization: None, currency }),
        }
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key())
    }
}

/// What a transfer is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub enum TransferCode {
    /// Money coming onto the platform: External -> Available.
    Deposit,
    /// Money leaving the platform: Available (or Fees, VatCollected) -> External.
    Payout,
    /// A payment held: Available -> Escrow, pending until delivery.
    Escrow,
    /// The net price paid to the seller: Escrow -> Available.
    Settlement,
    /// The platform's fee: Escrow -> Fees.
    Fee,
    /// The VAT of a settled deal: Escrow -> VatCollected.
    Vat,
    /// Money given back to a payer.
    Refund,
    /// Pallets paid for instead of returned: Available -> Available.
    PalletPayment,
}

impl TransferCode {
    pub fn name(self) -> &'static str {
        match self {
            TransferCode::Deposit => "deposit",
            TransferCode::Payout => "payout",
            TransferCode::Escrow => "escrow",
            TransferCode::Settlement => "settlement",
            TransferCode::Fee => "fee",
            TransferCode::Vat => "vat",
            TransferCode::Refund => "refund",
            TransferCode::PalletPayment => "pallet_payment",
        }
    }
}

/// A transfer as asked: immediate (`Command::Transfer`) or pending (`Command::CreatePending`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Transfer {
    pub id: Uuid,
    pub debit: AccountId,
    pub credit: AccountId,
    pub amount: Money,
    pub code: TransferCode,
    /// The deal it settles, if any.
    pub deal_id: Option<Uuid>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Event {
    Transferred {
        transfer: Transfer,
        at_ms: i64,
    },
    PendingCreated {
        transfer: Transfer,
        at_ms: i64,
    },
    /// `amount` moved, `released` given back to the debit account; together the pending amount.
    PendingPosted {
        id: Uuid,
        amount: Money,
        released: Money,
        at_ms: i64,
    },
    PendingVoided {
        id: Uuid,
        released: Money,
        at_ms: i64,
    },
}

impl TransferCode {
    pub const ALL: [TransferCode; 8] = [
        TransferCode::Deposit,
        TransferCode::Payout,
        TransferCode::Escrow,
        TransferCode::Settlement,
        TransferCode::Fee,
        TransferCode::Vat,
        TransferCode::Refund,
        TransferCode::PalletPayment,
    ];

    /// The code of a name written by `name`.
    pub fn from_name(name: &str) -> Option<TransferCode> {
        TransferCode::ALL.into_iter().find(|code| code.name() == name)
    }
}

/// `event` in its stored form.
pub fn encode(event: &Event) -> (&'static str, Vec<u8>) {
    match event {
        Event::Transferred { transfer, at_ms } => (
            TRANSFERRED,
            pb::Transferred {
                transfer: Some(transfer_to_stored(transfer)),
                at: Some(timestamp_from_ms(*at_ms)),
            }
            .encode_to_vec(),
        ),
        Event::PendingCreated { transfer, at_ms } => (
            PENDING_CREATED,
            pb::PendingCreated {
                transfer: Some(transfer_to_stored(transfer)),
                at: Some(timestamp_from_ms(*at_ms)),
            }
            .encode_to_vec(),
        ),
        Event::PendingPosted { id, amount, released, at_ms } => (
            PENDING_POSTED,
            pb::PendingPosted {
                transfer_id: id.to_string(),
                amount: Some((*amount).into()),
                released: Some((*released).into()),
                at: Some(timestamp_from_ms(*at_ms)),
            }
            .encode_to_vec(),
        ),
        Event::PendingVoided { id, released, at_ms } => (
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

/// A ledger event from its stored form.
pub fn decode(event_type: &str, payload: &[u8]) -> Result<Event, String> {
    let field = field(event_type);
    let transfer = |transfer: Option<pb::LedgerTransfer>| -> Result<Transfer, String> {
        transfer_from_stored(transfer.ok_or_else(|| format!("{event_type}: transfer is required"))?)
            .map_err(&field)
    };
    Ok(match event_type {
        TRANSFERRED => {
            let event = pb::Transferred::decode(payload).map_err(bad(event_type))?;
            Event::Transferred {
                transfer: transfer(event.transfer)?,
                at_ms: ms(event.at.as_ref(), "at").map_err(&field)?,
            }
        }
        PENDING_CREATED => {
            let event = pb::PendingCreated::decode(payload).map_err(bad(event_type))?;
            Event::PendingCreated {
                transfer: transfer(event.transfer)?,
                at_ms: ms(event.at.as_ref(), "at").map_err(&field)?,
            }
        }
        PENDING_POSTED => {
            let event = pb::PendingPosted::decode(payload).map_err(bad(event_type))?;
            Event::PendingPosted {
                id: id(&event.transfer_id, "transfer_id").map_err(&field)?,
                amount: required(event.amount, "amount").map_err(&field)?,
                released: required(event.released, "released").map_err(&field)?,
                at_ms: ms(event.at.as_ref(), "at").map_err(&field)?,
            }
        }
        PENDING_VOIDED => {
            let event = pb::PendingVoided::decode(payload).map_err(bad(event_type))?;
            Event::PendingVoided {
                id: id(&event.transfer_id, "transfer_id").map_err(&field)?,
                released: required(event.released, "released").map_err(&field)?,
                at_ms: ms(event.at.as_ref(), "at").map_err(&field)?,
            }
        }
        other => return Err(format!("{other} is not a ledger event")),
    })
}

/// The event `recorded` holds, whatever shape it was written in (through [`crate::upcast`]).
pub fn decode_recorded(recorded: &RecordedEvent) -> Result<Event, String> {
    let stored = crate::upcast(Stored::of(recorded))?;
    decode(stored.event_type, &stored.payload)
}

fn transfer_to_stored(transfer: &Transfer) -> pb::LedgerTransfer {
    pb::LedgerTransfer {
        transfer_id: transfer.id.to_string(),
        debit_account: transfer.debit.key(),
        credit_account: transfer.credit.key(),
        amount: Some(transfer.amount.into()),
        code: transfer.code.name().to_owned(),
        deal_id: transfer.deal_id.map(|deal| deal.to_string()).unwrap_or_default(),
    }
}

fn transfer_from_stored(transfer: pb::LedgerTransfer) -> Result<Transfer, FieldError> {
    let account = |key: &str, field: &str| {
        AccountId::parse_key(key)
            .map_err(|_| FieldError::new(field, format!("{:?} is not an account key", echo(key))))
    };
    Ok(Transfer {
        id: id(&transfer.transfer_id, "transfer_id")?,
        debit: account(&transfer.debit_account, "debit_account")?,
        credit: account(&transfer.credit_account, "credit_account")?,
        amount: required(transfer.amount, "amount")?,
        code: TransferCode::from_name(&transfer.code).ok_or_else(|| {
            FieldError::new("code", format!("{:?} is not a transfer code", echo(&transfer.code)))
        })?,
        deal_id: if transfer.deal_id.is_empty() { None } else { Some(id(&transfer.deal_id, "deal_id")?) },
    })
}
