//! Chaos test (harness = false): brokers in network namespaces under a seeded nemesis (kill -9,
//! SIGSTOP, restarts, cut links) while idempotent acks=all producers and consumers run; then a
//! final drain, a byte comparison of the replicas on disk, and the consistency checker's table.
//! `cargo test` runs a short run; `scripts/chaos --faults N [--brokers 5] [--seed S]` a long one.

#![allow(
    clippy::print_stdout,
    reason = "the run's report is this binary's output"
)]

mod checker;
mod disk;
mod drain;
mod nemesis;
#[path = "../netlab/mod.rs"]
#[allow(
    dead_code,
    unused_imports,
    reason = "shared with tests/it: this run uses part of the API, and cfg(test) is set here \
              without --test, so the lab's unit-test modules compile with their tests stripped"
)]
mod netlab;
mod options;
mod rng;
mod run;
mod sabotage;
mod system;
mod workload;

use std::process::ExitCode;
use std::time::Instant;

use options::Options;

fn main() -> ExitCode {
    let options = match Options::parse(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    if options.list {
        println!("chaos: test");
        return ExitCode::SUCCESS;
    }
    if !options.selected() {
        println!("\nrunning 0 tests\n");
        println!("test result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 1 filtered out\n");
        return ExitCode::SUCCESS;
    }
    println!("\nrunning 1 test");
    let started = Instant::now();
    if let Some(reason) = netlab::unavailable_reason() {
        if std::env::var_os("CI").is_some() {
            println!("chaos: the network lab cannot run here: {reason}");
            return verdict(false, started);
        }
        println!("test chaos ... ignored, network lab unavailable: {reason}");
        println!(
            "\ntest result: ok. 0 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in {:.2}s\n",
            started.elapsed().as_secs_f64()
        );
        return ExitCode::SUCCESS;
    }
    let passed = match run::run(&options) {
        Ok(clean) => clean,
        Err(error) => {
            println!("chaos run failed: {error:#}");
            false
        }
    };
    verdict(passed, started)
}

/// libtest-style closing lines, so test runners count this test.
fn verdict(passed: bool, started: Instant) -> ExitCode {
    let seconds = started.elapsed().as_secs_f64();
    if passed {
        println!("test chaos ... ok");
        println!(
            "\ntest result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in {seconds:.2}s\n"
        );
        ExitCode::SUCCESS
    } else {
        println!("test chaos ... FAILED");
        println!(
            "\ntest result: FAILED. 0 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in {seconds:.2}s\n"
        );
        ExitCode::FAILURE
    }
}
