//! `tidelog acl create|list|delete`: ACLs as Kafka's kafka-acls.sh manages them (a principal,
//! a host, operations, allow or deny, on a topic, group, the cluster or a transactional id).

use anyhow::{Context as _, bail};

use super::args::{AclCommand, AclResource, Format};
use super::output::{Table, show};
use crate::kafka::client::{
    self, AclBinding, AclFilter, Client, NewAcl, OPERATIONS, PATTERN_TYPES, PERMISSIONS,
    RESOURCE_TYPES, code_of,
};

/// Name of the cluster resource, as Kafka names it.
const CLUSTER_NAME: &str = "kafka-cluster";

pub(crate) fn run(client: &mut Client, format: Format, command: &AclCommand) -> anyhow::Result<()> {
    match command {
        AclCommand::Create {
            principal,
            host,
            operations,
            deny,
            resource,
            prefixed,
        } => {
            let (resource_type, name) = selected(resource)?
                .context("give the resource: --topic, --group, --cluster or --transactional-id")?;
            let pattern = pattern(*prefixed)?;
            let permission = code(PERMISSIONS, if *deny { "DENY" } else { "ALLOW" })?;
            let acls = operations
                .iter()
                .map(|op| {
                    Ok(NewAcl {
                        resource_type,
                        resource_name: name.clone(),
                        pattern_type: pattern,
                        principal: principal.clone(),
                        host: host.clone(),
                        operation: code(OPERATIONS, op)?,
                        permission,
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            client::create_acls(client, &acls)?;
            let filter = AclFilter {
                resource_type: Some(resource_type),
                resource_name: Some(name),
                pattern_type: Some(pattern),
                principal: Some(principal.clone()),
                ..AclFilter::default()
            };
            print_acls(format, &client::describe_acls(client, &filter)?)
        }
        AclCommand::List {
            principal,
            resource,
            prefixed,
        } => {
            let filter = filter(principal.as_deref(), None, resource, *prefixed)?;
            print_acls(format, &client::describe_acls(client, &filter)?)
        }
        AclCommand::Delete {
            principal,
            operation,
            resource,
            prefixed,
        } => {
            if principal.is_none() && selected(resource)?.is_none() {
                bail!(
                    "give --principal and/or a resource: deleting every ACL takes an explicit filter"
                );
            }
            let filter = filter(
                principal.as_deref(),
                operation.as_deref(),
                resource,
                *prefixed,
            )?;
            print_acls(format, &client::delete_acls(client, &filter)?)
        }
    }
}

fn code(table: &[(&str, i8)], name: &str) -> anyhow::Result<i8> {
    code_of(table, name).with_context(|| {
        let names: Vec<&str> = table.iter().map(|(n, _)| *n).collect();
        format!("{name:?} is not one of {}", names.join(", "))
    })
}

fn pattern(prefixed: bool) -> anyhow::Result<i8> {
    code(PATTERN_TYPES, if prefixed { "PREFIXED" } else { "LITERAL" })
}

/// (resource type code, name) of the resource flags, if one is given.
fn selected(resource: &AclResource) -> anyhow::Result<Option<(i8, String)>> {
    let picked = if let Some(topic) = &resource.topic {
        Some(("TOPIC", topic.clone()))
    } else if let Some(group) = &resource.consumer_group {
        Some(("GROUP", group.clone()))
    } else if resource.cluster {
        Some(("CLUSTER", CLUSTER_NAME.to_owned()))
    } else {
        resource
            .transactional_id
            .as_ref()
            .map(|id| ("TRANSACTIONAL_ID", id.clone()))
    };
    picked
        .map(|(kind, name)| Ok((code(RESOURCE_TYPES, kind)?, name)))
        .transpose()
}

fn filter(
    principal: Option<&str>,
    operation: Option<&str>,
    resource: &AclResource,
    prefixed: bool,
) -> anyhow::Result<AclFilter> {
    let resource = selected(resource)?;
    Ok(AclFilter {
        pattern_type: match (&resource, prefixed) {
            (None, false) => None,
            _ => Some(pattern(prefixed)?),
        },
        resource_type: resource.as_ref().map(|(kind, _)| *kind),
        resource_name: resource.map(|(_, name)| name),
        principal: principal.map(str::to_owned),
        host: None,
        operation: operation.map(|op| code(OPERATIONS, op)).transpose()?,
        permission: None,
    })
}

fn print_acls(format: Format, acls: &[AclBinding]) -> anyhow::Result<()> {
    let mut table = Table::new(&[
        "PRINCIPAL",
        "HOST",
        "PERMISSION",
        "OPERATION",
        "RESOURCE",
        "NAME",
        "PATTERN",
    ]);
    for a in acls {
        table.row(vec![
            a.principal.clone(),
            a.host.clone(),
            a.permission.to_owned(),
            a.operation.to_owned(),
            a.resource_type.to_owned(),
            a.resource_name.clone(),
            a.pattern_type.to_owned(),
        ]);
    }
    show(format, &[table], &acls)
}
