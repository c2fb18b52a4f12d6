//! Criterion benchmarks of the SIP core: message parse+print, and whole call setups through a
//! pair of sans-IO endpoints (no sockets: this is the engine's own cost per core).
#![allow(clippy::unwrap_used, clippy::disallowed_methods, missing_docs)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;
use sip_engine::message::{self, Message};
use sip_engine::{Config, Endpoint, Event, Input, Output, PcmuNegotiator};

const INVITE: &[u8] = b"INVITE sip:service@127.0.0.1:5070 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-24051-1-0\r\n\
From: sipp <sip:sipp@127.0.0.1:5061>;tag=24051SIPpTag001\r\n\
To: service <sip:service@127.0.0.1:5070>\r\n\
Call-ID: 1-24051@127.0.0.1\r\n\
CSeq: 1 INVITE\r\n\
Contact: sip:sipp@127.0.0.1:5061\r\n\
Max-Forwards: 70\r\n\
Subject: Performance Test\r\n\
Content-Type: application/sdp\r\n\
Content-Length:   129\r\n\
\r\n\
v=0\r\n\
o=user1 53655765 2353687637 IN IP4 127.0.0.1\r\n\
s=-\r\n\
c=IN IP4 127.0.0.1\r\n\
t=0 0\r\n\
m=audio 6000 RTP/AVP 0\r\n\
a=rtpmap:0 PCMU/8000\r\n";

fn parse_print(c: &mut Criterion) {
    let mut group = c.benchmark_group("message");
    group.throughput(Throughput::Elements(1));
    group.bench_function("parse+print INVITE", |b| {
        b.iter(|| {
            let Message::Request(request) = message::parse(INVITE).unwrap() else { unreachable!() };
            let essentials = request.essentials().unwrap();
            std::hint::black_box((request.to_bytes(), essentials));
        })
    });
    group.finish();
}

fn endpoint(addr: SocketAddr, seed: u64) -> Endpoint {
    Endpoint::new(
        Config::new(addr),
        Box::new(ChaCha8Rng::seed_from_u64(seed)),
        Box::new(PcmuNegotiator::new(addr.ip(), 40000)),
    )
}

/// One complete call, INVITE to BYE's 200, through two endpoints with instant delivery.
fn call_setup(a: &mut Endpoint, b: &mut Endpoint, now: Instant) {
    let (addr_a, addr_b) = (a.config().local_addr, b.config().local_addr);
    let call = a.invite(now, "sip:bob@127.0.0.1:5062", addr_b).unwrap();
    let mut hung_up = false;
    loop {
        let mut progressed = false;
        for (from, to) in [(0, 1), (1, 0)] {
            loop {
                let (src, dst) = if from == 0 { (&mut *a, &mut *b) } else { (&mut *b, &mut *a) };
                let source = if from == 0 { addr_a } else { addr_b };
                let _ = to;
                match src.poll_output(now) {
                    Output::Transmit(t) => {
                        dst.handle_input(
                            now,
                            Input::Receive { flow: source.into(), data: &t.data },
                        );
                        progressed = true;
                    }
                    Output::Event(Event::Incoming { call, .. }) => {
                        src.answer(now, call).unwrap();
                        progressed = true;
                    }
                    Output::Event(Event::Answered { call: c })
                        if c == call && from == 0 && !hung_up =>
                    {
                        hung_up = true;
                        src.hangup(now, call).unwrap();
                        progressed = true;
                    }
                    Output::Event(Event::Ended { call: c, .. }) if c == call && from == 0 => return,
                    Output::Event(_) => progressed = true,
                    Output::Timeout(_) => break,
                }
            }
        }
        assert!(progressed, "call setup stalled");
    }
}

fn calls(c: &mut Criterion) {
    let mut group = c.benchmark_group("engine pair");
    group.throughput(Throughput::Elements(1));
    group.bench_function("call setup + teardown", |bench| {
        let mut a = endpoint("127.0.0.1:5061".parse().unwrap(), 1);
        let mut b = endpoint("127.0.0.1:5062".parse().unwrap(), 2);
        let mut now = Instant::now();
        bench.iter(|| {
            call_setup(&mut a, &mut b, now);
            // Let Timers K, J, L and M expire so state does not pile up between iterations.
            now += Duration::from_secs(40);
            a.handle_input(now, Input::Timeout);
            b.handle_input(now, Input::Timeout);
        });
        assert_eq!(a.transactions() + b.transactions(), 0);
    });
    group.finish();
}

criterion_group!(benches, parse_print, calls);
criterion_main!(benches);
