//! Conversions between the shared wire messages of `symbiose.common.v1` and the domain's
//! value types. Wire to domain is a `TryFrom` that names the bad field; domain to wire cannot
//! fail. The domain never sees a wire type: this module is the edge.

use symbiose_domain::input::echo;
use symbiose_domain::{
    Country, Currency, GeoPoint, IdentifierKind, MaterialFamily, Money, Quantity, Role, Unit, WasteCode,
};

use crate::common::v1 as pb;

/// Bad input in a wire message: the field's path and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl std::fmt::Display) -> FieldError {
        FieldError { field: field.into(), message: message.to_string() }
    }

    /// The same error seen from the message that holds this one in `parent`.
    pub fn under(self, parent: &str) -> FieldError {
        FieldError { field: format!("{parent}.{}", self.field), message: self.message }
    }

    pub fn required(field: impl Into<String>) -> FieldError {
        FieldError::new(field, "is required")
    }
}

/// An id, such as a listing's or a deal's: a uuid, surrounding spaces ignored; `field` names it.
pub fn id(value: &str, field: &str) -> Result<uuid::Uuid, FieldError> {
    if value.trim().is_empty() {
        return Err(FieldError::required(field));
    }
    uuid::Uuid::parse_str(value.trim())
        .map_err(|_| FieldError::new(field, format!("{:?} is not an id", echo(value.trim()))))
}

/// A required sub-message, converted; `field` names it.
pub fn required<W, D>(value: Option<W>, field: &str) -> Result<D, FieldError>
where
    D: TryFrom<W, Error = FieldError>,
{
    let value = value.ok_or_else(|| FieldError::required(field))?;
    D::try_from(value).map_err(|error| error.under(field))
}

impl TryFrom<pb::Money> for Money {
    type Error = FieldError;

    fn try_from(money: pb::Money) -> Result<Money, FieldError> {
        let currency: Currency =
            money.currency_code.parse().map_err(|error| FieldError::new("currency_code", error))?;
        Money::new(money.amount_minor, currency).map_err(|error| FieldError::new("amount_minor", error))
    }
}

impl From<Money> for pb::Money {
    fn from(money: Money) -> pb::Money {
        pb::Money { amount_minor: money.minor(), currency_code: money.currency().code().to_owned() }
    }
}

/// A unit from its wire value; `field` names it.
pub fn unit_from_wire(value: i32, field: &str) -> Result<Unit, FieldError> {
    match pb::Unit::try_from(value) {
        Ok(pb::Unit::Kilogram) => Ok(Unit::Kilogram),
        Ok(pb::Unit::Tonne) => Ok(Unit::Tonne),
        Ok(pb::Unit::Litre) => Ok(Unit::Litre),
        Ok(pb::Unit::CubicMetre) => Ok(Unit::CubicMetre),
        Ok(pb::Unit::Piece) => Ok(Unit::Piece),
        Ok(pb::Unit::Pallet) => Ok(Unit::Pallet),
        Ok(pb::Unit::Unspecified) => Err(FieldError::required(field)),
        Err(_) => Err(FieldError::new(field, format!("{value} is not a unit"))),
    }
}

impl From<Unit> for pb::Unit {
    fn from(unit: Unit) -> pb::Unit {
        match unit {
            Unit::Kilogram => pb::Unit::Kilogram,
            Unit::Tonne => pb::Unit::Tonne,
            Unit::Litre => pb::Unit::Litre,
            Unit::CubicMetre => pb::Unit::CubicMetre,
            Unit::Piece => pb::Unit::Piece,
            Unit::Pallet => pb::Unit::Pallet,
        }
    }
}

impl TryFrom<pb::Quantity> for Quantity {
    type Error = FieldError;

    fn try_from(quantity: pb::Quantity) -> Result<Quantity, FieldError> {
        let unit = unit_from_wire(quantity.unit, "unit")?;
        let actual = match pb::QuantityBasis::try_from(quantity.basis) {
            Ok(pb::QuantityBasis::Unspecified | pb::QuantityBasis::Estimated) => false,
            Ok(pb::QuantityBasis::Actual) => true,
            Err(_) => return Err(FieldError::new("basis", format!("{} is not a basis", quantity.basis))),
        };
        Quantity::new(quantity.amount_milli, unit, actual)
            .map_err(|error| FieldError::new("amount_milli", error))
    }
}

impl From<Quantity> for pb::Quantity {
    fn from(quantity: Quantity) -> pb::Quantity {
        let basis =
            if quantity.is_actual() { pb::QuantityBasis::Actual } else { pb::QuantityBasis::Estimated };
        pb::Quantity {
            amount_milli: quantity.amount_milli(),
            unit: pb::Unit::from(quantity.unit()).into(),
            basis: basis.into(),
        }
    }
}

impl TryFrom<pb::GeoPoint> for GeoPoint {
    type Error = FieldError;

    fn try_from(point: pb::GeoPoint) -> Result<GeoPoint, FieldError> {
        if !(-90.0..=90.0).contains(&point.latitude) {
            return Err(FieldError::new("latitude", format!("{} is not within -90 to 90", point.latitude)));
        }
        if !(-180.0..=180.0).contains(&point.longitude) {
            return Err(FieldError::new(
                "longitude",
                format!("{} is not within -180 to 180", point.longitude),
            ));
        }
        GeoPoint::new(point.latitude, point.longitude).map_err(|error| FieldError::new("latitude", error))
    }
}

impl From<GeoPoint> for pb::GeoPoint {
    fn from(point: GeoPoint) -> pb::GeoPoint {
        pb::GeoPoint { latitude: point.latitude(), longitude: point.longitude() }
    }
}

/// A country from its wire value; `field` names it.
pub fn country_from_wire(value: i32, field: &str) -> Result<Country, FieldError> {
    match pb::Country::try_from(value) {
        Ok(pb::Country::France) => Ok(Country::Fr),
        Ok(pb::Country::Germany) => Ok(Country::De),
        Ok(pb::Country::Switzerland) => Ok(Country::Ch),
        Ok(pb::Country::Belgium) => Ok(Country::Be),
        Ok(pb::Country::Luxembourg) => Ok(Country::Lu),
        Ok(pb::Country::Unspecified) => Err(FieldError::required(field)),
        Err(_) => Err(FieldError::new(field, format!("{value} is not a country the marketplace serves"))),
    }
}

impl From<Country> for pb::Country {
    fn from(country: Country) -> pb::Country {
        match country {
            Country::Fr => pb::Country::France,
            Country::De => pb::Country::Germany,
            Country::Ch => pb::Country::Switzerland,
            Country::Be => pb::Country::Belgium,
            Country::Lu => pb::Country::Luxembourg,
        }
    }
}

/// A material family from its wire value; `field` names it.
pub fn material_family_from_wire(value: i32, field: &str) -> Result<MaterialFamily, FieldError> {
    match pb::MaterialFamily::try_from(value) {
        Ok(pb::MaterialFamily::Pallets) => Ok(MaterialFamily::Pallets),
        Ok(pb::MaterialFamily::Packaging) => Ok(MaterialFamily::Packaging),
        Ok(pb::MaterialFamily::Plastics) => Ok(MaterialFamily::Plastics),
        Ok(pb::MaterialFamily::Metals) => Ok(MaterialFamily::Metals),
        Ok(pb::MaterialFamily::Solvents) => Ok(MaterialFamily::Solvents),
        Ok(pb::MaterialFamily::Wood) => Ok(MaterialFamily::Wood),
        Ok(pb::MaterialFamily::Compost) => Ok(MaterialFamily::Compost),
        Ok(pb::MaterialFamily::Aggregates) => Ok(MaterialFamily::Aggregates),
        Ok(pb::MaterialFamily::ProcessWater) => Ok(MaterialFamily::ProcessWater),
        Ok(pb::MaterialFamily::Unspecified) => Err(FieldError::required(field)),
        Err(_) => Err(FieldError::new(field, format!("{value} is not a material family"))),
    }
}

impl From<MaterialFamily> for pb::MaterialFamily {
    fn from(family: MaterialFamily) -> pb::MaterialFamily {
        match family {
            MaterialFamily::Pallets => pb::MaterialFamily::Pallets,
            MaterialFamily::Packaging => pb::MaterialFamily::Packaging,
            MaterialFamily::Plastics => pb::MaterialFamily::Plastics,
            MaterialFamily::Metals => pb::MaterialFamily::Metals,
            MaterialFamily::Solvents => pb::MaterialFamily::Solvents,
            MaterialFamily::Wood => pb::MaterialFamily::Wood,
            MaterialFamily::Compost => pb::MaterialFamily::Compost,
            MaterialFamily::Aggregates => pb::MaterialFamily::Aggregates,
            MaterialFamily::ProcessWater => pb::MaterialFamily::ProcessWater,
        }
    }
}

impl From<WasteCode> for pb::WasteCode {
    fn from(code: WasteCode) -> pb::WasteCode {
        pb::WasteCode { code: code.as_str().to_owned(), hazardous: code.is_hazardous() }
    }
}

/// A role from its wire value; `field` names it.
pub fn role_from_wire(value: i32, field: &str) -> Result<Role, FieldError> {
    match pb::Role::try_from(value) {
        Ok(pb::Role::Producer) => Ok(Role::Producer),
        Ok(pb::Role::Buyer) => Ok(Role::Buyer),
        Ok(pb::Role::Recycler) => Ok(Role::Recycler),
        Ok(pb::Role::Carrier) => Ok(Role::Carrier),
        Ok(pb::Role::Operator) => Ok(Role::Operator),
        Ok(pb::Role::Service) => Ok(Role::Service),
        Ok(pb::Role::Institution) => Ok(Role::Institution),
        Ok(pb::Role::Unspecified) => Err(FieldError::required(field)),
        Err(_) => Err(FieldError::new(field, format!("{value} is not a role"))),
    }
}

impl From<Role> for pb::Role {
    fn from(role: Role) -> pb::Role {
        match role {
            Role::Producer => pb::Role::Producer,
            Role::Buyer => pb::Role::Buyer,
            Role::Recycler => pb::Role::Recycler,
            Role::Carrier => pb::Role::Carrier,
            Role::Operator => pb::Role::Operator,
            Role::Service => pb::Role::Service,
            Role::Institution => pb::Role::Institution,
        }
    }
}

/// An identifier kind from its wire value, `None` for unspecified; `field` names it.
pub fn identifier_kind_from_wire(value: i32, field: &str) -> Result<Option<IdentifierKind>, FieldError> {
    use crate::reference::v1::IdentifierKind as Wire;
    Ok(Some(match Wire::try_from(value) {
        Ok(Wire::Siren) => IdentifierKind::Siren,
        Ok(Wire::Siret) => IdentifierKind::Siret,
        Ok(Wire::FrVat) => IdentifierKind::FrVat,
        Ok(Wire::DeVat) => IdentifierKind::DeVat,
        Ok(Wire::ChUid) => IdentifierKind::ChUid,
        Ok(Wire::BeEnterprise) => IdentifierKind::BeEnterprise,
        Ok(Wire::BeVat) => IdentifierKind::BeVat,
        Ok(Wire::LuVat) => IdentifierKind::LuVat,
        Ok(Wire::Unspecified) => return Ok(None),
        Err(_) => return Err(FieldError::new(field, format!("{value} is not an identifier kind"))),
    }))
}

impl From<IdentifierKind> for crate::reference::v1::IdentifierKind {
    fn from(kind: IdentifierKind) -> crate::reference::v1::IdentifierKind {
        use crate::reference::v1::IdentifierKind as Wire;
        match kind {
            IdentifierKind::Siren => Wire::Siren,
            IdentifierKind::Siret => Wire::Siret,
            IdentifierKind::FrVat => Wire::FrVat,
            IdentifierKind::DeVat => Wire::DeVat,
            IdentifierKind::ChUid => Wire::ChUid,
            IdentifierKind::BeEnterprise => Wire::BeEnterprise,
            IdentifierKind::BeVat => Wire::BeVat,
            IdentifierKind::LuVat => Wire::LuVat,
        }
    }
}

/// A timestamp from milliseconds since the Unix epoch.
pub fn timestamp_from_ms(ms: i64) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: ms.div_euclid(1000), nanos: (ms.rem_euclid(1000) * 1_000_000) as i32 }
}

/// Milliseconds since the Unix epoch of a timestamp; `field` names it.
pub fn ms_from_timestamp(timestamp: &prost_types::Timestamp, field: &str) -> Result<i64, FieldError> {
    if !(0..1_000_000_000).contains(&timestamp.nanos) {
        return Err(FieldError::new(field, "nanos must be within 0 to 999999999"));
    }
    timestamp
        .seconds
        .checked_mul(1000)
        .and_then(|ms| ms.checked_add(i64::from(timestamp.nanos / 1_000_000)))
        .ok_or_else(|| FieldError::new(field, "is out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unit_country_and_family_goes_and_comes_back() {
        for unit in Unit::ALL {
            assert_eq!(unit_from_wire(pb::Unit::from(unit).into(), "unit"), Ok(unit));
        }
        for country in Country::ALL {
            assert_eq!(country_from_wire(pb::Country::from(country).into(), "country"), Ok(country));
        }
        for role in Role::ALL {
            assert_eq!(role_from_wire(pb::Role::from(role).into(), "role"), Ok(role));
        }
        for family in MaterialFamily::ALL {
            assert_eq!(
                material_family_from_wire(pb::MaterialFamily::from(family).into(), "family"),
                Ok(family)
            );
        }
    }

    #[test]
    fn timestamps_keep_their_milliseconds() {
        for ms in [0, 1, 999, 1_790_000_000_123, -1] {
            assert_eq!(ms_from_timestamp(&timestamp_from_ms(ms), "at"), Ok(ms));
        }
    }

    #[test]
    fn unspecified_and_unknown_enum_values_name_the_field() {
        assert_eq!(unit_from_wire(0, "quantity.unit"), Err(FieldError::required("quantity.unit")));
        assert_eq!(country_from_wire(99, "site.country").expect_err("unknown").field, "site.country");
    }

    #[test]
    fn bad_values_inside_a_message_name_the_path() {
        let money = pb::Money { amount_minor: 100, currency_code: "USD".into() };
        let error = required::<_, Money>(Some(money), "price").expect_err("USD");
        assert_eq!(error.field, "price.currency_code");
        let point = pb::GeoPoint { latitude: 91.0, longitude: 7.0 };
        let error = required::<_, GeoPoint>(Some(point), "location").expect_err("latitude 91");
        assert_eq!(error.field, "location.latitude");
        let quantity = pb::Quantity { amount_milli: 0, unit: pb::Unit::Pallet.into(), basis: 0 };
        let error = required::<_, Quantity>(Some(quantity), "quantity").expect_err("zero");
        assert_eq!(error.field, "quantity.amount_milli");
        assert_eq!(required::<pb::Money, Money>(None, "price"), Err(FieldError::required("price")));
    }

    #[test]
    fn a_long_id_is_quoted_short() {
        let error = id(&"z".repeat(5_000), "listing_id").expect_err("not an id");
        assert_eq!(error.field, "listing_id");
        let quoted = format!("{}...", "z".repeat(symbiose_domain::input::INPUT_ECHO_CHARS_MAX));
        assert_eq!(error.message, format!("{quoted:?} is not an id"));
        assert!(error.message.len() < 100, "{}", error.message);
    }

    #[test]
    fn money_quantity_and_points_survive_the_round_trip() {
        let money = Money::new(-1250, Currency::Chf).expect("money");
        assert_eq!(Money::try_from(pb::Money::from(money)), Ok(money));
        let quantity = Quantity::new(40_000, Unit::Pallet, true).expect("quantity");
        assert_eq!(Quantity::try_from(pb::Quantity::from(quantity)), Ok(quantity));
        let point = GeoPoint::new(48.5734, 7.7521).expect("point");
        assert_eq!(GeoPoint::try_from(pb::GeoPoint::from(point)), Ok(point));
    }
}
