//! The generated protobuf messages and gRPC stubs of every Symbiose contract in `proto/`.
//!
//! This is the only crate that compiles the wire types. Domain crates never depend on it:
//! services convert at their edges (gRPC handlers and the event codec), with the conversions
//! of the shared value messages in [`convert`].

#![allow(
    missing_debug_implementations,
    unreachable_pub,
    clippy::large_enum_variant,
    clippy::doc_lazy_continuation
)]

/// The encoded `FileDescriptorSet` of every file in `proto/`, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/symbiose_descriptor.bin"));

pub mod convert;

pub mod catalog {
    pub mod v1 {
        tonic::include_proto!("symbiose.catalog.v1");
    }
}

pub mod common {
    pub mod v1 {
        tonic::include_proto!("symbiose.common.v1");
    }
}

pub mod listings {
    pub mod v1 {
        tonic::include_proto!("symbiose.listings.v1");
    }
}

pub mod logistics {
    pub mod v1 {
        tonic::include_proto!("symbiose.logistics.v1");
    }
}

pub mod matching {
    pub mod v1 {
        tonic::include_proto!("symbiose.matching.v1");
    }
}

pub mod settlement {
    pub mod v1 {
        tonic::include_proto!("symbiose.settlement.v1");
    }
}

pub mod passports {
    pub mod v1 {
        tonic::include_proto!("symbiose.passports.v1");
    }
}

pub mod territory {
    pub mod v1 {
        tonic::include_proto!("symbiose.territory.v1");
    }
}

pub mod reference {
    pub mod v1 {
        tonic::include_proto!("symbiose.reference.v1");
    }
}
