//! `OrganizationService` through gRPC: registration, sites, permits, contacts and their
//! erasure, tokens, and every refusal of the access rules.

use symbiose_domain::Role;
use symbiose_kit::auth::{Claims, TokenAuthority};
use symbiose_proto::common::v1 as common;
use symbiose_proto::listings::v1 as pb;
use symbiose_proto::listings::v1::organization_service_client::OrganizationServiceClient;
use symbiose_tests::{AuthedChannel, TestServer, TestStore};
use tonic::Code;
use tonic_types::StatusExt;
use uuid::Uuid;

type Client = OrganizationServiceClient<AuthedChannel>;

async fn operator(server: &TestServer) -> Client {
    OrganizationServiceClient::new(server.operator().await.expect("operator channel"))
}

async fn as_token(server: &TestServer, token: &str) -> Client {
    OrganizationServiceClient::new(server.authed(token).await.expect("channel"))
}

fn register(
    name: &str,
    country: common::Country,
    identifier: &str,
    roles: &[common::Role],
) -> pb::RegisterOrganizationRequest {
    pb::RegisterOrganizationRequest {
        request_id: String::new(),
        legal_name: name.into(),
        country: country.into(),
        legal_identifier: identifier.into(),
        roles: roles.iter().map(|role| *role as i32).collect(),
    }
}

fn site(organization_id: &str, name: &str, latitude: f64, longitude: f64) -> pb::AddSiteRequest {
    pb::AddSiteRequest {
        request_id: String::new(),
        organization_id: organization_id.into(),
        name: name.into(),
        address: Some(pb::Address {
            street: "1 rue du Havre".into(),
            postal_code: "67100".into(),
            city: "Strasbourg".into(),
            country: common::Country::France.into(),
        }),
        location: Some(common::GeoPoint { latitude, longitude }),
    }
}

/// Two organizations, A (Strasbourg) and B (Kehl), each with a token of its own.
struct World {
    a: String,
    b: String,
    a_token: String,
    b_token: String,
    b_token_id: String,
    b_site: String,
}

async fn world(server: &TestServer) -> World {
    let mut operator = operator(server).await;
    let a = operator
        .register_organization(register(
            "Palettes de l'Est SAS",
            common::Country::France,
            "73282932000074",
            &[common::Role::Producer],
        ))
        .await
        .expect("register A")
        .into_inner()
        .organization_id;
    let b = operator
        .register_organization(register(
            "Kehler Paletten GmbH",
            common::Country::Germany,
            "DE136695976",
            &[common::Role::Buyer, common::Role::Recycler],
        ))
        .await
        .expect("register B")
        .into_inner()
        .organization_id;
    let issue = |organization_id: &str| pb::IssueTokenRequest {
        organization_id: organization_id.into(),
        roles: vec![],
        ttl_days: 0,
    };
    let a_token = operator.issue_token(issue(&a)).await.expect("token A").into_inner().token;
    let b_issued = operator.issue_token(issue(&b)).await.expect("token B").into_inner();
    let b_site = as_token(server, &b_issued.token)
        .await
        .add_site(site(&b, "Hafen Kehl", 48.5724, 7.8154))
        .await
        .expect("B adds a site")
        .into_inner()
        .site_id;
    World { a, b, a_token, b_token: b_issued.token, b_token_id: b_issued.token_id, b_site }
}

fn field(status: &tonic::Status) -> String {
    let details = status.get_error_details();
    details.bad_request().map(|bad| bad.field_violations[0].field.clone()).unwrap_or_default()
}

#[tokio::test]
async fn an_organization_is_registered_once_and_reads_back_with_its_sites() {
    let server = TestServer::start().await.expect("server");
    let world = world(&server).await;
    let mut b = as_token(&server, &world.b_token).await;
    let organization = b
        .get_organization(pb::GetOrganizationRequest { organization_id: world.b.clone() })
        .await
        .expect("get")
        .into_inner();
    let record = organization.organization.expect("organization");
    assert_eq!(record.legal_name, "Kehler Paletten GmbH");
    assert_eq!(record.legal_identifier, "DE136695976");
    assert_eq!(record.country(), common::Country::Germany);
    assert_eq!(record.roles, vec![common::Role::Buyer as i32, common::Role::Recycler as i32]);
    assert_eq!(record.sites.len(), 1);
    assert_eq!(record.sites[0].site_id, world.b_site);
    assert_eq!(organization.version, 1, "registered, then one site");

    let mut operator = operator(&server).await;
    let again = operator
        .register_organization(register(
            "Copy GmbH",
            common::Country::Germany,
            "DE 136 695 976",
            &[common::Role::Buyer],
        ))
        .await
        .expect_err("same identifier");
    assert_eq!(again.code(), Code::FailedPrecondition);
    assert!(
        again.message().contains("legal_identifier") && again.message().contains(&world.b),
        "{}",
        again.message()
    );

    // The same request id twice registers once.
    let mut request = register(
        "Bâle Recyclage AG",
        common::Country::Switzerland,
        "CHE-109.322.551",
        &[common::Role::Recycler],
    );
    request.request_id = "register-basel-1".into();
    let first = operator.register_organization(request.clone()).await.expect("first").into_inner();
    let second = operator.register_organization(request).await.expect("repeat").into_inner();
    assert_eq!(first, second);
}

#[tokio::test]
async fn a_repeated_request_id_adds_one_site() {
    let server = TestServer::start().await.expect("server");
    let world = world(&server).await;
    let mut a = as_token(&server, &world.a_token).await;
    let mut request = site(&world.a, "Port du Rhin", 48.5734, 7.7521);
    request.request_id = "site-port-du-rhin".into();
    let first = a.add_site(request.clone()).await.expect("first").into_inner();
    let second = a.add_site(request).await.expect("repeat").into_inner();
    assert_eq!(first, second);
    let record = a
        .get_organization(pb::GetOrganizationRequest { organization_id: world.a.clone() })
        .await
        .expect("get")
        .into_inner()
        .organization
        .expect("organization");
    assert_eq!(record.sites.len(), 1);

    let renamed = pb::UpdateSiteRequest {
        request_id: String::new(),
        organization_id: world.a.clone(),
        site_id: first.site_id.clone(),
        name: "Port du Rhin, quai 3".into(),
        address: request_address(),
        location: Some(common::GeoPoint { latitude: 48.5734, longitude: 7.7521 }),
    };
    let updated = a.update_site(renamed).await.expect("update").into_inner();
    assert_eq!(updated.version, first.version + 1);
}

fn request_address() -> Option<pb::Address> {
    Some(pb::Address {
        street: "1 rue du Havre".into(),
        postal_code: "67100".into(),
        city: "Strasbourg".into(),
        country: common::Country::France.into(),
    })
}

#[tokio::test]
async fn calls_without_a_valid_token_are_unauthenticated() {
    let server = TestServer::start().await.expect("server");
    let world = world(&server).await;
    let get = || pb::GetOrganizationRequest { organization_id: world.a.clone() };

    let mut anonymous = OrganizationServiceClient::new(server.channel().await.expect("channel"));
    let status = anonymous.get_organization(get()).await.expect_err("no token");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");

    let now_s = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs();
    let claims = |expires_at_s: u64| Claims {
        organization_id: Uuid::parse_str(&world.a).expect("id"),
        roles: vec![Role::Producer],
        issued_at_s: now_s - 100,
        expires_at_s,
        token_id: Uuid::now_v7(),
    };
    let (server_key, _) =
        TokenAuthority::load_or_create(&server.config.data_dir.join("keys")).expect("the server's key");
    let expired = server_key.issue(&claims(now_s - 10));
    let foreign = TokenAuthority::from_seed([7; 32]).issue(&claims(now_s + 3600));
    for (what, token) in
        [("garbage", "not-a-token"), ("expired", expired.as_str()), ("foreign-signed", foreign.as_str())]
    {
        let status = as_token(&server, token).await.get_organization(get()).await.expect_err(what);
        assert_eq!(status.code(), Code::Unauthenticated, "{what}: {status:?}");
    }

    // A revoked token stops working at once.
    let mut b = as_token(&server, &world.b_token).await;
    b.get_organization(get()).await.expect("B's token works");
    operator(&server)
        .await
        .revoke_token(pb::RevokeTokenRequest { token_id: world.b_token_id.clone() })
        .await
        .expect("revoke");
    let status = b.get_organization(get()).await.expect_err("revoked");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert!(status.message().contains("revoked"), "{}", status.message());
}

#[tokio::test]
async fn no_organization_reads_or_changes_what_is_not_its_own() {
    let server = TestServer::start().await.expect("server");
    let world = world(&server).await;
    let mut a = as_token(&server, &world.a_token).await;
    let b = world.b.clone();
    let permit = pb::Permit {
        permit_id: String::new(),
        kind: pb::PermitKind::Treatment.into(),
        number: "X".into(),
        issued_by: "Y".into(),
        valid_until: Some(prost_types::Timestamp { seconds: 4_000_000_000, nanos: 0 }),
        accepted_waste_codes: vec!["150103".into()],
        hazardous_accepted: false,
        dangerous_goods_allowed: false,
    };
    let mut refusals: Vec<(&str, tonic::Status)> = Vec::new();
    refusals.push(("add a site to B", a.add_site(site(&b, "Intrus", 48.0, 7.0)).await.expect_err("refused")));
    refusals.push((
        "rename B's site",
        a.update_site(pb::UpdateSiteRequest {
            request_id: String::new(),
            organization_id: b.clone(),
            site_id: world.b_site.clone(),
            name: "Mine".into(),
            address: request_address(),
            location: Some(common::GeoPoint { latitude: 48.0, longitude: 7.0 }),
        })
        .await
        .expect_err("refused"),
    ));
    refusals.push((
        "add a permit to B",
        a.add_permit(pb::AddPermitRequest {
            request_id: String::new(),
            organization_id: b.clone(),
            permit: Some(permit),
        })
        .await
        .expect_err("refused"),
    ));
    refusals.push((
        "set B's contacts",
        a.set_contacts(pb::SetContactsRequest {
            request_id: String::new(),
            organization_id: b.clone(),
            contacts: vec![pb::Contact {
                name: "X".into(),
                email: "x@example.org".into(),
                ..Default::default()
            }],
        })
        .await
        .expect_err("refused"),
    ));
    refusals.push((
        "erase B's contacts",
        a.erase_contacts(pb::EraseContactsRequest { request_id: String::new(), organization_id: b.clone() })
            .await
            .expect_err("refused"),
    ));
    refusals.push((
        "give itself roles",
        a.set_roles(pb::SetRolesRequest {
            request_id: String::new(),
            organization_id: world.a.clone(),
            roles: vec![common::Role::Carrier.into()],
        })
        .await
        .expect_err("refused"),
    ));
    refusals.push((
        "register an organization",
        a.register_organization(register(
            "Fake",
            common::Country::France,
            "552100554",
            &[common::Role::Buyer],
        ))
        .await
        .expect_err("refused"),
    ));
    refusals.push((
        "issue a token for B",
        a.issue_token(pb::IssueTokenRequest { organization_id: b.clone(), roles: vec![], ttl_days: 0 })
            .await
            .expect_err("refused"),
    ));
    refusals.push((
        "issue a token for itself",
        a.issue_token(pb::IssueTokenRequest { organization_id: world.a.clone(), roles: vec![], ttl_days: 0 })
            .await
            .expect_err("refused"),
    ));
    refusals.push((
        "revoke B's token",
        a.revoke_token(pb::RevokeTokenRequest { token_id: world.b_token_id.clone() })
            .await
            .expect_err("refused"),
    ));
    for (what, status) in &refusals {
        assert_eq!(status.code(), Code::PermissionDenied, "A may not {what}: {status:?}");
    }

    // Reading B gives its public part only.
    let seen = a
        .get_organization(pb::GetOrganizationRequest { organization_id: b.clone() })
        .await
        .expect("public part")
        .into_inner()
        .organization
        .expect("organization");
    assert!(seen.permits.is_empty() && seen.contacts.is_empty());
    // And nothing of B changed.
    let mut b_client = as_token(&server, &world.b_token).await;
    let own = b_client
        .get_organization(pb::GetOrganizationRequest { organization_id: b })
        .await
        .expect("own")
        .into_inner();
    assert_eq!(own.version, 1);
    assert_eq!(own.organization.expect("organization").sites[0].name, "Hafen Kehl");
}

/// On the embedded store, whatever the environment says: the test searches the bytes of the
/// data directory, where that store keeps the log.
#[tokio::test]
async fn erased_contacts_can_be_read_back_from_nowhere() {
    let server = TestServer::start_on(TestStore::Embedded, |_| {}).await.expect("server");
    let world = world(&server).await;
    let mut b = as_token(&server, &world.b_token).await;
    let name = "Lieselotte Quellenbach";
    let email = "lieselotte.quellenbach@kehler-paletten.example";
    b.set_contacts(pb::SetContactsRequest {
        request_id: String::new(),
        organization_id: world.b.clone(),
        contacts: vec![pb::Contact {
            name: name.into(),
            email: email.into(),
            phone: "+49 7851 0000".into(),
            function: "Logistik".into(),
        }],
    })
    .await
    .expect("set contacts");
    let get = || pb::GetOrganizationRequest { organization_id: world.b.clone() };
    let own = b.get_organization(get()).await.expect("get").into_inner().organization.expect("organization");
    assert_eq!(own.contacts.len(), 1);
    assert_eq!(own.contacts[0].email, email);
    let by_other =
        as_token(&server, &world.a_token).await.get_organization(get()).await.expect("get").into_inner();
    assert!(by_other.organization.expect("organization").contacts.is_empty(), "contacts are private");

    // The search finds what is stored in the clear: the site's name is in the log.
    assert!(data_contains(&server, b"Hafen Kehl"), "the data directory is searched");
    assert!(
        !data_contains(&server, name.as_bytes()),
        "the contacts are never on disk in the clear, even before erasure"
    );
    let key = server.config.data_dir.join("vault").join(format!("{}.key", world.b));
    assert!(key.exists(), "the contacts' key is in the vault");
    b.erase_contacts(pb::EraseContactsRequest {
        request_id: String::new(),
        organization_id: world.b.clone(),
    })
    .await
    .expect("erase");
    let after = b.get_organization(get()).await.expect("the history still loads").into_inner();
    let record = after.organization.expect("organization");
    assert!(record.contacts.is_empty());
    assert!(record.contacts_erased);
    assert_eq!(record.sites.len(), 1, "the rest of the history stays");
    assert_eq!(after.version, 3, "registered, site, contacts set, contacts erased");
    for needle in [name.as_bytes(), email.as_bytes(), b"Quellenbach"] {
        assert!(
            !data_contains(&server, needle),
            "{} found in the data directory",
            String::from_utf8_lossy(needle)
        );
    }
    assert!(!key.exists(), "the key is gone");
}

/// Whether any file under the server's data directory holds `needle`.
fn data_contains(server: &TestServer, needle: &[u8]) -> bool {
    fn walk(dir: &std::path::Path, needle: &[u8]) -> bool {
        std::fs::read_dir(dir).expect("list").any(|entry| {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                walk(&path, needle)
            } else {
                std::fs::read(&path).expect("read").windows(needle.len()).any(|window| window == needle)
            }
        })
    }
    walk(&server.config.data_dir, needle)
}

#[tokio::test]
async fn bad_input_is_refused_naming_the_field_and_changes_nothing() {
    let server = TestServer::start().await.expect("server");
    let world = world(&server).await;
    let mut operator = operator(&server).await;
    let cases = [
        (register("X", common::Country::France, "732829321", &[common::Role::Buyer]), "legal_identifier"),
        (register("X", common::Country::Germany, "552100554", &[common::Role::Buyer]), "legal_identifier"),
        (register("", common::Country::France, "552100554", &[common::Role::Buyer]), "legal_name"),
        (register("X", common::Country::Unspecified, "552100554", &[common::Role::Buyer]), "country"),
        (register("X", common::Country::France, "552100554", &[]), "roles"),
        (register("X", common::Country::France, "552100554", &[common::Role::Operator]), "roles"),
    ];
    for (request, expected) in cases {
        let status = operator.register_organization(request.clone()).await.expect_err(expected);
        assert_eq!(status.code(), Code::InvalidArgument, "{request:?}: {status:?}");
        assert_eq!(field(&status), expected, "{request:?}");
    }
    let mut a = as_token(&server, &world.a_token).await;
    let mut latitude_91 = site(&world.a, "Nowhere", 91.0, 7.0);
    latitude_91.request_id = String::new();
    let mut no_address = site(&world.a, "Nowhere", 48.0, 7.0);
    no_address.address = None;
    let site_cases = [
        (latitude_91, "location.latitude"),
        (site(&world.a, "", 48.0, 7.0), "name"),
        (no_address, "address"),
        (site("not-an-id", "X", 48.0, 7.0), "organization_id"),
    ];
    for (request, expected) in site_cases {
        let status = a.add_site(request.clone()).await.expect_err(expected);
        assert_eq!(status.code(), Code::InvalidArgument, "{request:?}: {status:?}");
        assert_eq!(field(&status), expected);
    }
    let record = a
        .get_organization(pb::GetOrganizationRequest { organization_id: world.a.clone() })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(record.version, 0, "nothing was appended");
    // A good registration after them: the list, caught up with it, holds it and the world's two.
    let good = operator
        .register_organization(register(
            "Sarre Recyclage",
            common::Country::France,
            "552100554",
            &[common::Role::Recycler],
        ))
        .await
        .expect("a good registration")
        .into_inner();
    let listed = operator
        .list_organizations(pb::ListOrganizationsRequest {
            page_size: 200,
            min_position: good.position,
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner();
    let mut ids: Vec<String> =
        listed.organizations.into_iter().map(|organization| organization.organization_id).collect();
    ids.sort();
    let mut expected = vec![world.a, world.b, good.organization_id];
    expected.sort();
    assert_eq!(ids, expected, "no bad registration went through");
}

#[tokio::test]
async fn organizations_are_listed_by_role_and_country_page_by_page() {
    let server = TestServer::start().await.expect("server");
    let world = world(&server).await;
    let mut operator = operator(&server).await;
    let last = operator
        .register_organization(register(
            "Sarre Recyclage",
            common::Country::France,
            "552100554",
            &[common::Role::Recycler],
        ))
        .await
        .expect("register")
        .into_inner();
    let list = |role: common::Role, country: common::Country, page_size: i32, page_token: String| {
        pb::ListOrganizationsRequest {
            role: role.into(),
            country: country.into(),
            page_size,
            page_token,
            min_position: last.position,
        }
    };
    let recyclers = operator
        .list_organizations(list(common::Role::Recycler, common::Country::Unspecified, 0, String::new()))
        .await
        .expect("recyclers")
        .into_inner();
    let mut names: Vec<String> =
        recyclers.organizations.iter().map(|organization| organization.legal_name.clone()).collect();
    names.sort();
    assert_eq!(names, ["Kehler Paletten GmbH", "Sarre Recyclage"]);
    assert!(
        recyclers
            .organizations
            .iter()
            .all(|organization| organization.contacts.is_empty() && organization.permits.is_empty())
    );

    let french = operator
        .list_organizations(list(common::Role::Unspecified, common::Country::France, 0, String::new()))
        .await
        .expect("french")
        .into_inner();
    assert_eq!(french.organizations.len(), 2);
    assert!(
        french.organizations.iter().all(|organization| organization.country() == common::Country::France)
    );

    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = operator
            .list_organizations(list(common::Role::Unspecified, common::Country::Unspecified, 1, token))
            .await
            .expect("page")
            .into_inner();
        assert!(page.organizations.len() <= 1);
        seen.extend(page.organizations.into_iter().map(|organization| organization.organization_id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
        assert!(seen.len() <= 3, "no more pages than organizations");
    }
    assert_eq!(seen.len(), 3);
    assert!(seen.contains(&world.a) && seen.contains(&world.b));
    let over = operator
        .list_organizations(list(common::Role::Unspecified, common::Country::Unspecified, 201, String::new()))
        .await
        .expect_err("page too large");
    assert_eq!(field(&over), "page_size");
}

#[tokio::test]
async fn an_organization_over_its_rate_is_told_to_slow_down() {
    let server = TestServer::start_with(|config| {
        config.rate_limit_per_second = std::num::NonZeroU32::new(1).expect("one");
        config.rate_limit_burst = std::num::NonZeroU32::new(20).expect("twenty");
    })
    .await
    .expect("server");
    let world = world(&server).await;
    let mut a = as_token(&server, &world.a_token).await;
    let mut exhausted = None;
    for _ in 0..40 {
        if let Err(status) =
            a.get_organization(pb::GetOrganizationRequest { organization_id: world.a.clone() }).await
        {
            exhausted = Some(status);
            break;
        }
    }
    let status = exhausted.expect("the burst runs out");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    // Another organization is not slowed by A's loop.
    as_token(&server, &world.b_token)
        .await
        .get_organization(pb::GetOrganizationRequest { organization_id: world.b.clone() })
        .await
        .expect("B is served");
}

#[tokio::test]
async fn a_recycler_records_its_permit_and_only_it_and_the_operator_see_it() {
    let server = TestServer::start().await.expect("server");
    let world = world(&server).await;
    let permit = |kind: pb::PermitKind| pb::Permit {
        permit_id: String::new(),
        kind: kind.into(),
        number: "ICPE-67-2791".into(),
        issued_by: "Landratsamt Ortenaukreis".into(),
        valid_until: Some(prost_types::Timestamp { seconds: 4_000_000_000, nanos: 0 }),
        accepted_waste_codes: vec!["150103".into(), "15 01 01".into()],
        hazardous_accepted: false,
        dangerous_goods_allowed: false,
    };
    let mut b = as_token(&server, &world.b_token).await;
    let added = b
        .add_permit(pb::AddPermitRequest {
            request_id: String::new(),
            organization_id: world.b.clone(),
            permit: Some(permit(pb::PermitKind::Treatment)),
        })
        .await
        .expect("a recycler adds a treatment permit")
        .into_inner();
    let transport = b
        .add_permit(pb::AddPermitRequest {
            request_id: String::new(),
            organization_id: world.b.clone(),
            permit: Some(permit(pb::PermitKind::Transport)),
        })
        .await
        .expect_err("B is no carrier");
    assert_eq!(transport.code(), Code::FailedPrecondition, "{transport:?}");
    let mut expired = permit(pb::PermitKind::Treatment);
    expired.valid_until = Some(prost_types::Timestamp { seconds: 1_000_000_000, nanos: 0 });
    let status = b
        .add_permit(pb::AddPermitRequest {
            request_id: String::new(),
            organization_id: world.b.clone(),
            permit: Some(expired),
        })
        .await
        .expect_err("expired");
    assert_eq!(field(&status), "permit.valid_until");

    let get = || pb::GetOrganizationRequest { organization_id: world.b.clone() };
    for (who, mut client) in [("B", b), ("the operator", operator(&server).await)] {
        let record = client
            .get_organization(get())
            .await
            .expect("get")
            .into_inner()
            .organization
            .expect("organization");
        assert_eq!(record.permits.len(), 1, "{who} sees the permit");
        assert_eq!(record.permits[0].permit_id, added.permit_id);
        assert_eq!(record.permits[0].accepted_waste_codes, ["150103", "150101"]);
    }
    let seen_by_a =
        as_token(&server, &world.a_token).await.get_organization(get()).await.expect("get").into_inner();
    assert!(seen_by_a.organization.expect("organization").permits.is_empty(), "A does not");
}

#[tokio::test]
async fn organizations_and_revocations_survive_a_restart() {
    let server = TestServer::start().await.expect("server");
    let world = world(&server).await;
    operator(&server)
        .await
        .revoke_token(pb::RevokeTokenRequest { token_id: world.b_token_id.clone() })
        .await
        .expect("revoke");
    let server = server.restart().await.expect("restart");
    let get = || pb::GetOrganizationRequest { organization_id: world.b.clone() };
    let status =
        as_token(&server, &world.b_token).await.get_organization(get()).await.expect_err("still revoked");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    let record =
        as_token(&server, &world.a_token).await.get_organization(get()).await.expect("A's token still works");
    assert_eq!(record.into_inner().organization.expect("organization").sites[0].site_id, world.b_site);
}
