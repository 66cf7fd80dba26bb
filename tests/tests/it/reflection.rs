//! Reflection, v1 and v1alpha: every service is listed and described, health included, so
//! `grpcurl` works with no .proto file at hand.

use symbiose_tests::TestServer;
use tokio_stream::StreamExt as _;
use tonic_reflection::pb::{v1, v1alpha};

const EXPECTED: [&str; 6] = [
    "grpc.health.v1.Health",
    "symbiose.reference.v1.ReferenceService",
    "symbiose.listings.v1.OrganizationService",
    "symbiose.listings.v1.ListingService",
    "symbiose.catalog.v1.CatalogService",
    "symbiose.matching.v1.MatchingService",
];

#[tokio::test]
async fn v1_lists_and_describes_every_service() {
    use v1::server_reflection_client::ServerReflectionClient;
    use v1::server_reflection_request::MessageRequest;
    use v1::server_reflection_response::MessageResponse;

    let server = TestServer::start().await.expect("server");
    let mut client = ServerReflectionClient::new(server.channel().await.expect("channel"));
    let ask = |request: MessageRequest| v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(request),
    };
    let mut requests = vec![ask(MessageRequest::ListServices(String::new()))];
    for service in EXPECTED {
        requests.push(ask(MessageRequest::FileContainingSymbol(service.to_owned())));
    }
    let mut responses =
        client.server_reflection_info(tokio_stream::iter(requests)).await.expect("reflection").into_inner();

    let Some(Ok(listed)) = responses.next().await else { panic!("no list answer") };
    let Some(MessageResponse::ListServicesResponse(listed)) = listed.message_response else {
        panic!("not a list")
    };
    let names: Vec<String> = listed.service.into_iter().map(|service| service.name).collect();
    for service in EXPECTED {
        assert!(names.iter().any(|name| name == service), "{service} not in {names:?}");
    }
    for service in EXPECTED {
        let Some(Ok(answer)) = responses.next().await else { panic!("no answer for {service}") };
        let Some(MessageResponse::FileDescriptorResponse(files)) = answer.message_response else {
            panic!("{service}: {:?}", answer.message_response)
        };
        assert!(!files.file_descriptor_proto.is_empty(), "{service}");
    }
}

#[tokio::test]
async fn v1alpha_lists_every_service() {
    use v1alpha::server_reflection_client::ServerReflectionClient;
    use v1alpha::server_reflection_request::MessageRequest;
    use v1alpha::server_reflection_response::MessageResponse;

    let server = TestServer::start().await.expect("server");
    let mut client = ServerReflectionClient::new(server.channel().await.expect("channel"));
    let request = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses =
        client.server_reflection_info(tokio_stream::iter([request])).await.expect("reflection").into_inner();
    let Some(Ok(listed)) = responses.next().await else { panic!("no answer") };
    let Some(MessageResponse::ListServicesResponse(listed)) = listed.message_response else {
        panic!("not a list")
    };
    let names: Vec<String> = listed.service.into_iter().map(|service| service.name).collect();
    for service in EXPECTED {
        assert!(names.iter().any(|name| name == service), "{service} not in {names:?}");
    }
}
