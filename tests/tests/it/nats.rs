//! The standalone server with `SYMBIOSE_NATS_URL` set: what a command writes reaches a partner
//! subscribed on NATS, in the CloudEvents binding, decodable with the .proto files.

use std::time::Duration;

use prost::Message as _;
use symbiose_feed::testing::NatsServer;
use symbiose_proto::common::v1 as common;
use symbiose_proto::listings::v1 as pb;
use symbiose_proto::listings::v1::organization_service_client::OrganizationServiceClient;
use symbiose_tests::TestServer;
use tokio_stream::StreamExt as _;

/// Longest wait for the event on NATS.
const EVENT_WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registered_organization_reaches_a_partner_on_nats() {
    let Some(nats) = NatsServer::start_or_skip("a_registered_organization_reaches_a_partner_on_nats") else {
        return;
    };
    let partner = async_nats::connect(nats.url()).await.expect("connect to NATS");
    let mut events = partner.subscribe("symbiose.listings.v1.>").await.expect("subscribe");
    partner.flush().await.expect("flush");
    let server = TestServer::start_with(|config| config.nats_url = Some(nats.url())).await.expect("server");

    let mut organizations = OrganizationServiceClient::new(server.operator().await.expect("channel"));
    let registered = organizations
        .register_organization(pb::RegisterOrganizationRequest {
            request_id: String::new(),
            legal_name: "Palettes de l'Est SAS".to_owned(),
            country: common::Country::France.into(),
            legal_identifier: "732 829 320 00074".to_owned(),
            roles: vec![common::Role::Producer.into()],
        })
        .await
        .expect("registered")
        .into_inner();

    // The registration writes more than one event (the identifier's claim too): find it.
    let message = loop {
        let message =
            tokio::time::timeout(EVENT_WAIT, events.next()).await.expect("an event in time").expect("open");
        if message.subject.as_str() == "symbiose.listings.v1.organization_registered" {
            break message;
        }
    };
    let headers = message.headers.as_ref().expect("headers");
    let header = |name: &str| headers.get(name).map(|value| value.as_str().to_owned()).unwrap_or_default();
    assert_eq!(header("ce-specversion"), "1.0");
    assert_eq!(header("ce-type"), "symbiose.listings.v1.OrganizationRegistered");
    assert_eq!(header("ce-source"), "/symbiose/listings");
    assert_eq!(header("content-type"), "application/protobuf");
    assert_eq!(header("ce-id"), header("Nats-Msg-Id"));
    let event =
        pb::OrganizationRegistered::decode(message.payload.as_ref()).expect("decodes with the .proto");
    assert_eq!(event.legal_name, "Palettes de l'Est SAS");
    assert_eq!(event.organization_id, registered.organization_id);

    // Once caught up, the relay checkpoints in the store (the embedded store's directory, or
    // its PostgreSQL database), removed with the server.
    let checkpointed = |text: String| {
        text.lines()
            .filter_map(|line| line.strip_prefix("next_position="))
            .any(|position| position.parse::<u64>().is_ok_and(|position| position > registered.position))
    };
    let deadline = std::time::Instant::now() + EVENT_WAIT;
    while !server.checkpoint("relay").await.expect("the checkpoint reads").is_some_and(checkpointed) {
        assert!(std::time::Instant::now() < deadline, "no checkpoint past the registration");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.stop().await.expect("stops cleanly, the relay with it");
}
