//! Command-line options of the chaos run (`cargo test --test chaos -- --faults N ...`, or
//! `scripts/chaos`), tolerant of the flags `cargo test` passes to every test binary.

use std::time::{SystemTime, UNIX_EPOCH};

/// Which broker setup to test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ModeChoice {
    /// A cluster if the binary replicates partitions, else independent single nodes.
    Auto,
    Single,
    Cluster,
}

#[derive(Clone, Debug)]
pub(crate) struct Options {
    pub(crate) faults: usize,
    pub(crate) brokers: usize,
    pub(crate) seed: u64,
    pub(crate) mode: ModeChoice,
    pub(crate) partitions: i32,
    pub(crate) producers: usize,
    /// Consumers per target (alternately assign-based and group-based).
    pub(crate) consumers: usize,
    /// Records per second per producer.
    pub(crate) rate: u32,
    /// Keep the lab directory (logs, data) even when the run is clean.
    pub(crate) keep: bool,
    /// Self-test: destroy acknowledged records during the first fault; the run must fail.
    pub(crate) sabotage: bool,
    /// The topic is compacted, with small segments and maintenance every second: raft purges
    /// its entries and keeps the batches, and a replica behind gets the segments streamed with
    /// a snapshot. Every record has its own key, so compaction keeps all of them.
    pub(crate) compacted: bool,
    /// The broker binary to test (default: the `tidelog` this test was built with).
    pub(crate) tidelog: Option<std::path::PathBuf>,
    /// Test-name filters given by `cargo test FILTER`: the run happens only if one matches.
    pub(crate) filters: Vec<String>,
    pub(crate) list: bool,
    /// `--ignored`: run only ignored tests, which this is not.
    pub(crate) ignored_only: bool,
}

pub(crate) const USAGE: &str = "usage: chaos [--faults N] [--brokers N] [--seed S] \
[--mode auto|single|cluster] [--partitions N] [--producers N] [--consumers N] [--rate N] [--keep] \
[--compacted] [--tidelog PATH (another broker binary)] \
[--sabotage (self-test: destroys acknowledged records, so the run must report anomalies)]";

/// libtest flags that take a value (passed through by `cargo test -- ...`).
const LIBTEST_VALUED: &[&str] = &[
    "--test-threads",
    "--color",
    "--format",
    "--skip",
    "-Z",
    "--logfile",
    "--report-time",
    "--shuffle-seed",
];

impl Default for Options {
    fn default() -> Options {
        Options {
            faults: 24,
            brokers: 3,
            seed: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64),
            mode: ModeChoice::Auto,
            partitions: 3,
            producers: 3,
            consumers: 2,
            rate: 200,
            keep: false,
            sabotage: false,
            compacted: false,
            tidelog: None,
            filters: Vec::new(),
            list: false,
            ignored_only: false,
        }
    }
}

impl Options {
    pub(crate) fn parse(args: impl IntoIterator<Item = String>) -> Result<Options, String> {
        let mut options = Options::default();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let mut value = |name: &str| {
                args.next()
                    .ok_or_else(|| format!("{name} needs a value\n{USAGE}"))
            };
            match arg.as_str() {
                "--faults" => options.faults = number(&value("--faults")?)?,
                "--brokers" => options.brokers = number(&value("--brokers")?)?,
                "--seed" => options.seed = number(&value("--seed")?)?,
                "--partitions" => options.partitions = number(&value("--partitions")?)?,
                "--producers" => options.producers = number(&value("--producers")?)?,
                "--consumers" => options.consumers = number(&value("--consumers")?)?,
                "--rate" => options.rate = number(&value("--rate")?)?,
                "--mode" => {
                    options.mode = match value("--mode")?.as_str() {
                        "auto" => ModeChoice::Auto,
                        "single" => ModeChoice::Single,
                        "cluster" => ModeChoice::Cluster,
                        other => return Err(format!("unknown mode {other:?}\n{USAGE}")),
                    }
                }
                "--keep" => options.keep = true,
                "--sabotage" => options.sabotage = true,
                "--compacted" => options.compacted = true,
                "--tidelog" => options.tidelog = Some(value("--tidelog")?.into()),
                "--list" => options.list = true,
                "--ignored" => options.ignored_only = true,
                "-h" | "--help" => return Err(USAGE.to_owned()),
                flag if LIBTEST_VALUED.contains(&flag) => {
                    let _ = value(flag)?;
                }
                flag if flag.starts_with('-') => {
                    // Other libtest flags (--nocapture, --exact, -q, --test-threads=2, ...).
                    if !is_libtest_flag(flag) {
                        return Err(format!("unknown flag {flag}\n{USAGE}"));
                    }
                }
                filter => options.filters.push(filter.to_owned()),
            }
        }
        if !(1..=9).contains(&options.brokers) {
            return Err(format!("--brokers is 1 to 9, not {}", options.brokers));
        }
        if options.partitions < 1 || options.producers < 1 {
            return Err("--partitions and --producers must be at least 1".to_owned());
        }
        if options.rate == 0 {
            return Err("--rate must be at least 1".to_owned());
        }
        Ok(options)
    }

    /// Whether `cargo test FILTER` selected this test (named `chaos`).
    pub(crate) fn selected(&self) -> bool {
        !self.ignored_only
            && (self.filters.is_empty()
                || self.filters.iter().any(|f| "chaos".contains(f.as_str())))
    }
}

fn is_libtest_flag(flag: &str) -> bool {
    const FLAGS: &[&str] = &[
        "--nocapture",
        "--no-capture",
        "--exact",
        "-q",
        "--quiet",
        "--include-ignored",
        "--show-output",
        "--test",
        "--bench",
        "--force-run-in-process",
        "--shuffle",
    ];
    FLAGS.contains(&flag)
        || LIBTEST_VALUED
            .iter()
            .any(|v| flag.starts_with(&format!("{v}=")))
}

fn number<T: std::str::FromStr>(text: &str) -> Result<T, String> {
    text.parse()
        .map_err(|_| format!("{text:?} is not a valid number\n{USAGE}"))
}
