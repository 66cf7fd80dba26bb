//! End-of-life instructions, one aggregate per stream `instructions-<id>`: how a material family
//! or a waste code is sorted, recovered or disposed of, written by an institution (ADEME, a
//! chamber of commerce, a water agency) in French, German and English with the source they come
//! from. Passports show the ones that apply to their lot, with who wrote them. Instructions are
//! not edited: an institution withdraws them and publishes new ones.

use symbiose_passports_contract::instructions::{InstructionsEvent, Scope, Source};
use symbiose_passports_contract::passport::Texts;
use uuid::Uuid;

use crate::RejectionKind;
use crate::composition::TEXT_CHARS_MAX;

/// Longest title of a source, in characters.
pub const SOURCE_TITLE_CHARS_MAX: usize = 200;
/// Longest URL of a source, in bytes.
pub const SOURCE_URL_BYTES_MAX: usize = 500;

/// Instructions as their events made them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Published {
    pub instructions_id: Uuid,
    pub institution: Uuid,
    pub institution_name: String,
    pub scope: Scope,
    pub text: Texts,
    pub source: Source,
    pub published_at_ms: i64,
    pub withdrawn_at_ms: Option<i64>,
}

/// The aggregate's state: nothing before they are published.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Instructions(pub Option<Published>);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Publish {
        instructions_id: Uuid,
        institution: Uuid,
        institution_name: String,
        scope: Scope,
        text: Texts,
        source: Source,
    },
    Withdraw,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("{field}: {message}")]
    Invalid { field: &'static str, message: String },
    #[error("instructions {0} were already published")]
    Exists(Uuid),
    #[error("no such instructions")]
    NotFound,
}

impl Rejection {
    pub fn kind(&self) -> RejectionKind {
        match self {
            Rejection::Invalid { field, .. } => RejectionKind::InvalidArgument { field },
            Rejection::Exists(_) => RejectionKind::FailedPrecondition,
            Rejection::NotFound => RejectionKind::NotFound,
        }
    }
}

fn invalid(field: &'static str, message: impl Into<String>) -> Rejection {
    Rejection::Invalid { field, message: message.into() }
}

/// The events `command` makes of `instructions`, or why it is refused. Withdrawing withdrawn
/// instructions makes no event.
pub fn decide(
    instructions: &Instructions,
    command: Command,
    now_ms: i64,
) -> Result<Vec<InstructionsEvent>, Rejection> {
    match (&instructions.0, command) {
        (None, Command::Publish { instructions_id, institution, institution_name, scope, text, source }) => {
            for (field, value) in [("text.en", &text.en), ("text.fr", &text.fr), ("text.de", &text.de)] {
                let chars = value.trim().chars().count();
                if chars == 0 {
                    return Err(invalid(
                        field,
                        "instructions are given in French, German and English: this one is missing",
                    ));
                }
                if chars > TEXT_CHARS_MAX {
                    return Err(invalid(field, format!("{chars} characters, at most {TEXT_CHARS_MAX}")));
                }
                if value.chars().any(|char| char.is_control() && char != '\n') {
                    return Err(invalid(field, "holds a control character"));
                }
            }
            let title = source.title.trim();
            if title.is_empty()
                || title.chars().count() > SOURCE_TITLE_CHARS_MAX
                || title.chars().any(char::is_control)
            {
                return Err(invalid(
                    "source_title",
                    format!("the source's title is 1 to {SOURCE_TITLE_CHARS_MAX} characters"),
                ));
            }
            if let Some(url) = &source.url {
                let plain = url.len() <= SOURCE_URL_BYTES_MAX
                    && (url.starts_with("https://") || url.starts_with("http://"))
                    && url.len() > "https://".len()
                    && !url.chars().any(|char| {
                        char.is_whitespace() || char.is_control() || matches!(char, '"' | '<' | '>')
                    });
                if !plain {
                    return Err(invalid(
                        "source_url",
                        format!(
                            "an http(s) URL of at most {SOURCE_URL_BYTES_MAX} bytes, without spaces or quotes"
                        ),
                    ));
                }
            }
            let source = Source { title: title.to_owned(), url: source.url };
            Ok(vec![InstructionsEvent::Published {
                instructions_id,
                institution,
                institution_name,
                scope,
                text,
                source,
                at_ms: now_ms,
            }])
        }
        (Some(published), Command::Publish { .. }) => Err(Rejection::Exists(published.instructions_id)),
        (None, Command::Withdraw) => Err(Rejection::NotFound),
        (Some(published), Command::Withdraw) => Ok(match published.withdrawn_at_ms {
            Some(_) => Vec::new(),
            None => vec![InstructionsEvent::Withdrawn {
                instructions_id: published.instructions_id,
                at_ms: now_ms,
            }],
        }),
    }
}

/// `instructions` after `event`.
pub fn evolve(instructions: Instructions, event: &InstructionsEvent) -> Instructions {
    let Instructions(published) = instructions;
    Instructions(match (published, event) {
        (
            None,
            InstructionsEvent::Published {
                instructions_id,
                institution,
                institution_name,
                scope,
                text,
                source,
                at_ms,
            },
        ) => Some(Published {
            instructions_id: *instructions_id,
            institution: *institution,
            institution_name: institution_name.clone(),
            scope: scope.clone(),
            text: text.clone(),
            source: source.clone(),
            published_at_ms: *at_ms,
            withdrawn_at_ms: None,
        }),
        (Some(published), InstructionsEvent::Withdrawn { at_ms, .. }) => {
            Some(Published { withdrawn_at_ms: Some(*at_ms), ..published })
        }
        (published, _) => published,
    })
}

#[cfg(test)]
mod tests {
    use symbiose_domain::MaterialFamily;

    use super::*;

    fn publish(text: Texts, url: Option<&str>) -> Command {
        Command::Publish {
            instructions_id: Uuid::from_u128(1),
            institution: Uuid::from_u128(2),
            institution_name: "ADEME Grand Est".to_owned(),
            scope: Scope::Family(MaterialFamily::Plastics),
            text,
            source: Source { title: "Guide du tri 2026".to_owned(), url: url.map(str::to_owned) },
        }
    }

    fn three() -> Texts {
        Texts {
            en: "Recycle as HDPE.".to_owned(),
            fr: "À recycler en PEHD.".to_owned(),
            de: "Als HDPE recyceln.".to_owned(),
        }
    }

    #[test]
    fn instructions_come_in_three_languages_with_their_source() {
        let events =
            decide(&Instructions::default(), publish(three(), Some("https://librairie.ademe.fr/guide")), 5)
                .expect("published");
        let published = events.iter().fold(Instructions::default(), evolve);
        assert_eq!(published.0.as_ref().map(|published| published.published_at_ms), Some(5));
        let missing =
            decide(&Instructions::default(), publish(Texts { de: " ".to_owned(), ..three() }, None), 5);
        assert_eq!(missing.unwrap_err().kind(), RejectionKind::InvalidArgument { field: "text.de" });
        let url = decide(&Instructions::default(), publish(three(), Some("javascript:alert(1)")), 5);
        assert_eq!(url.unwrap_err().kind(), RejectionKind::InvalidArgument { field: "source_url" });
    }

    #[test]
    fn instructions_are_withdrawn_once_and_never_published_twice() {
        let published = decide(&Instructions::default(), publish(three(), None), 5)
            .expect("published")
            .iter()
            .fold(Instructions::default(), evolve);
        assert_eq!(decide(&published, publish(three(), None), 6), Err(Rejection::Exists(Uuid::from_u128(1))));
        let withdrawn =
            decide(&published, Command::Withdraw, 7).expect("withdrawn").iter().fold(published, evolve);
        assert_eq!(withdrawn.0.as_ref().and_then(|published| published.withdrawn_at_ms), Some(7));
        assert_eq!(decide(&withdrawn, Command::Withdraw, 8), Ok(Vec::new()));
        assert_eq!(decide(&Instructions::default(), Command::Withdraw, 8), Err(Rejection::NotFound));
    }
}
