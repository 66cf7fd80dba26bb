//! The stored form of the listings context's events: each event is its protobuf message
//! (`symbiose.listings.v1.<type>`), holding only messages of its own (`Stored*`) and the shared
//! values of `symbiose.common.v1`. Decoding takes what was recorded as a fact: it checks what
//! must hold for the fold to be total (ids, enums, quantities in range) and none of the limits
//! of the API's input, which may change without making old events unreadable.

use std::collections::BTreeSet;

use prost::Message as _;
use symbiose_domain::{GeoPoint, Identifier, Money, Quantity, Role, Unit, WasteCode};
use symbiose_proto::common::v1 as common;
use symbiose_proto::convert::{
    self, FieldError, country_from_wire, identifier_kind_from_wire, material_family_from_wire,
    ms_from_timestamp, role_from_wire, timestamp_from_ms,
};
use symbiose_proto::listings::v1 as pb;
use uuid::Uuid;

use crate::listing::{
    self, Attachment, Delivery, LISTING_QUANTITY_MILLI_MAX, Place, Quality, REQUEST_DISTANCE_KM_DEFAULT,
    Side, Terms,
};
use crate::organization::{self, Address, Permit, Site};
use crate::vocabulary::{self as vocabulary, required};
use crate::{event_types as types, upcasters};

/// An id as stored; `field` names it.
fn id(value: &str, field: &str) -> Result<Uuid, FieldError> {
    Uuid::parse_str(value).map_err(|_| FieldError::new(field, format!("{value:?} is not an id")))
}

fn roles_from_wire(values: &[i32]) -> Result<BTreeSet<Role>, FieldError> {
    values.iter().map(|value| role_from_wire(*value, "roles")).collect()
}

fn roles_to_wire(roles: &BTreeSet<Role>) -> Vec<i32> {
    roles.iter().map(|role| common::Role::from(*role).into()).collect()
}

fn timestamp(value: Option<&prost_types::Timestamp>, field: &str) -> Result<Option<i64>, FieldError> {
    value.map(|value| ms_from_timestamp(value, field)).transpose()
}

fn site_to_stored(site: &Site) -> pb::StoredSite {
    pb::StoredSite {
        site_id: site.site_id.to_string(),
        name: site.name.clone(),
        address: Some(pb::StoredAddress {
            street: site.address.street.clone(),
            postal_code: site.address.postal_code.clone(),
            city: site.address.city.clone(),
            country: common::Country::from(site.address.country).into(),
        }),
        location: Some(site.location.into()),
    }
}

fn site_from_stored(site: pb::StoredSite) -> Result<Site, FieldError> {
    let address = site.address.ok_or_else(|| FieldError::required("address"))?;
    Ok(Site {
        site_id: id(&site.site_id, "site_id")?,
        name: site.name,
        address: Address {
            street: address.street,
            postal_code: address.postal_code,
            city: address.city,
            country: country_from_wire(address.country, "address.country")?,
        },
        location: convert::required(site.location, "location")?,
    })
}

fn permit_to_stored(permit: &Permit) -> pb::StoredPermit {
    pb::StoredPermit {
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

fn permit_from_stored(permit: pb::StoredPermit) -> Result<Permit, FieldError> {
    Ok(Permit {
        permit_id: id(&permit.permit_id, "permit_id")?,
        kind: required(vocabulary::permit_kind_from_wire(permit.kind, "kind"), "kind")?,
        number: permit.number,
        issued_by: permit.issued_by,
        valid_until_ms: timestamp(permit.valid_until.as_ref(), "valid_until")?
            .ok_or_else(|| FieldError::required("valid_until"))?,
        accepted_waste_codes: permit
            .accepted_waste_codes
            .iter()
            .map(|code| {
                WasteCode::parse(code).map_err(|error| FieldError::new("accepted_waste_codes", error))
            })
            .collect::<Result<Vec<_>, _>>()?,
        hazardous_accepted: permit.hazardous_accepted,
        dangerous_goods_allowed: permit.dangerous_goods_allowed,
    })
}

/// The type name and payload of an organization event, for `organization_id`.
pub fn encode_organization_event(
    organization_id: Uuid,
    event: &organization::Event,
) -> (&'static str, Vec<u8>) {
    use organization::Event;
    let organization_id = organization_id.to_string();
    match event {
        Event::Registered { id, legal_name, country, identifier, roles, registered_at_ms } => (
            types::ORGANIZATION_REGISTERED,
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
        Event::SiteAdded(site) => (
            types::SITE_ADDED,
            pb::SiteAdded { organization_id, site: Some(site_to_stored(site)) }.encode_to_vec(),
        ),
        Event::SiteUpdated(site) => (
            types::SITE_UPDATED,
            pb::SiteUpdated { organization_id, site: Some(site_to_stored(site)) }.encode_to_vec(),
        ),
        Event::RolesSet(roles) => {
            (types::ROLES_SET, pb::RolesSet { organization_id, roles: roles_to_wire(roles) }.encode_to_vec())
        }
        Event::PermitAdded(permit) => (
            types::PERMIT_ADDED,
            pb::PermitAdded { organization_id, permit: Some(permit_to_stored(permit)) }.encode_to_vec(),
        ),
        Event::ContactsSet { sealed } => (
            types::CONTACTS_SET,
            pb::ContactsSet { organization_id, sealed_contacts: sealed.clone() }.encode_to_vec(),
        ),
        Event::ContactsErased => {
            (types::CONTACTS_ERASED, pb::ContactsErased { organization_id }.encode_to_vec())
        }
    }
}

/// The organization event of a stored type and payload of the current shape; errors say
/// what does not decode.
pub fn decode_organization_event(event_type: &str, payload: &[u8]) -> Result<organization::Event, String> {
    use organization::Event;
    let invalid = |error: FieldError| format!("{event_type}: {error}");
    let malformed = |error: prost::DecodeError| format!("{event_type}: {error}");
    Ok(match event_type {
        types::ORGANIZATION_REGISTERED => {
            let event = pb::OrganizationRegistered::decode(payload).map_err(malformed)?;
            let kind = identifier_kind_from_wire(event.legal_identifier_kind, "legal_identifier_kind")
                .map_err(invalid)?
                .ok_or_else(|| format!("{event_type}: no identifier kind"))?;
            Event::Registered {
                id: id(&event.organization_id, "organization_id").map_err(invalid)?,
                legal_name: event.legal_name,
                country: country_from_wire(event.country, "country").map_err(invalid)?,
                identifier: Identifier::parse_as(&event.legal_identifier, kind)
                    .map_err(|error| format!("{event_type}: {error}"))?,
                roles: roles_from_wire(&event.roles).map_err(invalid)?,
                registered_at_ms: timestamp(event.registered_at.as_ref(), "registered_at")
                    .map_err(invalid)?
                    .unwrap_or_default(),
            }
        }
        types::SITE_ADDED | types::SITE_UPDATED => {
            let site = if event_type == types::SITE_ADDED {
                pb::SiteAdded::decode(payload).map_err(malformed)?.site
            } else {
                pb::SiteUpdated::decode(payload).map_err(malformed)?.site
            };
            let site =
                site_from_stored(site.ok_or_else(|| format!("{event_type}: no site"))?).map_err(invalid)?;
            if event_type == types::SITE_ADDED { Event::SiteAdded(site) } else { Event::SiteUpdated(site) }
        }
        types::ROLES_SET => {
            let event = pb::RolesSet::decode(payload).map_err(malformed)?;
            Event::RolesSet(roles_from_wire(&event.roles).map_err(invalid)?)
        }
        types::PERMIT_ADDED => {
            let permit = pb::PermitAdded::decode(payload).map_err(malformed)?.permit;
            let permit = permit.ok_or_else(|| format!("{event_type}: no permit"))?;
            Event::PermitAdded(permit_from_stored(permit).map_err(invalid)?)
        }
        types::CONTACTS_SET => Event::ContactsSet {
            sealed: pb::ContactsSet::decode(payload).map_err(malformed)?.sealed_contacts,
        },
        types::CONTACTS_ERASED => Event::ContactsErased,
        other => return Err(format!("{other} is not an organization event")),
    })
}

fn quality_to_stored(quality: &Quality) -> Option<pb::StoredQuality> {
    use pb::stored_quality::Kind;
    let kind = match quality {
        Quality::Unspecified => return None,
        Quality::PalletGrade(grade) => Kind::PalletGrade(vocabulary::pallet_grade_to_wire(*grade)),
        Quality::Plastic { polymer, form } => Kind::Plastic(pb::StoredPlasticQuality {
            polymer: vocabulary::polymer_to_wire(*polymer),
            form: vocabulary::plastic_form_to_wire(*form),
        }),
        Quality::Specification { text, data_quality } => Kind::Specification(pb::StoredSpecification {
            text: text.clone(),
            data_quality: vocabulary::data_quality_to_wire(*data_quality),
        }),
    };
    Some(pb::StoredQuality { kind: Some(kind) })
}

fn quality_from_stored(quality: Option<pb::StoredQuality>) -> Result<Quality, FieldError> {
    use pb::stored_quality::Kind;
    let Some(kind) = quality.and_then(|quality| quality.kind) else { return Ok(Quality::Unspecified) };
    Ok(match kind {
        Kind::PalletGrade(value) => Quality::PalletGrade(required(
            vocabulary::pallet_grade_from_wire(value, "quality.pallet_grade"),
            "quality.pallet_grade",
        )?),
        Kind::Plastic(plastic) => Quality::Plastic {
            polymer: required(
                vocabulary::polymer_from_wire(plastic.polymer, "quality.plastic.polymer"),
                "quality.plastic.polymer",
            )?,
            form: required(
                vocabulary::plastic_form_from_wire(plastic.form, "quality.plastic.form"),
                "quality.plastic.form",
            )?,
        },
        Kind::Specification(specification) => Quality::Specification {
            data_quality: vocabulary::data_quality_from_wire(
                specification.data_quality,
                "quality.specification.data_quality",
            )?,
            text: specification.text,
        },
    })
}

fn delivery_to_stored(delivery: Delivery) -> pb::StoredDeliveryTerms {
    let (mode, seller_delivery_km) = match delivery {
        Delivery::BuyerCollects => (pb::DeliveryMode::BuyerCollects, 0),
        Delivery::SellerDelivers { within_km } => (pb::DeliveryMode::SellerDelivers, within_km),
        Delivery::Either { seller_within_km } => (pb::DeliveryMode::Either, seller_within_km),
    };
    pb::StoredDeliveryTerms { mode: mode.into(), seller_delivery_km }
}

fn delivery_from_stored(delivery: Option<pb::StoredDeliveryTerms>) -> Result<Delivery, FieldError> {
    let delivery = delivery.ok_or_else(|| FieldError::required("delivery"))?;
    let km = delivery.seller_delivery_km;
    match pb::DeliveryMode::try_from(delivery.mode) {
        Ok(pb::DeliveryMode::BuyerCollects) => Ok(Delivery::BuyerCollects),
        Ok(pb::DeliveryMode::SellerDelivers) => Ok(Delivery::SellerDelivers { within_km: km }),
        Ok(pb::DeliveryMode::Either) => Ok(Delivery::Either { seller_within_km: km }),
        Ok(pb::DeliveryMode::Unspecified) => Err(FieldError::required("delivery.mode")),
        Err(_) => Err(FieldError::new("delivery.mode", format!("{} is not a delivery mode", delivery.mode))),
    }
}

fn terms_to_stored(terms: &Terms) -> pb::StoredListingTerms {
    pb::StoredListingTerms {
        side: vocabulary::side_to_wire(terms.side),
        family: common::MaterialFamily::from(terms.family).into(),
        waste_code: terms.waste_code.map(|code| code.as_str().to_owned()).unwrap_or_default(),
        legal_status: vocabulary::legal_status_to_wire(terms.legal_status),
        description: terms.description.clone(),
        quality: quality_to_stored(&terms.quality),
        quantity: Some(terms.quantity.into()),
        minimum_lot: terms.minimum_lot.map(Into::into),
        recurrence: (terms.recurrence_days > 0)
            .then_some(pb::StoredRecurrence { every_days: terms.recurrence_days }),
        site_id: terms.site_id.to_string(),
        location: terms.location.map(Into::into),
        available_from: Some(timestamp_from_ms(terms.available_from_ms)),
        available_until: Some(timestamp_from_ms(terms.available_until_ms)),
        price_per_unit: Some(terms.price_per_unit.into()),
        delivery: Some(delivery_to_stored(terms.delivery)),
        max_distance_km: terms.max_distance_km,
        accepts_other_countries: terms.accepts_other_countries,
        attachments: terms
            .attachments
            .iter()
            .map(|attachment| pb::StoredAttachment {
                kind: vocabulary::attachment_kind_to_wire(attachment.kind),
                url: attachment.url.clone(),
                sha256: attachment.sha256.clone(),
            })
            .collect(),
        expires_at: Some(timestamp_from_ms(terms.expires_at_ms)),
    }
}

fn terms_from_stored(terms: pb::StoredListingTerms) -> Result<Terms, FieldError> {
    let side = required(vocabulary::side_from_wire(terms.side, "side"), "side")?;
    let expires_at_ms = timestamp(terms.expires_at.as_ref(), "expires_at")?
        .ok_or_else(|| FieldError::required("expires_at"))?;
    Ok(Terms {
        side,
        family: material_family_from_wire(terms.family, "family")?,
        waste_code: match terms.waste_code.as_str() {
            "" => None,
            code => Some(WasteCode::parse(code).map_err(|error| FieldError::new("waste_code", error))?),
        },
        legal_status: required(
            vocabulary::legal_status_from_wire(terms.legal_status, "legal_status"),
            "legal_status",
        )?,
        description: terms.description,
        quality: quality_from_stored(terms.quality)?,
        quantity: convert::required::<_, Quantity>(terms.quantity, "quantity")?,
        minimum_lot: terms
            .minimum_lot
            .map(|lot| Quantity::try_from(lot).map_err(|error| error.under("minimum_lot")))
            .transpose()?,
        recurrence_days: terms.recurrence.map_or(0, |recurrence| recurrence.every_days),
        site_id: id(&terms.site_id, "site_id")?,
        location: terms
            .location
            .map(|location| GeoPoint::try_from(location).map_err(|error| error.under("location")))
            .transpose()?,
        available_from_ms: timestamp(terms.available_from.as_ref(), "available_from")?.unwrap_or(0),
        available_until_ms: timestamp(terms.available_until.as_ref(), "available_until")?
            .unwrap_or(expires_at_ms),
        price_per_unit: convert::required::<_, Money>(terms.price_per_unit, "price_per_unit")?,
        delivery: delivery_from_stored(terms.delivery)?,
        max_distance_km: match (side, terms.max_distance_km) {
            (Side::Request, 0) | (Side::Offer, _) => REQUEST_DISTANCE_KM_DEFAULT,
            (Side::Request, km) => km,
        },
        accepts_other_countries: terms.accepts_other_countries,
        attachments: terms
            .attachments
            .into_iter()
            .enumerate()
            .map(|(index, attachment)| {
                Ok(Attachment {
                    kind: required(vocabulary::attachment_kind_from_wire(attachment.kind, "kind"), "kind")
                        .map_err(|error| error.under(&format!("attachments[{index}]")))?,
                    url: attachment.url,
                    sha256: attachment.sha256,
                })
            })
            .collect::<Result<Vec<_>, FieldError>>()?,
        expires_at_ms,
    })
}

fn place_from_stored(country: i32, point: Option<common::GeoPoint>) -> Result<Place, FieldError> {
    Ok(Place { country: country_from_wire(country, "country")?, point: convert::required(point, "point")? })
}

/// The type name and payload of a listing event, for `listing_id` whose quantities are in
/// `unit`.
pub fn encode_listing_event(listing_id: Uuid, event: &listing::Event, unit: Unit) -> (&'static str, Vec<u8>) {
    use listing::Event;
    let quantity = |amount_milli: i64, basis: common::QuantityBasis| common::Quantity {
        amount_milli,
        unit: common::Unit::from(unit).into(),
        basis: basis.into(),
    };
    let listing_id = listing_id.to_string();
    let country = |place: &Place| -> i32 { common::Country::from(place.country).into() };
    match event {
        Event::Created { id, owner, terms, place } => (
            types::LISTING_CREATED,
            pb::ListingCreated {
                listing_id: id.to_string(),
                owner_organization_id: owner.to_string(),
                terms: Some(terms_to_stored(terms)),
                country: country(place),
                point: Some(place.point.into()),
            }
            .encode_to_vec(),
        ),
        Event::Amended { terms, place, changed } => (
            types::LISTING_AMENDED,
            pb::ListingAmended {
                listing_id,
                terms: Some(terms_to_stored(terms)),
                changed: changed.clone(),
                country: country(place),
                point: Some(place.point.into()),
            }
            .encode_to_vec(),
        ),
        Event::Published => (types::LISTING_PUBLISHED, pb::ListingPublished { listing_id }.encode_to_vec()),
        Event::Withdrawn => (types::LISTING_WITHDRAWN, pb::ListingWithdrawn { listing_id }.encode_to_vec()),
        Event::Expired => (types::LISTING_EXPIRED, pb::ListingExpired { listing_id }.encode_to_vec()),
        Event::Fulfilled => (types::LISTING_FULFILLED, pb::ListingFulfilled { listing_id }.encode_to_vec()),
        Event::QuantityReserved { reservation_id, quantity_milli } => (
            types::QUANTITY_RESERVED,
            pb::QuantityReserved {
                listing_id,
                reservation_id: reservation_id.to_string(),
                quantity: Some(quantity(*quantity_milli, common::QuantityBasis::Estimated)),
            }
            .encode_to_vec(),
        ),
        Event::ReservationReleased { reservation_id } => (
            types::RESERVATION_RELEASED,
            pb::ReservationReleased { listing_id, reservation_id: reservation_id.to_string() }
                .encode_to_vec(),
        ),
        Event::DeliveryConfirmed { reservation_id, delivered_milli } => (
            types::DELIVERY_CONFIRMED,
            pb::DeliveryConfirmed {
                listing_id,
                reservation_id: reservation_id.to_string(),
                delivered: Some(quantity(*delivered_milli, common::QuantityBasis::Actual)),
            }
            .encode_to_vec(),
        ),
    }
}

/// The listing event of a stored type and payload of the current shape.
pub fn decode_listing_event(event_type: &str, payload: &[u8]) -> Result<listing::Event, String> {
    use listing::Event;
    let invalid = |error: FieldError| format!("{event_type}: {error}");
    let malformed = |error: prost::DecodeError| format!("{event_type}: {error}");
    let terms = |terms: Option<pb::StoredListingTerms>| -> Result<Terms, String> {
        terms_from_stored(terms.ok_or_else(|| format!("{event_type}: no terms"))?).map_err(invalid)
    };
    // A stored quantity is within what a listing may hold, so folding never overflows.
    let milli = |quantity: Option<common::Quantity>, field: &str| -> Result<i64, String> {
        let amount = quantity.map_or(0, |quantity| quantity.amount_milli);
        if (0..=LISTING_QUANTITY_MILLI_MAX).contains(&amount) {
            Ok(amount)
        } else {
            Err(format!("{event_type}: {field}: {amount} milli-units is out of range"))
        }
    };
    Ok(match event_type {
        types::LISTING_CREATED => {
            let event = pb::ListingCreated::decode(payload).map_err(malformed)?;
            Event::Created {
                id: id(&event.listing_id, "listing_id").map_err(invalid)?,
                owner: id(&event.owner_organization_id, "owner_organization_id").map_err(invalid)?,
                place: place_from_stored(event.country, event.point).map_err(invalid)?,
                terms: terms(event.terms)?,
            }
        }
        types::LISTING_AMENDED => {
            let event = pb::ListingAmended::decode(payload).map_err(malformed)?;
            Event::Amended {
                place: place_from_stored(event.country, event.point).map_err(invalid)?,
                terms: terms(event.terms)?,
                changed: event.changed,
            }
        }
        types::LISTING_PUBLISHED => Event::Published,
        types::LISTING_WITHDRAWN => Event::Withdrawn,
        types::LISTING_EXPIRED => Event::Expired,
        types::LISTING_FULFILLED => Event::Fulfilled,
        types::QUANTITY_RESERVED => {
            let event = pb::QuantityReserved::decode(payload).map_err(malformed)?;
            Event::QuantityReserved {
                reservation_id: id(&event.reservation_id, "reservation_id").map_err(invalid)?,
                quantity_milli: milli(event.quantity, "quantity")?,
            }
        }
        types::RESERVATION_RELEASED => {
            let event = pb::ReservationReleased::decode(payload).map_err(malformed)?;
            Event::ReservationReleased {
                reservation_id: id(&event.reservation_id, "reservation_id").map_err(invalid)?,
            }
        }
        types::DELIVERY_CONFIRMED => {
            let event = pb::DeliveryConfirmed::decode(payload).map_err(malformed)?;
            Event::DeliveryConfirmed {
                reservation_id: id(&event.reservation_id, "reservation_id").map_err(invalid)?,
                delivered_milli: milli(event.delivered, "delivered")?,
            }
        }
        other => return Err(format!("{other} is not a listing event")),
    })
}

/// Brings `stored` to the current shape (see `symbiose_contract`), for the decoders above.
pub(crate) fn current<'a>(
    stored: symbiose_contract::Stored<'a>,
) -> Result<symbiose_contract::Stored<'a>, String> {
    symbiose_contract::upcast(upcasters::UPCASTERS, stored)
}

#[cfg(test)]
mod tests {
    use symbiose_domain::Country;

    use super::*;
    use crate::organization::PermitKind;

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
            organization::Event::Registered {
                id: organization_id,
                legal_name: "Palettes de l'Est".into(),
                country: Country::Fr,
                identifier: Identifier::parse("73282932000074").expect("SIRET"),
                roles: BTreeSet::from([Role::Producer, Role::Buyer]),
                registered_at_ms: 1_790_000_000_123,
            },
            organization::Event::SiteAdded(site.clone()),
            organization::Event::SiteUpdated(site),
            organization::Event::RolesSet(BTreeSet::from([Role::Recycler])),
            organization::Event::PermitAdded(permit),
            organization::Event::ContactsSet { sealed: vec![1, 2, 3] },
            organization::Event::ContactsErased,
        ];
        for event in events {
            let (event_type, payload) = encode_organization_event(organization_id, &event);
            assert_eq!(decode_organization_event(event_type, &payload), Ok(event));
        }
        assert!(decode_organization_event("symbiose.listings.v1.Nothing", &[]).is_err());
    }

    fn reserved(amount_milli: i64) -> Vec<u8> {
        pb::QuantityReserved {
            listing_id: Uuid::now_v7().to_string(),
            reservation_id: Uuid::now_v7().to_string(),
            quantity: Some(common::Quantity {
                amount_milli,
                unit: common::Unit::Pallet.into(),
                basis: common::QuantityBasis::Estimated.into(),
            }),
        }
        .encode_to_vec()
    }

    #[test]
    fn a_stored_quantity_out_of_range_does_not_decode() {
        assert!(matches!(
            decode_listing_event(types::QUANTITY_RESERVED, &reserved(4_000)),
            Ok(listing::Event::QuantityReserved { quantity_milli: 4_000, .. })
        ));
        for amount in [-1, LISTING_QUANTITY_MILLI_MAX + 1, i64::MAX] {
            let error =
                decode_listing_event(types::QUANTITY_RESERVED, &reserved(amount)).expect_err("out of range");
            assert!(error.contains("quantity"), "{error}");
        }
    }

    #[test]
    fn terms_stored_before_the_split_have_the_same_bytes_as_the_api_s() {
        // Until the contracts, `ListingCreated.terms` was the API's `ListingTerms`: the stored
        // copy keeps every field's number and type, so the old bytes read the same.
        let terms = Terms {
            side: Side::Request,
            family: symbiose_domain::MaterialFamily::Plastics,
            waste_code: Some(WasteCode::parse("191204").expect("code")),
            legal_status: crate::listing::LegalStatus::Waste,
            description: "PET flakes".into(),
            quality: Quality::Plastic {
                polymer: crate::listing::Polymer::Pet,
                form: crate::listing::PlasticForm::Flakes,
            },
            quantity: Quantity::new(12_500, Unit::Tonne, false).expect("quantity"),
            minimum_lot: Some(Quantity::new(1_000, Unit::Tonne, false).expect("quantity")),
            recurrence_days: 30,
            site_id: Uuid::now_v7(),
            location: Some(GeoPoint::new(48.58, 7.75).expect("point")),
            available_from_ms: 1_790_000_000_000,
            available_until_ms: 1_795_000_000_000,
            price_per_unit: Money::new(-1_200, symbiose_domain::Currency::Eur).expect("price"),
            delivery: Delivery::Either { seller_within_km: 80 },
            max_distance_km: 150,
            accepts_other_countries: true,
            attachments: vec![Attachment {
                kind: crate::listing::AttachmentKind::LabAnalysis,
                url: "https://lab.example/report.pdf".into(),
                sha256: "ab".repeat(32),
            }],
            expires_at_ms: 1_796_000_000_000,
        };
        let stored = terms_to_stored(&terms).encode_to_vec();
        let api = pb::ListingTerms::decode(stored.as_slice()).expect("the API's message reads it");
        assert_eq!(api.encode_to_vec(), stored, "the same bytes either way");
        assert!(api.quality.is_some() && api.delivery.is_some() && api.attachments.len() == 1);
        let place = Place { point: GeoPoint::new(48.58, 7.75).expect("point"), country: Country::Fr };
        let created = listing::Event::Created { id: Uuid::now_v7(), owner: Uuid::now_v7(), terms, place };
        let (event_type, payload) = encode_listing_event(Uuid::now_v7(), &created, Unit::Tonne);
        assert_eq!(decode_listing_event(event_type, &payload), Ok(created));
    }
}
