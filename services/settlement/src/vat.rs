//! The VAT regime of a deal and its VAT amount, from data kept with its sources.
//!
//! `STANDARD_RATES` holds one row per country: the rate in basis points (1 bp = 0.01 %), its
//! legal source and the date since which it applies. A change of rate is a change of that row
//! (the old one is then history, kept in the invoices that applied it: an `Invoice` carries
//! its regime and rate). `regime` decides, from the two parties and the material, which rule
//! applies; the mentions an invoice must carry are constants of the contract
//! (`symbiose_settlement_contract::vat`, re-exported below), each with its source.
//!
//! Supplies of goods (a sale at a price of zero or more), seller to buyer:
//!
//! 1. Same country:
//!    - France or Germany, material whose legal status is `Waste`, buyer with a VAT number:
//!      domestic reverse charge, the buyer accounts for the VAT (FR: CGI art. 283-2 sexies,
//!      "déchets neufs d'industrie et matières de récupération"; DE: UStG § 13b Abs. 2 Nr. 7
//!      with Anlage 3, scrap and waste). By-products, end-of-waste and products for reuse take
//!      the standard rate: the rule follows the legal status, not the waste code;
//!    - Switzerland: the Swiss standard rate (MWSTG has no reverse charge on scrap);
//!    - otherwise (Belgium, Luxembourg, or a buyer without a VAT number): the country's standard
//!      rate. Belgian and Luxembourg domestic schemes for scrap are not modelled.
//! 2. Two EU countries, buyer with a VAT number: exempt intra-EU supply (Directive 2006/112/EC
//!    art. 138; FR: CGI art. 262 ter I; DE: UStG § 4 Nr. 1b with § 6a). The proof of transport
//!    is the shipment's delivery; the invoice carries both VAT numbers.
//! 3. Two EU countries, buyer without a VAT number: the seller's domestic standard rate, as for
//!    a sale to a non-taxable person (distance-selling thresholds are not modelled: the
//!    marketplace is between businesses, and a business buyer gives its number).
//! 4. From the EU to Switzerland: exempt export (Directive 2006/112/EC art. 146; FR: CGI art.
//!    262 I; DE: UStG § 4 Nr. 1a with § 6); Swiss import VAT is paid at customs.
//! 5. From Switzerland to the EU: exempt Swiss export (MWSTG art. 23 Abs. 2 Ziff. 1); the
//!    import VAT of the country of arrival is paid at customs.
//!
//! Supplies of services: a gate fee (a negative price) pays the receiver for taking the
//! material, so the receiver supplies a service to the producer (see `invoice`):
//!
//! 1. Same country: the country's standard rate (the domestic reverse charge on waste covers
//!    supplies of the material, not its treatment).
//! 2. Different countries, customer with a VAT number: the place of supply is the customer's
//!    country (Directive 2006/112/EC art. 44; MWSTG art. 8 Abs. 1), the customer accounts for
//!    the VAT (art. 196; MWSTG art. 45): `ServiceReverseCharge`, no VAT on the invoice.
//! 3. Different countries, customer without a VAT number: the supplier's standard rate
//!    (Directive 2006/112/EC art. 45).
//!
//! `vat_amount` is the net times the rate, in integer minor units, rounded half away from
//! zero (so a credit's VAT is the opposite of the debit's). No float anywhere.

use symbiose_domain::lot::LegalStatus;
use symbiose_domain::{Country, Identifier, Money, MoneyError};

/// Basis points in one whole: 10,000 bp = 100 %.
pub const BASIS_POINTS_PER_WHOLE: i64 = 10_000;

/// A standard VAT rate, with where it comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Rate {
    pub country: Country,
    /// In basis points: 2000 is 20 %.
    pub rate_bp: u32,
    /// The legal text that sets it.
    pub source: &'static str,
    /// The first day it applies, ISO 8601.
    pub valid_from: &'static str,
}

/// The standard rates of the served countries, one row per country, in `Country::ALL` order.
pub const STANDARD_RATES: [Rate; 5] = [
    Rate {
        country: Country::Fr,
        rate_bp: 2000,
        source: "Code général des impôts, article 278 (loi n° 2012-1510 du 29 décembre 2012, art. 68)",
        valid_from: "2014-01-01",
    },
    Rate {
        country: Country::De,
        rate_bp: 1900,
        source: "Umsatzsteuergesetz § 12 Abs. 1 (Haushaltsbegleitgesetz 2006)",
        valid_from: "2007-01-01",
    },
    Rate {
        country: Country::Ch,
        rate_bp: 810,
        source: "Mehrwertsteuergesetz (MWSTG, SR 641.20) Art. 25 Abs. 1 (Reform AHV 21)",
        valid_from: "2024-01-01",
    },
    Rate {
        country: Country::Be,
        rate_bp: 2100,
        source: "Code de la TVA, article 37, et arrêté royal n° 20 du 20 juillet 1970",
        valid_from: "1996-01-01",
    },
    Rate {
        country: Country::Lu,
        rate_bp: 1700,
        source: "Loi modifiée du 12 février 1979 concernant la TVA, article 39 (16 % during 2023 only)",
        valid_from: "2024-01-01",
    },
];

// The mentions, each with its source, and the regime as recorded are the contract's: an escrow
// held and an invoice issued store them.
pub use symbiose_settlement_contract::vat::{
    MENTION_EXPORT_CH, MENTION_EXPORT_DE, MENTION_EXPORT_EU_OTHER, MENTION_EXPORT_FR, MENTION_INTRA_EU_DE,
    MENTION_INTRA_EU_FR, MENTION_INTRA_EU_OTHER, MENTION_REVERSE_CHARGE_DE, MENTION_REVERSE_CHARGE_FR,
    MENTION_SERVICE_REVERSE_CHARGE_CH, MENTION_SERVICE_REVERSE_CHARGE_DE, MENTION_SERVICE_REVERSE_CHARGE_FR,
    MENTION_SERVICE_REVERSE_CHARGE_OTHER, Regime,
};

/// What is supplied: the material itself, or a service (taking it, for a gate fee).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Supply {
    Goods,
    Service,
}

/// A party to a supply, for VAT: where it is established and its VAT number, if any. A VAT
/// number is one of its country.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Party {
    country: Country,
    vat_number: Option<Identifier>,
}

/// Why a party cannot be one for VAT.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PartyError {
    #[error("{0} is not a VAT number")]
    NotAVatNumber(String),
    #[error("VAT number {number} is not one of {country}")]
    VatNumberOfAnotherCountry { number: String, country: Country },
}

impl Party {
    pub fn new(country: Country, vat_number: Option<Identifier>) -> Result<Party, PartyError> {
        if let Some(number) = &vat_number {
            if !number.kind().is_vat() {
                return Err(PartyError::NotAVatNumber(number.normalized().to_owned()));
            }
            if number.kind().country() != country {
                return Err(PartyError::VatNumberOfAnotherCountry {
                    number: number.normalized().to_owned(),
                    country,
                });
            }
        }
        Ok(Party { country, vat_number })
    }

    pub fn country(&self) -> Country {
        self.country
    }

    pub fn vat_number(&self) -> Option<&Identifier> {
        self.vat_number.as_ref()
    }
}

/// The standard rate of `country`.
pub fn standard_rate(country: Country) -> &'static Rate {
    STANDARD_RATES.iter().find(|rate| rate.country == country).expect("every country has a standard rate")
}

/// The regime of a supply from `supplier` to `customer` (for goods, the seller to the buyer;
/// for a gate fee's service, the receiver to the producer), by the rules of the module.
pub fn regime(supplier: &Party, customer: &Party, legal_status: LegalStatus, supply: Supply) -> Regime {
    let customer_has_number = customer.vat_number.is_some();
    let domestic =
        |country: Country| Regime::DomesticStandard { country, rate_bp: standard_rate(country).rate_bp };
    match supply {
        Supply::Goods if supplier.country == customer.country => {
            match (supplier.country, legal_status == LegalStatus::Waste && customer_has_number) {
                (Country::Fr, true) => {
                    Regime::DomesticReverseCharge { country: Country::Fr, mention: MENTION_REVERSE_CHARGE_FR }
                }
                (Country::De, true) => {
                    Regime::DomesticReverseCharge { country: Country::De, mention: MENTION_REVERSE_CHARGE_DE }
                }
                (country, _) => domestic(country),
            }
        }
        Supply::Goods if supplier.country.is_eu() && customer.country.is_eu() => {
            if !customer_has_number {
                return domestic(supplier.country);
            }
            let mention = match supplier.country {
                Country::Fr => MENTION_INTRA_EU_FR,
                Country::De => MENTION_INTRA_EU_DE,
                _ => MENTION_INTRA_EU_OTHER,
            };
            Regime::IntraEuExempt { mention }
        }
        Supply::Goods => {
            let mention = match supplier.country {
                Country::Ch => MENTION_EXPORT_CH,
                Country::Fr => MENTION_EXPORT_FR,
                Country::De => MENTION_EXPORT_DE,
                Country::Be | Country::Lu => MENTION_EXPORT_EU_OTHER,
            };
            Regime::Export { mention }
        }
        Supply::Service if supplier.country == customer.country || !customer_has_number => {
            domestic(supplier.country)
        }
        Supply::Service => {
            let mention = match supplier.country {
                Country::Fr => MENTION_SERVICE_REVERSE_CHARGE_FR,
                Country::De => MENTION_SERVICE_REVERSE_CHARGE_DE,
                Country::Ch => MENTION_SERVICE_REVERSE_CHARGE_CH,
                Country::Be | Country::Lu => MENTION_SERVICE_REVERSE_CHARGE_OTHER,
            };
            Regime::ServiceReverseCharge { mention }
        }
    }
}

/// The VAT on `net` under `regime`: `net x rate_bp / 10,000` in minor units, rounded half
/// away from zero; zero for every regime but `DomesticStandard`.
pub fn vat_amount(net: Money, regime: &Regime) -> Money {
    apply_basis_points(net, regime.rate_bp()).expect("a rate of at most 100 % keeps money within its limit")
}

/// `amount x basis_points / 10,000`, rounded half away from zero.
pub fn apply_basis_points(amount: Money, basis_points: u32) -> Result<Money, MoneyError> {
    let product = i128::from(amount.minor()) * i128::from(basis_points);
    let whole = i128::from(BASIS_POINTS_PER_WHOLE);
    let rounded = (product.abs() + whole / 2) / whole * product.signum();
    let minor = i64::try_from(rounded).map_err(|_| MoneyError::TooLarge)?;
    Money::new(minor, amount.currency())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{chf, eur};

    // Real numbers with valid check digits, from the identifier tests of `symbiose-domain`.
    const FR_VAT: &str = "FR40303265045";
    const FR_VAT_OTHER: &str = "FR83404833048";
    const DE_VAT: &str = "DE136695976";
    const CH_UID: &str = "CHE109322551";

    #[track_caller]
    fn party(country: Country, vat_number: Option<&str>) -> Party {
        let vat_number = vat_number.map(|number| Identifier::parse(number).expect("a VAT number"));
        Party::new(country, vat_number).expect("a party")
    }

    #[test]
    fn fr_to_fr_pallets_for_reuse_take_the_standard_rate() {
        let regime = regime(
            &party(Country::Fr, Some(FR_VAT)),
            &party(Country::Fr, Some(FR_VAT_OTHER)),
            LegalStatus::ProductForReuse,
            Supply::Goods,
        );
        assert_eq!(regime, Regime::DomesticStandard { country: Country::Fr, rate_bp: 2000 });
        assert_eq!(vat_amount(eur(14_000), &regime), eur(2_800));
        assert_eq!(regime.mention(), None);
    }

    #[test]
    fn fr_to_fr_waste_is_reverse_charged() {
        let regime = regime(
            &party(Country::Fr, Some(FR_VAT)),
            &party(Country::Fr, Some(FR_VAT_OTHER)),
            LegalStatus::Waste,
            Supply::Goods,
        );
        assert_eq!(
            regime,
            Regime::DomesticReverseCharge { country: Country::Fr, mention: MENTION_REVERSE_CHARGE_FR }
        );
        assert!(regime.mention().is_some_and(|mention| mention.starts_with("Autoliquidation")));
        assert_eq!(vat_amount(eur(14_000), &regime), eur(0));
        assert!(regime.needs_vat_numbers());
        // Without the buyer's number it is not a sale between businesses: standard rate.
        let to_anyone = regime_of(Country::Fr, Some(FR_VAT), Country::Fr, None, LegalStatus::Waste);
        assert_eq!(to_anyone, Regime::DomesticStandard { country: Country::Fr, rate_bp: 2000 });
        // End-of-waste is a product again: standard rate.
        let end_of_waste =
            regime_of(Country::Fr, Some(FR_VAT), Country::Fr, Some(FR_VAT_OTHER), LegalStatus::EndOfWaste);
        assert_eq!(end_of_waste.rate_bp(), 2000);
    }

    fn regime_of(
        seller: Country,
        seller_vat: Option<&str>,
        buyer: Country,
        buyer_vat: Option<&str>,
        legal_status: LegalStatus,
    ) -> Regime {
        regime(&party(seller, seller_vat), &party(buyer, buyer_vat), legal_status, Supply::Goods)
    }

    #[test]
    fn de_to_de_waste_is_reverse_charged_under_13b() {
        let regime = regime_of(Country::De, Some(DE_VAT), Country::De, Some(DE_VAT), LegalStatus::Waste);
        assert_eq!(
            regime,
            Regime::DomesticReverseCharge { country: Country::De, mention: MENTION_REVERSE_CHARGE_DE }
        );
        assert!(regime.mention().is_some_and(|mention| mention.contains("§ 13b")));
        let by_product =
            regime_of(Country::De, Some(DE_VAT), Country::De, Some(DE_VAT), LegalStatus::ByProduct);
        assert_eq!(by_product, Regime::DomesticStandard { country: Country::De, rate_bp: 1900 });
    }

    #[test]
    fn fr_to_de_with_the_buyers_number_is_an_exempt_intra_eu_supply() {
        let regime =
            regime_of(Country::Fr, Some(FR_VAT), Country::De, Some(DE_VAT), LegalStatus::ProductForReuse);
        assert_eq!(regime, Regime::IntraEuExempt { mention: MENTION_INTRA_EU_FR });
        assert_eq!(vat_amount(eur(14_000), &regime), eur(0));
        let from_germany =
            regime_of(Country::De, Some(DE_VAT), Country::Fr, Some(FR_VAT), LegalStatus::Waste);
        assert_eq!(from_germany, Regime::IntraEuExempt { mention: MENTION_INTRA_EU_DE });
        let from_belgium = regime_of(Country::Be, None, Country::Lu, Some("LU15027442"), LegalStatus::Waste);
        assert_eq!(from_belgium, Regime::IntraEuExempt { mention: MENTION_INTRA_EU_OTHER });
        // Without the buyer's number, the seller charges its own VAT.
        let without = regime_of(Country::Fr, Some(FR_VAT), Country::De, None, LegalStatus::ProductForReuse);
        assert_eq!(without, Regime::DomesticStandard { country: Country::Fr, rate_bp: 2000 });
    }

    #[test]
    fn fr_to_ch_is_an_export_and_back_too() {
        let regime = regime_of(Country::Fr, Some(FR_VAT), Country::Ch, Some(CH_UID), LegalStatus::Waste);
        assert_eq!(regime, Regime::Export { mention: MENTION_EXPORT_FR });
        assert_eq!(vat_amount(eur(14_000), &regime), eur(0));
        let back =
            regime_of(Country::Ch, Some(CH_UID), Country::De, Some(DE_VAT), LegalStatus::ProductForReuse);
        assert_eq!(back, Regime::Export { mention: MENTION_EXPORT_CH });
    }

    #[test]
    fn ch_to_ch_takes_the_swiss_rate() {
        let regime = regime_of(Country::Ch, Some(CH_UID), Country::Ch, Some(CH_UID), LegalStatus::Waste);
        assert_eq!(regime, Regime::DomesticStandard { country: Country::Ch, rate_bp: 810 });
        // 8.1 % of 123.45 CHF is 9.99945: 10.00 CHF.
        assert_eq!(vat_amount(chf(12_345), &regime), chf(1_000));
    }

    #[test]
    fn a_gate_fee_is_a_service_taxed_where_the_customer_is() {
        let receiver = party(Country::De, Some(DE_VAT));
        let producer = party(Country::Fr, Some(FR_VAT));
        assert_eq!(
            regime(&receiver, &producer, LegalStatus::Waste, Supply::Service),
            Regime::ServiceReverseCharge { mention: MENTION_SERVICE_REVERSE_CHARGE_DE }
        );
        let local_producer = party(Country::De, Some(DE_VAT));
        assert_eq!(
            regime(&receiver, &local_producer, LegalStatus::Waste, Supply::Service),
            Regime::DomesticStandard { country: Country::De, rate_bp: 1900 },
            "the reverse charge on waste is for the material, not its treatment"
        );
    }

    #[test]
    fn vat_rounds_half_away_from_zero() {
        let standard = Regime::DomesticStandard { country: Country::Fr, rate_bp: 2000 };
        // 20 % of 0.02 is 0.004: 0.00; of 0.03 is 0.006: 0.01; of 0.025 would be half.
        assert_eq!(vat_amount(eur(2), &standard), eur(0));
        assert_eq!(vat_amount(eur(3), &standard), eur(1));
        let german = Regime::DomesticStandard { country: Country::De, rate_bp: 1900 };
        // 19 % of 0.50 is 0.095: 0.10, and of -0.50 is -0.10.
        assert_eq!(vat_amount(eur(50), &german), eur(10));
        assert_eq!(vat_amount(eur(-50), &german), eur(-10));
    }

    #[test]
    fn every_country_has_one_sourced_rate() {
        for country in Country::ALL {
            let rows: Vec<&Rate> = STANDARD_RATES.iter().filter(|rate| rate.country == country).collect();
            assert_eq!(rows.len(), 1, "{country}");
            assert!(!rows[0].source.is_empty() && rows[0].valid_from.len() == 10);
            assert!(rows[0].rate_bp > 0 && i64::from(rows[0].rate_bp) < BASIS_POINTS_PER_WHOLE);
        }
        assert_eq!(standard_rate(Country::Lu).rate_bp, 1700);
        assert_eq!(standard_rate(Country::Be).rate_bp, 2100);
    }

    #[test]
    fn a_party_holds_only_a_vat_number_of_its_country() {
        let siren = Identifier::parse("732829320").expect("a SIREN");
        assert!(matches!(Party::new(Country::Fr, Some(siren)), Err(PartyError::NotAVatNumber(_))));
        let german = Identifier::parse(DE_VAT).expect("a VAT number");
        assert!(matches!(
            Party::new(Country::Fr, Some(german)),
            Err(PartyError::VatNumberOfAnotherCountry { .. })
        ));
        assert_eq!(Party::new(Country::Be, None).map(|party| party.country()), Ok(Country::Be));
    }
}
