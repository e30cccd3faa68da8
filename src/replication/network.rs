//! The raft network of every group over the cluster RPC: the calling side implements
//! openraft's `RaftNetworkV2` for one group and one target broker, the serving side
//! (`RaftHandler`) hands each decoded message to the local `Raft` of its group. Messages are
//! encoded with postcard; a snapshot travels as one call (the controller's state is small),
//! after the segment files of a partition snapshot, streamed in chunks (`snapshot_files.rs`).

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;

use bytes::{Buf as _, Bytes};
use openraft::async_runtime::WatchReceiver as _;
use openraft::error::{
    NetworkError, RPCError, RaftError, ReplicationClosed, StreamingError, Timeout, Unreachable,
};
use openraft::network::{RPCOption, RPCTypes, RaftNetworkFactory, RaftNetworkV2};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderRequest,
    TransferLeaderResponse, VoteRequest, VoteResponse,
};
use openraft::storage::RaftStateMachine;
use openraft::type_config::alias::{SnapshotOf, VoteOf};
use openraft::{Raft, RaftTypeConfig, SnapshotMeta};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::Instrument as _;

use super::rpc::{CallError, GroupId, Handler, HandlerFuture, Method, Peers};
use super::snapshot_files::{Chunk, Manifest, SnapshotFiles, new_transfer_id};
use super::types::{Entry, Payload, RecordBatch};
use crate::limits;

pub(crate) const APPEND_ENTRIES: Method = 0;
const VOTE: Method = 1;
const PRE_VOTE: Method = 2;
const FULL_SNAPSHOT: Method = 3;
const TRANSFER_LEADER: Method = 4;
const SNAPSHOT_CHUNK: Method = 5;

/// A snapshot on the wire: the leader's vote, the snapshot's metadata, its bytes and the
/// manifest of the segment files streamed before it (partition groups).
type SnapshotCall<C> = (
    VoteOf<C>,
    SnapshotMeta<
        openraft::type_config::alias::CommittedLeaderIdOf<C>,
        <C as RaftTypeConfig>::NodeId,
        <C as RaftTypeConfig>::Node,
    >,
    Bytes,
    Option<Manifest>,
);

/// Makes the `GroupNetwork` of one group towards each target.
pub(crate) struct GroupNetworkFactory<C> {
    local: u64,
    group: GroupId,
    peers: Arc<Peers>,
    files: Option<Arc<dyn SnapshotFiles>>,
    config: PhantomData<fn() -> C>,
}

impl<C> fmt::Debug for GroupNetworkFactory<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupNetworkFactory")
            .field("local", &self.local)
            .field("group", &self.group)
            .finish()
    }
}

impl<C> GroupNetworkFactory<C> {
    pub(crate) fn new(local: u64, group: GroupId, peers: Arc<Peers>) -> Self {
        GroupNetworkFactory {
            local,
            group,
            peers,
            files: None,
            config: PhantomData,
        }
    }

    /// Snapshots of this group carry segment files from `files`.
    pub(crate) fn with_snapshot_files(mut self, files: Arc<dyn SnapshotFiles>) -> Self {
        self.files = Some(files);
        self
    }
}

impl<C> RaftNetworkFactory<C> for GroupNetworkFactory<C>
where
    C: RaftTypeConfig<NodeId = u64>,
    C::Node: fmt::Display,
    C::Entry: WireEntry,
{
    type Network = GroupNetwork<C>;

    async fn new_client(&mut self, target: u64, node: &C::Node) -> GroupNetwork<C> {
        GroupNetwork {
            local: self.local,
            target,
            address: node.to_string(),
            group: self.group,
            peers: Arc::clone(&self.peers),
            files: self.files.clone(),
            config: PhantomData,
        }
    }
}

/// One group's messages to one target broker.
pub(crate) struct GroupNetwork<C> {
    local: u64,
    target: u64,
    address: String,
    group: GroupId,
    peers: Arc<Peers>,
    files: Option<Arc<dyn SnapshotFiles>>,
    config: PhantomData<fn() -> C>,
}

impl<C> fmt::Debug for GroupNetwork<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupNetwork")
            .field("target", &self.target)
            .field("group", &self.group)
            .finish()
    }
}

/// Why a call failed, before it is mapped to the error type of the calling method.
enum Failure<C: RaftTypeConfig> {
    Timeout(Timeout<C>),
    Unreachable(Unreachable<C>),
    Network(NetworkError<C>),
    Remote(RaftError<C>),
}

impl<C> GroupNetwork<C>
where
    C: RaftTypeConfig<NodeId = u64>,
{
    async fn call<Req, Resp>(
        &self,
        (method, action): (Method, RPCTypes),
        request: &Req,
        option: &RPCOption,
    ) -> Result<Resp, Failure<C>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
    {
        let payload = postcard::to_stdvec(request)
            .map_err(|error| Failure::Network(NetworkError::new(&error)))?;
        self.call_parts((method, action), vec![Bytes::from(payload)], option)
            .await
    }

    /// Sends a request already encoded as `parts` and decodes the answer.
    async fn call_parts<Resp>(
        &self,
        (method, action): (Method, RPCTypes),
        parts: Vec<Bytes>,
        option: &RPCOption,
    ) -> Result<Resp, Failure<C>>
    where
        Resp: DeserializeOwned,
    {
        let timeout = option.hard_ttl();
        let answer = self
            .peers
            .call_parts(
                self.target,
                &self.address,
                (self.group, method),
                parts,
                timeout,
            )
            .await;
        let bytes = match answer {
            Ok(bytes) => bytes,
            Err(CallError::Timeout(_)) => {
                return Err(Failure::Timeout(Timeout {
                    action,
                    id: self.local,
                    target: self.target,
                    timeout,
                }));
            }
            Err(error @ CallError::Unreachable(_)) => {
                return Err(Failure::Unreachable(Unreachable::new(&error)));
            }
            Err(error @ CallError::Remote(_)) => {
                return Err(Failure::Unreachable(Unreachable::new(&error)));
            }
        };
        let answer: Result<Resp, RaftError<C>> = postcard::from_bytes(&bytes)
            .map_err(|error| Failure::Network(NetworkError::new(&error)))?;
        answer.map_err(Failure::Remote)
    }

    /// Streams the segment files of a snapshot with data `data`, one chunk per call, and
    /// returns their manifest.
    async fn send_files(
        &self,
        files: &Arc<dyn SnapshotFiles>,
        data: &Bytes,
        option: &RPCOption,
    ) -> Result<Manifest, Failure<C>> {
        let outgoing = {
            let (files, data) = (Arc::clone(files), data.clone());
            tokio::task::spawn_blocking(move || files.outgoing(&data))
                .await
                .map_err(local_failure)?
                .map_err(local_failure)?
        };
        let outgoing = Arc::new(outgoing);
        let transfer = new_transfer_id();
        let pieces = outgoing.pieces();
        for (index, piece) in pieces.iter().enumerate() {
            let mut position = 0;
            while position < piece.len {
                let read = Arc::clone(&outgoing);
                let bytes = tokio::task::spawn_blocking(move || {
                    read.read(index, position, limits::SNAPSHOT_CHUNK_BYTES)
                })
                .await
                .map_err(local_failure)?
                .map_err(local_failure)?;
                if bytes.is_empty() {
                    break;
                }
                let len = bytes.len() as u64;
                let chunk = Chunk {
                    transfer,
                    base_offset: piece.base_offset,
                    position,
                    bytes: Bytes::from(bytes),
                };
                self.call::<_, ()>((SNAPSHOT_CHUNK, RPCTypes::InstallSnapshot), &chunk, option)
                    .await?;
                position += len;
            }
        }
        Ok(Manifest {
            transfer,
            log_start_offset: outgoing.log_start_offset,
            next_offset: outgoing.next_offset,
            pieces: pieces
                .iter()
                .map(|piece| (piece.base_offset, piece.len))
                .collect(),
        })
    }

    fn rpc_error(&self, failure: Failure<C>) -> RPCError<C> {
        match failure {
            Failure::Timeout(timeout) => RPCError::Timeout(timeout),
            Failure::Unreachable(unreachable) => RPCError::Unreachable(unreachable),
            Failure::Network(network) => RPCError::Network(network),
            // The only remote raft error is a fatal one: that node cannot serve raft now.
            Failure::Remote(error) => RPCError::Unreachable(Unreachable::new(&error)),
        }
    }
}

impl<C> RaftNetworkV2<C> for GroupNetwork<C>
where
    C: RaftTypeConfig<NodeId = u64>,
    C::Node: fmt::Display,
    C::Entry: WireEntry,
{
    type SnapshotData = Bytes;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<C>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<C>, RPCError<C>> {
        let parts = encode_append(rpc).map_err(|error| self.rpc_error(local_failure(error)))?;
        self.call_parts((APPEND_ENTRIES, RPCTypes::AppendEntries), parts, &option)
            .await
            .map_err(|failure| self.rpc_error(failure))
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<C>,
        option: RPCOption,
    ) -> Result<VoteResponse<C>, RPCError<C>> {
        self.call((VOTE, RPCTypes::Vote), &rpc, &option)
            .await
            .map_err(|failure| self.rpc_error(failure))
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<C>,
        option: RPCOption,
    ) -> Result<VoteResponse<C>, RPCError<C>> {
        self.call((PRE_VOTE, RPCTypes::Vote), &rpc, &option)
            .await
            .map_err(|failure| self.rpc_error(failure))
    }

    async fn full_snapshot(
        &mut self,
        vote: VoteOf<C>,
        snapshot: SnapshotOf<C, Bytes>,
        cancel: impl Future<Output = ReplicationClosed> + Send + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<C>, StreamingError<C>> {
        let sent = async {
            let manifest = match &self.files {
                Some(files) => Some(self.send_files(files, &snapshot.snapshot, &option).await?),
                None => None,
            };
            let call: SnapshotCall<C> = (vote, snapshot.meta, snapshot.snapshot, manifest);
            self.call((FULL_SNAPSHOT, RPCTypes::InstallSnapshot), &call, &option)
                .await
        };
        tokio::select! {
            closed = cancel => Err(StreamingError::Closed(closed)),
            sent = sent => sent.map_err(|failure| match failure {
                Failure::Timeout(timeout) => StreamingError::Timeout(timeout),
                Failure::Unreachable(unreachable) => StreamingError::Unreachable(unreachable),
                Failure::Network(network) => StreamingError::Network(network),
                Failure::Remote(error) => {
                    StreamingError::Unreachable(Unreachable::new(&error))
                }
            }),
        }
    }

    async fn transfer_leader(
        &mut self,
        request: TransferLeaderRequest<C>,
        option: RPCOption,
    ) -> Result<TransferLeaderResponse<C>, RPCError<C>> {
        self.call(
            (TRANSFER_LEADER, RPCTypes::TransferLeader),
            &request,
            &option,
        )
        .await
        .map_err(|failure| self.rpc_error(failure))
    }
}

/// A failure on this side of a call (reading what a snapshot sends).
fn local_failure<C: RaftTypeConfig, E: std::error::Error + 'static>(error: E) -> Failure<C> {
    Failure::Network(NetworkError::new(&error))
}

/// Serves one group's raft messages with the local `Raft`.
pub(crate) struct RaftHandler<C, SM>
where
    C: RaftTypeConfig,
    SM: RaftStateMachine<C>,
{
    raft: Raft<C, SM>,
    files: Option<Arc<dyn SnapshotFiles>>,
    /// The group served and this broker's id, for the `raft` span of the work a call brings.
    group: GroupId,
    node_id: u64,
}

impl<C, SM> RaftHandler<C, SM>
where
    C: RaftTypeConfig,
    SM: RaftStateMachine<C>,
{
    pub(crate) fn new(raft: Raft<C, SM>, group: GroupId, node_id: u64) -> Self {
        RaftHandler {
            raft,
            files: None,
            group,
            node_id,
        }
    }

    /// Received snapshots of this group carry segment files, staged through `files`.
    pub(crate) fn with_snapshot_files(mut self, files: Arc<dyn SnapshotFiles>) -> Self {
        self.files = Some(files);
        self
    }
}

/// Runs a blocking step of the snapshot files on the blocking pool.
async fn on_files(
    files: Option<Arc<dyn SnapshotFiles>>,
    step: impl FnOnce(&dyn SnapshotFiles) -> Result<(), super::Error> + Send + 'static,
) -> Result<(), String> {
    let files = files.ok_or_else(|| "this group's snapshots carry no files".to_owned())?;
    tokio::task::spawn_blocking(move || step(files.as_ref()))
        .await
        .map_err(|error| format!("snapshot files: {error}"))?
        .map_err(|error| {
            tracing::warn!(%error, "a snapshot transfer was refused");
            format!("snapshot files: {error}")
        })
}

/// An entry whose record batch travels beside the AppendEntries header, uncopied.
pub(crate) trait WireEntry {
    /// Takes the entry's batch out (leaving it empty), if it carries one.
    fn detach(&mut self) -> Option<Bytes>;
    /// Puts back a batch `detach` took out; false if this entry carries none.
    fn attach(&mut self, batch: Bytes) -> bool;
}

impl WireEntry for Entry {
    fn detach(&mut self) -> Option<Bytes> {
        match &mut self.payload {
            Payload::Normal(RecordBatch(batch)) => Some(std::mem::take(batch)),
            _ => None,
        }
    }

    fn attach(&mut self, batch: Bytes) -> bool {
        match &mut self.payload {
            Payload::Normal(RecordBatch(slot)) => {
                *slot = batch;
                true
            }
            _ => false,
        }
    }
}

/// AppendEntries on the wire: `header_len: u32`, the header (postcard of the request with its
/// batches taken out, and of their lengths), then the batches back to back: they are written
/// from the log's buffers and read as slices of the received frame, never copied.
fn encode_append<C>(mut request: AppendEntriesRequest<C>) -> Result<Vec<Bytes>, postcard::Error>
where
    C: RaftTypeConfig,
    C::Entry: WireEntry,
{
    let batches: Vec<Bytes> = request
        .entries
        .iter_mut()
        .filter_map(WireEntry::detach)
        .collect();
    let lengths: Vec<usize> = batches.iter().map(Bytes::len).collect();
    let header = postcard::to_stdvec(&(&request, &lengths))?;
    let mut first = Vec::with_capacity(4 + header.len());
    first.extend_from_slice(&(header.len() as u32).to_be_bytes());
    first.extend_from_slice(&header);
    let mut parts = Vec::with_capacity(batches.len() + 1);
    parts.push(Bytes::from(first));
    parts.extend(batches);
    Ok(parts)
}

/// The request `encode_append` wrote; a header that does not match the bytes after it (a
/// peer that lies) is refused.
fn decode_append<C>(mut payload: Bytes) -> Result<AppendEntriesRequest<C>, String>
where
    C: RaftTypeConfig,
    C::Entry: WireEntry,
{
    let malformed = |what: &str| format!("decode: AppendEntries {what}");
    let header_len = payload
        .get(..4)
        .and_then(|len| <[u8; 4]>::try_from(len).ok())
        .map(|len| u32::from_be_bytes(len) as usize)
        .ok_or_else(|| malformed("shorter than its header length"))?;
    if payload.len() - 4 < header_len {
        return Err(malformed("shorter than its header"));
    }
    let header = payload.slice(4..4 + header_len);
    payload.advance(4 + header_len);
    let (mut request, lengths): (AppendEntriesRequest<C>, Vec<usize>) = decode(&header)?;
    let mut lengths = lengths.into_iter().peekable();
    for entry in &mut request.entries {
        let batch = match lengths.peek() {
            Some(&len) if len <= payload.len() => payload.slice(..len),
            Some(_) => return Err(malformed("batch longer than the frame")),
            None => Bytes::new(),
        };
        if entry.attach(batch) {
            let len = lengths
                .next()
                .ok_or_else(|| malformed("entry without its batch"))?;
            payload.advance(len);
        }
    }
    if lengths.next().is_some() || !payload.is_empty() {
        return Err(malformed("batches do not match their entries"));
    }
    Ok(request)
}

fn encode<T: Serialize>(value: &T) -> Result<Bytes, String> {
    postcard::to_stdvec(value)
        .map(Bytes::from)
        .map_err(|error| format!("encode: {error}"))
}

fn decode<T: DeserializeOwned>(payload: &[u8]) -> Result<T, String> {
    postcard::from_bytes(payload).map_err(|error| format!("decode: {error}"))
}

impl<C, SM> Handler for RaftHandler<C, SM>
where
    C: RaftTypeConfig<NodeId = u64, Term = u64>,
    C::Entry: WireEntry,
    SM: RaftStateMachine<C, SnapshotData = Bytes>,
{
    fn handle(&self, method: Method, payload: Bytes) -> HandlerFuture {
        let raft = self.raft.clone();
        let files = self.files.clone();
        let (group, node_id) = (self.group, self.node_id);
        Box::pin(async move {
            match method {
                APPEND_ENTRIES => {
                    let request: AppendEntriesRequest<C> = decode_append(payload)?;
                    // Entries to store are raft work worth a span; a heartbeat is not.
                    let span = if request.entries.is_empty() {
                        tracing::Span::none()
                    } else {
                        let term = raft.metrics().borrow_watched().current_term;
                        crate::telemetry::raft_span(group, node_id, term)
                    };
                    encode(&raft.append_entries(request).instrument(span).await)
                }
                VOTE => encode(&raft.vote(decode(&payload)?).await),
                PRE_VOTE => encode(&raft.pre_vote(decode(&payload)?).await),
                FULL_SNAPSHOT => {
                    let (vote, meta, snapshot, manifest): SnapshotCall<C> = decode(&payload)?;
                    let term = raft.metrics().borrow_watched().current_term;
                    let span = crate::telemetry::raft_span(group, node_id, term);
                    async {
                        if let Some(manifest) = manifest {
                            on_files(files, move |files| files.seal(&manifest)).await?;
                        }
                        let snapshot = openraft::Snapshot { meta, snapshot };
                        let installed = raft
                            .install_full_snapshot(vote, snapshot)
                            .await
                            .map_err(RaftError::<C>::Fatal);
                        encode(&installed)
                    }
                    .instrument(span)
                    .await
                }
                TRANSFER_LEADER => {
                    let answered = raft
                        .handle_transfer_leader(decode(&payload)?)
                        .await
                        .map_err(RaftError::<C>::Fatal);
                    encode(&answered)
                }
                SNAPSHOT_CHUNK => {
                    let chunk: Chunk = decode(&payload)?;
                    on_files(files, move |files| files.receive(&chunk)).await?;
                    encode(&Ok::<(), RaftError<C>>(()))
                }
                other => Err(format!("unknown raft method {other}")),
            }
        })
    }
}

/// Fuzzing: decodes `payload` as a partition group's AppendEntries, as a follower decodes what
/// its leader sent; whether it decoded.
#[cfg(fuzzing)]
pub(crate) fn decode_partition_append(payload: Bytes) -> bool {
    decode_append::<super::types::TypeConfig>(payload).is_ok()
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;
    use crate::replication::types::{Membership, RaftNode, TypeConfig, Vote, log_id};

    fn request() -> AppendEntriesRequest<TypeConfig> {
        let membership = Membership::new(
            vec![BTreeSet::from([1])],
            BTreeMap::from([(1, RaftNode::default())]),
        )
        .expect("valid membership");
        let entry = |index, payload| Entry {
            log_id: log_id(2, index),
            payload,
        };
        let batch = |fill: u8, len| Payload::Normal(RecordBatch(Bytes::from(vec![fill; len])));
        AppendEntriesRequest {
            vote: Vote::new_committed(2, 1),
            prev_log_id: Some(log_id(1, 9)),
            entries: vec![
                entry(10, batch(1, 100)),
                entry(11, Payload::Blank),
                entry(12, Payload::Membership(membership)),
                entry(13, batch(2, 3_000)),
            ],
            leader_commit: Some(log_id(2, 10)),
        }
    }

    fn frame(parts: Vec<Bytes>) -> Bytes {
        Bytes::from(parts.concat())
    }

    #[test]
    fn append_entries_round_trip_with_their_batches_beside_the_header() {
        let parts = encode_append(request()).expect("encode");
        assert_eq!(parts.len(), 3, "the header, then each batch as it was");
        assert_eq!(parts[2].as_ref(), &[2u8; 3_000][..]);
        let decoded: AppendEntriesRequest<TypeConfig> =
            decode_append(frame(parts)).expect("decode");
        let sent = request();
        assert_eq!(decoded.vote, sent.vote);
        assert_eq!(decoded.prev_log_id, sent.prev_log_id);
        assert_eq!(decoded.entries, sent.entries);
        assert_eq!(decoded.leader_commit, sent.leader_commit);
    }

    #[test]
    fn a_header_that_does_not_match_its_batches_is_refused() {
        let parts = encode_append(request()).expect("encode");
        let whole = frame(parts.clone());
        // Cut anywhere: refused, never a panic.
        for cut in 0..whole.len() {
            assert!(
                decode_append::<TypeConfig>(whole.slice(..cut)).is_err(),
                "cut at {cut}"
            );
        }
        let mut extra = whole.to_vec();
        extra.push(0);
        assert!(decode_append::<TypeConfig>(Bytes::from(extra)).is_err());
        // A batch missing from the header's lengths.
        let mut short = request();
        let batches: Vec<Bytes> = short
            .entries
            .iter_mut()
            .filter_map(WireEntry::detach)
            .collect();
        let header = postcard::to_stdvec(&(&short, &vec![batches[0].len()])).expect("encode");
        let mut lying = (header.len() as u32).to_be_bytes().to_vec();
        lying.extend_from_slice(&header);
        lying.extend_from_slice(&batches[0]);
        let refused = decode_append::<TypeConfig>(Bytes::from(lying)).expect_err("refused");
        assert!(refused.contains("entry without its batch"), "{refused}");
    }
}
