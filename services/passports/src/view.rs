//! The passports' read model: every passport and set of instructions as their events made them,
//! and the facts of other contexts their chains of custody are drawn from (organizations by
//! name, offers, deals, shipments), followed from the log and kept in snapshots.

use std::collections::HashMap;

use symbiose_domain::{MaterialFamily, WasteCode};
use symbiose_eventstore::RecordedEvent;
use symbiose_listings_contract::listing::{self, Side};
use symbiose_logistics_contract::shipment;
use symbiose_matching_contract::deal;
use symbiose_passports_contract::instructions::Scope;
use symbiose_passports_contract::passport::Subject;
use symbiose_passports_contract::{INSTRUCTIONS_CATEGORY, PASSPORT_CATEGORY};
use uuid::Uuid;

use crate::custody::{Custody, DealFacts, ListingFacts, ShipmentFacts};
use crate::instructions::{self, Instructions, Published};
use crate::passport::{self, Passport, Record, Stage};

/// Most instructions a passport shows.
pub const INSTRUCTIONS_SHOWN_MAX: usize = 20;
/// The name the view's snapshot is kept under.
pub const SNAPSHOT_NAME: &str = "passports.view";
const ORGANIZATION_CATEGORY: &str = "organization";
const LISTING_CATEGORY: &str = "listing";
const DEAL_CATEGORY: &str = "deal";
const SHIPMENT_CATEGORY: &str = "shipment";

/// A passport with the version of its stream and the position of its last event.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HeldPassport {
    pub record: Record,
    pub version: u64,
    pub position: u64,
}

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct PassportsView {
    pub passports: HashMap<Uuid, HeldPassport>,
    /// Every passport's id, oldest first: the order pages are listed in.
    pub order: Vec<Uuid>,
    pub instructions: HashMap<Uuid, Published>,
    /// Every set of instructions' id, oldest first: the order pages are listed in.
    pub instructions_order: Vec<Uuid>,
    pub custody: Custody,
}

impl symbiose_shell::View for PassportsView {
    fn apply(&mut self, recorded: &RecordedEvent) {
        let outcome = match recorded.stream.category() {
            PASSPORT_CATEGORY => self.apply_passport(recorded),
            INSTRUCTIONS_CATEGORY => self.apply_instructions(recorded),
            ORGANIZATION_CATEGORY => self.apply_organization(recorded),
            LISTING_CATEGORY => self.apply_listing(recorded),
            DEAL_CATEGORY => self.apply_deal(recorded),
            SHIPMENT_CATEGORY => self.apply_shipment(recorded),
            _ => Ok(()),
        };
        if let Err(error) = outcome {
            tracing::error!(position = %recorded.position, stream = %recorded.stream, %error, "passports view: skipping an event");
        }
    }
}

impl symbiose_shell::Snapshot for PassportsView {
    const NAME: &'static str = SNAPSHOT_NAME;

    fn encode(&self) -> Result<Vec<u8>, String> {
        symbiose_shell::snapshot::encode(self)
    }

    fn restored(&self, bytes: &[u8]) -> Result<PassportsView, String> {
        symbiose_shell::snapshot::decode(bytes)
    }
}

fn aggregate_id(recorded: &RecordedEvent) -> Result<Uuid, String> {
    recorded.stream.aggregate_id().ok_or_else(|| format!("{}: no aggregate id", recorded.stream))
}

impl PassportsView {
    fn apply_passport(&mut self, recorded: &RecordedEvent) -> Result<(), String> {
        let id = aggregate_id(recorded)?;
        let event = symbiose_passports_contract::passport::decode_recorded(recorded)?;
        let held = self.passports.remove(&id);
        let new = held.is_none();
        let state = Passport(held.map(|held| held.record));
        match passport::evolve(state, &event).0 {
            Some(record) => {
                if new {
                    self.order.push(id);
                }
                self.passports.insert(
                    id,
                    HeldPassport { record, version: recorded.version, position: recorded.position.as_u64() },
                );
            }
            None => tracing::warn!(stream = %recorded.stream, "passports view: an event before its passport"),
        }
        Ok(())
    }

    fn apply_instructions(&mut self, recorded: &RecordedEvent) -> Result<(), String> {
        let id = aggregate_id(recorded)?;
        let event = symbiose_passports_contract::instructions::decode_recorded(recorded)?;
        let state = Instructions(self.instructions.remove(&id));
        if let Some(published) = instructions::evolve(state, &event).0
            && self.instructions.insert(id, published).is_none()
        {
            self.instructions_order.push(id);
        }
        Ok(())
    }

    fn apply_organization(&mut self, recorded: &RecordedEvent) -> Result<(), String> {
        let id = aggregate_id(recorded)?;
        if let symbiose_listings_contract::organization::Event::Registered { legal_name, .. } =
            symbiose_listings_contract::decode_recorded_organization(recorded)?
        {
            self.custody.organizations.insert(id, legal_name);
        }
        Ok(())
    }

    fn apply_listing(&mut self, recorded: &RecordedEvent) -> Result<(), String> {
        let id = aggregate_id(recorded)?;
        match symbiose_listings_contract::decode_recorded_listing(recorded)? {
            listing::Event::Created { owner, terms, place, .. } if terms.side == Side::Offer => {
                let facts = ListingFacts {
                    owner,
                    place,
                    family: terms.family,
                    created_at_ms: recorded.timestamp_ms as i64,
                };
                self.custody.listings.insert(id, facts);
            }
            listing::Event::Amended { place, .. } => {
                if let Some(facts) = self.custody.listings.get_mut(&id) {
                    facts.place = place;
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn apply_deal(&mut self, recorded: &RecordedEvent) -> Result<(), String> {
        let id = aggregate_id(recorded)?;
        match symbiose_matching_contract::decode_recorded_deal(recorded)? {
            deal::Event::Agreed(deal) => {
                let facts = DealFacts {
                    offer: deal.offer_id,
                    buyer: deal.buyer,
                    family: deal.family,
                    delivery: deal.delivery,
                    agreed_at_ms: deal.agreed_at_ms,
                    cancelled: false,
                };
                if self.custody.deals.insert(id, facts).is_none() {
                    self.custody.deals_of_offer.entry(deal.offer_id).or_default().push(id);
                }
            }
            deal::Event::Cancelled { .. } => {
                if let Some(facts) = self.custody.deals.get_mut(&id) {
                    facts.cancelled = true;
                }
            }
        }
        Ok(())
    }

    fn apply_shipment(&mut self, recorded: &RecordedEvent) -> Result<(), String> {
        let id = aggregate_id(recorded)?;
        let stored = shipment::decode_recorded(recorded)?;
        if let shipment::Event::Booked { transport, .. } = &stored.event {
            let (road_distance_m, co2_g) = stored.quote.as_ref().map_or((0, 0), |quote| {
                ((quote.road_distance_km * 1000.0).round() as u64, (quote.co2_kg * 1000.0).round() as u64)
            });
            let facts = ShipmentFacts {
                deal: transport.deal_id,
                buyer: transport.buyer,
                carrier: transport.carrier,
                pickup: transport.pickup,
                delivery: transport.delivery,
                road_distance_m,
                co2_g,
                picked_up_at_ms: None,
                borders: Vec::new(),
                delivered_at_ms: None,
                closed: None,
            };
            if self.custody.shipments.insert(id, facts).is_none() {
                self.custody.shipments_of_deal.entry(transport.deal_id).or_default().push(id);
            }
            return Ok(());
        }
        let Some(facts) = self.custody.shipments.get_mut(&id) else { return Ok(()) };
        match &stored.event {
            shipment::Event::PickedUp(pickup) => facts.picked_up_at_ms = Some(pickup.at_ms),
            shipment::Event::BorderCrossed(crossing) => {
                facts.borders.push((crossing.country, crossing.at_ms))
            }
            shipment::Event::Delivered(delivery) => facts.delivered_at_ms = Some(delivery.at_ms),
            shipment::Event::Closed { accepted_milli, at_ms, .. } => {
                facts.closed = Some((*at_ms, *accepted_milli))
            }
            shipment::Event::Booked { .. } => {}
        }
        Ok(())
    }

    /// The published instructions that apply to a lot of `family` (and `waste_code`): those of
    /// its waste code first, then those of its family, the latest first within each, at most [`INSTRUCTIONS_SHOWN_MAX`].
    pub fn instructions_for(&self, family: MaterialFamily, waste_code: Option<WasteCode>) -> Vec<&Published> {
        let mut applying: Vec<&Published> = self
            .instructions
            .values()
            .filter(|published| published.withdrawn_at_ms.is_none())
            .filter(|published| match &published.scope {
                Scope::Family(scope) => *scope == family,
                Scope::WasteCode(scope) => Some(*scope) == waste_code,
            })
            .collect();
        applying.sort_by_key(|published| {
            (
                matches!(published.scope, Scope::Family(_)),
                std::cmp::Reverse(published.published_at_ms),
                published.instructions_id,
            )
        });
        applying.truncate(INSTRUCTIONS_SHOWN_MAX);
        applying
    }

    /// The public passport a GS1 Digital Link names: of that GTIN (and batch, when given), one
    /// in use before a withdrawn one, the first published among them.
    pub fn by_digital_link(&self, gtin14: &str, batch: Option<&str>) -> Option<&HeldPassport> {
        self.passports
            .values()
            .filter(|held| held.record.is_public())
            .filter(|held| held.record.declaration.gtin.as_deref() == Some(gtin14))
            .filter(|held| batch.is_none_or(|batch| held.record.declaration.batch.as_deref() == Some(batch)))
            .min_by_key(|held| {
                (held.record.stage != Stage::Published, held.record.published_at_ms, held.record.passport_id)
            })
    }

    /// Another organization's passport declaring this GTIN and batch, if any: a Digital Link
    /// names one organization's lots.
    pub fn digital_link_holder(
        &self,
        gtin14: &str,
        batch: Option<&str>,
        owner: Uuid,
    ) -> Option<&HeldPassport> {
        self.passports.values().find(|held| {
            held.record.owner != owner
                && held.record.declaration.gtin.as_deref() == Some(gtin14)
                && held.record.declaration.batch.as_deref() == batch
        })
    }

    /// The subject's owner, for the rules of who may make a passport of it.
    pub fn owner_of(&self, subject: Subject) -> Option<Uuid> {
        self.custody.owner_of(subject)
    }
}
