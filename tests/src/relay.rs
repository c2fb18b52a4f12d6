//! A UDP impairment relay between two phones on loopback, for the media benchmark (the kernel
//! here has no `netem`). The caller dials the relay's SIP port; the relay passes SIP both ways
//! and rewrites the offer and the answer so that each phone sends its media to the relay, which
//! hands it on: the callee's RTP to the caller through a seeded [`netsim::Link`] (loss, delay
//! with jitter, reordering), everything else unchanged. Only the callee→caller direction is
//! impaired — the direction the benchmark listens to. Both phones see media come from where
//! they send it, so symmetric RTP (latching) keeps it on the relay.
//!
//! ```text
//!  caller ──SIP──> relay ──SIP──> callee      (responses back the same way; ACK and BYE direct)
//!  caller <──RTP── relay side B <── impaired ── relay side A <──RTP── callee
//!  caller ──RTP──> relay side B ──────────────> relay side A ──RTP──> callee
//! ```

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use netsim::{Impairment, Link};

/// A running relay; it stops when dropped.
#[derive(Debug)]
pub struct Relay {
    /// The SIP port the caller dials.
    pub sip_port: u16,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

/// Where each phone's media is, from its SDP: (RTP, RTCP).
#[derive(Debug, Default, Clone, Copy)]
struct Peers {
    caller: (Option<SocketAddr>, Option<SocketAddr>),
    callee: (Option<SocketAddr>, Option<SocketAddr>),
}

impl Relay {
    /// Relays calls to the callee at `callee` (its SIP address), impairing its RTP with
    /// `impairment` drawn from `seed`.
    pub fn start(callee: SocketAddr, impairment: Impairment, seed: u64) -> Self {
        let sip = UdpSocket::bind("127.0.0.1:0").unwrap();
        // Side A faces the callee (named in the offer), side B the caller (in the answer).
        let (a_rtp, a_rtcp) = media_pair();
        let (b_rtp, b_rtcp) = media_pair();
        let sip_port = sip.local_addr().unwrap().port();
        let ports = (a_rtp.local_addr().unwrap().port(), b_rtp.local_addr().unwrap().port());
        let stop = Arc::new(AtomicBool::new(false));
        let peers = Arc::new(Mutex::new(Peers::default()));
        let mut threads = vec![];
        {
            let (stop, peers) = (stop.clone(), peers.clone());
            threads.push(std::thread::spawn(move || relay_sip(&sip, callee, ports, &peers, &stop)));
        }
        let pipes = [
            (a_rtp.try_clone().unwrap(), b_rtp.try_clone().unwrap(), Direction::ToCaller, true),
            (b_rtp, a_rtp, Direction::ToCallee, true),
            (a_rtcp.try_clone().unwrap(), b_rtcp.try_clone().unwrap(), Direction::ToCaller, false),
            (b_rtcp, a_rtcp, Direction::ToCallee, false),
        ];
        for (from, to, direction, rtp) in pipes {
            let (stop, peers) = (stop.clone(), peers.clone());
            let impaired = rtp && direction == Direction::ToCaller;
            let link = Link::new(if impaired { impairment } else { Impairment::clean() }, seed);
            threads.push(std::thread::spawn(move || {
                pipe(&from, &to, direction, rtp, link, &peers, &stop);
            }));
        }
        Self { sip_port, stop, threads }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    ToCaller,
    ToCallee,
}

/// Two sockets on neighbouring ports, the first even (RTP and RTCP, RFC 3550 §11).
fn media_pair() -> (UdpSocket, UdpSocket) {
    loop {
        let rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = rtp.local_addr().unwrap().port();
        if port.is_multiple_of(2)
            && let Ok(rtcp) = UdpSocket::bind(("127.0.0.1", port + 1))
        {
            return (rtp, rtcp);
        }
    }
}

fn relay_sip(
    socket: &UdpSocket,
    callee: SocketAddr,
    (to_callee_port, to_caller_port): (u16, u16),
    peers: &Mutex<Peers>,
    stop: &AtomicBool,
) {
    socket.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let mut buf = vec![0u8; 65536];
    let mut caller = None;
    while !stop.load(Ordering::Relaxed) {
        let Ok((n, from)) = socket.recv_from(&mut buf) else { continue };
        let message = String::from_utf8_lossy(&buf[..n]).into_owned();
        if from == callee {
            // A response with the answer: the caller is to send its media to side B.
            let (message, rtp, rtcp) = rewrite_sdp(&message, to_caller_port);
            if rtp.is_some() {
                peers.lock().unwrap().callee = (rtp, rtcp);
            }
            if let Some(caller) = caller {
                let _ = socket.send_to(message.as_bytes(), caller);
            }
            continue;
        }
        caller = Some(from);
        // The offer: the callee is to send its media to side A.
        let (message, rtp, rtcp) = rewrite_sdp(&message, to_callee_port);
        if rtp.is_some() {
            peers.lock().unwrap().caller = (rtp, rtcp);
        }
        let _ = socket.send_to(message.as_bytes(), callee);
    }
}

/// The message with its SDP's audio port (and `a=rtcp` port) replaced by `relay_port` (and the
/// one after it), with the Content-Length to match; and the RTP and RTCP addresses the SDP
/// named. A message without an audio m-line passes unchanged.
fn rewrite_sdp(message: &str, relay_port: u16) -> (String, Option<SocketAddr>, Option<SocketAddr>) {
    let Some((head, body)) = message.split_once("\r\n\r\n") else {
        return (message.to_owned(), None, None);
    };
    if !body.contains("m=audio ") {
        return (message.to_owned(), None, None);
    }
    let mut ip = "127.0.0.1".to_owned();
    let (mut rtp_port, mut rtcp_port) = (None, None);
    let mut lines = vec![];
    for line in body.split("\r\n") {
        if let Some(rest) = line.strip_prefix("c=IN IP4 ") {
            ip = rest.trim().to_owned();
            lines.push(line.to_owned());
        } else if let Some(rest) = line.strip_prefix("m=audio ") {
            let (port, tail) = rest.split_once(' ').unwrap_or((rest, ""));
            rtp_port = port.parse::<u16>().ok();
            lines.push(format!("m=audio {relay_port} {tail}"));
        } else if let Some(rest) = line.strip_prefix("a=rtcp:") {
            let (port, tail) = rest.split_once(' ').unwrap_or((rest, ""));
            rtcp_port = port.parse::<u16>().ok();
            let tail = if tail.is_empty() { String::new() } else { format!(" {tail}") };
            lines.push(format!("a=rtcp:{}{tail}", relay_port + 1));
        } else {
            lines.push(line.to_owned());
        }
    }
    let body = lines.join("\r\n");
    let head: Vec<String> = head
        .split("\r\n")
        .map(|h| {
            let lower = h.to_ascii_lowercase();
            if lower.starts_with("content-length:") || lower.starts_with("l:") {
                format!("Content-Length: {}", body.len())
            } else {
                h.to_owned()
            }
        })
        .collect();
    let address = |port: Option<u16>| port.and_then(|p| format!("{ip}:{p}").parse().ok());
    let rtcp = address(rtcp_port.or(rtp_port.and_then(|p| p.checked_add(1))));
    (format!("{}\r\n\r\n{body}", head.join("\r\n")), address(rtp_port), rtcp)
}

/// Moves datagrams arriving on `from` out of `to`, towards the phone `direction` names (RTP
/// through `link`; RTCP muxed on the RTP port passes unimpaired).
fn pipe(
    from: &UdpSocket,
    to: &UdpSocket,
    direction: Direction,
    rtp: bool,
    mut link: Link,
    peers: &Mutex<Peers>,
    stop: &AtomicBool,
) {
    from.set_read_timeout(Some(Duration::from_millis(1))).unwrap();
    let mut buf = vec![0u8; 2048];
    while !stop.load(Ordering::Relaxed) {
        let peers = *peers.lock().unwrap();
        let (peer_rtp, peer_rtcp) =
            if direction == Direction::ToCaller { peers.caller } else { peers.callee };
        let target = if rtp { peer_rtp } else { peer_rtcp };
        if let Ok((n, _)) = from.recv_from(&mut buf) {
            let data = buf[..n].to_vec();
            if rtp && !rtp_session::rtp::is_rtcp(&data) {
                link.send(Instant::now(), data);
            } else if let Some(target) = target {
                let _ = to.send_to(&data, target);
            }
        }
        let now = Instant::now();
        while let Some(data) = link.poll(now) {
            if let Some(target) = target {
                let _ = to.send_to(&data, target);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sdp_points_the_other_phone_at_the_relay() {
        let body = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
                    m=audio 40000 RTP/AVP 111\r\na=rtcp:40001\r\na=rtcp-mux\r\n";
        let invite = format!(
            "INVITE sip:bob@127.0.0.1 SIP/2.0\r\nContent-Type: application/sdp\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let (out, rtp, rtcp) = rewrite_sdp(&invite, 50000);
        assert!(out.contains("m=audio 50000 RTP/AVP 111\r\n") && out.contains("a=rtcp:50001\r\n"));
        let (head, new_body) = out.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("Content-Length: {}", new_body.len())));
        assert_eq!(rtp, Some("127.0.0.1:40000".parse().unwrap()));
        assert_eq!(rtcp, Some("127.0.0.1:40001".parse().unwrap()));
    }
}
