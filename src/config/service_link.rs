//! Kubernetes service links: the `TIDELOG_*` variables a Service named `tidelog` (or
//! `tidelog-<suffix>`) injects into every pod of its namespace, which are not config keys.

/// Whether `suffix` (a variable name without `TIDELOG_`) has the shape of a Kubernetes service
/// link of a Service named `tidelog` or `tidelog-*`: `[X_]SERVICE_HOST`, `[X_]SERVICE_PORT[_NAME]`,
/// `[X_]PORT` or `[X_]PORT_<port>_<TCP|UDP|SCTP>[_ADDR|_PORT|_PROTO]`. Config keys are never
/// of that shape: their top-level names are `NODE_ID`, `CLUSTER_ID` and `DATA_DIR`, and every
/// other key has a `__` section separator, which a Service name (a DNS label) cannot produce.
pub(crate) fn is_service_link(suffix: &str) -> bool {
    if suffix.contains("__") || suffix.is_empty() {
        return false;
    }
    let words: Vec<&str> = suffix.split('_').collect();
    words.iter().enumerate().any(|(idx, word)| {
        let rest = words.get(idx + 1..).unwrap_or_default();
        match *word {
            "SERVICE" => {
                matches!(rest.first(), Some(&"HOST") if rest.len() == 1)
                    || matches!(rest.first(), Some(&"PORT"))
            }
            "PORT" => rest.is_empty() || is_port_spec(rest),
            _ => false,
        }
    })
}

/// `<port>_<protocol>` optionally followed by `ADDR`, `PORT` or `PROTO`.
fn is_port_spec(rest: &[&str]) -> bool {
    let [port, protocol, tail @ ..] = rest else {
        return false;
    };
    !port.is_empty()
        && port.bytes().all(|byte| byte.is_ascii_digit())
        && matches!(*protocol, "TCP" | "UDP" | "SCTP")
        && matches!(tail, [] | ["ADDR" | "PORT" | "PROTO"])
}

#[cfg(test)]
mod tests {
    use super::is_service_link;
    use crate::config::{CliOverrides, Config, Error, resolve};

    #[test]
    fn env_service_links_of_a_tidelog_service_are_ignored() {
        let env = [
            ("TIDELOG_PORT", "tcp://10.96.0.12:9092"),
            ("TIDELOG_SERVICE_HOST", "10.96.0.12"),
            ("TIDELOG_SERVICE_PORT", "9092"),
            ("TIDELOG_SERVICE_PORT_KAFKA", "9092"),
            ("TIDELOG_PORT_9092_TCP", "tcp://10.96.0.12:9092"),
            ("TIDELOG_PORT_9092_TCP_ADDR", "10.96.0.12"),
            ("TIDELOG_PORT_9092_TCP_PORT", "9092"),
            ("TIDELOG_PORT_9092_TCP_PROTO", "tcp"),
        ];
        let config = resolve(None, env, &CliOverrides::default());
        assert_eq!(config.ok(), Some(Config::default()));
    }

    #[test]
    fn env_unknown_variable_beside_service_links_is_still_rejected() {
        let env = [
            ("TIDELOG_SERVICE_HOST", "10.96.0.12"),
            ("TIDELOG_NODEID", "1"),
        ];
        match resolve(None, env, &CliOverrides::default()) {
            Err(Error::UnknownEnv { var }) => assert_eq!(var, "TIDELOG_NODEID"),
            other => panic!("expected UnknownEnv, got {other:?}"),
        }
    }

    #[test]
    fn kubernetes_service_link_variables_are_service_links() {
        for suffix in [
            "PORT",
            "SERVICE_HOST",
            "SERVICE_PORT",
            "SERVICE_PORT_KAFKA",
            "SERVICE_PORT_ADMIN_HTTP",
            "PORT_9092_TCP",
            "PORT_9092_TCP_ADDR",
            "PORT_9092_TCP_PORT",
            "PORT_9092_TCP_PROTO",
            "PORT_9644_UDP_ADDR",
            "CLIENT_SERVICE_HOST",
            "CLIENT_PORT",
            "CLIENT_PORT_9092_TCP_ADDR",
            "MY_RELEASE_SERVICE_PORT_KAFKA",
        ] {
            assert!(is_service_link(suffix), "{suffix}");
        }
    }

    #[test]
    fn config_keys_and_typos_are_not_service_links() {
        for suffix in [
            "",
            "NODE_ID",
            "NODEID",
            "DATA_DIR",
            "CLUSTER_ID",
            "LOG",
            "LISTENERS",
            "LISTENERS__KAFKA__BIND",
            "ADMIN__LISTEN",
            "CLUSTER__PORT",
            "SERVICE",
            "SERVICE_HOSTNAME",
            "SERVICE_HOST_X",
            "PORT_X_TCP",
            "PORT_9092",
            "PORT_9092_HTTP",
            "PORT_9092_TCP_HOST",
            "PORTS",
        ] {
            assert!(!is_service_link(suffix), "{suffix}");
        }
    }
}
