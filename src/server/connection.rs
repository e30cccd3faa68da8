//! One client connection: a reader that frames and dispatches requests strictly in order, and a
//! writer that awaits their responses in the same order. Pipelined up to CONNECTION_IN_FLIGHT_MAX.

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, watch};

use crate::kafka::{self, Dispatched, PendingResponse};
use crate::limits;

/// Spare read-buffer room kept before each socket read.
const READ_CHUNK_BYTES: usize = 64 * 1024;

/// Why a connection ended.
#[derive(Debug, thiserror::Error)]
enum Ended {
    #[error("peer closed the connection")]
    PeerClosed,
    #[error("peer closed the connection {buffered_bytes} bytes into a request")]
    PeerClosedMidFrame { buffered_bytes: usize },
    #[error("broker is shutting down")]
    Shutdown,
    #[error("response writer stopped")]
    WriterStopped,
    #[error(transparent)]
    Io(std::io::Error),
    #[error(transparent)]
    Frame(kafka::FrameError),
    #[error(transparent)]
    Dispatch(kafka::DispatchError),
    #[error(transparent)]
    Codec(kafka::CodecError),
}

/// Serves one connection until the peer leaves, a protocol error, or shutdown. On shutdown the
/// reader stops taking requests and the writer finishes those already read.
pub(super) async fn run(socket: TcpStream, ctx: kafka::Context, stop: watch::Receiver<bool>) {
    tracing::debug!("connection opened");
    let (reader, writer) = socket.into_split();
    let (queue, responses) = mpsc::channel(limits::CONNECTION_IN_FLIGHT_MAX);
    let (read_end, write_end) = tokio::join!(
        read_requests(reader, &ctx, queue, stop),
        write_responses(writer, responses),
    );
    for end in [read_end, write_end] {
        match end {
            Ended::PeerClosed | Ended::Shutdown | Ended::WriterStopped => {}
            Ended::Io(err) => tracing::debug!(error = %err, "connection closed by socket error"),
            other @ (Ended::PeerClosedMidFrame { .. }
            | Ended::Frame(_)
            | Ended::Dispatch(_)
            | Ended::Codec(_)) => {
                tracing::warn!(error = %other, "closing connection");
            }
        }
    }
    tracing::debug!("connection closed");
}

/// Reads frames and dispatches each in arrival order; queues responses for the writer.
/// Returns why it stopped; dropping `queue` then lets the writer finish and end.
async fn read_requests(
    mut reader: OwnedReadHalf,
    ctx: &kafka::Context,
    queue: mpsc::Sender<PendingResponse>,
    mut stop: watch::Receiver<bool>,
) -> Ended {
    let request_bytes_max = ctx.settings.request_bytes_max;
    let mut buf = BytesMut::with_capacity(READ_CHUNK_BYTES);
    loop {
        loop {
            let frame = match kafka::decode_frame(&mut buf, request_bytes_max) {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(err) => return Ended::Frame(err),
            };
            tracing::trace!(frame_bytes = frame.len(), "frame");
            match kafka::dispatch(ctx, frame.freeze()).await {
                Ok(Dispatched::Respond(response)) => {
                    if queue.send(response).await.is_err() {
                        return Ended::WriterStopped;
                    }
                }
                Ok(Dispatched::NoResponse) => {}
                Err(err) => return Ended::Dispatch(err),
            }
            if *stop.borrow() {
                return Ended::Shutdown;
            }
        }
        if buf.capacity() - buf.len() < READ_CHUNK_BYTES {
            buf.reserve(READ_CHUNK_BYTES);
        }
        tokio::select! {
            biased;
            changed = stop.changed() => {
                // A dropped sender also means the server is gone.
                if changed.is_err() || *stop.borrow() {
                    return Ended::Shutdown;
                }
            }
            () = queue.closed() => return Ended::WriterStopped,
            read = reader.read_buf(&mut buf) => match read {
                Ok(0) if buf.is_empty() => return Ended::PeerClosed,
                Ok(0) => return Ended::PeerClosedMidFrame { buffered_bytes: buf.len() },
                Ok(_) => {}
                Err(err) => return Ended::Io(err),
            },
        }
    }
}

/// Awaits queued responses in request order and writes each as soon as it is ready.
async fn write_responses(
    mut writer: OwnedWriteHalf,
    mut responses: mpsc::Receiver<PendingResponse>,
) -> Ended {
    while let Some(response) = responses.recv().await {
        let frame = match response.await {
            Ok(frame) => frame,
            Err(err) => return Ended::Codec(err),
        };
        tracing::trace!(frame_bytes = frame.len(), "response");
        if let Err(err) = writer.write_all(&frame).await {
            return Ended::Io(err);
        }
    }
    // The reader stopped: every response is written; tell the peer we are done.
    if let Err(err) = writer.shutdown().await {
        return Ended::Io(err);
    }
    Ended::WriterStopped
}
