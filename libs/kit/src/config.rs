//! Settings from environment variables.
//!
//! Parsing is a pure function of a lookup ([`ServerConfig::from_lookup`]), so tests pass a map
//! instead of changing the process environment. Every key is a constant here and a row of
//! [`SETTINGS`], which the README's configuration table mirrors.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::str::FromStr;

/// Address of the gRPC port.
pub const LISTEN_ADDR: &str = "SYMBIOSE_LISTEN_ADDR";
/// Directory of the service's data (event store, keys).
pub const DATA_DIR: &str = "SYMBIOSE_DATA_DIR";
/// Address of the Prometheus metrics port, or `off`.
pub const METRICS_ADDR: &str = "SYMBIOSE_METRICS_ADDR";
/// Address of the public web port (passports' pages, QR codes, labels), or `off`.
pub const WEB_ADDR: &str = "SYMBIOSE_WEB_ADDR";
/// The URL the public web port is reached at from outside, which QR codes and labels carry.
pub const PUBLIC_BASE_URL: &str = "SYMBIOSE_PUBLIC_BASE_URL";
/// `text` or `json`.
pub const LOG_FORMAT: &str = "SYMBIOSE_LOG_FORMAT";
/// Longest time a call may take before it is cancelled.
pub const REQUEST_TIMEOUT_MS: &str = "SYMBIOSE_REQUEST_TIMEOUT_MS";
/// Largest request message accepted.
pub const MESSAGE_BYTES_MAX: &str = "SYMBIOSE_MESSAGE_BYTES_MAX";
/// Most calls in flight on one client connection.
pub const CONCURRENCY_PER_CONNECTION_MAX: &str = "SYMBIOSE_CONCURRENCY_PER_CONNECTION_MAX";
/// Longest wait for calls in flight to finish after a shutdown signal.
pub const SHUTDOWN_GRACE_MS: &str = "SYMBIOSE_SHUTDOWN_GRACE_MS";
/// How long a stopping server says NOT_SERVING while it still takes calls.
pub const SHUTDOWN_DELAY_MS: &str = "SYMBIOSE_SHUTDOWN_DELAY_MS";
/// A plaintext port serving only `grpc.health.v1`, for probes, or `off`.
pub const HEALTH_ADDR: &str = "SYMBIOSE_HEALTH_ADDR";
/// Calls one organization may make per second, on average.
pub const RATE_LIMIT_PER_SECOND: &str = "SYMBIOSE_RATE_LIMIT_PER_SECOND";
/// How long a lease on the platform's once-only work lasts without renewal.
pub const LEASE_TTL_MS: &str = "SYMBIOSE_LEASE_TTL_MS";
/// Events a read model applies between two of its snapshots (0: no snapshots).
pub const VIEW_SNAPSHOT_EVENTS: &str = "SYMBIOSE_VIEW_SNAPSHOT_EVENTS";
/// Calls one organization may make at once after a quiet spell.
pub const RATE_LIMIT_BURST: &str = "SYMBIOSE_RATE_LIMIT_BURST";
/// How long issued tokens are valid unless asked otherwise.
pub const TOKEN_TTL_DAYS: &str = "SYMBIOSE_TOKEN_TTL_DAYS";
/// The platform's fee on the net amount of a deal, in basis points.
pub const PLATFORM_FEE_BP: &str = "SYMBIOSE_PLATFORM_FEE_BP";
/// PEM file of the gRPC port's certificate chain; with [`TLS_KEY`], the port serves TLS.
pub const TLS_CERT: &str = "SYMBIOSE_TLS_CERT";
/// PEM file of the private key of [`TLS_CERT`].
pub const TLS_KEY: &str = "SYMBIOSE_TLS_KEY";
/// PEM file of the CA whose client certificates the gRPC port requires (mutual TLS).
pub const TLS_CLIENT_CA: &str = "SYMBIOSE_TLS_CLIENT_CA";
/// The NATS server(s) events are relayed to; unset, the server runs on its local feed only.
pub const NATS_URL: &str = "SYMBIOSE_NATS_URL";
/// The JetStream replicas of the streams the relay creates: `auto` or 1 to 5.
pub const NATS_STREAM_REPLICAS: &str = "SYMBIOSE_NATS_STREAM_REPLICAS";
/// A NATS credentials file (`.creds`: a user JWT and its nkey seed) for [`NATS_URL`].
pub const NATS_CREDENTIALS: &str = "SYMBIOSE_NATS_CREDENTIALS";
/// The listings service's gRPC address, for matching when each service runs alone.
pub const LISTINGS_URL: &str = "SYMBIOSE_LISTINGS_URL";
pub const SETTLEMENT_URL: &str = "SYMBIOSE_SETTLEMENT_URL";
/// PEM file of the CA whose certificates the other services' `https://` ports must present.
pub const SERVICES_CA: &str = "SYMBIOSE_SERVICES_CA";
/// PEM file of the certificate chain this process presents to the other services (mutual TLS).
pub const SERVICES_CLIENT_CERT: &str = "SYMBIOSE_SERVICES_CLIENT_CERT";
/// PEM file of the private key of [`SERVICES_CLIENT_CERT`].
pub const SERVICES_CLIENT_KEY: &str = "SYMBIOSE_SERVICES_CLIENT_KEY";
/// The OpenTelemetry collector traces are exported to (OTLP over gRPC); unset, none are. The
/// standard OpenTelemetry name, so a deployment sets it as for any other program.
pub const OTLP_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
/// The event store's backend: `embedded` (in the data directory), `postgres` or `eventstoredb`.
pub const STORE: &str = "SYMBIOSE_STORE";
/// The PostgreSQL database of the event store, when [`STORE`] is `postgres`.
pub const POSTGRES_URL: &str = "SYMBIOSE_POSTGRES_URL";
/// What [`STORE`] names EventStoreDB with: a backend only the binaries built with the cargo
/// feature `eventstoredb` have (the others refuse it when they open the store).
pub const STORE_EVENTSTOREDB: &str = "eventstoredb";
/// The EventStoreDB connection string of the event store, when [`STORE`] is `eventstoredb`.
pub const EVENTSTORE_CONNECTION_STRING: &str = "SYMBIOSE_EVENTSTORE_CONNECTION_STRING";

/// One setting: its key, its default as written in the environment, and what it is for.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    pub key: &'static str,
    pub default: &'static str,
    pub description: &'static str,
}

/// Every setting the server reads, in the order of the README's table.
pub const SETTINGS: &[Setting] = &[
    Setting { key: LISTEN_ADDR, default: "127.0.0.1:50051", description: "address of the gRPC port" },
    Setting { key: DATA_DIR, default: "./data", description: "directory of the service's data" },
    Setting {
        key: METRICS_ADDR,
        default: "127.0.0.1:9464",
        description: "address of the Prometheus metrics port (`/metrics`), or `off`",
    },
    Setting {
        key: HEALTH_ADDR,
        default: "off",
        description: "address of a plaintext port that serves only the gRPC health service (`grpc.health.v1`), \
                      with the gRPC port's statuses, for probes that cannot speak its TLS (the kubelet's), or \
                      `off`; it answers once the gRPC port serves",
    },
    Setting {
        key: WEB_ADDR,
        default: "127.0.0.1:8080",
        description: "address of the public web port (passports' pages, their QR codes and labels, the GS1 Digital Link resolver), or `off`",
    },
    Setting {
        key: PUBLIC_BASE_URL,
        default: "",
        description: "the URL the web port is reached at from outside (`https://passports.example.eu`), printed in QR codes and on labels; unset, `http://` and the web port's address",
    },
    Setting {
        key: LOG_FORMAT,
        default: "text",
        description: "`text` or `json`; the level comes from `RUST_LOG` (default `info`)",
    },
    Setting {
        key: REQUEST_TIMEOUT_MS,
        default: "10000",
        description: "longest time a call may take (1 to 300000)",
    },
    Setting {
        key: MESSAGE_BYTES_MAX,
        default: "4194304",
        description: "largest request message accepted, in bytes (1024 to 67108864)",
    },
    Setting {
        key: CONCURRENCY_PER_CONNECTION_MAX,
        default: "256",
        description: "most calls in flight on one client connection (1 to 65536)",
    },
    Setting {
        key: SHUTDOWN_GRACE_MS,
        default: "10000",
        description: "longest wait for calls in flight after SIGTERM or Ctrl-C (0 to 300000), counted once \
                      the gRPC port stops taking calls",
    },
    Setting {
        key: SHUTDOWN_DELAY_MS,
        default: "0",
        description: "after SIGTERM or Ctrl-C, how long every health status says NOT_SERVING while the gRPC port \
                      still takes calls, before it stops taking them (0 to 60000): time for load balancers and \
                      Kubernetes endpoints to stop sending",
    },
    Setting {
        key: LEASE_TTL_MS,
        default: "5000",
        description: "how long a replica's lease on its service's once-only work (the relay to NATS, the \
                      imports, the reactors) lasts without renewal, in milliseconds (500 to 600000): when the \
                      holder dies, another replica takes the work over after at most this long; renewed five \
                      times per period",
    },
    Setting {
        key: VIEW_SNAPSHOT_EVENTS,
        default: "50000",
        description: "events a read model applies between two of its snapshots, kept in the store (0 to \
                      100000000): a restart restores each view's snapshot and replays only the events after \
                      it; at most one snapshot a minute per view; 0 turns snapshots off, so every start \
                      replays the log from its first event",
    },
    Setting {
        key: RATE_LIMIT_PER_SECOND,
        default: "100",
        description: "calls one organization may make per second on average, operators too (1 to 100000)",
    },
    Setting {
        key: RATE_LIMIT_BURST,
        default: "200",
        description: "calls one organization may make at once after a quiet spell (1 to 1000000)",
    },
    Setting {
        key: TOKEN_TTL_DAYS,
        default: "30",
        description: "how long issued tokens are valid unless asked otherwise, in days (1 to 3650)",
    },
    Setting {
        key: PLATFORM_FEE_BP,
        default: "200",
        description: "the platform's fee on the net amount of a deal, held in escrow with it and paid to the \
                      platform on delivery, in basis points (0 to 2000: 200 is 2%)",
    },
    Setting {
        key: TLS_CERT,
        default: "",
        description: "PEM file of the gRPC port's certificate chain; set with `SYMBIOSE_TLS_KEY` to serve TLS, \
                      leave both empty for plaintext",
    },
    Setting { key: TLS_KEY, default: "", description: "PEM file of the private key of `SYMBIOSE_TLS_CERT`" },
    Setting {
        key: TLS_CLIENT_CA,
        default: "",
        description: "PEM file of a CA: when set, clients must present a certificate it signed (mutual TLS); \
                      needs `SYMBIOSE_TLS_CERT` and `SYMBIOSE_TLS_KEY`",
    },
    Setting {
        key: NATS_URL,
        default: "",
        description: "NATS server(s) with JetStream, comma-separated (`nats://127.0.0.1:4222`): when set, the \
                      server relays its events to NATS; when empty, it runs on its local feed only",
    },
    Setting {
        key: NATS_STREAM_REPLICAS,
        default: "auto",
        description: "JetStream replicas of the streams the relay creates: `auto` (3 when the NATS server is part \
                      of a cluster, 1 when it runs alone) or 1 to 5; a stream found with other settings is \
                      reported in the log and used as it is",
    },
    Setting {
        key: NATS_CREDENTIALS,
        default: "",
        description: "NATS credentials file (`.creds`) for `SYMBIOSE_NATS_URL`, if the NATS server asks for one",
    },
    Setting {
        key: LISTINGS_URL,
        default: "",
        description: "the listings service's gRPC address (`http://symbiose-listings:50051`, or `https://` \
                      when its port serves TLS), through which matching running alone reserves offers and \
                      logistics alone reads the parties' contacts for the Annex VII document; unused by the \
                      one-process server",
    },
    Setting {
        key: SETTLEMENT_URL,
        default: "",
        description: "the settlement service's gRPC address (`http://symbiose-settlement:50051`, or \
                      `https://`), through which logistics running alone has pallets paid for; unused by the \
                      one-process server",
    },
    Setting {
        key: SERVICES_CA,
        default: "",
        description: "PEM file of the CA that signed the other services' certificates: the one trust anchor of \
                      the `https://` addresses in `SYMBIOSE_LISTINGS_URL` and `SYMBIOSE_SETTLEMENT_URL`, \
                      required with them and refused without them",
    },
    Setting {
        key: SERVICES_CLIENT_CERT,
        default: "",
        description: "PEM file of the certificate chain this process presents to the other services' `https://` \
                      ports, for those that require client certificates (mutual TLS); set with \
                      `SYMBIOSE_SERVICES_CLIENT_KEY` and `SYMBIOSE_SERVICES_CA`",
    },
    Setting {
        key: SERVICES_CLIENT_KEY,
        default: "",
        description: "PEM file of the private key of `SYMBIOSE_SERVICES_CLIENT_CERT`",
    },
    Setting {
        key: OTLP_ENDPOINT,
        default: "",
        description: "an OpenTelemetry collector's OTLP/gRPC address, `http://host:port` \
                      (`http://otel-collector:4317`): when set, the server exports a span per call and per \
                      event handled, each the child of the `traceparent` it continues; when empty, nothing \
                      is exported",
    },
    Setting {
        key: STORE,
        default: "embedded",
        description: "the event store: `embedded` (a log in `<data dir>/events`, nothing else needed) or \
                      `postgres` (the database at `SYMBIOSE_POSTGRES_URL`, which also keeps the checkpoints, the \
                      leases and the vault's keys; the signing key stays in the data directory) or `eventstoredb` (the server at \
                      `SYMBIOSE_EVENTSTORE_CONNECTION_STRING`, only in binaries built with `cargo build --release \
                      --features eventstoredb`: the others refuse it at start)",
    },
    Setting {
        key: POSTGRES_URL,
        default: "",
        description: "the event store's PostgreSQL database, `postgres://user:password@host:5432/database`: \
                      required when `SYMBIOSE_STORE` is `postgres`, refused otherwise; its password is never \
                      logged",
    },
    Setting {
        key: EVENTSTORE_CONNECTION_STRING,
        default: "",
        description: "the event store's EventStoreDB server, `esdb://user:password@host:2113?tls=false` (or \
                      `esdb+discover://` for a cluster): required when `SYMBIOSE_STORE` is `eventstoredb`, refused \
                      otherwise; its password is never logged",
    },
];

const REQUEST_TIMEOUT_MS_MAX: u64 = 300_000;
const MESSAGE_BYTES_MIN: usize = 1024;
const MESSAGE_BYTES_MAX_LIMIT: usize = 64 * 1024 * 1024;
const CONCURRENCY_PER_CONNECTION_LIMIT: usize = 65_536;
const SHUTDOWN_GRACE_MS_MAX: u64 = 300_000;
const SHUTDOWN_DELAY_MS_MAX: u64 = 60_000;
const NATS_STREAM_REPLICAS_MAX: usize = 5;
const LEASE_TTL_MS_MIN: u64 = 500;
const LEASE_TTL_MS_LIMIT: u64 = 600_000;
const VIEW_SNAPSHOT_EVENTS_LIMIT: u64 = 100_000_000;
const RATE_LIMIT_PER_SECOND_LIMIT: u32 = 100_000;
const RATE_LIMIT_BURST_LIMIT: u32 = 1_000_000;
const TOKEN_TTL_DAYS_MAX: u32 = 3650;
const PLATFORM_FEE_BP_MAX: u32 = 2000;
const SECONDS_PER_DAY: u64 = 86_400;

/// Where the events are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreBackend {
    /// The embedded log in `<data dir>/events`.
    Embedded,
    /// A PostgreSQL database.
    Postgres(PostgresUrl),
    /// An EventStoreDB server: only binaries built with the feature `eventstoredb` open it.
    EventStoreDb(EventStoreDbConnectionString),
}

/// A `postgres://` URL. Its `Debug` and `Display` hide the password, so a logged config or
/// error never shows it; [`PostgresUrl::expose`] is the full URL, for connecting.
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresUrl(String);

impl PostgresUrl {
    /// `url` checked as [`POSTGRES_URL`] is: for a URL given elsewhere (`symbiose store copy`),
    /// so that it too is never shown with its password.
    pub fn parse(url: &str) -> Result<PostgresUrl, ConfigError> {
        match parse_store("postgres".to_owned(), url.to_owned(), String::new())? {
            StoreBackend::Postgres(url) => Ok(url),
            StoreBackend::Embedded | StoreBackend::EventStoreDb(_) => {
                unreachable!("parse_store answers postgres for postgres")
            }
        }
    }

    /// The full URL, password included: only for opening the connection.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for PostgresUrl {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "PostgresUrl({:?})", redact_postgres_url(&self.0))
    }
}

impl std::fmt::Display for PostgresUrl {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&redact_postgres_url(&self.0))
    }
}

/// An EventStoreDB connection string (`esdb://` or `esdb+discover://`). Its `Debug` and
/// `Display` hide the password; [`EventStoreDbConnectionString::expose`] is the full string,
/// for connecting.
#[derive(Clone, PartialEq, Eq)]
pub struct EventStoreDbConnectionString(String);

impl EventStoreDbConnectionString {
    /// The full connection string, password included: only for opening the connection.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for EventStoreDbConnectionString {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "EventStoreDbConnectionString({:?})", redact_postgres_url(&self.0))
    }
}

impl std::fmt::Display for EventStoreDbConnectionString {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&redact_postgres_url(&self.0))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// The settings of one server process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    pub listen_addr: SocketAddr,
    pub data_dir: PathBuf,
    pub metrics_addr: Option<SocketAddr>,
    /// `None`: no plaintext health port.
    pub health_addr: Option<SocketAddr>,
    /// `None`: no public web port.
    pub web_addr: Option<SocketAddr>,
    /// Without a trailing slash; `None`: `http://` and the web port's bound address.
    pub public_base_url: Option<String>,
    pub log_format: LogFormat,
    pub request_timeout_ms: u64,
    pub message_bytes_max: usize,
    pub concurrency_per_connection_max: usize,
    pub shutdown_grace_ms: u64,
    pub shutdown_delay_ms: u64,
    pub lease_ttl_ms: u64,
    /// Events a read model applies between two of its snapshots; 0: none.
    pub view_snapshot_events: u64,
    pub rate_limit_per_second: NonZeroU32,
    pub rate_limit_burst: NonZeroU32,
    pub token_ttl_days: u32,
    /// The platform's fee on a deal's net amount, in basis points.
    pub platform_fee_bp: u32,
    /// `None`: the gRPC port is plaintext.
    pub tls: Option<TlsFiles>,
    /// `None`: no NATS; events stay on the local feed.
    pub nats_url: Option<String>,
    /// The replicas of the relay's streams; `None`: 3 on a NATS cluster, 1 on a lone server.
    pub nats_stream_replicas: Option<usize>,
    /// The credentials file for `nats_url`, read when connecting.
    pub nats_credentials: Option<PathBuf>,
    /// `http://host:port` (or `https://`) of the listings service, for a service running alone.
    pub listings_url: Option<String>,
    /// `http://host:port` (or `https://`) of the settlement service, for logistics running alone.
    pub settlement_url: Option<String>,
    /// How this process reaches the other services' `https://` ports; `Some` exactly when one
    /// of the URLs above is `https://`.
    pub services_tls: Option<ServicesTls>,
    /// The OTLP/gRPC address traces are exported to; `None`: no export.
    pub otlp_endpoint: Option<String>,
    /// The event store's backend.
    pub store: StoreBackend,
}

/// The PEM files a process reaches the other services' TLS ports with. Read when the channels
/// are made, not when the config is parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicesTls {
    /// The CA the services' certificates must chain to.
    pub ca_path: PathBuf,
    /// `Some((certificate chain, key))`: presented to the services (mutual TLS).
    pub client: Option<(PathBuf, PathBuf)>,
}

/// The PEM files of a TLS gRPC port. Read when the server starts, not when the config is
/// parsed, so parsing stays pure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
    /// `Some`: clients must present a certificate signed by this CA.
    pub client_ca_path: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{key}={value:?}: {reason}")]
pub struct ConfigError {
    pub key: &'static str,
    pub value: String,
    pub reason: String,
}

impl ServerConfig {
    /// Reads the settings from the process environment.
    pub fn from_env() -> Result<ServerConfig, ConfigError> {
        ServerConfig::from_lookup(|key| std::env::var(key).ok())
    }

    /// Parses the settings from `lookup`, which answers a key with its value if it is set.
    /// An empty value counts as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<ServerConfig, ConfigError> {
        let get = |key: &'static str| -> (&'static str, String) {
            let value = lookup(key).filter(|value| !value.trim().is_empty());
            let value = value.unwrap_or_else(|| default_of(key).to_owned());
            (key, value.trim().to_owned())
        };

        let (key, value) = get(METRICS_ADDR);
        let metrics_addr = if value.eq_ignore_ascii_case("off") { None } else { Some(parse(key, &value)?) };
        let (key, value) = get(HEALTH_ADDR);
        let health_addr = if value.eq_ignore_ascii_case("off") { None } else { Some(parse(key, &value)?) };
        let (key, value) = get(WEB_ADDR);
        let web_addr = if value.eq_ignore_ascii_case("off") { None } else { Some(parse(key, &value)?) };
        let public_base_url = parse_public_base_url(get(PUBLIC_BASE_URL))?;
        let (key, value) = get(LOG_FORMAT);
        let log_format = match value.to_ascii_lowercase().as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            _ => return Err(invalid(key, &value, "must be `text` or `json`")),
        };
        let (key, value) = get(LISTEN_ADDR);
        let listen_addr = parse(key, &value)?;
        let (_, data_dir) = get(DATA_DIR);
        let tls = parse_tls(get(TLS_CERT).1, get(TLS_KEY).1, get(TLS_CLIENT_CA).1)?;
        let (nats_url, nats_credentials) = parse_nats(get(NATS_URL).1, get(NATS_CREDENTIALS).1)?;
        let (key, value) = get(NATS_STREAM_REPLICAS);
        let nats_stream_replicas = if value.eq_ignore_ascii_case("auto") {
            None
        } else {
            Some(parse_in_range((key, value), 1, NATS_STREAM_REPLICAS_MAX)?)
        };
        let listings_url = parse_service_url(get(LISTINGS_URL), Schemes::HttpOrHttps)?;
        let settlement_url = parse_service_url(get(SETTLEMENT_URL), Schemes::HttpOrHttps)?;
        let services_tls = parse_services_tls(
            [(LISTINGS_URL, &listings_url), (SETTLEMENT_URL, &settlement_url)],
            get(SERVICES_CA).1,
            get(SERVICES_CLIENT_CERT).1,
            get(SERVICES_CLIENT_KEY).1,
        )?;
        // Plaintext, inside the deployment's network.
        let otlp_endpoint = parse_service_url(get(OTLP_ENDPOINT), Schemes::Http)?;
        let store = parse_store(get(STORE).1, get(POSTGRES_URL).1, get(EVENTSTORE_CONNECTION_STRING).1)?;

        Ok(ServerConfig {
            listen_addr,
            data_dir: PathBuf::from(data_dir),
            metrics_addr,
            health_addr,
            web_addr,
            public_base_url,
            log_format,
            request_timeout_ms: parse_in_range(get(REQUEST_TIMEOUT_MS), 1, REQUEST_TIMEOUT_MS_MAX)?,
            message_bytes_max: parse_in_range(
                get(MESSAGE_BYTES_MAX),
                MESSAGE_BYTES_MIN,
                MESSAGE_BYTES_MAX_LIMIT,
            )?,
            concurrency_per_connection_max: parse_in_range(
                get(CONCURRENCY_PER_CONNECTION_MAX),
                1,
                CONCURRENCY_PER_CONNECTION_LIMIT,
            )?,
            shutdown_grace_ms: parse_in_range(get(SHUTDOWN_GRACE_MS), 0, SHUTDOWN_GRACE_MS_MAX)?,
            shutdown_delay_ms: parse_in_range(get(SHUTDOWN_DELAY_MS), 0, SHUTDOWN_DELAY_MS_MAX)?,
            lease_ttl_ms: parse_in_range(get(LEASE_TTL_MS), LEASE_TTL_MS_MIN, LEASE_TTL_MS_LIMIT)?,
            view_snapshot_events: parse_in_range(get(VIEW_SNAPSHOT_EVENTS), 0, VIEW_SNAPSHOT_EVENTS_LIMIT)?,
            rate_limit_per_second: parse_non_zero(get(RATE_LIMIT_PER_SECOND), RATE_LIMIT_PER_SECOND_LIMIT)?,
            rate_limit_burst: parse_non_zero(get(RATE_LIMIT_BURST), RATE_LIMIT_BURST_LIMIT)?,
            token_ttl_days: parse_in_range(get(TOKEN_TTL_DAYS), 1, TOKEN_TTL_DAYS_MAX)?,
            platform_fee_bp: parse_in_range(get(PLATFORM_FEE_BP), 0, PLATFORM_FEE_BP_MAX)?,
            tls,
            nats_url,
            nats_stream_replicas,
            nats_credentials,
            listings_url,
            settlement_url,
            services_tls,
            otlp_endpoint,
            store,
        })
    }

    /// How long issued tokens are valid unless asked otherwise, in seconds.
    pub fn token_ttl_s(&self) -> u64 {
        u64::from(self.token_ttl_days) * SECONDS_PER_DAY
    }

    /// The defaults, with both ports on free loopback ports and the data in `data_dir`: what
    /// tests start servers with.
    pub fn for_tests(data_dir: PathBuf) -> ServerConfig {
        ServerConfig {
            listen_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            metrics_addr: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            web_addr: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            data_dir,
            ..ServerConfig::from_lookup(|_| None).expect("the defaults are valid")
        }
    }
}

/// Both the certificate and the key, or neither; a client CA only on top of both.
fn parse_tls(cert: String, key: String, client_ca: String) -> Result<Option<TlsFiles>, ConfigError> {
    match (cert.is_empty(), key.is_empty()) {
        (true, true) if client_ca.is_empty() => Ok(None),
        (true, true) => Err(invalid(
            TLS_CLIENT_CA,
            &client_ca,
            format!("needs {TLS_CERT} and {TLS_KEY}: client certificates are checked on a TLS port"),
        )),
        (false, true) => Err(invalid(TLS_KEY, &key, format!("must be set when {TLS_CERT} is"))),
        (true, false) => Err(invalid(TLS_CERT, &cert, format!("must be set when {TLS_KEY} is"))),
        (false, false) => Ok(Some(TlsFiles {
            cert_path: PathBuf::from(cert),
            key_path: PathBuf::from(key),
            client_ca_path: (!client_ca.is_empty()).then(|| PathBuf::from(client_ca)),
        })),
    }
}

/// A list of NATS server URLs (`nats://host:port`, `tls://host:port`, or `host:port`), and a
/// credentials file only with it.
fn parse_nats(url: String, credentials: String) -> Result<(Option<String>, Option<PathBuf>), ConfigError> {
    if url.is_empty() {
        if !credentials.is_empty() {
            return Err(invalid(NATS_CREDENTIALS, &credentials, format!("needs {NATS_URL}")));
        }
        return Ok((None, None));
    }
    for server in url.split(',') {
        let server = server.trim();
        let address = server.split_once("://").map_or(server, |(scheme, address)| {
            if ["nats", "tls", "ws", "wss"].contains(&scheme) { address } else { "" }
        });
        let host = address.rsplit_once('@').map_or(address, |(_, host)| host);
        if host.is_empty() || host.starts_with(':') || host.contains(char::is_whitespace) {
            return Err(invalid(
                NATS_URL,
                &url,
                "must be comma-separated NATS server URLs, like nats://127.0.0.1:4222",
            ));
        }
    }
    Ok((Some(url), (!credentials.is_empty()).then(|| PathBuf::from(credentials))))
}

/// `http://host:port` of another service, or nothing. Calls between the services are
/// plaintext: inside a cluster, their encryption is the network's (a service mesh).
/// Longest public base URL, in bytes: it is printed in every QR code, which grows with it.
const PUBLIC_BASE_URL_BYTES_MAX: usize = 200;

/// An `http://` or `https://` URL with a host, and a path at most, without a trailing slash.
fn parse_public_base_url((key, value): (&'static str, String)) -> Result<Option<String>, ConfigError> {
    if value.is_empty() {
        return Ok(None);
    }
    let trimmed = value.trim_end_matches('/');
    let rest = trimmed.strip_prefix("https://").or_else(|| trimmed.strip_prefix("http://"));
    let valid = trimmed.len() <= PUBLIC_BASE_URL_BYTES_MAX
        && rest.is_some_and(|rest| {
            let host = rest.split('/').next().unwrap_or_default();
            !host.is_empty()
                && !rest.contains(['?', '#', '@', ' ', '"', '<', '>', '\\'])
                && rest.chars().all(|char| char.is_ascii_graphic())
        });
    if !valid {
        return Err(invalid(
            key,
            &value,
            format!(
                "must be http(s)://host[:port][/path], at most {PUBLIC_BASE_URL_BYTES_MAX} bytes, without a query"
            ),
        ));
    }
    Ok(Some(trimmed.to_owned()))
}

/// The schemes a service address may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Schemes {
    Http,
    HttpOrHttps,
}

fn parse_service_url(
    (key, value): (&'static str, String),
    schemes: Schemes,
) -> Result<Option<String>, ConfigError> {
    if value.is_empty() {
        return Ok(None);
    }
    let (scheme, address) = match value.split_once("://") {
        Some(("http", address)) => ("http", address),
        Some(("https", address)) if schemes == Schemes::HttpOrHttps => ("https", address),
        _ => ("", ""),
    };
    let address = address.trim_end_matches('/');
    let valid = address.rsplit_once(':').is_some_and(|(host, port)| {
        !host.is_empty() && !host.contains(['/', '@', ' ']) && port.parse::<u16>().is_ok()
    });
    if !valid {
        let expected = match schemes {
            Schemes::Http => "must be http://host:port",
            Schemes::HttpOrHttps => "must be http://host:port or https://host:port",
        };
        return Err(invalid(key, &value, expected));
    }
    Ok(Some(format!("{scheme}://{address}")))
}

/// The files to reach `https://` services with: a CA exactly when some URL is `https://`, and a
/// client certificate and key together, only with the CA.
fn parse_services_tls(
    urls: [(&'static str, &Option<String>); 2],
    ca: String,
    client_cert: String,
    client_key: String,
) -> Result<Option<ServicesTls>, ConfigError> {
    let https = urls.iter().find(|(_, url)| url.as_deref().is_some_and(|url| url.starts_with("https://")));
    let client = match (client_cert.is_empty(), client_key.is_empty()) {
        (true, true) => None,
        (false, true) => {
            return Err(invalid(
                SERVICES_CLIENT_KEY,
                "",
                format!("must be set when {SERVICES_CLIENT_CERT} is"),
            ));
        }
        (true, false) => {
            return Err(invalid(
                SERVICES_CLIENT_CERT,
                "",
                format!("must be set when {SERVICES_CLIENT_KEY} is"),
            ));
        }
        (false, false) => Some((PathBuf::from(client_cert), PathBuf::from(client_key))),
    };
    match (https, ca.is_empty()) {
        (Some((key, url)), true) => Err(invalid(
            key,
            url.as_deref().unwrap_or_default(),
            format!("is https://: set {SERVICES_CA} to the CA its certificate chains to"),
        )),
        (None, false) => Err(invalid(
            SERVICES_CA,
            &ca,
            format!("needs an https:// {LISTINGS_URL} or {SETTLEMENT_URL}: plaintext addresses use no CA"),
        )),
        (None, true) => match client {
            Some((cert, _)) => Err(invalid(
                SERVICES_CLIENT_CERT,
                &cert.display().to_string(),
                format!("needs an https:// {LISTINGS_URL} or {SETTLEMENT_URL} and {SERVICES_CA}"),
            )),
            None => Ok(None),
        },
        (Some(_), false) => Ok(Some(ServicesTls { ca_path: PathBuf::from(ca), client })),
    }
}

/// `embedded`, `postgres` with its URL, or `eventstoredb` with its connection string (which a
/// binary built without the feature `eventstoredb` refuses when it opens the store). A URL or
/// connection string is refused without its backend, so a deployment never believes it writes
/// to a database while it writes to its disk.
fn parse_store(
    store: String,
    postgres_url: String,
    eventstore_connection: String,
) -> Result<StoreBackend, ConfigError> {
    let redacted = redact_postgres_url(&postgres_url);
    let lowered = store.to_ascii_lowercase();
    if !eventstore_connection.is_empty() && lowered != STORE_EVENTSTOREDB {
        let redacted = redact_postgres_url(&eventstore_connection);
        return Err(invalid(
            EVENTSTORE_CONNECTION_STRING,
            &redacted,
            format!("needs {STORE}={STORE_EVENTSTOREDB}"),
        ));
    }
    match lowered.as_str() {
        "embedded" if postgres_url.is_empty() => Ok(StoreBackend::Embedded),
        "embedded" => Err(invalid(POSTGRES_URL, &redacted, format!("needs {STORE}=postgres"))),
        "postgres" => {
            if postgres_url.is_empty() {
                return Err(invalid(POSTGRES_URL, "", format!("must be set when {STORE} is `postgres`")));
            }
            let address = ["postgres://", "postgresql://"]
                .iter()
                .find_map(|scheme| postgres_url.strip_prefix(scheme))
                .unwrap_or_default();
            let host = address.split(['/', '?']).next().unwrap_or_default();
            let host = host.rsplit_once('@').map_or(host, |(_, host)| host);
            if host.is_empty() || host.starts_with(':') || postgres_url.contains(char::is_whitespace) {
                return Err(invalid(
                    POSTGRES_URL,
                    &redacted,
                    "must be a PostgreSQL URL, like postgres://user:password@host:5432/database",
                ));
            }
            Ok(StoreBackend::Postgres(PostgresUrl(postgres_url)))
        }
        STORE_EVENTSTOREDB => {
            if !postgres_url.is_empty() {
                return Err(invalid(POSTGRES_URL, &redacted, format!("needs {STORE}=postgres")));
            }
            if eventstore_connection.is_empty() {
                return Err(invalid(
                    EVENTSTORE_CONNECTION_STRING,
                    "",
                    format!("must be set when {STORE} is `{STORE_EVENTSTOREDB}`"),
                ));
            }
            let valid = ["esdb://", "esdb+discover://"].iter().any(|scheme| {
                eventstore_connection.strip_prefix(scheme).is_some_and(|rest| !rest.is_empty())
            }) && !eventstore_connection.contains(char::is_whitespace);
            if !valid {
                return Err(invalid(
                    EVENTSTORE_CONNECTION_STRING,
                    &redact_postgres_url(&eventstore_connection),
                    "must be an EventStoreDB connection string, like esdb://user:password@host:2113?tls=false",
                ));
            }
            Ok(StoreBackend::EventStoreDb(EventStoreDbConnectionString(eventstore_connection)))
        }
        _ => Err(invalid(STORE, &store, "must be `embedded`, `postgres` or `eventstoredb`")),
    }
}

/// `url` with the password of its user part and of a `password=` parameter replaced by `***`.
fn redact_postgres_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((user_info, host)) => match user_info.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => format!("{user_info}@{host}"),
        },
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((name, _)) if name.eq_ignore_ascii_case("password") => format!("{name}=***"),
                    _ => pair.to_owned(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_owned(),
    };
    if scheme.is_empty() { format!("{authority}{tail}") } else { format!("{scheme}://{authority}{tail}") }
}

fn default_of(key: &str) -> &'static str {
    SETTINGS
        .iter()
        .find(|setting| setting.key == key)
        .map(|setting| setting.default)
        .expect("every key read has a row in SETTINGS")
}

fn invalid(key: &'static str, value: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError { key, value: value.to_owned(), reason: reason.into() }
}

fn parse<T: FromStr>(key: &'static str, value: &str) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    value.parse().map_err(|error: T::Err| invalid(key, value, error.to_string()))
}

fn parse_in_range<T>((key, value): (&'static str, String), min: T, max: T) -> Result<T, ConfigError>
where
    T: FromStr + PartialOrd + std::fmt::Display + Copy,
    T::Err: std::fmt::Display,
{
    let parsed: T = parse(key, &value)?;
    if parsed < min || parsed > max {
        return Err(invalid(key, &value, format!("must be between {min} and {max}")));
    }
    Ok(parsed)
}

fn parse_non_zero((key, value): (&'static str, String), max: u32) -> Result<NonZeroU32, ConfigError> {
    let parsed: u32 = parse_in_range((key, value.clone()), 1, max)?;
    NonZeroU32::new(parsed).ok_or_else(|| invalid(key, &value, "must not be 0"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(pairs: &[(&str, &str)]) -> Result<ServerConfig, ConfigError> {
        let map: HashMap<String, String> =
            pairs.iter().map(|(key, value)| (key.to_string(), value.to_string())).collect();
        ServerConfig::from_lookup(|key| map.get(key).cloned())
    }

    #[test]
    fn defaults_serve_on_loopback_with_data_in_the_working_directory() {
        let config = config(&[]).expect("defaults");
        assert_eq!(config.listen_addr, "127.0.0.1:50051".parse().expect("address"));
        assert_eq!(config.data_dir, PathBuf::from("./data"));
        assert_eq!(config.metrics_addr, Some("127.0.0.1:9464".parse().expect("address")));
        assert_eq!(config.log_format, LogFormat::Text);
        assert_eq!(config.request_timeout_ms, 10_000);
        assert_eq!(config.message_bytes_max, 4 * 1024 * 1024);
        assert_eq!(config.rate_limit_per_second.get(), 100);
        assert_eq!(config.rate_limit_burst.get(), 200);
        assert_eq!(config.token_ttl_days, 30);
        assert_eq!(config.token_ttl_s(), 30 * 86_400);
        assert_eq!(config.tls, None);
        assert_eq!((config.nats_url, config.nats_credentials), (None, None));
    }

    #[test]
    fn every_setting_is_read_from_the_lookup() {
        let config = config(&[
            (LISTEN_ADDR, "0.0.0.0:7000"),
            (DATA_DIR, "/var/lib/symbiose"),
            (METRICS_ADDR, "off"),
            (LOG_FORMAT, "JSON"),
            (REQUEST_TIMEOUT_MS, "2500"),
            (MESSAGE_BYTES_MAX, "65536"),
            (CONCURRENCY_PER_CONNECTION_MAX, "8"),
            (SHUTDOWN_GRACE_MS, "0"),
            (RATE_LIMIT_PER_SECOND, "5"),
            (RATE_LIMIT_BURST, "7"),
            (TOKEN_TTL_DAYS, "1"),
            (TLS_CERT, "/etc/symbiose/server.pem"),
            (TLS_KEY, "/etc/symbiose/server.key"),
            (TLS_CLIENT_CA, "/etc/symbiose/clients.pem"),
            (NATS_URL, "nats://nats-1:4222,nats://nats-2:4222"),
            (NATS_CREDENTIALS, "/etc/symbiose/nats.creds"),
        ])
        .expect("valid settings");
        assert_eq!(config.listen_addr, "0.0.0.0:7000".parse().expect("address"));
        assert_eq!(config.data_dir, PathBuf::from("/var/lib/symbiose"));
        assert_eq!(config.metrics_addr, None);
        assert_eq!(config.log_format, LogFormat::Json);
        assert_eq!(config.request_timeout_ms, 2500);
        assert_eq!(config.message_bytes_max, 65_536);
        assert_eq!(config.concurrency_per_connection_max, 8);
        assert_eq!(config.shutdown_grace_ms, 0);
        assert_eq!(config.rate_limit_per_second.get(), 5);
        assert_eq!(config.rate_limit_burst.get(), 7);
        assert_eq!(config.token_ttl_days, 1);
        assert_eq!(
            config.tls,
            Some(TlsFiles {
                cert_path: PathBuf::from("/etc/symbiose/server.pem"),
                key_path: PathBuf::from("/etc/symbiose/server.key"),
                client_ca_path: Some(PathBuf::from("/etc/symbiose/clients.pem")),
            })
        );
        assert_eq!(config.nats_url.as_deref(), Some("nats://nats-1:4222,nats://nats-2:4222"));
        assert_eq!(config.nats_credentials, Some(PathBuf::from("/etc/symbiose/nats.creds")));
    }

    #[test]
    fn the_web_port_and_its_public_url_are_checked() {
        let defaults = config(&[]).expect("defaults");
        assert_eq!(defaults.web_addr, Some("127.0.0.1:8080".parse().expect("address")));
        assert_eq!(defaults.public_base_url, None);
        let set = config(&[(WEB_ADDR, "off"), (PUBLIC_BASE_URL, "https://passports.example.eu/grand-est/")])
            .expect("valid settings");
        assert_eq!(set.web_addr, None);
        assert_eq!(set.public_base_url.as_deref(), Some("https://passports.example.eu/grand-est"));
        for bad in
            ["passports.example.eu", "ftp://example.eu", "https://", "https://a.eu/?q=1", "https://a b.eu"]
        {
            let error = config(&[(PUBLIC_BASE_URL, bad)]).expect_err(bad);
            assert_eq!(error.key, PUBLIC_BASE_URL, "{bad}");
        }
    }

    #[test]
    fn nats_takes_urls_and_credentials_only_with_a_url() {
        for url in
            ["nats://127.0.0.1:4222", "127.0.0.1:4222", "tls://user:pass@nats.example:4222", "a:1, b:2"]
        {
            assert_eq!(config(&[(NATS_URL, url)]).expect(url).nats_url.as_deref(), Some(url));
        }
        for url in ["http://nats:4222", "nats://", "nats://a b:4222", "a:1,,b:2", ":4222"] {
            let error = config(&[(NATS_URL, url)]).expect_err(url);
            assert_eq!(error.key, NATS_URL, "{url}");
        }
        let error = config(&[(NATS_CREDENTIALS, "nats.creds")]).expect_err("credentials alone");
        assert_eq!(error.key, NATS_CREDENTIALS);
        assert!(error.to_string().contains(NATS_URL), "{error}");
    }

    #[test]
    fn the_listings_url_is_http_or_https_host_and_port() {
        let ca = (SERVICES_CA, "/etc/symbiose/services-ca.pem");
        for (url, parsed) in [
            ("http://symbiose-listings:50051", "http://symbiose-listings:50051"),
            ("http://127.0.0.1:7001/", "http://127.0.0.1:7001"),
            ("https://symbiose-listings:50051/", "https://symbiose-listings:50051"),
        ] {
            let settings = if url.starts_with("https") {
                vec![(LISTINGS_URL, url), ca]
            } else {
                vec![(LISTINGS_URL, url)]
            };
            assert_eq!(config(&settings).expect(url).listings_url.as_deref(), Some(parsed));
        }
        for url in [
            "symbiose-listings:50051",
            "ftp://listings:21",
            "http://:50051",
            "http://a:port",
            "http://a",
            "https://a",
        ] {
            let error = config(&[(LISTINGS_URL, url), ca]).expect_err(url);
            assert_eq!(error.key, LISTINGS_URL, "{url}");
        }
        assert_eq!(config(&[]).expect("defaults").listings_url, None);
        let settlement =
            config(&[(SETTLEMENT_URL, "http://symbiose-settlement:50051/")]).expect("an address");
        assert_eq!(settlement.settlement_url.as_deref(), Some("http://symbiose-settlement:50051"));
        assert_eq!(config(&[(SETTLEMENT_URL, "settlement")]).expect_err("no scheme").key, SETTLEMENT_URL);
        // The collector stays plaintext.
        assert_eq!(config(&[(OTLP_ENDPOINT, "https://otel:4317")]).expect_err("https").key, OTLP_ENDPOINT);
    }

    #[test]
    fn the_streams_replicas_are_auto_or_one_to_five() {
        assert_eq!(config(&[]).expect("defaults").nats_stream_replicas, None);
        assert_eq!(config(&[(NATS_STREAM_REPLICAS, "AUTO")]).expect("auto").nats_stream_replicas, None);
        assert_eq!(config(&[(NATS_STREAM_REPLICAS, "3")]).expect("three").nats_stream_replicas, Some(3));
        for bad in ["0", "6", "three", "-1"] {
            assert_eq!(config(&[(NATS_STREAM_REPLICAS, bad)]).expect_err(bad).key, NATS_STREAM_REPLICAS);
        }
    }

    #[test]
    fn https_services_need_their_ca_and_a_client_certificate_comes_with_its_key() {
        let https = (LISTINGS_URL, "https://symbiose-listings:50051");
        let ca = (SERVICES_CA, "/tls/ca.crt");
        let (cert, key) = ((SERVICES_CLIENT_CERT, "/tls/tls.crt"), (SERVICES_CLIENT_KEY, "/tls/tls.key"));
        assert_eq!(config(&[]).expect("defaults").services_tls, None);
        assert_eq!(
            config(&[https, ca]).expect("server TLS").services_tls,
            Some(ServicesTls { ca_path: PathBuf::from("/tls/ca.crt"), client: None })
        );
        assert_eq!(
            config(&[https, (SETTLEMENT_URL, "http://settlement:50051"), ca, cert, key])
                .expect("mutual TLS")
                .services_tls,
            Some(ServicesTls {
                ca_path: PathBuf::from("/tls/ca.crt"),
                client: Some((PathBuf::from("/tls/tls.crt"), PathBuf::from("/tls/tls.key"))),
            })
        );
        // Each refusal names the setting to fix.
        let refused = |settings: &[(&'static str, &str)]| config(settings).expect_err("refused").key;
        assert_eq!(refused(&[https]), LISTINGS_URL, "https without a CA");
        assert_eq!(refused(&[(SETTLEMENT_URL, "https://settlement:50051")]), SETTLEMENT_URL);
        assert_eq!(
            refused(&[(LISTINGS_URL, "http://listings:50051"), ca]),
            SERVICES_CA,
            "a CA for plaintext"
        );
        assert_eq!(refused(&[https, ca, cert]), SERVICES_CLIENT_KEY, "a certificate without its key");
        assert_eq!(refused(&[https, ca, key]), SERVICES_CLIENT_CERT, "a key without its certificate");
        assert_eq!(refused(&[cert, key]), SERVICES_CLIENT_CERT, "a client certificate with no https address");
    }

    #[test]
    fn tls_needs_a_certificate_and_its_key_and_mutual_tls_needs_both() {
        let only_tls = config(&[(TLS_CERT, "cert.pem"), (TLS_KEY, "key.pem")]).expect("tls");
        assert_eq!(
            only_tls.tls,
            Some(TlsFiles {
                cert_path: PathBuf::from("cert.pem"),
                key_path: PathBuf::from("key.pem"),
                client_ca_path: None,
            })
        );

        let cases: [(&[(&str, &str)], &str); 4] = [
            (&[(TLS_CERT, "cert.pem")], TLS_KEY),
            (&[(TLS_KEY, "key.pem")], TLS_CERT),
            (&[(TLS_CLIENT_CA, "ca.pem")], TLS_CLIENT_CA),
            (&[(TLS_CERT, "cert.pem"), (TLS_CLIENT_CA, "ca.pem")], TLS_KEY),
        ];
        for (pairs, key) in cases {
            let error = config(pairs).expect_err("a bad combination");
            assert_eq!(error.key, key, "{pairs:?}");
            assert!(error.to_string().starts_with(key), "{error}");
        }
    }

    #[test]
    fn a_bad_value_is_refused_naming_its_key() {
        let cases = [
            (LISTEN_ADDR, "localhost"),
            (METRICS_ADDR, "9464"),
            (LOG_FORMAT, "xml"),
            (REQUEST_TIMEOUT_MS, "0"),
            (REQUEST_TIMEOUT_MS, "ten"),
            (MESSAGE_BYTES_MAX, "100"),
            (MESSAGE_BYTES_MAX, "1000000000"),
            (CONCURRENCY_PER_CONNECTION_MAX, "-1"),
            (RATE_LIMIT_PER_SECOND, "0"),
            (RATE_LIMIT_PER_SECOND, "100001"),
            (RATE_LIMIT_BURST, "0"),
            (RATE_LIMIT_BURST, "1000001"),
            (TOKEN_TTL_DAYS, "0"),
            (PLATFORM_FEE_BP, "2001"),
            (TOKEN_TTL_DAYS, "3651"),
            (TOKEN_TTL_DAYS, "a month"),
            (OTLP_ENDPOINT, "otel-collector:4317"),
            (OTLP_ENDPOINT, "grpc://otel-collector:4317"),
        ];
        for (key, value) in cases {
            let error = config(&[(key, value)]).expect_err(value);
            assert_eq!(error.key, key, "{value}");
            assert!(error.to_string().starts_with(key), "{error}");
        }
    }

    #[test]
    fn the_readme_documents_every_setting_with_its_default() {
        let readme = include_str!("../../../README.md");
        for setting in SETTINGS {
            // An empty default is an empty cell: an empty code span does not render.
            let row = if setting.default.is_empty() {
                format!("| `{}` | |", setting.key)
            } else {
                format!("| `{}` | `{}` |", setting.key, setting.default)
            };
            assert!(readme.contains(&row), "README.md lacks the row {row}");
        }
    }

    #[test]
    fn traces_are_exported_only_when_a_collector_is_named() {
        assert_eq!(config(&[]).expect("defaults").otlp_endpoint, None);
        let set = config(&[(OTLP_ENDPOINT, "http://otel-collector:4317")]).expect("valid");
        assert_eq!(set.otlp_endpoint.as_deref(), Some("http://otel-collector:4317"));
    }

    #[test]
    fn the_store_is_embedded_unless_postgres_is_named_with_its_url() {
        assert_eq!(config(&[]).expect("defaults").store, StoreBackend::Embedded);
        assert_eq!(config(&[(STORE, "Embedded")]).expect("embedded").store, StoreBackend::Embedded);
        for url in [
            "postgres://symbiose:secret@db:5432/symbiose",
            "postgresql://db/symbiose?sslmode=require",
            "postgres://127.0.0.1",
        ] {
            let parsed = config(&[(STORE, "postgres"), (POSTGRES_URL, url)]).expect(url).store;
            match parsed {
                StoreBackend::Postgres(parsed) => assert_eq!(parsed.expose(), url),
                other => panic!("{url} opened {other:?}"),
            }
        }
    }

    #[test]
    fn a_bad_store_is_refused_naming_its_key() {
        let cases: [(&[(&str, &str)], &str); 8] = [
            (&[(STORE, "sqlite")], STORE),
            (&[(STORE, "postgres")], POSTGRES_URL),
            (&[(STORE, "postgres"), (POSTGRES_URL, "mysql://db/symbiose")], POSTGRES_URL),
            (&[(STORE, "postgres"), (POSTGRES_URL, "db:5432/symbiose")], POSTGRES_URL),
            (&[(STORE, "postgres"), (POSTGRES_URL, "postgres:///symbiose")], POSTGRES_URL),
            (&[(STORE, "postgres"), (POSTGRES_URL, "postgres://a b/symbiose")], POSTGRES_URL),
            (&[(POSTGRES_URL, "postgres://db/symbiose")], POSTGRES_URL),
            (&[(STORE, "embedded"), (POSTGRES_URL, "postgres://db/symbiose")], POSTGRES_URL),
        ];
        for (pairs, key) in cases {
            let error = config(pairs).expect_err("a bad store");
            assert_eq!(error.key, key, "{pairs:?}");
            assert!(error.to_string().starts_with(key), "{error}");
        }
    }

    #[test]
    fn eventstoredb_needs_its_connection_string_and_hides_its_password() {
        let url = "esdb://admin:hunter2@node1:2113,node2:2113?tls=false";
        let parsed = config(&[(STORE, "eventstoredb"), (EVENTSTORE_CONNECTION_STRING, url)]).expect("valid");
        let StoreBackend::EventStoreDb(connection) = &parsed.store else {
            panic!("eventstoredb: {parsed:?}")
        };
        assert_eq!(connection.expose(), url);
        assert_eq!(connection.to_string(), "esdb://admin:***@node1:2113,node2:2113?tls=false");
        let shown = format!("{parsed:?}");
        assert!(!shown.contains("hunter2"), "{shown}");

        let missing = config(&[(STORE, "eventstoredb")]).expect_err("no connection string");
        assert_eq!(missing.key, EVENTSTORE_CONNECTION_STRING);
        for store in ["embedded", "postgres"] {
            let refused = config(&[(STORE, store), (EVENTSTORE_CONNECTION_STRING, url)]).expect_err(store);
            assert_eq!(refused.key, EVENTSTORE_CONNECTION_STRING, "{store}");
            assert!(!refused.to_string().contains("hunter2"), "{refused}");
        }
        let bad =
            config(&[(STORE, "eventstoredb"), (EVENTSTORE_CONNECTION_STRING, "http://admin:hunter2@db")])
                .expect_err("not esdb");
        assert_eq!(bad.key, EVENTSTORE_CONNECTION_STRING);
        assert!(!bad.to_string().contains("hunter2"), "{bad}");
        let both = config(&[
            (STORE, "eventstoredb"),
            (EVENTSTORE_CONNECTION_STRING, url),
            (POSTGRES_URL, "postgres://db/symbiose"),
        ])
        .expect_err("a postgres url too");
        assert_eq!(both.key, POSTGRES_URL);
    }

    #[test]
    fn the_postgres_password_is_never_shown() {
        let url = "postgres://symbiose:hunter2@db:5432/symbiose?sslmode=require&password=hunter2";
        let parsed = config(&[(STORE, "postgres"), (POSTGRES_URL, url)]).expect("valid");
        let shown = format!("{parsed:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(
            shown.contains("postgres://symbiose:***@db:5432/symbiose?sslmode=require&password=***"),
            "{shown}"
        );
        let StoreBackend::Postgres(parsed) = parsed.store else { panic!("postgres") };
        assert_eq!(
            parsed.to_string(),
            "postgres://symbiose:***@db:5432/symbiose?sslmode=require&password=***"
        );
        let refused = config(&[(POSTGRES_URL, url)]).expect_err("without postgres");
        assert!(!refused.to_string().contains("hunter2"), "{refused}");
        let bad =
            config(&[(STORE, "postgres"), (POSTGRES_URL, "postgres://symbiose:hunter2@")]).expect_err("bad");
        assert!(!bad.to_string().contains("hunter2"), "{bad}");
    }

    #[test]
    fn an_empty_value_counts_as_unset() {
        assert_eq!(config(&[(LISTEN_ADDR, "  ")]), config(&[]));
    }
}
