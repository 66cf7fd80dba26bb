//! Partners generate their clients from `proto/`, so every element of the contract says what it
//! means in a leading comment: each service, RPC, message, field, enum and enum value.
//!
//! The descriptors the crate embeds keep their source info (protox compiles with it), so the
//! comments are read from there rather than by parsing the files again.

use prost::Message as _;
use prost_types::{DescriptorProto, EnumDescriptorProto, FileDescriptorProto, FileDescriptorSet};

// Field numbers of `descriptor.proto`: the steps of a source location's path.
const FILE_MESSAGE_TYPE: i32 = 4;
const FILE_ENUM_TYPE: i32 = 5;
const FILE_SERVICE: i32 = 6;
const MESSAGE_FIELD: i32 = 2;
const MESSAGE_NESTED_TYPE: i32 = 3;
const MESSAGE_ENUM_TYPE: i32 = 4;
const ENUM_VALUE: i32 = 2;
const SERVICE_METHOD: i32 = 2;

/// The packages this repository owns; imported files (`google.protobuf`) are not ours to document.
const OWN_PACKAGE_PREFIX: &str = "symbiose.";

/// One element of the contract: `kind full.name`, and where the source info describes it.
type Element = (String, Vec<i32>);

#[test]
fn every_element_of_the_contract_has_a_leading_comment() {
    let set =
        FileDescriptorSet::decode(symbiose_proto::FILE_DESCRIPTOR_SET).expect("the embedded descriptors");
    let mut checked = 0;
    let mut undocumented = Vec::new();
    for file in set.file.iter().filter(|file| file.package().starts_with(OWN_PACKAGE_PREFIX)) {
        let info =
            file.source_code_info.as_ref().unwrap_or_else(|| panic!("{} has no source info", file.name()));
        for (name, path) in elements_of(file) {
            checked += 1;
            let documented = info
                .location
                .iter()
                .find(|location| location.path == path)
                .is_some_and(|location| !location.leading_comments().trim().is_empty());
            if !documented {
                undocumented.push(name);
            }
        }
    }
    assert!(checked > 0, "no element of the contract was checked");
    assert!(
        undocumented.is_empty(),
        "{} of {checked} elements have no leading comment:\n{}",
        undocumented.len(),
        undocumented.join("\n")
    );
}

/// Every service, RPC, message, field, enum and enum value of `file`, in the file's order.
fn elements_of(file: &FileDescriptorProto) -> Vec<Element> {
    let mut elements = Vec::new();
    let package = file.package();
    for (index, service) in file.service.iter().enumerate() {
        let path = vec![FILE_SERVICE, index as i32];
        let name = format!("{package}.{}", service.name());
        elements.push((format!("service {name}"), path.clone()));
        for (index, method) in service.method.iter().enumerate() {
            let method_path = [path.as_slice(), &[SERVICE_METHOD, index as i32]].concat();
            elements.push((format!("rpc {name}.{}", method.name()), method_path));
        }
    }
    for (index, message) in file.message_type.iter().enumerate() {
        message_elements(message, package, vec![FILE_MESSAGE_TYPE, index as i32], &mut elements);
    }
    for (index, enumeration) in file.enum_type.iter().enumerate() {
        enum_elements(enumeration, package, vec![FILE_ENUM_TYPE, index as i32], &mut elements);
    }
    elements
}

/// The elements of `message` (named under `scope`, at `path`) and of the types nested in it.
fn message_elements(message: &DescriptorProto, scope: &str, path: Vec<i32>, elements: &mut Vec<Element>) {
    // A map field's entry type is written by the compiler, not in the file.
    if message.options.as_ref().is_some_and(|options| options.map_entry()) {
        return;
    }
    let name = format!("{scope}.{}", message.name());
    elements.push((format!("message {name}"), path.clone()));
    for (index, field) in message.field.iter().enumerate() {
        let field_path = [path.as_slice(), &[MESSAGE_FIELD, index as i32]].concat();
        elements.push((format!("field {name}.{}", field.name()), field_path));
    }
    for (index, nested) in message.nested_type.iter().enumerate() {
        message_elements(
            nested,
            &name,
            [path.as_slice(), &[MESSAGE_NESTED_TYPE, index as i32]].concat(),
            elements,
        );
    }
    for (index, enumeration) in message.enum_type.iter().enumerate() {
        enum_elements(
            enumeration,
            &name,
            [path.as_slice(), &[MESSAGE_ENUM_TYPE, index as i32]].concat(),
            elements,
        );
    }
}

fn enum_elements(
    enumeration: &EnumDescriptorProto,
    scope: &str,
    path: Vec<i32>,
    elements: &mut Vec<Element>,
) {
    // Values are named under their enum (protobuf scopes them beside it), where a reader looks.
    let name = format!("{scope}.{}", enumeration.name());
    elements.push((format!("enum {name}"), path.clone()));
    for (index, value) in enumeration.value.iter().enumerate() {
        let value_path = [path.as_slice(), &[ENUM_VALUE, index as i32]].concat();
        elements.push((format!("enum value {name}.{}", value.name()), value_path));
    }
}
