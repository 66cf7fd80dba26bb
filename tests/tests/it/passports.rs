//! Material passports end to end: a lot of regenerated HDPE offered in Strasbourg, sold to Kehl,
//! carried across the Rhine and accepted; an institution's end-of-life instructions; the
//! producer's passport of its offer and the receiver's passport of what it made from the
//! delivered lot, derived from it; then the public web port as a visitor's phone and a label
//! printer meet it: the page in German and French, in headless Chromium, its QR code read back
//! from the screenshot, its JSON-LD, its PNG QR code, its label sheet, the GS1 Digital Link, and
//! nothing private on any of it.

use std::time::Instant;

use symbiose_proto::common::v1 as common;
use symbiose_proto::listings::v1 as pb;
use symbiose_proto::passports::v1 as passports;
use symbiose_proto::passports::v1::passport_service_client::PassportServiceClient;
use symbiose_tests::fixtures::{self, Member, agree, member};
use symbiose_tests::{AuthedChannel, TestServer};
use tonic::Code;
use tonic_types::StatusExt as _;

use crate::browser::{chromium, delivered, get, hdpe_terms, run_chromium};

type Passports = PassportServiceClient<AuthedChannel>;

/// The largest a passport's page may be: a phone on a poor connection in a yard.
const PAGE_BYTES_MAX: usize = 50 * 1024;
const GTIN: &str = "03012345678902";
const BATCH: &str = "LOT-2026-17";

fn texts(fr: &str, de: &str, en: &str) -> Option<common::LocalizedText> {
    Some(common::LocalizedText { fr: fr.into(), de: de.into(), en: en.into() })
}

/// The lot as its producer declares it: 97% HDPE (certified), 3% pigments and additives.
fn regenerated_hdpe() -> passports::Declaration {
    passports::Declaration {
        name: "Granulés PEHD régénérés".into(),
        description: texts(
            "Granulés de PEHD gris issus de bidons industriels broyés et lavés.",
            "Graue HDPE-Granulate aus gemahlenen und gewaschenen Industriekanistern.",
            "Grey HDPE pellets from shredded and washed industrial drums.",
        ),
        family: common::MaterialFamily::Plastics.into(),
        waste_code: Some(common::WasteCode { code: "191204".into(), hazardous: false }),
        composition: vec![
            passports::Component {
                material: "PEHD".into(),
                share_bp: 9_700,
                basis: passports::CompositionBasis::Certified.into(),
                document: "RecyClass 2026-0042".into(),
            },
            passports::Component {
                material: "Pigments et additifs".into(),
                share_bp: 300,
                basis: passports::CompositionBasis::Declared.into(),
                document: String::new(),
            },
        ],
        recycled_content_bp: 9_700,
        advice: texts("", "", ""),
        inputs: vec![],
        gtin: String::new(),
        batch: String::new(),
    }
}

/// What Kehl makes from 60% of the delivered lot: pallet boxes, 58.2% recycled at most.
fn pallet_boxes(input: &str, recycled_content_bp: u32) -> passports::Declaration {
    passports::Declaration {
        name: "Caisses-palettes en PEHD recyclé".into(),
        description: texts(
            "Caisses-palettes moulées, 60 % de PEHD régénéré.",
            "Gespritzte Palettenboxen, 60 % HDPE-Rezyklat.",
            "Moulded pallet boxes, 60% regenerated HDPE.",
        ),
        family: common::MaterialFamily::Plastics.into(),
        waste_code: None,
        composition: vec![passports::Component {
            material: "PEHD".into(),
            share_bp: 10_000,
            basis: passports::CompositionBasis::Declared.into(),
            document: String::new(),
        }],
        recycled_content_bp,
        advice: texts(
            "Une caisse fendue se répare par soudure à chaud.",
            "Eine gerissene Box lässt sich heiß verschweißen.",
            "A cracked box is repaired by hot welding.",
        ),
        inputs: vec![passports::PassportInput { passport_id: input.into(), share_bp: 6_000 }],
        gtin: GTIN.into(),
        batch: BATCH.into(),
    }
}

async fn client(server: &TestServer, member: &Member) -> Passports {
    PassportServiceClient::new(server.authed(&member.token).await.expect("channel"))
}

/// The text a QR code in the greyscale `pixels` (`width` x `height`) holds, read as a phone does.
fn read_qr(width: usize, height: usize, pixels: &[u8]) -> Vec<String> {
    let mut image = rqrr::PreparedImage::prepare_from_greyscale(width, height, |x, y| pixels[y * width + x]);
    image.detect_grids().into_iter().filter_map(|grid| grid.decode().ok().map(|(_, text)| text)).collect()
}

/// A PNG's pixels in 8-bit greyscale.
fn greyscale(png_bytes: &[u8]) -> (usize, usize, Vec<u8>) {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buffer = vec![0; reader.output_buffer_size().expect("a size")];
    let info = reader.next_frame(&mut buffer).expect("a frame");
    let (width, height) = (info.width as usize, info.height as usize);
    let channels = info.color_type.samples();
    let pixels = buffer[..info.buffer_size()]
        .chunks(channels)
        .map(|pixel| match channels {
            1 | 2 => pixel[0],
            _ => {
                ((u32::from(pixel[0]) * 299 + u32::from(pixel[1]) * 587 + u32::from(pixel[2]) * 114) / 1000)
                    as u8
            }
        })
        .collect();
    (width, height, pixels)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivered_lot_of_regenerated_plastic_gets_a_public_passport_a_qr_code_and_labels() {
    let server = TestServer::start().await.expect("server");
    let web = server.web_addr.expect("the test server serves the web port");
    let seller = member(
        &server,
        "Régénération Plastique Alsace SAS",
        common::Country::France,
        &fixtures::siren(4_001),
        &[common::Role::Producer],
        "Strasbourg",
    )
    .await
    .expect("seller");
    let buyer = fixtures::kehl_buyer(&server).await.expect("buyer");
    let carrier = fixtures::rhine_carrier(&server).await.expect("carrier");
    let ademe = member(
        &server,
        "ADEME Grand Est",
        common::Country::France,
        &fixtures::siren(4_002),
        &[common::Role::Institution],
        "Strasbourg",
    )
    .await
    .expect("institution");

    fixtures::deposit(&server, &buyer.organization_id, 5_000_000).await.expect("a deposit");
    let deal = agree(
        &server,
        &seller,
        hdpe_terms(pb::ListingSide::Offer, &seller.site_id, 2, 45_000),
        &buyer,
        hdpe_terms(pb::ListingSide::Request, &buyer.site_id, 2, 50_000),
    )
    .await
    .expect("a deal");
    fixtures::escrow_held(&server, &buyer.token, &deal.deal_id).await.expect("the payment held");
    let shipment_id =
        delivered(&server, &deal.deal_id, &buyer, &carrier, 2, Some(common::Country::Germany)).await;

    // The institution's instructions for plastics, in three languages; a producer may not.
    let instructions = passports::PublishInstructionsRequest {
        request_id: String::new(),
        scope: Some(passports::publish_instructions_request::Scope::Family(
            common::MaterialFamily::Plastics.into(),
        )),
        text: texts(
            "Déposer en benne plastiques rigides ; recyclé en PEHD.",
            "In den Container für Hartkunststoffe geben; wird zu HDPE recycelt.",
            "Put in the rigid plastics skip; recycled into HDPE.",
        ),
        source_title: "Guide du tri des plastiques 2026".into(),
        source_url: "https://librairie.ademe.fr/guide-tri-plastiques".into(),
    };
    let refused = client(&server, &seller)
        .await
        .publish_instructions(instructions.clone())
        .await
        .expect_err("a producer");
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    client(&server, &ademe).await.publish_instructions(instructions).await.expect("instructions published");

    // The producer's passport of its offer; shares over 100% are refused, naming the field.
    let mut seller_side = client(&server, &seller).await;
    let create = |subject, declaration| passports::CreatePassportRequest {
        request_id: String::new(),
        subject: Some(subject),
        declaration: Some(declaration),
    };
    let offer = passports::create_passport_request::Subject::ListingId(deal.offer_id.clone());
    let mut over = regenerated_hdpe();
    over.composition[1].share_bp = 301;
    let status = seller_side.create_passport(create(offer.clone(), over)).await.expect_err("101%");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let violations = status.get_details_bad_request().expect("a bad request").field_violations;
    assert_eq!(violations[0].field, "declaration.composition", "{status:?}");
    let origin = seller_side
        .create_passport(create(offer.clone(), regenerated_hdpe()))
        .await
        .expect("created")
        .into_inner()
        .passport
        .expect("a passport");
    assert_eq!(origin.state(), passports::PassportState::Draft);
    // A draft is nobody's business but its owner's: not listed to others, not on the web.
    let draft_page = get(web, &format!("/p/{}", origin.passport_id), &[]).await;
    assert_eq!(draft_page.status, 404);
    let origin = seller_side
        .publish_passport(passports::PublishPassportRequest {
            request_id: String::new(),
            passport_id: origin.passport_id,
        })
        .await
        .expect("published")
        .into_inner()
        .passport
        .expect("a passport");

    // Only the receiver makes the passport of the delivery; it cannot claim more recycled
    // content than 60% of a 97% lot (58.2%).
    let delivery = passports::create_passport_request::Subject::ShipmentId(shipment_id.clone());
    for stranger in [&seller, &carrier] {
        let status = client(&server, stranger)
            .await
            .create_passport(create(delivery.clone(), pallet_boxes(&origin.passport_id, 5_820)))
            .await
            .expect_err("not the receiver");
        assert!(matches!(status.code(), Code::PermissionDenied), "{status:?}");
    }
    let mut buyer_side = client(&server, &buyer).await;
    let status = buyer_side
        .create_passport(create(delivery.clone(), pallet_boxes(&origin.passport_id, 5_821)))
        .await
        .expect_err("more recycled than its input allows");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let violations = status.get_details_bad_request().expect("a bad request").field_violations;
    assert_eq!(violations[0].field, "declaration.recycled_content_bp", "{status:?}");
    let product = buyer_side
        .create_passport(create(delivery, pallet_boxes(&origin.passport_id, 5_820)))
        .await
        .expect("created")
        .into_inner()
        .passport
        .expect("a passport");
    let product = buyer_side
        .publish_passport(passports::PublishPassportRequest {
            request_id: String::new(),
            passport_id: product.passport_id,
        })
        .await
        .expect("published")
        .into_inner()
        .passport
        .expect("a passport");
    // The GTIN and batch are Kehl's now: another organization's passport may not take its
    // Digital Link.
    let mut taken = regenerated_hdpe();
    taken.gtin = GTIN.into();
    taken.batch = BATCH.into();
    let status = seller_side.create_passport(create(offer.clone(), taken)).await.expect_err("Kehl's GTIN");
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    // A draft withdrawn before it was ever published stays its owner's.
    let draft = seller_side
        .create_passport(passports::CreatePassportRequest {
            request_id: "a draft never published".into(),
            subject: Some(offer.clone()),
            declaration: Some(regenerated_hdpe()),
        })
        .await
        .expect("a second draft")
        .into_inner()
        .passport
        .expect("a passport");
    seller_side
        .withdraw_passport(passports::WithdrawPassportRequest {
            request_id: String::new(),
            passport_id: draft.passport_id.clone(),
            reason: "brouillon abandonné".into(),
        })
        .await
        .expect("withdrawn");
    assert_eq!(get(web, &format!("/p/{}", draft.passport_id), &[]).await.status, 404);
    let status = buyer_side
        .get_passport(passports::GetPassportRequest { passport_id: draft.passport_id, min_position: 0 })
        .await
        .expect_err("another's draft");
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    let kinds: Vec<&str> = product.custody.iter().map(|step| step.kind.as_str()).collect();
    assert_eq!(
        kinds,
        ["origin", "deal", "pickup", "border", "delivery", "recovery"],
        "{:?}",
        product.custody
    );
    assert_eq!(product.custody[0].town, "Strasbourg");
    assert_eq!(product.custody[4].town, "Kehl");
    assert!(product.custody[4].distance_m > 0 && product.custody[4].co2_g > 0, "{:?}", product.custody[4]);
    assert_eq!(product.custody[5].recovery_operation, "R3");
    assert_eq!(product.instructions.len(), 1);
    let base = format!("http://{web}");
    let link = format!("{base}/01/{GTIN}/10/{BATCH}");
    assert_eq!(product.digital_link, link);
    assert_eq!(product.page_url, format!("{base}/p/{}", product.passport_id));
    let page_path = format!("/p/{}", product.passport_id);

    // The page, in German as the phone asks, then in French by the switch.
    let german = get(web, &page_path, &[("Accept-Language", "de-DE,de;q=0.9,en;q=0.5")]).await;
    assert_eq!(german.status, 200);
    assert_eq!(german.header("content-language"), Some("de"));
    let started = Instant::now();
    let french = get(web, &format!("{page_path}?lang=fr"), &[("Accept-Language", "de")]).await;
    let time_to_answer = started.elapsed();
    for (page, words) in [
        (
            &german,
            [
                "Geschichte der Partie",
                "Grenzübertritt",
                "Deutschland",
                "In den Container für Hartkunststoffe",
                "Rezyklatanteil",
            ],
        ),
        (
            &french,
            [
                "Histoire du lot",
                "Passage de frontière",
                "Allemagne",
                "Déposer en benne plastiques rigides",
                "Contenu recyclé",
            ],
        ),
    ] {
        let text = page.text();
        for word in words {
            assert!(text.contains(word), "{word:?} missing from the page:\n{text}");
        }
        assert!(
            text.contains("Régénération Plastique Alsace SAS") && text.contains("ADEME Grand Est"),
            "{text}"
        );
        assert!(text.contains("58,2\u{a0}%"), "{text}");
        // Nothing fetched from elsewhere, nothing private.
        assert!(page.body.len() < PAGE_BYTES_MAX, "{} bytes", page.body.len());
        for forbidden in [
            "src=",
            "<link",
            "@import",
            "url(",
            "1 rue du Port",
            "DE136695976",
            &seller.organization_id,
            &buyer.organization_id,
        ] {
            assert!(!text.contains(forbidden), "{forbidden:?} on the page");
        }
        let policy = page.header("content-security-policy").expect("a content security policy");
        assert!(policy.contains("default-src 'none'"), "{policy}");
    }
    println!(
        "the passport's page: {} bytes in German, {} in French; answered in {:.1} ms",
        german.body.len(),
        french.body.len(),
        time_to_answer.as_secs_f64() * 1000.0
    );

    // The JSON-LD, alone and in the page.
    let json_ld = get(web, &format!("{page_path}/passport.jsonld"), &[]).await;
    assert_eq!(json_ld.header("content-type"), Some("application/ld+json"));
    let product_ld: serde_json::Value = serde_json::from_slice(&json_ld.body).expect("JSON-LD");
    assert_eq!(product_ld["@context"], "https://schema.org");
    assert_eq!(product_ld["@type"], "IndividualProduct");
    assert_eq!(product_ld["hasGS1DigitalLink"], link.as_str());
    assert_eq!(product_ld["gtin14"], GTIN);
    assert_eq!(product_ld["manufacturer"]["name"], "Kehler Palettenservice GmbH");
    assert_eq!(product_ld["isRelatedTo"][0]["@id"], origin.page_url.as_str());
    let text = german.text();
    let embedded = text
        .split("<script type=\"application/ld+json\">")
        .nth(1)
        .and_then(|rest| rest.split("</script>").next())
        .expect("JSON-LD in the page");
    assert_eq!(serde_json::from_str::<serde_json::Value>(embedded).expect("the page's JSON-LD"), product_ld);

    // The QR code, as a PNG, read back to the Digital Link; the link leads to the page.
    let png_answer = get(web, &format!("{page_path}/qr.png"), &[]).await;
    assert_eq!(png_answer.header("content-type"), Some("image/png"));
    let (width, height, pixels) = greyscale(&png_answer.body);
    assert_eq!(read_qr(width, height, &pixels), std::slice::from_ref(&link));
    let resolved = get(web, &format!("/01/{GTIN}/10/{BATCH}"), &[]).await;
    assert_eq!(resolved.status, 307);
    assert_eq!(resolved.header("location"), Some(product.page_url.as_str()));
    let short = get(web, "/01/3012345678902", &[]).await;
    assert_eq!((short.status, short.header("location")), (307, Some(product.page_url.as_str())));

    // The label sheet: one A4 page of 8 labels, each with the lot's name.
    let labels = get(web, &format!("{page_path}/labels.pdf"), &[]).await;
    assert_eq!(labels.header("content-type"), Some("application/pdf"));
    let pdf = lopdf::Document::load_mem(&labels.body).expect("a PDF");
    assert_eq!(pdf.get_pages().len(), 1);
    let sheet_text = pdf.extract_text(&[1]).expect("the page's text");
    assert!(sheet_text.contains(BATCH), "{sheet_text}");

    // Addresses that name no published passport: one plain page, whatever the reason.
    for path in
        ["/p/0190f1d2-0000-7000-8000-000000000000", "/p/not-an-id", "/01/123/10/x", "/p/../etc/passwd", "/"]
    {
        let answer = get(web, path, &[("Accept-Language", "en")]).await;
        assert_eq!(answer.status, 404, "{path}");
        let text = answer.text();
        assert!(text.contains("Passport not found"), "{path}: {text}");
        assert!(!text.contains("panicked") && !text.contains("rror"), "{path}: {text}");
    }

    // Withdrawn: the page says so, with the reason, and the passport changes no more.
    seller_side
        .withdraw_passport(passports::WithdrawPassportRequest {
            request_id: String::new(),
            passport_id: origin.passport_id.clone(),
            reason: "Analyse révisée : lot à requalifier".into(),
        })
        .await
        .expect("withdrawn");
    let withdrawn = get(web, &format!("/p/{}?lang=fr", origin.passport_id), &[]).await;
    assert_eq!(withdrawn.status, 200);
    assert!(
        withdrawn.text().contains("Ce passeport a été retiré")
            && withdrawn.text().contains("lot à requalifier")
    );

    // The page in a real browser, as a phone shows it: the text in both languages, and the QR
    // code on the screenshot read back to the Digital Link.
    let Some(chromium) = chromium() else {
        assert!(
            std::env::var_os("CI").is_none_or(|value| value.is_empty()),
            "chromium is not installed (CI is set: .ci/run installs Debian's chromium)"
        );
        println!("skipped the browser part: Debian's chromium is not installed (apt-get install chromium)");
        return;
    };
    let profile = tempfile::tempdir().expect("a browser profile");
    let page_url = format!("{base}{page_path}");
    for (lang, heading) in [("de", "Geschichte der Partie"), ("fr", "Histoire du lot")] {
        let url = format!("{page_url}?lang={lang}");
        let binary = chromium.to_owned();
        let (profile_dir, dom_url) = (profile.path().to_owned(), url.clone());
        let dom = tokio::task::spawn_blocking(move || {
            run_chromium(&binary, &profile_dir, &["--dump-dom"], &dom_url)
        })
        .await
        .expect("chromium ran");
        let rendered = String::from_utf8_lossy(&dom.stdout).into_owned();
        assert!(rendered.contains(heading), "{lang}: {rendered}{}", String::from_utf8_lossy(&dom.stderr));
        let shot = profile.path().join(format!("passport-{lang}.png"));
        let (binary, profile_dir, shot_arg) =
            (chromium.to_owned(), profile.path().to_owned(), format!("--screenshot={}", shot.display()));
        let ran =
            tokio::task::spawn_blocking(move || run_chromium(&binary, &profile_dir, &[&shot_arg], &url))
                .await
                .expect("chromium ran");
        let bytes = std::fs::read(&shot).unwrap_or_else(|error| {
            panic!("no screenshot ({error}): {}", String::from_utf8_lossy(&ran.stderr))
        });
        let (width, height, pixels) = greyscale(&bytes);
        assert_eq!(
            read_qr(width, height, &pixels),
            std::slice::from_ref(&link),
            "{lang}: the QR code on the screenshot"
        );
        let kept = std::env::temp_dir().join(format!("symbiose-passport-{lang}.png"));
        std::fs::copy(&shot, &kept).expect("keep the screenshot");
        println!(
            "screenshot in {lang}: {width}x{height} px, {} bytes, kept at {}",
            bytes.len(),
            kept.display()
        );
    }
}
