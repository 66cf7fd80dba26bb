//! The Shipment aggregate: the transport of one deal's lot, from booking to closure.
//!
//! ```text
//! Absent --Book--> Booked --ReportPickup--> PickedUp --ReportDelivery--> Delivered
//!                                  (ReportBorderCrossing)*           --ConfirmAcceptance--> Closed
//! ```
//!
//! The rules it keeps:
//!
//! - the seller or the buyer books, for a positive price, with the countries of the places
//!   deciding whether it crosses a border; a cross-border shipment of hazardous waste is booked
//!   only with the number of its prior notification (Reg. (EU) 2024/1157), at most
//!   `PRIOR_NOTIFICATION_NUMBER_BYTES_MAX` bytes; pallets are exchanged only with a carrier
//!   that takes part in pallet exchange;
//! - only the assigned carrier reports the pickup, the border crossings and the delivery
//!   (`NotTheCarrier`), and only the buyer, who receives the lot, confirms acceptance
//!   (`NotTheBuyer`);
//! - the pickup is counted or weighed in the unit of the deal, at most
//!   `PICKUP_OVER_EXPECTED_PERCENT_MAX` % above what was expected (actuals differ from
//!   estimates; a larger lot is another deal);
//! - a border crossing is reported only on a cross-border shipment in transit, into another
//!   country than the last one, at most `BORDER_CROSSINGS_MAX` times;
//! - at delivery, received = accepted + refused, never more than was picked up; a refusal
//!   gives its reason; the buyer then confirms the accepted quantity, which closes it;
//! - pallets exchanged (`PalletExchange`, counted from the carrier's side: `handed_over` it
//!   gives, `taken_back` it takes) only when the booking says so, each count 0 to
//!   `PALLETS_EXCHANGED_MAX`;
//! - reports are in order (not before the previous step, not after `now` beyond
//!   `REPORT_CLOCK_SKEW_MS_MAX`);
//! - a report that repeats one already applied (the same pickup twice, a retried delivery)
//!   gives no event; any other command in the wrong state is an illegal transition.
//!
//! Pure: `decide` and `evolve`; the shell passes `now_ms` and the ids.

use symbiose_domain::Country;
use uuid::Uuid;

use crate::RejectionKind;

/// Longest prior notification number, in bytes (the notification document's number is
/// country code, year and a serial; the margin takes national formats).
pub const PRIOR_NOTIFICATION_NUMBER_BYTES_MAX: usize = 64;
/// Most pallets handed over or taken back at one stop: 66 places of stacks of 15.
pub const PALLETS_EXCHANGED_MAX: i64 = 1000;
/// Most border crossings of one shipment.
pub const BORDER_CROSSINGS_MAX: usize = 10;
/// Longest reason for a refusal, in bytes.
pub const REFUSAL_REASON_BYTES_MAX: usize = 500;
/// How far after `now` a report may be dated, in ms: the carrier's clock is not ours.
pub const REPORT_CLOCK_SKEW_MS_MAX: i64 = 5 * 60_000;
/// How much more than expected may be picked up, in percent.
pub const PICKUP_OVER_EXPECTED_PERCENT_MAX: i64 = 10;

// What is booked and reported, and the events, are the contract's: what the log records.
pub use symbiose_logistics_contract::shipment::{
    BorderCrossing, Delivery, Event, PalletExchange, Pickup, Transport,
};

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Shipment {
    pub id: Uuid,
    pub transport: Transport,
    pub booked_by: Uuid,
    pub booked_at_ms: i64,
    pub pickup: Option<Pickup>,
    pub crossings: Vec<BorderCrossing>,
    pub delivery: Option<Delivery>,
    pub closed_at_ms: Option<i64>,
}

impl Shipment {
    /// The country the lot is in after the last report: the pickup's, or the last entered.
    pub fn current_country(&self) -> Country {
        self.crossings.last().map_or(self.transport.pickup.country, |crossing| crossing.country)
    }

    /// When the last step happened.
    fn last_step_at_ms(&self) -> i64 {
        let reported = [
            self.pickup.as_ref().map(|pickup| pickup.at_ms),
            self.crossings.last().map(|crossing| crossing.at_ms),
            self.delivery.as_ref().map(|delivery| delivery.at_ms),
        ];
        reported.into_iter().flatten().max().unwrap_or(self.booked_at_ms - REPORT_CLOCK_SKEW_MS_MAX)
    }
}

#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub enum ShipmentState {
    #[default]
    Absent,
    Booked(Box<Shipment>),
    /// Picked up and on its way, borders crossed or not.
    PickedUp(Box<Shipment>),
    Delivered(Box<Shipment>),
    Closed(Box<Shipment>),
}

impl ShipmentState {
    pub fn shipment(&self) -> Option<&Shipment> {
        match self {
            ShipmentState::Absent => None,
            ShipmentState::Booked(shipment)
            | ShipmentState::PickedUp(shipment)
            | ShipmentState::Delivered(shipment)
            | ShipmentState::Closed(shipment) => Some(shipment),
        }
    }

    /// The state's name, for rejections and views.
    pub fn name(&self) -> &'static str {
        match self {
            ShipmentState::Absent => "absent",
            ShipmentState::Booked(_) => "booked",
            ShipmentState::PickedUp(_) => "picked up",
            ShipmentState::Delivered(_) => "delivered",
            ShipmentState::Closed(_) => "closed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Command {
    Book {
        shipment_id: Uuid,
        transport: Transport,
        booked_by: Uuid,
        /// From the carrier's profile, looked up by the shell.
        carrier_takes_pallet_exchange: bool,
    },
    ReportPickup {
        by: Uuid,
        pickup: Pickup,
    },
    ReportBorderCrossing {
        by: Uuid,
        crossing: BorderCrossing,
    },
    ReportDelivery {
        by: Uuid,
        delivery: Delivery,
    },
    ConfirmAcceptance {
        by: Uuid,
        accepted_milli: i64,
    },
}

impl Command {
    fn name(&self) -> &'static str {
        match self {
            Command::Book { .. } => "book",
            Command::ReportPickup { .. } => "report a pickup",
            Command::ReportBorderCrossing { .. } => "report a border crossing",
            Command::ReportDelivery { .. } => "report a delivery",
            Command::ConfirmAcceptance { .. } => "confirm acceptance",
        }
    }
}

/// What the shell passes in.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct Context {
    pub now_ms: i64,
}

/// Why a command is refused; `kind` says how it reaches the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("the shipment does not exist")]
    NotFound,
    #[error("the shipment is already booked with other terms")]
    AlreadyBooked,
    #[error("cannot {command} on a shipment {state}")]
    IllegalTransition { state: &'static str, command: &'static str },
    #[error("only the seller or the buyer books a shipment")]
    NotAParty,
    #[error("only the carrier of the shipment reports it")]
    NotTheCarrier,
    #[error("only the buyer confirms acceptance")]
    NotTheBuyer,
    #[error("the seller and the buyer are the same organization")]
    SellerIsBuyer,
    #[error("the price of a transport is positive")]
    PriceNotPositive,
    #[error("cross_border says {said}, the places' countries say otherwise")]
    CrossBorderMismatch { said: bool },
    #[error("a cross-border shipment of hazardous waste is booked with its prior notification number")]
    PriorNotificationRequired,
    #[error("a prior notification number is at most {PRIOR_NOTIFICATION_NUMBER_BYTES_MAX} bytes")]
    PriorNotificationTooLong,
    #[error("the carrier does not take part in pallet exchange")]
    PalletExchangeNotOffered,
    #[error("the booking has no pallet exchange")]
    PalletExchangeNotAgreed,
    #[error("pallets exchanged at one stop are 0 to {PALLETS_EXCHANGED_MAX}")]
    PalletCountOutOfRange,
    #[error("the quantity is counted in another unit than the deal's")]
    WrongUnit,
    #[error("{picked_up} milli-units picked up, at most {allowed} can be")]
    PickedUpAboveExpected { picked_up: i64, allowed: i64 },
    #[error("the shipment does not cross a border")]
    NotCrossBorder,
    #[error("the lot is already in {0}")]
    SameCountry(Country),
    #[error("at most {BORDER_CROSSINGS_MAX} border crossings")]
    TooManyBorderCrossings,
    #[error("{received} milli-units received, only {picked_up} picked up")]
    ReceivedAbovePickedUp { received: i64, picked_up: i64 },
    #[error("received is accepted plus refused, none negative")]
    ReceiptDoesNotAddUp,
    #[error("a refusal gives its reason, at most {REFUSAL_REASON_BYTES_MAX} bytes")]
    RefusalReason,
    #[error("{confirmed} milli-units confirmed, {delivered} were accepted at delivery")]
    AcceptedQuantityDiffers { confirmed: i64, delivered: i64 },
    #[error("a report is dated after now")]
    ReportInFuture,
    #[error("a report is dated before the previous step")]
    ReportBeforePreviousStep,
}

impl Rejection {
    pub fn kind(&self) -> RejectionKind {
        let field = match self {
            Rejection::NotFound => return RejectionKind::NotFound,
            Rejection::NotAParty | Rejection::NotTheCarrier | Rejection::NotTheBuyer => {
                return RejectionKind::PermissionDenied;
            }
            Rejection::AlreadyBooked
            | Rejection::IllegalTransition { .. }
            | Rejection::PriorNotificationRequired
            | Rejection::PalletExchangeNotOffered
            | Rejection::PalletExchangeNotAgreed
            | Rejection::NotCrossBorder
            | Rejection::TooManyBorderCrossings
            | Rejection::ReceivedAbovePickedUp { .. }
            | Rejection::PickedUpAboveExpected { .. }
            | Rejection::AcceptedQuantityDiffers { .. } => return RejectionKind::FailedPrecondition,
            Rejection::SellerIsBuyer => "buyer",
            Rejection::PriceNotPositive => "price",
            Rejection::CrossBorderMismatch { .. } => "cross_border",
            Rejection::PriorNotificationTooLong => "prior_notification_number",
            Rejection::PalletCountOutOfRange => "pallets",
            Rejection::WrongUnit => "quantity",
            Rejection::SameCountry(_) => "country",
            Rejection::ReceiptDoesNotAddUp => "accepted",
            Rejection::RefusalReason => "refusal_reason",
            Rejection::ReportInFuture | Rejection::ReportBeforePreviousStep => "at",
        };
        RejectionKind::InvalidArgument { field }
    }
}

pub fn decide(state: &ShipmentState, command: Command, context: &Context) -> Result<Vec<Event>, Rejection> {
    let Some(shipment) = state.shipment() else {
        return match command {
            Command::Book { .. } => book(command, context),
            _ => Err(Rejection::NotFound),
        };
    };
    let transport = &shipment.transport;
    let illegal = Rejection::IllegalTransition { state: state.name(), command: command.name() };
    match command {
        Command::Book { shipment_id, transport: booked, booked_by, .. } => {
            let same = shipment_id == shipment.id && booked == *transport && booked_by == shipment.booked_by;
            if same { Ok(Vec::new()) } else { Err(Rejection::AlreadyBooked) }
        }
        Command::ReportPickup { by, pickup } => {
            if by != transport.carrier {
                return Err(Rejection::NotTheCarrier);
            }
            // The same report again (a retry: its time differs) applies once.
            if shipment
                .pickup
                .as_ref()
                .is_some_and(|done| Pickup { at_ms: pickup.at_ms, ..done.clone() } == pickup)
            {
                return Ok(Vec::new());
            }
            let ShipmentState::Booked(_) = state else { return Err(illegal) };
            check_pickup(shipment, &pickup, context)?;
            Ok(vec![Event::PickedUp(pickup)])
        }
        Command::ReportBorderCrossing { by, crossing } => {
            if by != transport.carrier {
                return Err(Rejection::NotTheCarrier);
            }
            // The same crossing again (a retry: its time may differ) applies once.
            if shipment.crossings.last().is_some_and(|last| last.country == crossing.country) {
                return Ok(Vec::new());
            }
            let ShipmentState::PickedUp(_) = state else { return Err(illegal) };
            if !transport.cross_border {
                return Err(Rejection::NotCrossBorder);
            }
            if shipment.crossings.len() >= BORDER_CROSSINGS_MAX {
                return Err(Rejection::TooManyBorderCrossings);
            }
            if crossing.country == shipment.current_country() {
                return Err(Rejection::SameCountry(crossing.country));
            }
            check_time(shipment, crossing.at_ms, context)?;
            Ok(vec![Event::BorderCrossed(crossing)])
        }
        Command::ReportDelivery { by, delivery } => {
            if by != transport.carrier {
                return Err(Rejection::NotTheCarrier);
            }
            if shipment
                .delivery
                .as_ref()
                .is_some_and(|done| Delivery { at_ms: delivery.at_ms, ..done.clone() } == delivery)
            {
                return Ok(Vec::new());
            }
            let (ShipmentState::PickedUp(_), Some(pickup)) = (state, &shipment.pickup) else {
                return Err(illegal);
            };
            check_delivery(shipment, pickup, &delivery, context)?;
            Ok(vec![Event::Delivered(delivery)])
        }
        Command::ConfirmAcceptance { by, accepted_milli } => {
            if by != transport.buyer {
                return Err(Rejection::NotTheBuyer);
            }
            let Some(delivery) = &shipment.delivery else { return Err(illegal) };
            if accepted_milli != delivery.accepted_milli {
                return Err(Rejection::AcceptedQuantityDiffers {
                    confirmed: accepted_milli,
                    delivered: delivery.accepted_milli,
                });
            }
            match state {
                ShipmentState::Closed(_) => Ok(Vec::new()),
                _ => Ok(vec![Event::Closed { accepted_milli, by, at_ms: context.now_ms }]),
            }
        }
    }
}

fn book(command: Command, context: &Context) -> Result<Vec<Event>, Rejection> {
    let Command::Book { shipment_id, transport, booked_by, carrier_takes_pallet_exchange } = command else {
        unreachable!("only a booking is decided on an absent shipment")
    };
    if booked_by != transport.seller && booked_by != transport.buyer {
        return Err(Rejection::NotAParty);
    }
    if transport.seller == transport.buyer {
        return Err(Rejection::SellerIsBuyer);
    }
    if transport.price.minor() <= 0 {
        return Err(Rejection::PriceNotPositive);
    }
    if transport.cross_border != (transport.pickup.country != transport.delivery.country) {
        return Err(Rejection::CrossBorderMismatch { said: transport.cross_border });
    }
    let notification = transport.prior_notification_number.as_deref().map(str::trim).unwrap_or_default();
    if notification.len() > PRIOR_NOTIFICATION_NUMBER_BYTES_MAX {
        return Err(Rejection::PriorNotificationTooLong);
    }
    if transport.cross_border && transport.hazardous && notification.is_empty() {
        return Err(Rejection::PriorNotificationRequired);
    }
    if transport.pallet_exchange && !carrier_takes_pallet_exchange {
        return Err(Rejection::PalletExchangeNotOffered);
    }
    Ok(vec![Event::Booked { shipment_id, transport, booked_by, at_ms: context.now_ms }])
}

fn check_pickup(shipment: &Shipment, pickup: &Pickup, context: &Context) -> Result<(), Rejection> {
    let expected = shipment.transport.quantity;
    if pickup.quantity.unit() != expected.unit() {
        return Err(Rejection::WrongUnit);
    }
    let allowed = i64::try_from(
        i128::from(expected.amount_milli()) * i128::from(100 + PICKUP_OVER_EXPECTED_PERCENT_MAX) / 100,
    )
    .unwrap_or(i64::MAX);
    if pickup.quantity.amount_milli() > allowed {
        return Err(Rejection::PickedUpAboveExpected { picked_up: pickup.quantity.amount_milli(), allowed });
    }
    check_pallets(&shipment.transport, pickup.pallets)?;
    check_time(shipment, pickup.at_ms, context)
}

fn check_delivery(
    shipment: &Shipment,
    pickup: &Pickup,
    delivery: &Delivery,
    context: &Context,
) -> Result<(), Rejection> {
    if delivery.received.unit() != pickup.quantity.unit() {
        return Err(Rejection::WrongUnit);
    }
    let received = delivery.received.amount_milli();
    let picked_up = pickup.quantity.amount_milli();
    if received > picked_up {
        return Err(Rejection::ReceivedAbovePickedUp { received, picked_up });
    }
    let adds_up = delivery.accepted_milli >= 0
        && delivery.refused_milli >= 0
        && delivery.accepted_milli.checked_add(delivery.refused_milli) == Some(received);
    if !adds_up {
        return Err(Rejection::ReceiptDoesNotAddUp);
    }
    let reason = delivery.refusal_reason.as_deref().map(str::trim).unwrap_or_default();
    if reason.len() > REFUSAL_REASON_BYTES_MAX || (delivery.refused_milli > 0 && reason.is_empty()) {
        return Err(Rejection::RefusalReason);
    }
    check_pallets(&shipment.transport, delivery.pallets)?;
    check_time(shipment, delivery.at_ms, context)
}

fn check_pallets(transport: &Transport, pallets: Option<PalletExchange>) -> Result<(), Rejection> {
    let Some(exchange) = pallets else { return Ok(()) };
    if !transport.pallet_exchange {
        return Err(Rejection::PalletExchangeNotAgreed);
    }
    let in_range = |count: i64| (0..=PALLETS_EXCHANGED_MAX).contains(&count);
    if !in_range(exchange.handed_over) || !in_range(exchange.taken_back) {
        return Err(Rejection::PalletCountOutOfRange);
    }
    Ok(())
}

fn check_time(shipment: &Shipment, at_ms: i64, context: &Context) -> Result<(), Rejection> {
    if at_ms > context.now_ms.saturating_add(REPORT_CLOCK_SKEW_MS_MAX) {
        return Err(Rejection::ReportInFuture);
    }
    if at_ms < shipment.last_step_at_ms() {
        return Err(Rejection::ReportBeforePreviousStep);
    }
    Ok(())
}

/// Applies an event. Total: events are facts, whatever the state says.
pub fn evolve(state: ShipmentState, event: &Event) -> ShipmentState {
    match (state, event) {
        (ShipmentState::Absent, Event::Booked { shipment_id, transport, booked_by, at_ms }) => {
            ShipmentState::Booked(Box::new(Shipment {
                id: *shipment_id,
                transport: transport.clone(),
                booked_by: *booked_by,
                booked_at_ms: *at_ms,
                pickup: None,
                crossings: Vec::new(),
                delivery: None,
                closed_at_ms: None,
            }))
        }
        (ShipmentState::Booked(mut shipment), Event::PickedUp(pickup)) => {
            shipment.pickup = Some(pickup.clone());
            ShipmentState::PickedUp(shipment)
        }
        (ShipmentState::PickedUp(mut shipment), Event::BorderCrossed(crossing)) => {
            shipment.crossings.push(*crossing);
            ShipmentState::PickedUp(shipment)
        }
        (ShipmentState::PickedUp(mut shipment), Event::Delivered(delivery)) => {
            shipment.delivery = Some(delivery.clone());
            ShipmentState::Delivered(shipment)
        }
        (ShipmentState::Delivered(mut shipment), Event::Closed { at_ms, .. }) => {
            shipment.closed_at_ms = Some(*at_ms);
            ShipmentState::Closed(shipment)
        }
        (state, _) => state,
    }
}

#[cfg(test)]
mod tests;
