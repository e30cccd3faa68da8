//! One client connection: a reader that frames and dispatches requests strictly in order, and a
//! writer that awaits their responses in the same order. A frame is admitted into the request
//! budget before its body is read; the buffer grows only as bytes arrive. Pipelined up to
//! CONNECTION_IN_FLIGHT_MAX; closed when idle too long or when the listener needs room.

use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedReadHalf;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::budget::{Admission, ConnectionBudget, RequestBudget};
use super::registry::Activity;
use crate::kafka::{self, Dispatched, PendingResponse};
use crate::limits;

/// What each connection needs from the listener.
#[derive(Debug, Clone)]
pub(super) struct ConnectionSettings {
    pub(super) budget: Arc<RequestBudget>,
    pub(super) idle_timeout: Duration,
}

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
    #[error("no bytes moved for {idle_ms} ms")]
    Idle { idle_ms: u128 },
    #[error("closed to make room for a new connection")]
    Evicted,
    #[error("SASL authentication failed or went out of order")]
    SaslClosed,
    #[error("not authenticated within the SASL authentication timeout")]
    AuthenticationTimeout,
    #[error(transparent)]
    Io(std::io::Error),
    #[error(transparent)]
    Frame(kafka::FrameError),
    #[error(transparent)]
    Dispatch(kafka::DispatchError),
    #[error(transparent)]
    Codec(kafka::CodecError),
}

impl Ended {
    /// The connection is dropped at once, without writing the responses still queued.
    fn is_forced(&self) -> bool {
        matches!(
            self,
            Ended::Idle { .. } | Ended::Evicted | Ended::AuthenticationTimeout
        )
    }
}

/// A response on its way to the writer, with the admission of the frame it answers.
type Queued = (PendingResponse, Admission);

/// The read side of a connection: bytes, and a wait for readability before the buffer grows.
pub(super) trait ReadSide: AsyncRead + Unpin + Send {
    /// Resolves once a read may make progress (a plain socket: once bytes arrived).
    fn readable(&self) -> impl std::future::Future<Output = std::io::Result<()>> + Send;
}

impl ReadSide for OwnedReadHalf {
    async fn readable(&self) -> std::io::Result<()> {
        OwnedReadHalf::readable(self).await
    }
}

/// The read half of a TLS stream: readiness is not known under the TLS layer, so a read waits
/// with the (small) buffer it asked for.
pub(super) struct TlsRead<S>(pub(super) tokio::io::ReadHalf<S>);

impl<S: AsyncRead + Unpin + Send> AsyncRead for TlsRead<S> {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + Unpin + Send> ReadSide for TlsRead<S> {
    fn readable(&self) -> impl std::future::Future<Output = std::io::Result<()>> + Send {
        std::future::ready(Ok(()))
    }
}

/// Serves one plaintext connection (see `serve_halves`).
pub(super) async fn run(
    socket: TcpStream,
    ctx: kafka::Context,
    settings: ConnectionSettings,
    activity: Arc<Activity>,
    stop: watch::Receiver<bool>,
) {
    let (reader, writer) = socket.into_split();
    serve_halves(reader, writer, ctx, settings, activity, stop).await;
}

/// Serves one connection over a TLS stream whose handshake is done (see `serve_halves`).
pub(super) async fn run_tls<S>(
    stream: S,
    ctx: kafka::Context,
    settings: ConnectionSettings,
    activity: Arc<Activity>,
    stop: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let (reader, writer) = tokio::io::split(stream);
    serve_halves(TlsRead(reader), writer, ctx, settings, activity, stop).await;
}

/// Serves one connection until the peer leaves, a protocol error, idleness, eviction or
/// shutdown. On shutdown the reader stops taking requests and the writer finishes those read.
async fn serve_halves<R: ReadSide, W: AsyncWrite + Unpin + Send>(
    reader: R,
    writer: W,
    ctx: kafka::Context,
    settings: ConnectionSettings,
    activity: Arc<Activity>,
    stop: watch::Receiver<bool>,
) {
    tracing::debug!("connection opened");
    let (queue, responses) = mpsc::channel(limits::CONNECTION_IN_FLIGHT_MAX);
    let request_bytes_max = ctx.settings.request_bytes_max;
    let budget = Arc::new(ConnectionBudget::new(
        settings.budget,
        usize::try_from(request_bytes_max).unwrap_or(usize::MAX),
    ));
    let requests = Requests {
        reader,
        buf: BytesMut::new(),
        ctx: &ctx,
        budget,
        queue,
        activity: &activity,
        stop,
        idle_timeout: settings.idle_timeout,
    };
    let write = write_responses(writer, responses, &activity);
    let read = requests.run();
    tokio::pin!(read, write);
    let (read_end, write_end) = tokio::select! {
        read_end = &mut read => {
            if read_end.is_forced() {
                (read_end, Ended::WriterStopped)
            } else {
                (read_end, write.await)
            }
        }
        write_end = &mut write => (read.await, write_end),
    };
    for end in [read_end, write_end] {
        match end {
            Ended::PeerClosed | Ended::Shutdown | Ended::WriterStopped | Ended::SaslClosed => {}
            Ended::Io(err) => tracing::debug!(error = %err, "connection closed by socket error"),
            other @ (Ended::Idle { .. } | Ended::Evicted | Ended::AuthenticationTimeout) => {
                tracing::debug!(reason = %other, "closing connection");
            }
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

/// The reading half: frames, admissions and dispatch, in arrival order.
struct Requests<'a, R> {
    reader: R,
    buf: BytesMut,
    ctx: &'a kafka::Context,
    budget: Arc<ConnectionBudget>,
    queue: mpsc::Sender<Queued>,
    activity: &'a Activity,
    stop: watch::Receiver<bool>,
    idle_timeout: Duration,
}

impl<R: ReadSide> Requests<'_, R> {
    /// Reads frames and dispatches each in arrival order; queues responses for the writer.
    /// Returns why it stopped; consuming `self` drops the queue, so the writer then finishes
    /// what is queued and ends.
    async fn run(mut self) -> Ended {
        let request_bytes_max = self.ctx.settings.request_bytes_max;
        let mut admission = None;
        loop {
            if admission.is_none() {
                match kafka::frame_length(&self.buf, request_bytes_max) {
                    Ok(Some(frame_bytes)) => {
                        let budget = Arc::clone(&self.budget);
                        let admit = async move { budget.admit(frame_bytes).await };
                        match self.wait(admit, false).await {
                            Ok(admitted) => admission = Some((admitted, frame_bytes)),
                            Err(end) => return end,
                        }
                    }
                    Ok(None) => {}
                    Err(err) => return Ended::Frame(err),
                }
            }
            let frame = match kafka::decode_frame(&mut self.buf, request_bytes_max) {
                Ok(frame) => frame,
                Err(err) => return Ended::Frame(err),
            };
            let (frame, (admitted, _)) = match (frame, admission.take()) {
                (Some(frame), Some(admitted)) => (frame, admitted),
                (frame, admitted) => {
                    // Not a whole frame yet: read the rest of its body (admitted), or a prefix.
                    let wanted = match &admitted {
                        Some((_, frame_bytes)) => (kafka::LENGTH_PREFIX_BYTES
                            + *frame_bytes as usize)
                            .saturating_sub(self.buf.len()),
                        None => limits::REQUEST_PREFIX_READ_BYTES.saturating_sub(self.buf.len()),
                    };
                    assert!(frame.is_none(), "a whole frame is always admitted first");
                    admission = admitted;
                    if let Err(end) = self.read(wanted.max(1), admission.is_some()).await {
                        return end;
                    }
                    continue;
                }
            };
            if self.buf.is_empty() {
                // Hold no memory between requests (the frame keeps its own bytes alive).
                self.buf = BytesMut::new();
            }
            if let Err(end) = self.dispatch(frame.freeze(), admitted).await {
                return end;
            }
            if *self.stop.borrow() {
                return Ended::Shutdown;
            }
        }
    }

    /// Dispatches one frame and queues its response with its admission.
    async fn dispatch(&mut self, frame: Bytes, admission: Admission) -> Result<(), Ended> {
        tracing::trace!(frame_bytes = frame.len(), "frame");
        match kafka::dispatch(self.ctx, frame).await {
            Ok(Dispatched::Respond(response)) => {
                self.activity.response_queued();
                let queue = self.queue.clone();
                match self.wait(queue.send((response, admission)), false).await {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(_closed)) => Err(Ended::WriterStopped),
                    Err(end) => Err(end),
                }
            }
            Ok(Dispatched::RespondThenClose(response)) => {
                self.activity.response_queued();
                let queue = self.queue.clone();
                match self.wait(queue.send((response, admission)), false).await {
                    Ok(Ok(())) => Err(Ended::SaslClosed),
                    Ok(Err(_closed)) => Err(Ended::WriterStopped),
                    Err(end) => Err(end),
                }
            }
            // Nothing to write back: the frame is done with, and so is its admission.
            Ok(Dispatched::NoResponse) => Ok(()),
            Err(err) => Err(Ended::Dispatch(err)),
        }
    }

    /// Reads at most `wanted` more bytes into the buffer: for an admitted request, all the rest
    /// of its frame, reserved at once (the budget already holds those bytes), so a large body is
    /// read in as few calls as its bytes arrive in and never moves as it grows. An idle
    /// connection holds no buffer at all.
    async fn read(&mut self, wanted: usize, is_mid_frame: bool) -> Result<(), Ended> {
        let Requests {
            reader,
            buf,
            ctx,
            activity,
            stop,
            queue,
            idle_timeout,
            ..
        } = self;
        let read = async {
            reader.readable().await?;
            buf.reserve(wanted);
            reader.read_buf(&mut (&mut *buf).limit(wanted)).await
        };
        let limits = Limits {
            idle_timeout: *idle_timeout,
            is_mid_frame,
            authenticate_by: ctx.session.authentication_deadline(),
        };
        let result = wait_for(read, activity, limits, stop, queue).await?;
        match result {
            Ok(0) if self.buf.is_empty() => Err(Ended::PeerClosed),
            Ok(0) => Err(Ended::PeerClosedMidFrame {
                buffered_bytes: self.buf.len(),
            }),
            Ok(_) => {
                self.activity.touch();
                Ok(())
            }
            Err(err) => Err(Ended::Io(err)),
        }
    }

    /// `work` (which must not borrow `self`) raced against the connection's ends.
    async fn wait<T>(
        &mut self,
        work: impl std::future::Future<Output = T>,
        is_mid_frame: bool,
    ) -> Result<T, Ended> {
        let limits = Limits {
            idle_timeout: self.idle_timeout,
            is_mid_frame,
            authenticate_by: self.ctx.session.authentication_deadline(),
        };
        wait_for(work, self.activity, limits, &mut self.stop, &self.queue).await
    }
}

/// How long a connection may wait.
struct Limits {
    idle_timeout: Duration,
    is_mid_frame: bool,
    /// A SASL listener's connection not authenticated yet: when it must have been.
    authenticate_by: Option<Instant>,
}

/// Runs `work` unless shutdown, eviction, a stopped writer, idleness or the SASL authentication
/// deadline comes first. Idle means no byte read or written for `idle_timeout`
/// (REQUEST_BODY_STALL_MS inside a frame's body) while the broker is not computing a response
/// of this connection.
async fn wait_for<T>(
    work: impl std::future::Future<Output = T>,
    activity: &Activity,
    bounds: Limits,
    stop: &mut watch::Receiver<bool>,
    queue: &mpsc::Sender<Queued>,
) -> Result<T, Ended> {
    let limit = if bounds.is_mid_frame {
        bounds
            .idle_timeout
            .min(Duration::from_millis(limits::REQUEST_BODY_STALL_MS))
    } else {
        bounds.idle_timeout
    };
    let authenticate_by = async {
        match bounds.authenticate_by {
            Some(at) => tokio::time::sleep_until(at).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(work, authenticate_by);
    loop {
        let deadline = activity.last_active() + limit;
        tokio::select! {
            biased;
            () = &mut authenticate_by => return Err(Ended::AuthenticationTimeout),
            changed = stop.changed() => {
                // A dropped sender also means the server is gone.
                if changed.is_err() || *stop.borrow() {
                    return Err(Ended::Shutdown);
                }
            }
            () = activity.evicted() => return Err(Ended::Evicted),
            () = queue.closed() => return Err(Ended::WriterStopped),
            done = &mut work => return Ok(done),
            () = tokio::time::sleep_until(deadline) => {
                let now = Instant::now();
                if activity.is_computing() {
                    // The broker's turn (a long poll, a rebalance): not idleness.
                    activity.touch();
                } else if now.saturating_duration_since(activity.last_active()) >= limit {
                    return Err(Ended::Idle { idle_ms: limit.as_millis() });
                }
            }
        }
    }
}

/// Awaits queued responses in request order and writes each as soon as it is ready; a frame's
/// admission is dropped (its budget given back) once its response is written.
async fn write_responses<W: AsyncWrite + Unpin>(
    mut writer: W,
    mut responses: mpsc::Receiver<Queued>,
    activity: &Activity,
) -> Ended {
    while let Some((response, admission)) = responses.recv().await {
        activity.set_computing(true);
        let frame = response.await;
        activity.set_computing(false);
        activity.touch();
        let frame = match frame {
            Ok(frame) => frame,
            Err(err) => return Ended::Codec(err),
        };
        tracing::trace!(frame_bytes = frame.len(), "response");
        // Flushed at once: a TLS stream may hold the end of a frame it took until flushed, and
        // the next frame may be a long poll away (a client then waited 60 s for a fetch's end).
        if let Err(err) = writer.write_all(&frame).await {
            return Ended::Io(err);
        }
        if let Err(err) = writer.flush().await {
            return Ended::Io(err);
        }
        activity.touch();
        activity.response_written();
        drop(admission);
    }
    // The reader stopped: every response is written; tell the peer we are done.
    if let Err(err) = writer.shutdown().await {
        return Ended::Io(err);
    }
    Ended::WriterStopped
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::registry::Registry;

    #[tokio::test]
    async fn each_response_is_flushed_through_a_writer_that_buffers() {
        // Like a TLS stream, this writer holds what it took until it is flushed.
        let (near, mut far) = tokio::io::duplex(1 << 16);
        let writer = tokio::io::BufWriter::with_capacity(1 << 16, near);
        let budget = ConnectionBudget::new(Arc::new(RequestBudget::new(1 << 20)), 1 << 20);
        let (responses, queue) = mpsc::channel(4);
        let frame = Bytes::from_static(b"\0\0\0\x04resp");
        let ready: PendingResponse = Box::pin(std::future::ready(Ok(frame.clone())));
        let admission = budget.admit(16).await;
        responses
            .send((ready, admission))
            .await
            .expect("the writer is running");
        let registration = Arc::new(Registry::new()).register();
        let activity = Arc::clone(&registration.activity);
        let writing = tokio::spawn(async move { write_responses(writer, queue, &activity).await });
        // The queue stays open (the next response may be a long poll away): the frame must
        // arrive anyway.
        let mut got = vec![0; frame.len()];
        tokio::time::timeout(Duration::from_secs(10), far.read_exact(&mut got))
            .await
            .expect("the response was flushed")
            .expect("read the response");
        assert_eq!(got, frame);
        drop(responses);
        assert!(matches!(
            writing.await.expect("writer task"),
            Ended::WriterStopped
        ));
    }
}
