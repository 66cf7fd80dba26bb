//! The listings service's errors, and their one mapping to an API error; the rules'
//! refusals go through the shell's one way ([`symbiose_shell::rejected`]).

use symbiose_eventstore::StoreError;
use symbiose_kit::ApiError;
use symbiose_proto::convert::FieldError;
use symbiose_shell::{RejectionKind, rejected};

use crate::listing;
use crate::organization::Rejection;
use crate::vault::VaultError;

#[derive(Debug, thiserror::Error)]
pub enum ListingsError {
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    /// A rule of the directory refused the command.
    #[error(transparent)]
    Rejection(#[from] Rejection),
    /// A rule of listings refused the command.
    #[error(transparent)]
    Listing(#[from] listing::Rejection),
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Vault(#[from] VaultError),
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
            ListingsError::Rejection(rejection) => organization_rejected(rejection),
            ListingsError::Listing(rejection) => listing_rejected(rejection),
            ListingsError::Api(error) => error,
            ListingsError::Store(error) => symbiose_shell::store_error(error),
            ListingsError::Vault(error) => ApiError::Internal(anyhow::Error::new(error).context("vault")),
        }
    }
}

/// A rule of the directory refused the command: an unknown organization or site is not found,
/// a bad registration or permit is bad input naming its field, the others refuse the command.
pub(crate) fn organization_rejected(rejection: Rejection) -> ApiError {
    let kind = match &rejection {
        Rejection::NotRegistered => {
            return rejected(RejectionKind::NotFound, "organization not found");
        }
        Rejection::UnknownSite(_) => RejectionKind::NotFound,
        Rejection::CountryMismatch { .. } => RejectionKind::InvalidArgument { field: "legal_identifier" },
        Rejection::NoRole => RejectionKind::InvalidArgument { field: "roles" },
        Rejection::PermitExpired => RejectionKind::InvalidArgument { field: "permit.valid_until" },
        Rejection::PermitWithoutWasteCodes => {
            RejectionKind::InvalidArgument { field: "permit.accepted_waste_codes" }
        }
        Rejection::AlreadyRegistered
        | Rejection::TooManySites
        | Rejection::SiteNameTaken(_)
        | Rejection::TooManyPermits
        | Rejection::PermitNeedsRole { .. } => RejectionKind::FailedPrecondition,
    };
    rejected(kind, rejection)
}

/// Rules of a listing's terms are bad input naming the term; the others refuse the command.
pub(crate) fn listing_rejected(rejection: listing::Rejection) -> ApiError {
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
        R::NotFound => return rejected(RejectionKind::NotFound, "listing not found"),
        R::UnknownReservation(_) => return rejected(RejectionKind::NotFound, rejection),
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
        | R::OpenReservations(_) => return rejected(RejectionKind::FailedPrecondition, rejection),
    };
    rejected(RejectionKind::InvalidArgument { field }, rejection)
}

impl From<ListingsError> for tonic::Status {
    fn from(error: ListingsError) -> tonic::Status {
        ApiError::from(error).into()
    }
}
