//! Layer rules and tidy checks over the source tree: who may import whom (STYLE.md), which
//! external crates only one layer may name (chitchat: gossip, openraft: replication), a `//!`
//! doc at the top of every file, `unsafe` only in `storage/mmap.rs`, no `unwrap()` outside tests.

use std::fs;
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).expect("source dir is readable") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files.sort();
    files
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn is_test_file(path: &Path) -> bool {
    let in_test_dir = path
        .parent()
        .and_then(|dir| dir.file_name())
        .and_then(|n| n.to_str())
        .is_some_and(|dir| dir.ends_with("_tests"));
    if in_test_dir {
        return true;
    }
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    name.ends_with("_tests.rs")
        || name == "tests.rs"
        || name == "proptests.rs"
        || name == "test_batches.rs"
}

/// The code of a file before its `#[cfg(test)]` module, which by convention comes last.
fn non_test_code(text: &str) -> &str {
    text.find("#[cfg(test)]\nmod tests")
        .map_or(text, |at| &text[..at])
}

#[test]
fn every_source_file_starts_with_a_module_doc() {
    for file in rust_files(&src()) {
        let text = fs::read_to_string(&file).unwrap();
        assert!(
            text.starts_with("//!"),
            "{} must start with a `//!` doc line",
            file.display()
        );
    }
}

/// (layer folder, crate paths it must not name)
const FORBIDDEN: &[(&str, &[&str])] = &[
    (
        "storage",
        &[
            "tokio",
            "kafka_protocol",
            "crate::broker",
            "crate::kafka",
            "crate::server",
            "crate::config",
            "openraft",
        ],
    ),
    (
        "broker",
        &[
            "kafka_protocol",
            "crate::kafka",
            "crate::server",
            "crate::config",
            "tokio::net",
            "openraft",
        ],
    ),
    (
        "kafka",
        &[
            "crate::storage",
            "crate::server",
            "crate::config",
            "std::fs",
            "openraft",
        ],
    ),
    (
        "replication",
        &[
            "kafka_protocol",
            "crate::kafka",
            "crate::server",
            "crate::config",
            "crate::broker",
        ],
    ),
    (
        "cluster",
        &[
            "kafka_protocol",
            "crate::kafka",
            "crate::server",
            "crate::config",
            "crate::broker",
        ],
    ),
    ("server", &["crate::storage", "crate::config"]),
    // The admin commands reach the cluster only through kafka::client's plain types.
    (
        "tool",
        &[
            "kafka_protocol",
            "crate::broker",
            "crate::server",
            "crate::storage",
            "crate::replication",
            "crate::cluster",
            "crate::metadata",
        ],
    ),
    (
        "config",
        &["crate::broker", "crate::kafka", "crate::server"],
    ),
];

#[test]
fn layers_import_only_what_style_allows() {
    for (layer, forbidden) in FORBIDDEN {
        for file in rust_files(&src().join(layer)) {
            let text = fs::read_to_string(&file).unwrap();
            for line in text
                .lines()
                .filter(|l| l.trim_start().starts_with("use ") || l.contains("::"))
            {
                for path in *forbidden {
                    let named = line.contains(&format!("{path}::"))
                        || line.contains(&format!("use {path};"));
                    assert!(
                        !named,
                        "{} (layer {layer}) must not use {path}: {line}",
                        file.display()
                    );
                }
            }
        }
    }
}

/// (layer folder, the only crate-internal modules it may name): stricter than `FORBIDDEN`.
const ONLY_ALLOWED: &[(&str, &[&str])] = &[
    ("gossip", &["limits", "gossip"]),
    ("metadata", &["limits", "metadata"]),
];

#[test]
fn layers_with_an_allow_list_name_only_those_crate_modules() {
    for (layer, allowed) in ONLY_ALLOWED {
        for file in rust_files(&src().join(layer)) {
            let text = fs::read_to_string(&file).unwrap();
            for line in text.lines() {
                for (at, _) in line.match_indices("crate::") {
                    let module: String = line[at + "crate::".len()..]
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    assert!(
                        allowed.contains(&module.as_str()),
                        "{} (layer {layer}) may name only {allowed:?} of the crate: {line}",
                        file.display()
                    );
                }
            }
        }
    }
}

/// (external crate, the only layer folder that may name it)
const CONFINED: &[(&str, &str)] = &[("chitchat", "gossip"), ("openraft", "replication")];

#[test]
fn confined_crates_are_named_only_by_their_layer() {
    for (krate, layer) in CONFINED {
        let home = src().join(layer);
        for file in rust_files(&src())
            .into_iter()
            .filter(|f| !f.starts_with(&home))
        {
            let text = fs::read_to_string(&file).unwrap();
            for line in text.lines() {
                let named = line.contains(&format!("{krate}::"))
                    || line.contains(&format!("use {krate};"))
                    || line.contains(&format!("use {krate} "));
                assert!(
                    !named,
                    "{} names {krate}, which only {layer}/ may: {line}",
                    file.display()
                );
            }
        }
    }
}

#[test]
fn unsafe_code_lives_only_in_storage_mmap() {
    for file in rust_files(&src()) {
        if file.ends_with("storage/mmap.rs") {
            continue;
        }
        let text = fs::read_to_string(&file).unwrap();
        assert!(
            !text.contains("unsafe "),
            "{} contains unsafe code",
            file.display()
        );
    }
}

#[test]
fn no_unwrap_outside_tests() {
    for file in rust_files(&src()).into_iter().filter(|f| !is_test_file(f)) {
        let text = fs::read_to_string(&file).unwrap();
        assert!(
            !non_test_code(&text).contains(".unwrap()"),
            "{} calls unwrap() outside tests",
            file.display()
        );
    }
}

/// With `authorization.enabled`, every request is checked: each handler of a Kafka API asks the
/// authorizer (`ctx.allowed*`), except the APIs Kafka serves to anyone.
#[test]
fn every_handler_authorizes_its_request() {
    // ApiVersions and the SASL exchange come before authentication; DescribeCluster is open
    // in Kafka too; Produce v0-2 is refused as unsupported whatever the principal.
    const OPEN: &[&str] = &[
        "api_versions.rs",
        "describe_cluster.rs",
        "sasl.rs",
        "produce_legacy.rs",
        // The module doc shows the handler signature.
        "mod.rs",
    ];
    let dir = src().join("kafka").join("handlers");
    for file in rust_files(&dir) {
        let name = file
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if is_test_file(&file) || OPEN.contains(&name) {
            continue;
        }
        let text = fs::read_to_string(&file).unwrap();
        let code = non_test_code(&text);
        let is_handler =
            code.contains("pub(crate) async fn handle(") || code.contains("pub(crate) fn respond(");
        if is_handler {
            assert!(
                code.contains("allowed") || code.contains("config_access"),
                "{} handles a Kafka API without asking the authorizer (ctx.allowed*)",
                file.display()
            );
        }
    }
}
