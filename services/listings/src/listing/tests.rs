//! The rules of a listing, given / when / then.

use symbiose_domain::{Country, Currency, GeoPoint, MaterialFamily, Money, PalletGrade, Unit, WasteCode};

use super::*;

const NOW_MS: i64 = 1_790_000_000_000;
const DAY_MS: i64 = 86_400_000;

fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn pallets(count: i64) -> Quantity {
    Quantity::new(count * 1000, Unit::Pallet, false).expect("quantity")
}

fn strasbourg() -> Place {
    Place { point: GeoPoint::new(48.5734, 7.7521).expect("point"), country: Country::Fr }
}

fn offer() -> Terms {
    Terms {
        side: Side::Offer,
        family: MaterialFamily::Pallets,
        waste_code: Some(WasteCode::parse("150103").expect("code")),
        legal_status: LegalStatus::Waste,
        description: "EUR pallets, grade B, every week".into(),
        quality: Quality::PalletGrade(PalletGrade::B),
        quantity: pallets(40),
        minimum_lot: Some(pallets(10)),
        recurrence_days: 7,
        site_id: id(10),
        location: None,
        available_from_ms: NOW_MS,
        available_until_ms: NOW_MS + 30 * DAY_MS,
        price_per_unit: Money::new(350, Currency::Eur).expect("money"),
        delivery: Delivery::BuyerCollects,
        max_distance_km: REQUEST_DISTANCE_KM_DEFAULT,
        accepts_other_countries: true,
        attachments: vec![],
        expires_at_ms: NOW_MS + 60 * DAY_MS,
    }
}

fn solvent_request() -> Terms {
    Terms {
        side: Side::Request,
        family: MaterialFamily::Solvents,
        waste_code: Some(WasteCode::parse("140603").expect("hazardous code")),
        quantity: Quantity::new(5_000_000, Unit::Litre, false).expect("quantity"),
        minimum_lot: None,
        quality: Quality::Unspecified,
        ..offer()
    }
}

fn created() -> Event {
    Event::Created { id: id(1), owner: id(2), terms: offer(), place: strasbourg() }
}

fn context() -> Context {
    Context { now_ms: NOW_MS, owner_may_receive_hazardous: false }
}

#[track_caller]
fn check_with(given: &[Event], when: Command, context: Context, then: Result<Vec<Event>, Rejection>) {
    let state = given.iter().fold(ListingState::Absent, evolve);
    assert_eq!(decide(&state, when, &context), then);
}

#[track_caller]
fn check(given: &[Event], when: Command, then: Result<Vec<Event>, Rejection>) {
    check_with(given, when, context(), then);
}

fn create(terms: Terms) -> Command {
    Command::Create { id: id(1), owner: id(2), terms, place: strasbourg() }
}

fn reserve(n: u128, count: i64) -> Command {
    Command::Reserve { reservation_id: id(100 + n), quantity: pallets(count) }
}

fn reserved(n: u128, count: i64) -> Event {
    Event::QuantityReserved { reservation_id: id(100 + n), quantity_milli: count * 1000 }
}

#[test]
fn an_offer_is_created_as_a_draft() {
    check(&[], create(offer()), Ok(vec![created()]));
    assert!(matches!([created()].iter().fold(ListingState::Absent, evolve), ListingState::Draft(_)));
    check(&[created()], create(offer()), Err(Rejection::AlreadyExists));
}

#[test]
fn the_unit_must_fit_the_material() {
    let water_in_pallets = Terms {
        family: MaterialFamily::ProcessWater,
        waste_code: None,
        legal_status: LegalStatus::ByProduct,
        quality: Quality::Unspecified,
        ..offer()
    };
    check(
        &[],
        create(water_in_pallets),
        Err(Rejection::UnitDoesNotFitMaterial { unit: "pallet", family: "process_water" }),
    );
}

#[test]
fn waste_names_its_code_and_other_statuses_need_not() {
    check(&[], create(Terms { waste_code: None, ..offer() }), Err(Rejection::WasteWithoutCode));
    let reuse = Terms { waste_code: None, legal_status: LegalStatus::ProductForReuse, ..offer() };
    check(
        &[],
        create(reuse.clone()),
        Ok(vec![Event::Created { id: id(1), owner: id(2), terms: reuse, place: strasbourg() }]),
    );
}

#[test]
fn quantities_and_prices_have_bounds() {
    let huge = Quantity::new(LISTING_QUANTITY_MILLI_MAX + 1000, Unit::Pallet, false).expect("quantity");
    check(
        &[],
        create(Terms { quantity: huge, minimum_lot: None, ..offer() }),
        Err(Rejection::QuantityTooLarge),
    );
    let price = Money::new(PRICE_PER_UNIT_MINOR_MAX + 1, Currency::Eur).expect("money");
    check(&[], create(Terms { price_per_unit: price, ..offer() }), Err(Rejection::PriceTooLarge));
    let gate_fee = Money::new(-PRICE_PER_UNIT_MINOR_MAX, Currency::Chf).expect("money");
    assert!(
        decide(&ListingState::Absent, create(Terms { price_per_unit: gate_fee, ..offer() }), &context())
            .is_ok(),
        "a gate fee is a price"
    );
    check(
        &[],
        create(Terms { minimum_lot: Some(pallets(41)), ..offer() }),
        Err(Rejection::MinimumLotDoesNotFit),
    );
}

#[test]
fn dates_must_make_sense() {
    check(&[], create(Terms { expires_at_ms: NOW_MS, ..offer() }), Err(Rejection::ExpiryPassed));
    check(
        &[],
        create(Terms { available_until_ms: NOW_MS - 1, ..offer() }),
        Err(Rejection::AvailabilityWindowReversed),
    );
}

#[test]
fn hazardous_waste_is_requested_only_under_a_permit() {
    check(&[], create(solvent_request()), Err(Rejection::HazardousWithoutPermit));
    let permitted = Context { owner_may_receive_hazardous: true, ..context() };
    let then = Event::Created { id: id(1), owner: id(2), terms: solvent_request(), place: strasbourg() };
    check_with(&[], create(solvent_request()), permitted, Ok(vec![then]));
    let far = Terms { max_distance_km: REQUEST_DISTANCE_KM_MAX + 1, ..solvent_request() };
    check_with(&[], create(far), permitted, Err(Rejection::DistanceOutOfRange));
}

#[test]
fn a_draft_is_published_once_and_withdrawn_for_good() {
    check(&[created()], Command::Publish, Ok(vec![Event::Published]));
    check(&[created(), Event::Published], Command::Publish, Err(Rejection::AlreadyPublished));
    check(&[created(), Event::Published], Command::Withdraw, Ok(vec![Event::Withdrawn]));
    check(&[created(), Event::Withdrawn], Command::Publish, Err(Rejection::Closed));
    check(&[], Command::Publish, Err(Rejection::NotFound));
}

#[test]
fn an_amendment_records_what_changed() {
    let cheaper = Terms {
        price_per_unit: Money::new(200, Currency::Eur).expect("money"),
        quantity: pallets(50),
        ..offer()
    };
    let then = Event::Amended {
        terms: cheaper.clone(),
        place: strasbourg(),
        changed: vec!["quantity".into(), "price_per_unit".into()],
    };
    check(
        &[created(), Event::Published],
        Command::Amend { terms: cheaper, place: strasbourg() },
        Ok(vec![then]),
    );
    check(&[created()], Command::Amend { terms: offer(), place: strasbourg() }, Ok(vec![]));
    check(
        &[created()],
        Command::Amend { terms: Terms { side: Side::Request, ..offer() }, place: strasbourg() },
        Err(Rejection::SideChanged),
    );
}

#[test]
fn an_amendment_cannot_take_back_what_is_reserved() {
    let given = [created(), Event::Published, reserved(1, 30)];
    check(
        &given,
        Command::Amend {
            terms: Terms { quantity: pallets(20), minimum_lot: None, ..offer() },
            place: strasbourg(),
        },
        Err(Rejection::QuantityBelowCommitted(30_000)),
    );
}

#[test]
fn reservations_never_exceed_the_quantity() {
    let published = [created(), Event::Published];
    check(&published, reserve(1, 30), Ok(vec![reserved(1, 30)]));
    let given = [created(), Event::Published, reserved(1, 30)];
    check(
        &given,
        reserve(2, 20),
        Err(Rejection::QuantityExceedsAvailable { requested: 20_000, available: 10_000 }),
    );
    check(&given, reserve(2, 10), Ok(vec![reserved(2, 10)]));
    check(&published, reserve(1, 5), Err(Rejection::BelowMinimumLot(10_000)));
    let nearly_all = [created(), Event::Published, reserved(1, 35)];
    check(&nearly_all, reserve(2, 5), Ok(vec![reserved(2, 5)]));
}

#[test]
fn a_reservation_is_idempotent_by_its_id() {
    let given = [created(), Event::Published, reserved(1, 30)];
    check(&given, reserve(1, 30), Ok(vec![]));
    check(&given, reserve(1, 20), Err(Rejection::ReservationConflict(id(101))));
}

#[test]
fn only_published_listings_are_reserved_in_their_unit_and_requests_are_consumed_too() {
    check(&[created()], reserve(1, 10), Err(Rejection::NotPublished));
    let request = Event::Created {
        id: id(1),
        owner: id(2),
        terms: Terms { side: Side::Request, ..offer() },
        place: strasbourg(),
    };
    // A deal serves a request as it takes from an offer: what is served is reserved.
    check(
        &[request.clone(), Event::Published],
        reserve(1, 10),
        Ok(vec![Event::QuantityReserved { reservation_id: id(101), quantity_milli: 10_000 }]),
    );
    let state = [
        request,
        Event::Published,
        Event::QuantityReserved { reservation_id: id(101), quantity_milli: 40_000 },
    ]
    .iter()
    .fold(ListingState::Absent, evolve);
    assert_eq!(state.listing().map(Listing::available_milli), Some(0), "a request fully served");
    // Closed, a listing holds no reservation: a release asked again is an unknown reservation.
    let withdrawn = [created(), Event::Published, Event::Withdrawn];
    check(
        &withdrawn,
        Command::Release { reservation_id: id(101) },
        Err(Rejection::UnknownReservation(id(101))),
    );
    let kilos = Command::Reserve {
        reservation_id: id(101),
        quantity: Quantity::new(10_000, Unit::Kilogram, false).expect("q"),
    };
    check(&[created(), Event::Published], kilos, Err(Rejection::WrongUnit));
}

#[test]
fn a_release_gives_the_quantity_back() {
    let given = [
        created(),
        Event::Published,
        reserved(1, 30),
        Event::ReservationReleased { reservation_id: id(101) },
    ];
    check(&given, reserve(2, 40), Ok(vec![reserved(2, 40)]));
    check(&given, Command::Release { reservation_id: id(101) }, Err(Rejection::UnknownReservation(id(101))));
}

#[test]
fn delivery_confirms_the_actual_quantity_and_fulfils_the_listing() {
    let given = [created(), Event::Published, reserved(1, 30), reserved(2, 10)];
    let confirm = |n: u128, count: i64| Command::ConfirmDelivery {
        reservation_id: id(100 + n),
        delivered: pallets(count),
    };
    check(
        &given,
        confirm(1, 28),
        Ok(vec![Event::DeliveryConfirmed { reservation_id: id(101), delivered_milli: 28_000 }]),
    );
    check(
        &given,
        confirm(1, 31),
        Err(Rejection::DeliveredExceedsQuantity { delivered: 31_000, allowed: 30_000 }),
    );
    let mut last = given.to_vec();
    last.push(Event::DeliveryConfirmed { reservation_id: id(101), delivered_milli: 30_000 });
    check(
        &last,
        confirm(2, 10),
        Ok(vec![
            Event::DeliveryConfirmed { reservation_id: id(102), delivered_milli: 10_000 },
            Event::Fulfilled,
        ]),
    );
    check(&given, confirm(9, 1), Err(Rejection::UnknownReservation(id(109))));
}

#[test]
fn a_listing_expires_once_its_expiry_passes() {
    let later = Context { now_ms: NOW_MS + 61 * DAY_MS, ..context() };
    check_with(&[created(), Event::Published], Command::Expire, later, Ok(vec![Event::Expired]));
    check(&[created(), Event::Published], Command::Expire, Ok(vec![]));
    check_with(&[created(), Event::Expired], Command::Expire, later, Ok(vec![]));
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Whatever reservations, releases and deliveries are tried, what is reserved and
        /// delivered never exceeds the quantity, and replaying the events gives the state.
        #[test]
        fn reserved_and_delivered_never_exceed_the_quantity(
            steps in proptest::collection::vec((0u8..3, 0u128..8, 1i64..30), 1..60)
        ) {
            let mut events = vec![created(), Event::Published];
            let mut state = events.iter().fold(ListingState::Absent, evolve);
            for (kind, reservation, count) in steps {
                let command = match kind {
                    0 => reserve(reservation, count),
                    1 => Command::Release { reservation_id: id(100 + reservation) },
                    _ => Command::ConfirmDelivery { reservation_id: id(100 + reservation), delivered: pallets(count) },
                };
                if let Ok(new_events) = decide(&state, command, &context()) {
                    for event in new_events {
                        state = evolve(state, &event);
                        events.push(event);
                    }
                }
                if let Some(listing) = state.listing() {
                    prop_assert!(listing.reserved_milli() + listing.delivered_milli <= listing.terms.quantity.amount_milli());
                    prop_assert!(listing.available_milli() >= 0);
                }
            }
            prop_assert_eq!(events.iter().fold(ListingState::Absent, evolve), state);
        }
    }
}

#[test]
fn a_listing_with_open_reservations_is_not_withdrawn_nor_expired() {
    let given = [created(), Event::Published, reserved(1, 10)];
    check(&given, Command::Withdraw, Err(Rejection::OpenReservations(1)));
    let later = Context { now_ms: NOW_MS + 61 * DAY_MS, ..context() };
    check_with(&given, Command::Expire, later, Ok(vec![]));
    let released = [
        created(),
        Event::Published,
        reserved(1, 10),
        Event::ReservationReleased { reservation_id: id(101) },
    ];
    check_with(&released, Command::Expire, later, Ok(vec![Event::Expired]));
    check(&released, Command::Withdraw, Ok(vec![Event::Withdrawn]));
}

#[test]
fn a_listing_remembers_whether_it_was_ever_published() {
    let never = [created(), Event::Withdrawn].iter().fold(ListingState::Absent, evolve);
    assert!(!never.listing().expect("listing").published_once);
    let once = [created(), Event::Published, Event::Withdrawn].iter().fold(ListingState::Absent, evolve);
    assert!(once.listing().expect("listing").published_once);
}
