//! The chain of custody of a lot, derived from the events of other contexts (never written by a
//! caller): where the listing was published and by whom, each deal agreed on it, each shipment's
//! pickup, border crossings and delivery with its road distance and transport CO2, and the
//! recovery operation the receiver applies once it accepted the lot.
//!
//! Nothing personal goes in: an organization by its name and a place by the nearest town of the
//! reference table, never a site's address.

use std::collections::HashMap;

use symbiose_domain::geo::places;
use symbiose_domain::{Country, GeoPoint, MaterialFamily, lot::Place};
use symbiose_passports_contract::passport::Subject;
use uuid::Uuid;

/// Farthest a point is from a town of the reference table and still named after it, in metres.
const TOWN_RADIUS_M: u64 = 30_000;
/// Most deals of one listing, and shipments of one deal, a chain follows: a recurring flow has
/// many, and a page shows the latest.
pub const STEPS_MAX: usize = 64;
/// Most steps of a chain: the latest.
pub const CHAIN_STEPS_MAX: usize = 100;

/// The town of the reference table nearest to `point`, within [`TOWN_RADIUS_M`].
pub fn town_near(point: &GeoPoint) -> Option<&'static str> {
    places()
        .iter()
        .map(|place| (place.point.distance_m(point), place.name))
        .filter(|(distance, _)| *distance <= TOWN_RADIUS_M)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, name)| name)
}

/// What happened to a lot, in the order it happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum StepKind {
    /// Offered on the marketplace by its producer.
    Origin,
    /// A buyer and the producer agreed a deal on it.
    Deal,
    /// A carrier picked it up.
    Pickup,
    /// It crossed into another country.
    Border,
    /// It arrived at the receiver's.
    Delivery,
    /// The receiver accepted it for recovery.
    Recovery,
}

impl StepKind {
    pub fn key(self) -> &'static str {
        match self {
            StepKind::Origin => "origin",
            StepKind::Deal => "deal",
            StepKind::Pickup => "pickup",
            StepKind::Border => "border",
            StepKind::Delivery => "delivery",
            StepKind::Recovery => "recovery",
        }
    }
}

/// One step of a chain of custody.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Step {
    pub kind: StepKind,
    pub at_ms: i64,
    pub town: Option<String>,
    pub country: Option<Country>,
    /// The road distance of a delivery, in metres.
    pub distance_m: u64,
    /// The transport CO2 of a delivery, in grams of CO2 equivalent.
    pub co2_g: u64,
    /// The country a border crossing entered.
    pub border_country: Option<Country>,
    /// The recovery operation (Annex II of Directive 2008/98/EC) of a recovery.
    pub recovery_operation: Option<String>,
    /// The organization that acted, by name.
    pub organization: Option<String>,
}

impl Step {
    fn new(kind: StepKind, at_ms: i64) -> Step {
        Step {
            kind,
            at_ms,
            town: None,
            country: None,
            distance_m: 0,
            co2_g: 0,
            border_country: None,
            recovery_operation: None,
            organization: None,
        }
    }

    fn at(mut self, place: &Place) -> Step {
        self.town = town_near(&place.point).map(str::to_owned);
        self.country = Some(place.country);
        self
    }
}

/// What custody keeps of a listing.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ListingFacts {
    pub owner: Uuid,
    pub place: Place,
    pub family: MaterialFamily,
    pub created_at_ms: i64,
}

/// What custody keeps of a deal.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DealFacts {
    pub offer: Uuid,
    pub buyer: Uuid,
    pub family: MaterialFamily,
    pub delivery: Place,
    pub agreed_at_ms: i64,
    pub cancelled: bool,
}

/// What custody keeps of a shipment.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ShipmentFacts {
    pub deal: Uuid,
    pub buyer: Uuid,
    pub carrier: Uuid,
    pub pickup: Place,
    pub delivery: Place,
    pub road_distance_m: u64,
    pub co2_g: u64,
    pub picked_up_at_ms: Option<i64>,
    pub borders: Vec<(Country, i64)>,
    pub delivered_at_ms: Option<i64>,
    /// When the buyer accepted it, and how much (in thousandths of the deal's unit).
    pub closed: Option<(i64, i64)>,
}

/// The facts of other contexts custody is drawn from.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Custody {
    pub organizations: HashMap<Uuid, String>,
    pub listings: HashMap<Uuid, ListingFacts>,
    pub deals: HashMap<Uuid, DealFacts>,
    pub deals_of_offer: HashMap<Uuid, Vec<Uuid>>,
    pub shipments: HashMap<Uuid, ShipmentFacts>,
    pub shipments_of_deal: HashMap<Uuid, Vec<Uuid>>,
}

impl Custody {
    fn name(&self, organization: Uuid) -> Option<String> {
        self.organizations.get(&organization).cloned()
    }

    /// Who may make a passport of `subject`: the listing's owner, or the receiver of a delivered
    /// shipment; `None` while the subject is unknown or, for a shipment, not delivered yet.
    pub fn owner_of(&self, subject: Subject) -> Option<Uuid> {
        match subject {
            Subject::Listing(listing) => self.listings.get(&listing).map(|listing| listing.owner),
            Subject::Delivery(shipment) => {
                let shipment = self.shipments.get(&shipment)?;
                shipment.delivered_at_ms.map(|_| shipment.buyer)
            }
        }
    }

    /// The family of the lot `subject` names, if known.
    pub fn family_of(&self, subject: Subject) -> Option<MaterialFamily> {
        match subject {
            Subject::Listing(listing) => self.listings.get(&listing).map(|listing| listing.family),
            Subject::Delivery(shipment) => {
                let deal = self.shipments.get(&shipment)?.deal;
                self.deals.get(&deal).map(|deal| deal.family)
            }
        }
    }

    /// The chain of custody of `subject`, oldest first: for a listing, its origin and every deal
    /// and shipment of it (the latest [`STEPS_MAX`] deals); for a delivery, its listing's origin
    /// and that one shipment's story.
    pub fn chain(&self, subject: Subject) -> Vec<Step> {
        let (listing, deals) = match subject {
            Subject::Listing(listing) => {
                let deals = self.deals_of_offer.get(&listing).cloned().unwrap_or_default();
                let skip = deals.len().saturating_sub(STEPS_MAX);
                (Some(listing), deals.into_iter().skip(skip).map(|deal| (deal, None)).collect::<Vec<_>>())
            }
            Subject::Delivery(shipment) => match self.shipments.get(&shipment) {
                Some(facts) => {
                    (self.deals.get(&facts.deal).map(|deal| deal.offer), vec![(facts.deal, Some(shipment))])
                }
                None => (None, Vec::new()),
            },
        };
        let mut steps = Vec::new();
        if let Some(facts) = listing.and_then(|listing| self.listings.get(&listing)) {
            let mut origin = Step::new(StepKind::Origin, facts.created_at_ms).at(&facts.place);
            origin.organization = self.name(facts.owner);
            steps.push(origin);
        }
        for (deal_id, only) in deals {
            let Some(deal) = self.deals.get(&deal_id).filter(|deal| !deal.cancelled) else { continue };
            let mut agreed = Step::new(StepKind::Deal, deal.agreed_at_ms).at(&deal.delivery);
            agreed.organization = self.name(deal.buyer);
            steps.push(agreed);
            let shipments: Vec<Uuid> = self
                .shipments_of_deal
                .get(&deal_id)
                .into_iter()
                .flatten()
                .copied()
                .filter(|id| only.is_none_or(|only| only == *id))
                .collect();
            // The latest shipments of a recurring flow.
            let skip = shipments.len().saturating_sub(STEPS_MAX);
            for shipment_id in shipments.into_iter().skip(skip) {
                let Some(shipment) = self.shipments.get(&shipment_id) else { continue };
                self.shipment_steps(shipment, deal, &mut steps);
            }
        }
        steps.sort_by_key(|step| step.at_ms);
        let skip = steps.len().saturating_sub(CHAIN_STEPS_MAX);
        steps.drain(..skip);
        steps
    }

    fn shipment_steps(&self, shipment: &ShipmentFacts, deal: &DealFacts, steps: &mut Vec<Step>) {
        if let Some(at_ms) = shipment.picked_up_at_ms {
            let mut pickup = Step::new(StepKind::Pickup, at_ms).at(&shipment.pickup);
            pickup.organization = self.name(shipment.carrier);
            steps.push(pickup);
        }
        for (country, at_ms) in &shipment.borders {
            let mut border = Step::new(StepKind::Border, *at_ms);
            border.border_country = Some(*country);
            border.country = Some(*country);
            steps.push(border);
        }
        if let Some(at_ms) = shipment.delivered_at_ms {
            let mut delivery = Step::new(StepKind::Delivery, at_ms).at(&shipment.delivery);
            delivery.distance_m = shipment.road_distance_m;
            delivery.co2_g = shipment.co2_g;
            delivery.organization = self.name(shipment.buyer);
            steps.push(delivery);
        }
        if let Some((at_ms, accepted_milli)) = shipment.closed
            && accepted_milli > 0
        {
            let mut recovery = Step::new(StepKind::Recovery, at_ms).at(&shipment.delivery);
            recovery.recovery_operation = Some(deal.family.recovery_operation().to_owned());
            recovery.organization = self.name(shipment.buyer);
            steps.push(recovery);
        }
    }
}

#[cfg(test)]
mod tests {
    use symbiose_domain::geo::place;

    use super::*;

    fn at(town: &str) -> Place {
        let town = place(town).expect("a town of the table");
        Place { point: town.point, country: town.country }
    }

    fn custody() -> Custody {
        let (producer, recycler, carrier) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
        let (listing, deal, shipment) = (Uuid::from_u128(10), Uuid::from_u128(20), Uuid::from_u128(30));
        let mut custody = Custody::default();
        custody.organizations.insert(producer, "Plasturgie Mulhouse".to_owned());
        custody.organizations.insert(recycler, "Regenerat Freiburg".to_owned());
        custody.organizations.insert(carrier, "Transports Rhin".to_owned());
        custody.listings.insert(
            listing,
            ListingFacts {
                owner: producer,
                place: at("Mulhouse"),
                family: MaterialFamily::Plastics,
                created_at_ms: 1,
            },
        );
        custody.deals.insert(
            deal,
            DealFacts {
                offer: listing,
                buyer: recycler,
                family: MaterialFamily::Plastics,
                delivery: at("Freiburg im Breisgau"),
                agreed_at_ms: 2,
                cancelled: false,
            },
        );
        custody.deals_of_offer.insert(listing, vec![deal]);
        custody.shipments.insert(
            shipment,
            ShipmentFacts {
                deal,
                buyer: recycler,
                carrier,
                pickup: at("Mulhouse"),
                delivery: at("Freiburg im Breisgau"),
                road_distance_m: 71_000,
                co2_g: 7_455,
                picked_up_at_ms: Some(3),
                borders: vec![(Country::De, 4)],
                delivered_at_ms: Some(5),
                closed: Some((6, 1_000_000)),
            },
        );
        custody.shipments_of_deal.insert(deal, vec![shipment]);
        custody
    }

    #[test]
    fn a_delivered_lot_tells_where_it_came_from_how_it_travelled_and_how_it_is_recovered() {
        let custody = custody();
        let chain = custody.chain(Subject::Delivery(Uuid::from_u128(30)));
        let kinds: Vec<&str> = chain.iter().map(|step| step.kind.key()).collect();
        assert_eq!(kinds, ["origin", "deal", "pickup", "border", "delivery", "recovery"]);
        assert_eq!(chain[0].town.as_deref(), Some("Mulhouse"));
        assert_eq!(chain[0].organization.as_deref(), Some("Plasturgie Mulhouse"));
        assert_eq!(chain[3].border_country, Some(Country::De));
        assert_eq!((chain[4].distance_m, chain[4].co2_g), (71_000, 7_455));
        assert_eq!(chain[4].town.as_deref(), Some("Freiburg im Breisgau"));
        assert_eq!(chain[5].recovery_operation.as_deref(), Some("R3"));
        assert_eq!(custody.chain(Subject::Listing(Uuid::from_u128(10))), chain);
    }

    #[test]
    fn only_the_producer_or_the_receiver_of_a_delivery_owns_its_passport() {
        let mut custody = custody();
        assert_eq!(custody.owner_of(Subject::Listing(Uuid::from_u128(10))), Some(Uuid::from_u128(1)));
        assert_eq!(custody.owner_of(Subject::Delivery(Uuid::from_u128(30))), Some(Uuid::from_u128(2)));
        custody.shipments.get_mut(&Uuid::from_u128(30)).expect("shipment").delivered_at_ms = None;
        assert_eq!(custody.owner_of(Subject::Delivery(Uuid::from_u128(30))), None, "not delivered yet");
        assert_eq!(custody.owner_of(Subject::Listing(Uuid::from_u128(99))), None);
    }

    #[test]
    fn a_cancelled_deal_leaves_the_chain_and_a_point_far_from_any_town_has_none() {
        let mut custody = custody();
        custody.deals.get_mut(&Uuid::from_u128(20)).expect("deal").cancelled = true;
        let chain = custody.chain(Subject::Listing(Uuid::from_u128(10)));
        assert_eq!(chain.iter().map(|step| step.kind).collect::<Vec<_>>(), [StepKind::Origin]);
        let atlantic = GeoPoint::new(45.0, -30.0).expect("a point");
        assert_eq!(town_near(&atlantic), None);
    }
}
