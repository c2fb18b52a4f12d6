//! The device side of one call, per 20 ms frame: voice processing (noise suppression, and echo
//! cancellation when turned on) on two 10 ms blocks, and `CallAudio`'s read and write with the
//! conversion between 48 kHz and 16 kHz (G.722's rate). A frame's budget is 20 ms; these
//! figures are what a call costs the machine for each.
#![allow(clippy::unwrap_used)]

use audio_devices::Processing;
use audio_devices::call::loopback;
use audio_devices::processing::{BLOCK, processor};
use criterion::{Criterion, criterion_group, criterion_main};

fn voice(n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| {
            let t = i as f32 / 48_000.0;
            let pitch =
                (1..6).map(|h| (std::f32::consts::TAU * 140.0 * h as f32 * t).sin() / h as f32);
            0.1 * pitch.sum::<f32>() * (0.5 + 0.5 * (std::f32::consts::TAU * 3.0 * t).sin())
        })
        .collect()
}

fn processing(c: &mut Criterion) {
    let far = voice(48_000);
    let near = voice(48_000);
    for (name, setting) in [
        (
            "noise suppression, 20 ms",
            Processing { echo_cancellation: false, noise_suppression: true },
        ),
        (
            "echo cancellation + noise suppression, 20 ms",
            Processing { echo_cancellation: true, noise_suppression: true },
        ),
    ] {
        let mut p = processor(setting).unwrap();
        let mut at = 0;
        let mut block = vec![0.0; BLOCK];
        c.bench_function(name, |b| {
            b.iter(|| {
                for _ in 0..2 {
                    p.render(&far[at..at + BLOCK]);
                    block.copy_from_slice(&near[at..at + BLOCK]);
                    p.capture(&mut block);
                    at = (at + BLOCK) % (far.len() - BLOCK);
                }
            })
        });
    }
}

fn call_audio(c: &mut Criterion) {
    let (mut call, mut devices) = loopback(16_000, None).unwrap();
    let mic = voice(960);
    let decoded: Vec<i16> = voice(320).iter().map(|s| (s * 32767.0) as i16).collect();
    c.bench_function("CallAudio read + write at 16 kHz, 20 ms", |b| {
        b.iter(|| {
            for s in &mic {
                let _ = devices.microphone.push(*s);
            }
            let frame = call.read(320);
            call.write(&decoded);
            while devices.speaker.pop().is_ok() {}
            frame
        })
    });
}

criterion_group!(benches, processing, call_audio);
criterion_main!(benches);
