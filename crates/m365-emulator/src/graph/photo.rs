//! Profile photos: a small baseline JPEG of one colour per user, made on the fly.
//!
//! Graph serves profile photos as `image/jpeg`
//! (<https://learn.microsoft.com/graph/api/profilephoto-get>), so the emulator does too, and a
//! flat colour needs no image library: with every pixel equal, each 8×8 block of each
//! component has only a DC coefficient, so the entropy-coded data is the first block's DC
//! value and then "no change, end of block" for every block. The Huffman tables are minimal
//! ones written for exactly that (any baseline decoder takes custom tables). The colour comes
//! from a hash of the user's object id, so users differ but each one is stable.

use sha2::{Digest as _, Sha256};

/// The sizes Graph documents for `/photos/{size}`.
pub(crate) const SIZES: &[u16] = &[48, 64, 96, 120, 240, 360, 432, 504, 648];

/// The size served for `/photo/$value` (the largest, as Graph serves the largest available).
pub(crate) const DEFAULT_SIZE: u16 = 648;

/// Parses `48x48`-style sizes that Graph documents; other sizes have no photo.
pub(crate) fn parse_size(text: &str) -> Option<u16> {
    let (w, h) = text.split_once(['x', 'X'])?;
    let (w, h) = (w.parse::<u16>().ok()?, h.parse::<u16>().ok()?);
    (w == h && SIZES.contains(&w)).then_some(w)
}

/// The user's photo at `size`×`size` pixels (`size` a multiple of 8).
pub(crate) fn photo_jpeg(user_id: &str, size: u16) -> Vec<u8> {
    let hash = Sha256::digest(format!("photo|{user_id}").as_bytes());
    // Keep colours mid-range so the avatars look like avatars rather than black or white.
    let channel = |b: u8| 64 + b / 2;
    flat_jpeg(size, size, [channel(hash[0]), channel(hash[1]), channel(hash[2])])
}

fn segment(out: &mut Vec<u8>, marker: u8, payload: &[u8]) {
    out.extend_from_slice(&[0xFF, marker]);
    let len = u16::try_from(payload.len() + 2).expect("JPEG segments here are a few bytes");
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(payload);
}

/// Writes bits MSB first and byte-stuffs `0xFF` as the JPEG entropy-coded segment requires.
#[derive(Debug, Default)]
struct BitWriter {
    out: Vec<u8>,
    current: u8,
    used: u8,
}

impl BitWriter {
    fn put(&mut self, value: u16, bits: u8) {
        for i in (0..bits).rev() {
            self.current = (self.current << 1) | u8::from((value >> i) & 1 == 1);
            self.used += 1;
            if self.used == 8 {
                self.flush_byte();
            }
        }
    }

    fn flush_byte(&mut self) {
        self.out.push(self.current);
        if self.current == 0xFF {
            self.out.push(0x00);
        }
        self.current = 0;
        self.used = 0;
    }

    /// Pads the last byte with one bits, as the standard asks.
    fn finish(mut self) -> Vec<u8> {
        while self.used != 0 {
            self.put(1, 1);
        }
        self.out
    }
}

/// A baseline JFIF JPEG, `width`×`height` (multiples of 8), every pixel `rgb`.
fn flat_jpeg(width: u16, height: u16, rgb: [u8; 3]) -> Vec<u8> {
    let [r, g, b] = rgb.map(f64::from);
    let ycbcr = [
        0.299 * r + 0.587 * g + 0.114 * b,
        128.0 - 0.168_736 * r - 0.331_264 * g + 0.5 * b,
        128.0 + 0.5 * r - 0.418_688 * g - 0.081_312 * b,
    ];
    // With every quantiser 8, a flat block's quantised DC is the level-shifted sample itself.
    let dc = ycbcr.map(|v| {
        let level = v.round().clamp(0.0, 255.0);
        // In range by the clamp: -128..=127.
        level as i16 - 128
    });

    let mut out = vec![0xFF, 0xD8];
    segment(&mut out, 0xE0, b"JFIF\0\x01\x01\x00\x00\x01\x00\x01\x00\x00");
    let mut dqt = vec![0u8];
    dqt.extend_from_slice(&[8; 64]);
    segment(&mut out, 0xDB, &dqt);
    let mut sof = vec![8];
    sof.extend_from_slice(&height.to_be_bytes());
    sof.extend_from_slice(&width.to_be_bytes());
    sof.extend_from_slice(&[3, 1, 0x11, 0, 2, 0x11, 0, 3, 0x11, 0]);
    segment(&mut out, 0xC0, &sof);
    // DC table 0: the twelve magnitude categories, each a 4-bit code (0000..1011).
    let mut dht_dc = vec![0x00, 0, 0, 0, 12];
    dht_dc.extend_from_slice(&[0; 12]);
    dht_dc.extend(0..12u8);
    segment(&mut out, 0xC4, &dht_dc);
    // AC table 0: only end-of-block (symbol 0x00), code `0`.
    let mut dht_ac = vec![0x10, 1];
    dht_ac.extend_from_slice(&[0; 15]);
    dht_ac.push(0x00);
    segment(&mut out, 0xC4, &dht_ac);
    segment(&mut out, 0xDA, &[3, 1, 0x00, 2, 0x00, 3, 0x00, 0, 63, 0]);

    let mut bits = BitWriter::default();
    let blocks = u32::from(width / 8) * u32::from(height / 8);
    for block in 0..blocks {
        for &value in &dc {
            // DC is coded as the difference from the previous block of the component.
            let diff = if block == 0 { value } else { 0 };
            let category = u8::try_from(16 - diff.unsigned_abs().leading_zeros()).unwrap_or(0);
            bits.put(u16::from(category), 4);
            if category > 0 {
                // Negative values are sent as diff - 1 in `category` bits (two's complement).
                let raw = if diff > 0 { diff } else { diff - 1 };
                bits.put(raw.cast_unsigned() & ((1 << category) - 1), category);
            }
            bits.put(0, 1); // end of block
        }
    }
    out.extend(bits.finish());
    out.extend_from_slice(&[0xFF, 0xD9]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("48x48"), Some(48));
        assert_eq!(parse_size("648X648"), Some(648));
        assert_eq!(parse_size("50x50"), None);
        assert_eq!(parse_size("48x64"), None);
        assert_eq!(parse_size("big"), None);
    }

    #[test]
    fn jpeg_structure() {
        let a = photo_jpeg("user-a", 48);
        assert_eq!(&a[..4], &[0xFF, 0xD8, 0xFF, 0xE0], "SOI then JFIF APP0");
        assert_eq!(&a[6..11], b"JFIF\0");
        assert_eq!(&a[a.len() - 2..], &[0xFF, 0xD9], "EOI");
        assert_eq!(a, photo_jpeg("user-a", 48), "stable per user");
        assert_ne!(a, photo_jpeg("user-b", 48), "different users, different colours");
        assert!(photo_jpeg("user-a", 648).len() > a.len());
        // The scan holds nothing that looks like a marker: every 0xFF is stuffed.
        let sos = a.windows(2).position(|w| w == [0xFF, 0xDA]).expect("SOS");
        let scan = &a[sos + 14..a.len() - 2];
        for (i, pair) in scan.windows(2).enumerate() {
            assert!(pair[0] != 0xFF || pair[1] == 0x00, "unstuffed 0xFF at {i}");
        }
    }

    /// The same encoder decoded by the reference algorithm in miniature: walking the bits
    /// back gives the DC values and an end-of-block per block.
    #[test]
    fn scan_decodes_back_to_the_colour() {
        let jpeg = flat_jpeg(16, 8, [200, 30, 90]);
        let sos = jpeg.windows(2).position(|w| w == [0xFF, 0xDA]).expect("SOS");
        let mut scan = Vec::new();
        let mut bytes = jpeg[sos + 14..jpeg.len() - 2].iter();
        while let Some(&b) = bytes.next() {
            scan.push(b);
            if b == 0xFF {
                assert_eq!(bytes.next(), Some(&0));
            }
        }
        let bits: Vec<u8> =
            scan.iter().flat_map(|b| (0..8).rev().map(move |i| (b >> i) & 1)).collect();
        let mut pos = 0;
        let mut take = |n: u8| {
            let mut v = 0i32;
            for _ in 0..n {
                v = (v << 1) | i32::from(bits[pos]);
                pos += 1;
            }
            v
        };
        let mut dcs = Vec::new();
        for _block in 0..2 {
            for _component in 0..3 {
                let category = u8::try_from(take(4)).expect("4 bits");
                let mut value = 0;
                if category > 0 {
                    value = take(category);
                    if value < (1 << (category - 1)) {
                        value -= (1 << category) - 1;
                    }
                }
                assert_eq!(take(1), 0, "end of block");
                dcs.push(value);
            }
        }
        // Y, Cb, Cr of (200, 30, 90), level-shifted; then no change in the second block.
        assert_eq!(dcs, [88 - 128, 129 - 128, 208 - 128, 0, 0, 0]);
    }
}
