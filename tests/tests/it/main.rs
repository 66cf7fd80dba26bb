//! Black-box tests of the standalone server, one binary with a module per area.

mod catalog;
mod directory;
mod health;
mod listings;
mod logistics;
mod matching;
mod metrics;
mod nats;
mod reference;
mod reflection;
mod settlement;
mod standalone;
