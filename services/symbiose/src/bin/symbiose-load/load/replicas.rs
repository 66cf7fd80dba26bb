//! Replicas of the standalone server over one PostgreSQL database of the run's own: the first
//! makes the platform's key, the others start with a copy of it; the database is dropped at the
//! end of the run.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;

use super::process::{self, StartedServer};

/// Most replicas a run starts.
pub(crate) const REPLICAS_MAX: usize = 4;
/// Longest wait to connect to PostgreSQL.
const CONNECT_TIMEOUT_S: u64 = 5;

/// The servers, each with its temporary data directory, and the database they share.
pub(crate) struct Replicas {
    binary: std::path::PathBuf,
    server: String,
    database: String,
    pub(crate) servers: Vec<(StartedServer, tempfile::TempDir)>,
}

impl Replicas {
    /// Makes a database on the PostgreSQL server at `server` (`postgres://user@host:port`,
    /// whose user may create databases) and starts the first replica on it.
    pub(crate) async fn start(binary: &Path, server: &str) -> anyhow::Result<Replicas> {
        let database = create_database(server).await?;
        let mut replicas = Replicas {
            binary: binary.to_owned(),
            server: server.trim_end_matches('/').to_owned(),
            database,
            servers: Vec::new(),
        };
        replicas.add(None).await?;
        Ok(replicas)
    }

    /// The database's URL.
    fn url(&self) -> String {
        format!("{}/{}", self.server, self.database)
    }

    /// Starts one more replica, with the first one's signing key (or none, for the first).
    async fn add(&mut self, key: Option<&[u8]>) -> anyhow::Result<()> {
        let data_dir = tempfile::Builder::new()
            .prefix("symbiose-load-replica-")
            .tempdir()
            .context("making a replica's temporary data directory")?;
        if let Some(key) = key {
            let keys = data_dir.path().join("data").join(symbiose_kit::auth::KEYS_DIR);
            std::fs::create_dir_all(&keys).context("making the replica's keys directory")?;
            std::fs::write(keys.join("signing.key"), key).context("copying the signing key")?;
        }
        let started = process::start_server_on(&self.binary, data_dir.path(), Some(&self.url())).await?;
        self.servers.push((started, data_dir));
        Ok(())
    }

    /// Starts replicas until there are `count`.
    pub(crate) async fn grow_to(&mut self, count: usize) -> anyhow::Result<()> {
        let key_path =
            self.servers[0].1.path().join("data").join(symbiose_kit::auth::KEYS_DIR).join("signing.key");
        let key = std::fs::read(&key_path).with_context(|| format!("reading {}", key_path.display()))?;
        while self.servers.len() < count {
            self.add(Some(&key)).await?;
        }
        Ok(())
    }

    /// The addresses of the replicas.
    pub(crate) fn addresses(&self) -> Vec<String> {
        self.servers.iter().map(|(server, _)| server.address.to_string()).collect()
    }

    /// The events in the log.
    pub(crate) async fn events(&self) -> anyhow::Result<i64> {
        let client = connect(&self.url()).await?;
        let row = client
            .query_one("SELECT count(*) FROM symbiose_events", &[])
            .await
            .context("counting the events")?;
        Ok(row.get(0))
    }

    /// Kills the last replica with SIGKILL and starts it again on its data directory: how long
    /// it took to serve again.
    pub(crate) async fn restart_last(&mut self) -> anyhow::Result<Duration> {
        let (mut server, data_dir) = self.servers.pop().context("no replica")?;
        server.process.kill();
        drop(server);
        let started = Instant::now();
        let again = process::start_server_on(&self.binary, data_dir.path(), Some(&self.url())).await?;
        let took = started.elapsed();
        self.servers.push((again, data_dir));
        Ok(took)
    }

    /// Stops every replica and drops the database.
    pub(crate) async fn close(mut self) {
        for (mut server, _) in self.servers.drain(..) {
            server.process.kill();
        }
        drop_database(&self.server, &self.database).await;
    }
}

/// Makes a database of the run's own on the PostgreSQL server at `server`: its name.
pub(crate) async fn create_database(server: &str) -> anyhow::Result<String> {
    let database = format!("symbiose_load_{}", uuid::Uuid::now_v7().simple());
    let admin = connect(&format!("{}/postgres", server.trim_end_matches('/'))).await?;
    // The name is ours (letters, digits, `_`): nothing to quote.
    admin
        .batch_execute(&format!("CREATE DATABASE {database}"))
        .await
        .with_context(|| format!("--postgres {server}: creating the database {database}"))?;
    Ok(database)
}

/// Drops the run's `database` on `server`, saying so if it cannot.
pub(crate) async fn drop_database(server: &str, database: &str) {
    match connect(&format!("{}/postgres", server.trim_end_matches('/'))).await {
        Ok(admin) => {
            if let Err(error) =
                admin.batch_execute(&format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)")).await
            {
                eprintln!("dropping the database {database}: {error}");
            }
        }
        Err(error) => eprintln!("dropping the database {database}: {error:#}"),
    }
}

pub(crate) async fn connect(url: &str) -> anyhow::Result<tokio_postgres::Client> {
    let mut config: tokio_postgres::Config =
        url.parse().with_context(|| format!("--postgres: {url} is not a URL"))?;
    config.connect_timeout(Duration::from_secs(CONNECT_TIMEOUT_S));
    let (client, connection) =
        config.connect(tokio_postgres::NoTls).await.with_context(|| format!("connecting to {url}"))?;
    tokio::spawn(connection);
    Ok(client)
}
