//! Escrow plans: pure functions that turn facts (a deal agreed, its delivery accepted, its
//! cancellation, pallets paid for) into ledger commands, so the shell only executes them.
//!
//! The money flows, in the deal's currency (the ledger of that currency):
//!
//! 1. Deal agreed (`on_deal_agreed`): a pending transfer from the payer's `Available` to
//!    `Escrow` of `held = net + fee + vat`, where `net = deal::total(quantity, |price|)`,
//!    `fee = net x fee_rate_bp / 10,000` and `vat = vat::vat_amount(net, regime)`, each
//!    rounded half away from zero. The payer is the buyer; for a gate fee (a negative price)
//!    it is the producer (the deal's seller), who pays the receiver (the deal's buyer) to take
//!    the material, and the VAT is that of the receiver's service. The platform fee is always
//!    charged to the payer, on top of the net.
//! 2. Delivery accepted (`on_delivery`): the same three amounts for the accepted quantity
//!    (`net_part = deal::total(accepted, |price|)`, and its fee and VAT) are posted from the
//!    pending transfer into `Escrow`, the rest is released to the payer by the same post;
//!    then three transfers empty the posted part out of `Escrow`: the net to the payee's
//!    `Available` (`Settlement`), the fee to `Fees` (`Fee`), the VAT to `VatCollected`
//!    (`Vat`). Nothing accepted voids the pending transfer. Since rounding half away from zero
//!    is monotonic, each part is at most its full amount, so the post never exceeds what is
//!    held; `Escrow` is back where it was once a deal is settled. Settlement charges at most
//!    the agreed quantity: a surplus picked up beyond it is not in escrow and is not charged.
//! 3. Deal cancelled (`on_cancel`): the pending transfer is voided; the payer gets it all back.
//! 4. Pallets paid for (`on_pallet_payment`): one transfer from the debtor's `Available` to
//!    the creditor's.
//!
//! Every transfer id is a UUID v5 of the deal (or the pallet settlement) and the step, under
//! `TRANSFER_NAMESPACE`, so a redelivered fact gives the same commands and the ledger applies
//! them once (a repeated post of the same amount, a repeated void, a repeated transfer give no
//! event). The commands of one step are decided together (`ledger::decide_batch`).
//!
//! Worked example: 40 EUR pallets at 3.50 EUR from Strasbourg (FR) to Kehl (DE), buyer with a
//! VAT number, fee 2 %: net 140.00, fee 2.80, VAT 0.00 (intra-EU exempt), held 142.80. 38
//! accepted: 135.66 posted (133.00 + 2.66 + 0.00) and 7.14 released; the seller receives
//! 133.00, `Fees` 2.66.

use symbiose_domain::{Currency, Money, MoneyError, Quantity};
use symbiose_matching_contract::deal::{self, Deal};
use uuid::Uuid;

use crate::RejectionKind;
use crate::ledger::{AccountId, Command, TRANSFER_AMOUNT_MINOR_MAX, Transfer, TransferCode};
use crate::vat::{self, Regime};

/// Highest platform fee, in basis points (20 %).
pub const FEE_RATE_BP_MAX: u32 = 2_000;

/// Namespace of the ids of the transfers a plan derives.
pub const TRANSFER_NAMESPACE: Uuid = Uuid::from_u128(0x7365_7474_6c65_4d65_a1b7_3c9e_50f2_d804);

/// The id of step `step` of the settlement of `source` (a deal, or a pallet settlement).
pub fn transfer_id(source: Uuid, step: &str) -> Uuid {
    Uuid::new_v5(&TRANSFER_NAMESPACE, format!("{source}/{step}").as_bytes())
}

/// Step names, part of the transfer ids: never change them.
const STEP_HOLD: &str = "hold";
const STEP_PAYEE: &str = "payee";
const STEP_FEE: &str = "fee";
const STEP_VAT: &str = "vat";
const STEP_PALLET_PAYMENT: &str = "pallet-payment";

/// What a deal's escrow holds, and for whom: everything `on_delivery` and `on_cancel` need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EscrowPlan {
    pub deal_id: Uuid,
    pub currency: Currency,
    /// Who pays: the buyer, or the producer of a gate fee deal.
    pub payer: Uuid,
    /// Who is paid: the seller, or the receiver of a gate fee deal.
    pub payee: Uuid,
    pub gate_fee: bool,
    /// The agreed quantity.
    pub quantity: Quantity,
    /// The absolute price per unit.
    pub unit_price: Money,
    pub fee_rate_bp: u32,
    pub regime: Regime,
    /// The amounts for the agreed quantity.
    pub full: Amounts,
    /// The id of the pending transfer that holds `full.total()`.
    pub pending_id: Uuid,
}

/// Net, fee and VAT of a quantity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Amounts {
    pub net: Money,
    pub fee: Money,
    pub vat: Money,
}

impl Amounts {
    /// `net + fee + vat`.
    pub fn total(&self) -> Money {
        self.net
            .checked_add(self.fee)
            .and_then(|sum| sum.checked_add(self.vat))
            .expect("amounts of a plan are checked to add up within the transfer limit")
    }
}

/// Why a plan cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("the fee rate is 0 to {FEE_RATE_BP_MAX} basis points")]
    FeeRateOutOfRange,
    #[error("the amount held would pass {TRANSFER_AMOUNT_MINOR_MAX} minor units")]
    TooLarge,
    #[error("an accepted quantity is not negative")]
    AcceptedNegative,
}

impl PlanError {
    pub fn kind(&self) -> RejectionKind {
        let field = match self {
            PlanError::FeeRateOutOfRange => "fee_rate_bp",
            PlanError::TooLarge => "price_per_unit",
            PlanError::AcceptedNegative => "accepted",
        };
        RejectionKind::InvalidArgument { field }
    }
}

impl From<MoneyError> for PlanError {
    fn from(_: MoneyError) -> PlanError {
        PlanError::TooLarge
    }
}

impl EscrowPlan {
    /// The net, fee and VAT of `accepted_milli`, capped at the agreed quantity.
    pub fn amounts(&self, accepted_milli: i64) -> Result<Amounts, PlanError> {
        if accepted_milli < 0 {
            return Err(PlanError::AcceptedNegative);
        }
        if accepted_milli == 0 {
            let zero = Money::zero(self.currency);
            return Ok(Amounts { net: zero, fee: zero, vat: zero });
        }
        let accepted_milli = accepted_milli.min(self.quantity.amount_milli());
        let accepted = Quantity::new(accepted_milli, self.quantity.unit(), true)
            .expect("a positive part of a quantity is a quantity");
        amounts(accepted, self.unit_price, self.fee_rate_bp, &self.regime)
    }

    /// The pending transfer that holds the payment; none when the deal is free.
    pub fn hold(&self) -> Option<Command> {
        let held = self.full.total();
        (held.minor() > 0).then(|| {
            Command::CreatePending(Transfer {
                id: self.pending_id,
                debit: AccountId::available(self.payer, self.currency),
                credit: AccountId::escrow(self.currency),
                amount: held,
                code: TransferCode::Escrow,
                deal_id: Some(self.deal_id),
            })
        })
    }

    fn payout_from_escrow(
        &self,
        step: &str,
        credit: AccountId,
        amount: Money,
        code: TransferCode,
    ) -> Option<Command> {
        (amount.minor() > 0).then(|| {
            Command::Transfer(Transfer {
                id: transfer_id(self.deal_id, step),
                debit: AccountId::escrow(self.currency),
                credit,
                amount,
                code,
                deal_id: Some(self.deal_id),
            })
        })
    }
}

/// The plan of an agreed deal: who pays whom, the amounts held, the pending transfer's id.
/// `regime` is the VAT regime of the supply (`vat::regime` with the parties of
/// `invoice::roles`).
pub fn on_deal_agreed(deal: &Deal, fee_rate_bp: u32, regime: Regime) -> Result<EscrowPlan, PlanError> {
    if fee_rate_bp > FEE_RATE_BP_MAX {
        return Err(PlanError::FeeRateOutOfRange);
    }
    let gate_fee = deal.price_per_unit.is_negative();
    let (payer, payee) = if gate_fee { (deal.seller, deal.buyer) } else { (deal.buyer, deal.seller) };
    let unit_price = if gate_fee { deal.price_per_unit.negated() } else { deal.price_per_unit };
    let full = amounts(deal.quantity, unit_price, fee_rate_bp, &regime)?;
    Ok(EscrowPlan {
        deal_id: deal.id,
        currency: unit_price.currency(),
        payer,
        payee,
        gate_fee,
        quantity: deal.quantity,
        unit_price,
        fee_rate_bp,
        regime,
        full,
        pending_id: transfer_id(deal.id, STEP_HOLD),
    })
}

/// The commands that settle a delivery of which `accepted_milli` (in the deal's unit) was
/// accepted: post the accepted part into escrow (the rest released), then pay it out to the
/// payee, `Fees` and `VatCollected`; void everything when nothing is accepted.
pub fn on_delivery(plan: &EscrowPlan, accepted_milli: i64) -> Result<Vec<Command>, PlanError> {
    let part = plan.amounts(accepted_milli)?;
    let posted = part.total();
    if plan.full.total().minor() == 0 {
        return Ok(vec![]);
    }
    if posted.minor() == 0 {
        return Ok(on_cancel(plan));
    }
    let currency = plan.currency;
    let commands = [
        Some(Command::PostPending { id: plan.pending_id, amount: posted }),
        plan.payout_from_escrow(
            STEP_PAYEE,
            AccountId::available(plan.payee, currency),
            part.net,
            TransferCode::Settlement,
        ),
        plan.payout_from_escrow(STEP_FEE, AccountId::fees(currency), part.fee, TransferCode::Fee),
        plan.payout_from_escrow(STEP_VAT, AccountId::vat_collected(currency), part.vat, TransferCode::Vat),
    ];
    Ok(commands.into_iter().flatten().collect())
}

/// The commands that release a cancelled deal's escrow: void the pending transfer.
pub fn on_cancel(plan: &EscrowPlan) -> Vec<Command> {
    plan.hold().map(|_| Command::VoidPending { id: plan.pending_id }).into_iter().collect()
}

/// Pallets paid for instead of returned (`symbiose_logistics_contract::pallets::Settlement`
/// with `SettleBy::Payment`): the settler copies its id, parties and amount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PalletPayment {
    pub settlement_id: Uuid,
    pub debtor: Uuid,
    pub creditor: Uuid,
    pub amount: Money,
}

/// The transfer of a pallet payment, from the debtor's `Available` to the creditor's.
pub fn on_pallet_payment(payment: &PalletPayment) -> Command {
    let currency = payment.amount.currency();
    Command::Transfer(Transfer {
        id: transfer_id(payment.settlement_id, STEP_PALLET_PAYMENT),
        debit: AccountId::available(payment.debtor, currency),
        credit: AccountId::available(payment.creditor, currency),
        amount: payment.amount,
        code: TransferCode::PalletPayment,
        deal_id: None,
    })
}

fn amounts(
    quantity: Quantity,
    unit_price: Money,
    fee_rate_bp: u32,
    regime: &Regime,
) -> Result<Amounts, PlanError> {
    let net = deal::total(quantity, unit_price)?;
    let fee = vat::apply_basis_points(net, fee_rate_bp)?;
    let vat = vat::vat_amount(net, regime);
    let total = net.checked_add(fee)?.checked_add(vat)?;
    if total.minor() > TRANSFER_AMOUNT_MINOR_MAX {
        return Err(PlanError::TooLarge);
    }
    Ok(Amounts { net, fee, vat })
}

#[cfg(test)]
mod tests;
