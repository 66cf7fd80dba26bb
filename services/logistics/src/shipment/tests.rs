//! The rules of a shipment, given / when / then.

use symbiose_domain::{PalletGrade, Unit};

use super::*;
use crate::testing::{HOUR_MS, NOW_MS, eur, id, place_of, quantity};

const SELLER: u128 = 1;
const BUYER: u128 = 2;
const CARRIER: u128 = 3;
const OTHER_CARRIER: u128 = 9;

/// 12 loaded EUR pallets of cardboard bales from Strasbourg to Kehl, with pallet exchange.
fn transport() -> Transport {
    Transport {
        deal_id: id(4),
        seller: id(SELLER),
        buyer: id(BUYER),
        carrier: id(CARRIER),
        price: eur(9000),
        pickup: place_of("Strasbourg"),
        delivery: place_of("Kehl"),
        quantity: quantity(12, Unit::Pallet),
        cross_border: true,
        hazardous: false,
        prior_notification_number: None,
        pallet_exchange: true,
    }
}

fn book(transport: Transport) -> Command {
    Command::Book { shipment_id: id(5), transport, booked_by: id(BUYER), carrier_takes_pallet_exchange: true }
}

fn booked() -> Event {
    Event::Booked { shipment_id: id(5), transport: transport(), booked_by: id(BUYER), at_ms: NOW_MS }
}

fn exchange(handed_over: i64, taken_back: i64) -> Option<PalletExchange> {
    Some(PalletExchange { grade: PalletGrade::B, handed_over, taken_back })
}

/// The carrier takes the 12 loaded pallets and hands over 10 empty ones.
fn pickup() -> Pickup {
    Pickup { quantity: quantity(12, Unit::Pallet), pallets: exchange(10, 12), at_ms: NOW_MS + HOUR_MS }
}

fn crossing() -> BorderCrossing {
    BorderCrossing { country: Country::De, at_ms: NOW_MS + 2 * HOUR_MS }
}

/// 12 received, 11 accepted, 1 refused (wet); the carrier hands over the 12 loaded pallets and
/// takes back 9 empty ones.
fn delivery() -> Delivery {
    Delivery {
        received: quantity(12, Unit::Pallet),
        accepted_milli: 11_000,
        refused_milli: 1_000,
        refusal_reason: Some("one bale soaked by rain".into()),
        pallets: exchange(12, 9),
        at_ms: NOW_MS + 3 * HOUR_MS,
    }
}

fn report_pickup(by: u128, pickup: Pickup) -> Command {
    Command::ReportPickup { by: id(by), pickup }
}

fn report_delivery(by: u128, delivery: Delivery) -> Command {
    Command::ReportDelivery { by: id(by), delivery }
}

fn context() -> Context {
    Context { now_ms: NOW_MS + 4 * HOUR_MS }
}

#[track_caller]
fn check(given: &[Event], when: Command, then: Result<Vec<Event>, Rejection>) {
    let state = given.iter().fold(ShipmentState::Absent, evolve);
    let context = if given.is_empty() { Context { now_ms: NOW_MS } } else { context() };
    assert_eq!(decide(&state, when, &context), then);
}

#[test]
fn a_shipment_from_booking_to_closure_with_pallet_exchange() {
    check(&[], book(transport()), Ok(vec![booked()]));
    let picked_up = Event::PickedUp(pickup());
    check(&[booked()], report_pickup(CARRIER, pickup()), Ok(vec![picked_up.clone()]));
    let crossed = Event::BorderCrossed(crossing());
    let crossing_command = Command::ReportBorderCrossing { by: id(CARRIER), crossing: crossing() };
    check(&[booked(), picked_up.clone()], crossing_command, Ok(vec![crossed.clone()]));
    let delivered = Event::Delivered(delivery());
    let history = [booked(), picked_up.clone(), crossed.clone()];
    check(&history, report_delivery(CARRIER, delivery()), Ok(vec![delivered.clone()]));
    let closed = Event::Closed { accepted_milli: 11_000, by: id(BUYER), at_ms: context().now_ms };
    let confirm = Command::ConfirmAcceptance { by: id(BUYER), accepted_milli: 11_000 };
    let history = [booked(), picked_up, crossed, delivered];
    check(&history, confirm.clone(), Ok(vec![closed.clone()]));

    let all = [history.as_slice(), &[closed]].concat();
    let state = all.iter().fold(ShipmentState::Absent, evolve);
    assert_eq!(state.name(), "closed");
    let shipment = state.shipment().expect("a shipment");
    assert_eq!(shipment.pickup, Some(pickup()));
    assert_eq!(shipment.crossings, [crossing()]);
    assert_eq!(shipment.current_country(), Country::De);
    assert_eq!(shipment.delivery, Some(delivery()));
    assert_eq!(shipment.closed_at_ms, Some(context().now_ms));
    check(&all, confirm, Ok(vec![]));
}

#[test]
fn hazardous_waste_across_a_border_needs_its_prior_notification() {
    let hazardous = Transport { hazardous: true, pallet_exchange: false, ..transport() };
    check(&[], book(hazardous.clone()), Err(Rejection::PriorNotificationRequired));
    let blank = Transport { prior_notification_number: Some("  ".into()), ..hazardous.clone() };
    check(&[], book(blank), Err(Rejection::PriorNotificationRequired));
    let long = "F".repeat(PRIOR_NOTIFICATION_NUMBER_BYTES_MAX + 1);
    let too_long = Transport { prior_notification_number: Some(long), ..hazardous.clone() };
    check(&[], book(too_long), Err(Rejection::PriorNotificationTooLong));
    let notified = Transport { prior_notification_number: Some("FR2025067001".into()), ..hazardous };
    assert!(decide(&ShipmentState::Absent, book(notified), &context()).is_ok());
    // Within one country no notification is needed.
    let domestic = Transport {
        delivery: place_of("Metz"),
        cross_border: false,
        hazardous: true,
        pallet_exchange: false,
        ..transport()
    };
    assert!(decide(&ShipmentState::Absent, book(domestic), &context()).is_ok());
}

#[test]
fn a_booking_is_consistent() {
    let by_carrier = Command::Book {
        shipment_id: id(5),
        transport: transport(),
        booked_by: id(CARRIER),
        carrier_takes_pallet_exchange: true,
    };
    check(&[], by_carrier, Err(Rejection::NotAParty));
    check(&[], book(Transport { seller: id(BUYER), ..transport() }), Err(Rejection::SellerIsBuyer));
    check(&[], book(Transport { price: eur(0), ..transport() }), Err(Rejection::PriceNotPositive));
    check(
        &[],
        book(Transport { cross_border: false, ..transport() }),
        Err(Rejection::CrossBorderMismatch { said: false }),
    );
    let without_exchange = Command::Book {
        shipment_id: id(5),
        transport: transport(),
        booked_by: id(BUYER),
        carrier_takes_pallet_exchange: false,
    };
    check(&[], without_exchange, Err(Rejection::PalletExchangeNotOffered));
    check(&[booked()], book(transport()), Ok(vec![]));
    check(&[booked()], book(Transport { price: eur(9500), ..transport() }), Err(Rejection::AlreadyBooked));
}

#[test]
fn only_the_carrier_reports_and_only_the_buyer_confirms() {
    check(&[booked()], report_pickup(OTHER_CARRIER, pickup()), Err(Rejection::NotTheCarrier));
    check(&[booked()], report_pickup(SELLER, pickup()), Err(Rejection::NotTheCarrier));
    assert_eq!(Rejection::NotTheCarrier.kind(), RejectionKind::PermissionDenied);
    let picked_up = [booked(), Event::PickedUp(pickup())];
    let crossing_command = Command::ReportBorderCrossing { by: id(OTHER_CARRIER), crossing: crossing() };
    check(&picked_up, crossing_command, Err(Rejection::NotTheCarrier));
    check(&picked_up, report_delivery(OTHER_CARRIER, delivery()), Err(Rejection::NotTheCarrier));
    let delivered = [booked(), Event::PickedUp(pickup()), Event::Delivered(delivery())];
    let by_seller = Command::ConfirmAcceptance { by: id(SELLER), accepted_milli: 11_000 };
    check(&delivered, by_seller, Err(Rejection::NotTheBuyer));
    let differs = Command::ConfirmAcceptance { by: id(BUYER), accepted_milli: 12_000 };
    check(
        &delivered,
        differs,
        Err(Rejection::AcceptedQuantityDiffers { confirmed: 12_000, delivered: 11_000 }),
    );
}

#[test]
fn nothing_is_delivered_above_what_was_picked_up() {
    let picked_up = [booked(), Event::PickedUp(Pickup { quantity: quantity(10, Unit::Pallet), ..pickup() })];
    let more = Delivery {
        received: quantity(11, Unit::Pallet),
        accepted_milli: 11_000,
        refused_milli: 0,
        ..delivery()
    };
    check(
        &picked_up,
        report_delivery(CARRIER, more),
        Err(Rejection::ReceivedAbovePickedUp { received: 11_000, picked_up: 10_000 }),
    );
    let short = Delivery {
        received: quantity(9, Unit::Pallet),
        accepted_milli: 9_000,
        refused_milli: 0,
        ..delivery()
    };
    check(&picked_up, report_delivery(CARRIER, short.clone()), Ok(vec![Event::Delivered(short)]));
}

#[test]
fn a_receipt_adds_up_and_a_refusal_says_why() {
    let picked_up = [booked(), Event::PickedUp(pickup())];
    let wrong_sum = Delivery { accepted_milli: 12_000, ..delivery() };
    check(&picked_up, report_delivery(CARRIER, wrong_sum), Err(Rejection::ReceiptDoesNotAddUp));
    let negative = Delivery { accepted_milli: 13_000, refused_milli: -1_000, ..delivery() };
    check(&picked_up, report_delivery(CARRIER, negative), Err(Rejection::ReceiptDoesNotAddUp));
    let silent = Delivery { refusal_reason: None, ..delivery() };
    check(&picked_up, report_delivery(CARRIER, silent), Err(Rejection::RefusalReason));
    let kilograms = Delivery { received: quantity(12, Unit::Kilogram), ..delivery() };
    check(&picked_up, report_delivery(CARRIER, kilograms), Err(Rejection::WrongUnit));
}

#[test]
fn a_repeated_report_applies_once() {
    let picked_up = [booked(), Event::PickedUp(pickup())];
    check(&picked_up, report_pickup(CARRIER, pickup()), Ok(vec![]));
    let recounted = Pickup { quantity: quantity(11, Unit::Pallet), ..pickup() };
    check(
        &picked_up,
        report_pickup(CARRIER, recounted),
        Err(Rejection::IllegalTransition { state: "picked up", command: "report a pickup" }),
    );
    let delivered = [booked(), Event::PickedUp(pickup()), Event::Delivered(delivery())];
    check(&delivered, report_pickup(CARRIER, pickup()), Ok(vec![]));
    check(&delivered, report_delivery(CARRIER, delivery()), Ok(vec![]));
    let crossed = [booked(), Event::PickedUp(pickup()), Event::BorderCrossed(crossing())];
    let again = Command::ReportBorderCrossing { by: id(CARRIER), crossing: crossing() };
    check(&crossed, again, Ok(vec![]));
}

#[test]
fn illegal_transitions_are_refused() {
    check(&[], report_pickup(CARRIER, pickup()), Err(Rejection::NotFound));
    check(
        &[booked()],
        report_delivery(CARRIER, delivery()),
        Err(Rejection::IllegalTransition { state: "booked", command: "report a delivery" }),
    );
    check(
        &[booked()],
        Command::ReportBorderCrossing { by: id(CARRIER), crossing: crossing() },
        Err(Rejection::IllegalTransition { state: "booked", command: "report a border crossing" }),
    );
    check(
        &[booked(), Event::PickedUp(pickup())],
        Command::ConfirmAcceptance { by: id(BUYER), accepted_milli: 11_000 },
        Err(Rejection::IllegalTransition { state: "picked up", command: "confirm acceptance" }),
    );
    let rejection = Rejection::IllegalTransition { state: "booked", command: "report a delivery" };
    assert_eq!(rejection.kind(), RejectionKind::FailedPrecondition);
}

#[test]
fn border_crossings_only_across_a_border_into_another_country() {
    let domestic = Transport { delivery: place_of("Metz"), cross_border: false, ..transport() };
    let booked_domestic =
        Event::Booked { shipment_id: id(5), transport: domestic, booked_by: id(BUYER), at_ms: NOW_MS };
    let crossing_command = |country| Command::ReportBorderCrossing {
        by: id(CARRIER),
        crossing: BorderCrossing { country, at_ms: NOW_MS + 2 * HOUR_MS },
    };
    check(
        &[booked_domestic, Event::PickedUp(pickup())],
        crossing_command(Country::De),
        Err(Rejection::NotCrossBorder),
    );
    let picked_up = [booked(), Event::PickedUp(pickup())];
    check(&picked_up, crossing_command(Country::Fr), Err(Rejection::SameCountry(Country::Fr)));
    let crossed = [booked(), Event::PickedUp(pickup()), Event::BorderCrossed(crossing())];
    let later_same = Command::ReportBorderCrossing {
        by: id(CARRIER),
        crossing: BorderCrossing { country: Country::De, at_ms: NOW_MS + 3 * HOUR_MS },
    };
    // Reporting the last crossing again, even later, is a repeat: it applies once.
    check(&crossed, later_same, Ok(vec![]));
}

#[test]
fn pickups_are_bounded_and_pallets_exchanged_only_when_agreed() {
    check(
        &[booked()],
        report_pickup(CARRIER, Pickup { quantity: quantity(14, Unit::Pallet), ..pickup() }),
        Err(Rejection::PickedUpAboveExpected { picked_up: 14_000, allowed: 13_200 }),
    );
    check(
        &[booked()],
        report_pickup(CARRIER, Pickup { quantity: quantity(12, Unit::Piece), ..pickup() }),
        Err(Rejection::WrongUnit),
    );
    check(
        &[booked()],
        report_pickup(CARRIER, Pickup { pallets: exchange(-1, 12), ..pickup() }),
        Err(Rejection::PalletCountOutOfRange),
    );
    check(
        &[booked()],
        report_pickup(CARRIER, Pickup { pallets: exchange(PALLETS_EXCHANGED_MAX + 1, 12), ..pickup() }),
        Err(Rejection::PalletCountOutOfRange),
    );
    let no_exchange = Transport { pallet_exchange: false, ..transport() };
    let booked_without =
        Event::Booked { shipment_id: id(5), transport: no_exchange, booked_by: id(BUYER), at_ms: NOW_MS };
    check(
        std::slice::from_ref(&booked_without),
        report_pickup(CARRIER, pickup()),
        Err(Rejection::PalletExchangeNotAgreed),
    );
    let plain = Pickup { pallets: None, ..pickup() };
    check(&[booked_without], report_pickup(CARRIER, plain.clone()), Ok(vec![Event::PickedUp(plain)]));
}

#[test]
fn reports_are_in_order_and_not_in_the_future() {
    let future = Pickup { at_ms: context().now_ms + REPORT_CLOCK_SKEW_MS_MAX + 1, ..pickup() };
    check(&[booked()], report_pickup(CARRIER, future), Err(Rejection::ReportInFuture));
    let picked_up = [booked(), Event::PickedUp(pickup())];
    let before = Delivery { at_ms: pickup().at_ms - 1, ..delivery() };
    check(&picked_up, report_delivery(CARRIER, before), Err(Rejection::ReportBeforePreviousStep));
}
