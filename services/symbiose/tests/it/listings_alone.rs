//! The listings service alone, as a process: with `SYMBIOSE_NATS_URL` set it relays its own
//! events to NATS, so catalog replicas and the other services can follow them.

use std::time::Duration;

use prost::Message as _;
use symbiose_feed::testing::NatsServer;
use symbiose_proto::common::v1 as common;
use symbiose_proto::listings::v1 as pb;
use symbiose_proto::listings::v1::organization_service_client::OrganizationServiceClient;
use tokio_stream::StreamExt as _;
use tonic::metadata::MetadataValue;

use super::ServerProcess;

const BINARY: &str = env!("CARGO_BIN_EXE_symbiose-listings");
/// Longest wait for the event on NATS.
const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_listings_service_alone_relays_its_events_to_nats() {
    let Some(nats) = NatsServer::start_or_skip("the_listings_service_alone_relays_its_events_to_nats") else {
        return;
    };
    let partner = async_nats::connect(nats.url()).await.expect("connect to NATS");
    let mut events =
        partner.subscribe("symbiose.listings.v1.organization_registered").await.expect("subscribe");
    partner.flush().await.expect("flush");

    let nats_url = nats.url();
    let service = ServerProcess::spawn(
        BINARY,
        super::data_dir_with_a_new_key(),
        &[("SYMBIOSE_NATS_URL", nats_url.as_str())],
    );
    let token = std::fs::read_to_string(service.data_dir.path().join("data/operator.token"))
        .expect("the operator token");
    let bearer: MetadataValue<_> = format!("Bearer {}", token.trim()).parse().expect("a header");
    let channel = tonic::transport::Endpoint::from_shared(service.url.clone())
        .expect("an address")
        .connect()
        .await
        .expect("connect");
    let mut organizations =
        OrganizationServiceClient::with_interceptor(channel, move |mut request: tonic::Request<()>| {
            request.metadata_mut().insert("authorization", bearer.clone());
            Ok(request)
        });
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

    let message = tokio::time::timeout(WAIT, events.next()).await.expect("an event in time").expect("open");
    let event =
        pb::OrganizationRegistered::decode(message.payload.as_ref()).expect("decodes with the .proto");
    assert_eq!(event.organization_id, registered.organization_id);

    let status = service.terminate();
    assert!(status.success(), "a graceful stop exits 0: {status:?}");
}
