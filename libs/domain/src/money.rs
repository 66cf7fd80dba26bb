//! Money: an integer amount of minor units (cents, centimes, Rappen) and an ISO 4217 currency.
//!
//! Never a float: a price times a quantity must give the same cents on every machine. An amount
//! may be negative, because a producer often pays a gate fee to be rid of a material.

use std::fmt;
use std::str::FromStr;

use crate::input::echo;

/// The largest absolute amount, in minor units: one trillion in major units. Far above any
/// trade on the marketplace, and small enough that a sum of two amounts fits in `i64`.
pub const MONEY_MINOR_MAX: i64 = 100_000_000_000_000;

/// A currency the marketplace settles in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub enum Currency {
    Eur,
    Chf,
}

/// An amount of minor units of one currency, with `|minor| <= MONEY_MINOR_MAX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Money {
    minor: i64,
    currency: Currency,
}

/// Why an amount is not money, or an operation on money has no result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("currency {0:?} is not supported: expected EUR or CHF")]
    UnsupportedCurrency(String),
    #[error("amount exceeds the limit of one trillion in major units")]
    TooLarge,
    #[error("cannot combine an amount in {left} with one in {right}")]
    CurrencyMismatch { left: Currency, right: Currency },
}

impl Currency {
    pub const ALL: [Currency; 2] = [Currency::Eur, Currency::Chf];

    /// The ISO 4217 code: `EUR`, `CHF`.
    pub fn code(self) -> &'static str {
        match self {
            Currency::Eur => "EUR",
            Currency::Chf => "CHF",
        }
    }

    /// Decimals of the minor unit in ISO 4217: both euro and franc have 2.
    pub fn minor_unit_digits(self) -> u32 {
        match self {
            Currency::Eur | Currency::Chf => 2,
        }
    }

    fn minor_per_major(self) -> i64 {
        10_i64.pow(self.minor_unit_digits())
    }
}

/// Exactly the upper-case ISO code: a currency is an identifier, not free text.
impl FromStr for Currency {
    type Err = MoneyError;

    fn from_str(code: &str) -> Result<Currency, MoneyError> {
        Currency::ALL
            .into_iter()
            .find(|currency| currency.code() == code)
            .ok_or_else(|| MoneyError::UnsupportedCurrency(echo(code)))
    }
}

impl TryFrom<&str> for Currency {
    type Error = MoneyError;

    fn try_from(code: &str) -> Result<Currency, MoneyError> {
        code.parse()
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl Money {
    pub fn new(minor: i64, currency: Currency) -> Result<Money, MoneyError> {
        if minor.unsigned_abs() > MONEY_MINOR_MAX.unsigned_abs() {
            return Err(MoneyError::TooLarge);
        }
        Ok(Money { minor, currency })
    }

    pub fn zero(currency: Currency) -> Money {
        Money { minor: 0, currency }
    }

    /// The amount in minor units, negative for a fee paid by the seller.
    pub fn minor(&self) -> i64 {
        self.minor
    }

    pub fn currency(&self) -> Currency {
        self.currency
    }

    pub fn is_negative(&self) -> bool {
        self.minor < 0
    }

    pub fn checked_add(&self, other: Money) -> Result<Money, MoneyError> {
        self.require_same_currency(other)?;
        let sum = self.minor.checked_add(other.minor).ok_or(MoneyError::TooLarge)?;
        Money::new(sum, self.currency)
    }

    pub fn checked_sub(&self, other: Money) -> Result<Money, MoneyError> {
        self.require_same_currency(other)?;
        let difference = self.minor.checked_sub(other.minor).ok_or(MoneyError::TooLarge)?;
        Money::new(difference, self.currency)
    }

    /// The amount times a whole factor, such as a unit price times a count of pallets.
    pub fn checked_mul(&self, factor: i64) -> Result<Money, MoneyError> {
        let product = self.minor.checked_mul(factor).ok_or(MoneyError::TooLarge)?;
        Money::new(product, self.currency)
    }

    /// The opposite amount, always representable because the limit is symmetric.
    pub fn negated(&self) -> Money {
        Money { minor: -self.minor, currency: self.currency }
    }

    fn require_same_currency(&self, other: Money) -> Result<(), MoneyError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(MoneyError::CurrencyMismatch { left: self.currency, right: other.currency })
        }
    }
}

/// `12.50 EUR`, `-3.00 CHF`: every decimal of the minor unit, then the ISO code.
impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let per_major = self.currency.minor_per_major().unsigned_abs();
        let magnitude = self.minor.unsigned_abs();
        let sign = if self.minor < 0 { "-" } else { "" };
        let digits = self.currency.minor_unit_digits() as usize;
        write!(f, "{sign}{}.{:0digits$} {}", magnitude / per_major, magnitude % per_major, self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[track_caller]
    fn eur(minor: i64) -> Money {
        Money::new(minor, Currency::Eur).unwrap()
    }

    #[test]
    fn currencies_parse_from_their_exact_codes() {
        assert_eq!("EUR".parse(), Ok(Currency::Eur));
        assert_eq!(Currency::try_from("CHF"), Ok(Currency::Chf));
        for unsupported in ["eur", " EUR", "USD", ""] {
            assert_eq!(
                unsupported.parse::<Currency>(),
                Err(MoneyError::UnsupportedCurrency(unsupported.to_owned()))
            );
        }
        assert_eq!(
            "USD".parse::<Currency>().unwrap_err().to_string(),
            "currency \"USD\" is not supported: expected EUR or CHF"
        );
        assert_eq!(Currency::Chf.minor_unit_digits(), 2);
    }

    #[test]
    fn display_shows_two_decimals_and_the_sign() {
        assert_eq!(eur(1250).to_string(), "12.50 EUR");
        assert_eq!(Money::new(-300, Currency::Chf).unwrap().to_string(), "-3.00 CHF");
        assert_eq!(eur(-5).to_string(), "-0.05 EUR");
        assert_eq!(Money::zero(Currency::Eur).to_string(), "0.00 EUR");
        assert_eq!(eur(MONEY_MINOR_MAX).to_string(), "1000000000000.00 EUR");
    }

    #[test]
    fn arithmetic_is_exact_and_bounded() {
        assert_eq!(eur(1250).checked_add(eur(-300)), Ok(eur(950)));
        assert_eq!(eur(1250).checked_sub(eur(1300)), Ok(eur(-50)));
        assert!(eur(-1).is_negative());
        assert!(!Money::zero(Currency::Chf).is_negative());
        assert_eq!(eur(1250).checked_mul(40), Ok(eur(50_000)));
        assert_eq!(eur(-1250).checked_mul(-2), Ok(eur(2500)));
        assert_eq!(eur(MONEY_MINOR_MAX).checked_add(eur(1)), Err(MoneyError::TooLarge));
        assert_eq!(eur(-MONEY_MINOR_MAX).checked_sub(eur(1)), Err(MoneyError::TooLarge));
        assert_eq!(eur(2).checked_mul(i64::MAX), Err(MoneyError::TooLarge));
        assert_eq!(eur(MONEY_MINOR_MAX).checked_mul(2), Err(MoneyError::TooLarge));
        assert_eq!(eur(-MONEY_MINOR_MAX).negated(), eur(MONEY_MINOR_MAX));
    }

    #[test]
    fn amounts_beyond_the_limit_are_refused() {
        assert_eq!(Money::new(MONEY_MINOR_MAX + 1, Currency::Eur), Err(MoneyError::TooLarge));
        assert_eq!(Money::new(-MONEY_MINOR_MAX - 1, Currency::Eur), Err(MoneyError::TooLarge));
        assert_eq!(Money::new(i64::MIN, Currency::Eur), Err(MoneyError::TooLarge));
    }

    #[test]
    fn currencies_do_not_mix() {
        let francs = Money::new(100, Currency::Chf).unwrap();
        let mismatch = MoneyError::CurrencyMismatch { left: Currency::Eur, right: Currency::Chf };
        assert_eq!(eur(100).checked_add(francs), Err(mismatch.clone()));
        assert_eq!(eur(100).checked_sub(francs), Err(mismatch.clone()));
        assert_eq!(mismatch.to_string(), "cannot combine an amount in EUR with one in CHF");
    }

    fn any_money() -> impl Strategy<Value = Money> {
        (-MONEY_MINOR_MAX..=MONEY_MINOR_MAX).prop_map(eur)
    }

    proptest! {
        #[test]
        fn addition_is_commutative(first in any_money(), second in any_money()) {
            prop_assert_eq!(first.checked_add(second), second.checked_add(first));
        }

        #[test]
        fn addition_never_silently_overflows(first in any_money(), second in any_money()) {
            let exact = i128::from(first.minor()) + i128::from(second.minor());
            match first.checked_add(second) {
                Ok(sum) => prop_assert_eq!(i128::from(sum.minor()), exact),
                Err(error) => {
                    prop_assert_eq!(error, MoneyError::TooLarge);
                    prop_assert!(exact.unsigned_abs() > MONEY_MINOR_MAX.unsigned_abs().into());
                }
            }
        }

        #[test]
        fn multiplication_never_silently_overflows(money in any_money(), factor in any::<i64>()) {
            let exact = i128::from(money.minor()) * i128::from(factor);
            match money.checked_mul(factor) {
                Ok(product) => prop_assert_eq!(i128::from(product.minor()), exact),
                Err(error) => {
                    prop_assert_eq!(error, MoneyError::TooLarge);
                    prop_assert!(exact.unsigned_abs() > MONEY_MINOR_MAX.unsigned_abs().into());
                }
            }
        }
    }
}
