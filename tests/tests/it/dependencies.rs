//! The dependency rule of the workspace, read from `cargo metadata`: a service crate
//! (`services/*`) depends on contracts (`contracts/*`) and libraries (`libs/*`), never on
//! another service; a contract depends only on contracts and libraries; a library on libraries.
//! Only the composition root, `services/symbiose` (the one-process server, the services alone,
//! the client), puts services together, and the black-box tests (`tests`) call them all.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layer {
    Library,
    Contract,
    Service,
    Composition,
}

fn layer(root: &Path, manifest: &Path) -> Option<Layer> {
    let relative = manifest.strip_prefix(root).ok()?;
    let mut parts = relative.iter().map(|part| part.to_str().unwrap_or_default());
    match (parts.next()?, parts.next()?) {
        ("libs", _) => Some(Layer::Library),
        ("contracts", _) => Some(Layer::Contract),
        ("services", "symbiose") => Some(Layer::Composition),
        ("services", _) => Some(Layer::Service),
        _ => None,
    }
}

fn allowed(from: Layer, to: Layer) -> bool {
    match from {
        Layer::Library => to == Layer::Library,
        Layer::Contract => matches!(to, Layer::Library | Layer::Contract),
        Layer::Service => matches!(to, Layer::Library | Layer::Contract),
        Layer::Composition => true,
    }
}

/// Each workspace crate's layer and the workspace crates it depends on (any kind).
fn workspace_graph() -> (BTreeMap<String, Layer>, Vec<(String, String)>) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace root").to_owned();
    let output = std::process::Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
        .current_dir(&root)
        .output()
        .expect("cargo metadata runs");
    assert!(output.status.success(), "cargo metadata: {}", String::from_utf8_lossy(&output.stderr));
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).expect("cargo metadata's JSON");
    let packages = metadata["packages"].as_array().expect("packages");
    let mut layers = BTreeMap::new();
    for package in packages {
        let name = package["name"].as_str().expect("a name").to_owned();
        let manifest = PathBuf::from(package["manifest_path"].as_str().expect("a manifest path"));
        if let Some(layer) = layer(&root, &manifest) {
            layers.insert(name, layer);
        }
    }
    let mut edges = Vec::new();
    for package in packages {
        let name = package["name"].as_str().expect("a name");
        for dependency in package["dependencies"].as_array().expect("dependencies") {
            let dependency = dependency["name"].as_str().expect("a dependency's name");
            if layers.contains_key(dependency) {
                edges.push((name.to_owned(), dependency.to_owned()));
            }
        }
    }
    (layers, edges)
}

#[test]
fn no_service_crate_depends_on_another_and_contracts_depend_on_no_service() {
    let (layers, edges) = workspace_graph();
    let services: Vec<&String> =
        layers.iter().filter(|(_, layer)| **layer == Layer::Service).map(|(name, _)| name).collect();
    assert!(services.len() >= 6, "the service crates are found: {services:?}");
    assert!(
        layers.values().filter(|layer| **layer == Layer::Contract).count() >= 4,
        "a contract per context: {layers:?}"
    );
    let broken: Vec<String> = edges
        .iter()
        .filter(|(from, to)| match (layers.get(from), layers.get(to)) {
            (Some(from), Some(to)) => !allowed(*from, *to),
            _ => false,
        })
        .map(|(from, to)| format!("{from} ({:?}) -> {to} ({:?})", layers[from], layers[to]))
        .collect();
    assert!(broken.is_empty(), "dependencies the rule forbids:\n{}", broken.join("\n"));
    // The composition root is what puts the services together.
    for service in services {
        assert!(
            edges.iter().any(|(from, to)| from == "symbiose" && to == service),
            "services/symbiose puts {service} together"
        );
    }
}

#[test]
fn the_rule_refuses_a_service_on_another_and_a_contract_on_a_service() {
    assert!(!allowed(Layer::Service, Layer::Service));
    assert!(!allowed(Layer::Contract, Layer::Service));
    assert!(!allowed(Layer::Library, Layer::Contract));
    assert!(allowed(Layer::Service, Layer::Contract));
    assert!(allowed(Layer::Composition, Layer::Service));
}
