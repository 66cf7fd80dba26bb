//! The territory read model: the facts of every context that figures, registers and supply
//! diagnoses are derived from, folded from the log with each context's own fold (the directory's
//! public part, the listings, the deals) and the shipments' story, kept in snapshots.

use std::collections::HashMap;

use symbiose_domain::lot::Place;
use symbiose_domain::{Quantity, Unit};
use symbiose_eventstore::RecordedEvent;
use symbiose_listings_contract::listing::{self, ListingState};
use symbiose_listings_contract::organization::{self, Organization, PermitKind};
use symbiose_logistics_contract::shipment::{self, PalletExchange};
use symbiose_matching_contract::deal::{self, Deal};
use uuid::Uuid;

use crate::areas::{self, Located};

/// The name the view's snapshot is kept under.
pub const SNAPSHOT_NAME: &str = "territory.view";
const ORGANIZATION_CATEGORY: &str = "organization";
const LISTING_CATEGORY: &str = "listing";
const DEAL_CATEGORY: &str = "deal";
const SHIPMENT_CATEGORY: &str = "shipment";

/// What a shipment's events say, as figures and registers need it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ShipmentFacts {
    pub shipment_id: Uuid,
    pub deal_id: Uuid,
    pub seller: Uuid,
    pub buyer: Uuid,
    pub carrier: Uuid,
    pub pickup: Place,
    pub delivery: Place,
    /// The town of the territories' table each end belongs to (`areas::town_index_of`), found
    /// once when the shipment is booked. A snapshot is read back by the build that wrote it
    /// only, so the index always names a town of the same table.
    pub pickup_town: Option<u16>,
    pub delivery_town: Option<u16>,
    /// The quantity expected, in the deal's unit.
    pub quantity: Quantity,
    pub hazardous: bool,
    pub prior_notification_number: Option<String>,
    /// The booked quote's road distance, in km; 0 without a quote.
    pub road_distance_km: f64,
    /// The booked quote's transport CO2, in kg CO2e; 0 without a quote.
    pub co2_kg: f64,
    pub booked_at_ms: i64,
    /// Weighed or counted at pickup, with when.
    pub picked_up: Option<(Quantity, i64)>,
    /// EUR pallets the seller handed over loaded at pickup.
    pub pallets_picked_up: Option<PalletExchange>,
    pub borders: Vec<(symbiose_domain::Country, i64)>,
    pub delivered: Option<Delivered>,
    /// When the buyer closed it, with what it accepted in the end (thousandths of the unit).
    pub closed: Option<(i64, i64)>,
}

/// A delivery as recorded at the receiver's.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Delivered {
    pub received: Quantity,
    pub accepted_milli: i64,
    pub refused_milli: i64,
    pub at_ms: i64,
}

impl ShipmentFacts {
    /// Where it was picked up.
    pub fn origin(&self) -> Located {
        Located::at(self.pickup.country, self.pickup_town)
    }

    /// Where it was delivered.
    pub fn destination(&self) -> Located {
        Located::at(self.delivery.country, self.delivery_town)
    }

    /// What was accepted in the end, in thousandths of the unit: the closing's figure, else the
    /// delivery's; 0 before delivery.
    pub fn accepted_milli(&self) -> i64 {
        match (self.closed, self.delivered) {
            (Some((_, accepted)), _) => accepted,
            (None, Some(delivered)) => delivered.accepted_milli,
            (None, None) => 0,
        }
    }

    /// The unit quantities are counted in.
    pub fn unit(&self) -> Unit {
        self.delivered.map_or(self.quantity.unit(), |delivered| delivered.received.unit())
    }
}

/// Every fact the territory context derives its answers from.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Facts {
    /// The directory's public part: names, identifiers, sites, roles, permits.
    pub organizations: HashMap<Uuid, Organization>,
    /// Offers and requests as their owners wrote them, with their state.
    pub listings: HashMap<Uuid, ListingState>,
    pub deals: HashMap<Uuid, Deal>,
    pub shipments: HashMap<Uuid, ShipmentFacts>,
    /// Shipment ids in the order they were booked: registers are chronological.
    pub shipment_order: Vec<Uuid>,
}

impl symbiose_shell::View for Facts {
    fn apply(&mut self, recorded: &RecordedEvent) {
        let outcome = match recorded.stream.category() {
            ORGANIZATION_CATEGORY => self.apply_organization(recorded),
            LISTING_CATEGORY => self.apply_listing(recorded),
            DEAL_CATEGORY => self.apply_deal(recorded),
            SHIPMENT_CATEGORY => self.apply_shipment(recorded),
            _ => Ok(()),
        };
        if let Err(error) = outcome {
            tracing::error!(position = %recorded.position, stream = %recorded.stream, %error, "territory view: skipping an event");
        }
    }
}

impl symbiose_shell::Snapshot for Facts {
    const NAME: &'static str = SNAPSHOT_NAME;

    fn encode(&self) -> Result<Vec<u8>, String> {
        symbiose_shell::snapshot::encode(self)
    }

    fn restored(&self, bytes: &[u8]) -> Result<Facts, String> {
        symbiose_shell::snapshot::decode(bytes)
    }
}

fn aggregate_id(recorded: &RecordedEvent) -> Result<Uuid, String> {
    recorded.stream.aggregate_id().ok_or_else(|| format!("{}: no aggregate id", recorded.stream))
}

impl Facts {
    fn apply_organization(&mut self, recorded: &RecordedEvent) -> Result<(), String> {
        let id = aggregate_id(recorded)?;
        let event = symbiose_listings_contract::decode_recorded_organization(recorded)?;
        organization::fold_public(&mut self.organizations, id, &event);
        Ok(())
    }

    fn apply_listing(&mut self, recorded: &RecordedEvent) -> Result<(), String> {
        let id = aggregate_id(recorded)?;
        let event = symbiose_listings_contract::decode_recorded_listing(recorded)?;
        let state = self.listings.remove(&id).unwrap_or_default();
        match listing::evolve(state, &event) {
            ListingState::Absent => {}
            state => {
                self.listings.insert(id, state);
            }
        }
        Ok(())
    }

    fn apply_deal(&mut self, recorded: &RecordedEvent) -> Result<(), String> {
        let id = aggregate_id(recorded)?;
        let event = symbiose_matching_contract::decode_recorded_deal(recorded)?;
        deal::fold(&mut self.deals, id, &event);
        Ok(())
    }

    fn apply_shipment(&mut self, recorded: &RecordedEvent) -> Result<(), String> {
        let id = aggregate_id(recorded)?;
        let stored = shipment::decode_recorded(recorded)?;
        if let shipment::Event::Booked { transport, at_ms, .. } = &stored.event {
            let (road_distance_km, co2_kg) =
                stored.quote.as_ref().map_or((0.0, 0.0), |quote| (quote.road_distance_km, quote.co2_kg));
            let facts = ShipmentFacts {
                shipment_id: id,
                deal_id: transport.deal_id,
                seller: transport.seller,
                buyer: transport.buyer,
                carrier: transport.carrier,
                pickup: transport.pickup,
                delivery: transport.delivery,
                pickup_town: areas::town_index_of(&transport.pickup),
                delivery_town: areas::town_index_of(&transport.delivery),
                quantity: transport.quantity,
                hazardous: transport.hazardous,
                prior_notification_number: transport.prior_notification_number.clone(),
                road_distance_km,
                co2_kg,
                booked_at_ms: *at_ms,
                picked_up: None,
                pallets_picked_up: None,
                borders: Vec::new(),
                delivered: None,
                closed: None,
            };
            if self.shipments.insert(id, facts).is_none() {
                self.shipment_order.push(id);
            }
            return Ok(());
        }
        let Some(facts) = self.shipments.get_mut(&id) else { return Ok(()) };
        match &stored.event {
            shipment::Event::PickedUp(pickup) => {
                facts.picked_up = Some((pickup.quantity, pickup.at_ms));
                facts.pallets_picked_up = pickup.pallets;
            }
            shipment::Event::BorderCrossed(crossing) => {
                facts.borders.push((crossing.country, crossing.at_ms))
            }
            shipment::Event::Delivered(delivery) => {
                facts.delivered = Some(Delivered {
                    received: delivery.received,
                    accepted_milli: delivery.accepted_milli,
                    refused_milli: delivery.refused_milli,
                    at_ms: delivery.at_ms,
                })
            }
            shipment::Event::Closed { accepted_milli, at_ms, .. } => {
                facts.closed = Some((*at_ms, *accepted_milli))
            }
            shipment::Event::Booked { .. } => {}
        }
        Ok(())
    }

    /// The number of the carrier's transport registration (in France, its *récépissé de
    /// déclaration*), when it declared one.
    pub fn carrier_receipt(&self, carrier: Uuid) -> Option<&str> {
        self.organizations.get(&carrier).and_then(|organization| {
            organization
                .permits
                .iter()
                .find(|permit| permit.kind == PermitKind::Transport)
                .map(|permit| permit.number.as_str())
        })
    }

    /// The listing `id` as its events made it.
    pub fn listing(&self, id: Uuid) -> Option<&listing::Listing> {
        self.listings.get(&id).and_then(ListingState::listing)
    }
}
