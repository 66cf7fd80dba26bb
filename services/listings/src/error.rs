//! The listings service's errors, and their one mapping to an API error.

use symbiose_eventstore::StoreError;
use symbiose_kit::ApiError;
use symbiose_proto::convert::FieldError;

use crate::listing;
use crate::organization::Rejection;
use crate::vault::VaultError;

#[derive(Debug, thiserror::Error)]
pub enum ListingsError {
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("{0}")]
    NotFound(String),
    /// A rule of the directory refused the command.
    #[error(transparent)]
    Rejection(#[from] Rejection),
    /// A rule of listings refused the command.
    #[error(transparent)]
    Listing(#[from] listing::Rejection),
    /// A rule outside one aggregate refused the command (an identifier already registered).
    #[error("{0}")]
    Rejected(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Vault(#[from] VaultError),
    /// An event in the log that does not decode.
    #[error("corrupted event: {0}")]
    Corrupted(String),
}

impl ListingsError {
    pub fn invalid(field: impl Into<String>, message: impl std::fmt::Display) -> ListingsError {
        ListingsError::Invalid { field: field.into(), message: message.to_string() }
    }
}

impl From<FieldError> for ListingsError {
    fn from(error: FieldError) -> ListingsError {
        ListingsError::Invalid { field: error.field, message: error.message }
    }
}

impl From<ListingsError> for ApiError {
    fn from(error: ListingsError) -> ApiError {
        match error {
            ListingsError::Invalid { field, message } => ApiError::InvalidArgument { field, message },
            ListingsError::NotFound(message) => ApiError::NotFound(message),
            ListingsError::Rejection(rejection) => match rejection {
                Rejection::NotRegistered => ApiError::NotFound("organization not found".to_owned()),
                Rejection::UnknownSite(_) => ApiError::NotFound(rejection.to_string()),
                Rejection::CountryMismatch { .. } => {
                    ApiError::invalid_argument("legal_identifier", rejection)
                }
                Rejection::NoRole => ApiError::invalid_argument("roles", rejection),
                Rejection::PermitExpired => ApiError::invalid_argument("permit.valid_until", rejection),
                Rejection::PermitWithoutWasteCodes => {
                    ApiError::invalid_argument("permit.accepted_waste_codes", rejection)
                }
                Rejection::AlreadyRegistered
                | Rejection::TooManySites
                | Rejection::SiteNameTaken(_)
                | Rejection::TooManyPermits
                | Rejection::PermitNeedsRole { .. } => ApiError::FailedPrecondition(rejection.to_string()),
            },
            ListingsError::Listing(rejection) => listing_rejection(rejection),
            ListingsError::Rejected(message) => ApiError::FailedPrecondition(message),
            ListingsError::Conflict(message) => ApiError::Aborted(message),
            ListingsError::Unavailable(message) => ApiError::Unavailable(message),
            ListingsError::Api(error) => error,
            ListingsError::Store(StoreError::Overloaded(message)) => ApiError::Unavailable(message),
            ListingsError::Store(StoreError::WrongExpectedVersion { stream, .. }) => {
                ApiError::Aborted(format!("{stream} changed concurrently"))
            }
            ListingsError::Store(error) => {
                ApiError::Internal(anyhow::Error::new(error).context("event store"))
            }
            ListingsError::Vault(error) => ApiError::Internal(anyhow::Error::new(error).context("vault")),
            ListingsError::Corrupted(message) => ApiError::Internal(anyhow::anyhow!(message)),
        }
    }
}

/// Rules of a listing's terms are bad input naming the term; the others refuse the command.
fn listing_rejection(rejection: listing::Rejection) -> ApiError {
    use listing::Rejection as R;
    let field = match &rejection {
        R::UnitDoesNotFitMaterial { .. } => "terms.quantity.unit",
        R::WasteWithoutCode => "terms.waste_code",
        R::QuantityTooLarge => "terms.quantity.amount_milli",
        R::MinimumLotDoesNotFit => "terms.minimum_lot",
        R::PriceTooLarge => "terms.price_per_unit.amount_minor",
        R::AvailabilityWindowReversed => "terms.available_until",
        R::ExpiryPassed => "terms.expires_at",
        R::DistanceOutOfRange => "terms.max_distance_km",
        R::SideChanged => "terms.side",
        R::WrongUnit => "quantity.unit",
        R::NotFound => return ApiError::NotFound("listing not found".to_owned()),
        R::UnknownReservation(_) => return ApiError::NotFound(rejection.to_string()),
        R::AlreadyExists
        | R::HazardousWithoutPermit
        | R::Closed
        | R::AlreadyPublished
        | R::NotPublished
        | R::QuantityBelowCommitted(_)
        | R::QuantityExceedsAvailable { .. }
        | R::BelowMinimumLot(_)
        | R::ReservationConflict(_)
        | R::TooManyReservations
        | R::DeliveredExceedsQuantity { .. }
        | R::OpenReservations(_) => return ApiError::FailedPrecondition(rejection.to_string()),
    };
    ApiError::invalid_argument(field, rejection)
}

impl From<ListingsError> for tonic::Status {
    fn from(error: ListingsError) -> tonic::Status {
        ApiError::from(error).into()
    }
}
