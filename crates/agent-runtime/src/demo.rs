//! The demo line: a second SIP user agent on loopback that answers every call after a second
//! of ringing and speaks a short greeting, so a newcomer can make a real call with no server.
//!
//! It is a full [`Agent`] (SIP over UDP, offer/answer, RTP with the negotiated codec and SRTP
//! when offered), only bound to `127.0.0.1` on a port the OS picks. Calls end when the caller
//! hangs up, or after [`DEMO_CALL_LIMIT`].

use std::sync::Arc;
use std::time::Duration;

use sip_engine::Event;
use tokio::task::JoinHandle;

use crate::{Agent, AgentError, AgentEvent, BindAddr, SipSettings, Transport};

/// The greeting: 14 s of speech (espeak-ng, 16 kHz mono), then silence.
const GREETING: &[u8] = include_bytes!("../../../assets/demo-greeting.wav");

/// How long the demo rings before it answers.
pub const DEMO_RING: Duration = Duration::from_secs(1);
/// A demo call ends by itself after this.
pub const DEMO_CALL_LIMIT: Duration = Duration::from_secs(300);

/// The running demo line.
#[derive(Debug)]
pub struct DemoPeer {
    uri: String,
    task: JoinHandle<()>,
}

impl DemoPeer {
    /// Starts the demo line on `127.0.0.1`.
    pub async fn start() -> Result<Self, AgentError> {
        let bind = BindAddr {
            transport: Transport::Udp,
            addr: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        };
        let mut settings = SipSettings::new(bind);
        settings.user = "demo".into();
        settings.display_name = Some("Switchboard demo".into());
        let greeting = media_engine::wav::read_bytes("demo-greeting.wav", GREETING)
            .map_err(|e| AgentError::Usage(format!("the demo greeting: {e}")))?;
        settings.media_options.play = Some(Arc::new(greeting));
        let agent = Agent::start(&settings).await?;
        let uri = format!("sip:demo@{}", agent.local_addr());
        let task = tokio::spawn(answer_calls(agent));
        Ok(Self { uri, task })
    }

    /// The address to call, `sip:demo@127.0.0.1:PORT`.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// Stops the line (a call in progress is dropped).
    pub fn stop(self) {
        self.task.abort();
    }
}

async fn answer_calls(mut agent: Agent) {
    let mut due: Vec<(tokio::time::Instant, DemoAction)> = Vec::new();
    loop {
        let next = due.iter().map(|(at, _)| *at).min();
        tokio::select! {
            event = agent.next_event() => {
                let Some(event) = event else { return };
                let now = tokio::time::Instant::now();
                match event {
                    AgentEvent::Sip(Event::Incoming { call, .. }) => {
                        due.push((now + DEMO_RING, DemoAction::Answer(call)));
                    }
                    AgentEvent::Sip(Event::Answered { call }) => {
                        due.push((now + DEMO_CALL_LIMIT, DemoAction::Hangup(call)));
                    }
                    AgentEvent::Sip(Event::Ended { call, .. }) => {
                        due.retain(|(_, action)| action.call() != call);
                    }
                    _ => {}
                }
            }
            () = crate::sleep_until(next) => {
                let now = tokio::time::Instant::now();
                let (ready, later): (Vec<_>, Vec<_>) = due.drain(..).partition(|(at, _)| *at <= now);
                due = later;
                for (_, action) in ready {
                    let result = match action {
                        DemoAction::Answer(call) => agent.answer(call).await,
                        DemoAction::Hangup(call) => agent.hangup(call).await,
                    };
                    if let Err(error) = result {
                        tracing::debug!(%error, "demo line");
                    }
                }
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum DemoAction {
    Answer(sip_engine::CallId),
    Hangup(sip_engine::CallId),
}

impl DemoAction {
    fn call(self) -> sip_engine::CallId {
        match self {
            Self::Answer(call) | Self::Hangup(call) => call,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_greeting_is_a_readable_clip() {
        let clip = media_engine::wav::read_bytes("demo-greeting.wav", GREETING).expect("a WAV");
        assert_eq!(clip.sample_rate, 16_000);
        assert!(clip.samples.len() > 16_000 * 10, "{} samples", clip.samples.len());
    }
}
