//! One TCP or TLS connection: a task that connects, then moves bytes both ways, framing what
//! it reads. It never listens: every connection is opened by us, and the registrar sends its
//! requests back over it (RFC 5626).

use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;
use sip_engine::{Flow, FlowError, Transport};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::tls;
use sip_engine::framing::{Frame, Framer};

/// What a connection task reports to the driver loop.
#[derive(Debug)]
pub(crate) enum StreamEvent {
    Message {
        flow: Flow,
        data: Vec<u8>,
    },
    Pong {
        flow: Flow,
    },
    /// The connection failed or the peer closed it. `generation` tells an old connection's
    /// last word from the current one's.
    Closed {
        flow: Flow,
        generation: u64,
        error: FlowError,
    },
}

/// The driver's handle on a connection task; dropping it closes the connection.
#[derive(Debug)]
pub(crate) struct Connection {
    pub(crate) generation: u64,
    outgoing: mpsc::UnboundedSender<Vec<u8>>,
}

impl Connection {
    /// Queues bytes; false when the task has already ended.
    pub(crate) fn send(&self, data: Vec<u8>) -> bool {
        self.outgoing.send(data).is_ok()
    }
}

/// What every connection needs to know.
#[derive(Debug, Clone)]
pub(crate) struct StreamConfig {
    pub(crate) tls: Arc<ClientConfig>,
    pub(crate) connect_timeout: Duration,
    pub(crate) max_message: usize,
}

/// Starts a connection to `flow` (TCP or TLS); `server_name` is what a TLS server must prove.
pub(crate) fn spawn(
    flow: Flow,
    generation: u64,
    server_name: Option<String>,
    config: StreamConfig,
    events: mpsc::UnboundedSender<StreamEvent>,
) -> Connection {
    let (outgoing, queue) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let result = connect_and_run(flow, server_name, &config, queue, &events).await;
        if let Err(error) = result {
            tracing::info!(%flow, %error, "connection ended");
            let _ = events.send(StreamEvent::Closed { flow, generation, error });
        }
    });
    Connection { generation, outgoing }
}

async fn connect_and_run(
    flow: Flow,
    server_name: Option<String>,
    config: &StreamConfig,
    queue: mpsc::UnboundedReceiver<Vec<u8>>,
    events: &mpsc::UnboundedSender<StreamEvent>,
) -> Result<(), FlowError> {
    let connect = tokio::time::timeout(config.connect_timeout, TcpStream::connect(flow.remote));
    let tcp =
        connect.await.map_err(|_| FlowError::ConnectTimeout)?.map_err(|e| tls::classify(&e))?;
    // Small messages, sent as soon as they are ready.
    let _ = tcp.set_nodelay(true);
    tracing::debug!(%flow, local = ?tcp.local_addr().ok(), "connected");
    match flow.transport {
        Transport::Tls => {
            let name = tls::server_name(server_name.as_deref(), flow.remote.ip());
            let connector = tokio_rustls::TlsConnector::from(config.tls.clone());
            let handshake =
                tokio::time::timeout(config.connect_timeout, connector.connect(name, tcp));
            let stream = handshake
                .await
                .map_err(|_| FlowError::ConnectTimeout)?
                .map_err(|e| tls::classify(&e))?;
            pump(stream, flow, config.max_message, queue, events).await
        }
        Transport::Tcp | Transport::Udp => pump(tcp, flow, config.max_message, queue, events).await,
    }
}

/// Moves bytes until either side ends: `Ok` when the driver dropped its handle (we close),
/// an error when the network or the peer ended it.
async fn pump<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    flow: Flow,
    max_message: usize,
    mut queue: mpsc::UnboundedReceiver<Vec<u8>>,
    events: &mpsc::UnboundedSender<StreamEvent>,
) -> Result<(), FlowError> {
    let (mut reader, mut writer) = tokio::io::split(stream);
    let mut framer = Framer::new(max_message);
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        tokio::select! {
            read = reader.read(&mut buf) => {
                let n = read.map_err(|e| tls::classify(&e))?;
                if n == 0 {
                    return Err(FlowError::Closed);
                }
                framer.push(&buf[..n]);
                loop {
                    let frame = framer
                        .next_frame()
                        .map_err(|e| FlowError::Io { detail: format!("framing lost: {e}") })?;
                    match frame {
                        None => break,
                        Some(Frame::Message(data)) => {
                            let _ = events.send(StreamEvent::Message { flow, data });
                        }
                        Some(Frame::Pong) => {
                            let _ = events.send(StreamEvent::Pong { flow });
                        }
                        // RFC 5626 §4.4.1: a server may ping us too; answer at once.
                        Some(Frame::Ping) => writer.write_all(b"\r\n").await.map_err(|e| tls::classify(&e))?,
                    }
                }
            }
            data = queue.recv() => match data {
                Some(data) => writer.write_all(&data).await.map_err(|e| tls::classify(&e))?,
                None => {
                    let _ = writer.shutdown().await;
                    return Ok(());
                }
            },
        }
    }
}
