//! End-to-end tests: each test starts the real `tidelog` binary on 127.0.0.1:0 in its own TempDir
//! (clusters: several processes, `cluster.rs`, or several brokers in the test's own process,
//! `cluster_inproc.rs`) and drives it with librdkafka (rdkafka), kcat and hand-built frames. No
//! fixed sleeps.

mod acks;
mod admin;
mod cli;
mod cluster;
mod cluster_inproc;
mod compaction;
mod connection_bounds;
mod crash;
mod decompression_bomb;
mod groups;
mod groups_cooperative;
mod groups_raw;
mod harness;
mod idempotence;
mod kcat;
mod lab;
mod list_offsets;
mod malformed;
mod memory;
mod metrics;
#[path = "../netlab/mod.rs"]
#[allow(
    dead_code,
    reason = "the lab's API is shared with tests/chaos, which uses more of it"
)]
mod netlab;
mod operations;
mod otlp;
mod probes;
mod produce_consume;
mod quotas;
mod raft_control_batches;
mod raw;
mod replication;
mod restart;
mod sasl;
mod tls;
mod transactions;
mod transactions_raw;
