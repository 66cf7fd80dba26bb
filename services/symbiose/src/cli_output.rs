//! How the client prints an answer: aligned tables for a person, or with `--output json` the
//! response itself in protobuf's JSON mapping, for a script. (Progress is `progress`'s.)

use std::sync::OnceLock;

use prost_reflect::{DescriptorPool, DynamicMessage, SerializeOptions};

/// How a read command prints its answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// Text for a person: aligned columns, or `field: value` lines.
    #[default]
    Table,
    /// The response message in protobuf's JSON mapping (field names in lowerCamelCase, enums
    /// by name, 64-bit integers as strings, every field present).
    Json,
}

impl Output {
    /// With `--output json`, prints `response` as JSON and returns true: the caller prints
    /// nothing more. Otherwise returns false, for the caller to print its text.
    pub(crate) fn json<M: prost::Message>(self, response: &M) -> anyhow::Result<bool> {
        if self == Output::Table {
            return Ok(false);
        }
        println!("{}", to_json(response)?);
        Ok(true)
    }
}

/// `message` in protobuf's JSON mapping, pretty-printed.
pub(crate) fn to_json<M: prost::Message>(message: &M) -> anyhow::Result<String> {
    let name = full_name::<M>()?;
    let descriptor = pool()?
        .get_message_by_name(&name)
        .ok_or_else(|| anyhow::anyhow!("no message {name} in the descriptor set"))?;
    let dynamic = DynamicMessage::decode(descriptor, message.encode_to_vec().as_slice())?;
    let options = SerializeOptions::new().skip_default_fields(false);
    let mut bytes = Vec::new();
    let mut serializer = serde_json::Serializer::pretty(&mut bytes);
    dynamic.serialize_with_options(&mut serializer, &options)?;
    Ok(String::from_utf8(bytes)?)
}

/// The protobuf name of a generated message: `symbiose_proto::matching::v1::Deal` is
/// `symbiose.matching.v1.Deal` (the crate's modules follow the packages).
fn full_name<M>() -> anyhow::Result<String> {
    let rust_name = std::any::type_name::<M>();
    let path = rust_name
        .strip_prefix("symbiose_proto::")
        .ok_or_else(|| anyhow::anyhow!("{rust_name} is not a message of symbiose_proto"))?;
    Ok(format!("symbiose.{}", path.replace("::", ".")))
}

fn pool() -> anyhow::Result<&'static DescriptorPool> {
    static POOL: OnceLock<Result<DescriptorPool, String>> = OnceLock::new();
    POOL.get_or_init(|| {
        DescriptorPool::decode(symbiose_proto::FILE_DESCRIPTOR_SET).map_err(|error| error.to_string())
    })
    .as_ref()
    .map_err(|error| anyhow::anyhow!("reading the descriptor set: {error}"))
}

/// A table with `header` (none if empty), its columns aligned by display width, without
/// borders. The lists that had columns before keep no header, so their lines stay the same
/// words for the scripts that read them (`--output json` is the way for new ones).
pub(crate) fn table(header: &[&str]) -> comfy_table::Table {
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::NOTHING);
    if !header.is_empty() {
        table.set_header(header.iter().copied());
    }
    table
}

/// Prints `table`, two spaces between columns, none before the first or after the last.
pub(crate) fn print_table(table: &mut comfy_table::Table) {
    for column in table.column_iter_mut() {
        column.set_padding((0, 2));
    }
    for line in table.lines() {
        println!("{}", line.trim_end());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use symbiose_proto::matching::v1 as pb;

    #[test]
    fn messages_print_in_the_json_mapping() {
        let deal = pb::GetDealResponse {
            deal: Some(pb::Deal { deal_id: "b57b".to_owned(), distance_km: 4.7, ..pb::Deal::default() }),
        };
        let json: serde_json::Value = serde_json::from_str(&to_json(&deal).expect("json")).expect("parses");
        assert_eq!(json["deal"]["dealId"], "b57b");
        assert_eq!(json["deal"]["distanceKm"], 4.7);
        assert_eq!(json["deal"]["state"], "DEAL_STATE_UNSPECIFIED", "every field present: {json}");
        assert_eq!(full_name::<pb::Deal>().expect("a name"), "symbiose.matching.v1.Deal");
        assert!(full_name::<String>().is_err());
    }
}
