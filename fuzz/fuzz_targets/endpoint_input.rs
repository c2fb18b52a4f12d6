//! The whole receive path of a fresh `Endpoint`: datagrams from one peer, interleaved with timer
//! expiries at advancing virtual times and (optionally) the call API.
//!
//! # Input format
//!
//! The input is split on `~~~~`. The first piece is a datagram. Every later piece starts with a
//! directive line (up to the first `\n`) followed by a datagram (the rest, possibly empty):
//!
//! ```text
//! INVITE sip:switchboard@127.0.0.1:5060 SIP/2.0\r\n ... \r\n\r\n<body>~~~~ 500 answer
//! ACK sip:switchboard@127.0.0.1:5060 SIP/2.0\r\n ... To: <sip:...>;tag=$ltag\r\n ...
//! ```
//!
//! Directive words (anything else is ignored):
//! - a decimal number: advance virtual time by that many milliseconds (default 20, at most one
//!   hour) and deliver `Input::Timeout` before the datagram;
//! - `fire`: jump to the time of the endpoint's last `Output::Timeout` and deliver it;
//! - `invite`: place a call to the peer (so that responses have a transaction to match);
//! - `answer`, `reject`, `hangup`, `hold`, `resume`: the call API on the latest call;
//!   `transfer`: a blind transfer of it (REFER) to a fixed target;
//! - `register`: register with the peer as registrar (outbound, with credentials);
//! - `tcp` / `tls`: the peer's messages (and ours to it, from then on) use that transport;
//! - `unreachable`: `Input::FlowFailed` for the peer's flow; `pong`: a keep-alive answer on
//!   it; `netchange`: `Input::NetworkChanged`.
//!
//! Before a datagram is delivered these placeholders are replaced with values from what the
//! endpoint sent last, so hand-written seeds can answer its requests and acknowledge its
//! responses (the RNG is seeded, but tags and branches are not worth guessing):
//! `$branch` and `$cseq` (top Via branch and CSeq number of our last request), `$invbranch` and
//! `$invcseq` (the same for our last INVITE, to answer it after a PRACK or CANCEL), `$callid`,
//! `$ltag` (our dialog tag) and `$rseq` (RSeq of our last reliable provisional).
//! A file without `~~~~` is a single datagram, so plain SIP messages work as seeds.
//!
//! Invariants checked (a failure is a crash): nothing panics; every datagram the endpoint sends
//! (but a CRLF keep-alive) parses with `message::parse`, and every request it sends passes its own `essentials()`
//! checks; one input never produces an unbounded burst of output; after
//! `Input::Timeout` at `now` the next timeout is later than `now` (a driver would spin); once
//! the peer falls silent, the endpoint goes idle (no timer armed) within a bounded number of
//! timer expiries, and when it is idle with no call left it holds no transaction.
//!
//! Set `SWITCHBOARD_FUZZ_TRACE=1` to print the exchange to stderr (for writing seeds and
//! reading crashes: `cargo +nightly fuzz run endpoint_input <file>`).
#![no_main]

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;
use sip_engine::message::{self, Message};
use sip_engine::{
    CallId, Config, Credentials, Endpoint, Event, Flow, FlowError, Input, Output, PcmuNegotiator,
    RegisterConfig, RegistrationId, Secret, Transport,
};

const SEPARATOR: &[u8] = b"~~~~";
const LOCAL: &str = "127.0.0.1:5060";
const PEER: &str = "127.0.0.1:5080";
const DEFAULT_STEP: Duration = Duration::from_millis(20);
const MAX_STEP: Duration = Duration::from_secs(3600);
/// What `poll_output` answers when no timer is armed (see `Endpoint::poll_output`).
const IDLE: Duration = Duration::from_secs(3600);
/// Outputs one input may cause; far above anything legitimate (a handful per message).
const MAX_OUTPUTS_PER_STEP: usize = 1000;
/// Timer expiries allowed once the peer is silent (2xx retransmission is ~10, Timer B/F ~11).
const MAX_QUIET_FIRES: usize = 1000;

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn tracing_enabled() -> bool {
    static TRACE: OnceLock<bool> = OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("SWITCHBOARD_FUZZ_TRACE").is_some())
}

macro_rules! trace {
    ($($arg:tt)*) => {
        if tracing_enabled() {
            eprintln!($($arg)*);
        }
    };
}

/// Values the placeholders expand to, learnt from what the endpoint sent.
#[derive(Default)]
struct Learnt {
    branch: Option<String>,
    call_id: Option<String>,
    local_tag: Option<String>,
    cseq: Option<String>,
    invite_branch: Option<String>,
    invite_cseq: Option<String>,
    rseq: Option<String>,
}

struct Harness {
    ua: Endpoint,
    now: Instant,
    /// The instant of the last `Output::Timeout`.
    next: Instant,
    peer: Flow,
    calls: Vec<CallId>,
    registrations: Vec<RegistrationId>,
    learnt: Learnt,
}

impl Harness {
    fn new() -> Self {
        let local: SocketAddr = LOCAL.parse().expect("local address");
        let mut config = Config::new(local);
        config.instance_id = Some("urn:uuid:00000000-0000-4000-8000-00000000f022".into());
        let ua = Endpoint::new(
            config,
            Box::new(ChaCha8Rng::seed_from_u64(0x5eed)),
            Box::new(PcmuNegotiator::new(local.ip(), 40000)),
        );
        let now = epoch();
        Self {
            ua,
            now,
            next: now + IDLE,
            peer: Flow::udp(PEER.parse().expect("peer address")),
            calls: vec![],
            registrations: vec![],
            learnt: Learnt::default(),
        }
    }

    fn elapsed(&self) -> Duration {
        self.now - epoch()
    }

    /// Drains `poll_output` until it asks to be called back, checking what comes out.
    fn drain(&mut self) {
        for _ in 0..MAX_OUTPUTS_PER_STEP {
            match self.ua.poll_output(self.now) {
                Output::Transmit(t) => self.sent(t.flow, &t.data),
                Output::Event(event) => {
                    trace!("[{:?}] event {event:?}", self.elapsed());
                    if let Event::Incoming { call, .. } = event {
                        self.calls.push(call);
                    }
                }
                Output::Timeout(at) => {
                    trace!("[{:?}] wake at {:?}: {:?}", self.elapsed(), at - epoch(), self.ua);
                    self.next = at;
                    return;
                }
            }
        }
        panic!("more than {MAX_OUTPUTS_PER_STEP} outputs without a Timeout");
    }

    fn sent(&mut self, destination: Flow, data: &[u8]) {
        trace!("[{:?}] >>> to {destination}\n{}", self.elapsed(), String::from_utf8_lossy(data));
        // RFC 5626 keep-alives are the one thing sent that is not a message.
        if data == b"\r\n\r\n" {
            return;
        }
        let message = match message::parse(data) {
            Ok(m) => m,
            Err(e) => panic!(
                "the endpoint sent a message it cannot parse itself ({e:?}):\n{}",
                String::from_utf8_lossy(data)
            ),
        };
        // A request we send must pass the checks we apply to requests we receive. (Responses
        // copy From, To and Via from the request they answer, which may be one we refuse.)
        if let Message::Request(r) = &message
            && let Err(e) = r.essentials()
        {
            panic!(
                "the endpoint sent a request its own essentials() refuses ({e:?}):\n{}",
                String::from_utf8_lossy(data)
            );
        }
        let (headers, is_request) = match &message {
            Message::Request(r) => (&r.headers, true),
            Message::Response(r) => (&r.headers, false),
        };
        let Ok(e) = message::Essentials::read(headers) else { return };
        self.learnt.call_id = Some(e.call_id.clone());
        if is_request {
            self.learnt.branch = e.via.branch.clone();
            self.learnt.cseq = Some(e.cseq.number.to_string());
            self.learnt.local_tag = e.from.tag.clone();
            if e.cseq.method == message::Method::Invite {
                self.learnt.invite_branch = e.via.branch.clone();
                self.learnt.invite_cseq = Some(e.cseq.number.to_string());
            }
        } else {
            self.learnt.local_tag = e.to.tag.clone();
            if let Some(rseq) = headers.get("RSeq") {
                self.learnt.rseq = Some(rseq.trim().to_owned());
            }
        }
    }

    /// Advances virtual time and delivers the timer, checking that the endpoint moves on.
    fn tick(&mut self, step: Duration) {
        self.now += step;
        self.fire();
    }

    fn fire(&mut self) {
        self.ua.handle_input(self.now, Input::Timeout);
        self.drain();
        assert!(
            self.next > self.now,
            "after Input::Timeout at {:?} the endpoint asks to be woken at {:?}: a driver \
             would spin",
            self.elapsed(),
            self.next - epoch(),
        );
    }

    fn directive(&mut self, line: &[u8]) {
        let line = String::from_utf8_lossy(line);
        let mut step = DEFAULT_STEP;
        let mut actions = vec![];
        for word in line.split_ascii_whitespace() {
            if let Ok(ms) = word.parse::<u64>() {
                step = Duration::from_millis(ms).min(MAX_STEP);
            } else {
                actions.push(word);
            }
        }
        trace!("[{:?}] ~~~~ {}", self.elapsed(), line.trim());
        self.tick(step);
        for action in actions {
            self.action(action);
            self.drain();
        }
    }

    fn action(&mut self, word: &str) {
        let now = self.now;
        let latest = self.calls.last().copied();
        let result = match (word, latest) {
            ("fire", _) => {
                if self.next - self.now < IDLE {
                    self.now = self.next.max(self.now);
                    self.fire();
                }
                Ok(())
            }
            ("invite", _) => self
                .ua
                .invite(now, &format!("sip:peer@{PEER}"), self.peer)
                .map(|id| self.calls.push(id)),
            ("register", _) => {
                let config = RegisterConfig {
                    registrar: format!("sip:{PEER}"),
                    aor: format!("sip:switchboard@{PEER}"),
                    targets: vec![self.peer],
                    expires: 600,
                    credentials: Some(Credentials {
                        username: "switchboard".into(),
                        password: Secret::new("fuzz"),
                    }),
                    outbound: true,
                };
                self.registrations.push(self.ua.register(now, config));
                Ok(())
            }
            ("tcp", _) => {
                self.peer.transport = Transport::Tcp;
                Ok(())
            }
            ("tls", _) => {
                self.peer.transport = Transport::Tls;
                Ok(())
            }
            ("unreachable", _) => {
                let flow = self.peer;
                self.ua.handle_input(now, Input::FlowFailed { flow, error: FlowError::Closed });
                Ok(())
            }
            ("pong", _) => {
                self.ua.handle_input(now, Input::KeepAliveAnswered { flow: self.peer });
                Ok(())
            }
            ("netchange", _) => {
                self.ua.handle_input(now, Input::NetworkChanged);
                Ok(())
            }
            ("answer", Some(id)) => self.ua.answer(now, id),
            ("reject", Some(id)) => self.ua.reject(now, id, 486),
            ("hangup", Some(id)) => self.ua.hangup(now, id),
            ("hold", Some(id)) => self.ua.hold(now, id),
            ("resume", Some(id)) => self.ua.resume(now, id),
            ("transfer", Some(id)) => self.ua.transfer(now, id, "sip:target@192.0.2.7:5060"),
            _ => Ok(()),
        };
        // API misuse errors are expected (the fuzzer picks actions blindly).
        trace!("[{:?}] {word} -> {result:?}", self.elapsed());
    }

    fn receive(&mut self, datagram: &[u8]) {
        if datagram.is_empty() {
            return;
        }
        let data = self.expand(datagram);
        trace!("[{:?}] <<< from {}\n{}", self.elapsed(), self.peer, String::from_utf8_lossy(&data));
        self.ua.handle_input(self.now, Input::Receive { flow: self.peer, data: &data });
        self.drain();
    }

    fn expand(&self, datagram: &[u8]) -> Vec<u8> {
        if !datagram.contains(&b'$') {
            return datagram.to_vec();
        }
        let learnt = &self.learnt;
        let table: [(&[u8], &Option<String>); 7] = [
            (b"$branch", &learnt.branch),
            (b"$invbranch", &learnt.invite_branch),
            (b"$invcseq", &learnt.invite_cseq),
            (b"$callid", &learnt.call_id),
            (b"$ltag", &learnt.local_tag),
            (b"$cseq", &learnt.cseq),
            (b"$rseq", &learnt.rseq),
        ];
        let mut out = Vec::with_capacity(datagram.len() + 64);
        let mut rest = datagram;
        'outer: while let Some((&first, tail)) = rest.split_first() {
            if first == b'$' {
                for (name, value) in &table {
                    if let (Some(after), Some(value)) = (rest.strip_prefix(*name), value) {
                        out.extend_from_slice(value.as_bytes());
                        rest = after;
                        continue 'outer;
                    }
                }
            }
            out.push(first);
            rest = tail;
        }
        out
    }

    /// The peer is silent from now on: let the timers run out. Registrations retry for ever by
    /// design, so they are removed first (as a shutdown would).
    fn quiesce(&mut self) {
        for id in std::mem::take(&mut self.registrations) {
            self.ua.unregister(self.now, id);
        }
        self.drain();
        for _ in 0..MAX_QUIET_FIRES {
            if self.next - self.now >= IDLE {
                if self.ua.active_calls() == 0 {
                    assert_eq!(
                        self.ua.transactions(),
                        0,
                        "idle with no call, yet transactions remain: {:?}",
                        self.ua
                    );
                }
                return;
            }
            self.now = self.next.max(self.now);
            self.fire();
        }
        panic!(
            "still busy after {MAX_QUIET_FIRES} timer expiries with a silent peer \
             (at {:?}): {:?}",
            self.elapsed(),
            self.ua
        );
    }
}

fn split(data: &[u8]) -> Vec<&[u8]> {
    let mut pieces = vec![];
    let mut rest = data;
    while let Some(at) = find(rest, SEPARATOR) {
        pieces.push(&rest[..at]);
        rest = &rest[at + SEPARATOR.len()..];
    }
    pieces.push(rest);
    pieces
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn run(data: &[u8]) {
    let mut h = Harness::new();
    h.drain();
    for (index, piece) in split(data).into_iter().enumerate() {
        let datagram = if index == 0 {
            h.tick(Duration::ZERO);
            piece
        } else {
            let (line, datagram) = match piece.iter().position(|&b| b == b'\n') {
                Some(nl) => (&piece[..nl], &piece[nl + 1..]),
                None => (piece, &[][..]),
            };
            h.directive(line);
            datagram
        };
        h.receive(datagram);
    }
    h.quiesce();
}

fuzz_target!(|data: &[u8]| run(data));
