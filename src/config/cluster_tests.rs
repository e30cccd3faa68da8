//! Unit tests of the `cluster` section: off by default, on exactly when `cluster.listen` is set,
//! file < env < flags, and each validation error naming its key.

use super::tests::{NO_ENV, check_invalid, check_parse_error, host_port, resolve_ok};
use super::*;

#[test]
fn cluster_is_off_by_default_and_on_exactly_when_listen_is_set() {
    assert_eq!(Config::default().cluster(), None);
    let config = resolve_ok(
        Some("cluster:\n  listen: '127.0.0.1:9093'\n"),
        &[],
        &CliOverrides::default(),
    );
    let expected = ClusterDefaults {
        listen: "127.0.0.1:9093".parse().unwrap(),
        advertised: None,
        gossip_listen: "127.0.0.1:9093".parse().unwrap(),
        seeds: Vec::new(),
        bootstrap_expect: 1,
        controller_voters: 3,
        rack: None,
        name: "tidelog".to_owned(),
        controller_heartbeat: Duration::from_millis(200),
        controller_election_timeout: Duration::from_millis(1500),
        gossip_interval: Duration::from_millis(500),
        broker_session_timeout: Duration::from_secs(9),
        tls: None,
    };
    assert_eq!(config.cluster(), Some(&expected));
    // The rest of the config is untouched by cluster mode.
    assert_eq!(config.kafka_bind(), Config::default().kafka_bind());
    assert_eq!(config.node_id(), Config::default().node_id());
}

#[test]
fn cluster_section_from_file() {
    let yaml = "cluster:
  listen: '10.0.0.1:9093'
  advertised: 'broker-1.example:19093'
  gossip_listen: '10.0.0.1:7946'
  seeds: ['broker-1.example:7946', '10.0.0.2:7946', '[fd00::3]:7946']
  bootstrap_expect: 3
  controller_voters: 1
  rack: rack-a
  name: prod
  controller_heartbeat_ms: 50
  controller_election_timeout_ms: 101
  gossip_interval_ms: 100
  broker_session_timeout_ms: 30000
";
    let config = resolve_ok(Some(yaml), &[], &CliOverrides::default());
    let cluster = config.cluster().unwrap();
    assert_eq!(cluster.listen, "10.0.0.1:9093".parse().unwrap());
    assert_eq!(
        cluster.advertised,
        Some(host_port("broker-1.example", 19093))
    );
    assert_eq!(cluster.gossip_listen, "10.0.0.1:7946".parse().unwrap());
    assert_eq!(
        cluster.seeds,
        [
            host_port("broker-1.example", 7946),
            host_port("10.0.0.2", 7946),
            host_port("fd00::3", 7946)
        ]
    );
    assert_eq!(cluster.seeds[2].to_string(), "[fd00::3]:7946");
    assert_eq!(
        (cluster.bootstrap_expect, cluster.controller_voters),
        (3, 1)
    );
    assert_eq!(cluster.rack.as_deref(), Some("rack-a"));
    assert_eq!(cluster.name, "prod");
    assert_eq!(cluster.controller_heartbeat, Duration::from_millis(50));
    assert_eq!(
        cluster.controller_election_timeout,
        Duration::from_millis(101)
    );
    assert_eq!(cluster.gossip_interval, Duration::from_millis(100));
    assert_eq!(cluster.broker_session_timeout, Duration::from_secs(30));

    let printed = config.redacted_yaml();
    assert_eq!(
        resolve_ok(Some(&printed), &[], &CliOverrides::default()),
        config,
        "printed:\n{printed}"
    );
}

#[test]
fn cluster_precedence_is_file_env_cli() {
    let yaml =
        Some("cluster:\n  listen: '127.0.0.1:9101'\n  seeds: ['file:1']\n  bootstrap_expect: 2\n");
    let none = CliOverrides::default();
    let file_only = resolve_ok(yaml, &[], &none);
    let cluster = file_only.cluster().unwrap();
    assert_eq!(cluster.listen.port(), 9101);
    assert_eq!(cluster.gossip_listen.port(), 9101, "gossip follows listen");
    assert_eq!(cluster.seeds, [host_port("file", 1)]);
    assert_eq!(cluster.bootstrap_expect, 2);

    let env = [
        ("TIDELOG_CLUSTER__LISTEN", "127.0.0.1:9102"),
        ("TIDELOG_CLUSTER__SEEDS", "env:1,env:2"),
        ("TIDELOG_CLUSTER__BOOTSTRAP_EXPECT", "3"),
    ];
    let with_env = resolve_ok(yaml, &env, &none);
    let cluster = with_env.cluster().unwrap();
    assert_eq!(cluster.listen.port(), 9102);
    assert_eq!(cluster.seeds, [host_port("env", 1), host_port("env", 2)]);
    assert_eq!(cluster.bootstrap_expect, 3);

    let cli = CliOverrides {
        cluster_listen: Some("127.0.0.1:9103".parse().unwrap()),
        gossip_listen: Some("127.0.0.1:9104".parse().unwrap()),
        seeds: Some(vec!["cli:1".to_owned()]),
        bootstrap_expect: Some(4),
        ..CliOverrides::default()
    };
    let with_cli = resolve_ok(yaml, &env, &cli);
    let cluster = with_cli.cluster().unwrap();
    assert_eq!(cluster.listen.port(), 9103);
    assert_eq!(cluster.gossip_listen.port(), 9104);
    assert_eq!(cluster.seeds, [host_port("cli", 1)]);
    assert_eq!(cluster.bootstrap_expect, 4);

    // Empty env and flag values clear the seeds: a broker that forms a cluster alone.
    let cleared = resolve_ok(yaml, &[("TIDELOG_CLUSTER__SEEDS", "")], &none);
    assert_eq!(cleared.cluster().unwrap().seeds, []);
    let cli = CliOverrides {
        seeds: Some(vec![String::new()]),
        ..CliOverrides::default()
    };
    assert_eq!(resolve_ok(yaml, &env, &cli).cluster().unwrap().seeds, []);

    // The flag alone turns cluster mode on; the seeds may name this broker itself.
    let cli = CliOverrides {
        cluster_listen: Some("127.0.0.1:9093".parse().unwrap()),
        seeds: Some(vec!["127.0.0.1:9093".to_owned()]),
        ..CliOverrides::default()
    };
    let config = resolve_ok(None, &[], &cli);
    assert_eq!(
        config.cluster().unwrap().seeds,
        [host_port("127.0.0.1", 9093)]
    );
}

#[test]
fn cluster_keys_without_listen_are_rejected() {
    let cases = [
        ("advertised: 'b1:9093'", "cluster.advertised"),
        ("gossip_listen: '127.0.0.1:7946'", "cluster.gossip_listen"),
        ("seeds: ['b1:7946']", "cluster.seeds"),
        ("bootstrap_expect: 3", "cluster.bootstrap_expect"),
        ("controller_voters: 5", "cluster.controller_voters"),
        ("rack: r1", "cluster.rack"),
        ("name: other", "cluster.name"),
        (
            "controller_heartbeat_ms: 100",
            "cluster.controller_heartbeat_ms",
        ),
        (
            "controller_election_timeout_ms: 3000",
            "cluster.controller_election_timeout_ms",
        ),
        ("gossip_interval_ms: 100", "cluster.gossip_interval_ms"),
        (
            "broker_session_timeout_ms: 100",
            "cluster.broker_session_timeout_ms",
        ),
    ];
    for (line, key) in cases {
        let yaml = format!("cluster:\n  {line}\n");
        check_invalid(&yaml, key);
        let Err(error) = resolve(Some(&yaml), NO_ENV, &CliOverrides::default()) else {
            unreachable!("checked above");
        };
        assert!(
            error.to_string().contains("needs cluster.listen"),
            "{error}"
        );
    }
    // The seeds flag alone names the key too.
    let cli = CliOverrides {
        seeds: Some(vec!["b1:7946".to_owned()]),
        ..CliOverrides::default()
    };
    assert!(
        matches!(
            resolve(None, NO_ENV, &cli),
            Err(Error::Invalid {
                key: "cluster.seeds",
                ..
            })
        ),
        "seeds flag without --cluster-listen"
    );
    // Every key at its default is still standalone (broker.example.yaml lists them so).
    let defaults = "cluster: {listen: null, seeds: [], bootstrap_expect: 1, controller_voters: 3, \
                    name: tidelog, controller_heartbeat_ms: 200}";
    assert_eq!(
        resolve_ok(Some(defaults), &[], &CliOverrides::default()),
        Config::default()
    );
}

#[test]
fn bad_cluster_values_are_rejected_with_the_key_named() {
    let with = |rest: &str| format!("cluster: {{listen: '127.0.0.1:9093', {rest}}}");
    check_invalid("cluster: {listen: 'localhost:9093'}", "cluster.listen");
    check_invalid("cluster: {listen: '127.0.0.1'}", "cluster.listen");
    // The Kafka listener's address (default 127.0.0.1:9092), also through a wildcard.
    check_invalid("cluster: {listen: '127.0.0.1:9092'}", "cluster.listen");
    check_invalid(
        "cluster: {listen: '0.0.0.0:9092', advertised: 'b1:9092'}",
        "cluster.listen",
    );
    check_invalid(
        "listeners: {kafka: {bind: '0.0.0.0:9093', advertised: 'b1:9093'}}\ncluster: {listen: '127.0.0.1:9093'}",
        "cluster.listen",
    );
    check_invalid("cluster: {listen: '0.0.0.0:9093'}", "cluster.advertised");
    check_invalid(&with("gossip_listen: '0.0.0.0:7946'"), "cluster.advertised");
    check_invalid(&with("advertised: 'b1'"), "cluster.advertised");
    check_invalid(&with("advertised: 'b1:0'"), "cluster.advertised");
    check_invalid(&with("gossip_listen: 'b1:7946'"), "cluster.gossip_listen");
    for seed in [
        "b1", "b1:", ":7946", "b1:0", "b1:70000", "b 1:7946", "b/1:7946", "::1:7946",
    ] {
        check_invalid(&with(&format!("seeds: ['{seed}']")), "cluster.seeds");
    }
    let too_many = vec!["b1:7946"; crate::limits::GOSSIP_SEEDS_MAX + 1].join("', '");
    check_invalid(&with(&format!("seeds: ['{too_many}']")), "cluster.seeds");
    check_invalid(&with("bootstrap_expect: 0"), "cluster.bootstrap_expect");
    let over = crate::limits::CLUSTER_BOOTSTRAP_EXPECT_MAX + 1;
    check_invalid(
        &with(&format!("bootstrap_expect: {over}")),
        "cluster.bootstrap_expect",
    );
    check_invalid(&with("controller_voters: 0"), "cluster.controller_voters");
    check_invalid(&with("rack: ''"), "cluster.rack");
    check_invalid(&with("rack: \"a\\nb\""), "cluster.rack");
    check_invalid(&with(&format!("rack: {}", "r".repeat(257))), "cluster.rack");
    check_invalid(&with("name: ''"), "cluster.name");
    check_invalid(
        &with("controller_heartbeat_ms: 0"),
        "cluster.controller_heartbeat_ms",
    );
    check_invalid(
        &with("controller_election_timeout_ms: 400"),
        "cluster.controller_election_timeout_ms",
    );
    check_invalid(
        &with("controller_heartbeat_ms: 1000"),
        "cluster.controller_election_timeout_ms",
    );
    check_invalid(
        &with("controller_election_timeout_ms: 4294967296"),
        "cluster.controller_election_timeout_ms",
    );
    check_invalid(&with("gossip_interval_ms: 0"), "cluster.gossip_interval_ms");
    check_invalid(
        &with("broker_session_timeout_ms: 0"),
        "cluster.broker_session_timeout_ms",
    );
    check_parse_error("cluster:\n  peers: []\n", "peers");
    check_parse_error("cluster:\n  seeds: 'b1:7946'\n", "seeds");
    check_parse_error("cluster:\n  bootstrap_expect: -1\n", "bootstrap_expect");
}

#[test]
fn cluster_edge_values_are_accepted() {
    let ok = |yaml: &str| resolve_ok(Some(yaml), &[], &CliOverrides::default());
    // Just over twice the heartbeat; port 0 for both listeners (each picks its own port).
    let config = ok(
        "listeners: {kafka: {bind: '127.0.0.1:0'}}\ncluster: {listen: '127.0.0.1:0', \
         controller_election_timeout_ms: 401}",
    );
    let cluster = config.cluster().unwrap();
    assert_eq!(cluster.listen, "127.0.0.1:0".parse().unwrap());
    assert_eq!(
        cluster.controller_election_timeout,
        Duration::from_millis(401)
    );
    // Same port on another IP, and a wildcard listen with an advertised address.
    assert!(
        ok("cluster: {listen: '127.0.0.2:9092'}")
            .cluster()
            .is_some()
    );
    let config = ok("cluster: {listen: '[::]:9093', advertised: 'b1.example:9093'}");
    assert_eq!(
        config.cluster().unwrap().advertised,
        Some(host_port("b1.example", 9093))
    );
    let max = crate::limits::CLUSTER_BOOTSTRAP_EXPECT_MAX;
    let config = ok(&format!(
        "cluster: {{listen: '127.0.0.1:9093', bootstrap_expect: {max}}}"
    ));
    assert_eq!(config.cluster().unwrap().bootstrap_expect, max);
}
