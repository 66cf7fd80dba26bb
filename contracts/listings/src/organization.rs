//! An organization as other contexts know it: who a company is on the marketplace (legal name,
//! country, legal identifier), where it works (sites), what it does (roles), what it may handle
//! (permits) and whether it has contacts (sealed: the contract never carries them in the clear);
//! its events and their fold.

use std::collections::{BTreeSet, HashMap};

use symbiose_domain::{Country, GeoPoint, Identifier, Role, WasteCode};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Address {
    pub street: String,
    pub postal_code: String,
    pub city: String,
    pub country: Country,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Site {
    pub site_id: Uuid,
    pub name: String,
    pub address: Address,
    pub location: GeoPoint,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum PermitKind {
    /// A recycler's or treatment facility's permit.
    Treatment,
    /// A carrier's transport registration.
    Transport,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Permit {
    pub permit_id: Uuid,
    pub kind: PermitKind,
    pub number: String,
    pub issued_by: String,
    pub valid_until_ms: i64,
    pub accepted_waste_codes: Vec<WasteCode>,
    pub hazardous_accepted: bool,
    pub dangerous_goods_allowed: bool,
}

impl Permit {
    /// Whether this permit lets its holder receive `code` at `now_ms`.
    pub fn accepts(&self, code: WasteCode, now_ms: i64) -> bool {
        self.kind == PermitKind::Treatment
            && self.valid_until_ms > now_ms
            && self.accepted_waste_codes.contains(&code)
            && (!code.is_hazardous() || self.hazardous_accepted)
    }
}

/// The contacts as the aggregate knows them: sealed bytes, or nothing.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum Contacts {
    #[default]
    None,
    Sealed(Vec<u8>),
    Erased,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Organization {
    pub id: Uuid,
    pub legal_name: String,
    pub country: Country,
    pub identifier: Identifier,
    pub roles: BTreeSet<Role>,
    pub sites: Vec<Site>,
    pub permits: Vec<Permit>,
    pub contacts: Contacts,
    pub registered_at_ms: i64,
}

impl Organization {
    pub fn site(&self, site_id: Uuid) -> Option<&Site> {
        self.sites.iter().find(|site| site.site_id == site_id)
    }
}

#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub enum OrganizationState {
    #[default]
    Unregistered,
    Registered(Box<Organization>),
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Event {
    Registered {
        id: Uuid,
        legal_name: String,
        country: Country,
        identifier: Identifier,
        roles: BTreeSet<Role>,
        registered_at_ms: i64,
    },
    SiteAdded(Site),
    SiteUpdated(Site),
    RolesSet(BTreeSet<Role>),
    PermitAdded(Permit),
    ContactsSet {
        sealed: Vec<u8>,
    },
    ContactsErased,
}

/// Folds `event` of organization `id` into a map of public records, as other services' views
/// keep the directory: without contacts, sealed or not.
pub fn fold_public(organizations: &mut HashMap<Uuid, Organization>, id: Uuid, event: &Event) {
    let state = match organizations.remove(&id) {
        Some(organization) => OrganizationState::Registered(Box::new(organization)),
        None => OrganizationState::Unregistered,
    };
    if let OrganizationState::Registered(mut organization) = evolve(state, event) {
        organization.contacts = Contacts::None;
        organizations.insert(id, *organization);
    }
}

/// Applies an event. Total: events are facts, whatever the state says.
pub fn evolve(state: OrganizationState, event: &Event) -> OrganizationState {
    match (state, event) {
        (_, Event::Registered { id, legal_name, country, identifier, roles, registered_at_ms }) => {
            OrganizationState::Registered(Box::new(Organization {
                id: *id,
                legal_name: legal_name.clone(),
                country: *country,
                identifier: identifier.clone(),
                roles: roles.clone(),
                sites: Vec::new(),
                permits: Vec::new(),
                contacts: Contacts::None,
                registered_at_ms: *registered_at_ms,
            }))
        }
        (OrganizationState::Unregistered, _) => OrganizationState::Unregistered,
        (OrganizationState::Registered(mut organization), event) => {
            match event {
                Event::Registered { .. } => unreachable!("matched above"),
                Event::SiteAdded(site) => organization.sites.push(site.clone()),
                Event::SiteUpdated(site) => {
                    if let Some(existing) =
                        organization.sites.iter_mut().find(|existing| existing.site_id == site.site_id)
                    {
                        *existing = site.clone();
                    }
                }
                Event::RolesSet(roles) => organization.roles = roles.clone(),
                Event::PermitAdded(permit) => organization.permits.push(permit.clone()),
                Event::ContactsSet { sealed } => organization.contacts = Contacts::Sealed(sealed.clone()),
                Event::ContactsErased => organization.contacts = Contacts::Erased,
            }
            OrganizationState::Registered(organization)
        }
    }
}
