//! The service kit: what every Symbiose service shares, so that each one configures, logs,
//! measures, fails and serves the same way.
//!
//! - [`config`]: settings from environment variables, parsed by a pure function;
//! - [`telemetry`]: `tracing` with `RUST_LOG`, text or JSON, spans exported over OTLP when asked;
//! - [`metrics`]: Prometheus counters and latency per RPC, served on their own HTTP port;
//! - [`error`]: the one mapping from an error to a gRPC status;
//! - [`backoff`]: the one retry policy, exponential with jitter and bounded;
//! - [`auth`]: signed tokens, the caller they name, revocations, rate limits, the interceptor;
//! - [`page`]: page sizes and opaque page tokens;
//! - [`trace`]: the trace context of a user action (W3C `traceparent`, correlation, causation);
//! - [`client`]: channels to the other services, plaintext or TLS (mutual or not);
//! - [`tls`]: the gRPC port's TLS, reloaded when its files change;
//! - [`server`]: the gRPC server with health, reflection, limits, TLS and graceful shutdown;
//! - [`undecodable`]: `INVALID_ARGUMENT`, not `INTERNAL`, for a request body that does not decode.
//!
//! The kit knows nothing of any business domain and never touches a service's storage.

pub mod auth;
pub mod backoff;
pub mod client;
pub mod config;
pub mod error;
pub mod metrics;
pub mod page;
pub mod server;
pub mod telemetry;
pub mod tls;
pub mod trace;
pub mod undecodable;

pub use auth::{
    Authenticator, Caller, Claims, KeyPolicy, RateLimits, Revocations, Security, TokenAuthority, TokenError,
    caller,
};
pub use config::ServerConfig;
pub use error::ApiError;
pub use server::{Listeners, ServiceSet};
