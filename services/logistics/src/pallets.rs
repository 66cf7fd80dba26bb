//! Pallet accounts: how many EUR pallets one organization owes another, per grade, from the
//! pallets exchanged at pickups and deliveries, and their settlement.
//!
//! EUR pallets are exchanged like for like: a carrier that takes loaded pallets from a seller
//! owes it as many empty ones of the same grade, and a buyer that receives loaded pallets owes
//! the carrier as many. Exchanges are between a shipment's parties only: the seller and the
//! carrier at pickup, the carrier and the buyer at delivery.
//!
//! Sign convention: the balance of A toward B is the number of pallets A owes B; the balance
//! of B toward A is its opposite. At one stop the carrier hands over `handed_over` pallets and
//! takes back `taken_back` ones, so the carrier's balance toward the party moves by
//! `taken_back - handed_over`:
//!
//! - at pickup, the carrier takes N loaded pallets from the seller and hands over M empty
//!   ones: the carrier owes the seller N - M more (the seller's balance toward the carrier
//!   moves by M - N);
//! - at delivery, the carrier hands over the N loaded pallets to the buyer and takes back K
//!   empty ones: the buyer owes the carrier N - K more.
//!
//! A debt is settled by returning pallets of the grade or by paying for them; either brings
//! the balance toward zero, never past it. A payment is a fact the settlement service turns
//! into a transfer from the debtor to the creditor. `PalletLedger` folds the facts; one ledger
//! of a single pair is what a settlement is decided on (`account_id` names the pair's stream).

use std::collections::BTreeMap;

use symbiose_domain::PalletGrade;
use uuid::Uuid;

use crate::RejectionKind;
use crate::shipment::{self, Shipment};

/// Largest payment for pallets in one settlement, in minor units (100,000.00).
pub const SETTLEMENT_PAYMENT_MINOR_MAX: i64 = 10_000_000;

/// Namespace of the ids of pallet accounts.
const ACCOUNT_NAMESPACE: Uuid = Uuid::from_u128(0x7061_6c6c_6574_4163_8c0a_77e1_1ed9_e5a2);

/// The id of the pallet account between `a` and `b`, whatever their order.
pub fn account_id(a: Uuid, b: Uuid) -> Uuid {
    let (low, high) = if a <= b { (a, b) } else { (b, a) };
    Uuid::new_v5(&ACCOUNT_NAMESPACE, format!("pallet-account/{low}/{high}").as_bytes())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Stop {
    Pickup,
    Delivery,
}

/// Pallets exchanged between a carrier and a party (the seller at pickup, the buyer at
/// delivery), counted from the carrier's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Exchange {
    pub shipment_id: Uuid,
    pub stop: Stop,
    pub carrier: Uuid,
    pub party: Uuid,
    pub grade: PalletGrade,
    pub handed_over: i64,
    pub taken_back: i64,
}

impl Exchange {
    /// How many more pallets the carrier owes the party (negative: the party owes them).
    pub fn carrier_owes_party(&self) -> i64 {
        self.taken_back - self.handed_over
    }
}

// A settlement and how it is made are the contract's: what the log records and settlement
// reads.
pub use symbiose_logistics_contract::pallets::{SettleBy, Settlement};

/// What pallet accounts are folded from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Fact {
    Exchanged(Exchange),
    Settled(Settlement),
}

/// One line of an organization's pallet accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Balance {
    pub counterparty: Uuid,
    pub grade: PalletGrade,
    /// Pallets the organization owes the counterparty; negative when it is owed.
    pub owed: i64,
}

/// Why a settlement is refused; `kind` says how it reaches the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettlementRejection {
    #[error("an organization has no pallet account with itself")]
    SameOrganization,
    #[error("a settlement is of at least one pallet")]
    CountNotPositive,
    #[error("no pallets of this grade are owed between the two organizations")]
    NothingOwed,
    #[error("{count} pallets would settle more than the {owed} owed")]
    OverSettlement { count: i64, owed: i64 },
    #[error("a payment for pallets is 1 to {SETTLEMENT_PAYMENT_MINOR_MAX} minor units")]
    PaymentOutOfRange,
}

impl SettlementRejection {
    pub fn kind(&self) -> RejectionKind {
        match self {
            SettlementRejection::SameOrganization => RejectionKind::InvalidArgument { field: "counterparty" },
            SettlementRejection::CountNotPositive => RejectionKind::InvalidArgument { field: "count" },
            SettlementRejection::PaymentOutOfRange => RejectionKind::InvalidArgument { field: "amount" },
            SettlementRejection::NothingOwed | SettlementRejection::OverSettlement { .. } => {
                RejectionKind::FailedPrecondition
            }
        }
    }
}

/// The balances folded from exchanges and settlements.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PalletLedger {
    /// Per (low, high, grade index), with `low < high`: pallets `low` owes `high`.
    balances: BTreeMap<(Uuid, Uuid, usize), i64>,
}

impl PalletLedger {
    pub fn fold<'a>(facts: impl IntoIterator<Item = &'a Fact>) -> PalletLedger {
        let mut ledger = PalletLedger::default();
        for fact in facts {
            ledger.apply(fact);
        }
        ledger
    }

    pub fn apply(&mut self, fact: &Fact) {
        match fact {
            Fact::Exchanged(exchange) => {
                self.add(exchange.carrier, exchange.party, exchange.grade, exchange.carrier_owes_party());
            }
            Fact::Settled(settlement) => {
                self.add(settlement.debtor, settlement.creditor, settlement.grade, -settlement.by.count());
            }
        }
    }

    /// Pallets of `grade` that `a` owes `b` (negative: `b` owes `a`).
    pub fn balance(&self, a: Uuid, b: Uuid, grade: PalletGrade) -> i64 {
        let (key, sign) = key(a, b, grade);
        self.balances.get(&key).map_or(0, |owed| sign * owed)
    }

    /// The non-zero balances of `organization`, by counterparty then grade.
    pub fn balances_of(&self, organization: Uuid) -> Vec<Balance> {
        let mut balances: Vec<Balance> = self
            .balances
            .iter()
            .filter(|(_, owed)| **owed != 0)
            .filter_map(|(&(low, high, grade), &owed)| {
                let grade = PalletGrade::ALL[grade];
                if low == organization {
                    Some(Balance { counterparty: high, grade, owed })
                } else if high == organization {
                    Some(Balance { counterparty: low, grade, owed: -owed })
                } else {
                    None
                }
            })
            .collect();
        balances.sort_by_key(|balance| (balance.counterparty, grade_index(balance.grade)));
        balances
    }

    /// Settles part or all of what is owed between `a` and `b` in `grade`, whichever owes.
    pub fn settle(
        &self,
        settlement_id: Uuid,
        (a, b): (Uuid, Uuid),
        grade: PalletGrade,
        by: SettleBy,
        now_ms: i64,
    ) -> Result<Settlement, SettlementRejection> {
        if a == b {
            return Err(SettlementRejection::SameOrganization);
        }
        let count = by.count();
        if count <= 0 {
            return Err(SettlementRejection::CountNotPositive);
        }
        if let SettleBy::Payment { amount, .. } = by
            && !(1..=SETTLEMENT_PAYMENT_MINOR_MAX).contains(&amount.minor())
        {
            return Err(SettlementRejection::PaymentOutOfRange);
        }
        let a_owes_b = self.balance(a, b, grade);
        let (debtor, creditor, owed) = if a_owes_b >= 0 { (a, b, a_owes_b) } else { (b, a, -a_owes_b) };
        if owed == 0 {
            return Err(SettlementRejection::NothingOwed);
        }
        if count > owed {
            return Err(SettlementRejection::OverSettlement { count, owed });
        }
        Ok(Settlement { settlement_id, debtor, creditor, grade, by, at_ms: now_ms })
    }

    fn add(&mut self, debtor: Uuid, creditor: Uuid, grade: PalletGrade, count: i64) {
        if debtor == creditor || count == 0 {
            return;
        }
        let (key, sign) = key(debtor, creditor, grade);
        *self.balances.entry(key).or_insert(0) += sign * count;
    }
}

/// The exchange a shipment's pickup or delivery records, if any pallets changed hands between
/// two different organizations (a seller carrying its own lot owes itself nothing).
pub fn exchange_of(shipment: &Shipment, event: &shipment::Event) -> Option<Exchange> {
    let transport = &shipment.transport;
    let (stop, party, pallets) = match event {
        shipment::Event::PickedUp(pickup) => (Stop::Pickup, transport.seller, pickup.pallets?),
        shipment::Event::Delivered(delivery) => (Stop::Delivery, transport.buyer, delivery.pallets?),
        _ => return None,
    };
    if party == transport.carrier || (pallets.handed_over == 0 && pallets.taken_back == 0) {
        return None;
    }
    Some(Exchange {
        shipment_id: shipment.id,
        stop,
        carrier: transport.carrier,
        party,
        grade: pallets.grade,
        handed_over: pallets.handed_over,
        taken_back: pallets.taken_back,
    })
}

/// The map key of the pair and the sign that turns its stored balance into "`a` owes `b`".
fn key(a: Uuid, b: Uuid, grade: PalletGrade) -> ((Uuid, Uuid, usize), i64) {
    if a < b { ((a, b, grade_index(grade)), 1) } else { ((b, a, grade_index(grade)), -1) }
}

fn grade_index(grade: PalletGrade) -> usize {
    PalletGrade::ALL.iter().position(|candidate| *candidate == grade).expect("every grade is in ALL")
}

#[cfg(test)]
mod tests {
    use symbiose_domain::Unit;

    use super::*;
    use crate::shipment::{Delivery, PalletExchange, Pickup, ShipmentState, Transport, evolve};
    use crate::testing::{HOUR_MS, NOW_MS, eur, id, place_of, quantity};

    const SELLER: u128 = 1;
    const BUYER: u128 = 2;
    const CARRIER: u128 = 3;

    /// A shipment of 12 loaded pallets, picked up against 10 empty ones (the carrier owes the
    /// seller 2) and delivered against 9 empty ones taken back (the buyer owes the carrier 3).
    fn facts() -> Vec<Fact> {
        let transport = Transport {
            deal_id: id(4),
            seller: id(SELLER),
            buyer: id(BUYER),
            carrier: id(CARRIER),
            price: eur(9000),
            pickup: place_of("Strasbourg"),
            delivery: place_of("Kehl"),
            quantity: quantity(12, Unit::Pallet),
            cross_border: true,
            hazardous: false,
            prior_notification_number: None,
            pallet_exchange: true,
        };
        let grade_b =
            |handed_over, taken_back| Some(PalletExchange { grade: PalletGrade::B, handed_over, taken_back });
        let events = [
            shipment::Event::Booked { shipment_id: id(5), transport, booked_by: id(BUYER), at_ms: NOW_MS },
            shipment::Event::PickedUp(Pickup {
                quantity: quantity(12, Unit::Pallet),
                pallets: grade_b(10, 12),
                at_ms: NOW_MS + HOUR_MS,
            }),
            shipment::Event::Delivered(Delivery {
                received: quantity(12, Unit::Pallet),
                accepted_milli: 12_000,
                refused_milli: 0,
                refusal_reason: None,
                pallets: grade_b(12, 9),
                at_ms: NOW_MS + 2 * HOUR_MS,
            }),
        ];
        let mut state = ShipmentState::Absent;
        let mut facts = Vec::new();
        for event in &events {
            state = evolve(state, event);
            let shipment = state.shipment().expect("booked");
            facts.extend(exchange_of(shipment, event).map(Fact::Exchanged));
        }
        facts
    }

    #[test]
    fn balances_after_a_pickup_and_a_delivery() {
        let facts = facts();
        assert_eq!(facts.len(), 2);
        let Fact::Exchanged(pickup) = facts[0] else { panic!("an exchange") };
        assert_eq!((pickup.stop, pickup.party, pickup.carrier_owes_party()), (Stop::Pickup, id(SELLER), 2));
        let ledger = PalletLedger::fold(&facts);
        // The carrier took 12 loaded pallets from the seller and handed over 10 empty ones.
        assert_eq!(ledger.balance(id(CARRIER), id(SELLER), PalletGrade::B), 2);
        assert_eq!(ledger.balance(id(SELLER), id(CARRIER), PalletGrade::B), -2);
        // The carrier handed over the 12 loaded pallets to the buyer and took back 9 empty ones.
        assert_eq!(ledger.balance(id(BUYER), id(CARRIER), PalletGrade::B), 3);
        assert_eq!(ledger.balance(id(BUYER), id(SELLER), PalletGrade::B), 0, "no exchange between them");
        assert_eq!(ledger.balance(id(BUYER), id(CARRIER), PalletGrade::A), 0, "grades are apart");
        assert_eq!(
            ledger.balances_of(id(CARRIER)),
            [
                Balance { counterparty: id(SELLER), grade: PalletGrade::B, owed: 2 },
                Balance { counterparty: id(BUYER), grade: PalletGrade::B, owed: -3 },
            ]
        );
        assert_eq!(
            ledger.balances_of(id(SELLER)),
            [Balance { counterparty: id(CARRIER), grade: PalletGrade::B, owed: -2 }]
        );
        assert_eq!(account_id(id(SELLER), id(CARRIER)), account_id(id(CARRIER), id(SELLER)));
        assert_ne!(account_id(id(SELLER), id(CARRIER)), account_id(id(BUYER), id(CARRIER)));
    }

    #[test]
    fn settling_by_return_and_by_payment_down_to_zero_and_no_further() {
        let mut ledger = PalletLedger::fold(&facts());
        // The buyer owes the carrier 3: it returns 2, whichever way round the pair is named.
        let returned = ledger
            .settle(id(70), (id(CARRIER), id(BUYER)), PalletGrade::B, SettleBy::Return { count: 2 }, NOW_MS)
            .expect("a settlement");
        assert_eq!((returned.debtor, returned.creditor), (id(BUYER), id(CARRIER)));
        ledger.apply(&Fact::Settled(returned));
        assert_eq!(ledger.balance(id(BUYER), id(CARRIER), PalletGrade::B), 1);
        // Two more would be one too many.
        let too_many = SettleBy::Payment { count: 2, amount: eur(1400) };
        assert_eq!(
            ledger.settle(id(71), (id(BUYER), id(CARRIER)), PalletGrade::B, too_many, NOW_MS),
            Err(SettlementRejection::OverSettlement { count: 2, owed: 1 })
        );
        // It pays 7.00 for the last one: the settlement service moves the money.
        let paid = SettleBy::Payment { count: 1, amount: eur(700) };
        let payment = ledger
            .settle(id(72), (id(BUYER), id(CARRIER)), PalletGrade::B, paid, NOW_MS)
            .expect("a settlement");
        assert_eq!(payment.by, paid);
        assert_eq!((payment.debtor, payment.creditor), (id(BUYER), id(CARRIER)));
        ledger.apply(&Fact::Settled(payment));
        assert_eq!(ledger.balance(id(BUYER), id(CARRIER), PalletGrade::B), 0);
        assert_eq!(
            ledger.settle(
                id(73),
                (id(BUYER), id(CARRIER)),
                PalletGrade::B,
                SettleBy::Return { count: 1 },
                NOW_MS
            ),
            Err(SettlementRejection::NothingOwed)
        );
        assert_eq!(ledger.balances_of(id(BUYER)), []);
    }

    proptest::proptest! {
        /// Whatever the exchanges, every pallet one organization owes is owed to another, and
        /// settling every debt in full leaves nothing owed.
        #[test]
        fn the_accounts_always_balance(
            exchanges in proptest::collection::vec((0..4_u128, 0..4_u128, 0..5_usize, 0..40_i64, 0..40_i64), 0..40)
        ) {
            let facts: Vec<Fact> = exchanges
                .iter()
                .map(|&(carrier, party, grade, handed_over, taken_back)| {
                    Fact::Exchanged(Exchange {
                        shipment_id: id(100),
                        stop: Stop::Pickup,
                        carrier: id(carrier),
                        party: id(party),
                        grade: PalletGrade::ALL[grade],
                        handed_over,
                        taken_back,
                    })
                })
                .collect();
            let mut ledger = PalletLedger::fold(&facts);
            // What each pair owes, summed by hand: the ledger holds every debt the exchanges
            // made, so the settlements below settle something.
            let mut owed: BTreeMap<(u128, u128, usize), i64> = BTreeMap::new();
            for &(carrier, party, grade, handed_over, taken_back) in &exchanges {
                if carrier != party {
                    *owed.entry((carrier, party, grade)).or_default() += taken_back - handed_over;
                    *owed.entry((party, carrier, grade)).or_default() -= taken_back - handed_over;
                }
            }
            for (&(a, b, grade), &count) in &owed {
                proptest::prop_assert_eq!(ledger.balance(id(a), id(b), PalletGrade::ALL[grade]), count);
            }
            let organizations: Vec<Uuid> = (0..4).map(id).collect();
            let lines: usize =
                organizations.iter().map(|organization| ledger.balances_of(*organization).len()).sum();
            proptest::prop_assert_eq!(lines, owed.values().filter(|count| **count != 0).count());
            let total: i64 = organizations
                .iter()
                .flat_map(|organization| ledger.balances_of(*organization))
                .map(|balance| balance.owed)
                .sum();
            proptest::prop_assert_eq!(total, 0);
            for &a in &organizations {
                for balance in ledger.balances_of(a) {
                    let (b, grade) = (balance.counterparty, balance.grade);
                    proptest::prop_assert_eq!(ledger.balance(b, a, grade), -balance.owed);
                    let by = SettleBy::Return { count: balance.owed.abs() };
                    let settlement = ledger.settle(id(200), (a, b), grade, by, NOW_MS).expect("a settlement");
                    ledger.apply(&Fact::Settled(settlement));
                }
            }
            for &a in &organizations {
                proptest::prop_assert_eq!(ledger.balances_of(a), []);
            }
        }
    }

    #[test]
    fn a_settlement_is_of_something() {
        let ledger = PalletLedger::fold(&facts());
        let pair = (id(CARRIER), id(SELLER));
        let settle = |by| ledger.settle(id(70), pair, PalletGrade::B, by, NOW_MS);
        assert_eq!(settle(SettleBy::Return { count: 0 }), Err(SettlementRejection::CountNotPositive));
        assert_eq!(
            settle(SettleBy::Payment { count: 1, amount: eur(0) }),
            Err(SettlementRejection::PaymentOutOfRange)
        );
        assert_eq!(
            ledger.settle(
                id(70),
                (id(SELLER), id(SELLER)),
                PalletGrade::B,
                SettleBy::Return { count: 1 },
                NOW_MS
            ),
            Err(SettlementRejection::SameOrganization)
        );
        assert_eq!(SettlementRejection::NothingOwed.kind(), RejectionKind::FailedPrecondition);
    }
}
