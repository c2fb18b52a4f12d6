//! WAV files for `--play` and `--record`: 16-bit (or float) PCM in, 16-bit mono PCM out.
//!
//! A recording is written frame by frame as audio is decoded, and its header is brought up to
//! date every second, so a recording cut short by a crash is still a valid file up to then.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

/// Why a WAV file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum WavError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: hound::Error },
    #[error("{path}: {reason}")]
    Unsupported { path: PathBuf, reason: String },
}

/// A whole WAV file as mono 16-bit samples.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clip {
    pub sample_rate: u32,
    pub samples: Vec<i16>,
}

/// Reads a WAV file (8/16/24/32-bit integer or 32-bit float, any channel count), mixing the
/// channels down to mono.
pub fn read(path: &Path) -> Result<Clip, WavError> {
    let reader = hound::WavReader::open(path)
        .map_err(|source| WavError::Io { path: path.to_owned(), source })?;
    decode(reader, path)
}

/// Like [`read`], for a WAV file held in memory (`name` stands in for its path in errors).
pub fn read_bytes(name: &str, bytes: &[u8]) -> Result<Clip, WavError> {
    let path = Path::new(name);
    let reader = hound::WavReader::new(std::io::Cursor::new(bytes))
        .map_err(|source| WavError::Io { path: path.to_owned(), source })?;
    decode(reader, path)
}

fn decode<R: std::io::Read>(
    mut reader: hound::WavReader<R>,
    path: &Path,
) -> Result<Clip, WavError> {
    let io = |source| WavError::Io { path: path.to_owned(), source };
    let spec = reader.spec();
    let channels = usize::from(spec.channels.max(1));
    let interleaved: Vec<f32> = match (spec.sample_format, spec.bits_per_sample) {
        (hound::SampleFormat::Float, 32) => reader.samples::<f32>().collect::<Result<_, _>>(),
        (hound::SampleFormat::Int, bits @ 8..=32) => {
            let scale = 1.0 / (1u64 << (bits - 1)) as f32;
            reader.samples::<i32>().map(|s| s.map(|s| s as f32 * scale)).collect()
        }
        (format, bits) => {
            return Err(WavError::Unsupported {
                path: path.to_owned(),
                reason: format!("{bits}-bit {format:?} samples"),
            });
        }
    }
    .map_err(io)?;
    let samples = interleaved
        .chunks(channels)
        .map(|frame| {
            let mean = frame.iter().sum::<f32>() / frame.len() as f32;
            (mean * 32768.0).clamp(-32768.0, 32767.0) as i16
        })
        .collect();
    Ok(Clip { sample_rate: spec.sample_rate, samples })
}

/// A mono 16-bit recording written as it happens.
pub struct Recorder {
    writer: hound::WavWriter<BufWriter<File>>,
    path: PathBuf,
    sample_rate: u32,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder").field("path", &self.path).finish_non_exhaustive()
    }
}

impl Recorder {
    /// Creates (or replaces) `path`.
    pub fn create(path: &Path, sample_rate: u32) -> Result<Self, WavError> {
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let writer = hound::WavWriter::create(path, spec)
            .map_err(|source| WavError::Io { path: path.to_owned(), source })?;
        Ok(Self { writer, path: path.to_owned(), sample_rate })
    }

    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// Appends samples and brings the file and its header up to date at once: a crash loses
    /// nothing already played, and the file's growth shows when each frame was played (the
    /// delay benchmark times it).
    pub fn write(&mut self, samples: &[i16]) -> Result<(), WavError> {
        let io = |source| WavError::Io { path: self.path.clone(), source };
        for sample in samples {
            self.writer.write_sample(*sample).map_err(io)?;
        }
        self.writer.flush().map_err(|source| WavError::Io { path: self.path.clone(), source })
    }

    /// Writes the final header.
    pub fn finish(self) -> Result<(), WavError> {
        let path = self.path;
        self.writer.finalize().map_err(|source| WavError::Io { path, source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recording_reads_back_and_is_valid_before_it_is_finished() {
        let dir = std::env::temp_dir().join(format!("wav-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("rec.wav");
        let mut recorder = Recorder::create(&path, 8000).expect("create");
        let tone: Vec<i16> = (0..8000).map(|n| ((n as f32 * 0.2).sin() * 9000.0) as i16).collect();
        recorder.write(&tone).expect("write");
        // The header is up to date after every write.
        let early = read(&path).expect("readable mid-recording");
        assert_eq!(early.samples.len(), 8000);
        recorder.write(&tone[..160]).expect("write");
        assert_eq!(read(&path).expect("readable").samples.len(), 8160);
        recorder.finish().expect("finish");
        let clip = read(&path).expect("read");
        assert_eq!(clip.sample_rate, 8000);
        assert_eq!(clip.samples.len(), 8160);
        assert_eq!(&clip.samples[..8000], &tone[..]);
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn stereo_is_mixed_down_and_bad_files_are_named() {
        let dir = std::env::temp_dir().join(format!("wav-stereo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("stereo.wav");
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 16000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut writer = hound::WavWriter::create(&path, spec).expect("create");
        for _ in 0..4 {
            writer.write_sample(1000i16).expect("left");
            writer.write_sample(3000i16).expect("right");
        }
        writer.finalize().expect("finalize");
        let clip = read(&path).expect("read");
        assert_eq!(clip.samples, [2000; 4]);
        let junk = dir.join("junk.wav");
        std::fs::write(&junk, b"not a wav file").expect("write");
        let error = read(&junk).expect_err("junk");
        assert!(error.to_string().contains("junk.wav"), "{error}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
