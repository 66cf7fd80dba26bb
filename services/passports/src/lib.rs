//! The pure core of material passports: what a lot is made of, where it came from and how it is
//! reused and recycled, readable by anyone holding a phone in front of it.
//!
//! - `composition`: the rules of a declaration (shares add up to at most 100%, analysed and
//!   certified shares name their document, a derived passport claims no more recycled content
//!   than its inputs allow).
//! - `gs1`: the GTIN and batch a producer may give, and the GS1 Digital Link path that resolves
//!   to the passport.
//! - `passport`: the Passport aggregate (draft, published, amended, withdrawn).
//! - `instructions`: end-of-life instructions, published by institutions per material family or
//!   waste code, in French, German and English.
//!
//! Around it, the service: `custody` (the chain of custody, drawn from the events of listings,
//! matching and logistics), `view` (its read model), `registry` (the shell that executes the
//! commands), `grpc` (the handlers), `page` (the public page and its JSON-LD) and `web` (the
//! public web port: pages, QR codes, labels and the GS1 Digital Link resolver).
//!
//! The core never does I/O, reads the clock or draws random numbers: the caller passes `now_ms`,
//! new ids and what the inputs are worth. It knows no wire type.

pub mod composition;
pub mod custody;
mod grpc;
pub mod gs1;
pub mod instructions;
pub mod page;
pub mod passport;
pub mod registry;
pub mod view;
pub mod web;

pub use grpc::{PAGE_SIZE_MAX, PassportApi};
pub use registry::Registry;

use std::sync::Arc;

use symbiose_eventstore::EventStore;
use symbiose_kit::ServerConfig;
use symbiose_kit::auth::Authenticator;
use symbiose_proto::passports::v1::passport_service_server::PassportServiceServer;
use tonic::service::interceptor::InterceptedService;

/// The `PassportService` over `registry`, behind `authenticator`; passports' public URLs start
/// with `base_url`.
pub fn service<S: EventStore>(
    config: &ServerConfig,
    registry: Arc<Registry<S>>,
    base_url: &str,
    authenticator: Authenticator,
) -> InterceptedService<PassportServiceServer<PassportApi<S>>, Authenticator> {
    let server = PassportServiceServer::new(PassportApi::new(registry, base_url))
        .max_decoding_message_size(config.message_bytes_max);
    InterceptedService::new(server, authenticator)
}

/// How a rejection reaches a caller: the shell's one mapping of every aggregate's refusals.
pub use symbiose_shell::RejectionKind;
