//! The admin commands (`tidelog topic|group|cluster|user|acl ...`): a Kafka client of a running
//! cluster (crate::kafka::client) driven by clap arguments, printing tables or JSON. Names no
//! kafka_protocol type.

mod acl;
mod args;
mod cluster;
mod connect;
mod group;
mod output;
mod records;
mod topic;
mod user;

pub use args::{
    AclArgs, AclCommand, AclResource, ClusterArgs, ClusterCommand, ConnectArgs, Format, GroupArgs,
    GroupCommand, Mechanism, ToolCommand, TopicArgs, TopicCommand, UserArgs, UserCommand,
};

/// Runs one admin command; the error names the Kafka error and what to do.
pub fn run(command: &ToolCommand) -> anyhow::Result<()> {
    match command {
        ToolCommand::Topic(args) => {
            let mut client = connect::connect(&args.connect)?;
            match &args.command {
                TopicCommand::Produce { .. } | TopicCommand::Consume { .. } => {
                    records::run(&mut client, args.connect.format, &args.command)
                }
                other => topic::run(&mut client, args.connect.format, other),
            }
        }
        ToolCommand::Group(args) => {
            let mut client = connect::connect(&args.connect)?;
            group::run(&mut client, args.connect.format, &args.command)
        }
        ToolCommand::Cluster(args) => {
            let mut client = connect::connect(&args.connect)?;
            cluster::run(&mut client, args.connect.format, &args.command)
        }
        ToolCommand::Acl(args) => {
            let mut client = connect::connect(&args.connect)?;
            acl::run(&mut client, args.connect.format, &args.command)
        }
        ToolCommand::User(args) => {
            let mut client = connect::connect(&args.connect)?;
            user::run(&mut client, args.connect.format, &args.command)
        }
    }
}
