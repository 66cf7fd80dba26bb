//! Tests of the feed against a real `nats-server` (started per test by
//! `symbiose_feed::testing::NatsServer`, skipped with a note where none is installed) and a
//! real store on disk.

mod consumer;
mod end_to_end;
mod faults;
mod power_loss;
mod quiet;
mod support;
mod trace;
