//! Calls to any RPC with the bytes a test chooses, and the descriptors of every Symbiose RPC:
//! what the generated clients cannot send (bodies that do not decode), and what a walk over
//! every RPC needs without a client per service.

use std::time::Duration;

use http_body_util::{BodyExt as _, Full};
use prost_reflect::{DescriptorPool, MessageDescriptor};
use tonic::codegen::{Bytes, Service as _, http};
use tonic::transport::Channel;
use tonic::{Code, Status};

/// Longest a raw call may take before the test counts it as hung: the slowest call a test
/// makes waits for a read model that never gets there, which the services bound at 5 s.
const CALL_TIMEOUT_MS: u64 = 30_000;
/// Largest response body read, in bytes: no answer the tests provoke comes near.
const RESPONSE_BYTES_MAX: usize = 16 * 1024 * 1024;

/// How the status of a call the server reset begins.
pub(crate) const NO_ANSWER: &str = "no answer";

/// One RPC: its HTTP path (`/symbiose.listings.v1.ListingService/CreateListing`) and its
/// request message.
#[derive(Debug, Clone)]
pub(crate) struct Rpc {
    pub(crate) path: String,
    pub(crate) input: MessageDescriptor,
    pub(crate) output: MessageDescriptor,
    /// Whether the client sends a stream of requests (none at all is then a valid call).
    pub(crate) streams_requests: bool,
}

/// Every file the server describes in reflection: the Symbiose contracts.
pub(crate) fn pool() -> DescriptorPool {
    DescriptorPool::decode(symbiose_proto::FILE_DESCRIPTOR_SET).expect("the descriptor set decodes")
}

/// Every RPC of every service in `pool`.
pub(crate) fn rpcs(pool: &DescriptorPool) -> Vec<Rpc> {
    pool.services()
        .flat_map(|service| {
            service
                .methods()
                .map(|method| Rpc {
                    path: format!("/{}/{}", service.full_name(), method.name()),
                    input: method.input(),
                    output: method.output(),
                    streams_requests: method.is_client_streaming(),
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// `message` in the gRPC framing: uncompressed, its length, the bytes.
pub(crate) fn frame(message: &[u8]) -> Vec<u8> {
    let length = u32::try_from(message.len()).expect("a test message fits a frame");
    let mut framed = Vec::with_capacity(message.len() + 5);
    framed.push(0);
    framed.extend_from_slice(&length.to_be_bytes());
    framed.extend_from_slice(message);
    framed
}

/// What a call answered: its status (from the headers of a trailers-only answer, or from the
/// trailers) and the first response message, unframed.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: Status,
    pub(crate) message: Option<Bytes>,
}

/// Sends `body` (already framed, or deliberately not) to `path`, with `token` as the bearer
/// if any, and reads the answer to its end.
pub(crate) async fn call(channel: &Channel, path: &str, token: Option<&str>, body: Vec<u8>) -> Answer {
    let mut request = http::Request::builder()
        .method(http::Method::POST)
        .uri(path)
        .header(http::header::CONTENT_TYPE, "application/grpc")
        .header(http::header::TE, "trailers");
    if let Some(token) = token {
        request = request.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let request = request.body(tonic::body::Body::new(Full::new(Bytes::from(body)))).expect("a request");
    let answer = async {
        let mut channel = channel.clone();
        std::future::poll_fn(|cx| channel.poll_ready(cx)).await.expect("the channel is ready");
        let response = match channel.call(request).await {
            Ok(response) => response,
            // A handler that panics resets its stream: the test reports it with the rest.
            Err(error) => {
                return Answer { status: Status::unknown(format!("{NO_ANSWER}: {error}")), message: None };
            }
        };
        if let Some(status) = Status::from_header_map(response.headers()) {
            return Answer { status, message: None };
        }
        let mut body = response.into_body();
        let mut data = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = match frame {
                Ok(frame) => frame,
                Err(status) => return Answer { status, message: None },
            };
            match frame.into_data() {
                Ok(chunk) => {
                    data.extend_from_slice(&chunk);
                    assert!(
                        data.len() <= RESPONSE_BYTES_MAX,
                        "{path}: an answer over {RESPONSE_BYTES_MAX} bytes"
                    );
                }
                Err(frame) => {
                    if let Ok(trailers) = frame.into_trailers() {
                        let status = Status::from_header_map(&trailers)
                            .unwrap_or_else(|| Status::unknown("trailers without a status"));
                        return Answer { status, message: first_message(&data) };
                    }
                }
            }
        }
        Answer { status: Status::new(Code::Unknown, "the answer ended without trailers"), message: None }
    };
    tokio::time::timeout(Duration::from_millis(CALL_TIMEOUT_MS), answer)
        .await
        .unwrap_or_else(|_| panic!("{path}: no answer within {CALL_TIMEOUT_MS} ms"))
}

/// The first message of a framed response body.
fn first_message(data: &[u8]) -> Option<Bytes> {
    let header = data.get(..5)?;
    let length = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
    data.get(5..5 + length).map(Bytes::copy_from_slice)
}
