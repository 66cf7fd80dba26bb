//! The logistics service's own read model, fed by the log: the organizations (for roles,
//! permits and the Annex VII parties), the deals matching agreed or cancelled, the carriers'
//! profiles, the transport requests, the shipments with their history, and the pallet
//! accounts. Rebuilt from the first event at every start; never written to by commands.

use std::collections::{HashMap, HashSet};

use symbiose_domain::{Country, Quantity};
use symbiose_eventstore::RecordedEvent;
use symbiose_listings_contract::organization::{Organization, PermitKind};
use symbiose_matching_contract::deal::Deal;
use symbiose_settlement_contract::ESCROW_HELD;
use symbiose_shell::aggregate_id;
use uuid::Uuid;

use crate::carrier::{self, Carrier, CarrierState};
use crate::codec;
use crate::pallets::{self, Fact, PalletLedger};
use crate::shipment::{self, ShipmentState};
use crate::transport::{self, OfferedQuote, TransportState};

pub(crate) const CARRIER_CATEGORY: &str = "carrier";
pub(crate) const TRANSPORT_CATEGORY: &str = "transport";
pub(crate) const SHIPMENT_CATEGORY: &str = "shipment";
pub(crate) const PALLET_ACCOUNT_CATEGORY: &str = "pallet_account";
const ORGANIZATION_CATEGORY: &str = "organization";
/// Most quotes a transport lists: the cheapest.
pub const QUOTES_MAX: usize = 100;
const DEAL_CATEGORY: &str = "deal";
/// Settlement's escrow of a deal: its pickup waits for the payment to be held.
const ESCROW_CATEGORY: &str = "escrow";

/// An aggregate as the view holds it, with its version.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Held<T> {
    pub value: T,
    pub version: u64,
}

/// One step of a shipment's history, as the API shows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Step {
    pub state: &'static str,
    pub at_ms: i64,
    pub country: Option<Country>,
    pub quantity: Option<Quantity>,
    pub pallets: Option<shipment::PalletExchange>,
    pub note: String,
}

/// A [`Step`] as a snapshot holds it: its state as text, one of [`STEP_STATES`] when read.
#[derive(serde::Deserialize)]
struct SavedStep {
    state: String,
    at_ms: i64,
    country: Option<Country>,
    quantity: Option<Quantity>,
    pallets: Option<shipment::PalletExchange>,
    note: String,
}

impl<'de> serde::Deserialize<'de> for Step {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Step, D::Error> {
        let saved = <SavedStep as serde::Deserialize>::deserialize(deserializer)?;
        let state = STEP_STATES
            .into_iter()
            .find(|known| *known == saved.state)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown step state {:?}", saved.state)))?;
        let SavedStep { at_ms, country, quantity, pallets, note, .. } = saved;
        Ok(Step { state, at_ms, country, quantity, pallets, note })
    }
}

/// A shipment with what the view adds: its history and the quote it was booked on.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct HeldShipment {
    pub state: ShipmentState,
    pub version: u64,
    pub history: Vec<Step>,
    pub quote: Option<OfferedQuote>,
}

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct View {
    organizations: HashMap<Uuid, Organization>,
    deals: HashMap<Uuid, Deal>,
    carriers: HashMap<Uuid, Held<Carrier>>,
    transports: HashMap<Uuid, Held<TransportState>>,
    shipments: HashMap<Uuid, HeldShipment>,
    shipment_of_deal: HashMap<Uuid, Uuid>,
    pallets: PalletLedger,
    /// Settlements applied, by id, so each is counted once.
    settlements: HashMap<Uuid, pallets::Settlement>,
    /// The deals whose payment settlement holds in escrow.
    funded: HashSet<Uuid>,
}

impl symbiose_shell::Snapshot for View {
    const NAME: &'static str = "logistics.view";

    fn encode(&self) -> Result<Vec<u8>, String> {
        symbiose_shell::snapshot::encode(self)
    }

    fn restored(&self, bytes: &[u8]) -> Result<View, String> {
        symbiose_shell::snapshot::decode(bytes)
    }
}

impl symbiose_shell::View for View {
    /// Applies one stored event; events of other streams are skipped. An event that does not
    /// decode is logged and skipped, so one cannot stop the view.
    fn apply(&mut self, recorded: &RecordedEvent) {
        let outcome = match recorded.stream.category() {
            ORGANIZATION_CATEGORY => {
                symbiose_listings_contract::fold_public_recorded(&mut self.organizations, recorded)
            }
            DEAL_CATEGORY => symbiose_matching_contract::fold_recorded_deal(&mut self.deals, recorded),
            CARRIER_CATEGORY => self.apply_carrier(recorded),
            TRANSPORT_CATEGORY => self.apply_transport(recorded),
            SHIPMENT_CATEGORY => self.apply_shipment(recorded),
            PALLET_ACCOUNT_CATEGORY => self.apply_settlement(recorded),
            ESCROW_CATEGORY if recorded.event_type == ESCROW_HELD => aggregate_id(recorded).map(|deal| {
                self.funded.insert(deal);
            }),
            _ => Ok(()),
        };
        if let Err(error) = outcome {
            tracing::error!(position = %recorded.position, stream = %recorded.stream, %error, "logistics view: skipping an event");
        }
    }
}

impl View {
    fn apply_carrier(&mut self, recorded: &RecordedEvent) -> Result<(), String> {
        let id = aggregate_id(recorded)?;
        let event = codec::decode_recorded_carrier_event(id, recorded)?;
        let state = self
            .carriers
            .remove(&id)
            .map_or(CarrierState::Absent, |held| CarrierState::Registered(Box::new(held.value)));
        if let CarrierState::Registered(carrier) = carrier::evolve(state, &event) {
            self.carriers.insert(id, Held { value: *carrier, version: recorded.version });
        }
        Ok(())
    }

    fn apply_transport(&mut self, recorded: &RecordedEvent) -> Result<(), String> {
        let id = aggregate_id(recorded)?;
        let event = codec::decode_recorded_transport_event(recorded)?;
        let state = self.transports.remove(&id).map_or(TransportState::Absent, |held| held.value);
        self.transports
            .insert(id, Held { value: transport::evolve(state, &event), version: recorded.version });
        Ok(())
    }

    fn apply_shipment(&mut self, recorded: &RecordedEvent) -> Result<(), String> {
        let id = aggregate_id(recorded)?;
        let stored = codec::decode_recorded_shipment_event(recorded)?;
        let held = self.shipments.remove(&id);
        let (state, mut history, mut quote) = match held {
            Some(held) => (held.state, held.history, held.quote),
            None => (ShipmentState::Absent, Vec::new(), None),
        };
        if stored.quote.is_some() {
            quote = stored.quote;
        }
        let state = shipment::evolve(state, &stored.event);
        if let Some(shipment) = state.shipment() {
            if let Some(exchange) = pallets::exchange_of(shipment, &stored.event) {
                self.pallets.apply(&Fact::Exchanged(exchange));
            }
            self.shipment_of_deal.insert(shipment.transport.deal_id, id);
            history.push(step_of(&stored.event));
        }
        self.shipments.insert(id, HeldShipment { state, version: recorded.version, history, quote });
        Ok(())
    }

    fn apply_settlement(&mut self, recorded: &RecordedEvent) -> Result<(), String> {
        let settlement = codec::decode_recorded_settlement(recorded)?;
        if self.settlements.insert(settlement.settlement_id, settlement).is_none() {
            self.pallets.apply(&Fact::Settled(settlement));
        }
        Ok(())
    }

    pub fn organization(&self, id: Uuid) -> Option<&Organization> {
        self.organizations.get(&id)
    }

    /// Whether `organization` holds a valid transport permit allowing dangerous goods.
    pub fn may_carry_dangerous_goods(&self, organization: Uuid, now_ms: i64) -> bool {
        self.organizations.get(&organization).is_some_and(|organization| {
            organization.permits.iter().any(|permit| {
                permit.kind == PermitKind::Transport
                    && permit.dangerous_goods_allowed
                    && permit.valid_until_ms > now_ms
            })
        })
    }

    pub fn deal(&self, id: Uuid) -> Option<&Deal> {
        self.deals.get(&id)
    }

    pub fn carrier(&self, id: Uuid) -> Option<&Held<Carrier>> {
        self.carriers.get(&id)
    }

    pub fn transport(&self, deal: Uuid) -> Option<&Held<TransportState>> {
        self.transports.get(&deal)
    }

    pub fn shipment(&self, id: Uuid) -> Option<&HeldShipment> {
        self.shipments.get(&id)
    }

    /// Whether settlement holds the payment of `deal` in escrow.
    pub fn is_funded(&self, deal: Uuid) -> bool {
        self.funded.contains(&deal)
    }

    pub fn shipment_of_deal(&self, deal: Uuid) -> Option<Uuid> {
        self.shipment_of_deal.get(&deal).copied()
    }

    /// The settlement `id`, if applied.
    pub fn settlement(&self, id: Uuid) -> Option<&pallets::Settlement> {
        self.settlements.get(&id)
    }

    pub fn pallets(&self) -> &PalletLedger {
        &self.pallets
    }

    /// Every quote of the transport of `deal` still valid at `now_ms`: the automatic ones of
    /// every carrier that can carry the load, and the carriers' own prices, cheapest first.
    pub fn quotes(&self, deal: Uuid, now_ms: i64) -> Vec<OfferedQuote> {
        let Some(request) = self.transports.get(&deal).and_then(|held| held.value.request()) else {
            return Vec::new();
        };
        let mut quotes: Vec<OfferedQuote> = self
            .carriers
            .values()
            .filter(|held| {
                held.value.organization != request.deal.seller
                    && held.value.organization != request.deal.buyer
            })
            .filter_map(|held| {
                let may_carry = self.may_carry_dangerous_goods(held.value.organization, now_ms);
                transport::automatic_quote(request, &held.value, may_carry, now_ms)
            })
            .chain(request.submitted.iter().cloned())
            .filter(|quote| quote.is_valid_at(now_ms))
            .collect();
        quotes.sort_by(|a, b| a.price.minor().cmp(&b.price.minor()).then(a.id.cmp(&b.id)));
        quotes.truncate(QUOTES_MAX);
        quotes
    }
}

/// The names of a shipment's steps, as [`step_of`] gives them.
const STEP_STATES: [&str; 5] = ["booked", "picked up", "in transit", "delivered", "closed"];

fn step_of(event: &shipment::Event) -> Step {
    let step = |state, at_ms| Step {
        state,
        at_ms,
        country: None,
        quantity: None,
        pallets: None,
        note: String::new(),
    };
    match event {
        shipment::Event::Booked { at_ms, .. } => step(STEP_STATES[0], *at_ms),
        shipment::Event::PickedUp(pickup) => Step {
            quantity: Some(pickup.quantity),
            pallets: pickup.pallets,
            ..step(STEP_STATES[1], pickup.at_ms)
        },
        shipment::Event::BorderCrossed(crossing) => {
            Step { country: Some(crossing.country), ..step(STEP_STATES[2], crossing.at_ms) }
        }
        shipment::Event::Delivered(delivery) => Step {
            quantity: Some(delivery.received),
            pallets: delivery.pallets,
            note: delivery.refusal_reason.clone().unwrap_or_default(),
            ..step(STEP_STATES[3], delivery.at_ms)
        },
        shipment::Event::Closed { at_ms, .. } => step(STEP_STATES[4], *at_ms),
    }
}
