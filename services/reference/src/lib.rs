//! The reference data service: the European List of Waste, the material families with their
//! labels, and the check of business identifiers (SIREN, SIRET, VAT numbers, Swiss UID).
//!
//! It is stateless and read-only: it serves facts compiled into `symbiose-domain` and never
//! writes anything, so any process may host it.

mod grpc;

use std::future::Future;

use anyhow::Context as _;
use symbiose_kit::auth::Security;
use symbiose_kit::{Listeners, ServerConfig, ServiceSet};
use symbiose_proto::reference::v1::reference_service_server::ReferenceServiceServer;
use tonic::service::interceptor::InterceptedService;

pub use grpc::{ReferenceApi, WASTE_CODES_PAGE_SIZE_MAX};

/// The gRPC service, with the request size limit of `config`.
pub fn service(config: &ServerConfig) -> ReferenceServiceServer<ReferenceApi> {
    ReferenceServiceServer::new(ReferenceApi).max_decoding_message_size(config.message_bytes_max)
}

/// Serves the reference service alone on `listeners` until `shutdown` completes; callers
/// need a token signed with the key in `<data dir>/keys`.
pub async fn run(
    config: ServerConfig,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let security = Security::open(&config, symbiose_kit::KeyPolicy::MustExist)
        .context("loading the token signing key")?;
    let mut services = ServiceSet::new();
    services.add(InterceptedService::new(service(&config), security.authenticator));
    symbiose_kit::server::serve(&config, services, listeners, shutdown).await
}
