//! The listings service. Today it hosts the directory (`OrganizationService`): who is who on
//! the marketplace, their sites, roles, permits and contacts, and the tokens that name them.
//!
//! It writes only to its own event store, through the application shell in `directory`;
//! `organization` is pure (no I/O, no clock); contacts never reach the log in the clear.

mod codec;
mod directory;
mod error;
mod grpc;
pub mod organization;
mod vault;

use std::sync::Arc;

use symbiose_eventstore::EventStore;
use symbiose_kit::ServerConfig;
use symbiose_kit::auth::Authenticator;
use symbiose_proto::listings::v1::organization_service_server::OrganizationServiceServer;
use tonic::service::interceptor::InterceptedService;

pub use directory::{Directory, OPERATOR_ORGANIZATION_ID};
pub use error::ListingsError;
pub use grpc::OrganizationApi;
pub use vault::{Vault, VaultError};

/// The directory's gRPC service behind the authenticator, with the request size limit.
pub fn organization_service<S: EventStore>(
    config: &ServerConfig,
    directory: Arc<Directory<S>>,
    authenticator: Authenticator,
) -> InterceptedService<OrganizationServiceServer<OrganizationApi<S>>, Authenticator> {
    let server = OrganizationServiceServer::new(OrganizationApi::new(directory))
        .max_decoding_message_size(config.message_bytes_max);
    InterceptedService::new(server, authenticator)
}
