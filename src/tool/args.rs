//! Clap types of the admin commands (`tidelog topic|group|cluster ...`): how to reach the cluster
//! and what each subcommand takes. Parsing only; the command modules act on them.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

/// How long reassign and drain wait for completion by default: ten minutes.
const WAIT_MS_DEFAULT: u64 = 600_000;

/// The admin commands: Kafka clients of a running cluster.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum ToolCommand {
    /// Create, list, describe, configure, delete topics; produce and consume records.
    Topic(TopicArgs),
    /// List, describe (members, assignments, offsets, lag), reset offsets of, delete groups.
    Group(GroupArgs),
    /// Cluster status, partition placement, reassignment, draining a broker.
    Cluster(ClusterArgs),
    /// Create, list, delete SCRAM users (their credentials).
    User(UserArgs),
    /// Create, list, delete ACLs.
    Acl(AclArgs),
}

/// How to reach the cluster and print answers; given before or after the subcommand.
#[derive(Debug, Clone, Default, PartialEq, Eq, Args)]
pub struct ConnectArgs {
    /// Brokers to bootstrap from, HOST:PORT[,HOST:PORT...] [default: 127.0.0.1:9092, or
    /// bootstrap.servers of --command-config].
    #[arg(long, global = true, value_name = "HOST:PORT")]
    pub bootstrap: Option<String>,
    /// Output: human tables or JSON for scripts.
    #[arg(long, global = true, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// CA certificates (PEM) of the broker's certificate: turns TLS on (an `SSL` listener).
    #[arg(long, global = true, value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
    /// Client certificate chain (PEM), for listeners that require mTLS.
    #[arg(long, global = true, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// Client private key (PEM).
    #[arg(long, global = true, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (a SASL_PLAINTEXT listener; with
    /// --tls-ca, SASL_SSL).
    #[arg(long, global = true, value_name = "MECHANISM")]
    pub sasl_mechanism: Option<String>,
    /// SASL user name.
    #[arg(long, global = true, value_name = "USER")]
    pub sasl_username: Option<String>,
    /// SASL password (visible to other local users in the process list; prefer
    /// --command-config with sasl.password).
    #[arg(long, global = true, value_name = "PASSWORD")]
    pub sasl_password: Option<String>,
    /// Kafka client properties file: bootstrap.servers, security.protocol (PLAINTEXT, SSL,
    /// SASL_PLAINTEXT, SASL_SSL), ssl.ca.location, ssl.certificate.location, ssl.key.location,
    /// sasl.mechanism, sasl.username, sasl.password; flags win over it.
    #[arg(long, global = true, value_name = "FILE")]
    pub command_config: Option<PathBuf>,
    /// How long one operation, with its retries, may take.
    #[arg(long, global = true, value_name = "MS", default_value_t = 30_000)]
    pub timeout_ms: u64,
}

/// Output format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Format {
    #[default]
    Table,
    Json,
}

/// `tidelog topic ...`
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct TopicArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    #[command(subcommand)]
    pub command: TopicCommand,
}

/// Topic subcommands.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum TopicCommand {
    /// Create a topic.
    Create {
        name: String,
        /// Partition count [default: the broker's num.partitions].
        #[arg(long, short = 'p')]
        partitions: Option<i32>,
        /// Replicas per partition [default: the broker's default.replication.factor].
        #[arg(long, short = 'r')]
        replication_factor: Option<i16>,
        /// A topic config, KEY=VALUE (repeatable), e.g. cleanup.policy=compact.
        #[arg(long = "config", short = 'c', value_name = "KEY=VALUE")]
        configs: Vec<String>,
    },
    /// List topics with their partition count and replication factor.
    List {
        /// Include internal topics (__consumer_offsets, __transaction_state).
        #[arg(long)]
        internal: bool,
    },
    /// A topic's partitions (leader, replicas, in-sync replicas, offsets) and configs.
    Describe {
        name: String,
        /// Every config, not only those set on the topic.
        #[arg(long)]
        all_configs: bool,
    },
    /// Set or remove (back to the default) topic configs.
    AlterConfig {
        name: String,
        /// KEY=VALUE to set (repeatable).
        #[arg(long, value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// KEY to remove (repeatable).
        #[arg(long, value_name = "KEY")]
        delete: Vec<String>,
    },
    /// Delete topics and their records.
    Delete {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Produce the lines of stdin, one record each (acks=all).
    Produce {
        topic: String,
        /// Write every record to this partition [default: by key as Kafka's default
        /// partitioner does, round-robin without a key].
        #[arg(long)]
        partition: Option<i32>,
        /// Split each line at the first SEP into key and value (a line without it has no key).
        #[arg(long, value_name = "SEP")]
        key_separator: Option<String>,
        /// Records per produce request.
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
        batch_size: u32,
    },
    /// Print records, one a line (value, or KEY<SEP>VALUE with --print-key).
    Consume {
        topic: String,
        /// Only this partition [default: all].
        #[arg(long)]
        partition: Option<i32>,
        /// Where to start: beginning, end, or an offset [default: beginning; the group's
        /// committed offsets with --group].
        #[arg(long, value_name = "beginning|end|OFFSET")]
        from: Option<String>,
        /// Stop after this many records.
        #[arg(long)]
        max_messages: Option<u64>,
        /// Keep waiting for new records instead of stopping at the end of every partition.
        #[arg(long)]
        follow: bool,
        /// Start from this group's committed offsets and commit what was printed (the group must
        /// have no active members; this is not a group member).
        #[arg(long)]
        group: Option<String>,
        /// Print the key before the value.
        #[arg(long)]
        print_key: bool,
        /// What goes between key and value with --print-key.
        #[arg(long, default_value = "\t", value_name = "SEP")]
        key_separator: String,
    },
}

/// `tidelog group ...`
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct GroupArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    #[command(subcommand)]
    pub command: GroupCommand,
}

/// Group subcommands.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum GroupCommand {
    /// List the groups of every broker.
    List,
    /// A group's state, members and assignments, committed offsets and lag per partition.
    Describe { group: String },
    /// Move a group's committed offsets (the group must have no active members).
    ResetOffsets {
        group: String,
        /// The topic whose offsets move.
        #[arg(long)]
        topic: String,
        /// Only this partition [default: all].
        #[arg(long)]
        partition: Option<i32>,
        /// earliest, latest, or an offset.
        #[arg(long, value_name = "earliest|latest|OFFSET")]
        to: String,
        /// Print the new offsets without committing them.
        #[arg(long)]
        dry_run: bool,
    },
    /// Delete groups and their committed offsets (they must have no members).
    Delete {
        #[arg(required = true)]
        groups: Vec<String>,
    },
}

/// `tidelog cluster ...`
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct ClusterArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    #[command(subcommand)]
    pub command: ClusterCommand,
}

/// Cluster subcommands.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum ClusterCommand {
    /// Cluster id, controller, brokers and partition health.
    Status,
    /// Every partition's leader, replicas and in-sync replicas, and reassignments in progress.
    Partitions {
        /// Only this topic.
        #[arg(long)]
        topic: Option<String>,
        /// Only partitions with a replica out of sync or no leader.
        #[arg(long)]
        under_replicated: bool,
    },
    /// Move partitions to other replicas (KIP-455), then wait until done.
    Reassign {
        /// TOPIC:PARTITION=BROKER,BROKER,... (repeatable); the first broker is the preferred
        /// leader.
        #[arg(long = "move", value_name = "TOPIC:PARTITION=IDS")]
        moves: Vec<String>,
        /// A plan in Kafka's reassignment JSON ({"partitions":[{"topic":..,"partition":..,
        /// "replicas":[..]}]}), as kafka-reassign-partitions.sh takes.
        #[arg(long, value_name = "FILE")]
        plan: Option<PathBuf>,
        /// Cancel the reassignments of these partitions (TOPIC:PARTITION, repeatable).
        #[arg(long, value_name = "TOPIC:PARTITION")]
        cancel: Vec<String>,
        /// Return once submitted instead of waiting for completion.
        #[arg(long)]
        no_wait: bool,
        /// How long to wait for completion.
        #[arg(long, value_name = "MS", default_value_t = WAIT_MS_DEFAULT)]
        wait_timeout_ms: u64,
    },
    /// Move every replica off a broker (before stopping and unregistering it), then wait.
    Drain {
        broker: i32,
        /// Return once submitted instead of waiting for completion.
        #[arg(long)]
        no_wait: bool,
        /// How long to wait for completion.
        #[arg(long, value_name = "MS", default_value_t = WAIT_MS_DEFAULT)]
        wait_timeout_ms: u64,
    },
    /// Remove a stopped, drained broker from the cluster.
    Unregister { broker: i32 },
    /// Hand partitions back to their preferred (first) replica, e.g. after a reassignment.
    ElectLeaders {
        /// Only this topic [default: every partition].
        #[arg(long)]
        topic: Option<String>,
        /// Only this partition of --topic.
        #[arg(long, requires = "topic")]
        partition: Option<i32>,
        /// An unclean election: any live replica, even out of sync, when none in sync is left
        /// (records may be lost).
        #[arg(long)]
        unclean: bool,
    },
}

/// `tidelog user ...`
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct UserArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    #[command(subcommand)]
    pub command: UserCommand,
}

/// A SCRAM mechanism.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Mechanism {
    #[default]
    #[value(name = "SCRAM-SHA-256")]
    ScramSha256,
    #[value(name = "SCRAM-SHA-512")]
    ScramSha512,
}

/// User subcommands.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum UserCommand {
    /// Create a user's SCRAM credential, or replace it (a new password).
    Create {
        name: String,
        #[arg(long, value_enum, default_value_t = Mechanism::ScramSha256)]
        mechanism: Mechanism,
        /// The password (visible to other local users in the process list; see
        /// --password-stdin).
        #[arg(
            long,
            conflicts_with = "password_stdin",
            required_unless_present = "password_stdin"
        )]
        password: Option<String>,
        /// Read the password from the first line of stdin.
        #[arg(long)]
        password_stdin: bool,
        /// PBKDF2 iterations (Kafka accepts 4096 to 16384).
        #[arg(long, default_value_t = 4096)]
        iterations: u32,
    },
    /// Delete a user's SCRAM credential.
    Delete {
        name: String,
        #[arg(long, value_enum, default_value_t = Mechanism::ScramSha256)]
        mechanism: Mechanism,
    },
    /// List users and their SCRAM mechanisms.
    List,
}

/// `tidelog acl ...`
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct AclArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    #[command(subcommand)]
    pub command: AclCommand,
}

/// The resource an ACL is about (at most one).
#[derive(Debug, Clone, Default, PartialEq, Eq, Args)]
#[group(multiple = false)]
pub struct AclResource {
    /// A topic (`*`: every topic).
    #[arg(long)]
    pub topic: Option<String>,
    /// A consumer group.
    #[arg(long = "group")]
    pub consumer_group: Option<String>,
    /// The cluster.
    #[arg(long)]
    pub cluster: bool,
    /// A transactional id.
    #[arg(long)]
    pub transactional_id: Option<String>,
}

/// ACL subcommands.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum AclCommand {
    /// Allow (or with --deny, deny) a principal operations on a resource.
    Create {
        /// e.g. User:alice
        #[arg(long)]
        principal: String,
        /// Host the principal connects from (`*`: any).
        #[arg(long, default_value = "*")]
        host: String,
        /// READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE, CLUSTER_ACTION, DESCRIBE_CONFIGS,
        /// ALTER_CONFIGS, IDEMPOTENT_WRITE, ALL (repeatable).
        #[arg(long = "operation", required = true)]
        operations: Vec<String>,
        /// A DENY ACL instead of ALLOW.
        #[arg(long)]
        deny: bool,
        #[command(flatten)]
        resource: AclResource,
        /// The name is a prefix (PREFIXED pattern) rather than a literal name.
        #[arg(long)]
        prefixed: bool,
    },
    /// List the ACLs (of a principal, of a resource).
    List {
        #[arg(long)]
        principal: Option<String>,
        #[command(flatten)]
        resource: AclResource,
        #[arg(long)]
        prefixed: bool,
    },
    /// Delete the ACLs matching a principal and/or resource (and operation).
    Delete {
        #[arg(long)]
        principal: Option<String>,
        #[arg(long)]
        operation: Option<String>,
        #[command(flatten)]
        resource: AclResource,
        #[arg(long)]
        prefixed: bool,
    },
}
