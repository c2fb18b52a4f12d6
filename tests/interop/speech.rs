//! Speech both ways over SRTP between `switchboard-cli` and baresip 1.0, in both roles and with
//! Opus, G.722 and PCMU: each side plays the reference sentence, each side's recording is
//! scored with PESQ-WB against it, and a tshark capture of the call shows what went over the
//! wire (payload type and packet interval, SRTP rather than plain payloads, RTCP both ways,
//! RFC 4733 key presses with their end retransmits).
//!
//! The calls are direct over UDP on loopback, so the test settings allow SDES keys over clear
//! signalling (`dangerous.sdes_over_clear_signalling`); `kamailio.rs` covers keys over TLS.
#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::disallowed_methods)]

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use switchboard_tests::speech::{self, Buffer, Capture, Datagram, Phone};
use switchboard_tests::{Cli, artifacts};

/// What one codec must achieve, and how it looks on the wire.
#[derive(Debug, Clone, Copy)]
struct Codec {
    name: &'static str,
    /// PESQ-WB floor, both directions (baresip↔baresip scores about 3.76, 3.09 and 2.92).
    floor: f64,
    /// The rtpmap Switchboard reports.
    rtpmap: &'static str,
    payload_type: u8,
    /// RTP clock units in one 20 ms packet.
    units: u32,
    /// telephone-event payload type at the codec's clock in our offer, when the peer takes
    /// it (baresip 1.0 only does 8 kHz events, so not with Opus).
    event_pt: Option<u8>,
}

const OPUS: Codec = Codec {
    name: "opus",
    floor: 3.6,
    rtpmap: "opus/48000/2",
    payload_type: 111,
    units: 960,
    event_pt: None,
};
const G722: Codec = Codec {
    name: "g722",
    floor: 2.9,
    rtpmap: "G722/8000",
    payload_type: 9,
    units: 160,
    event_pt: Some(101),
};
const PCMU: Codec = Codec {
    name: "pcmu",
    floor: 2.7,
    rtpmap: "PCMU/8000",
    payload_type: 0,
    units: 160,
    event_pt: Some(101),
};

const SUITE: &str = "AES_CM_128_HMAC_SHA1_80";
const KEYS: &str = "1#";

/// Lets this test's agent put SDES keys into SDP over UDP (loopback only).
fn allow_sdes_over_udp(dir: &Path) {
    let config = dir.join("config/switchboard");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(
        config.join("settings.toml"),
        "[dangerous]\nsdes_over_clear_signalling = true\n",
    )
    .unwrap();
}

/// The agent's call options: play the reference, record, one codec, SRTP only, and key
/// presses after the speech (in the trailing silence, so they do not cut into the score).
fn media_args(reference: &Path, recording: &Path, codec: Codec, speech: f64) -> Vec<String> {
    [
        "--play",
        &reference.display().to_string(),
        "--record",
        &recording.display().to_string(),
        "--codec",
        codec.name,
        "--srtp",
        "required",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .chain(codec.event_pt.into_iter().flat_map(|_| {
        ["--dtmf".to_owned(), KEYS.to_owned(), "--dtmf-after".into(), format!("{speech:.1}")]
    }))
    .collect()
}

#[test]
fn switchboard_calls_baresip_with_opus_over_srtp() {
    switchboard_calls_baresip(OPUS);
}

#[test]
fn switchboard_calls_baresip_with_g722_over_srtp() {
    switchboard_calls_baresip(G722);
}

#[test]
fn switchboard_calls_baresip_with_pcmu_over_srtp() {
    switchboard_calls_baresip(PCMU);
}

#[test]
fn baresip_calls_switchboard_with_opus_over_srtp() {
    baresip_calls_switchboard(OPUS);
}

#[test]
fn baresip_calls_switchboard_with_g722_over_srtp() {
    baresip_calls_switchboard(G722);
}

#[test]
fn baresip_calls_switchboard_with_pcmu_over_srtp() {
    baresip_calls_switchboard(PCMU);
}

fn switchboard_calls_baresip(codec: Codec) {
    let dir = artifacts(&format!("speech_switchboard_calls_baresip_{}", codec.name));
    let (reference, seconds) = speech::reference(&dir);
    let source = speech::at_rate(&reference, speech::baresip_codec(codec.name).1);
    allow_sdes_over_udp(&dir);
    let hold = seconds + 1.0;
    let steal = speech::Steal::start();
    let mut bob = Phone::answering(
        &dir,
        codec.name,
        Some("srtp-mand"),
        &source,
        hold as u32 + 20,
        Buffer::Fixed,
    );
    let capture = Capture::start(&dir);
    let recording = dir.join("switchboard-heard.wav");
    let mut args = vec!["call".to_owned(), format!("sip:bob@127.0.0.1:{}", bob.port)];
    args.extend(media_args(&reference, &recording, codec, seconds));
    args.extend(["--hangup-after".to_owned(), format!("{hold:.1}")]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut cli = Cli::start(&args, &dir);
    let (remote, payload_type, stats) = media_events(&mut cli, codec, hold);
    // Our offer's number (the answer keeps it).
    assert_eq!(payload_type, codec.payload_type);
    assert!(cli.wait_exit(Duration::from_secs(10)).success());
    bob.stop(Duration::from_secs(10));
    let datagrams = capture.finish();
    check_wire(&datagrams, remote, payload_type, codec, &stats);
    score(&reference, &recording, &bob.received(), codec, steal);
}

fn baresip_calls_switchboard(codec: Codec) {
    let dir = artifacts(&format!("speech_baresip_calls_switchboard_{}", codec.name));
    let (reference, seconds) = speech::reference(&dir);
    let source = speech::at_rate(&reference, speech::baresip_codec(codec.name).1);
    allow_sdes_over_udp(&dir);
    let hold = seconds + 1.0;
    let steal = speech::Steal::start();
    let recording = dir.join("switchboard-heard.wav");
    let mut args =
        vec!["listen".to_owned(), "--auto-answer".into(), "--max-calls".into(), "1".into()];
    args.extend(media_args(&reference, &recording, codec, seconds));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut cli = Cli::start(&args, &dir);
    let capture = Capture::start(&dir);
    let target = format!("sip:switchboard@127.0.0.1:{}", cli.port);
    let mut alice = Phone::dialing(
        &dir,
        codec.name,
        Some("srtp-mand"),
        &source,
        &target,
        hold.ceil() as u32,
        Buffer::Fixed,
    );
    let (remote, payload_type, stats) = media_events(&mut cli, codec, hold);
    assert!(cli.wait_exit(Duration::from_secs(10)).success());
    let log = alice.wait(Duration::from_secs(15));
    assert!(log.contains("Call established"), "baresip's call never came up:\n{log}");
    let datagrams = capture.finish();
    check_wire(&datagrams, remote, payload_type, codec, &stats);
    score(&reference, &recording, &alice.received(), codec, steal);
}

/// The agent's `media-started` (SRTP with the suite baresip takes, the codec) and its
/// `call-stats`; returns the peer's media address, the payload type both use (the offerer's
/// number) and the stats.
fn media_events(cli: &mut Cli, codec: Codec, hold: f64) -> (SocketAddr, u8, serde_json::Value) {
    let started = cli.wait_for("media-started", Duration::from_secs(15));
    assert_eq!(started["srtp"], SUITE, "{started}");
    assert_eq!(started["codec"], codec.rtpmap, "{started}");
    let limit = Duration::from_secs_f64(hold + 20.0);
    let stats = cli.wait_for("call-stats", limit);
    println!("call-stats: {stats}");
    // baresip sends the odd packet we refuse (an SRTCP report without the encryption flag):
    // a few, not a stream.
    let dropped = stats["packets_dropped"].as_u64().unwrap();
    assert!(dropped * 100 < stats["packets_received"].as_u64().unwrap(), "{stats}");
    let payload_type = started["payload_type"].as_u64().unwrap() as u8;
    (started["remote"].as_str().unwrap().parse().unwrap(), payload_type, stats)
}

fn is_rtcp(payload: &[u8]) -> bool {
    payload.len() >= 8 && (200..=204).contains(&payload[1])
}

/// What the capture must show.
fn check_wire(
    datagrams: &[Datagram],
    remote: SocketAddr,
    payload_type: u8,
    codec: Codec,
    stats: &serde_json::Value,
) {
    // Our media socket is the one sending to the peer's media port.
    let ours = datagrams
        .iter()
        .find(|d| d.to == remote && !is_rtcp(&d.payload))
        .map(|d| d.from)
        .expect("no media from switchboard in the capture");
    let sent: Vec<&Datagram> =
        datagrams.iter().filter(|d| d.from == ours && !is_rtcp(&d.payload)).collect();
    let audio: Vec<&Datagram> =
        sent.iter().copied().filter(|d| d.payload[1] & 0x7f == payload_type).collect();
    assert!(audio.len() > 100, "only {} audio packets sent", audio.len());
    // The negotiated payload type, and timestamps one frame per sequence number: 20 ms of
    // clock per packet, and across a key press the frames its packets took.
    let header = |d: &Datagram| {
        let p = &d.payload;
        let seq = u16::from_be_bytes([p[2], p[3]]);
        let ts = u32::from_be_bytes([p[4], p[5], p[6], p[7]]);
        (seq, ts)
    };
    for pair in audio.windows(2) {
        let ((s0, t0), (s1, t1)) = (header(pair[0]), header(pair[1]));
        let frames = u32::from(s1.wrapping_sub(s0));
        assert_eq!(t1.wrapping_sub(t0), frames * codec.units, "seq {s0}→{s1}, ts {t0}→{t1}");
    }
    // SRTP: a 10-byte tag on every packet, and payloads without the codec's structure.
    if codec.name != "opus" {
        assert!(audio.iter().all(|d| d.payload.len() == 12 + 160 + 10), "SRTP-sized packets");
    }
    let theirs: Vec<&Datagram> =
        datagrams.iter().filter(|d| d.from == remote && !is_rtcp(&d.payload)).collect();
    for (label, stream) in [("switchboard", &audio), ("the peer", &theirs)] {
        assert!(stream.len() > 100, "{label} sent only {} packets", stream.len());
        let most = commonest_first_byte(stream);
        assert!(
            most * 20 < stream.len(),
            "{label}'s payloads look plain: one first byte in {most} of {} packets",
            stream.len()
        );
    }
    // RTCP both ways (SRTCP leaves the first 8 bytes in the clear).
    let rtcp_out = datagrams
        .iter()
        .filter(|d| {
            d.from.ip() == ours.ip() && d.from.port() / 2 == ours.port() / 2 && is_rtcp(&d.payload)
        })
        .count();
    let rtcp_in = datagrams
        .iter()
        .filter(|d| (d.to == ours || d.to.port() == ours.port() + 1) && is_rtcp(&d.payload))
        .count();
    assert!(rtcp_out >= 1 && rtcp_in >= 1, "RTCP out {rtcp_out}, in {rtcp_in}");
    // Key presses: telephone-events, seven packets each (four updates, three end packets; the
    // E bits are inside the encrypted payload), the first marked, all with one timestamp.
    let Some(event_pt) = codec.event_pt else { return };
    let events: Vec<&&Datagram> = sent.iter().filter(|d| d.payload[1] & 0x7f == event_pt).collect();
    let per_key = 100 / 20 + 2;
    assert_eq!(events.len(), KEYS.len() * per_key, "telephone-event packets");
    for key in events.chunks(per_key) {
        assert!(key[0].payload[1] & 0x80 != 0, "the first packet of a key press is marked");
        let stamps: Vec<u32> = key.iter().map(|d| header(d).1).collect();
        assert!(stamps.iter().all(|t| *t == stamps[0]), "one timestamp per key press");
    }
    assert_eq!(stats["dtmf_sent"], KEYS.len(), "{stats}");
}

/// How many packets share the commonest first payload byte. A plain Opus stream's first byte
/// (its TOC) is nearly constant, and plain G.711/G.722 repeat byte values in silence;
/// encrypted, no value covers 5 % of the packets.
fn commonest_first_byte(stream: &[&Datagram]) -> usize {
    let mut counts = [0usize; 256];
    for d in stream {
        counts[usize::from(d.payload[12])] += 1;
    }
    counts.iter().max().copied().unwrap_or(0)
}

/// The control for the SRTP check above, and the `preferred` fallback against a real peer:
/// baresip without SRTP refuses our RTP/SAVP offer, we offer RTP/AVP once more, and the
/// capture shows the plain payloads for what they are, a key press's end bits included.
#[test]
fn preferred_falls_back_to_plain_rtp_that_the_wire_shows_plain() {
    let dir = artifacts("speech_preferred_falls_back_to_plain_rtp");
    let (reference, _) = speech::reference(&dir);
    let source = speech::at_rate(&reference, 8000);
    allow_sdes_over_udp(&dir);
    let mut bob = Phone::answering(&dir, "pcmu", None, &source, 30, Buffer::Fixed);
    let capture = Capture::start(&dir);
    let target = format!("sip:bob@127.0.0.1:{}", bob.port);
    let reference = reference.display().to_string();
    let args = ["call", &target, "--play", &reference, "--codec", "pcmu", "--srtp", "preferred"];
    let more = ["--hangup-after", "4", "--dtmf", "5", "--dtmf-after", "1"];
    let mut cli = Cli::start(&[&args[..], &more].concat(), &dir);
    let started = cli.wait_for("media-started", Duration::from_secs(15));
    assert_eq!(started["srtp"], serde_json::Value::Null, "{started}");
    assert!(cli.wait_exit(Duration::from_secs(20)).success());
    bob.stop(Duration::from_secs(10));
    let datagrams = capture.finish();
    let remote: SocketAddr = started["remote"].as_str().unwrap().parse().unwrap();
    let invites: Vec<String> = datagrams
        .iter()
        .filter(|d| d.to.port() == bob.port)
        .map(|d| String::from_utf8_lossy(&d.payload).into_owned())
        .filter(|t| t.starts_with("INVITE "))
        .collect();
    assert!(invites.iter().any(|t| t.contains("RTP/SAVP") && t.contains("a=crypto:")));
    assert!(invites.iter().any(|t| t.contains(" RTP/AVP ") && !t.contains("a=crypto:")));
    let ours: Vec<&Datagram> = datagrams
        .iter()
        .filter(|d| d.to == remote && !is_rtcp(&d.payload) && d.payload.len() == 12 + 160)
        .collect();
    assert!(ours.len() > 100, "plain PCMU packets: {}", ours.len());
    assert!(commonest_first_byte(&ours) * 20 >= ours.len(), "plain speech must look plain");
    // In the clear, the key press shows whole (RFC 4733 §2.5.1): event 5, a marked first packet,
    // the duration growing by 20 ms of 8 kHz clock, three end packets with the final duration.
    let events: Vec<(bool, u8, bool, u16)> = datagrams
        .iter()
        .filter(|d| d.to == remote && d.payload.len() == 16 && d.payload[1] & 0x7f == 101)
        .map(|d| {
            let p = &d.payload[12..];
            (d.payload[1] & 0x80 != 0, p[0], p[1] & 0x80 != 0, u16::from_be_bytes([p[2], p[3]]))
        })
        .collect();
    assert_eq!(
        events,
        [
            (true, 5, false, 160),
            (false, 5, false, 320),
            (false, 5, false, 480),
            (false, 5, false, 640),
            (false, 5, true, 800),
            (false, 5, true, 800),
            (false, 5, true, 800),
        ]
    );
}

fn score(reference: &Path, ours: &Path, theirs: &Path, codec: Codec, steal: speech::Steal) {
    let steal = steal.describe();
    let (heard, heard_info) = speech::pesq_wb(reference, ours);
    let (sent, sent_info) = speech::pesq_wb(reference, theirs);
    println!(
        "PESQ-WB {}: switchboard heard {heard:.2} ({heard_info}); baresip heard {sent:.2} ({sent_info}); {steal}",
        codec.name
    );
    let floor = codec.floor;
    assert!(heard >= floor, "switchboard heard {heard:.2} < {floor}: {heard_info}; {steal}");
    assert!(sent >= floor, "baresip heard {sent:.2} < {floor}: {sent_info}; {steal}");
}
