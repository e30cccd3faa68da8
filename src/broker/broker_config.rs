//! Dynamic broker configs (Kafka's `DynamicBrokerConfig`): keys set with AlterConfigs on a
//! BROKER resource, for one node or as the cluster-wide default, kept in the controller's
//! replicated state (cluster mode) or `<data_dir>/broker-configs.json` (standalone). No Tidelog
//! component reads them: keys Tidelog reads are static here and refused as Kafka refuses those.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Mutex, PoisonError};

use super::Broker;
use super::error::{Error, Result, load_state_file};
use super::topic_config::{self, AlterOp, ConfigEntry, ConfigKind, ConfigSource, Synonym};
use crate::metadata::Command;
use crate::{limits, storage};

/// Dynamic configs by scope (`""`: the cluster-wide default, else a node id), then by key.
type Table = BTreeMap<String, BTreeMap<String, String>>;

/// Kafka broker keys that cannot change at runtime (Kafka's `nonDynamicProps`), beyond the
/// static keys Tidelog describes, plus the keys of what Tidelog configures in its YAML only
/// (listeners, TLS, SASL mechanisms, the authorizer and its super users).
const STATIC_KEYS: &[&str] = &[
    "authorizer.class.name",
    "auto.leader.rebalance.enable",
    "broker.id.generation.enable",
    "broker.rack",
    "controlled.shutdown.enable",
    "controller.listener.names",
    "controller.quorum.bootstrap.servers",
    "controller.quorum.voters",
    "delete.topic.enable",
    "inter.broker.listener.name",
    "inter.broker.protocol.version",
    "leader.imbalance.check.interval.seconds",
    "listener.security.protocol.map",
    "listeners",
    "log.dir",
    "metadata.log.dir",
    "node.id",
    "offsets.commit.timeout.ms",
    "offsets.load.buffer.size",
    "offsets.topic.replication.factor",
    "offsets.topic.segment.bytes",
    "process.roles",
    "queued.max.requests",
    "replica.fetch.max.bytes",
    "replica.lag.time.max.ms",
    "reserved.broker.max.id",
    "sasl.enabled.mechanisms",
    "security.inter.broker.protocol",
    "socket.receive.buffer.bytes",
    "socket.request.max.bytes",
    "socket.send.buffer.bytes",
    "super.users",
    "transaction.max.timeout.ms",
    "transaction.state.log.min.isr",
    "transaction.state.log.num.partitions",
    "transaction.state.log.replication.factor",
    "transaction.state.log.segment.bytes",
    "transactional.id.expiration.ms",
    "zookeeper.connect",
];

/// Prefixes of static keys: Tidelog's TLS and listeners come from its YAML.
const STATIC_PREFIXES: &[&str] = &["ssl.", "listener.name."];

/// Kafka's per-broker keys (its `PerBrokerConfigs` that are not static here): a cluster-wide
/// default of these is refused.
const PER_BROKER_KEYS: &[&str] = &[
    "principal.builder.class",
    "sasl.jaas.config",
    "sasl.kerberos.kinit.cmd",
    "sasl.kerberos.min.time.before.relogin",
    "sasl.kerberos.principal.to.local.rules",
    "sasl.kerberos.service.name",
    "sasl.kerberos.ticket.renew.jitter",
    "sasl.kerberos.ticket.renew.window.factor",
    "sasl.login.refresh.buffer.seconds",
    "sasl.login.refresh.min.period.seconds",
    "sasl.login.refresh.window.factor",
    "sasl.login.refresh.window.jitter",
    "sasl.mechanism.inter.broker.protocol",
];

/// Kafka's list-typed dynamic broker keys that are not static here (APPEND and SUBTRACT apply).
const LIST_KEYS: &[&str] = &["metric.reporters", "sasl.kerberos.principal.to.local.rules"];

/// A standalone broker's dynamic configs.
#[derive(Debug)]
pub(super) struct BrokerConfigs {
    local: Mutex<Table>,
}

impl BrokerConfigs {
    pub(super) fn open(data_dir: &Path) -> Result<BrokerConfigs> {
        let local = load_state_file(
            data_dir,
            storage::load_broker_configs,
            "broker-configs.json",
            |bytes| {
                serde_json::from_slice(bytes)
                    .map_err(|_| "the broker config file does not hold broker configs")
            },
        )?
        .unwrap_or_default();
        Ok(BrokerConfigs {
            local: Mutex::new(local),
        })
    }
}

/// The scope key of a BROKER resource: `None` is the cluster-wide default.
fn scope_key(node: Option<i32>) -> String {
    node.map_or_else(String::new, |id| id.to_string())
}

/// Kafka hides passwords and JAAS configs (`DynamicBrokerConfig.isPasswordConfig`).
fn is_sensitive(key: &str) -> bool {
    key.ends_with("password") || key.ends_with("sasl.jaas.config")
}

/// Kafka's checks of a scope's dynamic configs (`DynamicBrokerConfig.validateConfigs`):
/// no static key, and no per-broker key in the cluster-wide default.
fn check(static_keys: &[String], configs: &BTreeMap<String, String>, is_node: bool) -> Result<()> {
    let keys = |matches: &dyn Fn(&str) -> bool| -> Vec<String> {
        configs.keys().filter(|k| matches(k)).cloned().collect()
    };
    let not_dynamic = keys(&|k| {
        static_keys.iter().any(|s| s == k)
            || STATIC_KEYS.contains(&k)
            || STATIC_PREFIXES.iter().any(|p| k.starts_with(p))
    });
    if !not_dynamic.is_empty() {
        return Err(Error::StaticBrokerConfigs { keys: not_dynamic });
    }
    let per_broker = keys(&|k| PER_BROKER_KEYS.contains(&k));
    if !is_node && !per_broker.is_empty() {
        return Err(Error::PerBrokerConfigsAtDefault { keys: per_broker });
    }
    if configs.len() > limits::BROKER_CONFIGS_PER_SCOPE_MAX {
        return Err(Error::InvalidRequest {
            reason: format!(
                "no more than {} dynamic configs per broker resource",
                limits::BROKER_CONFIGS_PER_SCOPE_MAX
            ),
        });
    }
    Ok(())
}

/// Applies alter operations to a scope's dynamic configs (all of them replaced unless
/// `incremental`); any key may be set, only Kafka's list keys appended to.
fn alter(
    current: &BTreeMap<String, String>,
    ops: &[AlterOp],
    incremental: bool,
) -> Result<BTreeMap<String, String>> {
    topic_config::alter_keys(current, ops, incremental, |key| {
        Ok(LIST_KEYS.contains(&key).then_some(""))
    })
}

/// One dynamic entry: `node`'s value over the default's, with both as synonyms.
fn dynamic_entry(key: &str, node: Option<&String>, default: Option<&String>) -> ConfigEntry {
    let sensitive = is_sensitive(key);
    let shown = |v: Option<&String>| if sensitive { None } else { v.cloned() };
    let mut synonyms = Vec::new();
    if let Some(value) = node {
        synonyms.push(Synonym {
            name: key.to_owned(),
            value: shown(Some(value)),
            source: ConfigSource::DynamicBroker,
        });
    }
    if let Some(value) = default {
        synonyms.push(Synonym {
            name: key.to_owned(),
            value: shown(Some(value)),
            source: ConfigSource::DynamicDefaultBroker,
        });
    }
    let source = if node.is_some() {
        ConfigSource::DynamicBroker
    } else {
        ConfigSource::DynamicDefaultBroker
    };
    ConfigEntry {
        name: key.to_owned(),
        value: shown(node.or(default)),
        source,
        read_only: false,
        sensitive,
        doc: "a dynamic broker config no Tidelog component reads (stored and described only)",
        kind: ConfigKind::Unknown,
        synonyms,
    }
}

impl Broker {
    fn with_broker_configs<T>(&self, read: impl FnOnce(&Table) -> T) -> T {
        match self.cluster_state() {
            Some(state) => read(&state.broker_configs),
            None => read(
                &self
                    .broker_configs
                    .local
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner),
            ),
        }
    }

    /// The configs of a BROKER resource: `Some(id)` (this node) its static configs and every
    /// dynamic one, the node's over the cluster-wide default's; `None` the dynamic defaults.
    pub(crate) fn broker_configs(&self, node: Option<i32>) -> Vec<ConfigEntry> {
        let (node_configs, defaults) = self.with_broker_configs(|table| {
            let scope = node.map(|id| table.get(&scope_key(Some(id))).cloned());
            (scope.flatten(), table.get("").cloned())
        });
        let defaults = defaults.unwrap_or_default();
        let Some(id) = node else {
            return defaults
                .iter()
                .map(|(key, value)| dynamic_entry(key, None, Some(value)))
                .collect();
        };
        debug_assert_eq!(id, self.settings.node_id);
        let node_configs = node_configs.unwrap_or_default();
        let mut keys: Vec<&String> = node_configs.keys().chain(defaults.keys()).collect();
        keys.sort();
        keys.dedup();
        let dynamic = keys
            .into_iter()
            .map(|key| dynamic_entry(key, node_configs.get(key), defaults.get(key)));
        self.static_broker_configs()
            .into_iter()
            .chain(dynamic)
            .collect()
    }

    /// Changes the dynamic configs of a BROKER resource (`None`: the cluster-wide default),
    /// all of them unless `incremental`; through the controller in cluster mode.
    pub(crate) async fn alter_broker_configs(
        &self,
        node: Option<i32>,
        ops: &[AlterOp],
        incremental: bool,
        validate_only: bool,
    ) -> Result<()> {
        let scope = scope_key(node);
        let static_keys: Vec<String> = self
            .static_broker_configs()
            .into_iter()
            .map(|e| e.name)
            .collect();
        let validated = |current: &BTreeMap<String, String>| {
            let next = alter(current, ops, incremental)?;
            check(&static_keys, &next, node.is_some())?;
            Ok::<_, Error>(next)
        };
        let Some(link) = self.cluster.get() else {
            let mut local = self
                .broker_configs
                .local
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let next = validated(&local.get(&scope).cloned().unwrap_or_default())?;
            if validate_only {
                return Ok(());
            }
            let mut table = local.clone();
            if next.is_empty() {
                table.remove(&scope);
            } else {
                table.insert(scope, next);
            }
            let bytes = serde_json::to_vec(&table).map_err(|error| Error::InvalidRequest {
                reason: error.to_string(),
            })?;
            storage::save_broker_configs(&self.settings.data_dir, &bytes)
                .map_err(|source| Error::Catalog { source })?;
            *local = table;
            return Ok(());
        };
        let current = self.with_broker_configs(|t| t.get(&scope).cloned().unwrap_or_default());
        let next = validated(&current)?;
        if validate_only {
            return Ok(());
        }
        let command = Command::SetBrokerConfigs {
            scope: scope.clone(),
            configs: next.clone(),
        };
        self.propose_and_await(link, &command, move |state| {
            state
                .broker_configs
                .get(&scope)
                .map_or(next.is_empty(), |c| *c == next)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn configs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn static_keys_are_refused_with_every_offending_key() {
        let described = vec!["log.retention.ms".to_owned()];
        let got = check(
            &described,
            &configs(&[
                ("log.retention.ms", "1"),
                ("broker.rack", "a"),
                ("x.y", "1"),
            ]),
            true,
        );
        let keys = vec!["broker.rack".to_owned(), "log.retention.ms".to_owned()];
        assert!(matches!(got, Err(Error::StaticBrokerConfigs { keys: k }) if k == keys));
        let tls = check(&[], &configs(&[("ssl.keystore.location", "/k")]), true);
        assert!(matches!(tls, Err(Error::StaticBrokerConfigs { .. })));
    }

    #[test]
    fn per_broker_keys_are_refused_as_cluster_defaults_only() {
        let kerberos = configs(&[("sasl.kerberos.min.time.before.relogin", "58000")]);
        assert!(check(&[], &kerberos, true).is_ok());
        assert!(matches!(
            check(&[], &kerberos, false),
            Err(Error::PerBrokerConfigsAtDefault { .. })
        ));
        assert!(check(&[], &configs(&[("custom.plugin.key", "v")]), false).is_ok());
    }

    #[test]
    fn alter_replaces_or_edits_and_appends_only_to_lists() {
        let current = configs(&[("a.b", "1"), ("metric.reporters", "x")]);
        let set = [AlterOp::Set("c.d".into(), "2".into())];
        assert_eq!(
            alter(&current, &set, false).unwrap(),
            configs(&[("c.d", "2")])
        );
        let edits = [
            AlterOp::Delete("a.b".into()),
            AlterOp::Append("metric.reporters".into(), "y".into()),
            AlterOp::Subtract("metric.reporters".into(), "x".into()),
        ];
        let got = alter(&current, &edits, true).unwrap();
        assert_eq!(got, configs(&[("metric.reporters", "y")]));
        let append = [AlterOp::Append("a.b".into(), "2".into())];
        assert!(matches!(
            alter(&current, &append, true),
            Err(Error::InvalidConfig { .. })
        ));
    }

    #[test]
    fn a_node_value_wins_over_the_default_and_both_are_synonyms() {
        let (node, default) = ("1".to_owned(), "2".to_owned());
        let entry = dynamic_entry("a.b", Some(&node), Some(&default));
        assert_eq!(entry.value.as_deref(), Some("1"));
        assert_eq!(entry.source, ConfigSource::DynamicBroker);
        let sources: Vec<_> = entry.synonyms.iter().map(|s| s.source).collect();
        assert_eq!(
            sources,
            [
                ConfigSource::DynamicBroker,
                ConfigSource::DynamicDefaultBroker
            ]
        );
        let inherited = dynamic_entry("a.b", None, Some(&default));
        assert_eq!(inherited.source, ConfigSource::DynamicDefaultBroker);
        let secret = dynamic_entry("sasl.jaas.config", Some(&node), None);
        assert!(secret.sensitive && secret.value.is_none() && secret.synonyms[0].value.is_none());
    }
}
