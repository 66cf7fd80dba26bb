//! A shipment as its events record it, in the stream `shipment-<id>`: booked, picked up,
//! borders crossed, delivered, closed. Every stored event names its shipment and its deal.

use prost::Message as _;
use symbiose_contract::Stored;
use symbiose_domain::lot::Place;
use symbiose_domain::{Country, Money, PalletGrade, Quantity};
use symbiose_eventstore::RecordedEvent;
use symbiose_matching_contract::place_from_wire as place;
use symbiose_proto::convert::{FieldError, country_from_wire, id, required, timestamp_from_ms};
use symbiose_proto::logistics::v1 as pb;
use uuid::Uuid;

use crate::transport::{OfferedQuote, quote_from_stored, quote_to_stored};
use crate::wire::{bad, country_to_wire, field, grade_from_wire, grade_to_wire, ms};
use crate::{BORDER_CROSSED, SHIPMENT_BOOKED, SHIPMENT_CLOSED, SHIPMENT_DELIVERED, SHIPMENT_PICKED_UP};

/// What is booked: the deal's parties and lot, the carrier and its price.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Transport {
    pub deal_id: Uuid,
    pub seller: Uuid,
    pub buyer: Uuid,
    /// The carrier organization.
    pub carrier: Uuid,
    /// The quoted or submitted price.
    pub price: Money,
    pub pickup: Place,
    pub delivery: Place,
    /// The quantity expected, in the deal's unit.
    pub quantity: Quantity,
    /// Whether pickup and delivery are in different countries.
    pub cross_border: bool,
    /// Whether the lot is hazardous waste.
    pub hazardous: bool,
    pub prior_notification_number: Option<String>,
    pub pallet_exchange: bool,
}

/// EUR pallets exchanged at one stop, counted from the carrier's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PalletExchange {
    pub grade: PalletGrade,
    /// Pallets the carrier gives the party: empty ones to the seller at pickup, the loaded
    /// ones to the buyer at delivery.
    pub handed_over: i64,
    /// Pallets the carrier takes from the party: the loaded ones from the seller at pickup,
    /// empty ones from the buyer at delivery.
    pub taken_back: i64,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Pickup {
    /// Counted or weighed at pickup, in the unit of the quantity expected.
    pub quantity: Quantity,
    pub pallets: Option<PalletExchange>,
    pub at_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BorderCrossing {
    /// The country entered.
    pub country: Country,
    pub at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Delivery {
    /// What arrived, in the unit of the pickup.
    pub received: Quantity,
    /// Accepted by the buyer, in milli-units of the same unit; 0 when all is refused.
    pub accepted_milli: i64,
    /// Refused, in milli-units of the same unit.
    pub refused_milli: i64,
    /// Required when something is refused.
    pub refusal_reason: Option<String>,
    pub pallets: Option<PalletExchange>,
    pub at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Event {
    Booked { shipment_id: Uuid, transport: Transport, booked_by: Uuid, at_ms: i64 },
    PickedUp(Pickup),
    BorderCrossed(BorderCrossing),
    Delivered(Delivery),
    Closed { accepted_milli: i64, by: Uuid, at_ms: i64 },
}

/// A shipment event as stored: the shipment and deal it names, and the booking's quote.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StoredShipmentEvent {
    pub shipment_id: Uuid,
    pub deal_id: Uuid,
    pub event: Event,
    /// The quote booked, on a booking.
    pub quote: Option<OfferedQuote>,
}

impl StoredShipmentEvent {
    /// The deal whose lot was picked up, when this is a pickup.
    pub fn picked_up(&self) -> Option<Uuid> {
        matches!(self.event, Event::PickedUp(_)).then_some(self.deal_id)
    }

    /// What other contexts act on when a shipment closes: its deal and the quantity the buyer
    /// accepted, in thousandths of the deal's unit. `None` for any other event.
    pub fn closed(&self) -> Option<(Uuid, i64)> {
        match self.event {
            Event::Closed { accepted_milli, .. } => Some((self.deal_id, accepted_milli)),
            _ => None,
        }
    }
}

/// `event` of shipment `shipment_id` (of deal `deal_id`) in its stored form; a booking
/// carries `quote`, the quote booked.
pub fn encode(
    shipment_id: &str,
    deal_id: &str,
    event: &Event,
    quote: Option<&OfferedQuote>,
) -> (&'static str, Vec<u8>) {
    let (shipment_id, deal_id) = (shipment_id.to_owned(), deal_id.to_owned());
    match event {
        Event::Booked { transport, booked_by, at_ms, .. } => (
            SHIPMENT_BOOKED,
            pb::ShipmentBooked {
                shipment_id,
                transport: Some(transport_to_stored(transport, quote)),
                booked_by: booked_by.to_string(),
                at: Some(timestamp_from_ms(*at_ms)),
            }
            .encode_to_vec(),
        ),
        Event::PickedUp(pickup) => (
            SHIPMENT_PICKED_UP,
            pb::ShipmentPickedUp {
                shipment_id,
                deal_id,
                quantity: Some(pickup.quantity.into()),
                pallets: exchange_to_stored(pickup.pallets.as_ref()),
                at: Some(timestamp_from_ms(pickup.at_ms)),
            }
            .encode_to_vec(),
        ),
        Event::BorderCrossed(crossing) => (
            BORDER_CROSSED,
            pb::BorderCrossed {
                shipment_id,
                deal_id,
                country: country_to_wire(crossing.country),
                at: Some(timestamp_from_ms(crossing.at_ms)),
            }
            .encode_to_vec(),
        ),
        Event::Delivered(delivery) => (
            SHIPMENT_DELIVERED,
            pb::ShipmentDelivered {
                shipment_id,
                deal_id,
                received: Some(delivery.received.into()),
                accepted_milli: delivery.accepted_milli,
                refused_milli: delivery.refused_milli,
                refusal_reason: delivery.refusal_reason.clone().unwrap_or_default(),
                pallets: exchange_to_stored(delivery.pallets.as_ref()),
                at: Some(timestamp_from_ms(delivery.at_ms)),
            }
            .encode_to_vec(),
        ),
        Event::Closed { accepted_milli, by, at_ms } => (
            SHIPMENT_CLOSED,
            pb::ShipmentClosed {
                shipment_id,
                deal_id,
                accepted_milli: *accepted_milli,
                confirmed_by: by.to_string(),
                at: Some(timestamp_from_ms(*at_ms)),
            }
            .encode_to_vec(),
        ),
    }
}

/// A shipment event from its stored form.
pub fn decode(event_type: &str, payload: &[u8]) -> Result<StoredShipmentEvent, String> {
    let field = field(event_type);
    let ids = |shipment_id: &str, deal_id: &str| -> Result<(Uuid, Uuid), String> {
        Ok((id(shipment_id, "shipment_id").map_err(&field)?, id(deal_id, "deal_id").map_err(&field)?))
    };
    let plain =
        |(shipment_id, deal_id), event| Ok(StoredShipmentEvent { shipment_id, deal_id, event, quote: None });
    match event_type {
        SHIPMENT_BOOKED => {
            let booked = pb::ShipmentBooked::decode(payload).map_err(bad(event_type))?;
            let transport = booked.transport.ok_or_else(|| format!("{event_type}: transport is required"))?;
            let (transport, quote) =
                transport_from_stored(transport).map_err(|error| field(error.under("transport")))?;
            let shipment_id = id(&booked.shipment_id, "shipment_id").map_err(&field)?;
            Ok(StoredShipmentEvent {
                shipment_id,
                deal_id: transport.deal_id,
                event: Event::Booked {
                    shipment_id,
                    transport,
                    booked_by: id(&booked.booked_by, "booked_by").map_err(&field)?,
                    at_ms: ms(booked.at.as_ref(), "at").map_err(&field)?,
                },
                quote,
            })
        }
        SHIPMENT_PICKED_UP => {
            let picked = pb::ShipmentPickedUp::decode(payload).map_err(bad(event_type))?;
            plain(
                ids(&picked.shipment_id, &picked.deal_id)?,
                Event::PickedUp(Pickup {
                    quantity: required::<_, Quantity>(picked.quantity, "quantity").map_err(&field)?,
                    pallets: exchange_from_stored(picked.pallets, "pallets").map_err(&field)?,
                    at_ms: ms(picked.at.as_ref(), "at").map_err(&field)?,
                }),
            )
        }
        BORDER_CROSSED => {
            let crossed = pb::BorderCrossed::decode(payload).map_err(bad(event_type))?;
            plain(
                ids(&crossed.shipment_id, &crossed.deal_id)?,
                Event::BorderCrossed(BorderCrossing {
                    country: country_from_wire(crossed.country, "country").map_err(&field)?,
                    at_ms: ms(crossed.at.as_ref(), "at").map_err(&field)?,
                }),
            )
        }
        SHIPMENT_DELIVERED => {
            let delivered = pb::ShipmentDelivered::decode(payload).map_err(bad(event_type))?;
            plain(
                ids(&delivered.shipment_id, &delivered.deal_id)?,
                Event::Delivered(Delivery {
                    received: required(delivered.received, "received").map_err(&field)?,
                    accepted_milli: delivered.accepted_milli,
                    refused_milli: delivered.refused_milli,
                    refusal_reason: (!delivered.refusal_reason.is_empty())
                        .then_some(delivered.refusal_reason),
                    pallets: exchange_from_stored(delivered.pallets, "pallets").map_err(&field)?,
                    at_ms: ms(delivered.at.as_ref(), "at").map_err(&field)?,
                }),
            )
        }
        SHIPMENT_CLOSED => {
            let closed = pb::ShipmentClosed::decode(payload).map_err(bad(event_type))?;
            plain(
                ids(&closed.shipment_id, &closed.deal_id)?,
                Event::Closed {
                    accepted_milli: closed.accepted_milli,
                    by: id(&closed.confirmed_by, "confirmed_by").map_err(&field)?,
                    at_ms: ms(closed.at.as_ref(), "at").map_err(&field)?,
                },
            )
        }
        other => Err(format!("{other} is not a shipment event")),
    }
}

/// The event `recorded` holds, whatever shape it was written in (through [`crate::upcast`]).
pub fn decode_recorded(recorded: &RecordedEvent) -> Result<StoredShipmentEvent, String> {
    let stored = crate::upcast(Stored::of(recorded))?;
    decode(stored.event_type, &stored.payload)
}

fn exchange_to_stored(exchange: Option<&PalletExchange>) -> Option<pb::StoredPalletExchange> {
    exchange.map(|exchange| pb::StoredPalletExchange {
        grade: grade_to_wire(exchange.grade),
        handed_over: u32::try_from(exchange.handed_over).unwrap_or(u32::MAX),
        taken_back: u32::try_from(exchange.taken_back).unwrap_or(u32::MAX),
    })
}

/// The pallets exchanged at a stop: none when absent or all zero.
fn exchange_from_stored(
    exchange: Option<pb::StoredPalletExchange>,
    field: &str,
) -> Result<Option<PalletExchange>, FieldError> {
    match exchange {
        None => Ok(None),
        Some(exchange) if exchange.handed_over == 0 && exchange.taken_back == 0 => Ok(None),
        Some(exchange) => Ok(Some(PalletExchange {
            grade: grade_from_wire(exchange.grade, "grade").map_err(|error| error.under(field))?,
            handed_over: i64::from(exchange.handed_over),
            taken_back: i64::from(exchange.taken_back),
        })),
    }
}

fn transport_to_stored(transport: &Transport, quote: Option<&OfferedQuote>) -> pb::BookedTransport {
    pb::BookedTransport {
        deal_id: transport.deal_id.to_string(),
        seller_organization_id: transport.seller.to_string(),
        buyer_organization_id: transport.buyer.to_string(),
        carrier_organization_id: transport.carrier.to_string(),
        price: Some(transport.price.into()),
        pickup: Some(transport.pickup.point.into()),
        pickup_country: country_to_wire(transport.pickup.country),
        delivery: Some(transport.delivery.point.into()),
        delivery_country: country_to_wire(transport.delivery.country),
        quantity: Some(transport.quantity.into()),
        cross_border: transport.cross_border,
        hazardous: transport.hazardous,
        prior_notification_number: transport.prior_notification_number.clone().unwrap_or_default(),
        pallet_exchange: transport.pallet_exchange,
        quote: quote.map(quote_to_stored),
    }
}

fn transport_from_stored(
    transport: pb::BookedTransport,
) -> Result<(Transport, Option<OfferedQuote>), FieldError> {
    let quote = transport.quote.map(quote_from_stored).transpose().map_err(|error| error.under("quote"))?;
    Ok((
        Transport {
            deal_id: id(&transport.deal_id, "deal_id")?,
            seller: id(&transport.seller_organization_id, "seller_organization_id")?,
            buyer: id(&transport.buyer_organization_id, "buyer_organization_id")?,
            carrier: id(&transport.carrier_organization_id, "carrier_organization_id")?,
            price: required(transport.price, "price")?,
            pickup: place(transport.pickup, transport.pickup_country, "pickup", "pickup_country")?,
            delivery: place(transport.delivery, transport.delivery_country, "delivery", "delivery_country")?,
            quantity: required(transport.quantity, "quantity")?,
            cross_border: transport.cross_border,
            hazardous: transport.hazardous,
            prior_notification_number: (!transport.prior_notification_number.is_empty())
                .then_some(transport.prior_notification_number),
            pallet_exchange: transport.pallet_exchange,
        },
        quote,
    ))
}
