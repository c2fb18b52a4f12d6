//! A call-quality estimate for the call screen: the ITU-T G.107 E-model, reduced to what an
//! endpoint knows (codec, packet loss, jitter-buffer delay, round-trip time), mapped to a MOS.
//!
//! `R = R0 − Is − Id − Ie,eff + A` with the default `R0 − Is = 93.2` and `A = 0` (G.107 §7):
//! * `Id`, the delay impairment, from the one-way mouth-to-ear delay `Ta`: half the round trip,
//!   plus the jitter buffer, plus one frame of packetisation and a little look-ahead;
//!   `Id ≈ 0.024·Ta + 0.11·(Ta − 177.3)·H(Ta − 177.3)` (the usual simplification of G.107
//!   §7.3 by Cole and Rosenbluth, 2001).
//! * `Ie,eff = Ie + (95 − Ie) · Ppl / (Ppl / BurstR + Bpl)` (G.107 §7.4) with random loss
//!   (`BurstR = 1`) and each codec's equipment impairment `Ie` and robustness `Bpl` from
//!   ITU-T G.113 Appendix I: G.711 with packet-loss concealment `Ie 0, Bpl 25.1`. G.722 and
//!   Opus are not in the narrowband tables; they are scored as G.711 with PLC for `Ie`, and
//!   Opus with its FEC is given a higher `Bpl` (a deliberate, documented assumption).
//! * `MOS = 1 + 0.035R + R(R − 60)(100 − R)·7·10⁻⁶` (G.107 Annex B), 1 below `R = 0`, 4.5 above
//!   `R = 100`.
//!
//! This is the narrowband scale: a perfect wideband call shows 4.4, not more. It is an estimate
//! for the agent ("the line is bad"), not a measurement: measured speech quality is in
//! `docs/media.md` (PESQ against baresip).

/// What the estimate is made from, over the last interval (not the whole call).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QualityInput<'a> {
    /// `opus`, `G722`, `PCMU`, `PCMA` (as in the rtpmap; case-insensitive).
    pub codec: &'a str,
    /// Packets lost (or arrived too late to play) per 100 expected.
    pub loss_percent: f64,
    /// The jitter buffer's delay.
    pub buffer_ms: f64,
    /// From RTCP, when known.
    pub rtt_ms: Option<f64>,
    /// The codec's frame length.
    pub frame_ms: f64,
}

/// The estimate: the E-model's rating and the MOS it maps to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quality {
    pub r_factor: f64,
    pub mos: f64,
}

/// Scores a call's last interval.
pub fn estimate(input: &QualityInput<'_>) -> Quality {
    let (ie, bpl) = impairment(input.codec);
    let loss = input.loss_percent.clamp(0.0, 100.0);
    let ie_eff = ie + (95.0 - ie) * loss / (loss + bpl);
    // Without RTCP's round trip yet, assume a LAN's: a few milliseconds.
    let one_way = input.rtt_ms.unwrap_or(10.0).max(0.0) / 2.0
        + input.buffer_ms.max(0.0)
        + input.frame_ms.max(0.0)
        + 5.0;
    let id = 0.024 * one_way + if one_way > 177.3 { 0.11 * (one_way - 177.3) } else { 0.0 };
    let r = 93.2 - id - ie_eff;
    Quality { r_factor: r, mos: mos(r) }
}

/// G.107 Annex B: R to MOS (conversational quality, estimated).
pub fn mos(r: f64) -> f64 {
    if r <= 0.0 {
        1.0
    } else if r >= 100.0 {
        4.5
    } else {
        1.0 + 0.035 * r + r * (r - 60.0) * (100.0 - r) * 7e-6
    }
}

/// `(Ie, Bpl)` per codec (G.113 Appendix I; Opus and G.722 as the module explains).
fn impairment(codec: &str) -> (f64, f64) {
    let codec = codec.split('/').next().unwrap_or_default();
    if codec.eq_ignore_ascii_case("opus") {
        (0.0, 34.0)
    } else {
        // G.711 (PCMU, PCMA) with PLC, and G.722.
        (0.0, 25.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(
        codec: &str,
        loss_percent: f64,
        buffer_ms: f64,
        rtt_ms: Option<f64>,
    ) -> QualityInput<'_> {
        QualityInput { codec, loss_percent, buffer_ms, rtt_ms, frame_ms: 20.0 }
    }

    #[test]
    fn a_clean_lan_call_is_near_the_top_of_the_scale() {
        let q = estimate(&input("PCMU", 0.0, 40.0, Some(2.0)));
        // Ta = 1 + 40 + 20 + 5 = 66 ms: Id = 1.58, R = 91.6, MOS 4.38.
        assert!((q.r_factor - 91.62).abs() < 0.01, "{q:?}");
        assert!((q.mos - 4.38).abs() < 0.01, "{q:?}");
    }

    #[test]
    fn loss_and_delay_lower_the_score_as_g107_says() {
        // G.107's worked relation: 2 % random loss on G.711 with PLC costs Ie,eff = 6.1.
        let clean = estimate(&input("PCMA", 0.0, 40.0, Some(2.0)));
        let lossy = estimate(&input("PCMA", 2.0, 40.0, Some(2.0)));
        assert!((clean.r_factor - lossy.r_factor - 95.0 * 2.0 / 27.1).abs() < 1e-9);
        // 400 ms of round trip pushes Ta past 177.3 ms, where every millisecond costs 0.134.
        let far = estimate(&input("PCMU", 0.0, 40.0, Some(400.0)));
        let farther = estimate(&input("PCMU", 0.0, 50.0, Some(400.0)));
        assert!((far.r_factor - farther.r_factor - 1.34).abs() < 1e-9);
        // Opus rides out the same loss better.
        let opus = estimate(&input("opus/48000/2", 5.0, 40.0, Some(2.0)));
        let g711 = estimate(&input("PCMU/8000", 5.0, 40.0, Some(2.0)));
        assert!(opus.mos > g711.mos);
        // Everything lost: Ie,eff = 95 · 100 / 125.1 leaves R ≈ 16, MOS 1.1, the bottom.
        let lost = estimate(&input("PCMU", 100.0, 40.0, None)).mos;
        assert!((1.0..1.2).contains(&lost), "{lost}");
    }

    #[test]
    fn mos_follows_annex_b() {
        assert_eq!(mos(-5.0), 1.0);
        assert_eq!(mos(100.0), 4.5);
        assert!((mos(93.2) - 4.41).abs() < 0.01);
        assert!((mos(50.0) - 2.58).abs() < 0.01);
        assert!(mos(80.0) > mos(70.0));
    }
}
