//! The VAT vocabulary settlement's events record: the regime a deal settles under and the
//! mentions an invoice carries, each with its source. Which regime applies is decided in
//! `symbiose-settlement` (`vat::regime`); this is only what the decision is written as.

use symbiose_domain::Country;

/// Reverse charge, French seller (CGI art. 242 nonies A, I-13°: the word "Autoliquidation").
pub const MENTION_REVERSE_CHARGE_FR: &str = "Autoliquidation (article 283-2 sexies du CGI)";
/// Reverse charge, German seller (UStG § 14a Abs. 5).
pub const MENTION_REVERSE_CHARGE_DE: &str =
    "Steuerschuldnerschaft des Leistungsempfängers (§ 13b Abs. 2 Nr. 7 UStG)";
/// Intra-EU supply, French seller.
pub const MENTION_INTRA_EU_FR: &str = "Exonération de TVA, article 262 ter I du CGI";
/// Intra-EU supply, German seller (UStG § 14a Abs. 3).
pub const MENTION_INTRA_EU_DE: &str = "Steuerfreie innergemeinschaftliche Lieferung (§ 4 Nr. 1b UStG)";
/// Intra-EU supply, any other EU seller.
pub const MENTION_INTRA_EU_OTHER: &str = "Exempt intra-Community supply, Directive 2006/112/EC, article 138";
/// Export to Switzerland, French seller.
pub const MENTION_EXPORT_FR: &str = "Exonération de TVA, article 262 I du CGI (exportation)";
/// Export to Switzerland, German seller.
pub const MENTION_EXPORT_DE: &str = "Steuerfreie Ausfuhrlieferung (§ 4 Nr. 1a UStG)";
/// Export to Switzerland, any other EU seller.
pub const MENTION_EXPORT_EU_OTHER: &str = "Exempt export, Directive 2006/112/EC, article 146";
/// Export from Switzerland to the EU.
pub const MENTION_EXPORT_CH: &str = "Steuerbefreite Ausfuhr (Art. 23 Abs. 2 Ziff. 1 MWSTG)";
/// Cross-border service to a business, French supplier.
pub const MENTION_SERVICE_REVERSE_CHARGE_FR: &str = "Autoliquidation (article 283-2 et article 259-1 du CGI)";
/// Cross-border service to a business, German supplier.
pub const MENTION_SERVICE_REVERSE_CHARGE_DE: &str =
    "Steuerschuldnerschaft des Leistungsempfängers (§ 3a Abs. 2, § 13b UStG)";
/// Cross-border service to a business, Swiss supplier.
pub const MENTION_SERVICE_REVERSE_CHARGE_CH: &str =
    "Ort der Leistung beim Empfänger (Art. 8 Abs. 1 MWSTG): nicht der schweizerischen MWST unterstellt";
/// Cross-border service to a business, any other supplier.
pub const MENTION_SERVICE_REVERSE_CHARGE_OTHER: &str =
    "Reverse charge: VAT due by the customer, Directive 2006/112/EC, articles 44 and 196";

/// Every mention a regime may carry: a stored regime names one of them.
pub const MENTIONS: [&str; 13] = [
    MENTION_REVERSE_CHARGE_FR,
    MENTION_REVERSE_CHARGE_DE,
    MENTION_INTRA_EU_FR,
    MENTION_INTRA_EU_DE,
    MENTION_INTRA_EU_OTHER,
    MENTION_EXPORT_FR,
    MENTION_EXPORT_DE,
    MENTION_EXPORT_EU_OTHER,
    MENTION_EXPORT_CH,
    MENTION_SERVICE_REVERSE_CHARGE_FR,
    MENTION_SERVICE_REVERSE_CHARGE_DE,
    MENTION_SERVICE_REVERSE_CHARGE_CH,
    MENTION_SERVICE_REVERSE_CHARGE_OTHER,
];

/// How a supply is taxed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(into = "SavedRegime")]
pub enum Regime {
    /// The supplier charges the standard rate of `country`.
    DomesticStandard { country: Country, rate_bp: u32 },
    /// A domestic supply of waste: the buyer accounts for the VAT; the invoice has none.
    DomesticReverseCharge { country: Country, mention: &'static str },
    /// Goods between two EU countries to a buyer with a VAT number: exempt.
    IntraEuExempt { mention: &'static str },
    /// Goods leaving for or coming from Switzerland: exempt, import VAT at customs.
    Export { mention: &'static str },
    /// A service across a border to a business: taxed where the customer is, by the customer.
    ServiceReverseCharge { mention: &'static str },
}

/// A [`Regime`] as a snapshot holds it: its mention as text, one of [`MENTIONS`] when read.
#[derive(serde::Serialize, serde::Deserialize)]
enum SavedRegime {
    DomesticStandard { country: Country, rate_bp: u32 },
    DomesticReverseCharge { country: Country, mention: String },
    IntraEuExempt { mention: String },
    Export { mention: String },
    ServiceReverseCharge { mention: String },
}

impl From<Regime> for SavedRegime {
    fn from(regime: Regime) -> SavedRegime {
        match regime {
            Regime::DomesticStandard { country, rate_bp } => {
                SavedRegime::DomesticStandard { country, rate_bp }
            }
            Regime::DomesticReverseCharge { country, mention } => {
                SavedRegime::DomesticReverseCharge { country, mention: mention.to_owned() }
            }
            Regime::IntraEuExempt { mention } => SavedRegime::IntraEuExempt { mention: mention.to_owned() },
            Regime::Export { mention } => SavedRegime::Export { mention: mention.to_owned() },
            Regime::ServiceReverseCharge { mention } => {
                SavedRegime::ServiceReverseCharge { mention: mention.to_owned() }
            }
        }
    }
}

impl<'de> serde::Deserialize<'de> for Regime {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Regime, D::Error> {
        let saved = <SavedRegime as serde::Deserialize>::deserialize(deserializer)?;
        Regime::try_from(saved).map_err(serde::de::Error::custom)
    }
}

impl TryFrom<SavedRegime> for Regime {
    type Error = String;

    fn try_from(saved: SavedRegime) -> Result<Regime, String> {
        let known = |mention: String| {
            MENTIONS
                .into_iter()
                .find(|known| *known == mention)
                .ok_or_else(|| format!("unknown VAT mention {mention:?}"))
        };
        Ok(match saved {
            SavedRegime::DomesticStandard { country, rate_bp } => {
                Regime::DomesticStandard { country, rate_bp }
            }
            SavedRegime::DomesticReverseCharge { country, mention } => {
                Regime::DomesticReverseCharge { country, mention: known(mention)? }
            }
            SavedRegime::IntraEuExempt { mention } => Regime::IntraEuExempt { mention: known(mention)? },
            SavedRegime::Export { mention } => Regime::Export { mention: known(mention)? },
            SavedRegime::ServiceReverseCharge { mention } => {
                Regime::ServiceReverseCharge { mention: known(mention)? }
            }
        })
    }
}

impl Regime {
    /// The rate charged on the invoice, in basis points: 0 but for `DomesticStandard`.
    pub fn rate_bp(&self) -> u32 {
        match self {
            Regime::DomesticStandard { rate_bp, .. } => *rate_bp,
            _ => 0,
        }
    }

    /// The mention the invoice must carry, if any.
    pub fn mention(&self) -> Option<&'static str> {
        match self {
            Regime::DomesticStandard { .. } => None,
            Regime::DomesticReverseCharge { mention, .. }
            | Regime::IntraEuExempt { mention }
            | Regime::Export { mention }
            | Regime::ServiceReverseCharge { mention } => Some(mention),
        }
    }

    /// Whether the invoice must show both parties' VAT numbers.
    pub fn needs_vat_numbers(&self) -> bool {
        matches!(
            self,
            Regime::DomesticReverseCharge { .. }
                | Regime::IntraEuExempt { .. }
                | Regime::ServiceReverseCharge { .. }
        )
    }
}

/// The regime's name as stored and shown: `domestic_standard`, `domestic_reverse_charge`,
/// `intra_eu_exempt`, `export`, `service_reverse_charge`.
pub fn regime_kind(regime: &Regime) -> &'static str {
    match regime {
        Regime::DomesticStandard { .. } => "domestic_standard",
        Regime::DomesticReverseCharge { .. } => "domestic_reverse_charge",
        Regime::IntraEuExempt { .. } => "intra_eu_exempt",
        Regime::Export { .. } => "export",
        Regime::ServiceReverseCharge { .. } => "service_reverse_charge",
    }
}
