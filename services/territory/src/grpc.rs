//! The `TerritoryService` handlers: who calls, what they ask, what the read model answers.

use std::pin::Pin;
use std::sync::Arc;

use symbiose_domain::{Currency, Money, Role};
use symbiose_eventstore::EventStore;
use symbiose_kit::ApiError;
use symbiose_kit::auth::{self, Caller};
use symbiose_proto::common::v1 as common;
use symbiose_proto::convert::id;
use symbiose_proto::territory::v1::{self as pb, territory_service_server::TerritoryService};
use tokio_stream::Stream;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::Observatory;
use crate::areas::{self, Kind, Territory};
use crate::diagnosis::{self, Need};
use crate::facts::Facts;
use crate::figures::{self, Audience, Figures, Flow, Level, Volumes};
use crate::period::Period;
use crate::registers::{self, RegisterKind};

/// Longest period text a call takes.
pub(crate) const PERIOD_CHARS_MAX: usize = 32;
/// Largest chunk of a register's file, in bytes.
pub(crate) const CHUNK_BYTES_MAX: usize = 64 * 1024;

/// Computations over the read model at once (figures, flows, diagnoses, registers): each is a
/// pass over every delivery, run on a blocking thread; more wait their turn, within the
/// request's deadline.
pub(crate) const COMPUTATIONS_MAX: usize = 4;

#[derive(Debug)]
pub struct TerritoryApi<S> {
    observatory: Arc<Observatory<S>>,
    computations: Arc<tokio::sync::Semaphore>,
}

impl<S> TerritoryApi<S> {
    pub fn new(observatory: Arc<Observatory<S>>) -> TerritoryApi<S> {
        TerritoryApi { observatory, computations: Arc::new(tokio::sync::Semaphore::new(COMPUTATIONS_MAX)) }
    }
}

impl<S: EventStore> TerritoryApi<S> {
    /// `work` over the facts, once the view holds every event written so far, on a blocking
    /// thread, at most [`COMPUTATIONS_MAX`] at once.
    async fn compute<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Facts) -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        self.observatory.caught_up().await?;
        let _permit = self
            .computations
            .acquire()
            .await
            .map_err(|_| ApiError::Unavailable("the service is stopping".to_owned()))?;
        let observatory = self.observatory.clone();
        tokio::task::spawn_blocking(move || work(&observatory.facts()))
            .await
            .map_err(|error| ApiError::Internal(anyhow::anyhow!("a computation failed: {error}")))
    }
}

fn territory_arg(code: &str, field: &str) -> Result<&'static Territory, ApiError> {
    let code = code.trim();
    if code.is_empty() {
        return Err(ApiError::invalid_argument(
            field,
            "is required: a territory's code, such as FR-67 or strasbourg-ortenau",
        ));
    }
    areas::territory(code).ok_or_else(|| {
        ApiError::invalid_argument(
            field,
            format!("{:?} is not a territory: ListTerritories names them", truncated(code)),
        )
    })
}

fn truncated(text: &str) -> String {
    text.chars().take(PERIOD_CHARS_MAX).collect()
}

fn period_arg(text: &str, field: &str) -> Result<Period, ApiError> {
    if text.trim().is_empty() {
        return Err(ApiError::invalid_argument(field, "is required: a year, a quarter, a month or days"));
    }
    if text.chars().count() > PERIOD_CHARS_MAX {
        return Err(ApiError::invalid_argument(
            field,
            format!("is longer than {PERIOD_CHARS_MAX} characters"),
        ));
    }
    Period::parse(text).map_err(|error| ApiError::invalid_argument(field, error))
}

fn audience(caller: &Caller) -> Audience {
    if caller.is_operator() { Audience::Operator } else { Audience::Public }
}

/// The period `audience` may read: the public reads whole months, quarters and years, so that
/// two ranges of days a day apart cannot be subtracted to read one day's deliveries.
fn period_for(text: &str, field: &str, audience: Audience) -> Result<Period, ApiError> {
    let period = period_arg(text, field)?;
    if audience == Audience::Public && !period.calendar {
        return Err(ApiError::invalid_argument(
            field,
            "public figures cover a month (2026-11), a quarter (2026-Q3) or a year (2026); ranges of days are the operator's",
        ));
    }
    Ok(period)
}

/// The organization a call names, which must be the caller's own unless it is the operator.
fn organization_arg(caller: &Caller, text: &str, field: &str) -> Result<Uuid, ApiError> {
    let organization = id(text, field)
        .map_err(|error| ApiError::InvalidArgument { field: error.field, message: error.message })?;
    caller.require_organization(organization)?;
    Ok(organization)
}

fn kind_to_wire(kind: Kind) -> i32 {
    match kind {
        Kind::Country => pb::TerritoryKind::Country,
        Kind::Region => pb::TerritoryKind::Region,
        Kind::Eurodistrict => pb::TerritoryKind::Eurodistrict,
    }
    .into()
}

fn territory_to_wire(territory: &Territory) -> pb::Territory {
    let towns = areas::towns()
        .iter()
        .filter(|town| areas::Located { country: town.country, town: Some(town) }.is_in(territory))
        .map(|town| town.name.clone())
        .collect();
    pb::Territory {
        code: territory.code.clone(),
        name: territory.name.clone(),
        kind: kind_to_wire(territory.kind),
        countries: territory.countries.iter().map(|country| common::Country::from(*country).into()).collect(),
        towns,
    }
}

fn volumes_to_wire(volumes: &Volumes) -> pb::Volumes {
    pb::Volumes {
        shipments: volumes.shipments,
        delivered_kg: volumes.delivered_kg,
        accepted_kg: volumes.accepted_kg,
        accepted: volumes
            .accepted_milli_by_unit
            .iter()
            .filter_map(|(symbol, milli)| {
                let unit = symbiose_domain::Unit::from_symbol(symbol)?;
                Some(common::Quantity {
                    amount_milli: *milli,
                    unit: common::Unit::from(unit).into(),
                    basis: common::QuantityBasis::Actual.into(),
                })
            })
            .collect(),
    }
}

fn flow_to_wire(flow: &Flow) -> pb::Flow {
    pb::Flow {
        origin: flow.origin.clone(),
        destination: flow.destination.clone(),
        shipments: flow.shipments,
        accepted_kg: flow.accepted_kg,
        withheld: flow.withheld,
    }
}

fn figures_to_wire(figures: &Figures) -> pb::Figures {
    pb::Figures {
        territory: figures.territory.clone(),
        territory_name: figures.territory_name.clone(),
        period: figures.period.clone(),
        families: figures
            .families
            .iter()
            .map(|row| pb::FamilyFigures {
                family: common::MaterialFamily::from(row.family).into(),
                volumes: Some(volumes_to_wire(&row.volumes)),
                withheld: row.withheld,
            })
            .collect(),
        total: Some(volumes_to_wire(&figures.total)),
        total_withheld: figures.total_withheld,
        accepted_kg_within: figures.accepted_kg_within.to_vec(),
        share_within_bp: figures.share_within_bp.to_vec(),
        distance_withheld: figures.distance_withheld,
        transport_km: figures.transport_km,
        transport_co2_kg: figures.transport_co2_kg,
        emission_factor_source: figures.emission_factor_source.to_owned(),
        emission_factor_version: figures.emission_factor_version.to_owned(),
        pallets_reused: figures.pallets_reused,
        pallets_withheld: figures.pallets_withheld,
        water_reused_litres: figures.water_reused_litres,
        water_withheld: figures.water_withheld,
        active_producers: figures.active_producers,
        active_receivers: figures.active_receivers,
        active_carriers: figures.active_carriers,
        partnerships: figures.partnerships,
        cross_border_partnerships: figures.cross_border_partnerships,
        gate_fees_avoided: Money::new(figures.gate_fees_avoided_cents, Currency::Eur)
            .ok()
            .map(common::Money::from),
        disposal_reference_source: figures.disposal_reference_source.to_owned(),
        flows_by_country: figures.flows_by_country.iter().map(flow_to_wire).collect(),
    }
}

/// How the main figures changed from `baseline` to `current`.
pub(crate) fn changes(current: &Figures, baseline: &Figures) -> Vec<pb::Change> {
    // Each value with whether it is withheld; counts of organizations are public whatever the
    // volumes.
    let values = |figures: &Figures| -> [(&'static str, f64, bool); 7] {
        let total = figures.total_withheld;
        [
            ("accepted_kg", figures.total.accepted_kg as f64, total),
            ("shipments", figures.total.shipments as f64, total),
            ("transport_co2_kg", figures.transport_co2_kg, total),
            ("partnerships", figures.partnerships as f64, false),
            ("cross_border_partnerships", figures.cross_border_partnerships as f64, false),
            ("pallets_reused", figures.pallets_reused as f64, figures.pallets_withheld),
            ("water_reused_litres", figures.water_reused_litres as f64, figures.water_withheld),
        ]
    };
    values(current)
        .into_iter()
        .zip(values(baseline))
        .map(|((figure, current, current_withheld), (_, baseline, baseline_withheld))| {
            let hidden = current_withheld || baseline_withheld;
            let difference = current - baseline;
            let change_bp =
                if baseline != 0.0 { (difference / baseline * 10_000.0).round() as i64 } else { 0 };
            pb::Change {
                figure: figure.to_owned(),
                baseline: if hidden { 0.0 } else { baseline },
                current: if hidden { 0.0 } else { current },
                difference: if hidden { 0.0 } else { difference },
                change_bp: if hidden { 0 } else { change_bp },
                withheld: hidden,
            }
        })
        .collect()
}

fn need_to_wire(need: &Need) -> pb::SupplyNeed {
    let quantity = |milli: i64| common::Quantity {
        amount_milli: milli,
        unit: common::Unit::from(need.unit).into(),
        basis: common::QuantityBasis::Estimated.into(),
    };
    pb::SupplyNeed {
        request_id: need.request_id.map(|id| id.to_string()).unwrap_or_default(),
        family: common::MaterialFamily::from(need.family).into(),
        needed: Some(quantity(need.needed_milli)),
        location: Some(common::GeoPoint::from(need.place.point)),
        coverage: need
            .coverage
            .iter()
            .map(|coverage| pb::Coverage {
                within_km: coverage.within_km,
                offers: coverage.offers,
                coverable: Some(quantity(coverage.coverable_milli)),
                share_bp: coverage.share_bp,
                co2_kg: coverage.co2_kg,
            })
            .collect(),
    }
}

fn register_kind_arg(value: i32) -> Result<RegisterKind, ApiError> {
    match pb::RegisterKind::try_from(value) {
        Ok(pb::RegisterKind::Outgoing) => Ok(RegisterKind::Outgoing),
        Ok(pb::RegisterKind::Incoming) => Ok(RegisterKind::Incoming),
        Ok(pb::RegisterKind::Transported) => Ok(RegisterKind::Transported),
        Ok(pb::RegisterKind::Managed) => Ok(RegisterKind::Managed),
        Ok(pb::RegisterKind::Unspecified) => {
            Err(ApiError::invalid_argument("kind", "is required: outgoing, incoming, transported or managed"))
        }
        Err(_) => Err(ApiError::invalid_argument("kind", format!("{value} is not a register"))),
    }
}

/// The register's name in file names, in French as the text names them.
fn file_key(kind: RegisterKind) -> &'static str {
    match kind {
        RegisterKind::Outgoing => "sortants",
        RegisterKind::Incoming => "entrants",
        RegisterKind::Transported => "transportes",
        RegisterKind::Managed => "geres",
    }
}

type ChunkStream = Pin<Box<dyn Stream<Item = Result<pb::ExportRegisterResponse, Status>> + Send>>;

#[tonic::async_trait]
impl<S: EventStore> TerritoryService for TerritoryApi<S> {
    async fn list_territories(
        &self,
        request: Request<pb::ListTerritoriesRequest>,
    ) -> Result<Response<pb::ListTerritoriesResponse>, Status> {
        auth::caller(&request)?;
        let territories = areas::territories().iter().map(territory_to_wire).collect();
        Ok(Response::new(pb::ListTerritoriesResponse { territories }))
    }

    async fn get_figures(
        &self,
        request: Request<pb::GetFiguresRequest>,
    ) -> Result<Response<pb::GetFiguresResponse>, Status> {
        let caller = auth::caller(&request)?;
        let request = request.into_inner();
        let territory = territory_arg(&request.territory, "territory")?;
        let audience = audience(&caller);
        let period = period_for(&request.period, "period", audience)?;
        let figures =
            self.compute(move |facts| figures::figures(facts, territory, &period, audience)).await?;
        Ok(Response::new(pb::GetFiguresResponse { figures: Some(figures_to_wire(&figures)) }))
    }

    async fn compare_figures(
        &self,
        request: Request<pb::CompareFiguresRequest>,
    ) -> Result<Response<pb::CompareFiguresResponse>, Status> {
        let caller = auth::caller(&request)?;
        let request = request.into_inner();
        let territory = territory_arg(&request.territory, "territory")?;
        let audience = audience(&caller);
        let period = period_for(&request.period, "period", audience)?;
        let baseline_period = period_for(&request.baseline_period, "baseline_period", audience)?;
        if audience == Audience::Public && period.overlaps(&baseline_period) {
            // Their difference would be the deliveries of the part one has and the other not.
            return Err(ApiError::invalid_argument(
                "baseline_period",
                format!("overlaps {}: public figures are compared over periods apart", period.label),
            )
            .into());
        }
        let (current, baseline) = self
            .compute(move |facts| {
                (
                    figures::figures(facts, territory, &period, audience),
                    figures::figures(facts, territory, &baseline_period, audience),
                )
            })
            .await?;
        Ok(Response::new(pb::CompareFiguresResponse {
            changes: changes(&current, &baseline),
            current: Some(figures_to_wire(&current)),
            baseline: Some(figures_to_wire(&baseline)),
        }))
    }

    async fn get_flows(
        &self,
        request: Request<pb::GetFlowsRequest>,
    ) -> Result<Response<pb::GetFlowsResponse>, Status> {
        let caller = auth::caller(&request)?;
        let request = request.into_inner();
        let territory = match request.territory.trim() {
            "" => None,
            code => Some(territory_arg(code, "territory")?),
        };
        let audience = audience(&caller);
        let period = period_for(&request.period, "period", audience)?;
        let level = match pb::FlowLevel::try_from(request.level) {
            Ok(pb::FlowLevel::Unspecified | pb::FlowLevel::Country) => Level::Country,
            Ok(pb::FlowLevel::Region) => Level::Region,
            Err(_) => {
                return Err(
                    ApiError::invalid_argument("level", format!("{} is not a level", request.level)).into()
                );
            }
        };
        let flows =
            self.compute(move |facts| figures::flows(facts, territory, &period, level, audience)).await?;
        Ok(Response::new(pb::GetFlowsResponse { flows: flows.iter().map(flow_to_wire).collect() }))
    }

    async fn diagnose_supply(
        &self,
        request: Request<pb::DiagnoseSupplyRequest>,
    ) -> Result<Response<pb::DiagnoseSupplyResponse>, Status> {
        let caller = auth::caller(&request)?;
        let organization = organization_arg(&caller, &request.get_ref().organization_id, "organization_id")?;
        let now_ms = symbiose_shell::now_ms();
        let diagnosis = self.compute(move |facts| diagnosis::diagnose(facts, organization, now_ms)).await?;
        Ok(Response::new(pb::DiagnoseSupplyResponse {
            requests: diagnosis.requests.iter().map(need_to_wire).collect(),
            families: diagnosis.families.iter().map(need_to_wire).collect(),
            emission_factor_kg_co2e_per_tonne_km: diagnosis.emission_factor_kg_co2e_per_tonne_km,
        }))
    }

    type ExportRegisterStream = ChunkStream;

    async fn export_register(
        &self,
        request: Request<pb::ExportRegisterRequest>,
    ) -> Result<Response<ChunkStream>, Status> {
        let caller = auth::caller(&request)?;
        let request = request.into_inner();
        let kind = register_kind_arg(request.kind)?;
        let organization = if kind == RegisterKind::Managed {
            caller.require_role(Role::Operator).map_err(|_| {
                ApiError::PermissionDenied(
                    "the managed waste register is the platform's: the operator's only".to_owned(),
                )
            })?;
            Uuid::nil()
        } else {
            organization_arg(&caller, &request.organization_id, "organization_id")?
        };
        let period = period_arg(&request.period, "period")?;
        let xlsx = match pb::ExportFormat::try_from(request.format) {
            Ok(pb::ExportFormat::Unspecified | pb::ExportFormat::Csv) => false,
            Ok(pb::ExportFormat::Xlsx) => true,
            Err(_) => {
                return Err(ApiError::invalid_argument(
                    "format",
                    format!("{} is not a format", request.format),
                )
                .into());
            }
        };
        let stem = format!("registre-{}-{}", file_key(kind), period.file_label());
        // Counted before a row is written: a register over the cap is refused, not built.
        let rows = self
            .compute(move |facts| {
                let count = registers::row_count(facts, kind, organization, &period);
                if count > registers::ROWS_MAX {
                    Err(count)
                } else {
                    Ok(registers::rows(facts, kind, organization, &period))
                }
            })
            .await?
            .map_err(|count| {
                ApiError::FailedPrecondition(format!(
                    "period: the register holds {count} rows over it, more than the {} of one export: ask for a shorter period",
                    registers::ROWS_MAX
                ))
            })?;
        let (file_name, content_type) = if xlsx {
            (format!("{stem}.xlsx"), "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
        } else {
            (format!("{stem}.csv"), "text/csv; charset=utf-8")
        };
        let count = rows.len() as u64;
        let (sender, receiver) = tokio::sync::mpsc::channel(4);
        tokio::spawn(async move {
            // The CSV is written a chunk at a time as rows come; the XLSX, a zip, at once.
            let mut pending: Vec<u8> = Vec::with_capacity(CHUNK_BYTES_MAX);
            let mut first = true;
            let mut send = |data: Vec<u8>, last: bool| {
                let chunk = pb::ExportRegisterResponse {
                    data,
                    file_name: if first { file_name.clone() } else { String::new() },
                    content_type: if first { content_type.to_owned() } else { String::new() },
                    rows: if last { count } else { 0 },
                    last,
                };
                first = false;
                chunk
            };
            let (bytes_of_all, rows) = if xlsx {
                // A workbook is a zip: compressed on a blocking thread, then sent in chunks.
                let written = tokio::task::spawn_blocking(move || registers::xlsx(kind, &rows))
                    .await
                    .unwrap_or_else(|error| Err(format!("the task failed: {error}")));
                match written {
                    Ok(bytes) => (Some(bytes), Vec::new()),
                    Err(error) => {
                        let _ = sender
                            .send(Err(Status::internal(format!(
                                "the workbook could not be written: {error}"
                            ))))
                            .await;
                        return;
                    }
                }
            } else {
                (None, rows)
            };
            let mut lines = rows.iter();
            let mut all = bytes_of_all.map(std::collections::VecDeque::from);
            if all.is_none() {
                pending.extend(registers::csv_header(kind));
            }
            loop {
                match &mut all {
                    Some(bytes) => {
                        let take = bytes.len().min(CHUNK_BYTES_MAX);
                        pending.extend(bytes.drain(..take));
                    }
                    None => {
                        while pending.len() < CHUNK_BYTES_MAX {
                            match lines.next() {
                                Some(row) => pending.extend(registers::csv_line(row)),
                                None => break,
                            }
                        }
                    }
                }
                let done = match &all {
                    Some(bytes) => bytes.is_empty(),
                    None => lines.len() == 0,
                };
                let data = if pending.len() > CHUNK_BYTES_MAX {
                    let rest = pending.split_off(CHUNK_BYTES_MAX);
                    std::mem::replace(&mut pending, rest)
                } else {
                    std::mem::take(&mut pending)
                };
                let last = done && pending.is_empty();
                if sender.send(Ok(send(data, last))).await.is_err() || last {
                    return;
                }
            }
        });
        let stream = tokio_stream::wrappers::ReceiverStream::new(receiver);
        Ok(Response::new(Box::pin(stream) as ChunkStream))
    }
}
