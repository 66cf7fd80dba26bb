//! The rules of the ledger, given / when / then, and its invariants under random commands.

use proptest::prelude::*;

use super::*;
use crate::testing::{NOW_MS, chf, eur, id};

const BUYER: u128 = 1;
const SELLER: u128 = 2;

fn available(n: u128) -> AccountId {
    AccountId::available(id(n), Currency::Eur)
}

fn transfer(n: u128, debit: AccountId, credit: AccountId, minor: i64, code: TransferCode) -> Transfer {
    Transfer { id: id(n), debit, credit, amount: eur(minor), code, deal_id: None }
}

/// The buyer deposits 200.00.
fn deposit() -> Transfer {
    transfer(100, AccountId::external(Currency::Eur), available(BUYER), 20_000, TransferCode::Deposit)
}

/// 142.80 of the buyer's held in escrow.
fn hold() -> Transfer {
    transfer(101, available(BUYER), AccountId::escrow(Currency::Eur), 14_280, TransferCode::Escrow)
}

fn deposited() -> Event {
    Event::Transferred { transfer: deposit(), at_ms: NOW_MS }
}

fn held() -> Event {
    Event::PendingCreated { transfer: hold(), at_ms: NOW_MS }
}

fn context() -> Context {
    Context { now_ms: NOW_MS }
}

fn fold(given: &[Event]) -> Ledger {
    given.iter().fold(Ledger::new(Currency::Eur), evolve)
}

#[track_caller]
fn check(given: &[Event], when: Command, then: Result<Vec<Event>, Rejection>) {
    let ledger = fold(given);
    assert_eq!(decide(&ledger, when, &context()), then);
}

#[test]
fn a_deposit_moves_money_from_the_world() {
    check(&[], Command::Transfer(deposit()), Ok(vec![deposited()]));
    let ledger = fold(&[deposited()]);
    assert_eq!(ledger.balances(&available(BUYER)).posted_minor, 20_000);
    assert_eq!(ledger.balances(&AccountId::external(Currency::Eur)).posted_minor, -20_000);
    assert_eq!(ledger.posted_sum_minor(), 0);
}

#[test]
fn a_transfer_is_refused_when_the_debit_account_is_short() {
    let spend = transfer(102, available(BUYER), available(SELLER), 20_001, TransferCode::PalletPayment);
    check(
        &[deposited()],
        Command::Transfer(spend),
        Err(Rejection::InsufficientFunds {
            account: available(BUYER).key(),
            available_minor: 20_000,
            shortfall_minor: 1,
        }),
    );
    let platform = transfer(103, AccountId::fees(Currency::Eur), available(SELLER), 1, TransferCode::Refund);
    assert!(matches!(
        decide(&fold(&[]), Command::Transfer(platform), &context()),
        Err(Rejection::InsufficientFunds { .. })
    ));
}

#[test]
fn a_pending_transfer_reserves_the_amount() {
    check(&[deposited()], Command::CreatePending(hold()), Ok(vec![held()]));
    let ledger = fold(&[deposited(), held()]);
    let buyer = ledger.balances(&available(BUYER));
    assert_eq!(
        buyer,
        Balances { posted_minor: 20_000, pending_debits_minor: 14_280, pending_credits_minor: 0 }
    );
    assert_eq!(buyer.available_minor(), 5_720);
    let escrow = ledger.balances(&AccountId::escrow(Currency::Eur));
    assert_eq!(escrow.pending_credits_minor, 14_280);
    assert_eq!(escrow.posted_minor, 0);
    let spend = transfer(102, available(BUYER), available(SELLER), 5_721, TransferCode::PalletPayment);
    assert!(
        matches!(
            decide(&ledger, Command::Transfer(spend), &context()),
            Err(Rejection::InsufficientFunds { shortfall_minor: 1, .. })
        ),
        "reserved money is not spendable"
    );
}

#[test]
fn posting_part_moves_it_and_releases_the_rest() {
    let post = Command::PostPending { id: id(101), amount: eur(13_566) };
    let posted = Event::PendingPosted { id: id(101), amount: eur(13_566), released: eur(714), at_ms: NOW_MS };
    check(&[deposited(), held()], post.clone(), Ok(vec![posted.clone()]));
    let ledger = fold(&[deposited(), held(), posted.clone()]);
    assert_eq!(
        ledger.balances(&available(BUYER)),
        Balances { posted_minor: 20_000 - 13_566, pending_debits_minor: 0, pending_credits_minor: 0 }
    );
    assert_eq!(ledger.balances(&AccountId::escrow(Currency::Eur)).posted_minor, 13_566);
    assert_eq!(ledger.posted_sum_minor(), 0);
    check(&[deposited(), held(), posted.clone()], post, Ok(vec![]));
    check(
        &[deposited(), held(), posted.clone()],
        Command::PostPending { id: id(101), amount: eur(14_280) },
        Err(Rejection::AlreadyPosted { id: id(101) }),
    );
    check(
        &[deposited(), held(), posted],
        Command::VoidPending { id: id(101) },
        Err(Rejection::AlreadyPosted { id: id(101) }),
    );
}

#[test]
fn a_post_is_at_most_the_pending_amount() {
    check(
        &[deposited(), held()],
        Command::PostPending { id: id(101), amount: eur(14_281) },
        Err(Rejection::PostAbovePending { requested_minor: 14_281, pending_minor: 14_280 }),
    );
    check(
        &[deposited(), held()],
        Command::PostPending { id: id(101), amount: eur(0) },
        Err(Rejection::AmountNotPositive),
    );
    check(
        &[deposited()],
        Command::PostPending { id: id(101), amount: eur(1) },
        Err(Rejection::UnknownPending { id: id(101) }),
    );
    check(
        &[deposited()],
        Command::PostPending { id: id(100), amount: eur(1) },
        Err(Rejection::NotPending { id: id(100) }),
    );
}

#[test]
fn a_void_releases_everything_once() {
    let voided = Event::PendingVoided { id: id(101), released: eur(14_280), at_ms: NOW_MS };
    check(&[deposited(), held()], Command::VoidPending { id: id(101) }, Ok(vec![voided.clone()]));
    let ledger = fold(&[deposited(), held(), voided.clone()]);
    assert_eq!(ledger.balances(&available(BUYER)).available_minor(), 20_000);
    assert_eq!(ledger.balances(&AccountId::escrow(Currency::Eur)), Balances::default());
    check(&[deposited(), held(), voided.clone()], Command::VoidPending { id: id(101) }, Ok(vec![]));
    check(
        &[deposited(), held(), voided],
        Command::PostPending { id: id(101), amount: eur(1) },
        Err(Rejection::AlreadyVoided { id: id(101) }),
    );
    check(&[], Command::VoidPending { id: id(9) }, Err(Rejection::UnknownPending { id: id(9) }));
}

#[test]
fn a_transfer_id_applies_once() {
    check(&[deposited()], Command::Transfer(deposit()), Ok(vec![]));
    let other = Transfer { amount: eur(1), ..deposit() };
    check(&[deposited()], Command::Transfer(other), Err(Rejection::IdConflict { id: id(100) }));
    check(&[deposited()], Command::CreatePending(deposit()), Err(Rejection::IdConflict { id: id(100) }));
    check(&[deposited(), held()], Command::CreatePending(hold()), Ok(vec![]));
    check(&[deposited(), held()], Command::Transfer(hold()), Err(Rejection::IdConflict { id: id(101) }));
}

#[test]
fn the_terms_of_a_transfer_are_checked() {
    let check_terms = |transfer: Transfer, rejection: Rejection| {
        check(&[deposited()], Command::Transfer(transfer), Err(rejection.clone()));
        check(&[deposited()], Command::CreatePending(transfer), Err(rejection));
    };
    check_terms(Transfer { amount: eur(0), ..hold() }, Rejection::AmountNotPositive);
    check_terms(Transfer { amount: eur(-5), ..hold() }, Rejection::AmountNotPositive);
    check_terms(Transfer { amount: eur(TRANSFER_AMOUNT_MINOR_MAX + 1), ..hold() }, Rejection::AmountTooLarge);
    check_terms(Transfer { credit: available(BUYER), ..hold() }, Rejection::SameAccount);
    check_terms(
        Transfer { amount: chf(100), ..hold() },
        Rejection::CurrencyMismatch { ledger: Currency::Eur, found: Currency::Chf },
    );
    check_terms(
        Transfer { credit: AccountId::escrow(Currency::Chf), ..hold() },
        Rejection::CurrencyMismatch { ledger: Currency::Eur, found: Currency::Chf },
    );
    assert_eq!(Rejection::SameAccount.kind(), RejectionKind::InvalidArgument { field: "credit" });
    assert_eq!(Rejection::UnknownPending { id: id(1) }.kind(), RejectionKind::NotFound);
    assert_eq!(
        Rejection::InsufficientFunds { account: String::new(), available_minor: 0, shortfall_minor: 1 }
            .kind(),
        RejectionKind::FailedPrecondition
    );
}

#[test]
fn the_statement_has_a_running_balance() {
    let posted =
        Event::PendingPosted { id: id(101), amount: eur(10_000), released: eur(4_280), at_ms: NOW_MS + 1 };
    let ledger = fold(&[deposited(), held(), posted]);
    let lines = ledger.statement(&available(BUYER));
    assert_eq!(lines.len(), 2);
    assert_eq!((lines[0].index, lines[0].amount_minor, lines[0].balance_minor), (0, 20_000, 20_000));
    assert_eq!(lines[0].counterparty, AccountId::external(Currency::Eur));
    assert_eq!(lines[0].code, TransferCode::Deposit);
    assert_eq!((lines[1].index, lines[1].amount_minor, lines[1].balance_minor), (1, -10_000, 10_000));
    assert_eq!(lines[1].transfer_id, id(101));
    assert_eq!(lines[1].at_ms, NOW_MS + 1);
    assert_eq!(ledger.statement(&available(SELLER)), vec![]);
}

#[test]
fn a_batch_is_all_or_nothing() {
    let ledger = fold(&[deposited()]);
    let pay = transfer(102, available(BUYER), available(SELLER), 15_000, TransferCode::PalletPayment);
    let again = transfer(103, available(BUYER), available(SELLER), 5_001, TransferCode::PalletPayment);
    assert!(matches!(
        decide_batch(&ledger, vec![Command::Transfer(pay), Command::Transfer(again)], &context()),
        Err((1, Rejection::InsufficientFunds { shortfall_minor: 1, .. }))
    ));
    let events = decide_batch(&ledger, vec![Command::Transfer(pay), Command::Transfer(pay)], &context())
        .expect("one payment");
    assert_eq!(events.len(), 1, "the repeat inside the batch is idempotent too");
    assert_eq!(
        decide_batch(&ledger, vec![Command::VoidPending { id: id(1) }; BATCH_COMMANDS_MAX + 1], &context()),
        Err((0, Rejection::BatchTooLarge))
    );
}

#[test]
fn account_keys_are_stable_and_parse_back() {
    let organization = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0001);
    let account = AccountId::available(organization, Currency::Chf);
    assert_eq!(account.key(), "available:01900000-0000-7000-8000-000000000001:CHF");
    assert_eq!(AccountId::vat_collected(Currency::Eur).key(), "vat_collected:EUR");
    for account in [
        account,
        AccountId::escrow(Currency::Eur),
        AccountId::fees(Currency::Chf),
        AccountId::vat_collected(Currency::Eur),
        AccountId::external(Currency::Eur),
    ] {
        assert_eq!(AccountId::parse_key(&account.key()), Ok(account));
    }
    for bad in ["", "escrow", "escrow:USD", "available:EUR", "fees:0190:EUR", "available:x:EUR", "a:b:c:d"] {
        assert!(AccountId::parse_key(bad).is_err(), "{bad}");
    }
}

/// A random command over three organizations and the platform's accounts.
fn command() -> impl Strategy<Value = Command> {
    let account = prop_oneof![
        (0u128..3).prop_map(|n| AccountId::available(id(n), Currency::Eur)),
        Just(AccountId::escrow(Currency::Eur)),
        Just(AccountId::fees(Currency::Eur)),
        Just(AccountId::external(Currency::Eur)),
    ];
    let transfer =
        (0u128..40, account.clone(), account, -10i64..30_000).prop_map(|(n, debit, credit, minor)| {
            Transfer {
                id: id(n),
                debit,
                credit,
                amount: Money::new(minor, Currency::Eur).expect("money"),
                code: TransferCode::Refund,
                deal_id: None,
            }
        });
    prop_oneof![
        transfer.clone().prop_map(Command::Transfer),
        transfer.prop_map(Command::CreatePending),
        (0u128..40, -10i64..30_000).prop_map(|(n, minor)| Command::PostPending {
            id: id(n),
            amount: Money::new(minor, Currency::Eur).expect("money"),
        }),
        (0u128..40).prop_map(|n| Command::VoidPending { id: id(n) }),
    ]
}

proptest! {
    #[test]
    fn the_ledger_always_balances_and_no_account_goes_below_zero(
        commands in proptest::collection::vec(command(), 1..80),
    ) {
        // A deposit first, so that the random commands have money to move and the checks
        // below have accounts to look at.
        let mut log = decide(&Ledger::new(Currency::Eur), Command::Transfer(deposit()), &context())
            .expect("a deposit from the outside world");
        prop_assert_eq!(log.len(), 1);
        let mut ledger = fold(&log);
        prop_assert_eq!(ledger.balances(&available(BUYER)).posted_minor, 20_000);
        for command in commands {
            let Ok(events) = decide(&ledger, command.clone(), &context()) else { continue };
            for event in &events {
                ledger = evolve(ledger, event);
            }
            log.extend(events);
            prop_assert_eq!(ledger.posted_sum_minor(), 0);
            for (account, balances) in ledger.accounts() {
                prop_assert!(balances.pending_debits_minor >= 0 && balances.pending_credits_minor >= 0);
                if !account.kind().may_go_negative() {
                    prop_assert!(balances.posted_minor >= 0, "{} is negative", account);
                    prop_assert!(balances.available_minor() >= 0, "{} is overdrawn", account);
                }
            }
            // Whatever was applied applies no more.
            prop_assert_eq!(decide(&ledger, command, &context()), Ok(vec![]));
        }
        let pending_debits: i64 = ledger.accounts().map(|(_, balances)| balances.pending_debits_minor).sum();
        let pending_credits: i64 = ledger.accounts().map(|(_, balances)| balances.pending_credits_minor).sum();
        prop_assert_eq!(pending_debits, pending_credits);
        prop_assert_eq!(fold(&log), ledger.clone(), "a replay reaches the same state");
        for (account, balances) in ledger.accounts() {
            let last = ledger.statement(account).last().map_or(0, |line| line.balance_minor);
            prop_assert_eq!(last, balances.posted_minor, "the statement ends at the balance");
        }
    }
}
