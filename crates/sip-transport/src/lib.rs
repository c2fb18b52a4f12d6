//! The tokio driver of the SIP engine: one UDP socket, one timer, one command channel.
//!
//! The driver is a loop of "socket | timer | command → handle → drain poll" around a
//! [`sip_engine::Endpoint`]; all SIP behaviour lives in the engine. TCP and TLS come with the
//! registration work (see `docs/sip.md`).
#![forbid(unsafe_code)]

use std::io;
use std::time::Instant;

use sip_engine::{
    CallError, CallId, Endpoint, Event, Flow, FlowError, Input, Output, RegisterConfig,
    RegistrationId,
};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

/// RFC 3261 §18.1.1 leaves room for 64 KiB datagrams; anything larger is cut and dropped.
const MAX_DATAGRAM: usize = 65_535;

/// A request to the user agent, answered on its `reply` channel.
#[derive(Debug)]
pub enum Command {
    Invite { target: String, next_hop: Flow, reply: oneshot::Sender<Result<CallId, CallError>> },
    Answer { call: CallId, reply: oneshot::Sender<Result<(), CallError>> },
    Reject { call: CallId, status: u16, reply: oneshot::Sender<Result<(), CallError>> },
    Hangup { call: CallId, reply: oneshot::Sender<Result<(), CallError>> },
    Hold { call: CallId, reply: oneshot::Sender<Result<(), CallError>> },
    Resume { call: CallId, reply: oneshot::Sender<Result<(), CallError>> },
    Register { config: RegisterConfig, reply: oneshot::Sender<RegistrationId> },
    Unregister { registration: RegistrationId, reply: oneshot::Sender<bool> },
}

/// Why the driver stopped.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("SIP socket failed: {0}")]
    Socket(#[from] io::Error),
}

/// Runs the engine on `socket` until every command sender is dropped or the socket fails.
/// Engine events go to `events`; a closed event receiver is not an error.
pub async fn run_udp(
    mut endpoint: Endpoint,
    socket: UdpSocket,
    mut commands: mpsc::Receiver<Command>,
    events: mpsc::UnboundedSender<Event>,
) -> Result<(), DriverError> {
    let mut buf = vec![0u8; MAX_DATAGRAM + 1];
    loop {
        let now = Instant::now();
        let deadline = drain(&mut endpoint, now, &socket, &events).await;
        tokio::select! {
            received = socket.recv_from(&mut buf) => match received {
                Ok((len, source)) => {
                    let now = Instant::now();
                    if len > MAX_DATAGRAM {
                        tracing::warn!(%source, "dropping oversized datagram");
                        continue;
                    }
                    endpoint.handle_input(now, Input::Receive { flow: Flow::udp(source), data: &buf[..len] });
                }
                // ICMP errors surface here on some platforms; they are not fatal for a server.
                Err(error) if is_transient(&error) => tracing::debug!(%error, "transient receive error"),
                Err(error) => return Err(error.into()),
            },
            _ = tokio::time::sleep_until(deadline.into()) => {
                endpoint.handle_input(Instant::now(), Input::Timeout);
            }
            command = commands.recv() => match command {
                Some(command) => execute(&mut endpoint, Instant::now(), command),
                None => return Ok(()),
            },
        }
    }
}

fn execute(endpoint: &mut Endpoint, now: Instant, command: Command) {
    // A dropped reply receiver means the caller stopped waiting; nothing to do about it.
    match command {
        Command::Invite { target, next_hop, reply } => {
            let _ = reply.send(endpoint.invite(now, &target, next_hop));
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
        Command::Register { config, reply } => {
            let _ = reply.send(endpoint.register(now, config));
        }
        Command::Unregister { registration, reply } => {
            let _ = reply.send(endpoint.unregister(now, registration));
        }
    }
}

/// Sends and reports everything the engine has queued; returns when to wake up next.
async fn drain(
    endpoint: &mut Endpoint,
    now: Instant,
    socket: &UdpSocket,
    events: &mpsc::UnboundedSender<Event>,
) -> Instant {
    loop {
        match endpoint.poll_output(now) {
            Output::Transmit(transmit) => {
                let flow = transmit.flow;
                if let Err(error) = socket.send_to(&transmit.data, flow.remote).await {
                    tracing::info!(%flow, %error, "send failed");
                    let error = FlowError::Io { detail: error.to_string() };
                    endpoint.handle_input(now, Input::FlowFailed { flow, error });
                }
            }
            Output::Event(event) => {
                let _ = events.send(event);
            }
            Output::Timeout(at) => return at,
        }
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
