//! Recent calls: a [`Recorder`] turns the phone's events into one [`CallRecord`] per finished
//! call, and [`History`] keeps them in a JSON-lines file in the user's data directory.
//!
//! Each call is appended as one line and synced, so a crash loses at most the call in
//! progress; a torn last line (power cut mid-write) is skipped when the file is read. The file
//! is rewritten (to a temporary name, then renamed over it) only to drop the oldest calls once
//! it holds [`KEEP`] plus a margin.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::files;
use crate::phone::{CallNumber, EndCause, PhoneEvent};

/// Calls kept.
pub const KEEP: usize = 500;
/// Calls beyond [`KEEP`] before the file is rewritten without the oldest.
const SLACK: usize = 100;

/// Which way a call went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub enum CallDirection {
    Incoming,
    Outgoing,
}

/// One finished call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub struct CallRecord {
    pub direction: CallDirection,
    /// The other party's address (what to call back).
    pub peer: String,
    pub display_name: Option<String>,
    /// When it started ringing or was dialled: milliseconds since the Unix epoch.
    pub started_ms: f64,
    /// Whole seconds from the answer to the end; 0 when it was never answered.
    pub duration_secs: u32,
    pub answered: bool,
    pub cause: EndCause,
    /// The SIP status or reason, as the call screen showed it.
    pub detail: String,
}

impl CallRecord {
    /// An incoming call nobody here answered (one declined here is not missed).
    pub fn missed(&self) -> bool {
        self.direction == CallDirection::Incoming
            && !self.answered
            && self.cause != EndCause::Declined
    }
}

/// A call still in progress, as far as the record goes.
#[derive(Debug)]
struct Open {
    direction: CallDirection,
    peer: String,
    display_name: Option<String>,
    started_ms: f64,
    answered_ms: Option<f64>,
}

/// Follows the phone's events and yields a record when a call ends. Pure: the time comes in.
#[derive(Debug, Default)]
pub struct Recorder {
    open: HashMap<CallNumber, Open>,
}

impl Recorder {
    /// Calls begun and not yet ended.
    pub fn in_progress(&self) -> usize {
        self.open.len()
    }

    /// Takes in one event at `now_ms` (Unix milliseconds); the finished call's record when it
    /// is an end.
    pub fn observe(&mut self, event: &PhoneEvent, now_ms: f64) -> Option<CallRecord> {
        let open = |direction, peer: &str, display_name: Option<&String>| Open {
            direction,
            peer: peer.to_owned(),
            display_name: display_name.cloned(),
            started_ms: now_ms,
            answered_ms: None,
        };
        match event {
            PhoneEvent::Incoming { call, from, display_name } => {
                self.open.insert(*call, open(CallDirection::Incoming, from, display_name.as_ref()));
            }
            PhoneEvent::Dialling { call, to } => {
                self.open.insert(*call, open(CallDirection::Outgoing, to, None));
            }
            PhoneEvent::Answered { call } => {
                if let Some(call) = self.open.get_mut(call) {
                    call.answered_ms.get_or_insert(now_ms);
                }
            }
            PhoneEvent::Ended { call, cause, detail } => {
                let call = self.open.remove(call)?;
                let duration = call.answered_ms.map_or(0.0, |at| ((now_ms - at) / 1000.0).max(0.0));
                return Some(CallRecord {
                    direction: call.direction,
                    peer: call.peer,
                    display_name: call.display_name,
                    started_ms: call.started_ms,
                    duration_secs: duration as u32,
                    answered: call.answered_ms.is_some(),
                    cause: cause.clone(),
                    detail: detail.clone(),
                });
            }
            _ => {}
        }
        None
    }
}

/// Why the history could not be read or kept.
#[derive(Debug, thiserror::Error)]
#[error("call history {path}: {source}")]
pub struct HistoryError {
    path: PathBuf,
    source: std::io::Error,
}

/// The calls kept on disk, oldest first.
#[derive(Debug)]
pub struct History {
    path: PathBuf,
    records: Vec<CallRecord>,
    /// The file ends in a torn line: the next call starts on a line of its own.
    torn_end: bool,
}

impl History {
    /// The history at `path` (empty when there is no file yet). Lines that do not read as a
    /// call (a torn last line, bytes that are not UTF-8, a future version's) are skipped, not
    /// fatal.
    pub fn open(path: &Path) -> Result<Self, HistoryError> {
        let error = |source| HistoryError { path: path.to_owned(), source };
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(error(e)),
        };
        let mut skipped = 0;
        let records = bytes
            .split(|b| *b == b'\n')
            .filter(|line| !line.trim_ascii().is_empty())
            .filter_map(|line| serde_json::from_slice(line).map_err(|_| skipped += 1).ok())
            .collect();
        if skipped > 0 {
            tracing::warn!(path = %path.display(), skipped, "call history lines that do not read were skipped");
        }
        let torn_end = bytes.last().is_some_and(|b| *b != b'\n');
        Ok(Self { path: path.to_owned(), records, torn_end })
    }

    /// Keeps `record`: appended and synced; the oldest dropped once there are too many.
    pub fn add(&mut self, record: CallRecord) -> Result<(), HistoryError> {
        let error = |source| HistoryError { path: self.path.clone(), source };
        let mut line = if self.torn_end { "\n".to_owned() } else { String::new() };
        line.push_str(&serde_json::to_string(&record).map_err(|e| error(e.into()))?);
        line.push('\n');
        self.records.push(record);
        if self.records.len() > KEEP + SLACK {
            let excess = self.records.len() - KEEP;
            self.records.drain(..excess);
            return self.rewrite();
        }
        if let Some(dir) = self.path.parent() {
            files::private_dir(dir).map_err(error)?;
        }
        let mut options = std::fs::OpenOptions::new();
        options.create(true).append(true);
        let mut file = files::private(&mut options).open(&self.path).map_err(error)?;
        file.write_all(line.as_bytes()).and_then(|()| file.sync_data()).map_err(error)?;
        self.torn_end = false;
        Ok(())
    }

    /// Up to `limit` calls, newest first.
    pub fn recent(&self, limit: usize) -> Vec<CallRecord> {
        self.records.iter().rev().take(limit).cloned().collect()
    }

    /// Writes every kept call to a temporary file and renames it over the history.
    fn rewrite(&mut self) -> Result<(), HistoryError> {
        let error = |source| HistoryError { path: self.path.clone(), source };
        let mut text = String::new();
        for record in &self.records {
            text.push_str(&serde_json::to_string(record).map_err(|e| error(e.into()))?);
            text.push('\n');
        }
        files::replace(&self.path, text.as_bytes()).map_err(error)?;
        self.torn_end = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ended(call: CallNumber, cause: EndCause) -> PhoneEvent {
        PhoneEvent::Ended { call, cause, detail: String::new() }
    }

    #[test]
    fn calls_are_recorded_when_they_end_with_their_duration_and_whether_missed() {
        let mut recorder = Recorder::default();
        let to = "sip:demo@127.0.0.1:5062".to_owned();
        assert_eq!(
            recorder.observe(&PhoneEvent::Dialling { call: 1, to: to.clone() }, 1_000.0),
            None
        );
        recorder.observe(&PhoneEvent::Answered { call: 1 }, 3_000.0);
        let from = "sip:bea@example.com".to_owned();
        let bea = Some("Bea".to_owned());
        let incoming = PhoneEvent::Incoming { call: 2, from, display_name: bea.clone() };
        recorder.observe(&incoming, 4_000.0);
        let first = recorder.observe(&ended(1, EndCause::Local), 65_900.0).expect("a record");
        assert_eq!(first.direction, CallDirection::Outgoing);
        assert_eq!((first.peer.as_str(), first.started_ms), (to.as_str(), 1_000.0));
        assert_eq!((first.answered, first.duration_secs), (true, 62));
        assert!(!first.missed());
        let second = recorder.observe(&ended(2, EndCause::Cancelled), 9_000.0).expect("a record");
        assert!(second.missed());
        assert_eq!((second.display_name, second.duration_secs), (bea, 0));
        // An end for a call it never saw start is not made up.
        assert_eq!(recorder.observe(&ended(7, EndCause::Remote), 10_000.0), None);
    }

    fn record(n: usize) -> CallRecord {
        CallRecord {
            direction: CallDirection::Outgoing,
            peer: format!("sip:{n}@example.com"),
            display_name: None,
            started_ms: n as f64,
            duration_secs: 1,
            answered: true,
            cause: EndCause::Remote,
            detail: String::new(),
        }
    }

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("sb-history-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir.join("data").join("history.jsonl")
    }

    #[test]
    fn calls_survive_a_restart_and_a_torn_last_line() {
        let path = temp("restart");
        let mut history = History::open(&path).expect("no file yet is empty");
        assert!(history.recent(10).is_empty());
        for n in 0..3 {
            history.add(record(n)).expect("adds");
        }
        // A line that is not UTF-8 (a name cut mid-character), and a write cut short by a
        // crash: half a line with no end.
        let mut file = std::fs::OpenOptions::new().append(true).open(&path).expect("opens");
        file.write_all(b"{\"peer\":\"\xd0\"}\n{\"direction\":\"outg").expect("writes");
        let mut again = History::open(&path).expect("reads");
        let peers: Vec<String> = again.recent(2).into_iter().map(|r| r.peer).collect();
        assert_eq!(peers, ["sip:2@example.com", "sip:1@example.com"]);
        assert_eq!(again.recent(10).len(), 3);
        // The next call starts a line of its own and survives the next start.
        again.add(record(3)).expect("adds");
        let third = History::open(&path).expect("reads");
        assert_eq!(third.recent(10).len(), 4);
        assert_eq!(third.recent(1)[0].peer, "sip:3@example.com");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).expect("metadata").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let _ = std::fs::remove_dir_all(path.parent().and_then(Path::parent).expect("dir"));
    }

    #[test]
    fn the_oldest_calls_go_once_there_are_too_many() {
        let path = temp("trim");
        let mut history = History::open(&path).expect("opens");
        for n in 0..=KEEP + SLACK {
            history.add(record(n)).expect("adds");
        }
        let again = History::open(&path).expect("reads");
        let kept = again.recent(usize::MAX);
        assert_eq!(kept.len(), KEEP);
        assert_eq!(kept[0].peer, format!("sip:{}@example.com", KEEP + SLACK));
        assert!(!path.with_extension("jsonl.partial").exists());
        let _ = std::fs::remove_dir_all(path.parent().and_then(Path::parent).expect("dir"));
    }
}
