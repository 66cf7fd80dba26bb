//! The wire form of listings: terms to and from `ListingTerms`, events to and from the
//! messages of `events.proto`, and the `Listing` answer.

use prost::Message as _;
use symbiose_domain::{GeoPoint, Money, PalletGrade, Quantity, Unit, WasteCode};
use symbiose_proto::common::v1 as common;
use symbiose_proto::convert::{
    self, FieldError, country_from_wire, material_family_from_wire, ms_from_timestamp, timestamp_from_ms,
};
use symbiose_proto::listings::v1 as pb;
use uuid::Uuid;

use crate::codec::id;
use crate::listing::{
    Attachment, AttachmentKind, Closure, DataQuality, Delivery, Event, LegalStatus, ListingState, Place,
    PlasticForm, Polymer, Quality, REQUEST_DISTANCE_KM_DEFAULT, Side, Terms,
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

pub(crate) const LISTING_CREATED: &str = "symbiose.listings.v1.ListingCreated";
pub(crate) const LISTING_AMENDED: &str = "symbiose.listings.v1.ListingAmended";
pub(crate) const LISTING_PUBLISHED: &str = "symbiose.listings.v1.ListingPublished";
pub(crate) const LISTING_WITHDRAWN: &str = "symbiose.listings.v1.ListingWithdrawn";
pub(crate) const LISTING_EXPIRED: &str = "symbiose.listings.v1.ListingExpired";
pub(crate) const LISTING_FULFILLED: &str = "symbiose.listings.v1.ListingFulfilled";
pub(crate) const QUANTITY_RESERVED: &str = "symbiose.listings.v1.QuantityReserved";
pub(crate) const RESERVATION_RELEASED: &str = "symbiose.listings.v1.ReservationReleased";
pub(crate) const DELIVERY_CONFIRMED: &str = "symbiose.listings.v1.DeliveryConfirmed";

fn enum_error(field: &str, value: i32, what: &str) -> FieldError {
    FieldError::new(field, format!("{value} is not {what}"))
}

fn side(value: i32) -> Result<Side, FieldError> {
    match pb::ListingSide::try_from(value) {
        Ok(pb::ListingSide::Offer) => Ok(Side::Offer),
        Ok(pb::ListingSide::Request) => Ok(Side::Request),
        Ok(pb::ListingSide::Unspecified) => Err(FieldError::required("side")),
        Err(_) => Err(enum_error("side", value, "a side")),
    }
}

fn legal_status(value: i32) -> Result<LegalStatus, FieldError> {
    match pb::LegalStatus::try_from(value) {
        Ok(pb::LegalStatus::Waste) => Ok(LegalStatus::Waste),
        Ok(pb::LegalStatus::ByProduct) => Ok(LegalStatus::ByProduct),
        Ok(pb::LegalStatus::EndOfWaste) => Ok(LegalStatus::EndOfWaste),
        Ok(pb::LegalStatus::ProductForReuse) => Ok(LegalStatus::ProductForReuse),
        Ok(pb::LegalStatus::Unspecified) => Err(FieldError::required("legal_status")),
        Err(_) => Err(enum_error("legal_status", value, "a legal status")),
    }
}

fn quality(quality: Option<pb::Quality>) -> Result<Quality, FieldError> {
    let Some(kind) = quality.and_then(|quality| quality.kind) else { return Ok(Quality::Unspecified) };
    Ok(match kind {
        pb::quality::Kind::PalletGrade(value) => {
            Quality::PalletGrade(match pb::PalletGrade::try_from(value) {
                Ok(pb::PalletGrade::New) => PalletGrade::New,
                Ok(pb::PalletGrade::A) => PalletGrade::A,
                Ok(pb::PalletGrade::B) => PalletGrade::B,
                Ok(pb::PalletGrade::C) => PalletGrade::C,
                Ok(pb::PalletGrade::Unsorted) => PalletGrade::Unsorted,
                Ok(pb::PalletGrade::Unspecified) => return Err(FieldError::required("quality.pallet_grade")),
                Err(_) => return Err(enum_error("quality.pallet_grade", value, "a grade")),
            })
        }
        pb::quality::Kind::Plastic(plastic) => Quality::Plastic {
            polymer: match pb::Polymer::try_from(plastic.polymer) {
                Ok(pb::Polymer::Pet) => Polymer::Pet,
                Ok(pb::Polymer::Hdpe) => Polymer::Hdpe,
                Ok(pb::Polymer::Pp) => Polymer::Pp,
                Ok(pb::Polymer::Ldpe) => Polymer::Ldpe,
                Ok(pb::Polymer::Unspecified) => return Err(FieldError::required("quality.plastic.polymer")),
                Err(_) => return Err(enum_error("quality.plastic.polymer", plastic.polymer, "a polymer")),
            },
            form: match pb::PlasticForm::try_from(plastic.form) {
                Ok(pb::PlasticForm::Flakes) => PlasticForm::Flakes,
                Ok(pb::PlasticForm::Pellets) => PlasticForm::Pellets,
                Ok(pb::PlasticForm::Unspecified) => return Err(FieldError::required("quality.plastic.form")),
                Err(_) => return Err(enum_error("quality.plastic.form", plastic.form, "a form")),
            },
        },
        pb::quality::Kind::Specification(specification) => {
            let text = specification.text.trim();
            if text.is_empty() || text.len() > SPECIFICATION_BYTES_MAX {
                return Err(FieldError::new(
                    "quality.specification.text",
                    format!("must be 1 to {SPECIFICATION_BYTES_MAX} bytes"),
                ));
            }
            let data_quality = match pb::DataQuality::try_from(specification.data_quality) {
                Ok(pb::DataQuality::Unspecified) => None,
                Ok(pb::DataQuality::Declared) => Some(DataQuality::Declared),
                Ok(pb::DataQuality::Analysed) => Some(DataQuality::Analysed),
                Ok(pb::DataQuality::Certified) => Some(DataQuality::Certified),
                Err(_) => {
                    return Err(enum_error(
                        "quality.specification.data_quality",
                        specification.data_quality,
                        "a data quality",
                    ));
                }
            };
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
        Err(_) => Err(enum_error("delivery.mode", delivery.mode, "a delivery mode")),
    }
}

fn attachment(attachment: &pb::Attachment) -> Result<Attachment, FieldError> {
    let kind = match pb::AttachmentKind::try_from(attachment.kind) {
        Ok(pb::AttachmentKind::Photo) => AttachmentKind::Photo,
        Ok(pb::AttachmentKind::LabAnalysis) => AttachmentKind::LabAnalysis,
        Ok(pb::AttachmentKind::Unspecified) => return Err(FieldError::required("kind")),
        Err(_) => return Err(enum_error("kind", attachment.kind, "an attachment kind")),
    };
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
    let side = side(terms.side)?;
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
        legal_status: legal_status(terms.legal_status)?,
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
        side: match terms.side {
            Side::Offer => pb::ListingSide::Offer,
            Side::Request => pb::ListingSide::Request,
        }
        .into(),
        family: common::MaterialFamily::from(terms.family).into(),
        waste_code: terms.waste_code.map(|code| code.as_str().to_owned()).unwrap_or_default(),
        legal_status: match terms.legal_status {
            LegalStatus::Waste => pb::LegalStatus::Waste,
            LegalStatus::ByProduct => pb::LegalStatus::ByProduct,
            LegalStatus::EndOfWaste => pb::LegalStatus::EndOfWaste,
            LegalStatus::ProductForReuse => pb::LegalStatus::ProductForReuse,
        }
        .into(),
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
                kind: match attachment.kind {
                    AttachmentKind::Photo => pb::AttachmentKind::Photo,
                    AttachmentKind::LabAnalysis => pb::AttachmentKind::LabAnalysis,
                }
                .into(),
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
        Quality::PalletGrade(grade) => pb::quality::Kind::PalletGrade(
            match grade {
                PalletGrade::New => pb::PalletGrade::New,
                PalletGrade::A => pb::PalletGrade::A,
                PalletGrade::B => pb::PalletGrade::B,
                PalletGrade::C => pb::PalletGrade::C,
                PalletGrade::Unsorted => pb::PalletGrade::Unsorted,
            }
            .into(),
        ),
        Quality::Plastic { polymer, form } => pb::quality::Kind::Plastic(pb::PlasticQuality {
            polymer: match polymer {
                Polymer::Pet => pb::Polymer::Pet,
                Polymer::Hdpe => pb::Polymer::Hdpe,
                Polymer::Pp => pb::Polymer::Pp,
                Polymer::Ldpe => pb::Polymer::Ldpe,
            }
            .into(),
            form: match form {
                PlasticForm::Flakes => pb::PlasticForm::Flakes,
                PlasticForm::Pellets => pb::PlasticForm::Pellets,
            }
            .into(),
        }),
        Quality::Specification { text, data_quality } => {
            pb::quality::Kind::Specification(pb::Specification {
                text: text.clone(),
                data_quality: match data_quality {
                    None => pb::DataQuality::Unspecified,
                    Some(DataQuality::Declared) => pb::DataQuality::Declared,
                    Some(DataQuality::Analysed) => pb::DataQuality::Analysed,
                    Some(DataQuality::Certified) => pb::DataQuality::Certified,
                }
                .into(),
            })
        }
    };
    Some(pb::Quality { kind: Some(kind) })
}

fn place_from_wire(country: i32, point: Option<common::GeoPoint>) -> Result<Place, FieldError> {
    Ok(Place { country: country_from_wire(country, "country")?, point: convert::required(point, "point")? })
}

/// The type name and payload of a listing event, for `listing_id` whose quantities are in
/// `unit`.
pub(crate) fn encode(listing_id: Uuid, event: &Event, unit: Unit) -> (&'static str, Vec<u8>) {
    let quantity = |amount_milli: i64, basis: common::QuantityBasis| common::Quantity {
        amount_milli,
        unit: common::Unit::from(unit).into(),
        basis: basis.into(),
    };
    let listing_id = listing_id.to_string();
    let country = |place: &Place| -> i32 { common::Country::from(place.country).into() };
    match event {
        Event::Created { id, owner, terms, place } => (
            LISTING_CREATED,
            pb::ListingCreated {
                listing_id: id.to_string(),
                owner_organization_id: owner.to_string(),
                terms: Some(terms_to_wire(terms)),
                country: country(place),
                point: Some(place.point.into()),
            }
            .encode_to_vec(),
        ),
        Event::Amended { terms, place, changed } => (
            LISTING_AMENDED,
            pb::ListingAmended {
                listing_id,
                terms: Some(terms_to_wire(terms)),
                changed: changed.clone(),
                country: country(place),
                point: Some(place.point.into()),
            }
            .encode_to_vec(),
        ),
        Event::Published => (LISTING_PUBLISHED, pb::ListingPublished { listing_id }.encode_to_vec()),
        Event::Withdrawn => (LISTING_WITHDRAWN, pb::ListingWithdrawn { listing_id }.encode_to_vec()),
        Event::Expired => (LISTING_EXPIRED, pb::ListingExpired { listing_id }.encode_to_vec()),
        Event::Fulfilled => (LISTING_FULFILLED, pb::ListingFulfilled { listing_id }.encode_to_vec()),
        Event::QuantityReserved { reservation_id, quantity_milli } => (
            QUANTITY_RESERVED,
            pb::QuantityReserved {
                listing_id,
                reservation_id: reservation_id.to_string(),
                quantity: Some(quantity(*quantity_milli, common::QuantityBasis::Estimated)),
            }
            .encode_to_vec(),
        ),
        Event::ReservationReleased { reservation_id } => (
            RESERVATION_RELEASED,
            pb::ReservationReleased { listing_id, reservation_id: reservation_id.to_string() }
                .encode_to_vec(),
        ),
        Event::DeliveryConfirmed { reservation_id, delivered_milli } => (
            DELIVERY_CONFIRMED,
            pb::DeliveryConfirmed {
                listing_id,
                reservation_id: reservation_id.to_string(),
                delivered: Some(quantity(*delivered_milli, common::QuantityBasis::Actual)),
            }
            .encode_to_vec(),
        ),
    }
}

/// The listing event of a stored type and payload.
pub fn decode(event_type: &str, payload: &[u8]) -> Result<Event, String> {
    let invalid = |error: FieldError| format!("{event_type}: {error}");
    let malformed = |error: prost::DecodeError| format!("{event_type}: {error}");
    let terms = |terms: Option<pb::ListingTerms>| -> Result<Terms, String> {
        terms_from_wire(terms.ok_or_else(|| format!("{event_type}: no terms"))?).map_err(invalid)
    };
    // A stored quantity is within what a listing may hold, so folding never overflows.
    let milli = |quantity: Option<common::Quantity>, field: &str| -> Result<i64, String> {
        let amount = quantity.map_or(0, |quantity| quantity.amount_milli);
        if (0..=crate::listing::LISTING_QUANTITY_MILLI_MAX).contains(&amount) {
            Ok(amount)
        } else {
            Err(format!("{event_type}: {field}: {amount} milli-units is out of range"))
        }
    };
    Ok(match event_type {
        LISTING_CREATED => {
            let event = pb::ListingCreated::decode(payload).map_err(malformed)?;
            Event::Created {
                id: id(&event.listing_id, "listing_id").map_err(invalid)?,
                owner: id(&event.owner_organization_id, "owner_organization_id").map_err(invalid)?,
                place: place_from_wire(event.country, event.point).map_err(invalid)?,
                terms: terms(event.terms)?,
            }
        }
        LISTING_AMENDED => {
            let event = pb::ListingAmended::decode(payload).map_err(malformed)?;
            Event::Amended {
                place: place_from_wire(event.country, event.point).map_err(invalid)?,
                terms: terms(event.terms)?,
                changed: event.changed,
            }
        }
        LISTING_PUBLISHED => Event::Published,
        LISTING_WITHDRAWN => Event::Withdrawn,
        LISTING_EXPIRED => Event::Expired,
        LISTING_FULFILLED => Event::Fulfilled,
        QUANTITY_RESERVED => {
            let event = pb::QuantityReserved::decode(payload).map_err(malformed)?;
            Event::QuantityReserved {
                reservation_id: id(&event.reservation_id, "reservation_id").map_err(invalid)?,
                quantity_milli: milli(event.quantity, "quantity")?,
            }
        }
        RESERVATION_RELEASED => {
            let event = pb::ReservationReleased::decode(payload).map_err(malformed)?;
            Event::ReservationReleased {
                reservation_id: id(&event.reservation_id, "reservation_id").map_err(invalid)?,
            }
        }
        DELIVERY_CONFIRMED => {
            let event = pb::DeliveryConfirmed::decode(payload).map_err(malformed)?;
            Event::DeliveryConfirmed {
                reservation_id: id(&event.reservation_id, "reservation_id").map_err(invalid)?,
                delivered_milli: milli(event.delivered, "delivered")?,
            }
        }
        other => return Err(format!("{other} is not a listing event")),
    })
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

#[cfg(test)]
mod tests {
    use prost::Message as _;

    use super::*;

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
            decode(QUANTITY_RESERVED, &reserved(4_000)),
            Ok(Event::QuantityReserved { quantity_milli: 4_000, .. })
        ));
        for amount in [-1, crate::listing::LISTING_QUANTITY_MILLI_MAX + 1, i64::MAX] {
            let error = decode(QUANTITY_RESERVED, &reserved(amount)).expect_err("out of range");
            assert!(error.contains("quantity"), "{error}");
        }
    }
}
