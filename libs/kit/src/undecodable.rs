//! A request body that does not decode is the caller's fault: this layer answers it
//! `INVALID_ARGUMENT`, where tonic answers `INTERNAL` or, for reflection, nothing at all.
//!
//! tonic's prost codec turns every `prost::DecodeError` into `Status::internal` (invalid UTF-8
//! in a string, a truncated field, a wrong wire type, nesting past prost's recursion limit), and
//! its framing does the same for a body that ends inside a message or a unary call without
//! one. Health and reflection are built by their own crates with that same codec, so a codec
//! of ours in the generated code would not cover them: the status is rewritten here instead,
//! once for every service the server holds. tonic puts it in the response headers when the
//! call fails before the handler runs (unary and server-streaming calls: "trailers-only"),
//! and in the trailers when a streaming handler returns the error: both are rewritten.
//! Statuses the services answer themselves never match: their internal errors say only
//! "internal error". tonic gives the decode error as text only, so it is known by how its
//! message begins; the black-box test of bad bodies catches an upgrade that changes it.
//!
//! Reflection's handler (tonic-reflection 0.14) ends the call OK when a request of its stream
//! does not decode, so its requests are also decoded here, on their way in: one that fails
//! sets the status the call ends with.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, ready};

use bytes::{Buf as _, Bytes, BytesMut};
use http::HeaderMap;
use http_body::Frame;
use prost::Message as _;
use tonic::body::Body;
use tonic::{Code, Status};

use crate::error::bounded;

/// How the messages tonic gives an undecodable request body begin, all with `INTERNAL`:
/// prost's `DecodeError`, a body that ends inside a message, a unary call without its message.
const UNDECODABLE_MESSAGE_PREFIXES: [&str; 3] =
    ["failed to decode Protobuf message", "Unexpected EOF decoding stream", "Missing request message"];

/// Largest streamed request message decoded on its way in, in bytes: tonic's own default
/// limit, above which tonic refuses the message itself.
const STREAMED_MESSAGE_BYTES_MAX: usize = 4 * 1024 * 1024;
/// Length of the prefix of each message in a gRPC body: a compression flag and a length.
const FRAME_HEADER_BYTES: usize = 5;
/// tonic's message for a body that ends inside a message.
const BODY_ENDED_INSIDE_A_MESSAGE: &str = "Unexpected EOF decoding stream.";

/// The tower layer that rewrites the status of undecodable requests, in the headers or the
/// trailers of the response.
#[derive(Clone, Copy, Debug, Default)]
pub struct UndecodableLayer;

impl<S> tower::Layer<S> for UndecodableLayer {
    type Service = UndecodableService<S>;

    fn layer(&self, inner: S) -> UndecodableService<S> {
        UndecodableService { inner }
    }
}

#[derive(Clone, Debug)]
pub struct UndecodableService<S> {
    inner: S,
}

impl<S, ResponseBody> tower::Service<http::Request<Body>> for UndecodableService<S>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<ResponseBody>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<UndecodableBody<ResponseBody>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let verdict: Verdict = Arc::new(OnceLock::new());
        let request = match streamed_request_check(request.uri().path()) {
            Some(check) => request.map(|body| {
                Body::new(CheckedBody {
                    inner: body,
                    check,
                    buffer: BytesMut::new(),
                    checking: true,
                    verdict: verdict.clone(),
                })
            }),
            None => request,
        };
        let response = self.inner.call(request);
        Box::pin(async move {
            let mut response = response.await?;
            rewrite_in(response.headers_mut(), &verdict);
            Ok(response.map(|inner| UndecodableBody { inner, verdict }))
        })
    }
}

/// What the requests of a call were found to be, when one of them does not decode.
type Verdict = Arc<OnceLock<Status>>;

/// Decodes one message of a request stream.
type Check = fn(&[u8]) -> Result<(), prost::DecodeError>;

/// How to decode the requests of the streaming RPC at `path`, when its handler hides that a
/// request does not decode.
fn streamed_request_check(path: &str) -> Option<Check> {
    use tonic_reflection::pb::{v1, v1alpha};
    let (service, method) = path.strip_prefix('/')?.split_once('/')?;
    if method != "ServerReflectionInfo" {
        return None;
    }
    match service {
        v1::server_reflection_server::SERVICE_NAME => {
            Some(|message| v1::ServerReflectionRequest::decode(message).map(drop))
        }
        v1alpha::server_reflection_server::SERVICE_NAME => {
            Some(|message| v1alpha::ServerReflectionRequest::decode(message).map(drop))
        }
        _ => None,
    }
}

/// A request body passed on as it is, whose messages are decoded on the way: the first that
/// does not decode, or an end inside a message, is the call's verdict.
struct CheckedBody {
    inner: Body,
    check: Check,
    /// The bytes of the message being received.
    buffer: BytesMut,
    /// False once a verdict is given, or a message is one this body does not decode
    /// (compressed, or over the limit): tonic then judges alone.
    checking: bool,
    verdict: Verdict,
}

impl CheckedBody {
    fn take(&mut self, data: &Bytes) {
        self.buffer.extend_from_slice(data);
        while self.checking && self.buffer.len() >= FRAME_HEADER_BYTES {
            let compressed = self.buffer[0] != 0;
            let length = u32::from_be_bytes([self.buffer[1], self.buffer[2], self.buffer[3], self.buffer[4]]);
            let length = usize::try_from(length).unwrap_or(usize::MAX);
            if compressed || length > STREAMED_MESSAGE_BYTES_MAX {
                self.stop();
                return;
            }
            if self.buffer.len() < FRAME_HEADER_BYTES + length {
                return;
            }
            self.buffer.advance(FRAME_HEADER_BYTES);
            let message = self.buffer.split_to(length);
            if let Err(error) = (self.check)(&message) {
                self.judge(Status::internal(error.to_string()));
            }
        }
    }

    fn judge(&mut self, status: Status) {
        if let Some(status) = rewrite(&status) {
            let _ = self.verdict.set(status);
        }
        self.stop();
    }

    fn stop(&mut self) {
        self.checking = false;
        self.buffer = BytesMut::new();
    }
}

impl http_body::Body for CheckedBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let frame = ready!(Pin::new(&mut self.inner).poll_frame(cx));
        if self.checking {
            match &frame {
                Some(Ok(frame)) => {
                    if let Some(data) = frame.data_ref() {
                        self.take(data);
                    }
                }
                None if !self.buffer.is_empty() => self.judge(Status::internal(BODY_ENDED_INSIDE_A_MESSAGE)),
                _ => {}
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// A response body whose trailers are rewritten like the headers.
#[derive(Debug)]
pub struct UndecodableBody<B> {
    inner: B,
    verdict: Verdict,
}

impl<B> http_body::Body for UndecodableBody<B>
where
    B: http_body::Body + Unpin,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let frame = ready!(Pin::new(&mut self.inner).poll_frame(cx));
        Poll::Ready(frame.map(|frame| {
            frame.map(|frame| match frame.into_trailers() {
                Ok(mut trailers) => {
                    rewrite_in(&mut trailers, &self.verdict);
                    Frame::trailers(trailers)
                }
                Err(frame) => frame,
            })
        }))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The status a caller should see instead of `status`, when `status` is tonic's answer to a
/// request body that does not decode.
fn rewrite(status: &Status) -> Option<Status> {
    if status.code() != Code::Internal {
        return None;
    }
    let message = status.message();
    UNDECODABLE_MESSAGE_PREFIXES
        .iter()
        .any(|prefix| message.starts_with(prefix))
        .then(|| Status::invalid_argument(bounded(format!("the request does not decode: {message}"))))
}

/// Rewrites the status in `headers` (response headers or trailers) if it is tonic's answer to
/// an undecodable request, or if the call's requests were found not to decode.
fn rewrite_in(headers: &mut HeaderMap, verdict: &Verdict) {
    let Some(status) = Status::from_header_map(headers) else { return };
    let Some(rewritten) = verdict.get().cloned().or_else(|| rewrite(&status)) else { return };
    for name in ["grpc-status", "grpc-message", "grpc-status-details-bin"] {
        headers.remove(name);
    }
    if let Err(error) = rewritten.add_header(headers) {
        // Only a message that cannot be a header value fails, and ours are plain text.
        tracing::error!(%error, "cannot write the status of an undecodable request");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_failures_become_invalid_argument() {
        for message in [
            "failed to decode Protobuf message: HealthCheckRequest.service: invalid string value: data is not UTF-8 encoded",
            "failed to decode Protobuf message: recursion limit reached",
            "Unexpected EOF decoding stream.",
            "Missing request message.",
        ] {
            let rewritten = rewrite(&Status::internal(message)).expect(message);
            assert_eq!(rewritten.code(), Code::InvalidArgument, "{message}");
            assert!(rewritten.message().ends_with(message), "{}", rewritten.message());
        }
    }

    #[test]
    fn other_statuses_are_left_alone() {
        assert!(rewrite(&Status::internal("internal error")).is_none());
        assert!(rewrite(&Status::not_found("failed to decode Protobuf message")).is_none());
        assert!(
            rewrite(&Status::internal("protocol error: received message with invalid compression flag"))
                .is_none()
        );
    }

    #[test]
    fn a_status_in_the_headers_is_rewritten_and_others_kept() {
        let mut headers = HeaderMap::new();
        Status::internal("failed to decode Protobuf message: buffer underflow")
            .add_header(&mut headers)
            .expect("a header");
        rewrite_in(&mut headers, &Verdict::default());
        let status = Status::from_header_map(&headers).expect("a status");
        assert_eq!(status.code(), Code::InvalidArgument);

        let mut headers = HeaderMap::new();
        Status::internal("internal error").add_header(&mut headers).expect("a header");
        rewrite_in(&mut headers, &Verdict::default());
        let status = Status::from_header_map(&headers).expect("a status");
        assert_eq!((status.code(), status.message()), (Code::Internal, "internal error"));
    }
}
