//! The standalone Symbiose server: every service in one process, on one gRPC port, with its
//! data under one directory: the embedded event store in `events/`, the token signing key in
//! `keys/`, the keys of personal data in `vault/`, and the operator's token in
//! `operator.token`. It is what `cargo run --release` starts, and what the black-box tests
//! start on free ports.
//!
//! It only composes the services: it holds no business rule of its own.

pub mod cli;

use std::future::Future;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use symbiose_domain::Role;
use symbiose_eventstore::embedded::{self, EmbeddedStore};
use symbiose_kit::auth::{Authenticator, Claims, RateLimits, Revocations, TokenAuthority};
use symbiose_kit::{Listeners, ServerConfig, ServiceSet};
use symbiose_listings::{Directory, OPERATOR_ORGANIZATION_ID, Vault};
use tonic::service::interceptor::InterceptedService;
use uuid::Uuid;

/// The directory of the event store under the data directory.
pub const EVENTS_DIR: &str = "events";
/// The directory of the token signing key.
pub const KEYS_DIR: &str = "keys";
/// The directory of the keys of personal data.
pub const VAULT_DIR: &str = "vault";
/// The operator's token, written when missing.
pub const OPERATOR_TOKEN_FILE: &str = "operator.token";
/// Validity of the operator token written at start, in days.
const OPERATOR_TOKEN_TTL_DAYS: u64 = 365;

/// A standalone server with its store open and its ports bound, ready to serve.
#[derive(Debug)]
pub struct Standalone {
    config: ServerConfig,
    listeners: Listeners,
    store: EmbeddedStore,
    authority: TokenAuthority,
    operator_token_path: PathBuf,
}

impl Standalone {
    /// Opens the event store (recovering it if the last run crashed), loads or creates the
    /// signing key and the operator token, and takes the ports. Fails if another process
    /// holds the data directory.
    pub async fn build(config: ServerConfig, listeners: Listeners) -> anyhow::Result<Standalone> {
        let events_dir = config.data_dir.join(EVENTS_DIR);
        let (store, report) = tokio::task::spawn_blocking(move || {
            EmbeddedStore::open(&events_dir, embedded::Options::default())
                .with_context(|| format!("opening the event store in {}", events_dir.display()))
        })
        .await
        .context("opening the event store")??;
        let (authority, created) = TokenAuthority::load_or_create(&config.data_dir.join(KEYS_DIR))
            .context("loading the token signing key")?;
        if created {
            tracing::info!(dir = %config.data_dir.join(KEYS_DIR).display(), "created the token signing key");
        }
        let operator_token_path = config.data_dir.join(OPERATOR_TOKEN_FILE);
        if !operator_token_path.exists() {
            write_operator_token(&authority, &operator_token_path)?;
            tracing::info!(path = %operator_token_path.display(), "wrote the operator token");
        }
        tracing::info!(
            data_dir = %config.data_dir.display(),
            events = report.events,
            segments = report.segments,
            operator_token = %operator_token_path.display(),
            "standalone server starting"
        );
        Ok(Standalone { config, listeners, store, authority, operator_token_path })
    }

    pub fn store(&self) -> &EmbeddedStore {
        &self.store
    }

    /// Where the operator's token is.
    pub fn operator_token_path(&self) -> &Path {
        &self.operator_token_path
    }

    /// Serves every service until `shutdown` completes, then closes the store.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let Standalone { config, listeners, store, authority, .. } = self;
        let revocations = Revocations::new();
        let authenticator =
            Authenticator::new(authority.clone(), revocations.clone(), RateLimits::from_config(&config));
        let vault = Vault::open(config.data_dir.join(VAULT_DIR)).context("opening the vault")?;
        let directory =
            Arc::new(Directory::start(store.clone(), vault, authority, revocations, config.token_ttl_days));

        let mut services = ServiceSet::new();
        services.add(InterceptedService::new(symbiose_reference::service(&config), authenticator.clone()));
        services.add(symbiose_listings::organization_service(&config, directory, authenticator));
        let served = symbiose_kit::server::serve(&config, services, listeners, shutdown).await;
        store.close().await;
        served
    }
}

/// Builds and runs the standalone server until `shutdown` completes.
pub async fn run(
    config: ServerConfig,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    Standalone::build(config, listeners).await?.run(shutdown).await
}

/// Issues a token for the platform operator and writes it to `path`, readable by its owner
/// only.
fn write_operator_token(authority: &TokenAuthority, path: &Path) -> anyhow::Result<()> {
    let now_s = SystemTime::now().duration_since(UNIX_EPOCH).context("reading the clock")?.as_secs();
    let claims = Claims {
        organization_id: OPERATOR_ORGANIZATION_ID,
        roles: vec![Role::Operator],
        issued_at_s: now_s,
        expires_at_s: now_s + OPERATOR_TOKEN_TTL_DAYS * 86_400,
        token_id: Uuid::now_v7(),
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).with_context(|| format!("writing {}", path.display()))?;
    writeln!(file, "{}", authority.issue(&claims)).with_context(|| format!("writing {}", path.display()))?;
    file.sync_all().with_context(|| format!("syncing {}", path.display()))?;
    Ok(())
}
