//! The API form of listings: terms to and from `ListingTerms` (every limit of the input checked
//! here, naming the field), and the `Listing` answer. The events' stored form is the listings
//! contract's.

use symbiose_domain::{GeoPoint, Money, Quantity, WasteCode};
use symbiose_proto::common::v1 as common;
use symbiose_proto::convert::{
    self, FieldError, material_family_from_wire, ms_from_timestamp, timestamp_from_ms,
};
use symbiose_proto::listings::v1 as pb;

use crate::codec::id;
use symbiose_listings_contract::vocabulary::{self, required};

use crate::listing::{
    Attachment, Closure, Delivery, ListingState, Quality, REQUEST_DISTANCE_KM_DEFAULT, Side, Terms,
};

/// Longest description, in bytes.
pub(crate) const DESCRIPTION_BYTES_MAX: usize = 2000;
/// Longest quality specification, in bytes.
const SPECIFICATION_BYTES_MAX: usize = 500;
/// Most attachments of a listing, and the longest URL.
pub(crate) const ATTACHMENTS_MAX: usize = 10;
const URL_BYTES_MAX: usize = 500;
/// Longest recurrence, in days.
const RECURRENCE_DAYS_MAX: u32 = 366;
/// Farthest a seller delivers, in km.
const SELLER_DELIVERY_KM_MAX: u32 = 1000;

/// The stored form of the listing events is the contract's.
pub(crate) use symbiose_listings_contract::encode_listing_event as encode;

fn quality(quality: Option<pb::Quality>) -> Result<Quality, FieldError> {
    let Some(kind) = quality.and_then(|quality| quality.kind) else { return Ok(Quality::Unspecified) };
    Ok(match kind {
        pb::quality::Kind::PalletGrade(value) => Quality::PalletGrade(required(
            vocabulary::pallet_grade_from_wire(value, "quality.pallet_grade"),
            "quality.pallet_grade",
        )?),
        pb::quality::Kind::Plastic(plastic) => Quality::Plastic {
            polymer: required(
                vocabulary::polymer_from_wire(plastic.polymer, "quality.plastic.polymer"),
                "quality.plastic.polymer",
            )?,
            form: required(
                vocabulary::plastic_form_from_wire(plastic.form, "quality.plastic.form"),
                "quality.plastic.form",
            )?,
        },
        pb::quality::Kind::Specification(specification) => {
            let text = specification.text.trim();
            if text.is_empty() || text.len() > SPECIFICATION_BYTES_MAX {
                return Err(FieldError::new(
                    "quality.specification.text",
                    format!("must be 1 to {SPECIFICATION_BYTES_MAX} bytes"),
                ));
            }
            let data_quality = vocabulary::data_quality_from_wire(
                specification.data_quality,
                "quality.specification.data_quality",
            )?;
            Quality::Specification { text: text.to_owned(), data_quality }
        }
    })
}

fn delivery(delivery: Option<pb::DeliveryTerms>) -> Result<Delivery, FieldError> {
    let delivery = delivery.ok_or_else(|| FieldError::required("delivery"))?;
    let km = || {
        if delivery.seller_delivery_km == 0 || delivery.seller_delivery_km > SELLER_DELIVERY_KM_MAX {
            Err(FieldError::new(
                "delivery.seller_delivery_km",
                format!("must be 1 to {SELLER_DELIVERY_KM_MAX}"),
            ))
        } else {
            Ok(delivery.seller_delivery_km)
        }
    };
    match pb::DeliveryMode::try_from(delivery.mode) {
        Ok(pb::DeliveryMode::BuyerCollects) => Ok(Delivery::BuyerCollects),
        Ok(pb::DeliveryMode::SellerDelivers) => Ok(Delivery::SellerDelivers { within_km: km()? }),
        Ok(pb::DeliveryMode::Either) => Ok(Delivery::Either { seller_within_km: km()? }),
        Ok(pb::DeliveryMode::Unspecified) => Err(FieldError::required("delivery.mode")),
        Err(_) => Err(FieldError::new("delivery.mode", format!("{} is not a delivery mode", delivery.mode))),
    }
}

fn attachment(attachment: &pb::Attachment) -> Result<Attachment, FieldError> {
    let kind = required(vocabulary::attachment_kind_from_wire(attachment.kind, "kind"), "kind")?;
    let url = attachment.url.trim();
    if !url.starts_with("https://") || url.len() > URL_BYTES_MAX || url.contains(char::is_whitespace) {
        return Err(FieldError::new("url", format!("must be an https URL of at most {URL_BYTES_MAX} bytes")));
    }
    let sha256 = attachment.sha256.trim().to_ascii_lowercase();
    if sha256.len() != 64 || !sha256.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return Err(FieldError::new("sha256", "must be 64 hexadecimal digits"));
    }
    Ok(Attachment { kind, url: url.to_owned(), sha256 })
}

fn timestamp(value: Option<&prost_types::Timestamp>, field: &str) -> Result<Option<i64>, FieldError> {
    value.map(|value| ms_from_timestamp(value, field)).transpose()
}

/// Terms from the wire; every error names its field inside `ListingTerms`.
pub(crate) fn terms_from_wire(terms: pb::ListingTerms) -> Result<Terms, FieldError> {
    let side = required(vocabulary::side_from_wire(terms.side, "side"), "side")?;
    let waste_code = match terms.waste_code.trim() {
        "" => None,
        code => Some(WasteCode::parse(code).map_err(|error| FieldError::new("waste_code", error))?),
    };
    let description = terms.description.trim();
    if description.len() > DESCRIPTION_BYTES_MAX {
        return Err(FieldError::new("description", format!("must be at most {DESCRIPTION_BYTES_MAX} bytes")));
    }
    let expires_at_ms = timestamp(terms.expires_at.as_ref(), "expires_at")?
        .ok_or_else(|| FieldError::required("expires_at"))?;
    if terms.attachments.len() > ATTACHMENTS_MAX {
        return Err(FieldError::new("attachments", format!("at most {ATTACHMENTS_MAX}")));
    }
    let attachments = terms
        .attachments
        .iter()
        .enumerate()
        .map(|(index, value)| {
            attachment(value).map_err(|error| error.under(&format!("attachments[{index}]")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if terms.recurrence.as_ref().is_some_and(|recurrence| recurrence.every_days > RECURRENCE_DAYS_MAX) {
        return Err(FieldError::new(
            "recurrence.every_days",
            format!("must be at most {RECURRENCE_DAYS_MAX}"),
        ));
    }
    let available_from_ms = timestamp(terms.available_from.as_ref(), "available_from")?.unwrap_or(0);
    // Without an end, the window ends at the expiry: an expiry before the start is then the
    // field at fault, not the end the caller never sent.
    let available_until_ms = match timestamp(terms.available_until.as_ref(), "available_until")? {
        Some(until_ms) => until_ms,
        None if expires_at_ms < available_from_ms => {
            return Err(FieldError::new(
                "expires_at",
                "must not be before available_from without available_until",
            ));
        }
        None => expires_at_ms,
    };
    let max_distance_km = match (side, terms.max_distance_km) {
        (Side::Request, 0) | (Side::Offer, _) => REQUEST_DISTANCE_KM_DEFAULT,
        (Side::Request, km) => km,
    };
    Ok(Terms {
        side,
        family: material_family_from_wire(terms.family, "family")?,
        waste_code,
        legal_status: required(
            vocabulary::legal_status_from_wire(terms.legal_status, "legal_status"),
            "legal_status",
        )?,
        description: description.to_owned(),
        quality: quality(terms.quality)?,
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
        available_from_ms,
        available_until_ms,
        price_per_unit: convert::required::<_, Money>(terms.price_per_unit, "price_per_unit")?,
        delivery: delivery(terms.delivery)?,
        max_distance_km,
        accepts_other_countries: terms.accepts_other_countries,
        attachments,
        expires_at_ms,
    })
}

pub(crate) fn terms_to_wire(terms: &Terms) -> pb::ListingTerms {
    pb::ListingTerms {
        side: vocabulary::side_to_wire(terms.side),
        family: common::MaterialFamily::from(terms.family).into(),
        waste_code: terms.waste_code.map(|code| code.as_str().to_owned()).unwrap_or_default(),
        legal_status: vocabulary::legal_status_to_wire(terms.legal_status),
        description: terms.description.clone(),
        quality: quality_to_wire(&terms.quality),
        quantity: Some(terms.quantity.into()),
        minimum_lot: terms.minimum_lot.map(Into::into),
        recurrence: (terms.recurrence_days > 0)
            .then_some(pb::Recurrence { every_days: terms.recurrence_days }),
        site_id: terms.site_id.to_string(),
        location: terms.location.map(Into::into),
        available_from: Some(timestamp_from_ms(terms.available_from_ms)),
        available_until: Some(timestamp_from_ms(terms.available_until_ms)),
        price_per_unit: Some(terms.price_per_unit.into()),
        delivery: Some(match terms.delivery {
            Delivery::BuyerCollects => {
                pb::DeliveryTerms { mode: pb::DeliveryMode::BuyerCollects.into(), seller_delivery_km: 0 }
            }
            Delivery::SellerDelivers { within_km } => pb::DeliveryTerms {
                mode: pb::DeliveryMode::SellerDelivers.into(),
                seller_delivery_km: within_km,
            },
            Delivery::Either { seller_within_km } => pb::DeliveryTerms {
                mode: pb::DeliveryMode::Either.into(),
                seller_delivery_km: seller_within_km,
            },
        }),
        max_distance_km: terms.max_distance_km,
        accepts_other_countries: terms.accepts_other_countries,
        attachments: terms
            .attachments
            .iter()
            .map(|attachment| pb::Attachment {
                kind: vocabulary::attachment_kind_to_wire(attachment.kind),
                url: attachment.url.clone(),
                sha256: attachment.sha256.clone(),
            })
            .collect(),
        expires_at: Some(timestamp_from_ms(terms.expires_at_ms)),
    }
}

fn quality_to_wire(quality: &Quality) -> Option<pb::Quality> {
    let kind = match quality {
        Quality::Unspecified => return None,
        Quality::PalletGrade(grade) => {
            pb::quality::Kind::PalletGrade(vocabulary::pallet_grade_to_wire(*grade))
        }
        Quality::Plastic { polymer, form } => pb::quality::Kind::Plastic(pb::PlasticQuality {
            polymer: vocabulary::polymer_to_wire(*polymer),
            form: vocabulary::plastic_form_to_wire(*form),
        }),
        Quality::Specification { text, data_quality } => {
            pb::quality::Kind::Specification(pb::Specification {
                text: text.clone(),
                data_quality: vocabulary::data_quality_to_wire(*data_quality),
            })
        }
    };
    Some(pb::Quality { kind: Some(kind) })
}

/// The answer for a listing in `state`.
pub(crate) fn listing_to_wire(state: &ListingState) -> Option<pb::Listing> {
    let listing = state.listing()?;
    let state = match state {
        ListingState::Absent => return None,
        ListingState::Draft(_) => pb::ListingState::Draft,
        ListingState::Published(_) => pb::ListingState::Published,
        ListingState::Closed(_, Closure::Fulfilled) => pb::ListingState::Fulfilled,
        ListingState::Closed(_, Closure::Withdrawn) => pb::ListingState::Withdrawn,
        ListingState::Closed(_, Closure::Expired) => pb::ListingState::Expired,
    };
    let quantity = |milli: i64| -> Option<common::Quantity> {
        crate::listing::quantity_of(listing, milli).ok().flatten().map(Into::into)
    };
    Some(pb::Listing {
        listing_id: listing.id.to_string(),
        owner_organization_id: listing.owner.to_string(),
        terms: Some(terms_to_wire(&listing.terms)),
        state: state.into(),
        hazardous: listing.terms.waste_code.is_some_and(|code| code.is_hazardous()),
        country: common::Country::from(listing.place.country).into(),
        point: Some(listing.place.point.into()),
        available: quantity(listing.available_milli()),
        open_reservations: listing
            .reservations
            .iter()
            .map(|(reservation_id, milli)| pb::Reservation {
                reservation_id: reservation_id.to_string(),
                quantity: quantity(*milli),
            })
            .collect(),
        delivered: quantity(listing.delivered_milli),
    })
}
