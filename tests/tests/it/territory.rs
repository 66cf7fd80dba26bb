//! The territory context over gRPC, as a partner's app and the law meet it: three producers of
//! Strasbourg sell regenerated HDPE to three receivers in Kehl, one producer of Offenburg to a
//! receiver in Strasbourg, and two pairs from Strasbourg to Haguenau, carried by a carrier with its
//! receipt of declaration. Then the
//! Eurodistrict's figures (public to any member, the small flow withheld but for the operator),
//! a comparison with last year, the flows by region, a producer's register of outgoing waste as
//! CSV and XLSX streamed in chunks, who may ask for which register, a receiver's supply
//! diagnosis, and bad input refused naming its field.

use std::time::{Duration, Instant};

use symbiose_proto::common::v1 as common;
use symbiose_proto::listings::v1 as pb;
use symbiose_proto::listings::v1::organization_service_client::OrganizationServiceClient;
use symbiose_proto::territory::v1 as territory;
use symbiose_proto::territory::v1::territory_service_client::TerritoryServiceClient;
use symbiose_tests::fixtures::{self, Member, member};
use symbiose_tests::{AuthedChannel, TestServer};
use tonic::Code;
use tonic_types::StatusExt as _;

use crate::browser::hdpe_terms;
use crate::dashboard::{de_vat, local_pair, sold_and_delivered, this_year};

type Territory = TerritoryServiceClient<AuthedChannel>;

/// Longest the territory view may take to hold what was written.
const VIEW_WAIT: Duration = Duration::from_secs(20);
const EURODISTRICT: &str = "strasbourg-ortenau";
const RECEIPT: &str = "67-2026-0042";

async fn client(server: &TestServer, token: &str) -> Territory {
    TerritoryServiceClient::new(server.authed(token).await.expect("channel"))
}

/// The figures of `territory` over `period`, once they count `shipments` deliveries.
async fn figures_once(
    client: &mut Territory,
    territory: &str,
    period: &str,
    shipments: u64,
) -> territory::Figures {
    let deadline = Instant::now() + VIEW_WAIT;
    loop {
        let figures = client
            .get_figures(territory::GetFiguresRequest { territory: territory.into(), period: period.into() })
            .await
            .expect("figures")
            .into_inner()
            .figures
            .expect("figures");
        if figures.total.as_ref().is_some_and(|total| total.shipments == shipments) {
            return figures;
        }
        assert!(Instant::now() < deadline, "never {shipments} deliveries: {figures:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A whole register file: its name, its bytes and its row count, from its chunks.
async fn export(
    client: &mut Territory,
    request: territory::ExportRegisterRequest,
) -> Result<(String, Vec<u8>, u64), tonic::Status> {
    let mut chunks = client.export_register(request).await?.into_inner();
    let (mut name, mut bytes, mut rows, mut last) = (String::new(), Vec::new(), 0, false);
    while let Some(chunk) = chunks.message().await? {
        assert!(!last, "a chunk after the last");
        assert!(chunk.data.len() <= 64 * 1024, "a chunk of {} bytes", chunk.data.len());
        if name.is_empty() {
            name = chunk.file_name;
        }
        bytes.extend(chunk.data);
        rows = chunk.rows;
        last = chunk.last;
    }
    assert!(last, "the stream ended without its last chunk");
    Ok((name, bytes, rows))
}

fn bad_field(status: &tonic::Status) -> String {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    status.get_details_bad_request().expect("a bad request").field_violations[0].field.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_eurodistricts_figures_a_producers_register_and_a_receivers_supply_diagnosis() {
    let server = TestServer::start().await.expect("server");
    let carrier = fixtures::rhine_carrier(&server).await.expect("carrier");
    OrganizationServiceClient::new(server.authed(&carrier.token).await.expect("channel"))
        .add_permit(pb::AddPermitRequest {
            request_id: String::new(),
            organization_id: carrier.organization_id.clone(),
            permit: Some(pb::Permit {
                permit_id: String::new(),
                kind: pb::PermitKind::Transport.into(),
                number: RECEIPT.into(),
                issued_by: "Préfecture du Bas-Rhin".into(),
                valid_until: Some(fixtures::at(365 * 86_400)),
                accepted_waste_codes: vec![],
                hazardous_accepted: false,
                dangerous_goods_allowed: false,
            }),
        })
        .await
        .expect("the carrier's receipt");
    let mut producers: Vec<Member> = Vec::new();
    let mut receivers: Vec<Member> = Vec::new();
    let mut shipments = Vec::new();
    for (index, tonnes) in [(1u32, 2), (2, 3), (3, 4)] {
        let seller = member(
            &server,
            &format!("Plasturgie Strasbourg {index} SAS"),
            common::Country::France,
            &fixtures::siren(7_000 + index),
            &[common::Role::Producer],
            "Strasbourg",
        )
        .await
        .expect("a producer");
        let buyer = member(
            &server,
            &format!("Kunststoffwerk Kehl {index} GmbH"),
            common::Country::Germany,
            &de_vat(24_000_000 + index),
            &[common::Role::Buyer],
            "Kehl",
        )
        .await
        .expect("a receiver");
        shipments.push(
            sold_and_delivered(&server, &seller, &buyer, &carrier, tonnes, Some(common::Country::Germany))
                .await,
        );
        producers.push(seller);
        receivers.push(buyer);
    }
    let offenburg = member(
        &server,
        "Recycling Offenburg GmbH",
        common::Country::Germany,
        &de_vat(25_000_001),
        &[common::Role::Producer],
        "Offenburg",
    )
    .await
    .expect("a producer in Offenburg");
    let port = member(
        &server,
        "Emballages du Port SAS",
        common::Country::France,
        &fixtures::siren(7_010),
        &[common::Role::Buyer],
        "Strasbourg",
    )
    .await
    .expect("a receiver in Strasbourg");
    sold_and_delivered(&server, &offenburg, &port, &carrier, 5, Some(common::Country::France)).await;
    // Two pairs from Strasbourg to Haguenau (Bas-Rhin, outside the Eurodistrict), 1 t each:
    // with the flow back, the withheld flows sum three producers and three receivers, so the
    // flow to Germany can be public.
    for index in [14u32, 15] {
        let (seller, buyer) = local_pair(&server, index).await;
        sold_and_delivered(&server, &seller, &buyer, &carrier, 1, None).await;
    }

    // Any member reads the public figures: 16 t accepted, all within 50 km.
    let year = this_year().to_string();
    let mut producer = client(&server, &producers[0].token).await;
    let figures = figures_once(&mut producer, EURODISTRICT, &year, 6).await;
    assert!(!figures.total_withheld, "6 producers and 6 receivers: {figures:?}");
    let total = figures.total.clone().expect("a total");
    assert_eq!((total.accepted_kg, total.delivered_kg), (16_000, 16_000));
    assert!(!figures.distance_withheld);
    assert_eq!(figures.accepted_kg_within, [16_000, 16_000, 16_000]);
    assert_eq!(figures.share_within_bp, [10_000, 10_000, 10_000]);
    assert_eq!((figures.partnerships, figures.cross_border_partnerships), (6, 4));
    // The receivers of Haguenau are not the Eurodistrict's.
    assert_eq!((figures.active_producers, figures.active_receivers, figures.active_carriers), (6, 4, 1));
    assert!(figures.transport_km > 0.0 && figures.transport_co2_kg > 0.0, "{figures:?}");
    assert!(figures.emission_factor_source.contains("ADEME"), "{}", figures.emission_factor_source);
    // 16 t at 65 EUR a tonne of disposal avoided, no gate fee paid.
    let avoided = figures.gate_fees_avoided.clone().expect("an amount");
    assert_eq!((avoided.amount_minor, avoided.currency_code.as_str()), (104_000, "EUR"));
    assert_eq!(figures.families.len(), 1);
    assert_eq!(figures.families[0].family, i32::from(common::MaterialFamily::Plastics));
    assert!(!figures.families[0].withheld);
    // France to Germany: three producers to three receivers, public; the flow back, one pair,
    // withheld from the members.
    let flow = |figures: &territory::Figures, origin: &str| {
        figures.flows_by_country.iter().find(|flow| flow.origin == origin).cloned().expect("a flow")
    };
    let fr_de = flow(&figures, "FR");
    assert_eq!(
        (fr_de.destination.as_str(), fr_de.shipments, fr_de.accepted_kg, fr_de.withheld),
        ("DE", 3, 9_000, false)
    );
    let de_fr = flow(&figures, "DE");
    assert_eq!((de_fr.shipments, de_fr.accepted_kg, de_fr.withheld), (0, 0, true));
    let mut operator = client(&server, &server.operator_token).await;
    let seen = figures_once(&mut operator, EURODISTRICT, &year, 6).await;
    let de_fr = flow(&seen, "DE");
    assert_eq!((de_fr.shipments, de_fr.accepted_kg, de_fr.withheld), (1, 5_000, false));
    // A territory where no one delivered: nothing to read, and nothing made up.
    let basel = producer
        .get_figures(territory::GetFiguresRequest { territory: "CH-BS".into(), period: year.clone() })
        .await
        .expect("Basel's figures")
        .into_inner()
        .figures
        .expect("figures");
    assert!(basel.total_withheld && basel.families.is_empty(), "{basel:?}");

    // This year against last year.
    let last_year = (this_year() - 1).to_string();
    let compared = producer
        .compare_figures(territory::CompareFiguresRequest {
            territory: EURODISTRICT.into(),
            period: year.clone(),
            baseline_period: last_year,
        })
        .await
        .expect("a comparison")
        .into_inner();
    let accepted =
        compared.changes.iter().find(|change| change.figure == "accepted_kg").expect("accepted_kg");
    // The baseline is withheld (nobody delivered then), so the change is not given.
    assert!(accepted.withheld, "{accepted:?}");
    let pairs = compared.changes.iter().find(|change| change.figure == "partnerships").expect("partnerships");
    assert_eq!((pairs.baseline, pairs.current, pairs.difference), (0.0, 6.0, 6.0));
    // Periods that overlap are not compared for the public, nor are ranges of days read.
    let status = producer
        .compare_figures(territory::CompareFiguresRequest {
            territory: EURODISTRICT.into(),
            period: year.clone(),
            baseline_period: format!("{year}-Q1"),
        })
        .await
        .expect_err("overlapping periods");
    assert_eq!(bad_field(&status), "baseline_period");
    let status = producer
        .get_figures(territory::GetFiguresRequest {
            territory: EURODISTRICT.into(),
            period: format!("{year}-01-01..{year}-01-31"),
        })
        .await
        .expect_err("days");
    assert_eq!(bad_field(&status), "period");

    // The flows by region, for the operator: Bas-Rhin to the Ortenaukreis and back.
    let flows = operator
        .get_flows(territory::GetFlowsRequest {
            territory: String::new(),
            period: year.clone(),
            level: territory::FlowLevel::Region.into(),
        })
        .await
        .expect("flows")
        .into_inner()
        .flows;
    let cells: Vec<(&str, &str, u64, i64)> = flows
        .iter()
        .map(|flow| (flow.origin.as_str(), flow.destination.as_str(), flow.shipments, flow.accepted_kg))
        .collect();
    assert_eq!(
        cells,
        [("DE-08317", "FR-67", 1, 5_000), ("FR-67", "DE-08317", 3, 9_000), ("FR-67", "FR-67", 2, 2_000)]
    );

    // The first producer's register of outgoing waste for the month, as CSV: its one lot.
    let month = {
        let now_ms = fixtures::now_s() * 1000;
        let today = symbiose_domain::Country::Fr.date_at(now_ms);
        format!("{:04}-{:02}", today.year(), today.month())
    };
    let outgoing =
        |organization: &Member, format: territory::ExportFormat| territory::ExportRegisterRequest {
            organization_id: organization.organization_id.clone(),
            kind: territory::RegisterKind::Outgoing.into(),
            period: month.clone(),
            format: format.into(),
        };
    let (name, bytes, rows) = export(&mut producer, outgoing(&producers[0], territory::ExportFormat::Csv))
        .await
        .expect("the register");
    assert_eq!(name, format!("registre-sortants-{month}.csv"));
    assert_eq!(rows, 1);
    let text = String::from_utf8(bytes).expect("UTF-8");
    let text = text.strip_prefix('\u{feff}').expect("a byte order mark");
    let lines: Vec<&str> = text.split_terminator("\r\n").collect();
    assert_eq!(lines.len(), 2, "{text}");
    let header: Vec<&str> = lines[0].split(';').collect();
    let row: Vec<&str> = lines[1].split(';').collect();
    assert_eq!(header.len(), row.len(), "{text}");
    let cell = |name: &str| {
        row[header
            .iter()
            .position(|column| *column == name)
            .unwrap_or_else(|| panic!("no column {name}: {header:?}"))]
    };
    let today = {
        let today = symbiose_domain::Country::Fr.date_at(fixtures::now_s() * 1000);
        today.to_string()
    };
    assert_eq!(cell("Date d'expédition"), today);
    assert_eq!(cell("Code du déchet"), "19 12 04");
    assert_eq!(cell("Déchet dangereux"), "N");
    assert_eq!(cell("Quantité de déchet sortant"), "2");
    assert_eq!(cell("Expéditeur SIRET ou numéro de TVA"), fixtures::siren(7_001));
    assert_eq!(cell("Transporteur récépissé"), RECEIPT);
    assert_eq!(cell("Destination raison sociale"), "Kunststoffwerk Kehl 1 GmbH");
    assert_eq!(cell("Destination SIRET ou numéro de TVA"), de_vat(24_000_001));
    assert_eq!(cell("Code opération prévu"), "R3");
    assert_eq!(cell("Numéro de notification ou de document"), format!("Annexe VII {}", shipments[0]));
    // Explicitly empty where the platform does not know: no POP, no bordereau.
    assert_eq!((cell("POP"), cell("N° de bordereau")), ("", ""));
    // The same register as a workbook.
    let (name, bytes, rows) = export(&mut producer, outgoing(&producers[0], territory::ExportFormat::Xlsx))
        .await
        .expect("the workbook");
    assert_eq!((name.ends_with(".xlsx"), rows), (true, 1));
    assert!(
        bytes.starts_with(b"PK\x03\x04") && bytes.len() > 2_000,
        "not an XLSX of a row: {} bytes",
        bytes.len()
    );

    // A producer reads its own registers only; the platform's register of managed waste is the
    // operator's, and lists the six shipments.
    let denied = export(&mut producer, outgoing(&producers[1], territory::ExportFormat::Csv))
        .await
        .expect_err("another's");
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
    let managed = |format: territory::ExportFormat| territory::ExportRegisterRequest {
        organization_id: String::new(),
        kind: territory::RegisterKind::Managed.into(),
        period: year.clone(),
        format: format.into(),
    };
    let denied =
        export(&mut producer, managed(territory::ExportFormat::Csv)).await.expect_err("the platform's");
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
    let (_, _, rows) =
        export(&mut operator, managed(territory::ExportFormat::Csv)).await.expect("the managed register");
    assert_eq!(rows, 6);

    // The first receiver asks for 10 t more in Kehl: 6 t are offered in Strasbourg (about 7 km
    // by road), 3 t in Offenburg (about 25 km), another 4 t in Karlsruhe (about 90 km).
    let (request_id, _) = fixtures::publish(
        &server,
        &receivers[0].token,
        hdpe_terms(pb::ListingSide::Request, &receivers[0].site_id, 10, 50_000),
    )
    .await
    .expect("a request");
    fixtures::publish(
        &server,
        &producers[1].token,
        hdpe_terms(pb::ListingSide::Offer, &producers[1].site_id, 6, 45_000),
    )
    .await
    .expect("an offer in Strasbourg");
    fixtures::publish(
        &server,
        &offenburg.token,
        hdpe_terms(pb::ListingSide::Offer, &offenburg.site_id, 3, 45_000),
    )
    .await
    .expect("an offer in Offenburg");
    let karlsruhe = member(
        &server,
        "Kunststoff Karlsruhe GmbH",
        common::Country::Germany,
        &de_vat(25_000_002),
        &[common::Role::Producer],
        "Karlsruhe",
    )
    .await
    .expect("a producer in Karlsruhe");
    fixtures::publish(
        &server,
        &karlsruhe.token,
        hdpe_terms(pb::ListingSide::Offer, &karlsruhe.site_id, 4, 45_000),
    )
    .await
    .expect("an offer in Karlsruhe");
    let mut receiver = client(&server, &receivers[0].token).await;
    let deadline = Instant::now() + VIEW_WAIT;
    let diagnosis = loop {
        let diagnosis = receiver
            .diagnose_supply(territory::DiagnoseSupplyRequest {
                organization_id: receivers[0].organization_id.clone(),
            })
            .await
            .expect("a diagnosis")
            .into_inner();
        let ready = diagnosis.requests.iter().any(|need| {
            need.request_id == request_id && need.coverage.get(2).is_some_and(|within| within.offers == 3)
        });
        if ready {
            break diagnosis;
        }
        assert!(Instant::now() < deadline, "the offers never showed: {diagnosis:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let need = diagnosis.requests.iter().find(|need| need.request_id == request_id).expect("the request");
    assert_eq!(need.needed.as_ref().map(|needed| needed.amount_milli), Some(10_000));
    let covered: Vec<(u32, u32, i64, u32)> = need
        .coverage
        .iter()
        .map(|within| {
            (
                within.within_km,
                within.offers,
                within.coverable.as_ref().map_or(0, |quantity| quantity.amount_milli),
                within.share_bp,
            )
        })
        .collect();
    assert_eq!(covered, [(50, 2, 9_000, 9_000), (100, 3, 10_000, 10_000), (200, 3, 10_000, 10_000)]);
    assert!(need.coverage[1].co2_kg > need.coverage[0].co2_kg, "{need:?}");
    // What it bought this year, 2 t of plastics: covered from Strasbourg, the nearest.
    assert_eq!(diagnosis.families.len(), 1);
    assert_eq!(diagnosis.families[0].needed.as_ref().map(|needed| needed.amount_milli), Some(2_000));
    assert_eq!(diagnosis.families[0].coverage[0].share_bp, 10_000);
    // Another organization's diagnosis is its own.
    let denied = receiver
        .diagnose_supply(territory::DiagnoseSupplyRequest {
            organization_id: receivers[1].organization_id.clone(),
        })
        .await
        .expect_err("another's");
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");

    // Bad input names its field.
    let status = producer
        .get_figures(territory::GetFiguresRequest { territory: "atlantis".into(), period: year.clone() })
        .await
        .expect_err("no such territory");
    assert_eq!(bad_field(&status), "territory");
    let status = producer
        .get_figures(territory::GetFiguresRequest {
            territory: EURODISTRICT.into(),
            period: "2026-13".into(),
        })
        .await
        .expect_err("no such month");
    assert_eq!(bad_field(&status), "period");
    let status = producer
        .get_figures(territory::GetFiguresRequest { territory: EURODISTRICT.into(), period: "9".repeat(100) })
        .await
        .expect_err("too long");
    assert_eq!(bad_field(&status), "period");
    let status = export(
        &mut producer,
        territory::ExportRegisterRequest { kind: 0, ..outgoing(&producers[0], territory::ExportFormat::Csv) },
    )
    .await
    .expect_err("no kind");
    assert_eq!(bad_field(&status), "kind");
}
