//! The API form of the directory: domain values to and from the messages of the gRPC API,
//! every error naming its field. The events' stored form is the listings contract's.

use std::collections::BTreeSet;

use symbiose_domain::input::echo;
use symbiose_domain::{Role, WasteCode};
use symbiose_proto::common::v1 as common;
use symbiose_proto::convert::{
    self, FieldError, country_from_wire, ms_from_timestamp, role_from_wire, timestamp_from_ms,
};
use symbiose_proto::listings::v1 as pb;
use uuid::Uuid;

use symbiose_listings_contract::vocabulary;

use crate::organization::{Address, Permit, Site};

/// Longest free text of a name, a street, a permit number, in bytes.
pub(crate) const TEXT_BYTES_MAX: usize = 200;

/// The stored form of the organization events is the contract's.
pub(crate) use symbiose_listings_contract::encode_organization_event as encode;
pub(crate) use symbiose_listings_contract::event_types::{
    LEGAL_IDENTIFIER_CLAIMED, TOKEN_ISSUED, TOKEN_REVOKED,
};

/// A non-empty text of at most [`TEXT_BYTES_MAX`] bytes, trimmed.
pub(crate) fn text(value: &str, field: &str) -> Result<String, FieldError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(FieldError::required(field));
    }
    if value.len() > TEXT_BYTES_MAX {
        return Err(FieldError::new(field, format!("must be at most {TEXT_BYTES_MAX} bytes")));
    }
    if value.chars().any(char::is_control) {
        return Err(FieldError::new(field, "must not contain control characters"));
    }
    Ok(value.to_owned())
}

/// An id the service issued; `field` names it.
pub(crate) fn id(value: &str, field: &str) -> Result<Uuid, FieldError> {
    if value.is_empty() {
        return Err(FieldError::required(field));
    }
    Uuid::parse_str(value).map_err(|_| FieldError::new(field, format!("{:?} is not an id", echo(value))))
}

pub(crate) fn roles_from_wire(values: &[i32], field: &str) -> Result<BTreeSet<Role>, FieldError> {
    values.iter().map(|value| role_from_wire(*value, field)).collect()
}

pub(crate) fn roles_to_wire(roles: &BTreeSet<Role>) -> Vec<i32> {
    roles.iter().map(|role| common::Role::from(*role).into()).collect()
}

/// A site from its parts on the wire, with the id the shell gave it.
pub(crate) fn site_from_wire(
    site_id: Uuid,
    name: &str,
    address: Option<pb::Address>,
    location: Option<common::GeoPoint>,
) -> Result<Site, FieldError> {
    Ok(Site {
        site_id,
        name: text(name, "name")?,
        address: address_from_wire(address.ok_or_else(|| FieldError::required("address"))?)
            .map_err(|error| error.under("address"))?,
        location: convert::required(location, "location")?,
    })
}

fn address_from_wire(address: pb::Address) -> Result<Address, FieldError> {
    Ok(Address {
        street: text(&address.street, "street")?,
        postal_code: text(&address.postal_code, "postal_code")?,
        city: text(&address.city, "city")?,
        country: country_from_wire(address.country, "country")?,
    })
}

pub(crate) fn site_to_wire(site: &Site) -> pb::Site {
    pb::Site {
        site_id: site.site_id.to_string(),
        name: site.name.clone(),
        address: Some(pb::Address {
            street: site.address.street.clone(),
            postal_code: site.address.postal_code.clone(),
            city: site.address.city.clone(),
            country: common::Country::from(site.address.country).into(),
        }),
        location: Some(site.location.into()),
    }
}

/// A permit from the wire, with the id the shell gave it.
pub(crate) fn permit_from_wire(permit_id: Uuid, permit: pb::Permit) -> Result<Permit, FieldError> {
    let kind = vocabulary::required(vocabulary::permit_kind_from_wire(permit.kind, "kind"), "kind")?;
    let valid_until = permit.valid_until.ok_or_else(|| FieldError::required("valid_until"))?;
    let codes_max = symbiose_domain::waste::list_of_waste().len();
    if permit.accepted_waste_codes.len() > codes_max {
        return Err(FieldError::new("accepted_waste_codes", format!("at most {codes_max} codes")));
    }
    let accepted_waste_codes = permit
        .accepted_waste_codes
        .iter()
        .map(|code| WasteCode::parse(code).map_err(|error| FieldError::new("accepted_waste_codes", error)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Permit {
        permit_id,
        kind,
        number: text(&permit.number, "number")?,
        issued_by: text(&permit.issued_by, "issued_by")?,
        valid_until_ms: ms_from_timestamp(&valid_until, "valid_until")?,
        accepted_waste_codes,
        hazardous_accepted: permit.hazardous_accepted,
        dangerous_goods_allowed: permit.dangerous_goods_allowed,
    })
}

pub(crate) fn permit_to_wire(permit: &Permit) -> pb::Permit {
    pb::Permit {
        permit_id: permit.permit_id.to_string(),
        kind: vocabulary::permit_kind_to_wire(permit.kind),
        number: permit.number.clone(),
        issued_by: permit.issued_by.clone(),
        valid_until: Some(timestamp_from_ms(permit.valid_until_ms)),
        accepted_waste_codes: permit
            .accepted_waste_codes
            .iter()
            .map(|code| code.as_str().to_owned())
            .collect(),
        hazardous_accepted: permit.hazardous_accepted,
        dangerous_goods_allowed: permit.dangerous_goods_allowed,
    }
}
