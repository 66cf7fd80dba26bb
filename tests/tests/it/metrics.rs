//! The Prometheus endpoint counts calls and errors per RPC.

use symbiose_proto::reference::v1 as pb;
use symbiose_proto::reference::v1::reference_service_client::ReferenceServiceClient;
use symbiose_tests::TestServer;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// Fetches `/metrics` with a plain HTTP/1.1 request over a real socket.
async fn scrape(server: &TestServer) -> String {
    let mut stream = tokio::net::TcpStream::connect(server.metrics_addr).await.expect("connect");
    let request =
        format!("GET /metrics HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", server.metrics_addr);
    stream.write_all(request.as_bytes()).await.expect("request");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("response");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response
}

#[tokio::test]
async fn calls_and_errors_are_counted_per_rpc() {
    let server = TestServer::start().await.expect("server");
    let mut client = ReferenceServiceClient::new(server.operator().await.expect("channel"));
    client.get_waste_code(pb::GetWasteCodeRequest { code: "150103".into() }).await.expect("found");
    client.get_waste_code(pb::GetWasteCodeRequest { code: "150103".into() }).await.expect("found");
    client.get_waste_code(pb::GetWasteCodeRequest { code: "999999".into() }).await.expect_err("unknown");

    let text = scrape(&server).await;
    let rpc = "/symbiose.reference.v1.ReferenceService/GetWasteCode";
    assert!(text.contains(&format!("symbiose_grpc_calls_total{{rpc=\"{rpc}\",code=\"Ok\"}} 2")), "{text}");
    assert!(
        text.contains(&format!("symbiose_grpc_errors_total{{rpc=\"{rpc}\",code=\"NotFound\"}} 1")),
        "{text}"
    );
    assert!(
        text.contains(&format!("symbiose_grpc_call_duration_seconds_count{{rpc=\"{rpc}\"}} 3")),
        "{text}"
    );
}
