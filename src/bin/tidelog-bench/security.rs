//! The security run: one broker with PLAINTEXT, SSL, SASL_SSL and SASL_PLAINTEXT listeners and a
//! certificate made here (rcgen); the same records produced (acks=all) and consumed over each of
//! the first three, then the authentication run against the SASL_PLAINTEXT one.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

use crate::auth::{AuthReport, Mechanism, User, run_auths};
use crate::broker::{BROKER_STOP_TIMEOUT, BrokerProcess, LOG_TAIL_LINES};
use crate::cli::Args;
use crate::client::{Cluster, create_topic};
use crate::consume::{ConsumeStats, consume};
use crate::produce::{ProduceStats, produce};
use crate::report::per_sec;
use crate::runs::{ProduceMode, RunSpec, admin_runtime, difference, topic_name};
use crate::sampler::ProcSampler;

/// Time for the broker's listeners and bootstrap user to show in its log.
const LISTENERS_TIMEOUT: Duration = Duration::from_secs(30);
/// The bootstrap user every SASL client authenticates as.
const USER: &str = "bench";
/// The mechanism of the SASL_SSL producers and consumers.
pub(crate) const SASL_SSL_MECHANISM: &str = "SCRAM-SHA-256";

/// A listener of the security broker: its name in the config and its security protocol.
#[derive(Debug, Clone, Copy)]
struct Listener {
    name: &'static str,
    protocol: &'static str,
}

const PLAINTEXT: Listener = Listener {
    name: "kafka",
    protocol: "PLAINTEXT",
};
const SSL: Listener = Listener {
    name: "ssl",
    protocol: "SSL",
};
const SASL_SSL: Listener = Listener {
    name: "sasl_ssl",
    protocol: "SASL_SSL",
};
const SASL_PLAINTEXT: Listener = Listener {
    name: "sasl",
    protocol: "SASL_PLAINTEXT",
};

/// One protocol's produce and consume of one record size.
#[derive(Debug)]
pub(crate) struct ProtocolRun {
    pub(crate) protocol: &'static str,
    pub(crate) spec: RunSpec,
    pub(crate) produce: ProduceStats,
    pub(crate) consume: ConsumeStats,
    pub(crate) broker_cpu_produce_secs: Option<f64>,
    pub(crate) broker_cpu_consume_secs: Option<f64>,
}

/// Everything the security run measured.
#[derive(Debug)]
pub(crate) struct SecurityReport {
    pub(crate) runs: Vec<ProtocolRun>,
    pub(crate) auths: Vec<AuthReport>,
}

/// Starts the broker, runs the protocol runs and the authentication run, stops the broker.
pub(crate) fn run_security(args: &Args, bin: &Path, deadline: Instant) -> Result<SecurityReport> {
    let work_dir =
        std::env::temp_dir().join(format!("tidelog-bench-{}-security", std::process::id()));
    let files = SecretFiles::create(&work_dir.with_extension("secrets"), args.keep_data)?;
    let mut env = vec![
        (
            "TIDELOG_TLS__CERT_FILE".to_owned(),
            files.path("broker.pem"),
        ),
        ("TIDELOG_TLS__KEY_FILE".to_owned(), files.path("broker.key")),
        (
            "TIDELOG_AUTHORIZATION__BOOTSTRAP_USERS".to_owned(),
            format!("{USER}:{}", files.path("password")),
        ),
    ];
    for listener in [SSL, SASL_SSL, SASL_PLAINTEXT] {
        let prefix = format!("TIDELOG_LISTENERS__{}", listener.name.to_ascii_uppercase());
        env.push((format!("{prefix}__BIND"), "127.0.0.1:0".to_owned()));
        env.push((
            format!("{prefix}__SECURITY_PROTOCOL"),
            listener.protocol.to_owned(),
        ));
    }
    let env: Vec<(&str, String)> = env
        .iter()
        .map(|(key, value)| (key.as_str(), value.clone()))
        .collect();
    let (mut broker, _) = BrokerProcess::start(bin, work_dir, args.keep_data, &env)?;
    eprintln!(
        "started the security run's broker (pid {}): PLAINTEXT, SSL, SASL_SSL and \
         SASL_PLAINTEXT listeners",
        broker.pid()
    );
    let sampler = ProcSampler::start(broker.pid());
    let result = measure(args, &broker, &files, &sampler, deadline);
    sampler.stop();
    if result.is_err() {
        eprintln!(
            "--- last lines of the security broker's log ({}) ---",
            broker.log_path.display()
        );
        eprintln!("{}", broker.log_tail(LOG_TAIL_LINES));
    }
    if let Err(error) = broker.stop(BROKER_STOP_TIMEOUT) {
        eprintln!("tidelog-bench: warning: {error:#}");
    }
    result
}

fn measure(
    args: &Args,
    broker: &BrokerProcess,
    files: &SecretFiles,
    sampler: &ProcSampler,
    deadline: Instant,
) -> Result<SecurityReport> {
    let addr = |listener: Listener| broker.listener_addr(listener.name, LISTENERS_TIMEOUT);
    let user = User {
        name: USER.to_owned(),
        password: files.password.clone(),
    };
    broker.wait_for_line("`bootstrap user created` line", LISTENERS_TIMEOUT, |line| {
        line.contains("bootstrap user created").then_some(())
    })?;
    let ca = files.path("ca.pem");
    let sasl_settings = [
        ("sasl.mechanism", SASL_SSL_MECHANISM.to_owned()),
        ("sasl.username", user.name.clone()),
        ("sasl.password", user.password.clone()),
    ];
    let clusters = [
        (PLAINTEXT, Vec::new()),
        (SSL, vec![("ssl.ca.location", ca.clone())]),
        (
            SASL_SSL,
            [("ssl.ca.location", ca.clone())]
                .into_iter()
                .chain(sasl_settings)
                .collect(),
        ),
    ]
    .into_iter()
    .map(|(listener, mut settings)| {
        settings.push(("security.protocol", listener.protocol.to_owned()));
        Ok((
            listener.protocol,
            Cluster {
                bootstrap: addr(listener)?,
                client_debug: args.client_debug.clone(),
                replicated: false,
                settings,
            },
        ))
    })
    .collect::<Result<Vec<_>>>()?;
    let runs = if args.security_records > 0 {
        run_protocols(args, &clusters, sampler, deadline)?
    } else {
        Vec::new()
    };
    let mut auths = Vec::new();
    if args.scram_auths > 0 {
        let sasl = addr(SASL_PLAINTEXT)?;
        let mut rounds = vec![1];
        if args.scram_connections > 1 {
            rounds.push(args.scram_connections);
        }
        for connection_count in rounds {
            for mechanism in Mechanism::ALL {
                eprintln!(
                    "authentications: {} × {} over {connection_count} connection(s) at {sasl}",
                    args.scram_auths,
                    mechanism.name()
                );
                let report = run_auths(
                    &sasl,
                    &user,
                    mechanism,
                    args.scram_auths,
                    connection_count,
                    deadline,
                )?;
                eprintln!(
                    "  {:.0} authentications/s",
                    per_sec(report.auth_count, report.elapsed)
                );
                auths.push(report);
            }
        }
    }
    Ok(SecurityReport { runs, auths })
}

/// For 100 B, then 1 KiB: the same records produced and consumed over each protocol in turn.
fn run_protocols(
    args: &Args,
    clusters: &[(&'static str, Cluster)],
    sampler: &ProcSampler,
    deadline: Instant,
) -> Result<Vec<ProtocolRun>> {
    let (runtime, unique) = admin_runtime()?;
    let mut runs = Vec::new();
    for (size, record_bytes) in [("100B", 100), ("1KiB", 1024)] {
        for (protocol, cluster) in clusters {
            let spec = RunSpec {
                name: format!("{size}-{protocol}"),
                record_count: args.security_records,
                record_bytes,
                rate_per_sec: None,
                mode: ProduceMode::Plain,
                max_in_flight: args.max_in_flight,
            };
            let topic = topic_name(&spec.name, unique);
            eprintln!(
                "run {}: {} records of {record_bytes} B over {protocol} to {topic}",
                spec.name, spec.record_count
            );
            create_topic(&runtime, cluster, &topic, args.partitions, deadline)
                .with_context(|| format!("creating topic {topic} over {protocol}"))?;
            let cpu_0 = sampler.cpu_secs();
            let produce = produce(
                cluster,
                &topic,
                args.partitions,
                &spec,
                args.linger_ms,
                None,
                deadline,
            )
            .with_context(|| format!("run {}: producing", spec.name))?;
            let cpu_1 = sampler.cpu_secs();
            let consume = consume(cluster, &topic, args.partitions, &spec, deadline)
                .with_context(|| format!("run {}: consuming", spec.name))?;
            let cpu_2 = sampler.cpu_secs();
            eprintln!(
                "  produced at {:.0}, consumed and verified at {:.0} records/s",
                per_sec(spec.record_count, produce.elapsed),
                per_sec(spec.record_count, consume.elapsed)
            );
            runs.push(ProtocolRun {
                protocol,
                spec,
                produce,
                consume,
                broker_cpu_produce_secs: difference(cpu_0, cpu_1),
                broker_cpu_consume_secs: difference(cpu_1, cpu_2),
            });
        }
    }
    Ok(runs)
}

/// The CA, the broker's certificate and key, and the bootstrap user's password, in a directory
/// of their own (removed on drop unless the data is kept).
#[derive(Debug)]
struct SecretFiles {
    dir: PathBuf,
    password: String,
    keep: bool,
}

impl SecretFiles {
    fn create(dir: &Path, keep: bool) -> Result<SecretFiles> {
        if dir.exists() {
            fs::remove_dir_all(dir).with_context(|| format!("removing stale {}", dir.display()))?;
        }
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let files = SecretFiles {
            dir: dir.to_path_buf(),
            password: format!("bench-{}", std::process::id()),
            keep,
        };
        let (ca_pem, cert_pem, key_pem) = certificates().context("generating certificates")?;
        for (name, text) in [
            ("ca.pem", ca_pem),
            ("broker.pem", cert_pem),
            ("broker.key", key_pem),
            ("password", format!("{}\n", files.password)),
        ] {
            fs::write(dir.join(name), text)
                .with_context(|| format!("writing {}", dir.join(name).display()))?;
        }
        Ok(files)
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }
}

impl Drop for SecretFiles {
    fn drop(&mut self) {
        if !self.keep {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// A CA and the broker's certificate for `localhost` and `127.0.0.1` (ECDSA P-256, rcgen's
/// default): (CA PEM, certificate PEM, key PEM).
fn certificates() -> Result<(String, String, String)> {
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name = DistinguishedName::new();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "tidelog-bench CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_pem = ca_params.self_signed(&ca_key)?.pem();
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])?;
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, "tidelog-bench broker");
    let cert = params.signed_by(&key, &Issuer::from_params(&ca_params, &ca_key))?;
    Ok((ca_pem, cert.pem(), key.serialize_pem()))
}
