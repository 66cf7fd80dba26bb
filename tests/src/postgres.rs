//! A PostgreSQL database of its own for each test server, so tests on PostgreSQL share no
//! state, as their data directories share none.

use std::time::Duration;

use anyhow::Context as _;
use symbiose_kit::ServerConfig;
use symbiose_kit::config::{POSTGRES_URL, STORE, StoreBackend};

/// The server test databases are created on, through its `postgres` database: the local
/// server, its superuser trusted on the loopback interface (as in CI's container).
pub const POSTGRES_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Longest wait to connect to PostgreSQL, to create or drop a database.
const CONNECT_TIMEOUT_MS: u64 = 5_000;

/// A database `symbiose_test_<random>`, dropped (best effort, its connections ended) when
/// this is dropped.
#[derive(Debug)]
pub struct TestDatabase {
    name: String,
}

impl TestDatabase {
    /// Creates an empty database. Fails if PostgreSQL does not answer at
    /// [`POSTGRES_ADMIN_URL`].
    pub async fn create() -> anyhow::Result<TestDatabase> {
        let name = format!("symbiose_test_{}", uuid::Uuid::now_v7().simple());
        let admin = admin().await?;
        // The name is ours (letters, digits, `_`): nothing to quote.
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .with_context(|| format!("creating the database {name}"))?;
        Ok(TestDatabase { name })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The database's URL.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:5432/{}", self.name)
    }

    /// The database as a server's configuration names it, parsed as the server parses its
    /// environment.
    pub fn store_backend(&self) -> anyhow::Result<StoreBackend> {
        let url = self.url();
        let config = ServerConfig::from_lookup(|key| match key {
            STORE => Some("postgres".to_owned()),
            POSTGRES_URL => Some(url.clone()),
            _ => None,
        })?;
        Ok(config.store)
    }
}

impl TestDatabase {
    /// The checkpoint `name` the store keeps in this database, as text, if saved.
    pub async fn checkpoint(&self, name: &str) -> anyhow::Result<Option<String>> {
        let mut config: tokio_postgres::Config = self.url().parse().context("the database URL")?;
        config.connect_timeout(Duration::from_millis(CONNECT_TIMEOUT_MS));
        let (client, connection) = config
            .connect(tokio_postgres::NoTls)
            .await
            .with_context(|| format!("connecting to {}", self.name))?;
        tokio::spawn(connection);
        let row = client
            .query_opt("SELECT value FROM symbiose_checkpoints WHERE name = $1", &[&name])
            .await
            .context("reading a checkpoint")?;
        Ok(row.map(|row| String::from_utf8_lossy(&row.get::<_, Vec<u8>>(0)).into_owned()))
    }
}

impl Drop for TestDatabase {
    /// Drops the database on a thread of its own (a drop cannot await, and may run outside a
    /// runtime or on its last turn), ending the connections still open to it.
    fn drop(&mut self) {
        let name = std::mem::take(&mut self.name);
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(async {
                admin().await?.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await?;
                anyhow::Ok(())
            })
        })
        .join();
        if let Ok(Err(error)) = dropped {
            eprintln!("the test database was not dropped: {error:#}");
        }
    }
}

/// A connection to the `postgres` database, driven by a task of the current runtime.
async fn admin() -> anyhow::Result<tokio_postgres::Client> {
    let mut config: tokio_postgres::Config = POSTGRES_ADMIN_URL.parse().context("the admin URL")?;
    config.connect_timeout(Duration::from_millis(CONNECT_TIMEOUT_MS));
    let (client, connection) = config
        .connect(tokio_postgres::NoTls)
        .await
        .with_context(|| format!("connecting to PostgreSQL at {POSTGRES_ADMIN_URL}"))?;
    tokio::spawn(connection);
    Ok(client)
}
