//! `ReferenceService` through gRPC: waste codes, material families, identifiers, bad input.

use std::collections::BTreeSet;

use symbiose_proto::common::v1 as common;
use symbiose_proto::reference::v1 as pb;
use symbiose_proto::reference::v1::reference_service_client::ReferenceServiceClient;
use symbiose_tests::{AuthedChannel, TestServer};
use tonic::Code;
use tonic_types::StatusExt;

async fn client(server: &TestServer) -> ReferenceServiceClient<AuthedChannel> {
    ReferenceServiceClient::new(server.operator().await.expect("channel"))
}

/// The field a `google.rpc.BadRequest` detail names.
fn violated_field(status: &tonic::Status) -> String {
    let details = status.get_error_details();
    let bad_request = details.bad_request().unwrap_or_else(|| panic!("no BadRequest detail in {status:?}"));
    bad_request.field_violations[0].field.clone()
}

fn list(page_size: i32) -> pb::ListWasteCodesRequest {
    pb::ListWasteCodesRequest { page_size, ..Default::default() }
}

#[tokio::test]
async fn a_waste_code_is_found_in_each_written_form() {
    let server = TestServer::start().await.expect("server");
    let mut client = client(&server).await;
    for form in ["150103", "15 01 03", "150103*", " 15 01 03* "] {
        let entry = client
            .get_waste_code(pb::GetWasteCodeRequest { code: form.to_owned() })
            .await
            .unwrap_or_else(|status| panic!("{form}: {status:?}"))
            .into_inner()
            .waste_code
            .expect("an entry");
        let code = entry.waste_code.clone().expect("a code");
        assert_eq!(code.code, "150103", "{form}");
        assert!(!code.hazardous);
        assert_eq!(entry.display_code, "15 01 03");
        assert_eq!(entry.description.to_lowercase(), "wooden packaging");
        assert_eq!(entry.chapter, "15");
        assert_eq!(entry.sub_chapter, "1501");
        assert_eq!(entry.entry_type(), pb::WasteEntryType::AbsoluteNonHazardous);
    }

    let lead_batteries = client
        .get_waste_code(pb::GetWasteCodeRequest { code: "16 06 01*".into() })
        .await
        .expect("16 06 01")
        .into_inner()
        .waste_code
        .expect("an entry");
    assert!(lead_batteries.waste_code.expect("code").hazardous);
    assert_eq!(lead_batteries.display_code, "16 06 01*");
}

#[tokio::test]
async fn an_unknown_or_malformed_code_is_refused_naming_the_field() {
    let server = TestServer::start().await.expect("server");
    let mut client = client(&server).await;

    let unknown =
        client.get_waste_code(pb::GetWasteCodeRequest { code: "999999".into() }).await.expect_err("unknown");
    assert_eq!(unknown.code(), Code::NotFound);
    assert!(unknown.message().starts_with("code: 999999"), "{}", unknown.message());

    for malformed in ["", "15-01", "1501034", "abcdef"] {
        let status = client
            .get_waste_code(pb::GetWasteCodeRequest { code: malformed.into() })
            .await
            .expect_err(malformed);
        assert_eq!(status.code(), Code::InvalidArgument, "{malformed:?}");
        assert!(status.message().starts_with("code: "), "{}", status.message());
        assert_eq!(violated_field(&status), "code");
    }
}

#[tokio::test]
async fn paging_through_every_code_gives_the_whole_list_once_in_order() {
    let server = TestServer::start().await.expect("server");
    let mut client = client(&server).await;
    let mut request = list(200);
    let mut codes = Vec::new();
    let mut pages = 0;
    loop {
        let response = client.list_waste_codes(request.clone()).await.expect("page").into_inner();
        assert_eq!(response.total_size, 842);
        assert!(response.waste_codes.len() <= 200);
        codes.extend(response.waste_codes.into_iter().map(|entry| entry.waste_code.expect("code").code));
        pages += 1;
        assert!(pages <= 5, "more pages than 842 codes need");
        if response.next_page_token.is_empty() {
            break;
        }
        request.page_token = response.next_page_token;
    }
    assert_eq!(pages, 5);
    assert_eq!(codes.len(), 842);
    let sorted: BTreeSet<&String> = codes.iter().collect();
    assert_eq!(sorted.len(), 842, "no code twice");
    assert!(codes.windows(2).all(|pair| pair[0] < pair[1]), "in code order");
    assert_eq!(codes.len(), symbiose_domain::waste::list_of_waste().len());
}

#[tokio::test]
async fn filters_narrow_the_list() {
    let server = TestServer::start().await.expect("server");
    let mut client = client(&server).await;

    let hazardous = pb::ListWasteCodesRequest { hazardous: Some(true), page_size: 200, ..Default::default() };
    let response = client.list_waste_codes(hazardous).await.expect("hazardous").into_inner();
    assert_eq!(response.total_size, 408);
    assert_eq!(response.waste_codes.len(), 200, "a full first page");
    assert!(
        response.waste_codes.iter().all(|entry| entry.waste_code.as_ref().is_some_and(|code| code.hazardous))
    );

    let packaging = pb::ListWasteCodesRequest { sub_chapter: "1501".into(), ..list(0) };
    let response = client.list_waste_codes(packaging).await.expect("1501").into_inner();
    let codes: Vec<&str> = response
        .waste_codes
        .iter()
        .map(|entry| entry.waste_code.as_ref().expect("code").code.as_str())
        .collect();
    assert!(codes.contains(&"150101") && codes.contains(&"150103") && codes.contains(&"150110"), "{codes:?}");
    assert!(codes.iter().all(|code| code.starts_with("1501")));

    let chapter = pb::ListWasteCodesRequest { chapter: "15".into(), hazardous: Some(false), ..list(0) };
    let response = client.list_waste_codes(chapter).await.expect("15").into_inner();
    assert!(!response.waste_codes.is_empty());
    assert!(
        response
            .waste_codes
            .iter()
            .all(|entry| entry.chapter == "15" && !entry.waste_code.as_ref().expect("code").hazardous)
    );

    let text = pb::ListWasteCodesRequest { text: "WOODEN".into(), ..list(0) };
    let response = client.list_waste_codes(text).await.expect("text").into_inner();
    assert!(
        response.waste_codes.iter().any(|entry| entry.waste_code.as_ref().expect("code").code == "150103")
    );
    assert!(response.waste_codes.iter().all(|entry| {
        let haystack = format!("{} {} {}", entry.description, entry.chapter_title, entry.sub_chapter_title);
        haystack.to_lowercase().contains("wooden")
    }));
}

#[tokio::test]
async fn bad_list_requests_are_refused_naming_the_field() {
    let server = TestServer::start().await.expect("server");
    let mut client = client(&server).await;
    let cases = [
        (list(201), "page_size"),
        (list(-1), "page_size"),
        (pb::ListWasteCodesRequest { page_token: "garbage!".into(), ..list(0) }, "page_token"),
        (pb::ListWasteCodesRequest { chapter: "99".into(), ..list(0) }, "chapter"),
        (pb::ListWasteCodesRequest { chapter: "1".into(), ..list(0) }, "chapter"),
        (
            pb::ListWasteCodesRequest { chapter: "15".into(), sub_chapter: "1701".into(), ..list(0) },
            "sub_chapter",
        ),
        (pb::ListWasteCodesRequest { text: "x".repeat(101), ..list(0) }, "text"),
    ];
    for (request, field) in cases {
        let status = client.list_waste_codes(request.clone()).await.expect_err(field);
        assert_eq!(status.code(), Code::InvalidArgument, "{request:?}");
        assert!(status.message().starts_with(&format!("{field}: ")), "{}", status.message());
        assert_eq!(violated_field(&status), field);
    }
}

#[tokio::test]
async fn material_families_come_with_three_languages_and_their_units() {
    let server = TestServer::start().await.expect("server");
    let families = client(&server)
        .await
        .list_material_families(pb::ListMaterialFamiliesRequest {})
        .await
        .expect("families")
        .into_inner()
        .families;
    assert_eq!(families.len(), 9);
    let keys: Vec<&str> = families.iter().map(|family| family.key.as_str()).collect();
    for key in ["pallets", "packaging", "plastics", "metals", "process_water"] {
        assert!(keys.contains(&key), "{keys:?}");
    }
    for family in &families {
        let label = family.label.as_ref().expect("label");
        assert!(!label.en.is_empty() && !label.fr.is_empty() && !label.de.is_empty(), "{family:?}");
        assert!(label.en != label.fr || label.en != label.de, "translated: {label:?}");
        assert!(!family.units.is_empty());
        assert!(!family.typical_waste_codes.is_empty());
    }
    let pallets = families.iter().find(|family| family.key == "pallets").expect("pallets");
    assert_eq!(pallets.family(), common::MaterialFamily::Pallets);
    assert!(pallets.units.contains(&(common::Unit::Pallet as i32)));
    assert!(pallets.typical_waste_codes.iter().any(|code| code.code == "150103"));
    let water = families.iter().find(|family| family.key == "process_water").expect("water");
    assert!(water.units.contains(&(common::Unit::CubicMetre as i32)));
    assert!(!water.units.contains(&(common::Unit::Pallet as i32)), "no pallets of water");
}

#[tokio::test]
async fn identifiers_of_every_kind_are_recognised_and_checked() {
    let server = TestServer::start().await.expect("server");
    let mut client = client(&server).await;
    let valid = [
        ("732 829 320", pb::IdentifierKind::Siren, common::Country::France, "732829320"),
        ("732 829 320 00074", pb::IdentifierKind::Siret, common::Country::France, "73282932000074"),
        ("35600000000048", pb::IdentifierKind::Siret, common::Country::France, "35600000000048"),
        ("FR 40 303265045", pb::IdentifierKind::FrVat, common::Country::France, "FR40303265045"),
        ("DE136695976", pb::IdentifierKind::DeVat, common::Country::Germany, "DE136695976"),
        ("CHE-109.322.551", pb::IdentifierKind::ChUid, common::Country::Switzerland, "CHE109322551"),
        ("0417.497.106", pb::IdentifierKind::BeEnterprise, common::Country::Belgium, "0417497106"),
        ("BE0417497106", pb::IdentifierKind::BeVat, common::Country::Belgium, "BE0417497106"),
        ("LU26375245", pb::IdentifierKind::LuVat, common::Country::Luxembourg, "LU26375245"),
    ];
    for (input, kind, country, normalized) in valid {
        let response = client
            .validate_identifier(pb::ValidateIdentifierRequest { identifier: input.into(), kind: 0 })
            .await
            .unwrap_or_else(|status| panic!("{input}: {status:?}"))
            .into_inner();
        assert!(response.valid, "{input}: {}", response.reason);
        assert_eq!(response.kind(), kind, "{input}");
        assert_eq!(response.country(), country, "{input}");
        assert_eq!(response.normalized, normalized, "{input}");
        assert!(!response.display_form.is_empty());
        assert!(response.reason.is_empty());
    }

    let wrong_check_digits = [
        "732829321",
        "73282932000075",
        "FR41303265045",
        "DE136695977",
        "CHE-109.322.552",
        "0417497107",
        "LU26375246",
    ];
    for input in wrong_check_digits {
        let response = client
            .validate_identifier(pb::ValidateIdentifierRequest { identifier: input.into(), kind: 0 })
            .await
            .unwrap_or_else(|status| panic!("{input}: {status:?}"))
            .into_inner();
        assert!(!response.valid, "{input}");
        assert_ne!(response.kind(), pb::IdentifierKind::Unspecified, "{input}");
        assert!(!response.reason.is_empty(), "{input}");
    }
}

#[tokio::test]
async fn malformed_identifiers_are_refused_naming_the_field() {
    let server = TestServer::start().await.expect("server");
    let mut client = client(&server).await;
    let cases = [
        (pb::ValidateIdentifierRequest { identifier: String::new(), kind: 0 }, "identifier"),
        (pb::ValidateIdentifierRequest { identifier: "hello".into(), kind: 0 }, "identifier"),
        (pb::ValidateIdentifierRequest { identifier: "DE12345".into(), kind: 0 }, "identifier"),
        (pb::ValidateIdentifierRequest { identifier: "1".repeat(65), kind: 0 }, "identifier"),
        (
            pb::ValidateIdentifierRequest {
                identifier: "732829320".into(),
                kind: pb::IdentifierKind::Siret.into(),
            },
            "identifier",
        ),
        (pb::ValidateIdentifierRequest { identifier: "732829320".into(), kind: 42 }, "kind"),
    ];
    for (request, field) in cases {
        let status = client.validate_identifier(request.clone()).await.expect_err(&request.identifier);
        assert_eq!(status.code(), Code::InvalidArgument, "{request:?}");
        assert_eq!(violated_field(&status), field, "{request:?}");
        assert!(status.message().starts_with(&format!("{field}: ")), "{}", status.message());
    }
}

#[tokio::test]
async fn a_request_over_the_size_limit_is_refused() {
    let server = TestServer::start_with(|config| config.message_bytes_max = 1024).await.expect("server");
    let mut client = client(&server).await;
    let request = pb::ListWasteCodesRequest { text: "x".repeat(4096), ..list(0) };
    let status = client.list_waste_codes(request).await.expect_err("too large");
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
}
