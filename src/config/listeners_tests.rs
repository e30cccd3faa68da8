//! Tests of the named listeners and the `tls` section: YAML, environment, `--listener` flags and
//! validation.

use std::path::Path;

use super::tests::{check_invalid, resolve_ok};
use super::*;

const NO_ENV: [(&str, &str); 0] = [];

const TLS: &str = "tls: {cert_file: /c.pem, key_file: /k.pem}\n";

/// Asserts that resolving fails on a named listener's key.
#[track_caller]
fn check_listener_invalid(yaml: &str, env: &[(&str, &str)], key: &str) {
    match resolve(Some(yaml), env.iter().copied(), &CliOverrides::default()) {
        Err(error @ Error::Listener { .. }) => {
            assert!(error.to_string().contains(key), "{key} not in: {error}");
        }
        other => panic!("expected a Listener error naming {key} for {yaml:?}, got {other:?}"),
    }
}

#[test]
fn defaults_have_one_plaintext_listener_and_no_tls() {
    let config = Config::default();
    let [listener] = config.listeners() else {
        panic!("{:?}", config.listeners());
    };
    assert_eq!(listener.name, "kafka");
    assert_eq!(listener.bind, "127.0.0.1:9092".parse().unwrap());
    assert_eq!(listener.security_protocol, SecurityProtocol::Plaintext);
    assert_eq!(config.tls(), None);
}

#[test]
fn named_listeners_come_from_yaml_env_and_flags() {
    let yaml = format!(
        "listeners:\n  external: {{bind: '127.0.0.1:9093', advertised: 'public.example:443', \
         security_protocol: SSL}}\n{TLS}"
    );
    let env = [
        ("TIDELOG_LISTENERS__INTERNAL__BIND", "127.0.0.1:9094"),
        ("TIDELOG_LISTENERS__EXTERNAL__ADVERTISED", "env.example:443"),
    ];
    let cli = CliOverrides {
        listeners: vec!["replication=SSL://127.0.0.1:9095".to_owned()],
        ..CliOverrides::default()
    };
    let config = resolve_ok(Some(&yaml), &env, &cli);
    let names: Vec<&str> = config.listeners().iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["kafka", "external", "internal", "replication"]);
    let external = &config.listeners()[1];
    assert_eq!(external.security_protocol, SecurityProtocol::Ssl);
    assert_eq!(
        external.advertised,
        Some(HostPort {
            host: "env.example".to_owned(),
            port: 443
        }),
        "the environment wins over the file"
    );
    assert_eq!(
        config.listeners()[2].security_protocol,
        SecurityProtocol::Plaintext
    );
    assert_eq!(
        config.listeners()[3].bind,
        "127.0.0.1:9095".parse().unwrap()
    );
    assert_eq!(
        config.listeners()[3].security_protocol,
        SecurityProtocol::Ssl
    );
    // The printed config loads back to the same config.
    let printed = config.redacted_yaml();
    assert_eq!(
        resolve_ok(Some(&printed), &[], &CliOverrides::default()),
        config
    );
}

#[test]
fn a_file_without_the_default_listener_still_has_it() {
    let config = resolve_ok(
        Some("listeners: {other: {bind: '127.0.0.1:9999'}}"),
        &[],
        &CliOverrides::default(),
    );
    assert_eq!(config.listeners()[0].name, "kafka");
    assert_eq!(config.kafka_bind(), "127.0.0.1:9092".parse().unwrap());
}

#[test]
fn sasl_protocols_are_accepted_by_the_config() {
    let config = resolve_ok(
        Some("listeners: {kafka: {security_protocol: SASL_PLAINTEXT}}"),
        &[],
        &CliOverrides::default(),
    );
    assert_eq!(
        config.listeners()[0].security_protocol,
        SecurityProtocol::SaslPlaintext
    );
}

#[test]
fn bad_listeners_are_rejected_with_the_key_named() {
    check_invalid(
        "listeners: {kafka: {security_protocol: TLS}}",
        "listeners.kafka.security_protocol",
    );
    check_listener_invalid(
        "listeners: {ext: {bind: 'nope'}}",
        &[],
        "listeners.ext.bind",
    );
    check_listener_invalid(
        "listeners: {ext: {bind: '0.0.0.0:9093'}}",
        &[],
        "listeners.ext.advertised",
    );
    check_listener_invalid(
        "listeners: {ext: {bind: '127.0.0.1:9093', advertised: 'x:0'}}",
        &[],
        "listeners.ext.advertised",
    );
    check_listener_invalid(
        "listeners: {ext: {bind: '127.0.0.1:9093', security_protocol: SASL}}",
        &[],
        "listeners.ext.security_protocol",
    );
    // Same port as the default listener.
    check_listener_invalid("listeners: {ext: {}}", &[], "listeners.ext.bind");
    check_listener_invalid(
        "listeners: {ext: {bind: '0.0.0.0:9092', advertised: 'a:1'}}",
        &[],
        "listeners.ext.bind",
    );
    check_invalid("listeners: {Ext: {bind: '127.0.0.1:1'}}", "listeners");
    check_invalid("listeners: {e__x: {bind: '127.0.0.1:1'}}", "listeners");
    check_listener_invalid(
        "{}",
        &[("TIDELOG_LISTENERS__EXT__PORT", "1")],
        "TIDELOG_LISTENERS__EXT__PORT",
    );
    check_invalid(
        "listeners: {ext: {bind: '127.0.0.1:9093'}}\ncluster: {listen: '127.0.0.1:9093'}",
        "cluster.listen",
    );
}

#[test]
fn listener_flags_are_checked() {
    for flag in ["nope", "Bad!=127.0.0.1:1"] {
        let cli = CliOverrides {
            listeners: vec![flag.to_owned()],
            ..CliOverrides::default()
        };
        let result = resolve(None, NO_ENV, &cli);
        assert!(
            matches!(result, Err(Error::Listener { .. })),
            "{flag}: {result:?}"
        );
    }
}

#[test]
fn tls_is_validated() {
    let ssl = "listeners: {kafka: {security_protocol: SSL}}\n";
    check_invalid(ssl, "tls.cert_file");
    check_invalid(&format!("{ssl}tls: {{cert_file: /c.pem}}"), "tls.key_file");
    check_invalid(&format!("{ssl}tls: {{key_file: /k.pem}}"), "tls.cert_file");
    check_invalid(
        &format!("{ssl}tls: {{cert_file: /c.pem, key_file: /k.pem, client_auth: required}}"),
        "tls.ca_file",
    );
    check_invalid(
        &format!("{ssl}tls: {{cert_file: /c.pem, key_file: /k.pem, client_auth: maybe}}"),
        "tls.client_auth",
    );
    check_invalid(
        "tls: {principal_mapping_rules: 'RULE:^(.*$/$1/'}",
        "tls.principal_mapping_rules",
    );
    check_invalid("tls: {handshake_timeout_ms: 0}", "tls.handshake_timeout_ms");
    check_invalid("tls: {cert_file: ''}", "tls.cert_file");

    let config = resolve_ok(
        Some(&format!(
            "{ssl}tls: {{cert_file: /c.pem, key_file: /k.pem, ca_file: /ca.pem, \
             client_auth: requested}}"
        )),
        &[],
        &CliOverrides::default(),
    );
    let tls = config.tls().unwrap();
    assert_eq!(tls.cert_file, Path::new("/c.pem"));
    assert_eq!(tls.client_auth, ClientAuth::Requested);
    assert_eq!(tls.principal_mapping_rules, "DEFAULT");
}
