//! The store's tables, created and migrated by the store itself at connect.
//!
//! Each migration is applied once, in order, and recorded in `symbiose_schema_migrations`, in
//! one transaction under an advisory lock: two processes connecting together to a new
//! database migrate it once, the second waiting for the first and then finding nothing to do.
//! A database migrated by newer code than this is refused rather than written with the wrong
//! idea of its tables. Migrations are never edited once released: a change is a new one.

use tokio_postgres::Client;

use super::pg_error;
use crate::model::StoreError;

/// The key of the advisory lock migrations take ("symbiose" in ASCII).
const MIGRATION_LOCK_KEY: i64 = 0x7379_6d62_696f_7365;

/// `(version, name, sql)`, versions from 1 without gaps.
const MIGRATIONS: &[(i32, &str, &str)] = &[
    (
        1,
        "the log, streams and events",
        "
    -- One row: the position the next event will take. Every writing transaction locks it
    -- first, so positions are handed out in commit order.
    CREATE TABLE symbiose_log (
        id boolean PRIMARY KEY DEFAULT true CHECK (id),
        next_position bigint NOT NULL CHECK (next_position >= 0)
    );
    INSERT INTO symbiose_log (id, next_position) VALUES (true, 0);

    -- A stream exists once it has an event; a deleted one keeps its events.
    CREATE TABLE symbiose_streams (
        name text PRIMARY KEY,
        last_version bigint NOT NULL CHECK (last_version >= 0),
        deleted boolean NOT NULL DEFAULT false
    );

    -- batch_position: the position of the first event of the append that wrote it, so a
    -- repeated append finds the whole original batch (a range of the primary key: a batch's
    -- positions are contiguous, so it needs no index of its own). Event ids are unique in the
    -- whole log.
    CREATE TABLE symbiose_events (
        position bigint PRIMARY KEY CHECK (position >= 0),
        batch_position bigint NOT NULL,
        stream text NOT NULL,
        version bigint NOT NULL CHECK (version >= 0),
        event_id uuid NOT NULL UNIQUE,
        event_type text NOT NULL,
        metadata bytea NOT NULL,
        payload bytea NOT NULL,
        recorded_at timestamptz NOT NULL,
        UNIQUE (stream, version)
    );
    ",
    ),
    (
        2,
        "consumer checkpoints",
        "
    -- Named progress of the consumers of this database's log (and of the feeds its services
    -- follow), kept beside the events so a process that moves finds them where its log is.
    CREATE TABLE symbiose_checkpoints (
        name text PRIMARY KEY,
        value bytea NOT NULL,
        saved_at timestamptz NOT NULL DEFAULT now()
    );
    ",
    ),
    (
        3,
        "leases and the vault's keys",
        "
    -- Work that runs once for the whole platform (a relay, the imports, the reactors) runs
    -- under a lease: its holder, until when, and how many times it changed hands. Deadlines
    -- are the database's clock.
    CREATE TABLE symbiose_leases (
        name text PRIMARY KEY,
        holder text NOT NULL,
        expires_at timestamptz NOT NULL,
        generation bigint NOT NULL CHECK (generation >= 1),
        taken_at timestamptz NOT NULL
    );

    -- The keys personal data is sealed with, one per data subject, outside the log: erasing
    -- the data deletes the key. Shared by every replica of the service that seals.
    CREATE TABLE symbiose_vault_keys (
        subject uuid PRIMARY KEY,
        key bytea NOT NULL CHECK (length(key) = 32),
        created_at timestamptz NOT NULL DEFAULT now()
    );
    ",
    ),
    (
        4,
        "read models' snapshots",
        "
    -- A read model's state after the event at `position`, as the read model encoded it, so a
    -- replica catches up from there instead of from the first event. Only a cache: dropping a
    -- row makes the next start replay the log.
    CREATE TABLE symbiose_snapshots (
        name text PRIMARY KEY,
        position bigint NOT NULL CHECK (position >= 0),
        body bytea NOT NULL,
        saved_at timestamptz NOT NULL DEFAULT now()
    );
    ",
    ),
];

/// The schema version this code reads and writes.
pub(super) fn current_version() -> i32 {
    MIGRATIONS.last().map_or(0, |(version, _, _)| *version)
}

/// Brings the database's schema to [`current_version`], once, whoever else connects.
pub(super) async fn migrate(client: &mut Client) -> Result<(), StoreError> {
    let error = |context: &'static str| move |error: tokio_postgres::Error| pg_error(context, &error);
    let transaction = client.transaction().await.map_err(error("starting the migration"))?;
    transaction
        .execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK_KEY])
        .await
        .map_err(error("taking the migration lock"))?;
    transaction
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS symbiose_schema_migrations (
                version integer PRIMARY KEY,
                name text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )",
        )
        .await
        .map_err(error("creating the migrations table"))?;
    let applied: i32 = transaction
        .query_one("SELECT coalesce(max(version), 0) FROM symbiose_schema_migrations", &[])
        .await
        .map_err(error("reading the schema version"))?
        .get(0);
    if applied > current_version() {
        return Err(StoreError::Failed(format!(
            "the database's event store schema is at version {applied}, newer than this code's {}",
            current_version()
        )));
    }
    for (version, name, sql) in MIGRATIONS.iter().filter(|(version, _, _)| *version > applied) {
        transaction.batch_execute(sql).await.map_err(error("applying a migration"))?;
        transaction
            .execute(
                "INSERT INTO symbiose_schema_migrations (version, name) VALUES ($1, $2)",
                &[version, name],
            )
            .await
            .map_err(error("recording a migration"))?;
        tracing::info!(version, name, "event store schema migrated");
    }
    transaction.commit().await.map_err(error("committing the migration"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_count_from_one_without_gaps() {
        for (index, (version, _, _)) in MIGRATIONS.iter().enumerate() {
            assert_eq!(*version as usize, index + 1);
        }
    }
}
