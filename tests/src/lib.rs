//! The harness of the black-box tests: a real standalone server on free loopback ports, with
//! its own data directory, reached through real sockets by the generated clients.
//!
//! With `SYMBIOSE_STORE=postgres` in the environment, each server keeps its events in a
//! PostgreSQL database of its own (`symbiose_test_<random>` on the server at
//! [`POSTGRES_ADMIN_URL`]), dropped when the server is done with, so the whole suite runs on
//! either backend.
//!
//! Tests start servers only through this crate, so that they all start them the same way the
//! binary does.

pub mod fixtures;
mod postgres;

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use symbiose::cli::Bearer;
use symbiose_kit::{Listeners, ServerConfig};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

pub use postgres::{POSTGRES_ADMIN_URL, TestDatabase};

/// A channel that sends a bearer token with every call.
pub type AuthedChannel = InterceptedService<Channel, Bearer>;

/// Longest wait for a test server to stop after it is told to.
const STOP_TIMEOUT_MS: u64 = 10_000;

/// A standalone server running in this process on free ports. Dropping it stops it.
#[derive(Debug)]
pub struct TestServer {
    pub grpc_addr: SocketAddr,
    pub metrics_addr: SocketAddr,
    /// The public web port (passports' pages), unless the settings turned it off.
    pub web_addr: Option<SocketAddr>,
    pub config: ServerConfig,
    /// The operator token the server wrote at its first start.
    pub operator_token: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
    _data_dir: tempfile::TempDir,
    /// The server's PostgreSQL database, dropped after the server (declared after `task`).
    database: Option<TestDatabase>,
}

/// Where a test server keeps its events.
#[derive(Debug)]
pub enum TestStore {
    /// The embedded store in the data directory.
    Embedded,
    /// A database of its own.
    Postgres(TestDatabase),
}

impl TestStore {
    /// The store `SYMBIOSE_STORE` names in the environment: `embedded` (or unset), or
    /// `postgres`, for which a new database is created.
    pub async fn from_env() -> anyhow::Result<TestStore> {
        let key = symbiose_kit::config::STORE;
        let store = std::env::var(key).unwrap_or_default();
        match store.trim().to_ascii_lowercase().as_str() {
            "" | "embedded" => Ok(TestStore::Embedded),
            "postgres" => Ok(TestStore::Postgres(TestDatabase::create().await?)),
            _ => anyhow::bail!("{key}={store:?}: the tests run on `embedded` or `postgres`"),
        }
    }
}

impl TestServer {
    /// Starts a server with the default settings, on free ports, with a fresh data directory.
    pub async fn start() -> anyhow::Result<TestServer> {
        TestServer::start_with(|_| {}).await
    }

    /// Starts a server after `adjust` has changed its settings, on the store the environment
    /// names ([`TestStore::from_env`]).
    pub async fn start_with(adjust: impl FnOnce(&mut ServerConfig)) -> anyhow::Result<TestServer> {
        TestServer::start_on(TestStore::from_env().await?, adjust).await
    }

    /// Starts a server on `store`, after `adjust` has changed its settings.
    pub async fn start_on(
        store: TestStore,
        adjust: impl FnOnce(&mut ServerConfig),
    ) -> anyhow::Result<TestServer> {
        let data_dir = tempfile::tempdir().context("creating a data directory")?;
        let mut config = ServerConfig::for_tests(data_dir.path().join("data"));
        let database = match store {
            TestStore::Embedded => None,
            TestStore::Postgres(database) => {
                config.store = database.store_backend()?;
                Some(database)
            }
        };
        adjust(&mut config);
        TestServer::start_in(config, data_dir, database).await
    }

    /// Stops the server and starts a new one on the same data directory (and database), on
    /// new ports.
    pub async fn restart(mut self) -> anyhow::Result<TestServer> {
        let data_dir = std::mem::replace(&mut self._data_dir, tempfile::tempdir().context("a placeholder")?);
        let database = self.database.take();
        let mut config = self.config.clone();
        self.stop().await?;
        config.listen_addr = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        config.metrics_addr = Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
        config.web_addr = config.web_addr.map(|_| std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
        TestServer::start_in(config, data_dir, database).await
    }

    async fn start_in(
        config: ServerConfig,
        data_dir: tempfile::TempDir,
        database: Option<TestDatabase>,
    ) -> anyhow::Result<TestServer> {
        let listeners = Listeners::bind_with_web(&config).await?;
        let grpc_addr = listeners.grpc_addr();
        let metrics_addr = listeners.metrics_addr().context("test servers have a metrics port")?;
        let web_addr = listeners.web_addr();
        let server = symbiose::Standalone::build(config.clone(), listeners).await?;
        let operator_token = std::fs::read_to_string(server.operator_token_path())
            .context("reading the operator token")?
            .trim()
            .to_owned();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async move {
            let _ = stopped.await;
        }));
        Ok(TestServer {
            grpc_addr,
            metrics_addr,
            web_addr,
            config,
            operator_token,
            stop: Some(stop),
            task: Some(task),
            _data_dir: data_dir,
            database,
        })
    }

    /// A connected channel to the gRPC port. The listener is bound before the server task
    /// starts, so the connection is accepted as soon as the server runs: no wait is needed.
    pub async fn channel(&self) -> anyhow::Result<Channel> {
        Endpoint::from_shared(format!("http://{}", self.grpc_addr))?
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .connect()
            .await
            .context("connecting to the test server")
    }

    /// A channel whose calls carry `token`.
    pub async fn authed(&self, token: &str) -> anyhow::Result<AuthedChannel> {
        let bearer = Bearer::new(token).context("a token fit for a header")?;
        Ok(InterceptedService::new(self.channel().await?, bearer))
    }

    /// A channel whose calls carry the operator token.
    pub async fn operator(&self) -> anyhow::Result<AuthedChannel> {
        self.authed(&self.operator_token).await
    }

    /// Stops the server as SIGTERM would and waits for it to return, with a bound.
    /// The checkpoint `name` the server's store keeps (a file of the embedded store's
    /// directory, or a row of its PostgreSQL database), as text, if saved.
    pub async fn checkpoint(&self, name: &str) -> anyhow::Result<Option<String>> {
        match &self.database {
            Some(database) => database.checkpoint(name).await,
            None => match std::fs::read_to_string(
                self.config.data_dir.join("events").join("checkpoints").join(name),
            ) {
                Ok(text) => Ok(Some(text)),
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(error) => Err(error).context("reading a checkpoint"),
            },
        }
    }

    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let task = self.task.take().context("stopped twice")?;
        tokio::time::timeout(Duration::from_millis(STOP_TIMEOUT_MS), task)
            .await
            .context("the server did not stop in time")?
            .context("the server task panicked")?
    }
}

/// A catalog replica as the `symbiose-catalog` binary runs it, in this process on free ports:
/// its own data directory holding only the platform's signing key (copied from `of`), the
/// listings' events from the NATS `of` relays to.
#[derive(Debug)]
pub struct CatalogReplica {
    pub grpc_addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
    _data_dir: tempfile::TempDir,
}

impl CatalogReplica {
    /// Starts a replica of the catalog of `of` (which must relay to NATS).
    pub async fn start(of: &TestServer) -> anyhow::Result<CatalogReplica> {
        let data_dir = tempfile::tempdir().context("creating a data directory")?;
        let mut config = ServerConfig::for_tests(data_dir.path().join("data"));
        config.nats_url = Some(of.config.nats_url.clone().context("the server relays to NATS")?);
        let keys = config.data_dir.join(symbiose_kit::auth::KEYS_DIR);
        std::fs::create_dir_all(&keys).context("creating the key directory")?;
        let key = symbiose_kit::auth::SIGNING_KEY_FILE;
        std::fs::copy(of.config.data_dir.join(symbiose_kit::auth::KEYS_DIR).join(key), keys.join(key))
            .context("copying the signing key")?;
        let listeners = Listeners::bind(&config).await?;
        let grpc_addr = listeners.grpc_addr();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(symbiose_catalog::run(config, listeners, async move {
            let _ = stopped.await;
        }));
        Ok(CatalogReplica { grpc_addr, stop: Some(stop), task: Some(task), _data_dir: data_dir })
    }

    /// A channel whose calls carry `token`. The replica accepts connections at once and
    /// answers them once it holds the history.
    pub async fn authed(&self, token: &str) -> anyhow::Result<AuthedChannel> {
        let channel = Endpoint::from_shared(format!("http://{}", self.grpc_addr))?
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .connect()
            .await
            .context("connecting to the catalog replica")?;
        let bearer = Bearer::new(token).context("a token fit for a header")?;
        Ok(InterceptedService::new(channel, bearer))
    }

    /// Stops the replica as SIGTERM would and waits for it to return, with a bound.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let task = self.task.take().context("stopped twice")?;
        tokio::time::timeout(Duration::from_millis(STOP_TIMEOUT_MS), task)
            .await
            .context("the replica did not stop in time")?
            .context("the replica task panicked")?
    }
}

impl Drop for CatalogReplica {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
