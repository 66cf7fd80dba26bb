//! Territory figures, legal waste registers and supply diagnoses: what the region, the partners
//! and the law ask of the marketplace, derived from every context's events, never written by a
//! caller.
//!
//! - `areas`: the territories (départements, Kreise, cantons, provinces, countries and the
//!   Eurodistricts) and the rule that puts a place in one.
//! - `period`: years, quarters, months and ranges of days.
//! - `facts`: the read model, folded from the directory's, the listings', the deals' and the
//!   shipments' events.
//! - `figures`: per territory and period, what was exchanged and how far it travelled, the
//!   flows across borders, with the privacy rule of public figures.
//! - `diagnosis`: for an organization, what the open offers near it could supply.
//! - `registers`: the chronological registers of the arrêté du 31 mai 2021, in CSV and XLSX.
//! - `grpc`: the `TerritoryService` handlers; `web`: the public dashboard.

pub mod areas;
pub mod charts;
pub mod diagnosis;
pub mod facts;
pub mod figures;
mod grpc;
pub mod period;
pub mod registers;
pub mod web;

pub use grpc::TerritoryApi;

use std::sync::{Arc, RwLockReadGuard};

use symbiose_eventstore::{EventStore, Position};
use symbiose_kit::ApiError;
use symbiose_kit::ServerConfig;
use symbiose_kit::auth::Authenticator;
use symbiose_proto::territory::v1::territory_service_server::TerritoryServiceServer;
use symbiose_shell::{Followed, Snapshots};
use tonic::service::interceptor::InterceptedService;

use crate::facts::Facts;

/// The name of the view in logs.
pub const VIEW_NAME: &str = "territory view";

/// The territory context: its read model, following the log.
pub struct Observatory<S> {
    store: S,
    view: Followed<Facts>,
}

impl<S> std::fmt::Debug for Observatory<S> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Observatory").finish_non_exhaustive()
    }
}

impl<S: EventStore> Observatory<S> {
    /// The read model over `store`, following the log from its snapshot.
    pub fn start(store: S, snapshots: Snapshots) -> Arc<Observatory<S>> {
        let view = Followed::start_snapshotted(store.clone(), VIEW_NAME, Facts::default(), snapshots);
        Arc::new(Observatory { store, view })
    }

    pub fn facts(&self) -> RwLockReadGuard<'_, Facts> {
        self.view.read()
    }

    pub fn position(&self) -> Position {
        self.view.position()
    }

    /// Waits until the view holds every event written so far.
    pub async fn caught_up(&self) -> Result<(), ApiError> {
        self.view.wait_for_head(self.store.head()).await
    }
}

/// The `TerritoryService` over `observatory`, behind `authenticator`.
pub fn service<S: EventStore>(
    config: &ServerConfig,
    observatory: Arc<Observatory<S>>,
    authenticator: Authenticator,
) -> InterceptedService<TerritoryServiceServer<TerritoryApi<S>>, Authenticator> {
    let server = TerritoryServiceServer::new(TerritoryApi::new(observatory))
        .max_decoding_message_size(config.message_bytes_max);
    InterceptedService::new(server, authenticator)
}
