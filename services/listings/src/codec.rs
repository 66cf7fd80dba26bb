//! The wire form of the listings context: domain values and events to and from their
//! protobuf messages. Events are stored as `(type, payload)` where the type is the message's
//! full name (`symbiose.listings.v1.SiteAdded`) and the payload its encoding, so what is
//! stored is exactly what partners decode from NATS.

use std::collections::BTreeSet;

use prost::Message as _;
use symbiose_domain::input::echo;
use symbiose_domain::{Identifier, Role, WasteCode};
use symbiose_proto::common::v1 as common;
use symbiose_proto::convert::{
    self, FieldError, country_from_wire, identifier_kind_from_wire, ms_from_timestamp, role_from_wire,
    timestamp_from_ms,
};
use symbiose_proto::listings::v1 as pb;
use uuid::Uuid;

use crate::organization::{Address, Event, Permit, PermitKind, Site};

/// Longest free text of a name, a street, a permit number, in bytes.
pub(crate) const TEXT_BYTES_MAX: usize = 200;

pub(crate) const ORGANIZATION_REGISTERED: &str = "symbiose.listings.v1.OrganizationRegistered";
pub(crate) const SITE_ADDED: &str = "symbiose.listings.v1.SiteAdded";
pub(crate) const SITE_UPDATED: &str = "symbiose.listings.v1.SiteUpdated";
pub(crate) const ROLES_SET: &str = "symbiose.listings.v1.RolesSet";
pub(crate) const PERMIT_ADDED: &str = "symbiose.listings.v1.PermitAdded";
pub(crate) const CONTACTS_SET: &str = "symbiose.listings.v1.ContactsSet";
pub(crate) const CONTACTS_ERASED: &str = "symbiose.listings.v1.ContactsErased";
pub(crate) const LEGAL_IDENTIFIER_CLAIMED: &str = "symbiose.listings.v1.LegalIdentifierClaimed";
pub(crate) const TOKEN_ISSUED: &str = "symbiose.listings.v1.TokenIssued";
pub(crate) const TOKEN_REVOKED: &str = "symbiose.listings.v1.TokenRevoked";

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
        address: convert::required(address, "address")?,
        location: convert::required(location, "location")?,
    })
}

impl TryFrom<pb::Address> for Address {
    type Error = FieldError;

    fn try_from(address: pb::Address) -> Result<Address, FieldError> {
        Ok(Address {
            street: text(&address.street, "street")?,
            postal_code: text(&address.postal_code, "postal_code")?,
            city: text(&address.city, "city")?,
            country: country_from_wire(address.country, "country")?,
        })
    }
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
    let kind = match pb::PermitKind::try_from(permit.kind) {
        Ok(pb::PermitKind::Treatment) => PermitKind::Treatment,
        Ok(pb::PermitKind::Transport) => PermitKind::Transport,
        Ok(pb::PermitKind::Unspecified) => return Err(FieldError::required("kind")),
        Err(_) => return Err(FieldError::new("kind", format!("{} is not a permit kind", permit.kind))),
    };
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
        kind: match permit.kind {
            PermitKind::Treatment => pb::PermitKind::Treatment,
            PermitKind::Transport => pb::PermitKind::Transport,
        }
        .into(),
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

/// The type name and payload of an organization event, for `organization_id`.
pub(crate) fn encode(organization_id: Uuid, event: &Event) -> (&'static str, Vec<u8>) {
    let organization_id = organization_id.to_string();
    match event {
        Event::Registered { id, legal_name, country, identifier, roles, registered_at_ms } => (
            ORGANIZATION_REGISTERED,
            pb::OrganizationRegistered {
                organization_id: id.to_string(),
                legal_name: legal_name.clone(),
                country: common::Country::from(*country).into(),
                legal_identifier_kind: symbiose_proto::reference::v1::IdentifierKind::from(identifier.kind())
                    .into(),
                legal_identifier: identifier.normalized().to_owned(),
                roles: roles_to_wire(roles),
                registered_at: Some(timestamp_from_ms(*registered_at_ms)),
            }
            .encode_to_vec(),
        ),
        Event::SiteAdded(site) => {
            (SITE_ADDED, pb::SiteAdded { organization_id, site: Some(site_to_wire(site)) }.encode_to_vec())
        }
        Event::SiteUpdated(site) => (
            SITE_UPDATED,
            pb::SiteUpdated { organization_id, site: Some(site_to_wire(site)) }.encode_to_vec(),
        ),
        Event::RolesSet(roles) => {
            (ROLES_SET, pb::RolesSet { organization_id, roles: roles_to_wire(roles) }.encode_to_vec())
        }
        Event::PermitAdded(permit) => (
            PERMIT_ADDED,
            pb::PermitAdded { organization_id, permit: Some(permit_to_wire(permit)) }.encode_to_vec(),
        ),
        Event::ContactsSet { sealed } => (
            CONTACTS_SET,
            pb::ContactsSet { organization_id, sealed_contacts: sealed.clone() }.encode_to_vec(),
        ),
        Event::ContactsErased => (CONTACTS_ERASED, pb::ContactsErased { organization_id }.encode_to_vec()),
    }
}

/// The organization event of a stored type and payload; errors say what does not decode.
pub fn decode(event_type: &str, payload: &[u8]) -> Result<Event, String> {
    let invalid = |error: FieldError| format!("{event_type}: {error}");
    let decode_error = |error: prost::DecodeError| format!("{event_type}: {error}");
    Ok(match event_type {
        ORGANIZATION_REGISTERED => {
            let event = pb::OrganizationRegistered::decode(payload).map_err(decode_error)?;
            let kind = identifier_kind_from_wire(event.legal_identifier_kind, "legal_identifier_kind")
                .map_err(invalid)?
                .ok_or_else(|| format!("{event_type}: no identifier kind"))?;
            Event::Registered {
                id: id(&event.organization_id, "organization_id").map_err(invalid)?,
                legal_name: event.legal_name,
                country: country_from_wire(event.country, "country").map_err(invalid)?,
                identifier: Identifier::parse_as(&event.legal_identifier, kind)
                    .map_err(|error| error.to_string())?,
                roles: roles_from_wire(&event.roles, "roles").map_err(invalid)?,
                registered_at_ms: event
                    .registered_at
                    .map(|at| ms_from_timestamp(&at, "registered_at"))
                    .transpose()
                    .map_err(invalid)?
                    .unwrap_or_default(),
            }
        }
        SITE_ADDED | SITE_UPDATED => {
            let site = if event_type == SITE_ADDED {
                pb::SiteAdded::decode(payload).map_err(decode_error)?.site
            } else {
                pb::SiteUpdated::decode(payload).map_err(decode_error)?.site
            };
            let site = site.ok_or_else(|| format!("{event_type}: no site"))?;
            let site_id = id(&site.site_id, "site_id").map_err(invalid)?;
            let site = site_from_wire(site_id, &site.name, site.address, site.location).map_err(invalid)?;
            if event_type == SITE_ADDED { Event::SiteAdded(site) } else { Event::SiteUpdated(site) }
        }
        ROLES_SET => {
            let event = pb::RolesSet::decode(payload).map_err(decode_error)?;
            Event::RolesSet(roles_from_wire(&event.roles, "roles").map_err(invalid)?)
        }
        PERMIT_ADDED => {
            let permit = pb::PermitAdded::decode(payload).map_err(decode_error)?.permit;
            let permit = permit.ok_or_else(|| format!("{event_type}: no permit"))?;
            let permit_id = id(&permit.permit_id, "permit_id").map_err(invalid)?;
            Event::PermitAdded(permit_from_wire(permit_id, permit).map_err(invalid)?)
        }
        CONTACTS_SET => Event::ContactsSet {
            sealed: pb::ContactsSet::decode(payload).map_err(decode_error)?.sealed_contacts,
        },
        CONTACTS_ERASED => Event::ContactsErased,
        other => return Err(format!("{other} is not an organization event")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use symbiose_domain::{Country, GeoPoint};

    #[test]
    fn every_organization_event_survives_the_wire() {
        let site = Site {
            site_id: Uuid::now_v7(),
            name: "Port du Rhin".into(),
            address: Address {
                street: "1 rue du Havre".into(),
                postal_code: "67100".into(),
                city: "Strasbourg".into(),
                country: Country::Fr,
            },
            location: GeoPoint::new(48.5734, 7.7521).expect("point"),
        };
        let permit = Permit {
            permit_id: Uuid::now_v7(),
            kind: PermitKind::Treatment,
            number: "ICPE 2791".into(),
            issued_by: "Préfecture".into(),
            valid_until_ms: 1_900_000_000_000,
            accepted_waste_codes: vec![WasteCode::parse("150103").expect("code")],
            hazardous_accepted: true,
            dangerous_goods_allowed: false,
        };
        let organization_id = Uuid::now_v7();
        let events = [
            Event::Registered {
                id: organization_id,
                legal_name: "Palettes de l'Est".into(),
                country: Country::Fr,
                identifier: Identifier::parse("73282932000074").expect("SIRET"),
                roles: BTreeSet::from([Role::Producer, Role::Buyer]),
                registered_at_ms: 1_790_000_000_123,
            },
            Event::SiteAdded(site.clone()),
            Event::SiteUpdated(site),
            Event::RolesSet(BTreeSet::from([Role::Recycler])),
            Event::PermitAdded(permit),
            Event::ContactsSet { sealed: vec![1, 2, 3] },
            Event::ContactsErased,
        ];
        for event in events {
            let (event_type, payload) = encode(organization_id, &event);
            assert_eq!(decode(event_type, &payload), Ok(event));
        }
        assert!(decode("symbiose.listings.v1.Nothing", &[]).is_err());
    }
}
