//! The Ledger aggregate: double-entry bookkeeping of the money on the platform, one ledger per
//! currency.
//!
//! Accounts (`AccountId`, keyed by `AccountId::key`, such as `available:<org>:EUR` or
//! `escrow:EUR`):
//!
//! - `Available` of an organization: the money it holds on the platform and may spend;
//! - `Escrow`: buyers' payments held until delivery;
//! - `Fees`: the platform's fees earned;
//! - `VatCollected`: the VAT invoiced on settled deals, held until it is paid out with the
//!   seller's VAT return;
//! - `External`: the world. Deposits debit it and payouts credit it, so its balance is minus
//!   the money on the platform.
//!
//! The rules it keeps:
//!
//! - a transfer debits one account and credits another, for the same positive amount of at
//!   most `TRANSFER_AMOUNT_MINOR_MAX`, in the ledger's currency on both sides, never from an
//!   account to itself; a balance is credits minus debits;
//! - no account but `External` ever goes below zero: a debit is refused when the account's
//!   available balance (posted minus pending debits) is short, naming the account and the
//!   shortfall; no balance leaves `[-BALANCE_MINOR_MAX, BALANCE_MINOR_MAX]`;
//! - two phases: `CreatePending` reserves the amount on the debit account (and shows it as a
//!   pending credit on the other); `PostPending` moves all or part of it and releases the
//!   rest; `VoidPending` releases it all. A pending transfer is posted or voided once;
//! - idempotency: a transfer id already applied with the same content, a post repeated with
//!   the same amount, a void repeated, all give no event; the same id with another content is
//!   refused (`IdConflict`, `AlreadyPosted`, `AlreadyVoided`);
//! - hence the sum of all posted balances is always zero.
//!
//! Why one ledger per currency: a transfer must see the balances of both its accounts at the
//! same version, and settlement moves money between any organizations, so the consistency
//! boundary is the currency (transfers never cross currencies). The shell keeps one stream per
//! currency (`ledger-EUR`, `ledger-CHF`) and appends with the expected version, retrying on a
//! conflict; `decide_batch` decides the commands of one plan together, so a settlement is
//! appended whole or not at all. The state also keeps the journal of posted movements, from
//! which `statement` is drawn.
//!
//! Pure: `decide`, `decide_batch` and `evolve`; the shell passes `now_ms` and the ids.

use std::collections::BTreeMap;

use symbiose_domain::{Currency, Money};
use uuid::Uuid;

use crate::RejectionKind;

/// Largest amount of one transfer, in minor units (1,000,000,000.00): far above any trade on
/// the marketplace, far below the balance limit.
pub const TRANSFER_AMOUNT_MINOR_MAX: i64 = 100_000_000_000;
/// Largest absolute balance of any account, in minor units: the limit of `Money`, so every
/// balance is money.
pub const BALANCE_MINOR_MAX: i64 = symbiose_domain::money::MONEY_MINOR_MAX;
/// Most pending transfers open at once in one ledger: one per deal in escrow.
pub const PENDING_TRANSFERS_MAX: usize = 1_000_000;
/// Most commands decided together by `decide_batch`: a settlement plan has at most four.
pub const BATCH_COMMANDS_MAX: usize = 16;

pub use symbiose_settlement_contract::ledger::{
    AccountId, AccountKeyError, AccountKind, Event, Transfer, TransferCode,
};

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Command {
    /// Moves the amount at once.
    Transfer(Transfer),
    /// Reserves the amount on the debit account.
    CreatePending(Transfer),
    /// Moves `amount` (all or part of the pending amount) and releases the rest.
    PostPending { id: Uuid, amount: Money },
    /// Releases the whole pending amount.
    VoidPending { id: Uuid },
}

/// What the shell passes in.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct Context {
    pub now_ms: i64,
}

/// Why a command is refused; `kind` says how it reaches the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("the amount of a transfer is positive")]
    AmountNotPositive,
    #[error("the amount of a transfer is at most {TRANSFER_AMOUNT_MINOR_MAX} minor units")]
    AmountTooLarge,
    #[error("a transfer debits and credits two different accounts")]
    SameAccount,
    #[error("the ledger is in {ledger}, the transfer names {found}")]
    CurrencyMismatch { ledger: Currency, found: Currency },
    #[error("transfer {id} was already applied with other terms")]
    IdConflict { id: Uuid },
    #[error("{account} is short of {shortfall_minor} minor units ({available_minor} available)")]
    InsufficientFunds { account: String, available_minor: i64, shortfall_minor: i64 },
    #[error("{account} would pass the balance limit of {BALANCE_MINOR_MAX} minor units")]
    BalanceLimit { account: String },
    #[error("no pending transfer {id}")]
    UnknownPending { id: Uuid },
    #[error("transfer {id} is not a pending transfer")]
    NotPending { id: Uuid },
    #[error("{requested_minor} minor units asked, {pending_minor} pending")]
    PostAbovePending { requested_minor: i64, pending_minor: i64 },
    #[error("pending transfer {id} is already posted")]
    AlreadyPosted { id: Uuid },
    #[error("pending transfer {id} is already voided")]
    AlreadyVoided { id: Uuid },
    #[error("at most {PENDING_TRANSFERS_MAX} pending transfers at once")]
    TooManyPending,
    #[error("at most {BATCH_COMMANDS_MAX} commands in one batch")]
    BatchTooLarge,
}

impl Rejection {
    pub fn kind(&self) -> RejectionKind {
        let field = match self {
            Rejection::UnknownPending { .. } => return RejectionKind::NotFound,
            Rejection::IdConflict { .. }
            | Rejection::InsufficientFunds { .. }
            | Rejection::BalanceLimit { .. }
            | Rejection::NotPending { .. }
            | Rejection::PostAbovePending { .. }
            | Rejection::AlreadyPosted { .. }
            | Rejection::AlreadyVoided { .. }
            | Rejection::TooManyPending => return RejectionKind::FailedPrecondition,
            Rejection::AmountNotPositive | Rejection::AmountTooLarge => "amount",
            Rejection::SameAccount => "credit",
            Rejection::CurrencyMismatch { .. } => "currency",
            Rejection::BatchTooLarge => "commands",
        };
        RejectionKind::InvalidArgument { field }
    }
}

/// The balances of one account, in minor units of the ledger's currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Balances {
    /// Credits minus debits of the posted movements.
    pub posted_minor: i64,
    /// Reserved by pending transfers that debit the account.
    pub pending_debits_minor: i64,
    /// Announced by pending transfers that credit the account: not spendable yet.
    pub pending_credits_minor: i64,
}

impl Balances {
    /// What the account may still be debited: posted minus pending debits.
    pub fn available_minor(&self) -> i64 {
        self.posted_minor - self.pending_debits_minor
    }
}

/// Where a pending transfer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum PendingStatus {
    Pending,
    Posted { amount: Money },
    Voided,
}

/// A transfer the ledger has applied, by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Applied {
    Immediate(Transfer),
    TwoPhase { transfer: Transfer, status: PendingStatus },
}

/// One line of an account's statement: a posted movement and the balance after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Line {
    /// The line's place in the account's statement, from 0: a page token for the shell.
    pub index: usize,
    pub transfer_id: Uuid,
    pub code: TransferCode,
    pub deal_id: Option<Uuid>,
    /// The account on the other side.
    pub counterparty: AccountId,
    /// Positive for a credit, negative for a debit, in minor units.
    pub amount_minor: i64,
    /// The posted balance after the movement, in minor units.
    pub balance_minor: i64,
    pub at_ms: i64,
}

/// A posted movement in the journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Movement {
    transfer_id: Uuid,
    debit: AccountId,
    credit: AccountId,
    amount_minor: i64,
    code: TransferCode,
    deal_id: Option<Uuid>,
    at_ms: i64,
}

/// The state of one currency's ledger, folded from its events.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Ledger {
    currency: Currency,
    balances: BTreeMap<AccountId, Balances>,
    applied: BTreeMap<Uuid, Applied>,
    pending_open: usize,
    journal: Vec<Movement>,
    /// Per account, the indexes of its movements in the journal.
    movements: BTreeMap<AccountId, Vec<usize>>,
}

impl Ledger {
    /// An empty ledger of `currency`: the state before its first event.
    pub fn new(currency: Currency) -> Ledger {
        Ledger {
            currency,
            balances: BTreeMap::new(),
            applied: BTreeMap::new(),
            pending_open: 0,
            journal: Vec::new(),
            movements: BTreeMap::new(),
        }
    }

    pub fn currency(&self) -> Currency {
        self.currency
    }

    /// The balances of `account`; all zero for an account never moved.
    pub fn balances(&self, account: &AccountId) -> Balances {
        self.balances.get(account).copied().unwrap_or_default()
    }

    /// Every account moved at least once, by key order of kind, organization.
    pub fn accounts(&self) -> impl Iterator<Item = (&AccountId, &Balances)> {
        self.balances.iter()
    }

    /// A transfer applied, immediate or two-phase, by its id.
    pub fn transfer(&self, id: Uuid) -> Option<&Applied> {
        self.applied.get(&id)
    }

    /// The posted movements of `account`, oldest first, each with the balance after it.
    pub fn statement(&self, account: &AccountId) -> Vec<Line> {
        let Some(indexes) = self.movements.get(account) else { return Vec::new() };
        let mut balance_minor = 0;
        indexes
            .iter()
            .enumerate()
            .map(|(index, &at)| {
                let movement = &self.journal[at];
                let (counterparty, amount_minor) = if movement.credit == *account {
                    (movement.debit, movement.amount_minor)
                } else {
                    (movement.credit, -movement.amount_minor)
                };
                balance_minor += amount_minor;
                Line {
                    index,
                    transfer_id: movement.transfer_id,
                    code: movement.code,
                    deal_id: movement.deal_id,
                    counterparty,
                    amount_minor,
                    balance_minor,
                    at_ms: movement.at_ms,
                }
            })
            .collect()
    }

    /// The sum of every account's posted balance: zero, always.
    pub fn posted_sum_minor(&self) -> i128 {
        self.balances.values().map(|balances| i128::from(balances.posted_minor)).sum()
    }

    fn balances_mut(&mut self, account: AccountId) -> &mut Balances {
        self.balances.entry(account).or_default()
    }

    fn record(&mut self, movement: Movement) {
        let at = self.journal.len();
        self.journal.push(movement);
        self.movements.entry(movement.debit).or_default().push(at);
        self.movements.entry(movement.credit).or_default().push(at);
    }
}

pub fn decide(ledger: &Ledger, command: Command, context: &Context) -> Result<Vec<Event>, Rejection> {
    match command {
        Command::Transfer(transfer) => {
            check_terms(ledger, &transfer)?;
            match ledger.applied.get(&transfer.id) {
                Some(Applied::Immediate(applied)) if *applied == transfer => return Ok(vec![]),
                Some(_) => return Err(Rejection::IdConflict { id: transfer.id }),
                None => {}
            }
            check_funds(ledger, &transfer)?;
            Ok(vec![Event::Transferred { transfer, at_ms: context.now_ms }])
        }
        Command::CreatePending(transfer) => {
            check_terms(ledger, &transfer)?;
            match ledger.applied.get(&transfer.id) {
                Some(Applied::TwoPhase { transfer: applied, .. }) if *applied == transfer => {
                    return Ok(vec![]);
                }
                Some(_) => return Err(Rejection::IdConflict { id: transfer.id }),
                None => {}
            }
            if ledger.pending_open >= PENDING_TRANSFERS_MAX {
                return Err(Rejection::TooManyPending);
            }
            check_funds(ledger, &transfer)?;
            Ok(vec![Event::PendingCreated { transfer, at_ms: context.now_ms }])
        }
        Command::PostPending { id, amount } => {
            check_amount(ledger, amount)?;
            let (transfer, status) = pending(ledger, id)?;
            match status {
                PendingStatus::Pending => {}
                PendingStatus::Posted { amount: posted } if posted == amount => return Ok(vec![]),
                PendingStatus::Posted { .. } => return Err(Rejection::AlreadyPosted { id }),
                PendingStatus::Voided => return Err(Rejection::AlreadyVoided { id }),
            }
            let pending_minor = transfer.amount.minor();
            if amount.minor() > pending_minor {
                return Err(Rejection::PostAbovePending { requested_minor: amount.minor(), pending_minor });
            }
            let released = Money::new(pending_minor - amount.minor(), ledger.currency)
                .expect("a part of a transfer amount is money");
            Ok(vec![Event::PendingPosted { id, amount, released, at_ms: context.now_ms }])
        }
        Command::VoidPending { id } => {
            let (transfer, status) = pending(ledger, id)?;
            match status {
                PendingStatus::Pending => {
                    Ok(vec![Event::PendingVoided { id, released: transfer.amount, at_ms: context.now_ms }])
                }
                PendingStatus::Voided => Ok(vec![]),
                PendingStatus::Posted { .. } => Err(Rejection::AlreadyPosted { id }),
            }
        }
    }
}

/// Decides `commands` one after the other, each on the state the previous ones left, and
/// gives all their events or the first rejection with its command's index: a plan is applied
/// whole or not at all.
pub fn decide_batch(
    ledger: &Ledger,
    commands: Vec<Command>,
    context: &Context,
) -> Result<Vec<Event>, (usize, Rejection)> {
    if commands.len() > BATCH_COMMANDS_MAX {
        return Err((0, Rejection::BatchTooLarge));
    }
    let mut scratch = ledger.clone();
    let mut events = Vec::new();
    for (index, command) in commands.into_iter().enumerate() {
        let decided = decide(&scratch, command, context).map_err(|rejection| (index, rejection))?;
        for event in &decided {
            scratch = evolve(scratch, event);
        }
        events.extend(decided);
    }
    Ok(events)
}

/// Applies an event. Total: events are facts; one that does not fit the state (a post of an
/// unknown transfer) changes nothing.
pub fn evolve(mut ledger: Ledger, event: &Event) -> Ledger {
    match event {
        Event::Transferred { transfer, at_ms } => {
            let amount_minor = transfer.amount.minor();
            ledger.balances_mut(transfer.debit).posted_minor -= amount_minor;
            ledger.balances_mut(transfer.credit).posted_minor += amount_minor;
            ledger.applied.insert(transfer.id, Applied::Immediate(*transfer));
            ledger.record(movement(transfer, amount_minor, *at_ms));
        }
        Event::PendingCreated { transfer, .. } => {
            let amount_minor = transfer.amount.minor();
            ledger.balances_mut(transfer.debit).pending_debits_minor += amount_minor;
            ledger.balances_mut(transfer.credit).pending_credits_minor += amount_minor;
            ledger.applied.insert(
                transfer.id,
                Applied::TwoPhase { transfer: *transfer, status: PendingStatus::Pending },
            );
            ledger.pending_open += 1;
        }
        Event::PendingPosted { id, amount, at_ms, .. } => {
            let Some(transfer) = open_pending(&ledger, *id) else { return ledger };
            release(&mut ledger, &transfer);
            ledger.balances_mut(transfer.debit).posted_minor -= amount.minor();
            ledger.balances_mut(transfer.credit).posted_minor += amount.minor();
            ledger.applied.insert(
                *id,
                Applied::TwoPhase { transfer, status: PendingStatus::Posted { amount: *amount } },
            );
            ledger.record(movement(&transfer, amount.minor(), *at_ms));
        }
        Event::PendingVoided { id, .. } => {
            let Some(transfer) = open_pending(&ledger, *id) else { return ledger };
            release(&mut ledger, &transfer);
            ledger.applied.insert(*id, Applied::TwoPhase { transfer, status: PendingStatus::Voided });
        }
    }
    ledger
}

/// Shape and currency: what can be checked without the balances.
fn check_terms(ledger: &Ledger, transfer: &Transfer) -> Result<(), Rejection> {
    check_amount(ledger, transfer.amount)?;
    for currency in [transfer.debit.currency(), transfer.credit.currency()] {
        if currency != ledger.currency {
            return Err(Rejection::CurrencyMismatch { ledger: ledger.currency, found: currency });
        }
    }
    if transfer.debit == transfer.credit {
        return Err(Rejection::SameAccount);
    }
    Ok(())
}

fn check_amount(ledger: &Ledger, amount: Money) -> Result<(), Rejection> {
    if amount.currency() != ledger.currency {
        return Err(Rejection::CurrencyMismatch { ledger: ledger.currency, found: amount.currency() });
    }
    if amount.minor() <= 0 {
        return Err(Rejection::AmountNotPositive);
    }
    if amount.minor() > TRANSFER_AMOUNT_MINOR_MAX {
        return Err(Rejection::AmountTooLarge);
    }
    Ok(())
}

/// The debit side may pay (or, for `External`, stays within the limit) and the credit side
/// stays within the limit, counting what pending transfers may still move.
fn check_funds(ledger: &Ledger, transfer: &Transfer) -> Result<(), Rejection> {
    let amount_minor = transfer.amount.minor();
    let debit = ledger.balances(&transfer.debit);
    let floor_minor = if transfer.debit.kind().may_go_negative() { -BALANCE_MINOR_MAX } else { 0 };
    let after_minor = debit.available_minor() - amount_minor;
    if after_minor < floor_minor {
        if floor_minor == 0 {
            return Err(Rejection::InsufficientFunds {
                account: transfer.debit.key(),
                available_minor: debit.available_minor(),
                shortfall_minor: -after_minor,
            });
        }
        return Err(Rejection::BalanceLimit { account: transfer.debit.key() });
    }
    let credit = ledger.balances(&transfer.credit);
    if credit.posted_minor + credit.pending_credits_minor + amount_minor > BALANCE_MINOR_MAX {
        return Err(Rejection::BalanceLimit { account: transfer.credit.key() });
    }
    Ok(())
}

fn pending(ledger: &Ledger, id: Uuid) -> Result<(Transfer, PendingStatus), Rejection> {
    match ledger.applied.get(&id) {
        None => Err(Rejection::UnknownPending { id }),
        Some(Applied::Immediate(_)) => Err(Rejection::NotPending { id }),
        Some(Applied::TwoPhase { transfer, status }) => Ok((*transfer, *status)),
    }
}

fn open_pending(ledger: &Ledger, id: Uuid) -> Option<Transfer> {
    match ledger.applied.get(&id) {
        Some(Applied::TwoPhase { transfer, status: PendingStatus::Pending }) => Some(*transfer),
        _ => None,
    }
}

/// Takes a pending transfer's reservation off both its accounts.
fn release(ledger: &mut Ledger, transfer: &Transfer) {
    let amount_minor = transfer.amount.minor();
    ledger.balances_mut(transfer.debit).pending_debits_minor -= amount_minor;
    ledger.balances_mut(transfer.credit).pending_credits_minor -= amount_minor;
    ledger.pending_open -= 1;
}

fn movement(transfer: &Transfer, amount_minor: i64, at_ms: i64) -> Movement {
    Movement {
        transfer_id: transfer.id,
        debit: transfer.debit,
        credit: transfer.credit,
        amount_minor,
        code: transfer.code,
        deal_id: transfer.deal_id,
        at_ms,
    }
}

#[cfg(test)]
mod tests;
