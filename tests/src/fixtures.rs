//! Values the black-box tests build again and again: times relative to now, quantities of
//! pallets, and a token of the platform's services.

use std::time::{SystemTime, UNIX_EPOCH};

use symbiose_domain::Role;
use symbiose_kit::auth::{Claims, TokenAuthority};
use symbiose_proto::common::v1 as common;
use uuid::Uuid;

use crate::TestServer;

/// Validity of a service token made for a test, in seconds.
const SERVICE_TOKEN_TTL_S: u64 = 3600;

pub fn now_s() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_secs() as i64)
}

/// A timestamp `seconds_from_now` away (negative for the past).
pub fn at(seconds_from_now: i64) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: now_s() + seconds_from_now, nanos: 0 }
}

/// `count` pallets, estimated.
pub fn pallets(count: i64) -> common::Quantity {
    common::Quantity {
        amount_milli: count * 1000,
        unit: common::Unit::Pallet.into(),
        basis: common::QuantityBasis::Estimated.into(),
    }
}

/// A token with the service role, as the platform's matching service holds: signed with the
/// server's own key, read from its data directory.
pub fn service_token(server: &TestServer) -> anyhow::Result<String> {
    let (key, _) = TokenAuthority::load_or_create(&server.config.data_dir.join("keys"))?;
    let now_s = now_s() as u64;
    Ok(key.issue(&Claims {
        organization_id: Uuid::nil(),
        roles: vec![Role::Service],
        issued_at_s: now_s,
        expires_at_s: now_s + SERVICE_TOKEN_TTL_S,
        token_id: Uuid::now_v7(),
    }))
}
