//! The directory's application shell: load an organization from its stream, decide, append
//! with the expected version, retry on conflict; registration with one organization per
//! legal identifier; tokens; and the directory view (a projection) for listing.

use std::collections::{BTreeMap, BTreeSet};

use prost::Message as _;
use symbiose_domain::{Country, Identifier, Role};
use symbiose_eventstore::{
    Direction, EventData, EventStore, ExpectedVersion, Position, RecordedEvent, StoreError, StreamName,
};
use symbiose_kit::ApiError;
use symbiose_kit::auth::{Caller, Claims, Revocations, TokenAuthority};
use symbiose_proto::listings::v1 as pb;
use symbiose_shell::snapshot::{self, Snapshot, Snapshots};
use symbiose_shell::{Actor, Decision, EventIds, Followed, Loaded, Shell, Written, now_ms};
use uuid::Uuid;

use crate::codec;
use crate::error::{ListingsError, organization_rejected};
use crate::organization::{self, Command, Context, Organization, OrganizationState};
use crate::vault::Vault;

/// The directory view: every registered organization, built from the log, never written to
/// by commands; it feeds the revocation list too.
#[derive(Debug)]
struct View {
    organizations: BTreeMap<Uuid, Organization>,
    revocations: Revocations,
}

impl symbiose_shell::View for View {
    fn apply(&mut self, recorded: &RecordedEvent) {
        apply(self, recorded);
    }
}

/// The directory view as its snapshot holds it: the revocation list by its ids.
#[derive(serde::Serialize)]
struct SavedRef<'a> {
    organizations: &'a BTreeMap<Uuid, Organization>,
    revoked: Vec<Uuid>,
}

#[derive(serde::Deserialize)]
struct Saved {
    organizations: BTreeMap<Uuid, Organization>,
    revoked: Vec<Uuid>,
}

impl Snapshot for View {
    const NAME: &'static str = "listings.directory";

    fn encode(&self) -> Result<Vec<u8>, String> {
        snapshot::encode(&SavedRef {
            organizations: &self.organizations,
            revoked: self.revocations.revoked_ids(),
        })
    }

    fn restored(&self, bytes: &[u8]) -> Result<View, String> {
        let saved: Saved = snapshot::decode(bytes)?;
        // Shared with the authenticator: revoked at once, which only ever adds to it.
        for token_id in saved.revoked {
            self.revocations.revoke(token_id);
        }
        Ok(View { organizations: saved.organizations, revocations: self.revocations.clone() })
    }
}

pub struct Directory<S> {
    shell: Shell<S>,
    vault: Vault,
    authority: TokenAuthority,
    revocations: Revocations,
    token_ttl_days: u32,
    view: Followed<View>,
}

impl<S> std::fmt::Debug for Directory<S> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Directory").field("vault", &self.vault).finish_non_exhaustive()
    }
}

fn organization_stream(id: Uuid) -> StreamName {
    StreamName::for_aggregate("organization", id).expect("a uuid makes a valid stream name")
}

fn token_stream(id: Uuid) -> StreamName {
    StreamName::for_aggregate("token", id).expect("a uuid makes a valid stream name")
}

fn identifier_stream(identifier: &Identifier) -> StreamName {
    StreamName::new(&format!("legal_identifier-{}", identifier.normalized())).expect("identifiers are short")
}

impl<S: EventStore> Directory<S> {
    /// The directory over `store`, with its view fed by a task that follows the log (from its
    /// snapshot, saved as `snapshots` says).
    pub fn start(
        store: S,
        vault: Vault,
        authority: TokenAuthority,
        revocations: Revocations,
        token_ttl_days: u32,
        snapshots: Snapshots,
    ) -> Directory<S> {
        let view = View { organizations: BTreeMap::new(), revocations: revocations.clone() };
        let view = Followed::start_snapshotted(store.clone(), "directory", view, snapshots);
        Directory {
            shell: Shell::new(store, EventIds::Attempted),
            vault,
            authority,
            revocations,
            token_ttl_days,
            view,
        }
    }

    pub fn store(&self) -> &S {
        self.shell.store()
    }

    pub fn vault(&self) -> &Vault {
        &self.vault
    }

    pub async fn load(&self, id: Uuid) -> Result<Loaded<OrganizationState>, ApiError> {
        symbiose_shell::load(
            self.store(),
            &organization_stream(id),
            symbiose_listings_contract::decode_recorded_organization,
            organization::evolve,
        )
        .await
    }

    /// Decides `command` on organization `id` and appends its events, through the shell. A
    /// request id already applied returns what it did.
    pub async fn execute(&self, id: Uuid, actor: &Actor, command: Command) -> Result<Written, ListingsError> {
        let executed = self
            .shell
            .execute(
                &organization_stream(id),
                actor,
                || self.load(id),
                |loaded: &Loaded<OrganizationState>| {
                    let context = Context { now_ms: now_ms() };
                    let events = organization::decide(&loaded.state, command.clone(), &context)
                        .map_err(organization_rejected)?;
                    Ok(Decision::new(events.iter().map(|event| codec::encode(id, event)).collect(), ()))
                },
            )
            .await?;
        Ok(executed.written)
    }

    /// Registers an organization, one per legal identifier: the identifier is claimed in a
    /// stream of its own first, with the new organization's id.
    pub async fn register(
        &self,
        actor: &Actor,
        legal_name: String,
        country: Country,
        identifier: Identifier,
        roles: BTreeSet<Role>,
    ) -> Result<(Uuid, Written), ListingsError> {
        // The id depends on the identifier too: a request id reused for another identifier is
        // another organization, never a repeat of the first.
        let id = actor.derive_id(&format!("organization/{}", identifier.normalized()));
        let command = Command::Register { id, legal_name, country, identifier: identifier.clone(), roles };
        // The rules first: a registration they refuse must not leave its identifier claimed.
        organization::decide(
            &OrganizationState::Unregistered,
            command.clone(),
            &Context { now_ms: now_ms() },
        )?;
        let claim_stream = identifier_stream(&identifier);
        let claim = pb::LegalIdentifierClaimed {
            legal_identifier: identifier.normalized().to_owned(),
            organization_id: id.to_string(),
        };
        let event = EventData::new(
            actor.derive_id(&format!("{claim_stream}/claim")),
            codec::LEGAL_IDENTIFIER_CLAIMED,
            claim.encode_to_vec(),
        )
        .with_metadata(actor.metadata());
        match self.store().append(&claim_stream, ExpectedVersion::NoStream, vec![event]).await {
            Ok(_) => {}
            Err(StoreError::WrongExpectedVersion { .. } | StoreError::DuplicateEvent { .. }) => {
                let claimed = self.store().read_stream(&claim_stream, 0, Direction::Forward, 1).await?;
                let owner = claimed
                    .first()
                    .and_then(|event| pb::LegalIdentifierClaimed::decode(event.payload.as_ref()).ok())
                    .map(|claim| claim.organization_id)
                    .unwrap_or_default();
                // The same request again finishes what it started; anything else is refused.
                if owner != id.to_string() {
                    return Err(ApiError::FailedPrecondition(format!(
                        "legal_identifier {} is already registered as organization {owner}",
                        identifier.display_form()
                    ))
                    .into());
                }
            }
            Err(error) => return Err(error.into()),
        }
        let written = self.execute(id, actor, command).await?;
        Ok((id, written))
    }

    /// Issues a token for a registered organization with some or all of its roles.
    pub async fn issue_token(
        &self,
        actor: &Actor,
        organization_id: Uuid,
        roles: BTreeSet<Role>,
        ttl_days: Option<u32>,
    ) -> Result<(String, Claims), ListingsError> {
        let loaded = self.load(organization_id).await?;
        let OrganizationState::Registered(organization) = loaded.state else {
            return Err(ApiError::NotFound(format!("organization {organization_id} not found")).into());
        };
        let roles = if roles.is_empty() { organization.roles.clone() } else { roles };
        if let Some(role) = roles.iter().find(|role| !organization.roles.contains(role)) {
            return Err(ListingsError::invalid(
                "roles",
                format!("the organization does not hold the {role} role"),
            ));
        }
        let now_s = now_ms() as u64 / 1000;
        let ttl_days = ttl_days.unwrap_or(self.token_ttl_days);
        let claims = Claims {
            organization_id,
            roles: roles.iter().copied().collect(),
            issued_at_s: now_s,
            expires_at_s: now_s + u64::from(ttl_days) * 86_400,
            token_id: Uuid::now_v7(),
        };
        let issued = pb::TokenIssued {
            token_id: claims.token_id.to_string(),
            organization_id: organization_id.to_string(),
            roles: codec::roles_to_wire(&roles),
            expires_at: Some(symbiose_proto::convert::timestamp_from_ms(claims.expires_at_s as i64 * 1000)),
        };
        let event = EventData::new(Uuid::now_v7(), codec::TOKEN_ISSUED, issued.encode_to_vec())
            .with_metadata(actor.metadata());
        self.store().append(&token_stream(claims.token_id), ExpectedVersion::NoStream, vec![event]).await?;
        Ok((self.authority.issue(&claims), claims))
    }

    /// Revokes a token: the operator any, an organization its own.
    pub async fn revoke_token(
        &self,
        caller: &Caller,
        actor: &Actor,
        token_id: Uuid,
    ) -> Result<(), ListingsError> {
        let stream = token_stream(token_id);
        let events = match self.store().read_stream(&stream, 0, Direction::Forward, 2).await {
            Ok(events) => events,
            Err(StoreError::StreamNotFound(_)) => {
                return Err(ApiError::NotFound(format!("token {token_id} not found")).into());
            }
            Err(error) => return Err(error.into()),
        };
        let issued = events
            .first()
            .and_then(|event| pb::TokenIssued::decode(event.payload.as_ref()).ok())
            .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("{stream} does not start with TokenIssued")))?;
        let owner = codec::id(&issued.organization_id, "organization_id")
            .map_err(|error| ApiError::Internal(anyhow::anyhow!("{stream}: {error}")))?;
        caller.require_organization(owner)?;
        if events.len() == 1 {
            let revoked =
                pb::TokenRevoked { token_id: token_id.to_string(), organization_id: owner.to_string() };
            let event = EventData::new(
                actor.derive_id(&format!("{stream}/revoke")),
                codec::TOKEN_REVOKED,
                revoked.encode_to_vec(),
            )
            .with_metadata(actor.metadata());
            match self.store().append(&stream, ExpectedVersion::Exact(0), vec![event]).await {
                Ok(_) | Err(StoreError::WrongExpectedVersion { .. }) => {}
                Err(error) => return Err(error.into()),
            }
        }
        // Refused from now on in this process, before the view catches up.
        self.revocations.revoke(token_id);
        Ok(())
    }

    /// Waits, within a bound, for the directory view to reflect `position` (0: no wait).
    pub async fn wait_for_view(&self, position: Position) -> Result<(), ListingsError> {
        Ok(self.view.wait_for(position).await?)
    }

    /// Waits at most `wait_ms` for the directory view to reflect every event before `head`.
    pub async fn wait_for_head_within(&self, head: Position, wait_ms: u64) -> Result<(), ListingsError> {
        Ok(self.view.wait_for_head_within(head, wait_ms).await?)
    }

    /// Registered organizations in id order after `after`, filtered, at most `limit`.
    pub fn list(
        &self,
        role: Option<Role>,
        country: Option<Country>,
        after: Option<Uuid>,
        limit: usize,
    ) -> (Vec<Organization>, bool) {
        let view = self.view.read();
        let start = after.map_or(std::ops::Bound::Unbounded, std::ops::Bound::Excluded);
        let mut matching = view
            .organizations
            .range((start, std::ops::Bound::Unbounded))
            .map(|(_, organization)| organization)
            .filter(|organization| role.is_none_or(|role| organization.roles.contains(&role)))
            .filter(|organization| country.is_none_or(|country| organization.country == country));
        let page: Vec<Organization> = matching.by_ref().take(limit).cloned().collect();
        let more = matching.next().is_some();
        (page, more)
    }
}

pub(crate) use symbiose_listings_contract::revoked_token;

/// Follows the log into the directory view and the revocation list, for as long as the
/// store is open. Events of other contexts are skipped; a bad organization event is logged
/// and skipped, so one cannot stop the view.
fn apply(view: &mut View, recorded: &RecordedEvent) {
    if recorded.event_type == codec::TOKEN_REVOKED {
        if let Some(token_id) = revoked_token(recorded) {
            view.revocations.revoke(token_id);
        }
        return;
    }
    if recorded.stream.category() != "organization" {
        return;
    }
    let Ok(id) = Uuid::parse_str(&recorded.stream.as_str()["organization-".len()..]) else { return };
    let event = match symbiose_listings_contract::decode_recorded_organization(recorded) {
        Ok(event) => event,
        Err(error) => {
            tracing::error!(position = %recorded.position, %error, "skipping an organization event that does not decode");
            return;
        }
    };
    let state = match view.organizations.remove(&id) {
        Some(organization) => OrganizationState::Registered(Box::new(organization)),
        None => OrganizationState::Unregistered,
    };
    if let OrganizationState::Registered(mut organization) = organization::evolve(state, &event) {
        // The view is public: it keeps no contacts, sealed or not.
        organization.contacts = organization::Contacts::None;
        view.organizations.insert(id, *organization);
    }
}
