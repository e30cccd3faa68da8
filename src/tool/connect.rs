//! Turns the connection flags and an optional Kafka client properties file into client settings
//! and opens the session.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};

use super::args::ConnectArgs;
use crate::kafka::client::{Client, ClientSettings, SaslSettings, TlsFiles};

/// Used without --bootstrap or bootstrap.servers.
pub(crate) const DEFAULT_BOOTSTRAP: &str = "127.0.0.1:9092";
/// Largest properties file read.
const PROPERTIES_BYTES_MAX: u64 = 1024 * 1024;

/// Opens a session as `args` say.
pub(crate) fn connect(args: &ConnectArgs) -> anyhow::Result<Client> {
    let settings = settings(args)?;
    let bootstrap = settings.bootstrap.join(",");
    Client::connect(settings).with_context(|| format!("connecting to the cluster at {bootstrap}"))
}

fn settings(args: &ConnectArgs) -> anyhow::Result<ClientSettings> {
    let properties = match &args.command_config {
        Some(path) => read_properties(path)?,
        None => BTreeMap::new(),
    };
    let bootstrap = args
        .bootstrap
        .clone()
        .or_else(|| properties.get("bootstrap.servers").cloned())
        .unwrap_or_else(|| DEFAULT_BOOTSTRAP.to_owned());
    let bootstrap: Vec<String> = bootstrap
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let property_path = |key: &str| properties.get(key).map(PathBuf::from);
    let protocol = properties
        .get("security.protocol")
        .map_or("PLAINTEXT", String::as_str);
    let (tls_by_properties, sasl_by_properties) = match protocol.to_ascii_uppercase().as_str() {
        "PLAINTEXT" => (false, false),
        "SSL" => (true, false),
        "SASL_PLAINTEXT" => (false, true),
        "SASL_SSL" => (true, true),
        other => bail!(
            "security.protocol {other} is not one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL"
        ),
    };
    let files = TlsFiles {
        ca_file: args
            .tls_ca
            .clone()
            .or_else(|| property_path("ssl.ca.location")),
        cert_file: args
            .tls_cert
            .clone()
            .or_else(|| property_path("ssl.certificate.location")),
        key_file: args
            .tls_key
            .clone()
            .or_else(|| property_path("ssl.key.location")),
    };
    let tls =
        (tls_by_properties || args.tls_ca.is_some() || args.tls_cert.is_some()).then_some(files);
    let property = |keys: &[&str]| keys.iter().find_map(|k| properties.get(*k).cloned());
    let sasl_flags = args.sasl_mechanism.is_some()
        || args.sasl_username.is_some()
        || args.sasl_password.is_some();
    let sasl = if sasl_by_properties || sasl_flags {
        let mechanism = args
            .sasl_mechanism
            .clone()
            .or_else(|| property(&["sasl.mechanism", "sasl.mechanisms"]))
            .context("SASL needs --sasl-mechanism (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)")?;
        let username = args
            .sasl_username
            .clone()
            .or_else(|| property(&["sasl.username"]))
            .context("SASL needs --sasl-username")?;
        let password = args
            .sasl_password
            .clone()
            .or_else(|| property(&["sasl.password"]))
            .context("SASL needs --sasl-password or sasl.password in --command-config")?;
        Some(SaslSettings {
            mechanism: mechanism.to_ascii_uppercase(),
            username,
            password,
        })
    } else {
        None
    };
    Ok(ClientSettings {
        bootstrap,
        tls,
        sasl,
        timeout: Duration::from_millis(args.timeout_ms.max(1)),
    })
}

/// `key=value` (or `key: value`) lines of a Java properties file; `#` and `!` start comments.
fn read_properties(path: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    let size = std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .len();
    if size > PROPERTIES_BYTES_MAX {
        bail!(
            "{} is larger than {PROPERTIES_BYTES_MAX} bytes",
            path.display()
        );
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse_properties(&text).with_context(|| format!("in {}", path.display()))
}

fn parse_properties(text: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let mut properties = BTreeMap::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let Some(at) = line.find(['=', ':']) else {
            bail!("line {}: expected key=value, got {line:?}", number + 1);
        };
        properties.insert(
            line[..at].trim().to_owned(),
            line[at + 1..].trim().to_owned(),
        );
    }
    Ok(properties)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_and_flags_make_the_settings() {
        let parsed = parse_properties(
            "# comment\nbootstrap.servers = a:1,b:2\nsecurity.protocol=SSL\nssl.ca.location: ca.pem\n",
        )
        .unwrap();
        assert_eq!(parsed["bootstrap.servers"], "a:1,b:2");
        assert_eq!(parsed["ssl.ca.location"], "ca.pem");
        assert!(parse_properties("no separator").is_err());

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("client.properties");
        std::fs::write(
            &file,
            "bootstrap.servers=a:1,b:2\nsecurity.protocol=SSL\nssl.ca.location=ca.pem\n",
        )
        .unwrap();
        let args = ConnectArgs {
            command_config: Some(file.clone()),
            timeout_ms: 5,
            ..ConnectArgs::default()
        };
        let from_file = settings(&args).unwrap();
        assert_eq!(from_file.bootstrap, ["a:1", "b:2"]);
        assert_eq!(
            from_file.tls.unwrap().ca_file,
            Some(PathBuf::from("ca.pem"))
        );
        let flags_win = settings(&ConnectArgs {
            bootstrap: Some("c:3".to_owned()),
            tls_ca: Some(PathBuf::from("other.pem")),
            ..args
        })
        .unwrap();
        assert_eq!(flags_win.bootstrap, ["c:3"]);
        assert_eq!(
            flags_win.tls.unwrap().ca_file,
            Some(PathBuf::from("other.pem"))
        );
        let plain = settings(&ConnectArgs::default()).unwrap();
        assert_eq!(plain.bootstrap, [DEFAULT_BOOTSTRAP]);
        assert!(plain.tls.is_none());

        std::fs::write(
            &file,
            "security.protocol=SASL_SSL\nsasl.mechanism=SCRAM-SHA-512\nsasl.username=u\nsasl.password=p\nssl.ca.location=ca.pem\n",
        )
        .unwrap();
        let sasl = ConnectArgs {
            command_config: Some(file.clone()),
            ..ConnectArgs::default()
        };
        let sasl_ssl = settings(&sasl).unwrap();
        assert!(sasl_ssl.tls.is_some());
        let credentials = sasl_ssl.sasl.unwrap();
        assert_eq!(
            (
                credentials.mechanism.as_str(),
                credentials.username.as_str()
            ),
            ("SCRAM-SHA-512", "u")
        );
        let no_user = ConnectArgs {
            sasl_mechanism: Some("PLAIN".to_owned()),
            ..ConnectArgs::default()
        };
        assert!(settings(&no_user).is_err());
        std::fs::write(&file, "security.protocol=KERBEROS\n").unwrap();
        assert!(settings(&sasl).is_err());
    }
}
