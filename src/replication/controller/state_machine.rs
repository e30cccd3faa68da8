//! The controller's raft state machine: applies metadata commands (one per raft entry, the
//! command as JSON in the single record of the entry's batch) to `metadata::State` in log
//! order, keeps the answers of recent commands for their proposers, publishes each new state,
//! and snapshots the state to a file of the controller's directory.

use std::collections::VecDeque;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use futures_util::{Stream, TryStreamExt};
use openraft::storage::{EntryResponder, RaftSnapshotBuilder, RaftStateMachine};
use openraft::type_config::alias::{LogIdOf, SnapshotMetaOf, SnapshotOf, StoredMembershipOf};
use openraft::{EntryPayload, Snapshot, SnapshotMeta};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::limits::{CONTROLLER_ANSWERS_KEPT, CONTROLLER_COMMAND_BYTES_MAX};
use crate::metadata::{self, Command, Outcome, Rejection};
use crate::replication::types::{RecordBatch, TypeConfig};
use crate::storage;

const SNAPSHOT_FILE: &str = "controller.snapshot";
/// The key of the record that carries a command.
const COMMAND_KEY: &[u8] = b"metadata-command";

/// What applying a command answered.
pub(crate) type Answer = Result<Outcome, Rejection>;

/// The state after some prefix of the metadata log.
#[derive(Debug, Clone, Default)]
pub(crate) struct Published {
    pub(crate) state: Arc<metadata::State>,
    /// The raft index of the last applied entry (0 before any).
    pub(crate) applied_index: u64,
}

/// What a snapshot file and a snapshot transfer hold.
#[derive(Debug, Serialize, Deserialize)]
struct SnapshotData {
    last_log_id: Option<LogIdOf<TypeConfig>>,
    membership: StoredMembershipOf<TypeConfig>,
    state: metadata::State,
}

/// The raft entry of `command`: a v2 batch of one record.
pub(crate) fn entry_of(command: &Command, now_ms: i64) -> Result<RecordBatch, serde_json::Error> {
    let value = serde_json::to_vec(command)?;
    let record = storage::Record {
        key: Some(COMMAND_KEY.to_vec()),
        value: Some(value),
    };
    Ok(RecordBatch(Bytes::from(storage::build_batch(
        &[record],
        now_ms,
    ))))
}

fn command_of(batch: &RecordBatch) -> io::Result<Command> {
    let records = storage::read_records(&batch.0, CONTROLLER_COMMAND_BYTES_MAX)
        .map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error))?;
    let [(_, record)] = records.as_slice() else {
        return Err(invalid("a metadata entry must hold exactly one record"));
    };
    let value = record
        .value
        .as_deref()
        .ok_or_else(|| invalid("a metadata entry has no value"))?;
    serde_json::from_slice(value).map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error))
}

fn invalid(message: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// Answers of recently applied commands, by raft index.
#[derive(Debug, Default)]
pub(crate) struct Answers {
    recent: Mutex<VecDeque<(u64, Answer)>>,
}

impl Answers {
    fn push(&self, index: u64, answer: Answer) {
        let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        if recent.len() == CONTROLLER_ANSWERS_KEPT {
            recent.pop_front();
        }
        recent.push_back((index, answer));
    }

    /// The answer of the command applied at `index`, if still kept.
    pub(crate) fn take(&self, index: u64) -> Option<Answer> {
        let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        let at = recent.iter().position(|(i, _)| *i == index)?;
        recent.remove(at).map(|(_, answer)| answer)
    }
}

/// The controller's state machine.
#[derive(Debug)]
pub(crate) struct StateMachine {
    dir: PathBuf,
    last_applied: Option<LogIdOf<TypeConfig>>,
    membership: StoredMembershipOf<TypeConfig>,
    state: metadata::State,
    answers: Arc<Answers>,
    published: watch::Sender<Published>,
}

impl StateMachine {
    /// Opens the state machine in `dir`, from its snapshot file if there is one.
    pub(crate) fn open(
        dir: PathBuf,
        answers: Arc<Answers>,
        published: watch::Sender<Published>,
    ) -> io::Result<StateMachine> {
        let mut machine = StateMachine {
            dir,
            last_applied: None,
            membership: StoredMembershipOf::<TypeConfig>::default(),
            state: metadata::State::default(),
            answers,
            published,
        };
        if let Some(data) = machine.read_snapshot()? {
            machine.restore(data);
        }
        Ok(machine)
    }

    fn read_snapshot(&self) -> io::Result<Option<SnapshotData>> {
        match std::fs::read(self.dir.join(SNAPSHOT_FILE)) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error)),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error),
        }
    }

    fn restore(&mut self, data: SnapshotData) {
        self.last_applied = data.last_log_id;
        self.membership = data.membership;
        self.state = data.state;
        self.publish();
    }

    fn publish(&self) {
        let published = Published {
            state: Arc::new(self.state.clone()),
            applied_index: self.last_applied.map_or(0, |id| id.index),
        };
        self.published.send_replace(published);
    }

    fn snapshot_bytes(&self) -> io::Result<Bytes> {
        let data = SnapshotData {
            last_log_id: self.last_applied,
            membership: self.membership.clone(),
            state: self.state.clone(),
        };
        serde_json::to_vec(&data)
            .map(Bytes::from)
            .map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error))
    }

    fn write_snapshot(&self, bytes: &[u8]) -> io::Result<()> {
        storage::write_atomically(&self.dir, SNAPSHOT_FILE, bytes)
            .map_err(|error| io::Error::other(error.to_string()))
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotData = Bytes;
    type SnapshotBuilder = Builder;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogIdOf<TypeConfig>>, StoredMembershipOf<TypeConfig>), io::Error> {
        Ok((self.last_applied, self.membership.clone()))
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> Result<(), io::Error>
    where
        Strm: Stream<Item = Result<EntryResponder<TypeConfig>, io::Error>> + Unpin + Send,
    {
        while let Some((entry, responder)) = entries.try_next().await? {
            self.last_applied = Some(entry.log_id);
            match &entry.payload {
                EntryPayload::Blank => {}
                EntryPayload::Membership(membership) => {
                    self.membership = StoredMembershipOf::<TypeConfig>::new(
                        Some(entry.log_id),
                        membership.clone(),
                    );
                }
                EntryPayload::Normal(batch) => {
                    let answer = match command_of(batch) {
                        Ok(command) => self.state.apply(&command),
                        Err(error) => {
                            // Every broker decodes the same bytes the same way, so they all
                            // skip this entry alike; the proposer gets the reason.
                            tracing::error!(index = entry.log_id.index, %error, "undecodable metadata entry skipped");
                            Err(Rejection::Undecodable {
                                reason: error.to_string(),
                            })
                        }
                    };
                    self.answers.push(entry.log_id.index, answer);
                }
            }
            self.publish();
            if let Some(responder) = responder {
                responder.send(());
            }
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Builder {
        Builder {
            dir: self.dir.clone(),
            meta: SnapshotMeta {
                last_log_id: self.last_applied,
                last_membership: self.membership.clone(),
            },
            bytes: self.snapshot_bytes(),
        }
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMetaOf<TypeConfig>,
        snapshot: Bytes,
    ) -> Result<(), io::Error> {
        let data: SnapshotData = serde_json::from_slice(&snapshot)
            .map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error))?;
        if data.last_log_id != meta.last_log_id {
            return Err(invalid("snapshot data and metadata disagree"));
        }
        self.write_snapshot(&snapshot)?;
        self.restore(data);
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<SnapshotOf<TypeConfig, Bytes>>, io::Error> {
        let Some(data) = self.read_snapshot()? else {
            return Ok(None);
        };
        let meta = SnapshotMeta {
            last_log_id: data.last_log_id,
            last_membership: data.membership.clone(),
        };
        let bytes = serde_json::to_vec(&data)
            .map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error))?;
        Ok(Some(Snapshot {
            meta,
            snapshot: Bytes::from(bytes),
        }))
    }
}

/// Writes a snapshot of the state as it was when the builder was made.
#[derive(Debug)]
pub(crate) struct Builder {
    dir: PathBuf,
    meta: SnapshotMetaOf<TypeConfig>,
    bytes: io::Result<Bytes>,
}

impl RaftSnapshotBuilder<TypeConfig> for Builder {
    type SnapshotData = Bytes;

    async fn build_snapshot(&mut self) -> Result<SnapshotOf<TypeConfig, Bytes>, io::Error> {
        let bytes = match &self.bytes {
            Ok(bytes) => bytes.clone(),
            Err(error) => return Err(io::Error::new(error.kind(), error.to_string())),
        };
        let dir = self.dir.clone();
        let written = bytes.clone();
        tokio::task::spawn_blocking(move || {
            storage::write_atomically(&dir, SNAPSHOT_FILE, &written)
                .map_err(|error| io::Error::other(error.to_string()))
        })
        .await
        .map_err(io::Error::other)??;
        Ok(Snapshot {
            meta: self.meta.clone(),
            snapshot: bytes,
        })
    }
}
