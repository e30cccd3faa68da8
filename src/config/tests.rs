//! Unit tests of config resolution: precedence, env mapping, rejection of unknown keys and bad
//! values. Env is injected as pairs; no test touches the process environment.

use super::*;

pub(super) const NO_ENV: [(&str, &str); 0] = [];

pub(super) fn resolve_ok(
    yaml: Option<&str>,
    env: &[(&str, &str)],
    overrides: &CliOverrides,
) -> Config {
    match resolve(yaml, env.iter().copied(), overrides) {
        Ok(config) => config,
        Err(error) => panic!("expected a valid config, got: {error}"),
    }
}

/// Asserts that `yaml` is rejected by validation and that the error names `key`.
#[track_caller]
pub(super) fn check_invalid(yaml: &str, key: &str) {
    match resolve(Some(yaml), NO_ENV, &CliOverrides::default()) {
        Err(error @ Error::Invalid { key: named, .. }) => {
            assert_eq!(named, key, "wrong key in: {error}");
            assert!(error.to_string().starts_with(key), "{error}");
        }
        other => panic!("expected Invalid for {key} from {yaml:?}, got {other:?}"),
    }
}

/// Asserts that `yaml` fails to parse and that the message mentions `needle`.
#[track_caller]
pub(super) fn check_parse_error(yaml: &str, needle: &str) {
    match resolve(Some(yaml), NO_ENV, &CliOverrides::default()) {
        Err(error @ Error::Parse { .. }) => {
            assert!(
                error.to_string().contains(needle),
                "{needle:?} not in: {error}"
            );
        }
        other => panic!("expected a parse error for {yaml:?}, got {other:?}"),
    }
}

#[test]
fn defaults_are_a_single_node_on_localhost() {
    let config = Config::default();
    assert_eq!(config.node_id(), 1);
    assert_eq!(config.cluster_id(), "tidelog-single-node");
    assert_eq!(config.data_dir(), Path::new("./data"));
    assert_eq!(config.kafka_bind(), "127.0.0.1:9092".parse().unwrap());
    assert_eq!(config.kafka_advertised(), None);
    assert_eq!(config.default_partitions(), 1);
    assert!(config.auto_create_topics());
    assert_eq!(config.retention_check_interval(), Duration::from_secs(300));
    assert!(!config.acks_one_waits_for_fsync());
    assert_eq!(config.message_max_bytes(), 1_048_588);
    assert_eq!(config.socket_request_max_bytes(), 104_857_600);
    let connections = config.connection_limits();
    assert_eq!(connections.connections_max, 10_000);
    assert_eq!(connections.idle_timeout, Duration::from_secs(600));
    assert_eq!(connections.queued_request_bytes_max, 256 * 1024 * 1024);
    assert_eq!(connections.fetch_bytes_max, 55 * 1024 * 1024);
    assert_eq!(config.telemetry_filter(), "info");
    assert_eq!(config.telemetry_format(), crate::telemetry::Format::Text);

    let log = config.log_settings();
    assert_eq!(log.segment_bytes_max, 1_073_741_824);
    assert_eq!(log.segment_ms_max, Some(604_800_000));
    assert_eq!(log.retention_ms, Some(604_800_000));
    assert_eq!(log.retention_bytes, None);
    assert_eq!(log.index_interval_bytes, 4096);
    assert_eq!(
        log.index_file_bytes,
        crate::limits::INDEX_FILE_BYTES_DEFAULT
    );
}

#[test]
fn empty_or_comment_only_file_is_the_defaults() {
    for yaml in ["", "\n", "# nothing here\n", "{}"] {
        let config = resolve_ok(Some(yaml), &[], &CliOverrides::default());
        assert_eq!(config, Config::default(), "{yaml:?}");
    }
}

#[test]
fn partial_sections_keep_the_other_defaults() {
    let config = resolve_ok(
        Some("log:\n  retention_ms: -1\n"),
        &[],
        &CliOverrides::default(),
    );
    let log = config.log_settings();
    assert_eq!(log.retention_ms, None);
    assert_eq!(log.segment_bytes_max, 1_073_741_824);
}

#[test]
fn precedence_is_defaults_file_env_cli() {
    let yaml =
        "node_id: 2\ndata_dir: /from/file\nlog:\n  segment_bytes: 2000\n  retention_ms: 1000\n";
    let env = [
        ("TIDELOG_DATA_DIR", "/from/env"),
        ("TIDELOG_LOG__SEGMENT_BYTES", "3000"),
    ];

    let file_only = resolve_ok(Some(yaml), &[], &CliOverrides::default());
    assert_eq!(file_only.node_id(), 2);
    assert_eq!(file_only.data_dir(), Path::new("/from/file"));
    assert_eq!(file_only.log_settings().segment_bytes_max, 2000);

    let with_env = resolve_ok(Some(yaml), &env, &CliOverrides::default());
    assert_eq!(with_env.node_id(), 2, "env does not touch node_id");
    assert_eq!(with_env.data_dir(), Path::new("/from/env"));
    assert_eq!(with_env.log_settings().segment_bytes_max, 3000);
    assert_eq!(
        with_env.log_settings().retention_ms,
        Some(1000),
        "file value kept"
    );

    let cli = CliOverrides {
        data_dir: Some(PathBuf::from("/from/cli")),
        node_id: Some(7),
        ..CliOverrides::default()
    };
    let with_cli = resolve_ok(Some(yaml), &env, &cli);
    assert_eq!(with_cli.node_id(), 7);
    assert_eq!(with_cli.data_dir(), Path::new("/from/cli"));
    assert_eq!(with_cli.log_settings().segment_bytes_max, 3000);
}

#[test]
fn log_level_precedence_file_env_alias_cli() {
    let yaml = Some("telemetry:\n  level: warn\n");
    let none = CliOverrides::default();
    assert_eq!(resolve_ok(yaml, &[], &none).telemetry_filter(), "warn");

    let keyed = [("TIDELOG_TELEMETRY__LEVEL", "error")];
    assert_eq!(resolve_ok(yaml, &keyed, &none).telemetry_filter(), "error");

    // TIDELOG_LOG is the RUST_LOG-style shorthand and wins over the keyed form in any order.
    let both = [
        ("TIDELOG_LOG", "debug"),
        ("TIDELOG_TELEMETRY__LEVEL", "error"),
    ];
    assert_eq!(resolve_ok(yaml, &both, &none).telemetry_filter(), "debug");

    let cli = CliOverrides {
        log_level: Some("trace".to_owned()),
        ..CliOverrides::default()
    };
    assert_eq!(resolve_ok(yaml, &both, &cli).telemetry_filter(), "trace");
}

#[test]
fn every_key_can_be_set_from_env() {
    let values = [
        ("listeners.kafka.bind", "0.0.0.0:19092"),
        ("listeners.kafka.advertised", "broker-0.example:19092"),
        ("listeners.kafka.security_protocol", "SSL"),
        ("node_id", "5"),
        ("cluster_id", "env-cluster"),
        ("data_dir", "/var/lib/tidelog"),
        ("topics.default_partitions", "3"),
        ("topics.default_replication_factor", "2"),
        ("topics.auto_create", "false"),
        ("log.segment_bytes", "1048576"),
        ("log.segment_ms", "-1"),
        ("log.retention_ms", "0"),
        ("log.retention_bytes", "123456"),
        ("log.index_interval_bytes", "0"),
        ("log.retention_check_interval_ms", "1000"),
        ("flush.acks_one_waits_for_fsync", "true"),
        ("limits.message_max_bytes", "2000000"),
        ("limits.socket_request_max_bytes", "3000000"),
        ("limits.max_connections", "50"),
        ("limits.connections_max_idle_ms", "1500"),
        ("limits.queued_max_request_bytes", "300000000"),
        ("limits.fetch_max_bytes", "65536"),
        ("groups.offsets_topic_partitions", "3"),
        ("groups.offsets_retention_minutes", "60"),
        ("groups.session_timeout_ms_min", "1000"),
        ("groups.session_timeout_ms_max", "60000"),
        ("groups.initial_rebalance_delay_ms", "3000"),
        ("transactions.state_topic_partitions", "5"),
        ("transactions.max_timeout_ms", "60000"),
        ("transactions.transactional_id_expiration_ms", "3600000"),
        ("transactions.abort_timed_out_check_interval_ms", "500"),
        ("transactions.producer_id_expiration_ms", "7200000"),
        ("cluster.listen", "0.0.0.0:19093"),
        ("cluster.advertised", "broker-0.example:19093"),
        ("cluster.gossip_listen", "0.0.0.0:19094"),
        (
            "cluster.seeds",
            "broker-0.example:19094, broker-1.example:19094,",
        ),
        ("cluster.bootstrap_expect", "3"),
        ("cluster.controller_voters", "5"),
        ("cluster.rack", "eu-west-1a"),
        ("cluster.name", "env-gossip"),
        ("cluster.controller_heartbeat_ms", "100"),
        ("cluster.controller_election_timeout_ms", "1000"),
        ("cluster.gossip_interval_ms", "250"),
        ("cluster.broker_session_timeout_ms", "18000"),
        ("cluster.tls.cert_file", "/etc/tidelog/cluster.pem"),
        ("cluster.tls.key_file", "/etc/tidelog/cluster.key"),
        ("cluster.tls.ca_file", "/etc/tidelog/cluster-ca.pem"),
        ("tls.cert_file", "/etc/tidelog/broker.pem"),
        ("tls.key_file", "/etc/tidelog/broker.key"),
        ("tls.ca_file", "/etc/tidelog/ca.pem"),
        ("tls.client_auth", "required"),
        (
            "tls.principal_mapping_rules",
            "RULE:^CN=(.*?),OU=eng$/$1/L,DEFAULT",
        ),
        ("tls.handshake_timeout_ms", "5000"),
        ("admin.listen", "0.0.0.0:9644"),
        ("telemetry.level", "debug"),
        ("telemetry.format", "json"),
        ("telemetry.otlp_endpoint", "http://collector.example:4318"),
        ("sasl.enabled_mechanisms", "SCRAM-SHA-512,PLAIN"),
        ("sasl.connections_max_reauth_ms", "60000"),
        ("sasl.failed_authentication_delay_ms", "250"),
        ("sasl.authentication_timeout_ms", "3000"),
        ("authorization.enabled", "true"),
        ("authorization.allow_everyone_if_no_acl_found", "true"),
        ("authorization.super_users", "User:admin,User:ops"),
        (
            "authorization.bootstrap_users",
            "admin:/run/secrets/admin,ops:/etc/ops:pw",
        ),
    ];
    let keys: Vec<&str> = values.iter().map(|(key, _)| *key).collect();
    assert_eq!(keys, KEYS, "this test covers every key, in order");

    let env: Vec<(String, &str)> = values
        .iter()
        .map(|(key, value)| (env_var_name(key), *value))
        .collect();
    let config = resolve(None, env.clone(), &CliOverrides::default()).unwrap();
    assert_eq!(config.node_id(), 5);
    assert_eq!(config.admin_listen(), Some("0.0.0.0:9644".parse().unwrap()));
    assert_eq!(
        config.otlp_endpoint(),
        Some("http://collector.example:4318")
    );
    assert_eq!(config.cluster_id(), "env-cluster");
    assert_eq!(config.data_dir(), Path::new("/var/lib/tidelog"));
    assert_eq!(config.kafka_bind(), "0.0.0.0:19092".parse().unwrap());
    assert_eq!(
        config.kafka_advertised(),
        Some(&HostPort {
            host: "broker-0.example".to_owned(),
            port: 19092
        })
    );
    assert_eq!(
        config.listeners()[0].security_protocol,
        super::SecurityProtocol::Ssl
    );
    let tls = config.tls().unwrap();
    assert_eq!(tls.cert_file, Path::new("/etc/tidelog/broker.pem"));
    assert_eq!(tls.key_file, Path::new("/etc/tidelog/broker.key"));
    assert_eq!(
        tls.ca_file.as_deref(),
        Some(Path::new("/etc/tidelog/ca.pem"))
    );
    assert_eq!(tls.client_auth, super::ClientAuth::Required);
    assert_eq!(
        tls.principal_mapping_rules,
        "RULE:^CN=(.*?),OU=eng$/$1/L,DEFAULT"
    );
    assert_eq!(tls.handshake_timeout, Duration::from_secs(5));
    let sasl = config.sasl();
    assert_eq!(
        sasl.mechanisms,
        [
            crate::auth::sasl::Mechanism::ScramSha512,
            crate::auth::sasl::Mechanism::Plain
        ]
    );
    assert_eq!(sasl.max_reauth, Some(Duration::from_secs(60)));
    assert_eq!(sasl.failed_authentication_delay, Duration::from_millis(250));
    assert_eq!(sasl.authentication_timeout, Duration::from_secs(3));
    assert_eq!(
        config.authorization().super_users,
        ["User:admin", "User:ops"]
    );
    assert!(config.authorization().enabled);
    assert!(config.authorization().allow_everyone_if_no_acl_found);
    let bootstrap: Vec<(&str, &Path)> = config
        .authorization()
        .bootstrap_users
        .iter()
        .map(|u| (u.name.as_str(), u.password_file.as_path()))
        .collect();
    assert_eq!(
        bootstrap,
        [
            ("admin", Path::new("/run/secrets/admin")),
            ("ops", Path::new("/etc/ops:pw"))
        ]
    );
    assert_eq!(config.default_partitions(), 3);
    assert_eq!(config.default_replication_factor(), Some(2));
    assert!(!config.auto_create_topics());
    let groups = config.group_settings();
    assert_eq!(groups.offsets_topic_partitions, 3);
    assert_eq!(groups.offsets_retention_ms, 3_600_000);
    assert_eq!(
        (groups.session_timeout_ms_min, groups.session_timeout_ms_max),
        (1000, 60_000)
    );
    assert_eq!(groups.initial_rebalance_delay_ms, 3000);
    let txn = config.transaction_settings();
    assert_eq!(txn.state_topic_partitions, 5);
    assert_eq!(txn.max_timeout_ms, 60_000);
    assert_eq!(txn.transactional_id_expiration_ms, 3_600_000);
    assert_eq!(txn.abort_timed_out_check_interval_ms, 500);
    assert_eq!(txn.producer_id_expiration_ms, 7_200_000);
    let log = config.log_settings();
    assert_eq!(log.segment_bytes_max, 1_048_576);
    assert_eq!(log.segment_ms_max, None);
    assert_eq!(log.retention_ms, Some(0));
    assert_eq!(log.retention_bytes, Some(123_456));
    assert_eq!(log.index_interval_bytes, 0);
    assert_eq!(config.retention_check_interval(), Duration::from_secs(1));
    assert!(config.acks_one_waits_for_fsync());
    assert_eq!(config.message_max_bytes(), 2_000_000);
    assert_eq!(config.socket_request_max_bytes(), 3_000_000);
    let connections = config.connection_limits();
    assert_eq!(connections.connections_max, 50);
    assert_eq!(connections.idle_timeout, Duration::from_millis(1500));
    assert_eq!(connections.queued_request_bytes_max, 300_000_000);
    assert_eq!(connections.fetch_bytes_max, 65_536);
    assert_eq!(config.telemetry_filter(), "debug");
    assert_eq!(config.telemetry_format(), crate::telemetry::Format::Json);
    let cluster = config.cluster().unwrap();
    assert_eq!(cluster.listen, "0.0.0.0:19093".parse().unwrap());
    assert_eq!(
        cluster.advertised,
        Some(host_port("broker-0.example", 19093))
    );
    assert_eq!(cluster.gossip_listen, "0.0.0.0:19094".parse().unwrap());
    assert_eq!(
        cluster.seeds,
        [
            host_port("broker-0.example", 19094),
            host_port("broker-1.example", 19094)
        ]
    );
    assert_eq!(
        (cluster.bootstrap_expect, cluster.controller_voters),
        (3, 5)
    );
    assert_eq!(cluster.rack.as_deref(), Some("eu-west-1a"));
    assert_eq!(cluster.name, "env-gossip");
    assert_eq!(cluster.controller_heartbeat, Duration::from_millis(100));
    assert_eq!(cluster.controller_election_timeout, Duration::from_secs(1));
    assert_eq!(cluster.gossip_interval, Duration::from_millis(250));
    assert_eq!(cluster.broker_session_timeout, Duration::from_secs(18));

    // Setting each key alone changes the config, so no two keys write the same field.
    for (var, value) in env {
        let one = resolve(None, [(var.as_str(), value)], &CliOverrides::default());
        // 0.0.0.0 alone needs an advertised address; the other cluster keys need
        // cluster.listen; an SSL listener needs a certificate and key, and either of them
        // the other; everything else is valid alone.
        if [
            "TIDELOG_LISTENERS__KAFKA__BIND",
            "TIDELOG_CLUSTER__LISTEN",
            "TIDELOG_LISTENERS__KAFKA__SECURITY_PROTOCOL",
            "TIDELOG_TLS__CERT_FILE",
            "TIDELOG_TLS__KEY_FILE",
        ]
        .contains(&var.as_str())
        {
            assert!(matches!(one, Err(Error::Invalid { .. })), "{var}: {one:?}");
            continue;
        }
        if var.starts_with("TIDELOG_CLUSTER__") {
            match one {
                Err(ref error @ Error::Invalid { key, .. }) => {
                    assert_eq!(env_var_name(key), var);
                    assert!(
                        error.to_string().contains("needs cluster.listen"),
                        "{error}"
                    );
                }
                other => panic!("{var} without cluster.listen: {other:?}"),
            }
            continue;
        }
        assert_ne!(one.unwrap(), Config::default(), "{var} had no effect");
    }
}

pub(super) fn host_port(host: &str, port: u16) -> HostPort {
    HostPort {
        host: host.to_owned(),
        port,
    }
}

#[test]
fn env_var_names_follow_section_double_underscore_key() {
    assert_eq!(env_var_name("node_id"), "TIDELOG_NODE_ID");
    assert_eq!(
        env_var_name("log.segment_bytes"),
        "TIDELOG_LOG__SEGMENT_BYTES"
    );
    assert_eq!(
        env_var_name("listeners.kafka.bind"),
        "TIDELOG_LISTENERS__KAFKA__BIND"
    );
}

#[test]
fn env_ignores_other_prefixes() {
    let env = [
        ("RUST_LOG", "trace"),
        ("PATH", "/usr/bin"),
        ("TIDELOGX", "1"),
    ];
    assert_eq!(
        resolve_ok(None, &env, &CliOverrides::default()),
        Config::default()
    );
}

#[test]
fn env_unknown_tidelog_variable_is_rejected() {
    for var in [
        "TIDELOG_NODEID",
        "TIDELOG_LOG__SEGMENT_SIZE",
        "TIDELOG_LISTENERS",
    ] {
        let result = resolve(None, [(var, "1")], &CliOverrides::default());
        match result {
            Err(error @ Error::UnknownEnv { .. }) => assert!(error.to_string().contains(var)),
            other => panic!("{var}: expected UnknownEnv, got {other:?}"),
        }
    }
}

#[test]
fn env_bad_value_names_the_variable_and_key() {
    let cases = [
        ("TIDELOG_LOG__SEGMENT_BYTES", "lots", "log.segment_bytes"),
        ("TIDELOG_NODE_ID", "-", "node_id"),
        ("TIDELOG_TOPICS__AUTO_CREATE", "yes", "topics.auto_create"),
    ];
    for (var, value, key) in cases {
        let result = resolve(None, [(var, value)], &CliOverrides::default());
        match result {
            Err(ref error @ Error::Env { key: named, .. }) => {
                assert_eq!(named, key);
                let message = error.to_string();
                assert!(message.contains(var) && message.contains(key), "{message}");
            }
            other => panic!("{var}={value}: expected Env error, got {other:?}"),
        }
    }
}

#[test]
fn env_valid_value_failing_validation_names_the_key() {
    let result = resolve(
        None,
        [("TIDELOG_LOG__SEGMENT_BYTES", "5")],
        &CliOverrides::default(),
    );
    assert!(
        matches!(
            result,
            Err(Error::Invalid {
                key: "log.segment_bytes",
                ..
            })
        ),
        "{result:?}"
    );
}

#[test]
fn unknown_file_keys_are_rejected() {
    check_parse_error("node_idd: 1\n", "node_idd");
    check_parse_error("log:\n  segment_size: 10\n", "segment_size");
    check_parse_error("listeners:\n  kafka:\n    port: 9092\n", "port");
    check_parse_error("listeners:\n  admin: {port: 1}\n", "port");
    check_parse_error("tls:\n  certfile: x\n", "certfile");
}

#[test]
fn mistyped_file_values_are_rejected() {
    check_parse_error("log:\n  segment_bytes: lots\n", "segment_bytes");
    check_parse_error("topics:\n  auto_create: 3\n", "auto_create");
    check_parse_error("- a list\n", "");
}

#[test]
fn bad_values_are_rejected_with_the_key_named() {
    check_invalid("node_id: -1", "node_id");
    check_invalid(
        "groups:\n  offsets_topic_partitions: 0\n",
        "groups.offsets_topic_partitions",
    );
    check_invalid(
        "groups:\n  session_timeout_ms_min: 10000\n  session_timeout_ms_max: 9000\n",
        "groups.session_timeout_ms_max",
    );
    check_invalid("cluster_id: ''", "cluster_id");
    check_invalid("cluster_id: has space", "cluster_id");
    check_invalid("data_dir: ''", "data_dir");
    check_invalid(
        "listeners: {kafka: {bind: 'localhost:9092'}}",
        "listeners.kafka.bind",
    );
    check_invalid(
        "listeners: {kafka: {bind: '127.0.0.1'}}",
        "listeners.kafka.bind",
    );
    check_invalid(
        "listeners: {kafka: {bind: '0.0.0.0:9092'}}",
        "listeners.kafka.advertised",
    );
    check_invalid(
        "listeners: {kafka: {advertised: 'host'}}",
        "listeners.kafka.advertised",
    );
    check_invalid(
        "listeners: {kafka: {advertised: 'host:0'}}",
        "listeners.kafka.advertised",
    );
    check_invalid(
        "listeners: {kafka: {advertised: ':9092'}}",
        "listeners.kafka.advertised",
    );
    check_invalid(
        "listeners: {kafka: {advertised: '::1:9092'}}",
        "listeners.kafka.advertised",
    );
    check_invalid(
        "topics: {default_partitions: 0}",
        "topics.default_partitions",
    );
    check_invalid(
        "topics: {default_partitions: 10001}",
        "topics.default_partitions",
    );
    check_invalid(
        "topics: {default_replication_factor: 0}",
        "topics.default_replication_factor",
    );
    check_invalid("log: {segment_bytes: 13}", "log.segment_bytes");
    check_invalid("log: {segment_bytes: 2147483648}", "log.segment_bytes");
    check_invalid("log: {segment_ms: 0}", "log.segment_ms");
    check_invalid("log: {retention_ms: -2}", "log.retention_ms");
    check_invalid("log: {retention_bytes: -5}", "log.retention_bytes");
    check_invalid(
        "log: {retention_check_interval_ms: 0}",
        "log.retention_check_interval_ms",
    );
    check_invalid(
        "limits: {socket_request_max_bytes: 0}",
        "limits.socket_request_max_bytes",
    );
    check_invalid(
        "limits: {socket_request_max_bytes: 2000000000}",
        "limits.socket_request_max_bytes",
    );
    check_invalid("limits: {message_max_bytes: 0}", "limits.message_max_bytes");
    check_invalid(
        "limits: {message_max_bytes: 2000, socket_request_max_bytes: 1000}",
        "limits.message_max_bytes",
    );
    check_invalid("limits: {max_connections: 0}", "limits.max_connections");
    check_invalid(
        "limits: {connections_max_idle_ms: 0}",
        "limits.connections_max_idle_ms",
    );
    check_invalid(
        "limits: {socket_request_max_bytes: 3000000, queued_max_request_bytes: 2999999}",
        "limits.queued_max_request_bytes",
    );
    check_invalid("limits: {fetch_max_bytes: 1023}", "limits.fetch_max_bytes");
    check_invalid("telemetry: {level: 'info,tidelog=loud'}", "telemetry.level");
    check_invalid("telemetry: {format: xml}", "telemetry.format");
}

#[test]
fn advertised_accepts_hostnames_and_bracketed_ipv6() {
    let cases = [
        ("kafka.internal:9092", "kafka.internal", 9092),
        ("10.0.0.5:29092", "10.0.0.5", 29092),
        ("[::1]:9093", "::1", 9093),
    ];
    for (text, host, port) in cases {
        let yaml = format!("listeners:\n  kafka:\n    advertised: '{text}'\n");
        let config = resolve_ok(Some(&yaml), &[], &CliOverrides::default());
        let advertised = config.kafka_advertised().unwrap();
        assert_eq!((advertised.host.as_str(), advertised.port), (host, port));
        assert_eq!(advertised.to_string(), text);
    }
}

#[test]
fn listen_flag_moves_bind_and_advertised_follows_unless_configured() {
    let cli = CliOverrides {
        listen: Some("127.0.0.1:0".parse().unwrap()),
        ..CliOverrides::default()
    };
    let config = resolve_ok(None, &[], &cli);
    assert_eq!(config.kafka_bind(), "127.0.0.1:0".parse().unwrap());
    assert_eq!(config.kafka_advertised(), None, "advertise what was bound");

    let yaml = Some("listeners:\n  kafka:\n    advertised: 'public.example:9092'\n");
    let config = resolve_ok(yaml, &[], &cli);
    assert_eq!(config.kafka_bind(), "127.0.0.1:0".parse().unwrap());
    assert_eq!(config.kafka_advertised().unwrap().host, "public.example");

    let env = [("TIDELOG_LISTENERS__KAFKA__ADVERTISED", "env.example:9092")];
    let config = resolve_ok(None, &env, &cli);
    assert_eq!(config.kafka_advertised().unwrap().host, "env.example");
}

#[test]
fn empty_env_value_unsets_the_advertised_address() {
    let yaml = Some("listeners:\n  kafka:\n    advertised: 'public.example:9092'\n");
    let env = [("TIDELOG_LISTENERS__KAFKA__ADVERTISED", "")];
    let config = resolve_ok(yaml, &env, &CliOverrides::default());
    assert_eq!(config.kafka_advertised(), None);
}

#[test]
fn redacted_yaml_round_trips() {
    let yaml = "node_id: 4\nlisteners:\n  kafka:\n    bind: '0.0.0.0:9092'\n    advertised: 'b4:9092'\nlog:\n  retention_bytes: 1000\n  segment_ms: -1\ntelemetry:\n  format: json\n";
    let config = resolve_ok(Some(yaml), &[], &CliOverrides::default());
    let printed = config.redacted_yaml();
    let reparsed = resolve_ok(Some(&printed), &[], &CliOverrides::default());
    assert_eq!(reparsed, config, "printed:\n{printed}");

    let defaults = Config::default().redacted_yaml();
    assert_eq!(
        resolve_ok(Some(&defaults), &[], &CliOverrides::default()),
        Config::default(),
        "printed:\n{defaults}"
    );
    for key in KEYS {
        let leaf = key.rsplit('.').next().unwrap();
        assert!(
            defaults.contains(&format!("{leaf}:")),
            "{leaf} missing:\n{defaults}"
        );
    }
}

#[test]
fn load_reports_a_missing_file_with_its_path() {
    let dir = tempfile::TempDir::new().unwrap();
    let path = dir.path().join("absent.yaml");
    let result = load_with_env(Some(&path), NO_ENV, &CliOverrides::default());
    match result {
        Err(error @ Error::Read { .. }) => {
            assert!(error.to_string().contains("absent.yaml"), "{error}");
        }
        other => panic!("expected Read error, got {other:?}"),
    }
}

#[test]
fn load_parse_error_names_the_file() {
    let dir = tempfile::TempDir::new().unwrap();
    let path = dir.path().join("broker.yaml");
    std::fs::write(&path, "bogus_key: 1\n").unwrap();
    let result = load_with_env(Some(&path), NO_ENV, &CliOverrides::default());
    match result {
        Err(error @ Error::Parse { .. }) => {
            let message = error.to_string();
            assert!(
                message.contains("broker.yaml") && message.contains("bogus_key"),
                "{message}"
            );
        }
        other => panic!("expected Parse error, got {other:?}"),
    }
}

#[test]
fn admin_listener_is_off_by_default_and_set_by_file_env_or_flag() {
    assert_eq!(Config::default().admin_listen(), None);
    let file = resolve_ok(
        Some("admin:\n  listen: 127.0.0.1:9644\n"),
        &[],
        &CliOverrides::default(),
    );
    assert_eq!(file.admin_listen(), Some("127.0.0.1:9644".parse().unwrap()));
    let env = [("TIDELOG_ADMIN__LISTEN", "0.0.0.0:9645")];
    let flag = CliOverrides {
        admin_listen: Some("127.0.0.1:9646".parse().unwrap()),
        ..CliOverrides::default()
    };
    let yaml = Some("admin:\n  listen: 127.0.0.1:9644\n");
    assert_eq!(
        resolve_ok(yaml, &env, &CliOverrides::default()).admin_listen(),
        Some("0.0.0.0:9645".parse().unwrap())
    );
    assert_eq!(
        resolve_ok(yaml, &env, &flag).admin_listen(),
        Some("127.0.0.1:9646".parse().unwrap())
    );
    let printed = resolve_ok(yaml, &[], &CliOverrides::default()).redacted_yaml();
    assert!(printed.contains("listen: 127.0.0.1:9644"), "{printed}");
}

#[test]
fn admin_listener_needs_an_address_and_a_port_of_its_own() {
    check_invalid("admin:\n  listen: localhost:9644\n", "admin.listen");
    check_invalid("admin:\n  listen: 127.0.0.1:9092\n", "admin.listen");
    check_invalid(
        "admin:\n  listen: 0.0.0.0:9093\ncluster:\n  listen: 127.0.0.1:9093\n",
        "admin.listen",
    );
    // Port 0 never collides: each listener gets its own free port.
    let zero = "listeners:\n  kafka:\n    bind: 127.0.0.1:0\nadmin:\n  listen: 127.0.0.1:0\n";
    assert!(resolve(Some(zero), NO_ENV, &CliOverrides::default()).is_ok());
}

#[test]
fn otlp_endpoint_must_be_an_http_url() {
    assert_eq!(Config::default().otlp_endpoint(), None);
    let yaml = "telemetry:\n  otlp_endpoint: http://127.0.0.1:4318\n";
    let config = resolve_ok(Some(yaml), &[], &CliOverrides::default());
    assert_eq!(config.otlp_endpoint(), Some("http://127.0.0.1:4318"));
    check_invalid(
        "telemetry:\n  otlp_endpoint: 127.0.0.1:4318\n",
        "telemetry.otlp_endpoint",
    );
}
