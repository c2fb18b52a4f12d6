//! Presence polling figures for 650 watched colleagues: requests per minute for 1 and for 200
//! agents of one tenant, bytes per poll on the wire (against the emulator's Graph), and the
//! poller's CPU time and memory.
//!
//! `cargo bench -p graph-client --bench presence` prints the figures; under `cargo test
//! --benches` (no `--bench` argument) it runs one short round as a smoke test.
#![allow(clippy::print_stdout)] // a bench binary prints its figures

use std::time::{Duration, Instant};

use graph_client::presence::{PollSettings, Poller, Presence, batches};

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let watched = 650;
    let settings = PollSettings::default();

    // Requests per minute, from the schedule itself (virtual time, an hour).
    for agents in [1u32, 200] {
        let settings = PollSettings { expected_agents: 200, ..settings.clone() };
        let mut requests = 0u64;
        for agent in 0..agents {
            let mut poller = Poller::new(settings.clone(), watched, true, u64::from(agent) + 1);
            while poller.next_poll() < Duration::from_secs(3600) {
                requests += watched.div_ceil(650) as u64;
                let now = poller.next_poll();
                poller.on_success(now, watched);
            }
        }
        println!(
            "{agents:>3} agent(s), 650 watched, policy expecting 200: {:.1} requests/min for the tenant \
             (Graph allows 3,000/min)",
            requests as f64 / 60.0
        );
    }

    // Bytes per poll and wall time, over real HTTP against the emulator.
    let emulator = m365_emulator::Emulator::start(m365_emulator::Config::default())
        .expect("the emulator starts");
    let ids: Vec<String> =
        emulator.add_synthetic_users(watched).into_iter().map(|u| u.id).collect();
    let upn = emulator.users()[0].user_principal_name.clone();
    let token = emulator.issue_tokens(&upn, "Presence.Read.All").expect("tokens").access_token;
    let request_body = serde_json::to_vec(&serde_json::json!({ "ids": ids })).expect("json");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
    let url = format!("{}/v1.0/communications/getPresencesByUserId", emulator.base_url());
    // Plain HTTP on loopback; reqwest still wants a TLS provider to build a client.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder().no_proxy().build().expect("client");
    let rounds = if full { 50 } else { 2 };
    let (body, elapsed) = runtime.block_on(async {
        let mut body = bytes::Bytes::new();
        let started = Instant::now();
        for _ in 0..rounds {
            let answer = http
                .post(&url)
                .bearer_auth(&token)
                .header("content-type", "application/json")
                .body(request_body.clone())
                .send()
                .await
                .expect("a poll");
            assert!(answer.status().is_success(), "{}", answer.status());
            body = answer.bytes().await.expect("body");
        }
        (body, started.elapsed() / rounds)
    });
    let response_bytes = body.len();
    println!(
        "one poll of 650: request body {} bytes, response body {} bytes, {:.1} ms round trip on loopback",
        request_body.len(),
        response_bytes,
        elapsed.as_secs_f64() * 1000.0
    );

    // Reading an answer: parsing the 650 presences, and what they hold in memory.
    let parses = if full { 2_000u32 } else { 3 };
    let started = Instant::now();
    let mut held = 0usize;
    for _ in 0..parses {
        let page: graph_client::graph::Page<Presence> =
            serde_json::from_slice(&body).expect("a presence page");
        held = page.value.capacity() * std::mem::size_of::<Presence>()
            + page
                .value
                .iter()
                .map(|p| p.id.capacity() + p.availability.capacity() + p.activity.capacity())
                .sum::<usize>();
        std::hint::black_box(page);
    }
    println!(
        "parsing one answer of 650: {:.0} µs of CPU, {held} bytes held by the parsed presences",
        (started.elapsed() / parses).as_secs_f64() * 1e6
    );

    // The poller's own cost: scheduling decisions per second, and its size.
    let mut poller = Poller::new(settings, watched, true, 1);
    let decisions = if full { 10_000_000u32 } else { 10_000 };
    let started = Instant::now();
    for i in 0..decisions {
        let now = poller.next_poll();
        if i % 50 == 0 {
            poller.on_throttled(now, Some(Duration::from_secs(2)), watched);
        } else {
            poller.on_success(now, watched);
        }
    }
    let per = started.elapsed() / decisions;
    let batch_count = batches(&ids).count();
    println!(
        "poller: {:.0} ns per scheduling decision, {} bytes of state, {batch_count} request(s) per poll",
        per.as_secs_f64() * 1e9,
        std::mem::size_of::<Poller>()
    );
    // The whole process, emulator included: an upper bound for the poller's share.
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        for line in status.lines().filter(|l| l.starts_with("VmHWM") || l.starts_with("VmRSS")) {
            println!("bench process (poller, HTTP client and the emulator): {line}");
        }
    }
}
