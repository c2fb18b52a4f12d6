//! The tokio driver of the SIP engine: a UDP socket, TCP/TLS connections it opens on demand, one
//! timer and one command channel.
//!
//! The driver is a loop of "socket | connection | timer | command → handle → drain poll"
//! around a [`sip_engine::Endpoint`]; all SIP behaviour lives in the engine. Connections are
//! only ever opened by us (there is no listening TCP or TLS socket): a registrar reaches us over
//! the connection we registered on (RFC 5626), and when that connection breaks the engine is
//! told and registers again. A periodic check notices sleep/resume and route changes and tells
//! the engine the network changed.
#![forbid(unsafe_code)]

mod network;
mod stream;
mod tls;

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sip_engine::{
    CallError, CallId, Endpoint, Event, Flow, FlowError, Input, Output, RegisterConfig,
    RegistrationId,
};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

pub use tls::{TlsConfigError, TlsSettings, client_config};

/// RFC 3261 §18.1.1 leaves room for 64 KiB datagrams; anything larger is cut and dropped.
const MAX_DATAGRAM: usize = 65_535;
/// How often sleep/resume and route changes are looked for.
const NETWORK_CHECK: Duration = Duration::from_secs(5);

/// A request to the user agent, answered on its `reply` channel.
#[derive(Debug)]
pub enum Command {
    Invite {
        target: String,
        /// Where to send it, best first (RFC 3263); the engine fails over along the list.
        targets: Vec<Flow>,
        reply: oneshot::Sender<Result<CallId, CallError>>,
    },
    Answer {
        call: CallId,
        reply: oneshot::Sender<Result<(), CallError>>,
    },
    Reject {
        call: CallId,
        status: u16,
        reply: oneshot::Sender<Result<(), CallError>>,
    },
    Hangup {
        call: CallId,
        reply: oneshot::Sender<Result<(), CallError>>,
    },
    Hold {
        call: CallId,
        reply: oneshot::Sender<Result<(), CallError>>,
    },
    Resume {
        call: CallId,
        reply: oneshot::Sender<Result<(), CallError>>,
    },
    /// A blind transfer of the call to `target` (REFER).
    Transfer {
        call: CallId,
        target: String,
        reply: oneshot::Sender<Result<(), CallError>>,
    },
    Register {
        config: RegisterConfig,
        reply: oneshot::Sender<RegistrationId>,
    },
    Unregister {
        registration: RegistrationId,
        reply: oneshot::Sender<bool>,
    },
    /// The name a TLS server at `remote` must prove (RFC 5922: the SIP domain it serves).
    TlsName {
        remote: SocketAddr,
        name: String,
    },
}

/// Why the driver stopped.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("SIP socket failed: {0}")]
    Socket(#[from] io::Error),
}

/// How the driver handles streams.
#[derive(Debug, Clone)]
pub struct DriverConfig {
    pub tls: std::sync::Arc<rustls::ClientConfig>,
    /// Time allowed to connect and finish the TLS handshake.
    pub connect_timeout: Duration,
    /// Largest message read from a stream; a larger one closes the connection.
    pub max_message: usize,
}

impl DriverConfig {
    pub fn new(tls: std::sync::Arc<rustls::ClientConfig>) -> Self {
        Self { tls, connect_timeout: Duration::from_secs(5), max_message: 64 * 1024 }
    }
}

/// Runs the engine until every command sender is dropped or the UDP socket fails. Engine
/// events go to `events`; a closed event receiver is not an error.
pub async fn run(
    endpoint: Endpoint,
    socket: UdpSocket,
    config: DriverConfig,
    mut commands: mpsc::Receiver<Command>,
    events: mpsc::UnboundedSender<Event>,
) -> Result<(), DriverError> {
    let (stream_tx, mut stream_rx) = mpsc::unbounded_channel();
    let mut driver = Driver {
        endpoint,
        socket,
        streams: stream::StreamConfig {
            tls: config.tls,
            connect_timeout: config.connect_timeout,
            max_message: config.max_message,
        },
        connections: HashMap::new(),
        next_generation: 1,
        tls_names: HashMap::new(),
        stream_tx,
        events,
    };
    let mut buf = vec![0u8; MAX_DATAGRAM + 1];
    let mut monitor = network::Monitor::new();
    let mut check = tokio::time::interval(NETWORK_CHECK);
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let deadline = driver.drain(Instant::now()).await;
        tokio::select! {
            received = driver.socket.recv_from(&mut buf) => match received {
                Ok((len, source)) => {
                    if len > MAX_DATAGRAM {
                        tracing::warn!(%source, "dropping oversized datagram");
                        continue;
                    }
                    let input = Input::Receive { flow: Flow::udp(source), data: &buf[..len] };
                    driver.endpoint.handle_input(Instant::now(), input);
                }
                // ICMP errors surface here on some platforms; they are not fatal for a server.
                Err(error) if is_transient(&error) => tracing::debug!(%error, "transient receive error"),
                Err(error) => return Err(error.into()),
            },
            Some(event) = stream_rx.recv() => driver.stream_event(event),
            _ = tokio::time::sleep_until(deadline.into()) => {
                driver.endpoint.handle_input(Instant::now(), Input::Timeout);
            }
            _ = check.tick() => {
                let remotes: Vec<SocketAddr> = driver.connections.keys().map(|f| f.remote).collect();
                if let Some(reason) = monitor.check(&remotes) {
                    tracing::info!(reason, "network changed: closing connections");
                    driver.connections.clear();
                    driver.endpoint.handle_input(Instant::now(), Input::NetworkChanged);
                }
            }
            command = commands.recv() => match command {
                Some(command) => driver.execute(Instant::now(), command),
                None => return Ok(()),
            },
        }
    }
}

struct Driver {
    endpoint: Endpoint,
    socket: UdpSocket,
    streams: stream::StreamConfig,
    connections: HashMap<Flow, stream::Connection>,
    next_generation: u64,
    tls_names: HashMap<SocketAddr, String>,
    stream_tx: mpsc::UnboundedSender<stream::StreamEvent>,
    events: mpsc::UnboundedSender<Event>,
}

impl Driver {
    fn execute(&mut self, now: Instant, command: Command) {
        let endpoint = &mut self.endpoint;
        // A dropped reply receiver means the caller stopped waiting; nothing to do about it.
        match command {
            Command::Invite { target, targets, reply } => {
                let _ = reply.send(endpoint.invite_via(now, &target, &targets));
            }
            Command::Answer { call, reply } => {
                let _ = reply.send(endpoint.answer(now, call));
            }
            Command::Reject { call, status, reply } => {
                let _ = reply.send(endpoint.reject(now, call, status));
            }
            Command::Hangup { call, reply } => {
                let _ = reply.send(endpoint.hangup(now, call));
            }
            Command::Hold { call, reply } => {
                let _ = reply.send(endpoint.hold(now, call));
            }
            Command::Resume { call, reply } => {
                let _ = reply.send(endpoint.resume(now, call));
            }
            Command::Transfer { call, target, reply } => {
                let _ = reply.send(endpoint.transfer(now, call, &target));
            }
            Command::Register { config, reply } => {
                let _ = reply.send(endpoint.register(now, config));
            }
            Command::Unregister { registration, reply } => {
                let _ = reply.send(endpoint.unregister(now, registration));
            }
            Command::TlsName { remote, name } => {
                self.tls_names.insert(remote, name);
            }
        }
    }

    fn stream_event(&mut self, event: stream::StreamEvent) {
        let now = Instant::now();
        match event {
            stream::StreamEvent::Message { flow, data } => {
                self.endpoint.handle_input(now, Input::Receive { flow, data: &data });
            }
            stream::StreamEvent::Pong { flow } => {
                self.endpoint.handle_input(now, Input::KeepAliveAnswered { flow });
            }
            stream::StreamEvent::Closed { flow, generation, error } => {
                // A connection we already replaced (or dropped) has nothing more to say.
                if self.connections.get(&flow).is_some_and(|c| c.generation == generation) {
                    self.connections.remove(&flow);
                    self.endpoint.handle_input(now, Input::FlowFailed { flow, error });
                }
            }
        }
    }

    /// Sends and reports everything the engine has queued; returns when to wake up next.
    async fn drain(&mut self, now: Instant) -> Instant {
        loop {
            match self.endpoint.poll_output(now) {
                Output::Transmit(transmit) if transmit.flow.transport.is_reliable() => {
                    self.send_stream(transmit.flow, transmit.data);
                }
                Output::Transmit(transmit) => {
                    let flow = transmit.flow;
                    if let Err(error) = self.socket.send_to(&transmit.data, flow.remote).await {
                        tracing::info!(%flow, %error, "send failed");
                        let error = FlowError::Io { detail: error.to_string() };
                        self.endpoint.handle_input(now, Input::FlowFailed { flow, error });
                    }
                }
                Output::Event(event) => {
                    // A lost flow's connection may be half-open (a NAT forgot it, the pong
                    // never came): close it, so the new REGISTER opens a fresh one.
                    if let Event::FlowLost { flow, .. } = &event {
                        self.connections.remove(flow);
                    }
                    let _ = self.events.send(event);
                }
                Output::Timeout(at) => return at,
            }
        }
    }

    /// Queues bytes on the flow's connection, opening it first when there is none.
    fn send_stream(&mut self, flow: Flow, data: Vec<u8>) {
        if let Some(connection) = self.connections.get(&flow) {
            if connection.send(data.clone()) {
                return;
            }
            // The connection ended and its Closed report is still queued: the engine must learn
            // of it now (a registration on it re-registers), and this message is lost with it.
            self.connections.remove(&flow);
            let error = FlowError::Closed;
            self.endpoint.handle_input(Instant::now(), Input::FlowFailed { flow, error });
            return;
        }
        let generation = self.next_generation;
        self.next_generation += 1;
        let name = self.tls_names.get(&flow.remote).cloned();
        let connection =
            stream::spawn(flow, generation, name, self.streams.clone(), self.stream_tx.clone());
        // A fresh task's queue is open: this cannot fail.
        let _ = connection.send(data);
        self.connections.insert(flow, connection);
    }
}

fn is_transient(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    )
}
