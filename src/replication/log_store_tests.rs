//! Tests of the raft log store: openraft's storage conformance suite, restart, group commit,
//! and raft control batches as the fetch path and the transaction state see them.

use std::collections::BTreeSet;
use std::io;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use openraft::storage::{IOFlushed, LogState, RaftLogStorage, RaftStateMachine};
use openraft::testing::log::{StoreBuilder, Suite};
use openraft::type_config::TypeConfigExt;
use openraft::{RaftLogReader, RaftSnapshotBuilder, StorageError, StoredMembership};
use tempfile::TempDir;

use super::entry_codec::RAFT_BLANK_CONTROL_TYPE;
use super::log_store::LogStore;
use super::types::{Entry, LogId, Membership, Payload, RecordBatch, TypeConfig, Vote, log_id};
use crate::storage::{self, Log, LogSettings, test_batches};

type SnapshotMeta = openraft::SnapshotMeta<super::types::CommittedLeaderId, u64, super::RaftNode>;
type Snapshot = openraft::Snapshot<super::types::CommittedLeaderId, u64, super::RaftNode, ()>;

type Stored = StoredMembership<super::types::CommittedLeaderId, u64, super::RaftNode>;

#[derive(Debug, Default)]
struct Applied {
    last_applied: Option<LogId>,
    membership: Stored,
    snapshot: Option<SnapshotMeta>,
}

/// The least state machine the suite needs: what was applied and the membership; its
/// snapshot builder shares the state, so a built snapshot becomes the current one.
#[derive(Debug, Default, Clone)]
struct AppliedOnly(Arc<std::sync::Mutex<Applied>>);

impl AppliedOnly {
    fn state(&self) -> std::sync::MutexGuard<'_, Applied> {
        self.0.lock().expect("state machine lock")
    }
}

impl RaftSnapshotBuilder<TypeConfig> for AppliedOnly {
    type SnapshotData = ();

    async fn build_snapshot(&mut self) -> Result<Snapshot, io::Error> {
        let mut state = self.state();
        let meta = SnapshotMeta {
            last_log_id: state.last_applied,
            last_membership: state.membership.clone(),
        };
        state.snapshot = Some(meta.clone());
        Ok(Snapshot { meta, snapshot: () })
    }
}

impl RaftStateMachine<TypeConfig> for AppliedOnly {
    type SnapshotData = ();
    type SnapshotBuilder = AppliedOnly;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, Stored), io::Error> {
        let state = self.state();
        Ok((state.last_applied, state.membership.clone()))
    }

    async fn apply<S>(&mut self, mut entries: S) -> Result<(), io::Error>
    where
        S: futures_util::Stream<
                Item = Result<openraft::storage::EntryResponder<TypeConfig>, io::Error>,
            > + Unpin
            + openraft::OptionalSend,
    {
        while let Some(item) = entries.next().await {
            let (entry, responder) = item?;
            {
                let mut state = self.state();
                state.last_applied = Some(entry.log_id);
                if let Payload::Membership(membership) = &entry.payload {
                    state.membership = Stored::new(Some(entry.log_id), membership.clone());
                }
            }
            if let Some(responder) = responder {
                responder.send(());
            }
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> AppliedOnly {
        self.clone()
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        _snapshot: (),
    ) -> Result<(), io::Error> {
        let mut state = self.state();
        state.last_applied = meta.last_log_id;
        state.membership = meta.last_membership.clone();
        state.snapshot = Some(meta.clone());
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, io::Error> {
        let state = self.state();
        Ok(state
            .snapshot
            .clone()
            .map(|meta| Snapshot { meta, snapshot: () }))
    }
}

/// Small segments, so the suite and the tests cross segment boundaries.
fn settings() -> LogSettings {
    LogSettings {
        segment_bytes_max: 600,
        ..LogSettings::default()
    }
}

async fn open_store(dir: &TempDir) -> LogStore {
    let log = Log::open(dir.path(), settings(), 0).expect("open partition log");
    LogStore::open(log, 1).await.expect("open log store")
}

struct TempStores;

impl StoreBuilder<TypeConfig, LogStore, AppliedOnly, TempDir> for TempStores {
    async fn build(&self) -> Result<(TempDir, LogStore, AppliedOnly), StorageError<TypeConfig>> {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = open_store(&dir).await;
        Ok((dir, store, AppliedOnly::default()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openraft_storage_suite_passes_against_the_segment_log() {
    Suite::test_all(TempStores)
        .await
        .expect("openraft log storage suite");
}

/// Appends `entries` and waits for their flush callback.
async fn append_durably(store: &mut LogStore, entries: Vec<Entry>) {
    let (sender, receiver) = TypeConfig::oneshot();
    store
        .append(entries, IOFlushed::signal(sender))
        .await
        .expect("append");
    receiver
        .await
        .expect("flush callback fired")
        .expect("flushed");
}

fn data(index: u64, term: u64, record_count: i32) -> Entry {
    let batch = test_batches::build(record_count, 1_000 + index as i64, 16);
    Entry {
        log_id: log_id(term, index),
        payload: Payload::Normal(RecordBatch(Bytes::from(batch))),
    }
}

fn blank(index: u64, term: u64) -> Entry {
    Entry {
        log_id: log_id(term, index),
        payload: Payload::Blank,
    }
}

fn membership(index: u64, term: u64) -> Entry {
    let nodes = std::collections::BTreeMap::from([(
        1,
        super::RaftNode {
            rpc_addr: "127.0.0.1:1".into(),
        },
    )]);
    let membership = Membership::new(vec![BTreeSet::from([1])], nodes).expect("membership");
    Entry {
        log_id: log_id(term, index),
        payload: Payload::Membership(membership),
    }
}

/// Entry payloads compared by content; a normal entry's stored batch has its base offset and
/// partitionLeaderEpoch set, so compare from the CRC on (the bytes the producer's CRC covers).
pub(super) fn same_entry(read: &Entry, written: &Entry) -> bool {
    read.log_id == written.log_id
        && match (&read.payload, &written.payload) {
            (Payload::Normal(RecordBatch(read)), Payload::Normal(RecordBatch(written))) => {
                read.get(17..) == written.get(17..)
            }
            (read, written) => read == written,
        }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reopened_log_store_has_the_same_entries_vote_and_purge_point() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut store = open_store(&dir).await;
    let mut written = vec![membership(0, 0), blank(1, 1)];
    written.extend((2..20).map(|index| data(index, 1 + index / 8, 1 + (index % 3) as i32)));
    append_durably(&mut store, written.clone()).await;
    let vote = Vote::new_committed(3, 1);
    store.save_vote(&vote).await.expect("save vote");
    store.purge(log_id(1, 4)).await.expect("purge");
    store
        .truncate_after(Some(log_id(3, 17)))
        .await
        .expect("truncate");
    written.truncate(18);
    let kafka_offsets: Vec<Option<i64>> = (0..20)
        .map(|index| store.reader().offset_of(index))
        .collect();
    let state_before = store.get_log_state().await.expect("log state");
    let entries_before = store.try_get_log_entries(0..100).await.expect("read");
    store.close().await.expect("close");

    let mut store = open_store(&dir).await;
    assert_eq!(store.read_vote().await.expect("vote"), Some(vote));
    assert_eq!(
        store.get_log_state().await.expect("log state"),
        state_before
    );
    assert_eq!(
        state_before,
        LogState {
            last_purged_log_id: Some(log_id(1, 4)),
            last_log_id: Some(log_id(3, 17)),
        }
    );
    let entries = store.try_get_log_entries(0..100).await.expect("read");
    assert_eq!(entries, entries_before);
    assert_eq!(entries.len(), 13);
    for (read, written) in entries.iter().zip(&written[5..]) {
        assert!(same_entry(read, written), "{read:?} != {written:?}");
    }
    let reopened: Vec<Option<i64>> = (0..20)
        .map(|index| store.reader().offset_of(index))
        .collect();
    assert_eq!(reopened, kafka_offsets);
    // Appends continue at the next index and offset.
    append_durably(&mut store, vec![blank(18, 3)]).await;
    let next = store.reader().offset_of(18).expect("offset of 18");
    let last_written = store.reader().offset_of(17).expect("offset of 17");
    assert_eq!(
        next,
        last_written + 1 + (17 % 3),
        "entry 17 holds 1 + 17 % 3 records"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_share_fsyncs_and_each_callback_fires_after_its_data_is_durable() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut store = open_store(&dir).await;
    let mut receivers = Vec::new();
    for index in 0..200 {
        let (sender, receiver) = TypeConfig::oneshot();
        store
            .append(vec![data(index, 1, 1)], IOFlushed::signal(sender))
            .await
            .expect("append");
        // Readable as soon as append returns, before the fsync.
        let read = store
            .try_get_log_entries(index..=index)
            .await
            .expect("read");
        assert_eq!(read.len(), 1);
        receivers.push(receiver);
    }
    for receiver in receivers {
        receiver.await.expect("callback").expect("flushed");
    }
    let flushed = store.reader().with_log(|log| log.flushed_offset());
    assert_eq!(flushed, store.reader().with_log(|log| log.log_end_offset()));
}

/// The fetch path (`Log::read`, as `Broker::fetch` calls it) returns raft control batches with
/// the data around them: each takes one offset, offsets stay contiguous, and record readers,
/// producer state and the last stable offset ignore them, even inside an open transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raft_control_batches_take_one_offset_and_leave_fetch_and_transactions_alone() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut store = open_store(&dir).await;
    let producer = storage::Producer {
        producer_id: 9,
        producer_epoch: 0,
        base_sequence: 0,
        is_transactional: true,
        is_control: false,
    };
    let record = storage::Record {
        key: Some(b"k".to_vec()),
        value: Some(b"v".to_vec()),
    };
    let txn_batch = storage::build_with(&[record.clone(), record], 5, producer);
    let commit = storage::build_marker(true, 0, 9, 0, 6);
    let normal = |index, bytes: Vec<u8>| Entry {
        log_id: log_id(1, index),
        payload: Payload::Normal(RecordBatch(Bytes::from(bytes))),
    };
    append_durably(
        &mut store,
        vec![
            membership(0, 1),
            data(1, 1, 3),
            normal(2, txn_batch),
            blank(3, 1),
            membership(4, 1),
        ],
    )
    .await;
    let offsets: Vec<i64> = (0..5)
        .map(|index| store.reader().offset_of(index).expect("offset"))
        .collect();
    assert_eq!(
        offsets,
        [0, 1, 4, 6, 7],
        "control batches take one offset each"
    );
    let after: Vec<Option<i64>> = (0..6)
        .map(|index| store.reader().offset_after(index))
        .collect();
    assert_eq!(after, [Some(1), Some(4), Some(6), Some(7), Some(8), None]);
    let end = store.reader().with_log(|log| log.log_end_offset());
    assert_eq!(end, 8);
    // The transaction stays open across raft control batches: LSO is its first offset.
    assert_eq!(
        store.reader().with_log(|log| log.last_stable_offset(end)),
        4
    );
    append_durably(&mut store, vec![normal(5, commit)]).await;
    let end = store.reader().with_log(|log| log.log_end_offset());
    assert_eq!(
        store.reader().with_log(|log| log.last_stable_offset(end)),
        end
    );
    // Reads stay within one segment, as Kafka's do: fetch on until the end, like a consumer.
    let mut fetched = Vec::new();
    let mut next = 0;
    while next < end {
        let bytes = store
            .reader()
            .with_log(|log| log.read(next, end, 1 << 20, true))
            .expect("fetch read");
        let mut rest = &bytes[..];
        while let Ok(header) = storage::BatchHeader::parse(rest) {
            next = header.last_offset() + 1;
            rest = rest.get(header.total_len()..).unwrap_or_default();
        }
        fetched.extend_from_slice(&bytes);
    }
    let mut bases = Vec::new();
    let mut rest = &fetched[..];
    while let Ok(header) = storage::BatchHeader::parse(rest) {
        bases.push((header.base_offset, header.is_control(), header.producer_id));
        rest = rest.get(header.total_len()..).unwrap_or_default();
    }
    assert_eq!(
        bases,
        [
            (0, true, -1),
            (1, false, -1),
            (4, false, 9),
            (6, true, -1),
            (7, true, -1),
            (8, true, 9)
        ]
    );
    let control = storage::read_control_record(
        store
            .reader()
            .with_log(|log| log.read(6, 7, 1 << 20, true))
            .expect("read at a control batch")
            .as_ref(),
        1 << 16,
    )
    .expect("control record")
    .expect("a control batch");
    assert_eq!(control.control_type, RAFT_BLANK_CONTROL_TYPE);
    let records = storage::read_records(&fetched, 1 << 20).expect("records");
    let record_offsets: Vec<i64> = records.iter().map(|(offset, _)| *offset).collect();
    assert_eq!(
        record_offsets,
        [1, 2, 3, 4, 5],
        "readers skip every control batch"
    );
    let entries = storage::read_entries(&fetched, 1 << 20).expect("entries");
    assert_eq!(
        entries.len(),
        6,
        "five records and the COMMIT marker, no raft entry"
    );
    assert!(
        store
            .reader()
            .with_log(|log| log.aborted_transactions(0, end).is_empty())
    );
}
