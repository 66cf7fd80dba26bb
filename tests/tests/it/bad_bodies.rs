//! A request body that does not decode is bad input on every RPC, health and reflection
//! included: `INVALID_ARGUMENT`, never `INTERNAL`. The RPCs come from the descriptors the
//! server serves, so a new one is covered without a change here.

use std::num::NonZeroU32;

use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor};
use symbiose_tests::TestServer;
use tonic::Code;

use crate::wire::{self, frame};

/// A field number no request uses: prost skips it as unknown, checking it as it goes.
const UNKNOWN_FIELD_NUMBER: u32 = 1000;
/// Groups nested deeper than prost's recursion limit (100).
const NESTED_GROUPS: usize = 150;
/// How deep the search for a string field goes into a request's messages.
const STRING_SEARCH_DEPTH_MAX: usize = 4;

const WIRE_VARINT: u32 = 0;
const WIRE_LENGTH_DELIMITED: u32 = 2;
const WIRE_START_GROUP: u32 = 3;
const WIRE_END_GROUP: u32 = 4;
const WIRE_FIXED32: u32 = 5;

#[tokio::test]
async fn every_rpc_answers_an_undecodable_body_with_invalid_argument() {
    // Hundreds of bodies as one caller, as fast as the server answers: the rate limit (tested on
    // its own) would answer most of them RESOURCE_EXHAUSTED before decoding them.
    let server = TestServer::start_with(|config| {
        config.rate_limit_per_second = NonZeroU32::new(100_000).expect("non-zero");
        config.rate_limit_burst = NonZeroU32::new(1_000_000).expect("non-zero");
    })
    .await
    .expect("server");
    let channel = server.channel().await.expect("channel");
    let mut pool = wire::pool();
    // Health and reflection are served by every server, with codecs of their own crates.
    for served in [
        tonic_health::pb::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
    ] {
        pool.decode_file_descriptor_set(served).expect("a descriptor set");
    }
    let rpcs = wire::rpcs(&pool);
    assert!(rpcs.iter().any(|rpc| rpc.path == "/grpc.health.v1.Health/Check"), "health is walked");
    assert!(rpcs.iter().any(|rpc| rpc.path.ends_with("ServerReflection/ServerReflectionInfo")));
    assert!(
        rpcs.iter().any(|rpc| rpc.path == "/symbiose.settlement.v1.SettlementService/RecordDeposit"),
        "the Symbiose RPCs are walked"
    );

    let mut wrong = Vec::new();
    for rpc in &rpcs {
        for (case, body) in bad_bodies(&rpc.input, rpc.streams_requests) {
            let answer = wire::call(&channel, &rpc.path, Some(&server.operator_token), body).await;
            if answer.status.code() != Code::InvalidArgument {
                wrong.push(format!(
                    "{} ({case}): {:?} {:?}",
                    rpc.path,
                    answer.status.code(),
                    answer.status.message()
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "undecodable bodies not answered INVALID_ARGUMENT:\n{}", wrong.join("\n"));
}

/// Bodies that do not decode as `input`, each with what is wrong with it.
fn bad_bodies(input: &MessageDescriptor, streams_requests: bool) -> Vec<(String, Vec<u8>)> {
    let mut bodies = Vec::new();
    if let Some(path) = string_field_path(input, 0) {
        let names: Vec<&str> = path.iter().map(FieldDescriptor::name).collect();
        bodies.push((format!("invalid UTF-8 in {}", names.join(".")), frame(&invalid_utf8_at(&path))));
    }

    let mut truncated = key(UNKNOWN_FIELD_NUMBER, WIRE_LENGTH_DELIMITED);
    truncated.extend([10, b'a']);
    bodies.push(("a field longer than the message".to_owned(), frame(&truncated)));

    if let Some(field) = input.fields().next() {
        let wire_type = match field.kind() {
            Kind::Double | Kind::Fixed64 | Kind::Sfixed64 => WIRE_VARINT,
            Kind::Float | Kind::Fixed32 | Kind::Sfixed32 => WIRE_VARINT,
            Kind::String | Kind::Bytes | Kind::Message(_) => WIRE_VARINT,
            // Varints: a repeated one also takes the packed (length-delimited) form.
            _ => WIRE_FIXED32,
        };
        let mut wrong_type = key(field.number(), wire_type);
        wrong_type.extend(if wire_type == WIRE_VARINT { vec![1] } else { vec![1, 0, 0, 0] });
        bodies.push((format!("a wrong wire type for {}", field.name()), frame(&wrong_type)));
    }

    let mut nested = Vec::new();
    for _ in 0..NESTED_GROUPS {
        nested.extend(key(UNKNOWN_FIELD_NUMBER, WIRE_START_GROUP));
    }
    for _ in 0..NESTED_GROUPS {
        nested.extend(key(UNKNOWN_FIELD_NUMBER, WIRE_END_GROUP));
    }
    bodies.push((format!("{NESTED_GROUPS} nested groups"), frame(&nested)));

    let mut cut = frame(&[0; 16]);
    cut.truncate(cut.len() - 8);
    bodies.push(("a frame cut short".to_owned(), cut));
    // A stream of requests may hold none; a single request may not.
    if !streams_requests {
        bodies.push(("no message".to_owned(), Vec::new()));
    }
    bodies
}

/// The path to the first string field of `message`, looking into its messages.
fn string_field_path(message: &MessageDescriptor, depth: usize) -> Option<Vec<FieldDescriptor>> {
    if depth > STRING_SEARCH_DEPTH_MAX {
        return None;
    }
    for field in message.fields() {
        if field.kind() == Kind::String {
            return Some(vec![field]);
        }
    }
    for field in message.fields() {
        if let Kind::Message(inner) = field.kind()
            && let Some(mut path) = string_field_path(&inner, depth + 1)
        {
            path.insert(0, field);
            return Some(path);
        }
    }
    None
}

/// A message with bytes that are not UTF-8 in the string field at the end of `path`.
fn invalid_utf8_at(path: &[FieldDescriptor]) -> Vec<u8> {
    let (last, outer) = path.split_last().expect("a path has a field");
    let mut encoded = key(last.number(), WIRE_LENGTH_DELIMITED);
    encoded.extend([2, 0xff, 0xfe]);
    for field in outer.iter().rev() {
        let mut wrapped = key(field.number(), WIRE_LENGTH_DELIMITED);
        wrapped.extend(varint(encoded.len() as u64));
        wrapped.extend(encoded);
        encoded = wrapped;
    }
    encoded
}

fn key(number: u32, wire_type: u32) -> Vec<u8> {
    varint(u64::from(number << 3 | wire_type))
}

fn varint(mut value: u64) -> Vec<u8> {
    let mut bytes = Vec::new();
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            bytes.push(byte);
            return bytes;
        }
        bytes.push(byte | 0x80);
    }
}
