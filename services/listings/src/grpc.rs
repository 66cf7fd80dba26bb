//! The `OrganizationService` handlers: who calls, what they ask (parsed, bad input named),
//! what the directory does, and the answer.

use std::sync::Arc;

use prost::Message as _;
use symbiose_domain::{Identifier, Role};
use symbiose_eventstore::EventStore;
use symbiose_eventstore::Position;
use symbiose_kit::ApiError;
use symbiose_kit::auth;
use symbiose_kit::page;
use symbiose_proto::common::v1 as common;
use symbiose_proto::convert::{FieldError, country_from_wire, role_from_wire, timestamp_from_ms};
use symbiose_proto::listings::v1 as pb;
use symbiose_proto::listings::v1::organization_service_server::OrganizationService;
use symbiose_shell::{Actor, Written};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::codec::{self, text};
use crate::directory::Directory;
use crate::error::ListingsError;
use crate::organization::{Command, Contacts, Organization, OrganizationState};

/// Largest page of `ListOrganizations`.
pub(crate) const ORGANIZATIONS_PAGE_SIZE_MAX: usize = 200;
/// Most contacts an organization keeps.
pub(crate) const CONTACTS_MAX: usize = 20;
/// Longest validity of a token, in days.
pub(crate) const TOKEN_TTL_DAYS_MAX: u32 = 3650;

#[derive(Debug)]
pub struct OrganizationApi<S> {
    directory: Arc<Directory<S>>,
}

impl<S> OrganizationApi<S> {
    pub fn new(directory: Arc<Directory<S>>) -> OrganizationApi<S> {
        OrganizationApi { directory }
    }
}

fn organization_id(value: &str) -> Result<Uuid, ListingsError> {
    Ok(codec::id(value, "organization_id")?)
}

fn written(written: Written) -> (u64, u64) {
    (written.version, written.position.as_u64())
}

#[tonic::async_trait]
impl<S: EventStore> OrganizationService for OrganizationApi<S> {
    async fn register_organization(
        &self,
        request: Request<pb::RegisterOrganizationRequest>,
    ) -> Result<Response<pb::RegisterOrganizationResponse>, Status> {
        let caller = auth::caller(&request)?;
        let request = request.into_inner();
        caller.require_role(Role::Operator)?;
        let actor = Actor::for_request(caller.organization_id, &request.request_id, &request)?;
        let legal_name = text(&request.legal_name, "legal_name").map_err(ListingsError::from)?;
        let country = country_from_wire(request.country, "country").map_err(ListingsError::from)?;
        let identifier = Identifier::parse(&request.legal_identifier)
            .map_err(|error| ListingsError::invalid("legal_identifier", error))?;
        let roles = codec::roles_from_wire(&request.roles, "roles").map_err(ListingsError::from)?;
        if roles.contains(&Role::Operator) || roles.contains(&Role::Service) {
            return Err(ListingsError::invalid(
                "roles",
                "the operator and service roles belong to the platform",
            )
            .into());
        }
        let (id, written) = self.directory.register(&actor, legal_name, country, identifier, roles).await?;
        let (version, position) = self::written(written);
        Ok(Response::new(pb::RegisterOrganizationResponse {
            organization_id: id.to_string(),
            version,
            position,
        }))
    }

    async fn add_site(
        &self,
        request: Request<pb::AddSiteRequest>,
    ) -> Result<Response<pb::AddSiteResponse>, Status> {
        let caller = auth::caller(&request)?;
        let request = request.into_inner();
        let id = organization_id(&request.organization_id)?;
        caller.require_organization(id)?;
        let actor = Actor::for_request(caller.organization_id, &request.request_id, &request)?;
        let site_id = actor.derive_id(&format!("site/{id}"));
        let site = codec::site_from_wire(site_id, &request.name, request.address, request.location)
            .map_err(ListingsError::from)?;
        let (version, position) = written(self.directory.execute(id, &actor, Command::AddSite(site)).await?);
        Ok(Response::new(pb::AddSiteResponse { site_id: site_id.to_string(), version, position }))
    }

    async fn update_site(
        &self,
        request: Request<pb::UpdateSiteRequest>,
    ) -> Result<Response<pb::UpdateSiteResponse>, Status> {
        let caller = auth::caller(&request)?;
        let request = request.into_inner();
        let id = organization_id(&request.organization_id)?;
        caller.require_organization(id)?;
        let actor = Actor::for_request(caller.organization_id, &request.request_id, &request)?;
        let site_id = codec::id(&request.site_id, "site_id").map_err(ListingsError::from)?;
        let site = codec::site_from_wire(site_id, &request.name, request.address, request.location)
            .map_err(ListingsError::from)?;
        let (version, position) =
            written(self.directory.execute(id, &actor, Command::UpdateSite(site)).await?);
        Ok(Response::new(pb::UpdateSiteResponse { version, position }))
    }

    async fn set_roles(
        &self,
        request: Request<pb::SetRolesRequest>,
    ) -> Result<Response<pb::SetRolesResponse>, Status> {
        let caller = auth::caller(&request)?;
        let request = request.into_inner();
        caller.require_role(Role::Operator)?;
        let id = organization_id(&request.organization_id)?;
        let actor = Actor::for_request(caller.organization_id, &request.request_id, &request)?;
        let roles = codec::roles_from_wire(&request.roles, "roles").map_err(ListingsError::from)?;
        if roles.contains(&Role::Operator) || roles.contains(&Role::Service) {
            return Err(ListingsError::invalid(
                "roles",
                "the operator and service roles belong to the platform",
            )
            .into());
        }
        let (version, position) =
            written(self.directory.execute(id, &actor, Command::SetRoles(roles)).await?);
        Ok(Response::new(pb::SetRolesResponse { version, position }))
    }

    async fn add_permit(
        &self,
        request: Request<pb::AddPermitRequest>,
    ) -> Result<Response<pb::AddPermitResponse>, Status> {
        let caller = auth::caller(&request)?;
        let request = request.into_inner();
        let id = organization_id(&request.organization_id)?;
        caller.require_organization(id)?;
        let actor = Actor::for_request(caller.organization_id, &request.request_id, &request)?;
        let permit_id = actor.derive_id(&format!("permit/{id}"));
        let permit =
            request.permit.ok_or_else(|| FieldError::required("permit")).map_err(ListingsError::from)?;
        let permit = codec::permit_from_wire(permit_id, permit)
            .map_err(|error| ListingsError::from(error.under("permit")))?;
        let (version, position) =
            written(self.directory.execute(id, &actor, Command::AddPermit(permit)).await?);
        Ok(Response::new(pb::AddPermitResponse { permit_id: permit_id.to_string(), version, position }))
    }

    async fn set_contacts(
        &self,
        request: Request<pb::SetContactsRequest>,
    ) -> Result<Response<pb::SetContactsResponse>, Status> {
        let caller = auth::caller(&request)?;
        let request = request.into_inner();
        let id = organization_id(&request.organization_id)?;
        caller.require_organization(id)?;
        // No fingerprint of contacts: a hash of personal data kept in the log would outlive
        // their erasure and confirm a guess. A repeat is recognised by its request id alone.
        let actor = Actor::new(caller.organization_id, &request.request_id)?;
        if request.contacts.len() > CONTACTS_MAX {
            return Err(ListingsError::invalid("contacts", format!("at most {CONTACTS_MAX} contacts")).into());
        }
        let contacts = request
            .contacts
            .iter()
            .enumerate()
            .map(|(index, contact)| {
                contact_from_wire(contact).map_err(|error| error.under(&format!("contacts[{index}]")))
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(ListingsError::from)?;
        let plaintext = pb::ContactList { contacts }.encode_to_vec();
        let sealed = self.directory.vault().seal(id, &plaintext).await.map_err(ListingsError::from)?;
        let (version, position) =
            written(self.directory.execute(id, &actor, Command::SetContacts { sealed }).await?);
        Ok(Response::new(pb::SetContactsResponse { version, position }))
    }

    async fn erase_contacts(
        &self,
        request: Request<pb::EraseContactsRequest>,
    ) -> Result<Response<pb::EraseContactsResponse>, Status> {
        let caller = auth::caller(&request)?;
        let request = request.into_inner();
        let id = organization_id(&request.organization_id)?;
        caller.require_organization(id)?;
        let actor = Actor::for_request(caller.organization_id, &request.request_id, &request)?;
        // The key goes first: once it is gone the contacts are unreadable, whatever happens
        // to the event that records the erasure.
        self.directory.vault().erase(id).await.map_err(ListingsError::from)?;
        let (version, position) = written(self.directory.execute(id, &actor, Command::EraseContacts).await?);
        Ok(Response::new(pb::EraseContactsResponse { version, position }))
    }

    async fn get_organization(
        &self,
        request: Request<pb::GetOrganizationRequest>,
    ) -> Result<Response<pb::GetOrganizationResponse>, Status> {
        let caller = auth::caller(&request)?;
        let id = organization_id(&request.into_inner().organization_id)?;
        let loaded = self.directory.load(id).await?;
        let OrganizationState::Registered(organization) = loaded.state else {
            return Err(ApiError::NotFound(format!("organization {id} not found")).into());
        };
        let mut answer = public(&organization);
        // The platform's services see them too: logistics prints the parties' contacts on the
        // Annex VII document of their shipment (it checks who asks for the document).
        if caller.require_organization(id).is_ok() || caller.has_role(Role::Service) {
            self.add_private(&organization, &mut answer).await?;
        }
        Ok(Response::new(pb::GetOrganizationResponse {
            organization: Some(answer),
            version: loaded.version.unwrap_or_default(),
        }))
    }

    async fn list_organizations(
        &self,
        request: Request<pb::ListOrganizationsRequest>,
    ) -> Result<Response<pb::ListOrganizationsResponse>, Status> {
        let _caller = auth::caller(&request)?;
        let request = request.into_inner();
        let role = match request.role {
            0 => None,
            value => Some(role_from_wire(value, "role").map_err(ListingsError::from)?),
        };
        let country = match request.country {
            0 => None,
            value => Some(country_from_wire(value, "country").map_err(ListingsError::from)?),
        };
        let page_size = page::page_size(request.page_size, ORGANIZATIONS_PAGE_SIZE_MAX)?;
        let after = page::decode_token(&request.page_token)?
            .map(|key| Uuid::parse_str(&key))
            .transpose()
            .map_err(|_| ListingsError::invalid("page_token", "is not a token this service issued"))?;
        self.directory.wait_for_view(Position::from_u64(request.min_position)).await?;
        let (organizations, more) = self.directory.list(role, country, after, page_size);
        let next_page_token = match organizations.last() {
            Some(last) if more => page::encode_token(&last.id.to_string()),
            _ => String::new(),
        };
        Ok(Response::new(pb::ListOrganizationsResponse {
            organizations: organizations.iter().map(public).collect(),
            next_page_token,
        }))
    }

    async fn issue_token(
        &self,
        request: Request<pb::IssueTokenRequest>,
    ) -> Result<Response<pb::IssueTokenResponse>, Status> {
        let caller = auth::caller(&request)?;
        let request = request.into_inner();
        caller.require_role(Role::Operator)?;
        let id = organization_id(&request.organization_id)?;
        let roles = codec::roles_from_wire(&request.roles, "roles").map_err(ListingsError::from)?;
        let ttl_days = match request.ttl_days {
            0 => None,
            days if days <= TOKEN_TTL_DAYS_MAX => Some(days),
            _ => {
                return Err(ListingsError::invalid(
                    "ttl_days",
                    format!("must be at most {TOKEN_TTL_DAYS_MAX}"),
                )
                .into());
            }
        };
        let actor = Actor::new(caller.organization_id, "")?;
        let (token, claims) = self.directory.issue_token(&actor, id, roles, ttl_days).await?;
        Ok(Response::new(pb::IssueTokenResponse {
            token,
            token_id: claims.token_id.to_string(),
            expires_at: Some(timestamp_from_ms(claims.expires_at_s as i64 * 1000)),
        }))
    }

    async fn revoke_token(
        &self,
        request: Request<pb::RevokeTokenRequest>,
    ) -> Result<Response<pb::RevokeTokenResponse>, Status> {
        let caller = auth::caller(&request)?;
        let token_id = codec::id(&request.into_inner().token_id, "token_id").map_err(ListingsError::from)?;
        let actor = Actor::new(caller.organization_id, "")?;
        self.directory.revoke_token(&caller, &actor, token_id).await?;
        Ok(Response::new(pb::RevokeTokenResponse {}))
    }
}

impl<S: EventStore> OrganizationApi<S> {
    /// Adds what only the organization itself and the operator see: permits and contacts.
    async fn add_private(
        &self,
        organization: &Organization,
        answer: &mut pb::Organization,
    ) -> Result<(), ListingsError> {
        answer.permits = organization.permits.iter().map(codec::permit_to_wire).collect();
        match &organization.contacts {
            Contacts::None => {}
            Contacts::Erased => answer.contacts_erased = true,
            Contacts::Sealed(sealed) => {
                match self.directory.vault().open_sealed(organization.id, sealed).await? {
                    Some(plaintext) => {
                        let list = pb::ContactList::decode(plaintext.as_slice())
                            .map_err(|error| ApiError::Internal(anyhow::anyhow!("contacts: {error}")))?;
                        answer.contacts = list
                            .contacts
                            .into_iter()
                            .map(|contact| pb::Contact {
                                name: contact.name,
                                email: contact.email,
                                phone: contact.phone,
                                function: contact.function,
                            })
                            .collect();
                    }
                    // The key is gone: the erasure happened, whether or not its event did.
                    None => answer.contacts_erased = true,
                }
            }
        }
        Ok(())
    }
}

fn public(organization: &Organization) -> pb::Organization {
    pb::Organization {
        organization_id: organization.id.to_string(),
        legal_name: organization.legal_name.clone(),
        country: common::Country::from(organization.country).into(),
        legal_identifier_kind: symbiose_proto::reference::v1::IdentifierKind::from(
            organization.identifier.kind(),
        )
        .into(),
        legal_identifier: organization.identifier.normalized().to_owned(),
        roles: codec::roles_to_wire(&organization.roles),
        sites: organization.sites.iter().map(codec::site_to_wire).collect(),
        permits: Vec::new(),
        contacts: Vec::new(),
        contacts_erased: false,
        registered_at: Some(timestamp_from_ms(organization.registered_at_ms)),
    }
}

/// Longest email address and phone number, in bytes.
const EMAIL_BYTES_MAX: usize = 254;
const PHONE_BYTES_MAX: usize = 32;

/// A contact from the API, checked, in its sealed form.
fn contact_from_wire(contact: &pb::Contact) -> Result<pb::StoredContact, FieldError> {
    let name = text(&contact.name, "name")?;
    let email = contact.email.trim();
    if email.len() > EMAIL_BYTES_MAX || (!email.is_empty() && !is_email(email)) {
        return Err(FieldError::new("email", "is not an email address"));
    }
    let phone = contact.phone.trim();
    let phone_ok = phone.chars().all(|character| character.is_ascii_digit() || " +-.()".contains(character));
    if phone.len() > PHONE_BYTES_MAX || !phone_ok {
        return Err(FieldError::new("phone", "is not a phone number"));
    }
    if email.is_empty() && phone.is_empty() {
        return Err(FieldError::new("email", "a contact needs an email address or a phone number"));
    }
    let function = contact.function.trim();
    if function.len() > codec::TEXT_BYTES_MAX {
        return Err(FieldError::new("function", format!("must be at most {} bytes", codec::TEXT_BYTES_MAX)));
    }
    Ok(pb::StoredContact {
        name,
        email: email.to_owned(),
        phone: phone.to_owned(),
        function: function.to_owned(),
    })
}

fn is_email(text: &str) -> bool {
    match text.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !text.contains(char::is_whitespace)
        }
        None => false,
    }
}
