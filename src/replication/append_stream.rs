//! The follower's side of pipelined AppendEntries: the requests of one group are handed to
//! openraft's `Raft::stream_append` in the order they arrived, so a leader may send the next
//! one before the answer to the last (which waits for this broker's fsync), and each answer
//! goes back to its own request.

use std::collections::VecDeque;

use futures_util::StreamExt as _;
use openraft::raft::{AppendEntriesRequest, StreamAppendResult};
use openraft::storage::RaftStateMachine;
use openraft::{Raft, RaftTypeConfig};
use tokio::sync::{mpsc, oneshot};

use crate::limits::RAFT_APPEND_STREAM_QUEUE;

/// What a submitted request gets: openraft's answer, or why it got none (the stream it was in
/// ended at an earlier request's error, or raft stopped).
pub(crate) type StreamAnswer<C> = Result<StreamAppendResult<C>, String>;

type Submitted<C> = (AppendEntriesRequest<C>, oneshot::Sender<StreamAnswer<C>>);

/// One group's ordered queue of AppendEntries into its local raft; the task feeding raft ends
/// when this is dropped.
pub(crate) struct AppendStream<C: RaftTypeConfig> {
    requests: mpsc::Sender<Submitted<C>>,
}

impl<C: RaftTypeConfig> AppendStream<C> {
    pub(crate) fn start<SM>(raft: Raft<C, SM>) -> Self
    where
        SM: RaftStateMachine<C>,
    {
        let (requests, queued) = mpsc::channel(RAFT_APPEND_STREAM_QUEUE);
        tokio::spawn(feed(raft, queued));
        AppendStream { requests }
    }

    /// Queues `request` behind the ones submitted before it. Refused when the queue is full
    /// (a leader pipelines far fewer) or the feeding task is gone.
    pub(crate) fn submit(
        &self,
        request: AppendEntriesRequest<C>,
    ) -> Result<oneshot::Receiver<StreamAnswer<C>>, String> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .try_send((request, reply))
            .map_err(|error| match error {
                mpsc::error::TrySendError::Full(_) => "the append stream is full".to_owned(),
                mpsc::error::TrySendError::Closed(_) => "the append stream stopped".to_owned(),
            })?;
        Ok(answer)
    }
}

/// Hands the queued requests to raft, one openraft stream at a time: a stream ends at its first
/// refused request (a conflict, a higher vote) or when raft stops, and the requests already
/// passed to it after that one are answered with an error; the next request opens a new one.
async fn feed<C, SM>(raft: Raft<C, SM>, mut queued: mpsc::Receiver<Submitted<C>>)
where
    C: RaftTypeConfig,
    SM: RaftStateMachine<C>,
{
    while let Some(first) = queued.recv().await {
        let (input, mut input_rx) =
            mpsc::channel::<AppendEntriesRequest<C>>(RAFT_APPEND_STREAM_QUEUE);
        let requests = futures_util::stream::poll_fn(move |cx| input_rx.poll_recv(cx));
        let mut answers = std::pin::pin!(raft.stream_append(requests));
        // Replies in the order their requests went into the stream; never more than the
        // input's capacity, so openraft's own bounded queues never hold this task up.
        let mut waiting: VecDeque<oneshot::Sender<StreamAnswer<C>>> = VecDeque::new();
        let mut next = Some(first);
        let stopped = loop {
            if let Some((request, reply)) = next.take() {
                if input.send(request).await.is_err() {
                    let _ = reply.send(Err("the append stream stopped".to_owned()));
                    break false;
                }
                waiting.push_back(reply);
            }
            tokio::select! {
                biased;
                answer = answers.next(), if !waiting.is_empty() => {
                    let Some(answer) = answer else { break false };
                    let ended = !matches!(answer, Ok(Ok(_)));
                    let answer = answer.map_err(|fatal| fatal.to_string());
                    if let Some(reply) = waiting.pop_front() {
                        let _ = reply.send(answer);
                    }
                    if ended {
                        break false;
                    }
                }
                request = queued.recv(), if waiting.len() < RAFT_APPEND_STREAM_QUEUE => {
                    match request {
                        Some(request) => next = Some(request),
                        None => break true,
                    }
                }
            }
        };
        for reply in waiting {
            let _ = reply.send(Err("an earlier request ended the append stream".to_owned()));
        }
        if stopped {
            return;
        }
    }
}
