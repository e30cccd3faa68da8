//! Command-line types (clap derive): `tidelog [serve|check-config] [flags]` and the admin
//! commands `tidelog topic|group|cluster|user|acl ...` (their arguments live in `tool`). Parsing only;
//! `main` turns the flags into `config::CliOverrides` and acts on the command.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};

use crate::config;
use crate::tool::ToolCommand;

/// A Kafka-wire-compatible broker with a durable segmented log.
///
/// Without a subcommand, runs `serve`. Settings come from (lowest first) built-in defaults, the
/// YAML file given with --config, TIDELOG_<SECTION>__<KEY> environment variables, and flags.
#[derive(Debug, Parser)]
#[command(name = "tidelog", version, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Flags for the implicit `serve` when no subcommand is given.
    #[command(flatten)]
    serve: ConfigArgs,
}

/// What to do.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// Run the broker (the default).
    Serve(ConfigArgs),
    /// Resolve and validate the config, print it as YAML on stdout and exit (non-zero if invalid).
    CheckConfig(ConfigArgs),
    /// Admin commands, Kafka clients of a running cluster.
    #[command(flatten)]
    Tool(ToolCommand),
}

/// Flags shared by every command: where the config comes from and per-run overrides.
#[derive(Debug, Clone, Default, PartialEq, Eq, Args)]
pub struct ConfigArgs {
    /// YAML config file (see broker.example.yaml). Without it, built-in defaults are used.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Directory for partition logs and metadata [config: data_dir].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Kafka listener address, IP:PORT; also advertised to clients unless
    /// listeners.kafka.advertised is set [config: listeners.kafka.bind].
    #[arg(long, value_name = "HOST:PORT")]
    pub listen: Option<SocketAddr>,
    /// Another Kafka listener, NAME=[PROTOCOL://]IP:PORT (PROTOCOL: PLAINTEXT, SSL; repeatable)
    /// [config: listeners.NAME.bind, listeners.NAME.security_protocol].
    #[arg(long = "listener", value_name = "NAME=[PROTOCOL://]IP:PORT")]
    pub listeners: Vec<String>,
    /// This broker's node id [config: node_id].
    #[arg(long, value_name = "N")]
    pub node_id: Option<i32>,
    /// Log filter, e.g. `debug` or `info,tidelog::storage=trace` [config: telemetry.level].
    #[arg(long, value_name = "FILTER")]
    pub log_level: Option<String>,
    /// Cluster listener, IP:PORT (TCP: raft and broker-to-broker RPC); setting it turns cluster
    /// mode on [config: cluster.listen].
    #[arg(long, value_name = "IP:PORT")]
    pub cluster_listen: Option<SocketAddr>,
    /// Gossip address, IP:PORT (UDP); defaults to the cluster listener's address
    /// [config: cluster.gossip_listen].
    #[arg(long, value_name = "IP:PORT")]
    pub gossip_listen: Option<SocketAddr>,
    /// Gossip addresses of some brokers, comma-separated; may include this broker
    /// [config: cluster.seeds].
    #[arg(long, value_name = "HOST:PORT,...", value_delimiter = ',')]
    pub seeds: Option<Vec<String>>,
    /// How many brokers form the first controller quorum [config: cluster.bootstrap_expect].
    #[arg(long, value_name = "N")]
    pub bootstrap_expect: Option<u32>,
    /// Admin HTTP listener, IP:PORT, serving /health, /ready and /metrics; off unless set
    /// [config: admin.listen].
    #[arg(long, value_name = "IP:PORT")]
    pub admin_listen: Option<SocketAddr>,
}

impl Cli {
    /// The command to run; no subcommand means `serve` with the top-level flags.
    pub fn into_command(self) -> Command {
        self.command.unwrap_or(Command::Serve(self.serve))
    }
}

impl Command {
    /// The config flags of `serve` and `check-config`; the admin commands have none.
    pub fn config_args(&self) -> Option<&ConfigArgs> {
        match self {
            Command::Serve(args) | Command::CheckConfig(args) => Some(args),
            Command::Tool(_) => None,
        }
    }
}

impl ConfigArgs {
    /// The `--config` file, if given.
    pub fn config_path(&self) -> Option<&Path> {
        self.config.as_deref()
    }

    /// The flags that override config keys.
    pub fn overrides(&self) -> config::CliOverrides {
        config::CliOverrides {
            data_dir: self.data_dir.clone(),
            listen: self.listen,
            listeners: self.listeners.clone(),
            node_id: self.node_id,
            log_level: self.log_level.clone(),
            cluster_listen: self.cluster_listen,
            gossip_listen: self.gossip_listen,
            seeds: self.seeds.clone(),
            bootstrap_expect: self.bootstrap_expect,
            admin_listen: self.admin_listen,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Command, clap::Error> {
        Cli::try_parse_from(std::iter::once("tidelog").chain(args.iter().copied()))
            .map(Cli::into_command)
    }

    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn no_subcommand_is_serve_with_defaults() {
        assert_eq!(parse(&[]).unwrap(), Command::Serve(ConfigArgs::default()));
    }

    #[test]
    fn top_level_flags_are_serve_flags() {
        let command = parse(&["--listen", "127.0.0.1:0", "--data-dir", "/tmp/x"]).unwrap();
        let Command::Serve(args) = command else {
            panic!("expected serve, got {command:?}");
        };
        assert_eq!(args.listen, Some("127.0.0.1:0".parse().unwrap()));
        assert_eq!(args.data_dir, Some(PathBuf::from("/tmp/x")));
    }

    #[test]
    fn check_config_takes_the_same_flags() {
        let command = parse(&[
            "check-config",
            "--config",
            "broker.yaml",
            "--node-id",
            "3",
            "--log-level",
            "debug",
        ])
        .unwrap();
        let Command::CheckConfig(args) = &command else {
            panic!("expected check-config, got {command:?}");
        };
        assert_eq!(args.config_path(), Some(Path::new("broker.yaml")));
        let overrides = command.config_args().unwrap().overrides();
        assert_eq!(overrides.node_id, Some(3));
        assert_eq!(overrides.log_level.as_deref(), Some("debug"));
    }

    #[test]
    fn listen_must_be_a_socket_address() {
        assert!(parse(&["serve", "--listen", "localhost"]).is_err());
    }

    #[test]
    fn cluster_flags_become_overrides() {
        let command = parse(&[
            "serve",
            "--cluster-listen",
            "10.0.0.1:9093",
            "--gossip-listen",
            "10.0.0.1:9094",
            "--seeds",
            "b1:9094,10.0.0.2:9094",
            "--seeds",
            "[::1]:9094",
            "--bootstrap-expect",
            "3",
        ])
        .unwrap();
        let overrides = command.config_args().unwrap().overrides();
        assert_eq!(
            overrides.cluster_listen,
            Some("10.0.0.1:9093".parse().unwrap())
        );
        assert_eq!(
            overrides.gossip_listen,
            Some("10.0.0.1:9094".parse().unwrap())
        );
        assert_eq!(
            overrides.seeds.as_deref(),
            Some(&["b1:9094", "10.0.0.2:9094", "[::1]:9094"].map(String::from)[..])
        );
        assert_eq!(overrides.bootstrap_expect, Some(3));
        let admin = parse(&["--admin-listen", "0.0.0.0:9644"]).unwrap();
        assert_eq!(
            admin.config_args().unwrap().overrides().admin_listen,
            Some("0.0.0.0:9644".parse().unwrap())
        );
        assert!(parse(&["--admin-listen", "localhost:9644"]).is_err());
        assert!(parse(&["--cluster-listen", "broker:9093"]).is_err());
        assert!(parse(&["--bootstrap-expect", "-1"]).is_err());
    }

    #[test]
    fn top_level_flags_conflict_with_a_subcommand() {
        assert!(parse(&["--node-id", "2", "serve"]).is_err());
    }

    #[test]
    fn admin_commands_take_connection_flags_before_or_after_the_subcommand() {
        use crate::tool::{Format, TopicCommand};
        let command = parse(&[
            "topic",
            "--bootstrap",
            "b:1",
            "create",
            "t",
            "--partitions",
            "3",
            "--config",
            "retention.ms=10",
            "--format",
            "json",
        ])
        .unwrap();
        let Command::Tool(ToolCommand::Topic(args)) = &command else {
            panic!("expected topic, got {command:?}");
        };
        assert_eq!(args.connect.bootstrap.as_deref(), Some("b:1"));
        assert_eq!(args.connect.format, Format::Json);
        assert!(matches!(
            &args.command,
            TopicCommand::Create { name, partitions: Some(3), configs, .. }
                if name == "t" && configs == &["retention.ms=10"]
        ));
        assert!(command.config_args().is_none());
        assert!(
            parse(&["group", "describe"]).is_err(),
            "a group id is required"
        );
        assert!(
            parse(&["cluster", "drain", "x"]).is_err(),
            "a broker id is a number"
        );
        assert!(
            parse(&["topic", "list", "--tls-cert", "c.pem"]).is_err(),
            "cert needs key"
        );
    }
}
