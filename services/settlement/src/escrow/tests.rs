//! Escrow plans run on a real ledger: the money lands where the plan says, once, and the
//! ledger always balances.

use proptest::prelude::*;
use symbiose_domain::lot::LegalStatus;
use symbiose_domain::{Country, Unit};

use super::*;
use crate::ledger::{self, AccountKind, Context, Ledger};
use crate::testing::{NOW_MS, deal, eur, id};
use crate::vat::{MENTION_INTRA_EU_FR, Regime};

const SELLER: u128 = 1;
const BUYER: u128 = 2;
/// 2 %.
const FEE_RATE_BP: u32 = 200;

fn intra_eu() -> Regime {
    Regime::IntraEuExempt { mention: MENTION_INTRA_EU_FR }
}

/// 40 EUR pallets at 3.50 EUR, Strasbourg to Kehl.
fn pallet_deal() -> Deal {
    deal(SELLER, BUYER, 40_000, Unit::Pallet, eur(350), LegalStatus::ProductForReuse)
}

fn available(n: u128) -> AccountId {
    AccountId::available(id(n), Currency::Eur)
}

/// A ledger in which `payer` deposited `minor`.
fn funded(payer: u128, minor: i64) -> Ledger {
    let deposit = Command::Transfer(Transfer {
        id: id(0xde90),
        debit: AccountId::external(Currency::Eur),
        credit: available(payer),
        amount: eur(minor),
        code: TransferCode::Deposit,
        deal_id: None,
    });
    apply(Ledger::new(Currency::Eur), vec![deposit])
}

/// Decides `commands` as one batch and folds the events, checking the ledger balances.
#[track_caller]
fn apply(state: Ledger, commands: Vec<Command>) -> Ledger {
    let events = ledger::decide_batch(&state, commands, &Context { now_ms: NOW_MS }).expect("applied");
    let state = events.iter().fold(state, ledger::evolve);
    assert_eq!(state.posted_sum_minor(), 0, "the ledger balances");
    state
}

#[track_caller]
fn replays_to_nothing(state: &Ledger, commands: Vec<Command>) {
    assert_eq!(ledger::decide_batch(state, commands, &Context { now_ms: NOW_MS }), Ok(vec![]));
}

#[test]
fn a_pallet_deal_holds_the_net_and_the_fee() {
    let plan = on_deal_agreed(&pallet_deal(), FEE_RATE_BP, intra_eu()).expect("a plan");
    assert_eq!((plan.payer, plan.payee, plan.gate_fee), (id(BUYER), id(SELLER), false));
    assert_eq!(plan.full, Amounts { net: eur(14_000), fee: eur(280), vat: eur(0) });
    assert_eq!(
        plan.hold(),
        Some(Command::CreatePending(Transfer {
            id: transfer_id(pallet_deal().id, "hold"),
            debit: available(BUYER),
            credit: AccountId::escrow(Currency::Eur),
            amount: eur(14_280),
            code: TransferCode::Escrow,
            deal_id: Some(pallet_deal().id),
        }))
    );
}

#[test]
fn a_delivery_of_38_pays_the_seller_133_and_releases_the_rest() {
    let plan = on_deal_agreed(&pallet_deal(), FEE_RATE_BP, intra_eu()).expect("a plan");
    let held = apply(funded(BUYER, 20_000), plan.hold().into_iter().collect());
    assert_eq!(held.balances(&available(BUYER)).available_minor(), 20_000 - 14_280);

    let commands = on_delivery(&plan, 38_000).expect("commands");
    assert_eq!(commands.len(), 3, "post, seller, fee: no VAT");
    assert_eq!(commands[0], Command::PostPending { id: plan.pending_id, amount: eur(13_566) });
    let settled = apply(held, commands.clone());

    assert_eq!(settled.balances(&available(SELLER)).posted_minor, 13_300);
    assert_eq!(settled.balances(&AccountId::fees(Currency::Eur)).posted_minor, 266);
    assert_eq!(settled.balances(&AccountId::vat_collected(Currency::Eur)).posted_minor, 0);
    let buyer = settled.balances(&available(BUYER));
    assert_eq!((buyer.posted_minor, buyer.pending_debits_minor), (20_000 - 13_566, 0), "7.14 released");
    let escrow = settled.balances(&AccountId::escrow(Currency::Eur));
    assert_eq!((escrow.posted_minor, escrow.pending_credits_minor), (0, 0), "escrow emptied");

    // A redelivered fact moves nothing.
    replays_to_nothing(&settled, commands);
    replays_to_nothing(&settled, plan.hold().into_iter().collect());
    let statement = settled.statement(&available(SELLER));
    assert_eq!(statement.len(), 1);
    assert_eq!(statement[0].code, TransferCode::Settlement);
    assert_eq!(statement[0].deal_id, Some(plan.deal_id));
}

#[test]
fn a_cancellation_voids_it_all() {
    let plan = on_deal_agreed(&pallet_deal(), FEE_RATE_BP, intra_eu()).expect("a plan");
    let held = apply(funded(BUYER, 20_000), plan.hold().into_iter().collect());
    let cancel = on_cancel(&plan);
    assert_eq!(cancel, vec![Command::VoidPending { id: plan.pending_id }]);
    let cancelled = apply(held, cancel.clone());
    assert_eq!(cancelled.balances(&available(BUYER)).available_minor(), 20_000);
    assert_eq!(cancelled.balances(&AccountId::escrow(Currency::Eur)), ledger::Balances::default());
    replays_to_nothing(&cancelled, cancel);
    assert_eq!(on_delivery(&plan, 0), Ok(on_cancel(&plan)), "nothing accepted is a cancellation");
}

#[test]
fn a_gate_fee_is_paid_by_the_producer_to_the_receiver() {
    // 2.5 t of wood waste, the producer pays 12.00 per tonne; French receiver, 20 % VAT.
    let gate_fee = deal(SELLER, BUYER, 2_500, Unit::Tonne, eur(-1_200), LegalStatus::Waste);
    let regime = Regime::DomesticStandard { country: Country::Fr, rate_bp: 2000 };
    let plan = on_deal_agreed(&gate_fee, FEE_RATE_BP, regime).expect("a plan");
    assert_eq!((plan.payer, plan.payee, plan.gate_fee), (id(SELLER), id(BUYER), true));
    assert_eq!(plan.full, Amounts { net: eur(3_000), fee: eur(60), vat: eur(600) });

    let held = apply(funded(SELLER, 5_000), plan.hold().into_iter().collect());
    assert_eq!(held.balances(&available(SELLER)).available_minor(), 5_000 - 3_660);
    let settled = apply(held, on_delivery(&plan, 2_500).expect("commands"));
    assert_eq!(settled.balances(&available(BUYER)).posted_minor, 3_000, "the receiver is paid");
    assert_eq!(settled.balances(&AccountId::fees(Currency::Eur)).posted_minor, 60);
    assert_eq!(settled.balances(&AccountId::vat_collected(Currency::Eur)).posted_minor, 600);
    assert_eq!(settled.balances(&available(SELLER)).posted_minor, 5_000 - 3_660);
    assert_eq!(settled.balances(&AccountId::escrow(Currency::Eur)).posted_minor, 0);
}

#[test]
fn a_short_payer_cannot_be_held() {
    let plan = on_deal_agreed(&pallet_deal(), FEE_RATE_BP, intra_eu()).expect("a plan");
    let state = funded(BUYER, 14_279);
    assert!(matches!(
        ledger::decide_batch(&state, plan.hold().into_iter().collect(), &Context { now_ms: NOW_MS }),
        Err((0, ledger::Rejection::InsufficientFunds { shortfall_minor: 1, .. }))
    ));
}

#[test]
fn more_than_agreed_is_not_charged_and_less_than_nothing_is_refused() {
    let plan = on_deal_agreed(&pallet_deal(), FEE_RATE_BP, intra_eu()).expect("a plan");
    assert_eq!(plan.amounts(44_000), Ok(plan.full));
    assert_eq!(plan.amounts(-1), Err(PlanError::AcceptedNegative));
    assert_eq!(
        on_deal_agreed(&pallet_deal(), FEE_RATE_BP_MAX + 1, intra_eu()),
        Err(PlanError::FeeRateOutOfRange)
    );
}

#[test]
fn a_free_deal_holds_nothing() {
    let free = deal(SELLER, BUYER, 10_000, Unit::Pallet, eur(0), LegalStatus::ProductForReuse);
    let plan = on_deal_agreed(&free, FEE_RATE_BP, intra_eu()).expect("a plan");
    assert_eq!(plan.hold(), None);
    assert_eq!(on_delivery(&plan, 10_000), Ok(vec![]));
    assert_eq!(on_cancel(&plan), vec![]);
}

#[test]
fn a_pallet_payment_moves_money_between_the_two_organizations_once() {
    let payment =
        PalletPayment { settlement_id: id(77), debtor: id(BUYER), creditor: id(SELLER), amount: eur(1_050) };
    let command = on_pallet_payment(&payment);
    let paid = apply(funded(BUYER, 2_000), vec![command.clone()]);
    assert_eq!(paid.balances(&available(SELLER)).posted_minor, 1_050);
    assert_eq!(paid.balances(&available(BUYER)).posted_minor, 950);
    replays_to_nothing(&paid, vec![command]);
}

#[test]
fn transfer_ids_are_stable() {
    // Stored in the ledger's events: a change would let a redelivered fact move money again.
    assert_eq!(transfer_id(id(1), "hold"), transfer_id(id(1), "hold"));
    assert_ne!(transfer_id(id(1), "hold"), transfer_id(id(2), "hold"));
    assert_ne!(transfer_id(id(1), "hold"), transfer_id(id(1), "fee"));
    assert_eq!(transfer_id(id(1), "hold").get_version_num(), 5);
}

proptest! {
    #[test]
    fn a_settled_deal_pays_out_exactly_what_was_posted(
        amount_milli in 1i64..100_000_000,
        price_minor in -100_000i64..100_000,
        fee_rate_bp in 0u32..=FEE_RATE_BP_MAX,
        rate_bp in prop_oneof![Just(0u32), Just(810u32), Just(1900u32), Just(2000u32)],
        accepted_permille in 0i64..=1_100,
    ) {
        let deal = deal(SELLER, BUYER, amount_milli, Unit::Tonne, eur(price_minor), LegalStatus::Waste);
        let regime = Regime::DomesticStandard { country: Country::Fr, rate_bp };
        let plan = on_deal_agreed(&deal, fee_rate_bp, regime).expect("a plan");
        let payer = if price_minor < 0 { SELLER } else { BUYER };
        let payee = if price_minor < 0 { BUYER } else { SELLER };
        let deposit_minor = plan.full.total().minor() + 1;
        let held = apply(funded(payer, deposit_minor), plan.hold().into_iter().collect());
        let accepted_milli = i64::try_from(i128::from(amount_milli) * i128::from(accepted_permille) / 1000)
            .expect("fits");
        let part = plan.amounts(accepted_milli).expect("amounts");
        prop_assert!(part.net.minor() <= plan.full.net.minor());
        prop_assert!(part.fee.minor() <= plan.full.fee.minor());
        prop_assert!(part.vat.minor() <= plan.full.vat.minor());
        let commands = on_delivery(&plan, accepted_milli).expect("commands");
        let settled = apply(held, commands.clone());
        prop_assert_eq!(settled.balances(&available(payee)).posted_minor, part.net.minor());
        prop_assert_eq!(settled.balances(&available(payer)).posted_minor, deposit_minor - part.total().minor());
        prop_assert_eq!(settled.balances(&available(payer)).pending_debits_minor, 0);
        prop_assert_eq!(settled.balances(&AccountId::escrow(Currency::Eur)), ledger::Balances::default());
        prop_assert_eq!(
            ledger::decide_batch(&settled, commands, &Context { now_ms: NOW_MS }),
            Ok(vec![])
        );
    }
}

/// What becomes of one deal in a generated history.
#[derive(Debug, Clone, Copy)]
enum Outcome {
    /// Delivered, with this share of the quantity accepted, in thousandths (above 1000: more
    /// than agreed was received).
    Delivered(i64),
    Cancelled,
    /// Still in transit when the history ends.
    Pending,
}

fn outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![(0i64..=1_100).prop_map(Outcome::Delivered), Just(Outcome::Cancelled), Just(Outcome::Pending),]
}

proptest! {
    /// Any history of deals (gate fees among them), deposits that may fall short, deliveries
    /// accepted in part, refused in whole, cancellations and redeliveries: every step balances,
    /// the ledger sums to zero, no account but the outside world goes below zero, and folding the
    /// log again from the start gives every balance.
    #[test]
    fn any_history_of_deals_balances_and_replays(
        deals in proptest::collection::vec(
            (1i64..50_000, -2_000i64..5_000, 0u32..=500, 0i64..200_000, outcome(), any::<bool>(), any::<bool>()),
            1..16,
        ),
    ) {
        let context = Context { now_ms: NOW_MS };
        let mut state = Ledger::new(Currency::Eur);
        let mut log = Vec::new();
        let mut step = |state: &mut Ledger, commands: Vec<Command>| -> bool {
            match ledger::decide_batch(state, commands, &context) {
                Ok(events) => {
                    for event in &events {
                        *state = ledger::evolve(std::mem::replace(state, Ledger::new(Currency::Eur)), event);
                    }
                    log.extend(events);
                    true
                }
                Err(_) => false,
            }
        };
        for (index, (amount_milli, price_minor, fee_rate_bp, deposit_minor, outcome, domestic, redeliver)) in
            deals.into_iter().enumerate()
        {
            let (seller, buyer) = (10 + 2 * index as u128, 11 + 2 * index as u128);
            let mut deal = deal(seller, buyer, amount_milli, Unit::Pallet, eur(price_minor), LegalStatus::Waste);
            deal.id = id(0x1000 + index as u128);
            let regime =
                if domestic { Regime::DomesticStandard { country: Country::Fr, rate_bp: 2000 } } else { intra_eu() };
            let plan = on_deal_agreed(&deal, fee_rate_bp, regime).expect("a plan");
            if deposit_minor > 0 {
                let deposit = Command::Transfer(Transfer {
                    id: id(0x9000 + index as u128),
                    debit: AccountId::external(Currency::Eur),
                    credit: AccountId::available(plan.payer, Currency::Eur),
                    amount: eur(deposit_minor),
                    code: TransferCode::Deposit,
                    deal_id: None,
                });
                prop_assert!(step(&mut state, vec![deposit]));
            }
            // A payer short of money gets no hold: the deal moves no money.
            let held = plan.hold().is_none_or(|hold| step(&mut state, vec![hold]));
            if held {
                let commands = match outcome {
                    Outcome::Delivered(permille) => {
                        let accepted = i64::try_from(i128::from(amount_milli) * i128::from(permille) / 1000).expect("fits");
                        on_delivery(&plan, accepted).expect("commands")
                    }
                    Outcome::Cancelled => on_cancel(&plan),
                    Outcome::Pending => vec![],
                };
                if !commands.is_empty() {
                    prop_assert!(step(&mut state, commands.clone()), "a planned settlement applies");
                    if redeliver {
                        // The same fact again moves nothing.
                        prop_assert_eq!(ledger::decide_batch(&state, commands, &context), Ok(vec![]));
                    }
                }
            }
            prop_assert_eq!(state.posted_sum_minor(), 0);
            for (account, balances) in state.accounts() {
                if account.kind() != AccountKind::External {
                    prop_assert!(balances.posted_minor >= 0, "{account}: {balances:?}");
                    prop_assert!(balances.available_minor() >= 0, "{account}: {balances:?}");
                }
            }
        }
        let replayed = log.iter().fold(Ledger::new(Currency::Eur), ledger::evolve);
        for (account, balances) in state.accounts() {
            prop_assert_eq!(&replayed.balances(account), balances, "{}", account);
        }
        prop_assert_eq!(replayed.accounts().count(), state.accounts().count());
    }
}

#[test]
fn transfer_ids_are_pinned_for_good() {
    // Stored transfers are found again by these ids when a fact is handled twice: a change of
    // derivation would move money twice.
    let source: Uuid = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b".parse().expect("a uuid");
    let pinned = [
        (STEP_HOLD, "9b43e3d1-c80f-5ba1-9e0d-aabffec3f234"),
        (STEP_PAYEE, "70d07165-c202-583c-ad17-d61459c49acf"),
        (STEP_FEE, "1cc619c1-bc6e-5a85-b20d-b6d7f78f6335"),
        (STEP_VAT, "e92c12a8-2b34-5d51-b552-73fd9176ba84"),
        (STEP_PALLET_PAYMENT, "e81596df-994c-52ea-9aec-945ca2f6a66f"),
    ];
    for (step, id) in pinned {
        assert_eq!(transfer_id(source, step).to_string(), id, "step {step}");
    }
}
