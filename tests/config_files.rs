//! Config files shipped in the repo load through the real loader and match the documented values,
//! so they cannot drift from the code. Environment is injected empty; the process env is not read.

use std::path::{Path, PathBuf};

use tidelog::config::{self, CliOverrides, Config};

const NO_ENV: [(&str, &str); 0] = [];

fn repo_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(name)
}

#[test]
fn example_config_loads_and_equals_the_defaults() {
    let path = repo_file("broker.example.yaml");
    let loaded = config::load_with_env(Some(&path), NO_ENV, &CliOverrides::default())
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    assert_eq!(
        loaded.redacted_yaml(),
        Config::default().redacted_yaml(),
        "broker.example.yaml must show every default"
    );
    assert_eq!(loaded, Config::default());
}

#[test]
fn example_config_names_every_key_with_a_comment() {
    let text = std::fs::read_to_string(repo_file("broker.example.yaml")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    for key in config::KEYS {
        let leaf = key.rsplit('.').next().unwrap();
        let depth = key.matches('.').count();
        let indent = "  ".repeat(depth);
        let line_idx = lines
            .iter()
            .position(|line| line.starts_with(&format!("{indent}{leaf}: ")))
            .unwrap_or_else(|| panic!("broker.example.yaml lacks `{key}`"));
        let above = line_idx.checked_sub(1).map(|idx| lines[idx].trim_start());
        assert!(
            above.is_some_and(|line| line.starts_with('#')),
            "`{key}` in broker.example.yaml has no comment above it"
        );
    }
}

#[test]
fn example_config_with_env_and_flags_applies_precedence() {
    let path = repo_file("broker.example.yaml");
    let env = [
        ("TIDELOG_LOG__RETENTION_MS", "-1"),
        ("TIDELOG_NODE_ID", "2"),
    ];
    let overrides = CliOverrides {
        node_id: Some(3),
        listen: Some("127.0.0.1:0".parse().unwrap()),
        ..CliOverrides::default()
    };
    let loaded = config::load_with_env(Some(&path), env, &overrides).unwrap();
    assert!(loaded.redacted_yaml().contains("retention_ms: -1"));
    assert_eq!(loaded.node_id(), 3);
    assert_eq!(loaded.kafka_bind(), "127.0.0.1:0".parse().unwrap());
    assert_eq!(loaded.kafka_advertised(), None);
}

#[test]
fn example_config_with_cluster_flags_turns_cluster_mode_on() {
    let path = repo_file("broker.example.yaml");
    let env = [("TIDELOG_CLUSTER__SEEDS", "b1:9093, b2:9093")];
    let overrides = CliOverrides {
        cluster_listen: Some("127.0.0.1:9093".parse().unwrap()),
        bootstrap_expect: Some(3),
        ..CliOverrides::default()
    };
    let loaded = config::load_with_env(Some(&path), env, &overrides).unwrap();
    let printed = loaded.redacted_yaml();
    for line in [
        "  listen: 127.0.0.1:9093",
        "  - b1:9093",
        "  - b2:9093",
        "  bootstrap_expect: 3",
    ] {
        assert!(
            printed.lines().any(|l| l == line),
            "{line:?} in:\n{printed}"
        );
    }

    // The example's cluster keys are all defaults, so the seeds alone are refused.
    let error = config::load_with_env(Some(&path), env, &CliOverrides::default()).unwrap_err();
    assert!(
        error.to_string().contains("cluster.seeds") && error.to_string().contains("cluster.listen"),
        "{error}"
    );
}
