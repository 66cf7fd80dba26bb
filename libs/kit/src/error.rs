//! The one mapping from an error to a gRPC status.
//!
//! Service crates have their own error enums; each converts into [`ApiError`], and only
//! [`ApiError`] becomes a [`tonic::Status`]. Bad input names its field (in the message and in
//! a `google.rpc.BadRequest` detail); internal errors are logged in full and answered without
//! detail. Every message is bounded ([`STATUS_MESSAGE_BYTES_MAX`]): a message that quotes
//! what the caller sent must not grow the answer's headers past what clients accept.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// Longest message of a status, and of a bad request's description, in bytes. Both travel in
/// headers (`grpc-message`, `grpc-status-details-bin`), which common clients cap at 16 KiB
/// in all; messages quote at most a short prefix of the input, so this is a last defence.
pub const STATUS_MESSAGE_BYTES_MAX: usize = 1024;

/// What a message cut at [`STATUS_MESSAGE_BYTES_MAX`] ends with.
const CUT_MARK: &str = "...";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Bad input; `field` is the request field's path (`page_size`, `site.location.latitude`).
    #[error("{field}: {message}")]
    InvalidArgument { field: String, message: String },
    /// An unknown id; the message says what was looked for.
    #[error("{0}")]
    NotFound(String),
    /// A rule refused the command (withdraw a sold listing).
    #[error("{0}")]
    FailedPrecondition(String),
    /// A version conflict that retries did not resolve.
    #[error("{0}")]
    Aborted(String),
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    PermissionDenied(String),
    /// Over a rate or size limit.
    #[error("{0}")]
    ResourceExhausted(String),
    /// Not ready yet (a read model behind the position asked for).
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    pub fn invalid_argument(field: impl Into<String>, message: impl std::fmt::Display) -> ApiError {
        ApiError::InvalidArgument { field: field.into(), message: message.to_string() }
    }

    pub fn not_found(what: &str, id: impl std::fmt::Display) -> ApiError {
        ApiError::NotFound(format!("{what} {id} not found"))
    }

    /// The same error naming its field as the request does: a domain names what it checks
    /// (`service_radius_km`), the caller needs the path in the request it sent
    /// (`profile.radius_km`). `paths` maps the one to the other; other fields stay as they are.
    pub fn in_request(self, paths: &[(&str, &str)]) -> ApiError {
        match self {
            ApiError::InvalidArgument { field, message } => {
                let field = paths
                    .iter()
                    .find(|(named, _)| *named == field)
                    .map_or(field, |(_, path)| (*path).to_owned());
                ApiError::InvalidArgument { field, message }
            }
            other => other,
        }
    }

    /// The same error for a call whose request holds none of the values a rule checks (publish
    /// a listing whose expiry has passed): what the domain calls bad input is then a state the
    /// call cannot change, `FAILED_PRECONDITION`.
    pub fn not_from_request(self) -> ApiError {
        match self {
            ApiError::InvalidArgument { message, .. } => ApiError::FailedPrecondition(message),
            other => other,
        }
    }
}

impl From<symbiose_proto::convert::FieldError> for ApiError {
    fn from(error: symbiose_proto::convert::FieldError) -> ApiError {
        ApiError::InvalidArgument { field: error.field, message: error.message }
    }
}

/// `message` cut to at most [`STATUS_MESSAGE_BYTES_MAX`] bytes, on a character boundary.
pub fn bounded(mut message: String) -> String {
    if message.len() <= STATUS_MESSAGE_BYTES_MAX {
        return message;
    }
    let mut cut = STATUS_MESSAGE_BYTES_MAX - CUT_MARK.len();
    while !message.is_char_boundary(cut) {
        cut -= 1;
    }
    message.truncate(cut);
    message.push_str(CUT_MARK);
    message
}

impl From<ApiError> for Status {
    fn from(error: ApiError) -> Status {
        let message = bounded(error.to_string());
        match error {
            ApiError::InvalidArgument { field, message: description } => Status::with_error_details(
                Code::InvalidArgument,
                message,
                ErrorDetails::with_bad_request_violation(field, bounded(description)),
            ),
            ApiError::NotFound(_) => Status::not_found(message),
            ApiError::FailedPrecondition(_) => Status::failed_precondition(message),
            ApiError::Aborted(_) => Status::aborted(message),
            ApiError::Unauthenticated(_) => Status::unauthenticated(message),
            ApiError::PermissionDenied(_) => Status::permission_denied(message),
            ApiError::ResourceExhausted(_) => Status::resource_exhausted(message),
            ApiError::Unavailable(_) => Status::unavailable(message),
            ApiError::Internal(error) => {
                tracing::error!(error = format!("{error:#}"), "internal error");
                Status::internal(message)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_input_names_its_field_in_the_message_and_the_details() {
        let status = Status::from(ApiError::invalid_argument("page_size", "must be at most 200"));
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(status.message(), "page_size: must be at most 200");
        let details = status.get_error_details();
        let violation = &details.bad_request().expect("a BadRequest detail").field_violations[0];
        assert_eq!(violation.field, "page_size");
        assert_eq!(violation.description, "must be at most 200");
    }

    #[test]
    fn a_domain_field_is_renamed_to_the_request_path() {
        let paths = [("service_radius_km", "profile.radius_km")];
        let renamed = ApiError::invalid_argument("service_radius_km", "1 to 1000 km").in_request(&paths);
        assert_eq!(renamed.to_string(), "profile.radius_km: 1 to 1000 km");
        let kept = ApiError::invalid_argument("request_id", "too long").in_request(&paths);
        assert_eq!(kept.to_string(), "request_id: too long");
        let other = ApiError::not_found("listing", "42").in_request(&paths);
        assert!(matches!(other, ApiError::NotFound(_)));
        let state =
            ApiError::invalid_argument("terms.expires_at", "the expiry has passed").not_from_request();
        assert_eq!(Status::from(state).code(), Code::FailedPrecondition);
    }

    #[test]
    fn long_messages_are_cut_on_a_character_boundary() {
        let status = Status::from(ApiError::invalid_argument("name", "é".repeat(5000)));
        assert!(status.message().len() <= STATUS_MESSAGE_BYTES_MAX, "{}", status.message().len());
        assert!(status.message().starts_with("name: éé") && status.message().ends_with(CUT_MARK));
        let details = status.get_error_details();
        let violation = &details.bad_request().expect("a BadRequest detail").field_violations[0];
        assert!(violation.description.len() <= STATUS_MESSAGE_BYTES_MAX);
        assert!(violation.description.starts_with("éé") && violation.description.ends_with(CUT_MARK));
        assert_eq!(violation.field, "name");
        for kind in [ApiError::NotFound("x".repeat(5000)), ApiError::FailedPrecondition("x".repeat(5000))] {
            let message = Status::from(kind).message().to_owned();
            assert!(message.len() <= STATUS_MESSAGE_BYTES_MAX, "{}", message.len());
            assert!(message.starts_with("xx") && message.ends_with(CUT_MARK), "{message}");
        }
        assert_eq!(bounded("short".to_owned()), "short");
    }

    #[test]
    fn internal_errors_are_answered_without_their_detail() {
        let error = anyhow::anyhow!("disk full").context("writing segment 7");
        let status = Status::from(ApiError::from(error));
        assert_eq!(status.code(), Code::Internal);
        assert_eq!(status.message(), "internal error");
    }

    #[test]
    fn each_kind_has_its_code() {
        let cases = [
            (ApiError::not_found("listing", "42"), Code::NotFound),
            (ApiError::FailedPrecondition("sold".into()), Code::FailedPrecondition),
            (ApiError::Aborted("conflict".into()), Code::Aborted),
            (ApiError::Unauthenticated("no token".into()), Code::Unauthenticated),
            (ApiError::PermissionDenied("not yours".into()), Code::PermissionDenied),
            (ApiError::ResourceExhausted("slow down".into()), Code::ResourceExhausted),
            (ApiError::Unavailable("behind".into()), Code::Unavailable),
        ];
        for (error, code) in cases {
            assert_eq!(Status::from(error).code(), code);
        }
    }
}
