//! The Passport aggregate, one per stream `passport-<id>`: what its owner declares about a lot
//! (or what it made from a delivered lot), from a draft to published, amended whole while it is
//! in use, and withdrawn for good with a reason a visitor reads.
//!
//! Who may create one (the producer of the listing, the receiver of the delivery) and what its
//! inputs are worth are looked up by the service's shell and passed in; `decide` only applies
//! the rules.

use symbiose_passports_contract::passport::{Declaration, PassportEvent, Subject};
use uuid::Uuid;

use crate::RejectionKind;
use crate::composition::{self, CompositionError, InputFacts};
use crate::gs1;

/// Longest reason of a withdrawal, in characters.
pub const REASON_CHARS_MAX: usize = 500;

/// Where a passport is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Stage {
    /// Seen by its owner only.
    Draft,
    /// On its public page.
    Published,
    /// Its page says it was withdrawn, and why; it changes no more.
    Withdrawn,
}

/// A passport as its events made it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Record {
    pub passport_id: Uuid,
    pub owner: Uuid,
    pub subject: Subject,
    pub declaration: Declaration,
    pub stage: Stage,
    pub created_at_ms: i64,
    pub amended_at_ms: Option<i64>,
    pub published_at_ms: Option<i64>,
    pub withdrawn_at_ms: Option<i64>,
    pub withdrawal_reason: Option<String>,
}

impl Record {
    /// Whether anyone may see it: once published, even withdrawn since. A draft, and a draft
    /// withdrawn before it was ever published, stay its owner's.
    pub fn is_public(&self) -> bool {
        self.published_at_ms.is_some()
    }
}

/// The aggregate's state: nothing before its creation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Passport(pub Option<Record>);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Create {
        passport_id: Uuid,
        owner: Uuid,
        subject: Subject,
        declaration: Declaration,
    },
    /// The whole declaration restated.
    Amend {
        declaration: Declaration,
    },
    Publish,
    Withdraw {
        reason: String,
    },
}

/// What `decide` is told: the time, and what the declaration's inputs are worth.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub now_ms: i64,
    pub inputs: &'a [InputFacts],
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error(transparent)]
    Composition(#[from] CompositionError),
    #[error("declaration.gtin: {0}")]
    Gtin(gs1::Gs1Error),
    #[error("declaration.batch: {0}")]
    Batch(gs1::Gs1Error),
    #[error("passport {0} already exists")]
    Exists(Uuid),
    #[error("no such passport")]
    NotFound,
    #[error("the passport was withdrawn: it changes no more")]
    Withdrawn,
    #[error("reason: a withdrawal says why, in 1 to {REASON_CHARS_MAX} characters")]
    Reason,
}

impl Rejection {
    /// How the refusal reaches a caller; a declaration's own rules name their field with the
    /// index of its component or input ([`Rejection::field`]).
    pub fn kind(&self) -> RejectionKind {
        let field = match self {
            Rejection::Composition(_) => "declaration",
            Rejection::Gtin(_) => "declaration.gtin",
            Rejection::Batch(_) => "declaration.batch",
            Rejection::Reason => "reason",
            Rejection::NotFound => return RejectionKind::NotFound,
            Rejection::Exists(_) | Rejection::Withdrawn => return RejectionKind::FailedPrecondition,
        };
        RejectionKind::InvalidArgument { field }
    }

    /// The field at fault, as the API spells it, for a refusal of bad input.
    pub fn field(&self) -> Option<String> {
        match (self, self.kind()) {
            (Rejection::Composition(error), _) => Some(error.field()),
            (_, RejectionKind::InvalidArgument { field }) => Some(field.to_owned()),
            _ => None,
        }
    }

    /// The API's error for this refusal.
    pub fn to_api(&self) -> symbiose_kit::ApiError {
        match self.field() {
            Some(field) => symbiose_kit::ApiError::invalid_argument(field, self),
            None => symbiose_shell::rejected(self.kind(), self),
        }
    }
}

/// The events `command` makes of `passport`, or why it is refused. A command that changes
/// nothing (publishing a published passport, an amendment that restates the declaration)
/// makes no event.
pub fn decide(
    passport: &Passport,
    command: Command,
    context: Context<'_>,
) -> Result<Vec<PassportEvent>, Rejection> {
    let at_ms = context.now_ms;
    match (&passport.0, command) {
        (None, Command::Create { passport_id, owner, subject, declaration }) => {
            checked(&declaration, passport_id, context)?;
            Ok(vec![PassportEvent::Created { passport_id, owner, subject, declaration, at_ms }])
        }
        (Some(record), Command::Create { .. }) => Err(Rejection::Exists(record.passport_id)),
        (None, _) => Err(Rejection::NotFound),
        (Some(record), _) if record.stage == Stage::Withdrawn => Err(Rejection::Withdrawn),
        (Some(record), Command::Amend { declaration }) => {
            checked(&declaration, record.passport_id, context)?;
            if declaration == record.declaration {
                return Ok(Vec::new());
            }
            Ok(vec![PassportEvent::Amended { passport_id: record.passport_id, declaration, at_ms }])
        }
        (Some(record), Command::Publish) => Ok(match record.stage {
            Stage::Published => Vec::new(),
            _ => vec![PassportEvent::Published { passport_id: record.passport_id, at_ms }],
        }),
        (Some(record), Command::Withdraw { reason }) => {
            let reason = reason.trim();
            let chars = reason.chars().count();
            if chars == 0 || chars > REASON_CHARS_MAX || reason.chars().any(char::is_control) {
                return Err(Rejection::Reason);
            }
            Ok(vec![PassportEvent::Withdrawn {
                passport_id: record.passport_id,
                reason: reason.to_owned(),
                at_ms,
            }])
        }
    }
}

/// Every rule of a declaration: its own, its GS1 identifiers, and its inputs'.
fn checked(declaration: &Declaration, passport_id: Uuid, context: Context<'_>) -> Result<(), Rejection> {
    composition::check(declaration, passport_id)?;
    if let Some(gtin) = &declaration.gtin {
        let normal = gs1::gtin(gtin).map_err(Rejection::Gtin)?;
        if &normal != gtin {
            return Err(Rejection::Gtin(gs1::Gs1Error::GtinLength(gtin.len())));
        }
    }
    if let Some(batch) = &declaration.batch {
        gs1::batch(batch).map_err(Rejection::Batch)?;
    }
    composition::check_inputs(declaration, context.inputs)?;
    Ok(())
}

/// `passport` after `event`.
pub fn evolve(passport: Passport, event: &PassportEvent) -> Passport {
    let Passport(record) = passport;
    Passport(match (record, event) {
        (None, PassportEvent::Created { passport_id, owner, subject, declaration, at_ms }) => Some(Record {
            passport_id: *passport_id,
            owner: *owner,
            subject: *subject,
            declaration: declaration.clone(),
            stage: Stage::Draft,
            created_at_ms: *at_ms,
            amended_at_ms: None,
            published_at_ms: None,
            withdrawn_at_ms: None,
            withdrawal_reason: None,
        }),
        (Some(record), PassportEvent::Amended { declaration, at_ms, .. }) => {
            Some(Record { declaration: declaration.clone(), amended_at_ms: Some(*at_ms), ..record })
        }
        (Some(record), PassportEvent::Published { at_ms, .. }) => {
            Some(Record { stage: Stage::Published, published_at_ms: Some(*at_ms), ..record })
        }
        (Some(record), PassportEvent::Withdrawn { reason, at_ms, .. }) => Some(Record {
            stage: Stage::Withdrawn,
            withdrawn_at_ms: Some(*at_ms),
            withdrawal_reason: Some(reason.clone()),
            ..record
        }),
        // An event that does not fit the state it meets changes nothing: the log is what it is.
        (record, _) => record,
    })
}

#[cfg(test)]
mod tests {
    use symbiose_domain::MaterialFamily;
    use symbiose_passports_contract::passport::{Basis, Component, Input, Texts};

    use super::*;

    const ID: Uuid = Uuid::from_u128(7);
    const OWNER: Uuid = Uuid::from_u128(8);

    fn declaration() -> Declaration {
        Declaration {
            name: "Granulés PEHD régénérés".to_owned(),
            description: Texts { fr: "Lot de granulés".to_owned(), ..Texts::default() },
            family: MaterialFamily::Plastics,
            waste_code: None,
            composition: vec![Component {
                material: "PEHD".to_owned(),
                share_bp: 9_700,
                basis: Basis::Certified,
                document: Some("RecyClass 2026-0042".to_owned()),
            }],
            recycled_content_bp: 9_700,
            advice: Texts::default(),
            inputs: Vec::new(),
            gtin: Some("03012345678902".to_owned()),
            batch: Some("LOT-2026-17".to_owned()),
        }
    }

    fn context() -> Context<'static> {
        Context { now_ms: 1_000, inputs: &[] }
    }

    fn run(commands: Vec<Command>) -> Result<Passport, Rejection> {
        let mut passport = Passport::default();
        for command in commands {
            for event in decide(&passport, command, context())? {
                passport = evolve(passport, &event);
            }
        }
        Ok(passport)
    }

    fn create() -> Command {
        Command::Create {
            passport_id: ID,
            owner: OWNER,
            subject: Subject::Listing(Uuid::from_u128(9)),
            declaration: declaration(),
        }
    }

    #[test]
    fn a_passport_goes_from_draft_to_published_to_withdrawn() {
        let draft = run(vec![create()]).expect("created");
        assert_eq!(draft.0.as_ref().map(|record| record.stage), Some(Stage::Draft));
        let published = run(vec![create(), Command::Publish]).expect("published");
        assert_eq!(published.0.as_ref().and_then(|record| record.published_at_ms), Some(1_000));
        let withdrawn =
            run(vec![create(), Command::Publish, Command::Withdraw { reason: " Lot rappelé ".to_owned() }])
                .expect("withdrawn");
        let record = withdrawn.0.expect("a record");
        assert_eq!(
            (record.stage, record.withdrawal_reason.as_deref()),
            (Stage::Withdrawn, Some("Lot rappelé"))
        );
    }

    #[test]
    fn a_repeated_step_changes_nothing_and_a_withdrawn_passport_changes_no_more() {
        let published = run(vec![create(), Command::Publish]).expect("published");
        assert_eq!(decide(&published, Command::Publish, context()), Ok(Vec::new()));
        assert_eq!(
            decide(&published, Command::Amend { declaration: declaration() }, context()),
            Ok(Vec::new())
        );
        let withdrawn =
            run(vec![create(), Command::Withdraw { reason: "erreur".to_owned() }]).expect("withdrawn");
        for command in [
            Command::Publish,
            Command::Amend { declaration: declaration() },
            Command::Withdraw { reason: "x".to_owned() },
        ] {
            assert_eq!(decide(&withdrawn, command, context()), Err(Rejection::Withdrawn));
        }
        assert_eq!(decide(&withdrawn, create(), context()), Err(Rejection::Exists(ID)));
    }

    #[test]
    fn an_amendment_restates_the_declaration_under_the_same_rules() {
        let created = run(vec![create()]).expect("created");
        let mut amended = declaration();
        amended.recycled_content_bp = 9_800;
        let events =
            decide(&created, Command::Amend { declaration: amended.clone() }, context()).expect("amended");
        let after = events.iter().fold(created.clone(), evolve);
        assert_eq!(after.0.as_ref().map(|record| &record.declaration), Some(&amended));
        amended.composition[0].share_bp = 10_001;
        let refused = decide(&created, Command::Amend { declaration: amended }, context()).unwrap_err();
        assert_eq!(refused.field().as_deref(), Some("declaration.composition[0].share_bp"));
    }

    #[test]
    fn gs1_identifiers_and_a_withdrawal_reason_are_checked() {
        let mut bad = declaration();
        bad.gtin = Some("03012345678900".to_owned());
        let Command::Create { passport_id, owner, subject, .. } = create() else { unreachable!() };
        let refused = decide(
            &Passport::default(),
            Command::Create { passport_id, owner, subject, declaration: bad },
            context(),
        );
        assert_eq!(refused.unwrap_err().kind(), RejectionKind::InvalidArgument { field: "declaration.gtin" });
        let created = run(vec![create()]).expect("created");
        let blank = decide(&created, Command::Withdraw { reason: "  ".to_owned() }, context()).unwrap_err();
        assert_eq!(blank.kind(), RejectionKind::InvalidArgument { field: "reason" });
        assert_eq!(decide(&Passport::default(), Command::Publish, context()), Err(Rejection::NotFound));
    }

    #[test]
    fn a_derived_passport_is_held_to_its_inputs() {
        let input = Uuid::from_u128(20);
        let mut derived = declaration();
        derived.inputs = vec![Input { passport_id: input, share_bp: 5_000 }];
        derived.recycled_content_bp = 5_000;
        let facts = [InputFacts { passport_id: input, published: true, recycled_content_bp: 9_700 }];
        let context = Context { now_ms: 1, inputs: &facts };
        let Command::Create { passport_id, owner, subject, .. } = create() else { unreachable!() };
        let refused = decide(
            &Passport::default(),
            Command::Create { passport_id, owner, subject, declaration: derived.clone() },
            context,
        );
        assert_eq!(refused.unwrap_err().field().as_deref(), Some("declaration.recycled_content_bp"));
        derived.recycled_content_bp = 4_850;
        assert!(
            decide(
                &Passport::default(),
                Command::Create { passport_id, owner, subject, declaration: derived },
                context
            )
            .is_ok()
        );
    }
}
