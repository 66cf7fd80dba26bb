//! Black-box tests of the standalone server, one binary with a module per area.

mod bad_bodies;
mod browser;
mod catalog;
mod contention;
mod correlation;
mod dashboard;
mod dependencies;
mod directory;
mod field_paths;
mod fixture_log;
mod health;
mod import;
mod isolation;
mod listings;
mod logistics;
mod matching;
mod metrics;
mod nats;
mod passports;
mod reference;
mod reflection;
mod request_ids;
mod settlement;
mod standalone;
mod territory;
mod wire;
