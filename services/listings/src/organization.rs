//! The Organization aggregate: who a company is on the marketplace (legal name, country,
//! legal identifier), where it works (sites), what it does (roles), what it may handle
//! (permits) and whom to call (contacts, sealed).
//!
//! `decide` and `evolve` are pure: no I/O, no clock (the shell passes `now`), no randomness
//! (the shell passes new ids). Contacts arrive already sealed: the aggregate never sees
//! personal data in the clear. Its types, events and fold are the listings contract's
//! (`symbiose_listings_contract::organization`); what is here is how the service decides.

use std::collections::BTreeSet;

use symbiose_domain::{Country, Identifier, Role};
pub use symbiose_listings_contract::organization::*;
use uuid::Uuid;

/// Most sites an organization may have.
pub const SITES_MAX: usize = 200;
/// Most permits an organization may hold.
pub const PERMITS_MAX: usize = 100;

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Register { id: Uuid, legal_name: String, country: Country, identifier: Identifier, roles: BTreeSet<Role> },
    AddSite(Site),
    UpdateSite(Site),
    SetRoles(BTreeSet<Role>),
    AddPermit(Permit),
    SetContacts { sealed: Vec<u8> },
    EraseContacts,
}

/// What the shell passes in: the time of the command.
#[derive(Debug, Clone, Copy)]
pub struct Context {
    pub now_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("the organization is already registered")]
    AlreadyRegistered,
    #[error("the organization is not registered")]
    NotRegistered,
    #[error("the legal identifier is {identifier_country}'s, the organization is declared in {declared}")]
    CountryMismatch { identifier_country: Country, declared: Country },
    #[error("an organization needs at least one role")]
    NoRole,
    #[error("an organization has at most {SITES_MAX} sites")]
    TooManySites,
    #[error("a site is already named {0:?}")]
    SiteNameTaken(String),
    #[error("site {0} not found")]
    UnknownSite(Uuid),
    #[error("an organization holds at most {PERMITS_MAX} permits")]
    TooManyPermits,
    #[error("the permit expired")]
    PermitExpired,
    #[error("a treatment permit names at least one accepted waste code")]
    PermitWithoutWasteCodes,
    #[error("a {permit} permit is held by an organization with the {role} role")]
    PermitNeedsRole { permit: &'static str, role: Role },
}

pub fn decide(
    state: &OrganizationState,
    command: Command,
    context: &Context,
) -> Result<Vec<Event>, Rejection> {
    let organization = match (state, &command) {
        (OrganizationState::Registered(_), Command::Register { .. }) => {
            return Err(Rejection::AlreadyRegistered);
        }
        (OrganizationState::Unregistered, Command::Register { .. }) => None,
        (OrganizationState::Unregistered, _) => return Err(Rejection::NotRegistered),
        (OrganizationState::Registered(organization), _) => Some(organization.as_ref()),
    };
    match (organization, command) {
        (None, Command::Register { id, legal_name, country, identifier, roles }) => {
            let identifier_country = identifier.kind().country();
            if identifier_country != country {
                return Err(Rejection::CountryMismatch { identifier_country, declared: country });
            }
            if roles.is_empty() {
                return Err(Rejection::NoRole);
            }
            Ok(vec![Event::Registered {
                id,
                legal_name,
                country,
                identifier,
                roles,
                registered_at_ms: context.now_ms,
            }])
        }
        (Some(organization), Command::AddSite(site)) => {
            if organization.sites.len() >= SITES_MAX {
                return Err(Rejection::TooManySites);
            }
            if organization.sites.iter().any(|existing| existing.name == site.name) {
                return Err(Rejection::SiteNameTaken(site.name));
            }
            Ok(vec![Event::SiteAdded(site)])
        }
        (Some(organization), Command::UpdateSite(site)) => {
            let Some(existing) = organization.site(site.site_id) else {
                return Err(Rejection::UnknownSite(site.site_id));
            };
            if organization.sites.iter().any(|other| other.site_id != site.site_id && other.name == site.name)
            {
                return Err(Rejection::SiteNameTaken(site.name));
            }
            if *existing == site {
                return Ok(Vec::new());
            }
            Ok(vec![Event::SiteUpdated(site)])
        }
        (Some(organization), Command::SetRoles(roles)) => {
            if roles.is_empty() {
                return Err(Rejection::NoRole);
            }
            if organization.roles == roles {
                return Ok(Vec::new());
            }
            Ok(vec![Event::RolesSet(roles)])
        }
        (Some(organization), Command::AddPermit(permit)) => {
            if organization.permits.len() >= PERMITS_MAX {
                return Err(Rejection::TooManyPermits);
            }
            if permit.valid_until_ms <= context.now_ms {
                return Err(Rejection::PermitExpired);
            }
            if permit.kind == PermitKind::Treatment && permit.accepted_waste_codes.is_empty() {
                return Err(Rejection::PermitWithoutWasteCodes);
            }
            let (name, role) = match permit.kind {
                PermitKind::Treatment => ("treatment", Role::Recycler),
                PermitKind::Transport => ("transport", Role::Carrier),
            };
            if !organization.roles.contains(&role) {
                return Err(Rejection::PermitNeedsRole { permit: name, role });
            }
            Ok(vec![Event::PermitAdded(permit)])
        }
        (Some(_), Command::SetContacts { sealed }) => Ok(vec![Event::ContactsSet { sealed }]),
        (Some(organization), Command::EraseContacts) => match organization.contacts {
            Contacts::Erased | Contacts::None => Ok(Vec::new()),
            Contacts::Sealed(_) => Ok(vec![Event::ContactsErased]),
        },
        (Some(_), Command::Register { .. }) | (None, _) => unreachable!("matched above"),
    }
}

#[cfg(test)]
mod tests {
    use symbiose_domain::{GeoPoint, WasteCode};

    use super::*;

    const NOW_MS: i64 = 1_790_000_000_000;
    const DAY_MS: i64 = 86_400_000;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn registered() -> Event {
        Event::Registered {
            id: id(1),
            legal_name: "Palettes de l'Est SAS".into(),
            country: Country::Fr,
            identifier: Identifier::parse("73282932000074").expect("SIRET"),
            roles: BTreeSet::from([Role::Producer]),
            registered_at_ms: NOW_MS - DAY_MS,
        }
    }

    fn site(n: u128, name: &str) -> Site {
        Site {
            site_id: id(100 + n),
            name: name.into(),
            address: Address {
                street: "1 rue du Port du Rhin".into(),
                postal_code: "67000".into(),
                city: "Strasbourg".into(),
                country: Country::Fr,
            },
            location: GeoPoint::new(48.5734, 7.7521).expect("point"),
        }
    }

    fn permit(valid_until_ms: i64, codes: &[&str]) -> Permit {
        Permit {
            permit_id: id(200),
            kind: PermitKind::Treatment,
            number: "ICPE 2791".into(),
            issued_by: "Préfecture du Bas-Rhin".into(),
            valid_until_ms,
            accepted_waste_codes: codes.iter().map(|code| WasteCode::parse(code).expect("code")).collect(),
            hazardous_accepted: false,
            dangerous_goods_allowed: false,
        }
    }

    #[track_caller]
    fn check(given: &[Event], when: Command, then: Result<Vec<Event>, Rejection>) {
        let state = given.iter().fold(OrganizationState::Unregistered, evolve);
        assert_eq!(decide(&state, when, &Context { now_ms: NOW_MS }), then);
    }

    #[test]
    fn an_organization_registers_once() {
        let Event::Registered { id, legal_name, country, identifier, roles, .. } = registered() else {
            unreachable!()
        };
        let command = Command::Register {
            id,
            legal_name: legal_name.clone(),
            country,
            identifier: identifier.clone(),
            roles: roles.clone(),
        };
        let then = Event::Registered { id, legal_name, country, identifier, roles, registered_at_ms: NOW_MS };
        check(&[], command, Ok(vec![then]));
    }

    #[test]
    fn a_second_registration_is_refused() {
        let Event::Registered { id, legal_name, country, identifier, roles, .. } = registered() else {
            unreachable!()
        };
        check(
            &[registered()],
            Command::Register { id, legal_name, country, identifier, roles },
            Err(Rejection::AlreadyRegistered),
        );
    }

    #[test]
    fn the_identifier_must_be_of_the_declared_country() {
        let command = Command::Register {
            id: id(1),
            legal_name: "Kehler Paletten GmbH".into(),
            country: Country::De,
            identifier: Identifier::parse("73282932000074").expect("SIRET"),
            roles: BTreeSet::from([Role::Buyer]),
        };
        check(
            &[],
            command,
            Err(Rejection::CountryMismatch { identifier_country: Country::Fr, declared: Country::De }),
        );
    }

    #[test]
    fn an_organization_needs_a_role() {
        let Event::Registered { id, legal_name, country, identifier, .. } = registered() else {
            unreachable!()
        };
        check(
            &[],
            Command::Register { id, legal_name, country, identifier, roles: BTreeSet::new() },
            Err(Rejection::NoRole),
        );
        check(&[registered()], Command::SetRoles(BTreeSet::new()), Err(Rejection::NoRole));
    }

    #[test]
    fn nothing_happens_to_an_unregistered_organization() {
        check(&[], Command::AddSite(site(1, "Port du Rhin")), Err(Rejection::NotRegistered));
        check(&[], Command::EraseContacts, Err(Rejection::NotRegistered));
    }

    #[test]
    fn sites_are_added_with_distinct_names() {
        check(
            &[registered()],
            Command::AddSite(site(1, "Port du Rhin")),
            Ok(vec![Event::SiteAdded(site(1, "Port du Rhin"))]),
        );
        check(
            &[registered(), Event::SiteAdded(site(1, "Port du Rhin"))],
            Command::AddSite(site(2, "Port du Rhin")),
            Err(Rejection::SiteNameTaken("Port du Rhin".into())),
        );
    }

    #[test]
    fn a_site_is_updated_only_if_it_exists_and_changed() {
        let given = [registered(), Event::SiteAdded(site(1, "Port du Rhin"))];
        let renamed = site(1, "Port du Rhin, quai 3");
        check(&given, Command::UpdateSite(renamed.clone()), Ok(vec![Event::SiteUpdated(renamed)]));
        check(&given, Command::UpdateSite(site(1, "Port du Rhin")), Ok(vec![]));
        check(&given, Command::UpdateSite(site(9, "Elsewhere")), Err(Rejection::UnknownSite(id(109))));
    }

    #[test]
    fn there_is_a_limit_to_sites() {
        let mut given = vec![registered()];
        given.extend((0..SITES_MAX as u128).map(|n| Event::SiteAdded(site(n, &format!("site {n}")))));
        check(&given, Command::AddSite(site(999, "one more")), Err(Rejection::TooManySites));
    }

    #[test]
    fn permits_must_be_valid_and_name_their_codes() {
        let recycler = [registered(), Event::RolesSet(BTreeSet::from([Role::Recycler]))];
        let valid = permit(NOW_MS + 365 * DAY_MS, &["150103"]);
        check(&recycler, Command::AddPermit(valid.clone()), Ok(vec![Event::PermitAdded(valid)]));
        check(&recycler, Command::AddPermit(permit(NOW_MS - 1, &["150103"])), Err(Rejection::PermitExpired));
        check(
            &recycler,
            Command::AddPermit(permit(NOW_MS + DAY_MS, &[])),
            Err(Rejection::PermitWithoutWasteCodes),
        );
    }

    #[test]
    fn a_permit_goes_with_its_role() {
        let valid = permit(NOW_MS + DAY_MS, &["150103"]);
        check(
            &[registered()],
            Command::AddPermit(valid),
            Err(Rejection::PermitNeedsRole { permit: "treatment", role: Role::Recycler }),
        );
        let transport = Permit { kind: PermitKind::Transport, ..permit(NOW_MS + DAY_MS, &[]) };
        check(
            &[registered()],
            Command::AddPermit(transport.clone()),
            Err(Rejection::PermitNeedsRole { permit: "transport", role: Role::Carrier }),
        );
        let carrier = [registered(), Event::RolesSet(BTreeSet::from([Role::Carrier]))];
        check(&carrier, Command::AddPermit(transport.clone()), Ok(vec![Event::PermitAdded(transport)]));
    }

    #[test]
    fn a_permit_accepts_its_codes_until_it_expires_and_hazardous_only_if_allowed() {
        let mut treatment = permit(NOW_MS + DAY_MS, &["150103", "140603"]);
        let wood = WasteCode::parse("150103").expect("code");
        let solvents = WasteCode::parse("140603").expect("code");
        assert!(treatment.accepts(wood, NOW_MS));
        assert!(!treatment.accepts(wood, NOW_MS + 2 * DAY_MS), "expired");
        assert!(!treatment.accepts(solvents, NOW_MS), "hazardous not allowed");
        treatment.hazardous_accepted = true;
        assert!(treatment.accepts(solvents, NOW_MS));
        assert!(!treatment.accepts(WasteCode::parse("150101").expect("code"), NOW_MS), "not listed");
    }

    #[test]
    fn roles_change_only_when_different() {
        check(&[registered()], Command::SetRoles(BTreeSet::from([Role::Producer])), Ok(vec![]));
        let both = BTreeSet::from([Role::Producer, Role::Buyer]);
        check(&[registered()], Command::SetRoles(both.clone()), Ok(vec![Event::RolesSet(both)]));
    }

    #[test]
    fn contacts_are_set_sealed_and_erased_once() {
        let sealed = vec![1, 2, 3];
        check(
            &[registered()],
            Command::SetContacts { sealed: sealed.clone() },
            Ok(vec![Event::ContactsSet { sealed: sealed.clone() }]),
        );
        let with_contacts = [registered(), Event::ContactsSet { sealed }];
        check(&with_contacts, Command::EraseContacts, Ok(vec![Event::ContactsErased]));
        let erased = [registered(), Event::ContactsSet { sealed: vec![1] }, Event::ContactsErased];
        check(&erased, Command::EraseContacts, Ok(vec![]));
        check(&[registered()], Command::EraseContacts, Ok(vec![]));
    }

    #[test]
    fn replaying_the_events_gives_the_state() {
        let events = [
            registered(),
            Event::SiteAdded(site(1, "Port du Rhin")),
            Event::SiteUpdated(site(1, "Quai 3")),
            Event::RolesSet(BTreeSet::from([Role::Producer, Role::Recycler])),
            Event::PermitAdded(permit(NOW_MS + DAY_MS, &["150103"])),
            Event::ContactsSet { sealed: vec![7] },
            Event::ContactsErased,
        ];
        let OrganizationState::Registered(organization) =
            events.iter().fold(OrganizationState::Unregistered, evolve)
        else {
            panic!("registered")
        };
        assert_eq!(organization.sites, vec![site(1, "Quai 3")]);
        assert_eq!(organization.roles, BTreeSet::from([Role::Producer, Role::Recycler]));
        assert_eq!(organization.permits.len(), 1);
        assert_eq!(organization.contacts, Contacts::Erased);
    }
}
