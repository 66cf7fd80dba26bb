//! The passports' shell: the commands on passports and instructions, with what `decide` needs
//! looked up around them (who owns the lot, what the inputs are worth, the institution's name),
//! and the view that answers reads.

use std::sync::{Arc, RwLockReadGuard};

use symbiose_eventstore::{EventStore, Position, RecordedEvent};
use symbiose_kit::ApiError;
use symbiose_kit::auth::Caller;
use symbiose_passports_contract::instructions::{Scope, Source};
use symbiose_passports_contract::passport::{Declaration, Subject, Texts};
use symbiose_passports_contract::{instructions_stream, passport_stream};
use symbiose_shell::{Actor, Decision, EventIds, Followed, Loaded, Shell, Snapshots, load, now_ms, rejected};
use uuid::Uuid;

use crate::composition::InputFacts;
use crate::instructions::{self, Instructions};
use crate::passport::{self, Passport, Stage};
use crate::view::PassportsView;

/// The name of the view in logs.
pub const VIEW_NAME: &str = "passports view";

pub struct Registry<S> {
    shell: Shell<S>,
    view: Followed<PassportsView>,
}

impl<S> std::fmt::Debug for Registry<S> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Registry").field("view", &self.view).finish_non_exhaustive()
    }
}

impl<S: EventStore> Registry<S> {
    /// The passports' shell over `store`, its view following the log from its snapshot.
    pub fn start(store: S, snapshots: Snapshots) -> Arc<Registry<S>> {
        let view = Followed::start_snapshotted(store.clone(), VIEW_NAME, PassportsView::default(), snapshots);
        Arc::new(Registry { shell: Shell::new(store, EventIds::Versioned), view })
    }

    pub fn view(&self) -> RwLockReadGuard<'_, PassportsView> {
        self.view.read()
    }

    pub fn position(&self) -> Position {
        self.view.position()
    }

    pub async fn wait_for(&self, position: Position) -> Result<(), ApiError> {
        self.view.wait_for(position).await
    }

    /// Waits until the view holds every event written so far.
    pub async fn caught_up(&self) -> Result<(), ApiError> {
        self.view.wait_for_head(self.shell.store().head()).await
    }

    /// Refuses a GTIN and batch another organization's passport declares: its Digital Link
    /// and the QR codes printed with it are that organization's.
    fn check_digital_link(&self, declaration: &Declaration, owner: Uuid) -> Result<(), ApiError> {
        let Some(gtin) = &declaration.gtin else { return Ok(()) };
        match self.view().digital_link_holder(gtin, declaration.batch.as_deref(), owner) {
            Some(_) => Err(ApiError::FailedPrecondition(format!(
                "declaration.gtin: GTIN {gtin} with this batch is another organization's: its Digital Link names that organization's lot"
            ))),
            None => Ok(()),
        }
    }

    /// What the inputs named by `declaration` are worth, from the view: those the caller sees
    /// (published ones, and its own), so another's draft reads as unknown.
    fn input_facts(&self, declaration: &Declaration, caller: &Caller) -> Vec<InputFacts> {
        let view = self.view();
        declaration
            .inputs
            .iter()
            .filter_map(|input| view.passports.get(&input.passport_id))
            .filter(|held| held.record.is_public() || caller.require_organization(held.record.owner).is_ok())
            .map(|held| InputFacts {
                passport_id: held.record.passport_id,
                published: held.record.stage == Stage::Published,
                recycled_content_bp: held.record.declaration.recycled_content_bp,
            })
            .collect()
    }

    /// `caller` makes a passport of `subject`: the producer of the listing, the receiver of the
    /// delivered shipment, or the operator on their behalf. Returns its id and what was written.
    pub async fn create(
        &self,
        actor: &Actor,
        caller: &Caller,
        subject: Subject,
        declaration: Declaration,
    ) -> Result<(Uuid, u64, u64), ApiError> {
        self.caught_up().await?;
        let owner = self.view().owner_of(subject).ok_or_else(|| match subject {
            Subject::Listing(listing) => ApiError::NotFound(format!("listing {listing} is not an offer on the marketplace")),
            Subject::Delivery(shipment) => ApiError::FailedPrecondition(format!(
                "shipment {shipment} is unknown or not delivered yet: a passport of a delivery is made once it arrived"
            )),
        })?;
        caller.require_organization(owner).map_err(|_| {
            ApiError::PermissionDenied(match subject {
                Subject::Listing(_) => {
                    "only the producer that offers the listing makes its passport".to_owned()
                }
                Subject::Delivery(_) => "only the receiver of the delivery makes its passport".to_owned(),
            })
        })?;
        self.check_digital_link(&declaration, owner)?;
        let passport_id = actor.derive_id("passport");
        let stream = passport_stream(passport_id);
        let inputs = self.input_facts(&declaration, caller);
        let executed = self
            .shell
            .execute(
                &stream,
                actor,
                || {
                    load(
                        self.shell.store(),
                        &stream,
                        symbiose_passports_contract::passport::decode_recorded,
                        passport::evolve,
                    )
                },
                |loaded: &Loaded<Passport>| {
                    let command = passport::Command::Create {
                        passport_id,
                        owner,
                        subject,
                        declaration: declaration.clone(),
                    };
                    let context = passport::Context { now_ms: now_ms(), inputs: &inputs };
                    let events =
                        passport::decide(&loaded.state, command, context).map_err(|error| error.to_api())?;
                    Ok(Decision::new(
                        events.iter().map(symbiose_passports_contract::passport::encode).collect(),
                        (),
                    ))
                },
            )
            .await?;
        Ok((passport_id, executed.written.version, executed.written.position.as_u64()))
    }

    /// `caller` (its owner, or the operator) amends, publishes or withdraws passport
    /// `passport_id`; returns what was written.
    pub async fn change(
        &self,
        actor: &Actor,
        caller: &Caller,
        passport_id: Uuid,
        command: passport::Command,
    ) -> Result<(u64, u64), ApiError> {
        let stream = passport_stream(passport_id);
        let inputs = match &command {
            passport::Command::Amend { declaration } => {
                self.caught_up().await?;
                self.input_facts(declaration, caller)
            }
            _ => Vec::new(),
        };
        let executed = self
            .shell
            .execute(
                &stream,
                actor,
                || {
                    load(
                        self.shell.store(),
                        &stream,
                        symbiose_passports_contract::passport::decode_recorded,
                        passport::evolve,
                    )
                },
                |loaded: &Loaded<Passport>| {
                    let not_found = || ApiError::NotFound(format!("passport {passport_id} not found"));
                    let Some(record) = &loaded.state.0 else { return Err(not_found()) };
                    if caller.require_organization(record.owner).is_err() {
                        // Another's passport never published is not there for this caller.
                        return Err(if record.is_public() {
                            ApiError::PermissionDenied("only the passport's owner changes it".to_owned())
                        } else {
                            not_found()
                        });
                    }
                    if let passport::Command::Amend { declaration } = &command {
                        self.check_digital_link(declaration, record.owner)?;
                    }
                    let context = passport::Context { now_ms: now_ms(), inputs: &inputs };
                    let events = passport::decide(&loaded.state, command.clone(), context)
                        .map_err(|error| error.to_api())?;
                    Ok(Decision::new(
                        events.iter().map(symbiose_passports_contract::passport::encode).collect(),
                        (),
                    ))
                },
            )
            .await?;
        Ok((executed.written.version, executed.written.position.as_u64()))
    }

    /// `caller`, an institution, publishes end-of-life instructions for `scope`.
    pub async fn publish_instructions(
        &self,
        actor: &Actor,
        scope: Scope,
        text: Texts,
        source: Source,
    ) -> Result<(Uuid, u64, u64), ApiError> {
        self.caught_up().await?;
        let institution = actor.organization;
        let institution_name =
            self.view().custody.organizations.get(&institution).cloned().ok_or_else(|| {
                ApiError::FailedPrecondition(format!("organization {institution} is not in the directory"))
            })?;
        let instructions_id = actor.derive_id("instructions");
        let stream = instructions_stream(instructions_id);
        let executed = self
            .shell
            .execute(
                &stream,
                actor,
                || load(self.shell.store(), &stream, decode_instructions, instructions::evolve),
                |loaded: &Loaded<Instructions>| {
                    let command = instructions::Command::Publish {
                        instructions_id,
                        institution,
                        institution_name: institution_name.clone(),
                        scope: scope.clone(),
                        text: text.clone(),
                        source: source.clone(),
                    };
                    let events = instructions::decide(&loaded.state, command, now_ms())
                        .map_err(|error| rejected(error.kind(), error))?;
                    Ok(Decision::new(
                        events.iter().map(symbiose_passports_contract::instructions::encode).collect(),
                        (),
                    ))
                },
            )
            .await?;
        Ok((instructions_id, executed.written.version, executed.written.position.as_u64()))
    }

    /// `caller` (the institution that published them, or the operator) withdraws instructions.
    pub async fn withdraw_instructions(
        &self,
        actor: &Actor,
        caller: &Caller,
        instructions_id: Uuid,
    ) -> Result<(u64, u64), ApiError> {
        let stream = instructions_stream(instructions_id);
        let executed = self
            .shell
            .execute(
                &stream,
                actor,
                || load(self.shell.store(), &stream, decode_instructions, instructions::evolve),
                |loaded: &Loaded<Instructions>| {
                    if let Some(published) = &loaded.state.0 {
                        caller.require_organization(published.institution).map_err(|_| {
                            ApiError::PermissionDenied(
                                "only the institution that published them withdraws instructions".to_owned(),
                            )
                        })?;
                    }
                    let events =
                        instructions::decide(&loaded.state, instructions::Command::Withdraw, now_ms())
                            .map_err(|error| rejected(error.kind(), error))?;
                    Ok(Decision::new(
                        events.iter().map(symbiose_passports_contract::instructions::encode).collect(),
                        (),
                    ))
                },
            )
            .await?;
        Ok((executed.written.version, executed.written.position.as_u64()))
    }
}

fn decode_instructions(
    recorded: &RecordedEvent,
) -> Result<symbiose_passports_contract::instructions::InstructionsEvent, String> {
    symbiose_passports_contract::instructions::decode_recorded(recorded)
}
