//! The one mapping from an error to a gRPC status.
//!
//! Service crates have their own error enums; each converts into [`ApiError`], and only
//! [`ApiError`] becomes a [`tonic::Status`]. Bad input names its field (in the message and in
//! a `google.rpc.BadRequest` detail); internal errors are logged in full and answered without
//! detail.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

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
}

impl From<symbiose_proto::convert::FieldError> for ApiError {
    fn from(error: symbiose_proto::convert::FieldError) -> ApiError {
        ApiError::InvalidArgument { field: error.field, message: error.message }
    }
}

impl From<ApiError> for Status {
    fn from(error: ApiError) -> Status {
        let message = error.to_string();
        match error {
            ApiError::InvalidArgument { field, message: description } => Status::with_error_details(
                Code::InvalidArgument,
                message,
                ErrorDetails::with_bad_request_violation(field, description),
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
