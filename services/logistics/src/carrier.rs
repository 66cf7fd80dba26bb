//! The Carrier profile aggregate: one per carrier organization, what it offers to carry.
//!
//! A profile is its depots, the countries it serves, a service radius, its vehicles, its rates
//! and whether it takes part in pallet exchange. It is registered whole and updated whole (an
//! update replaces the profile), so a profile is always complete and valid:
//!
//! - at least one depot, one served country and one vehicle, and at most `DEPOTS_MAX` depots
//!   and `VEHICLES_MAX` vehicles, each with a unique id and a name;
//! - a service radius of 1 to `SERVICE_RADIUS_KM_MAX` km;
//! - every vehicle carries something: a payload of 1 to `VEHICLE_PAYLOAD_KG_MAX` kg and 0 to
//!   `VEHICLE_PALLET_PLACES_MAX` pallet places;
//! - rates are not negative, each under its maximum, and the minimum charge is positive, so
//!   every automatic quote has a price. The currency is EUR or CHF: `Currency` holds no other.
//!
//! A place is covered when it is in a served country and within the radius of one depot, the
//! radius measured as the crow flies (great-circle): it is the carrier's own statement of its
//! area, not a route. Only a carrier organization registers a profile; the shell says whether
//! the caller holds the role. Pure: `decide` and `evolve`.

use std::collections::BTreeSet;

use symbiose_domain::lot::Place;
use uuid::Uuid;

use crate::RejectionKind;
use crate::quote::Load;

/// Most depots in one profile.
pub const DEPOTS_MAX: usize = 50;
/// Most vehicles in one profile.
pub const VEHICLES_MAX: usize = 200;
/// Largest service radius around a depot, in km: beyond it a trip is long haul, not the short
/// supply circuits the marketplace serves.
pub const SERVICE_RADIUS_KM_MAX: u32 = 1000;
/// Largest payload of one vehicle, in kg: a 44 t road train carries about 27 t; the margin
/// leaves room for exceptional transport without admitting nonsense.
pub const VEHICLE_PAYLOAD_KG_MAX: i64 = 40_000;
/// Most EUR pallet places of one vehicle: a double-deck semi-trailer has 66.
pub const VEHICLE_PALLET_PLACES_MAX: i64 = 66;
/// Longest name of a depot or a vehicle, in bytes.
pub const NAME_BYTES_MAX: usize = 200;
/// Largest rate per road km, in minor units (1,000.00).
pub const RATE_PER_KM_MINOR_MAX: i64 = 100_000;
/// Largest rate per tonne carried, in minor units (10,000.00).
pub const RATE_PER_TONNE_MINOR_MAX: i64 = 1_000_000;
/// Largest minimum charge, in minor units (100,000.00).
pub const MINIMUM_CHARGE_MINOR_MAX: i64 = 10_000_000;

// The profile and its parts, and the events, are the contract's: what the log records.
pub use symbiose_logistics_contract::carrier::{Depot, Event, Profile, Rates, Vehicle};

/// Whether `vehicle` can carry `load`: payload, pallet places and, for dangerous goods, the
/// equipment. A load of unknown mass fits on places and equipment alone.
pub fn fits(vehicle: &Vehicle, load: &Load) -> bool {
    load.mass_kg.is_none_or(|mass_kg| vehicle.payload_kg >= mass_kg)
        && vehicle.pallet_places >= load.pallets
        && (vehicle.dangerous_goods || !load.dangerous_goods)
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Carrier {
    /// The carrier organization, also the id of the profile's stream.
    pub organization: Uuid,
    pub profile: Profile,
    pub registered_at_ms: i64,
    pub updated_at_ms: i64,
}

impl Carrier {
    /// Whether the carrier serves `place`: in a served country and within the radius of one
    /// depot.
    pub fn covers(&self, place: &Place) -> bool {
        let radius_m = u64::from(self.profile.service_radius_km) * 1000;
        self.profile.countries.contains(&place.country)
            && self.profile.depots.iter().any(|depot| depot.point.distance_m(&place.point) <= radius_m)
    }

    /// The vehicles that can carry `load`, in the profile's order.
    pub fn vehicles_fitting<'a>(&'a self, load: &'a Load) -> impl Iterator<Item = &'a Vehicle> + 'a {
        self.profile.vehicles.iter().filter(move |vehicle| fits(vehicle, load))
    }
}

#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub enum CarrierState {
    #[default]
    Absent,
    Registered(Box<Carrier>),
}

impl CarrierState {
    pub fn carrier(&self) -> Option<&Carrier> {
        match self {
            CarrierState::Absent => None,
            CarrierState::Registered(carrier) => Some(carrier),
        }
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Command {
    Register {
        organization: Uuid,
        profile: Profile,
    },
    /// Replaces the whole profile.
    Update {
        profile: Profile,
    },
}

/// What the shell passes in.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct Context {
    pub now_ms: i64,
    /// Whether the caller's organization holds the carrier role.
    pub caller_is_carrier: bool,
}

/// Why a command is refused; `kind` says how it reaches the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("the carrier profile does not exist")]
    NotRegistered,
    #[error("the carrier profile already exists: update it")]
    AlreadyRegistered,
    #[error("only an organization with the carrier role registers a carrier profile")]
    NotACarrier,
    #[error("a profile has at least one depot")]
    NoDepot,
    #[error("a profile has at most {DEPOTS_MAX} depots")]
    TooManyDepots,
    #[error("a profile serves at least one country")]
    NoCountry,
    #[error("a profile has at least one vehicle")]
    NoVehicle,
    #[error("a profile has at most {VEHICLES_MAX} vehicles")]
    TooManyVehicles,
    #[error("{0} is used twice")]
    DuplicateId(Uuid),
    #[error("a name is 1 to {NAME_BYTES_MAX} bytes")]
    BadName,
    #[error("the service radius is 1 to {SERVICE_RADIUS_KM_MAX} km")]
    RadiusOutOfRange,
    #[error("a vehicle's payload is 1 to {VEHICLE_PAYLOAD_KG_MAX} kg")]
    PayloadOutOfRange,
    #[error("a vehicle has 0 to {VEHICLE_PALLET_PLACES_MAX} pallet places")]
    PalletPlacesOutOfRange,
    #[error("the {rate} rate is 0 to {max} minor units")]
    RateOutOfRange { rate: &'static str, max: i64 },
    #[error("the minimum charge is 1 to {MINIMUM_CHARGE_MINOR_MAX} minor units")]
    MinimumChargeOutOfRange,
}

impl Rejection {
    pub fn kind(&self) -> RejectionKind {
        let field = match self {
            Rejection::NotRegistered => return RejectionKind::NotFound,
            Rejection::AlreadyRegistered | Rejection::NotACarrier => {
                return RejectionKind::FailedPrecondition;
            }
            Rejection::NoDepot | Rejection::TooManyDepots => "depots",
            Rejection::NoCountry => "countries",
            Rejection::NoVehicle | Rejection::TooManyVehicles => "vehicles",
            Rejection::DuplicateId(_) => "id",
            Rejection::BadName => "name",
            Rejection::RadiusOutOfRange => "service_radius_km",
            Rejection::PayloadOutOfRange => "vehicles.payload_kg",
            Rejection::PalletPlacesOutOfRange => "vehicles.pallet_places",
            Rejection::RateOutOfRange { rate: "per_km", .. } => "rates.per_km",
            Rejection::RateOutOfRange { .. } => "rates.per_tonne",
            Rejection::MinimumChargeOutOfRange => "rates.minimum",
        };
        RejectionKind::InvalidArgument { field }
    }
}

/// Every rule of a valid profile.
pub fn check_profile(profile: &Profile) -> Result<(), Rejection> {
    if profile.depots.is_empty() {
        return Err(Rejection::NoDepot);
    }
    if profile.depots.len() > DEPOTS_MAX {
        return Err(Rejection::TooManyDepots);
    }
    if profile.countries.is_empty() {
        return Err(Rejection::NoCountry);
    }
    if profile.vehicles.is_empty() {
        return Err(Rejection::NoVehicle);
    }
    if profile.vehicles.len() > VEHICLES_MAX {
        return Err(Rejection::TooManyVehicles);
    }
    if profile.service_radius_km == 0 || profile.service_radius_km > SERVICE_RADIUS_KM_MAX {
        return Err(Rejection::RadiusOutOfRange);
    }
    let mut ids = BTreeSet::new();
    let names = profile.depots.iter().map(|depot| (depot.id, &depot.name));
    for (id, name) in names.chain(profile.vehicles.iter().map(|vehicle| (vehicle.id, &vehicle.name))) {
        if !ids.insert(id) {
            return Err(Rejection::DuplicateId(id));
        }
        if name.trim().is_empty() || name.len() > NAME_BYTES_MAX {
            return Err(Rejection::BadName);
        }
    }
    for vehicle in &profile.vehicles {
        if !(1..=VEHICLE_PAYLOAD_KG_MAX).contains(&vehicle.payload_kg) {
            return Err(Rejection::PayloadOutOfRange);
        }
        if !(0..=VEHICLE_PALLET_PLACES_MAX).contains(&vehicle.pallet_places) {
            return Err(Rejection::PalletPlacesOutOfRange);
        }
    }
    let rates = &profile.rates;
    if !(0..=RATE_PER_KM_MINOR_MAX).contains(&rates.per_km_minor) {
        return Err(Rejection::RateOutOfRange { rate: "per_km", max: RATE_PER_KM_MINOR_MAX });
    }
    if !(0..=RATE_PER_TONNE_MINOR_MAX).contains(&rates.per_tonne_minor) {
        return Err(Rejection::RateOutOfRange { rate: "per_tonne", max: RATE_PER_TONNE_MINOR_MAX });
    }
    if !(1..=MINIMUM_CHARGE_MINOR_MAX).contains(&rates.minimum_minor) {
        return Err(Rejection::MinimumChargeOutOfRange);
    }
    Ok(())
}

pub fn decide(state: &CarrierState, command: Command, context: &Context) -> Result<Vec<Event>, Rejection> {
    match (state, command) {
        (CarrierState::Absent, Command::Register { organization, profile }) => {
            if !context.caller_is_carrier {
                return Err(Rejection::NotACarrier);
            }
            check_profile(&profile)?;
            Ok(vec![Event::Registered { organization, profile, at_ms: context.now_ms }])
        }
        // A retried registration registers nothing twice.
        (CarrierState::Registered(carrier), Command::Register { organization, profile }) => {
            if carrier.organization == organization && carrier.profile == profile {
                Ok(Vec::new())
            } else {
                Err(Rejection::AlreadyRegistered)
            }
        }
        (CarrierState::Absent, Command::Update { .. }) => Err(Rejection::NotRegistered),
        (CarrierState::Registered(carrier), Command::Update { profile }) => {
            check_profile(&profile)?;
            if carrier.profile == profile {
                return Ok(Vec::new());
            }
            Ok(vec![Event::Updated { profile, at_ms: context.now_ms }])
        }
    }
}

/// Applies an event. Total: events are facts, whatever the state says.
pub fn evolve(state: CarrierState, event: &Event) -> CarrierState {
    match (state, event) {
        (CarrierState::Absent, Event::Registered { organization, profile, at_ms }) => {
            CarrierState::Registered(Box::new(Carrier {
                organization: *organization,
                profile: profile.clone(),
                registered_at_ms: *at_ms,
                updated_at_ms: *at_ms,
            }))
        }
        (CarrierState::Registered(mut carrier), Event::Updated { profile, at_ms }) => {
            carrier.profile = profile.clone();
            carrier.updated_at_ms = *at_ms;
            CarrierState::Registered(carrier)
        }
        (state, _) => state,
    }
}

#[cfg(test)]
mod tests {
    use symbiose_domain::Country;
    use symbiose_domain::geo::place;

    use super::*;
    use crate::testing::{NOW_MS, carrier, id, place_of, profile, van};

    #[track_caller]
    fn check(given: &[Event], when: Command, then: Result<Vec<Event>, Rejection>) {
        let state = given.iter().fold(CarrierState::Absent, evolve);
        let context = Context { now_ms: NOW_MS, caller_is_carrier: true };
        assert_eq!(decide(&state, when, &context), then);
    }

    fn registered() -> Event {
        Event::Registered { organization: id(1), profile: profile(), at_ms: NOW_MS }
    }

    #[test]
    fn a_carrier_registers_once_and_updates_its_whole_profile() {
        check(&[], Command::Register { organization: id(1), profile: profile() }, Ok(vec![registered()]));
        check(&[registered()], Command::Register { organization: id(1), profile: profile() }, Ok(vec![]));
        let wider = Profile { service_radius_km: 300, ..profile() };
        check(
            &[registered()],
            Command::Register { organization: id(1), profile: wider.clone() },
            Err(Rejection::AlreadyRegistered),
        );
        check(&[], Command::Update { profile: wider.clone() }, Err(Rejection::NotRegistered));
        let updated = Event::Updated { profile: wider.clone(), at_ms: NOW_MS };
        check(&[registered()], Command::Update { profile: wider.clone() }, Ok(vec![updated.clone()]));
        check(&[registered(), updated.clone()], Command::Update { profile: wider.clone() }, Ok(vec![]));
        let state = [registered(), updated].iter().fold(CarrierState::Absent, evolve);
        assert_eq!(state.carrier().map(|carrier| carrier.profile.service_radius_km), Some(300));
    }

    #[test]
    fn only_a_carrier_registers() {
        let context = Context { now_ms: NOW_MS, caller_is_carrier: false };
        let command = Command::Register { organization: id(1), profile: profile() };
        assert_eq!(decide(&CarrierState::Absent, command, &context), Err(Rejection::NotACarrier));
    }

    #[test]
    fn a_profile_is_complete_and_bounded() {
        let register = |profile| Command::Register { organization: id(1), profile };
        check(&[], register(Profile { depots: vec![], ..profile() }), Err(Rejection::NoDepot));
        check(&[], register(Profile { countries: BTreeSet::new(), ..profile() }), Err(Rejection::NoCountry));
        check(&[], register(Profile { vehicles: vec![], ..profile() }), Err(Rejection::NoVehicle));
        check(&[], register(Profile { service_radius_km: 0, ..profile() }), Err(Rejection::RadiusOutOfRange));
        check(
            &[],
            register(Profile { service_radius_km: SERVICE_RADIUS_KM_MAX + 1, ..profile() }),
            Err(Rejection::RadiusOutOfRange),
        );
        let depot = profile().depots[0].clone();
        let depots = (0..=DEPOTS_MAX as u128).map(|n| Depot { id: id(1000 + n), ..depot.clone() }).collect();
        check(&[], register(Profile { depots, ..profile() }), Err(Rejection::TooManyDepots));
        let vehicles = (0..=VEHICLES_MAX as u128).map(|n| van(1000 + n, 1000, 8, false)).collect();
        check(&[], register(Profile { vehicles, ..profile() }), Err(Rejection::TooManyVehicles));
        let twice = vec![van(50, 1000, 8, false), van(50, 2000, 8, false)];
        check(&[], register(Profile { vehicles: twice, ..profile() }), Err(Rejection::DuplicateId(id(50))));
        let empty = vec![van(50, 0, 8, false)];
        check(&[], register(Profile { vehicles: empty, ..profile() }), Err(Rejection::PayloadOutOfRange));
        let unnamed = vec![Vehicle { name: " ".into(), ..van(50, 1000, 8, false) }];
        check(&[], register(Profile { vehicles: unnamed, ..profile() }), Err(Rejection::BadName));
        let negative = Rates { per_km_minor: -1, ..profile().rates };
        let rejection = Rejection::RateOutOfRange { rate: "per_km", max: RATE_PER_KM_MINOR_MAX };
        assert_eq!(rejection.kind(), RejectionKind::InvalidArgument { field: "rates.per_km" });
        check(&[], register(Profile { rates: negative, ..profile() }), Err(rejection));
        let negative = Rates { per_tonne_minor: -1, ..profile().rates };
        let rejection = Rejection::RateOutOfRange { rate: "per_tonne", max: RATE_PER_TONNE_MINOR_MAX };
        check(&[], register(Profile { rates: negative, ..profile() }), Err(rejection));
        let free = Rates { minimum_minor: 0, ..profile().rates };
        check(&[], register(Profile { rates: free, ..profile() }), Err(Rejection::MinimumChargeOutOfRange));
    }

    #[test]
    fn a_place_is_covered_within_the_radius_of_a_depot_in_a_served_country() {
        // One depot in Strasbourg, 150 km, serving France and Germany.
        let carrier = carrier(1, profile());
        let strasbourg = place_of("Strasbourg");
        let kehl = place_of("Kehl");
        assert!(carrier.covers(&strasbourg) && carrier.covers(&kehl));
        // Basel is about 113 km away, but Switzerland is not served.
        assert!(!carrier.covers(&place_of("Basel")));
        let swiss = Carrier {
            profile: Profile { countries: [Country::Fr, Country::De, Country::Ch].into(), ..profile() },
            ..carrier.clone()
        };
        assert!(swiss.covers(&place_of("Basel")));
        // Paris is served (France) but about 400 km away.
        let paris = place("Paris").expect("Paris is in the table");
        assert!(!carrier.covers(&Place { point: paris.point, country: paris.country }));
    }

    #[test]
    fn vehicles_fitting_a_load() {
        let carrier = carrier(1, profile());
        let load = |mass_kg, pallets, dangerous_goods| Load { mass_kg, pallets, dangerous_goods };
        let ids = |load: Load| carrier.vehicles_fitting(&load).map(|vehicle| vehicle.id).collect::<Vec<_>>();
        // The profile: a van (1.2 t, 6 places), a rigid truck (12 t, 18 places), an ADR rigid
        // truck (10 t, 15 places).
        assert_eq!(ids(load(Some(1000), 3, false)), [id(20), id(21), id(22)]);
        assert_eq!(ids(load(Some(5000), 3, false)), [id(21), id(22)]);
        assert_eq!(ids(load(Some(1000), 16, false)), [id(21)]);
        assert_eq!(ids(load(Some(1000), 3, true)), [id(22)]);
        assert_eq!(ids(load(Some(11_000), 3, true)), Vec::<Uuid>::new());
        assert_eq!(ids(load(None, 10, false)), [id(21), id(22)], "unknown mass: places and equipment");
    }
}
