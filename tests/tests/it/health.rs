//! `grpc.health.v1` answers for the server and for each service, and says when it stops.

use std::time::Duration;

use symbiose_tests::TestServer;
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

fn check(service: &str) -> HealthCheckRequest {
    HealthCheckRequest { service: service.to_owned() }
}

#[tokio::test]
async fn the_server_and_each_service_report_serving() {
    let server = TestServer::start().await.expect("server");
    let mut health = HealthClient::new(server.channel().await.expect("channel"));
    for service in ["", "symbiose.reference.v1.ReferenceService"] {
        let response = health.check(check(service)).await.expect(service).into_inner();
        assert_eq!(response.status(), ServingStatus::Serving, "{service:?}");
    }
    let unknown = health.check(check("no.such.Service")).await.expect_err("unknown service");
    assert_eq!(unknown.code(), Code::NotFound);
}

#[tokio::test]
async fn a_watcher_sees_not_serving_when_the_server_shuts_down() {
    // The watch stream stays open until the grace runs out: keep the grace short.
    let server = TestServer::start_with(|config| config.shutdown_grace_ms = 200).await.expect("server");
    let mut health = HealthClient::new(server.channel().await.expect("channel"));
    let mut updates =
        health.watch(check("symbiose.reference.v1.ReferenceService")).await.expect("watch").into_inner();
    let first = updates.message().await.expect("first update").expect("a message");
    assert_eq!(first.status(), ServingStatus::Serving);

    let stopping = tokio::spawn(server.stop());
    let update = tokio::time::timeout(Duration::from_secs(10), updates.message())
        .await
        .expect("an update before the bound")
        .expect("the stream is still open")
        .expect("a message");
    assert_eq!(update.status(), ServingStatus::NotServing);
    stopping.await.expect("join").expect("a clean stop");
}
