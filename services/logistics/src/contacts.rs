//! How logistics reads the contacts of the parties to a shipment, for the Annex VII document:
//! from the listings service's `GetOrganization`, called as the platform's service, which the
//! listings service answers with the contacts opened from its vault.
//!
//! Contacts are personal data sealed with their organization's key, and that key lives only in
//! the listings service's vault: logistics cannot open them from the log, so it asks, each time
//! it prints a document, and keeps nothing. An erased contact comes back as erased.
//!
//! [`OrganizationContacts`] is the port; [`ListingsContacts`] calls the listings handler itself
//! when both run in one process, [`RemoteContacts`] calls it over gRPC when each runs alone.

use std::future::Future;
use std::pin::Pin;

use symbiose_kit::auth::{TokenAuthority, service_request, service_request_in_process};
use symbiose_proto::listings::v1 as listings;
use symbiose_proto::listings::v1::organization_service_client::OrganizationServiceClient;
use symbiose_proto::listings::v1::organization_service_server::OrganizationService;
use tonic::Status;
use tonic::transport::Channel;
use uuid::Uuid;

use crate::annex_vii::{Contact, PartyContact};

/// The function a contact is chosen by, when the organization names one: the form asks whom
/// to reach about the shipment.
const PREFERRED_FUNCTIONS: [&str; 3] = ["logisti", "shipping", "transport"];

pub type ContactsFuture<'a> = Pin<Box<dyn Future<Output = Result<PartyContact, Status>> + Send + 'a>>;

/// The port to the directory's contacts.
pub trait OrganizationContacts: Send + Sync + 'static {
    /// The contact the document names for `organization`: `Missing` when it has none.
    fn contact(&self, organization: Uuid) -> ContactsFuture<'_>;
}

/// The listings service's handler, in the same process.
#[derive(Debug, Clone)]
pub struct ListingsContacts<O> {
    organizations: O,
}

impl<O> ListingsContacts<O> {
    pub fn new(organizations: O) -> ListingsContacts<O> {
        ListingsContacts { organizations }
    }
}

impl<O: OrganizationService> OrganizationContacts for ListingsContacts<O> {
    fn contact(&self, organization: Uuid) -> ContactsFuture<'_> {
        Box::pin(async move {
            let request = service_request_in_process(message(organization));
            let answer = self.organizations.get_organization(request).await?.into_inner();
            Ok(chosen(answer.organization))
        })
    }
}

/// The listings service's gRPC port, when each service runs alone: every call carries a
/// short-lived token of the platform's service, signed with the platform's key.
#[derive(Debug, Clone)]
pub struct RemoteContacts {
    client: OrganizationServiceClient<Channel>,
    authority: TokenAuthority,
}

impl RemoteContacts {
    /// Calls the listings service through `channel` (connected lazily), signing its tokens
    /// with `authority`.
    pub fn new(channel: Channel, authority: TokenAuthority) -> RemoteContacts {
        RemoteContacts { client: OrganizationServiceClient::new(channel), authority }
    }
}

impl OrganizationContacts for RemoteContacts {
    fn contact(&self, organization: Uuid) -> ContactsFuture<'_> {
        Box::pin(async move {
            let request = service_request(&self.authority, message(organization));
            let answer = self.client.clone().get_organization(request).await?.into_inner();
            Ok(chosen(answer.organization))
        })
    }
}

fn message(organization: Uuid) -> listings::GetOrganizationRequest {
    listings::GetOrganizationRequest { organization_id: organization.to_string() }
}

/// The contact for the document: erased when the organization erased them, else the first
/// whose function is logistics, shipping or transport, else the first.
fn chosen(organization: Option<listings::Organization>) -> PartyContact {
    let Some(organization) = organization else { return PartyContact::Missing };
    if organization.contacts_erased {
        return PartyContact::Erased;
    }
    let preferred = organization.contacts.iter().find(|contact| {
        let function = contact.function.to_lowercase();
        PREFERRED_FUNCTIONS.iter().any(|preferred| function.contains(preferred))
    });
    match preferred.or(organization.contacts.first()) {
        Some(contact) => PartyContact::Listed(Contact {
            person: contact.name.clone(),
            telephone: contact.phone.clone(),
            email: contact.email.clone(),
        }),
        None => PartyContact::Missing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contact(name: &str, function: &str) -> listings::Contact {
        listings::Contact {
            name: name.into(),
            email: format!("{}@example.org", name.to_lowercase()),
            phone: String::new(),
            function: function.into(),
        }
    }

    #[test]
    fn the_logistics_contact_is_chosen_and_an_erasure_shows() {
        let organization = |contacts, contacts_erased| {
            Some(listings::Organization { contacts, contacts_erased, ..Default::default() })
        };
        let both = vec![contact("Anna", "quality"), contact("Marc", "Logistique / logistics")];
        assert_eq!(
            chosen(organization(both, false)),
            PartyContact::Listed(Contact {
                person: "Marc".into(),
                telephone: String::new(),
                email: "marc@example.org".into()
            })
        );
        let anyone = chosen(organization(vec![contact("Anna", "quality")], false));
        assert!(matches!(anyone, PartyContact::Listed(Contact { ref person, .. }) if person == "Anna"));
        assert_eq!(chosen(organization(vec![], true)), PartyContact::Erased);
        assert_eq!(chosen(organization(vec![], false)), PartyContact::Missing);
        assert_eq!(chosen(None), PartyContact::Missing);
    }
}
