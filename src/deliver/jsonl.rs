//! The JSONL sink: one JSON object per line, appended and fsynced before the delivery counts,
//! rotated by size. It is also the recording sink of the tests.
//!
//! Exactly-once in effect: delivery is at-least-once (a crash between the fsync and the store's
//! acknowledgement re-delivers), so the sink remembers the event ids it wrote last and skips a
//! line it already holds. Delivery is in outbox order, so only the newest lines can ever be
//! offered again: the tail of the file is all that needs remembering.

use super::Sink;
use super::policy::DeliveryError;
use crate::tracking::TrackingRequest;
use std::collections::{HashSet, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// How many recent event ids are remembered (and read back from the file's tail at open).
const REMEMBERED: usize = 4096;
/// How far back from the end of a file the tail scan reads.
const TAIL_BYTES: u64 = 4 * 1024 * 1024;

/// What happened to one line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Appended {
    Written,
    /// The file already holds this event: nothing was written.
    AlreadyThere,
}

/// Errors of the JSONL sink: the file could not be opened, written or synced.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {action}: {source}; check the sink path and free disk space")]
pub struct JsonlError {
    path: PathBuf,
    action: &'static str,
    #[source]
    source: std::io::Error,
}

/// The JSONL sink: a [`JsonlFile`] behind a lock, one fsync per batch.
pub struct JsonlSink {
    file: std::sync::Mutex<JsonlFile>,
}

impl JsonlSink {
    pub fn open(path: &Path, rotate_bytes: Option<u64>) -> Result<Self, JsonlError> {
        Ok(Self {
            file: std::sync::Mutex::new(JsonlFile::open(path, rotate_bytes)?),
        })
    }

    fn write(&self, requests: &[&TrackingRequest]) -> Vec<Result<(), DeliveryError>> {
        let lines: Vec<String> = requests
            .iter()
            .map(|r| serde_json::to_string(r).expect("requests always serialise"))
            .collect();
        let pairs: Vec<(&str, &str)> = requests
            .iter()
            .zip(&lines)
            .map(|(r, l)| (r.event_id.as_str(), l.as_str()))
            .collect();
        let mut file = self
            .file
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match file.append_all(&pairs) {
            Ok(_) => requests.iter().map(|_| Ok(())).collect(),
            Err(e) => requests
                .iter()
                .map(|_| {
                    Err(DeliveryError::Transient {
                        reason: e.to_string(),
                        retry_after: None,
                    })
                })
                .collect(),
        }
    }
}

impl Sink for JsonlSink {
    async fn deliver(&self, request: &TrackingRequest) -> Result<(), DeliveryError> {
        self.write(&[request]).remove(0)
    }

    async fn deliver_all(&self, requests: &[&TrackingRequest]) -> Vec<Result<(), DeliveryError>> {
        self.write(requests)
    }
}

/// Lines gathered for one write.
#[derive(Default)]
struct Pending<'a> {
    bytes: Vec<u8>,
    ids: Vec<&'a str>,
}

/// An append-only JSONL file.
pub struct JsonlFile {
    path: PathBuf,
    file: File,
    size: u64,
    rotate_bytes: Option<u64>,
    recent: HashSet<String>,
    order: VecDeque<String>,
    /// Test only: the file size at which the disk is full.
    #[cfg(test)]
    room: Option<u64>,
}

impl JsonlFile {
    /// Opens (or creates) the file and reads back the event ids at its tail.
    pub fn open(path: &Path, rotate_bytes: Option<u64>) -> Result<Self, JsonlError> {
        let fail = |action| {
            move |source| JsonlError {
                path: path.to_owned(),
                action,
                source,
            }
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(fail("create its folder"))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(path)
            .map_err(fail("open"))?;
        let size = cut_torn_tail(&file).map_err(fail("cut a torn last line"))?;
        let mut sink = Self {
            path: path.to_owned(),
            file,
            size,
            rotate_bytes,
            recent: HashSet::new(),
            order: VecDeque::new(),
            #[cfg(test)]
            room: None,
        };
        // The newest rotated file first, so that a rotation just after a write is covered.
        for source in [rotated_path(path, 1), path.to_owned()] {
            for id in tail_event_ids(&source).map_err(fail("read its tail"))? {
                sink.remember(id);
            }
        }
        Ok(sink)
    }

    /// Appends `line` (one JSON object, no newline) for `event_id`, fsynced, unless the file
    /// already holds that event.
    pub fn append(&mut self, event_id: &str, line: &str) -> Result<Appended, JsonlError> {
        Ok(self.append_all(&[(event_id, line)])?[0])
    }

    /// Appends several lines with one fsync at the end (and one before each rotation); what
    /// each line came to, in order.
    pub fn append_all(&mut self, lines: &[(&str, &str)]) -> Result<Vec<Appended>, JsonlError> {
        let mut out = Vec::with_capacity(lines.len());
        let mut pending = Pending::default();
        for (event_id, line) in lines {
            if self.recent.contains(*event_id) || pending.ids.contains(event_id) {
                out.push(Appended::AlreadyThere);
                continue;
            }
            let needed = line.len() as u64 + 1;
            if self.rotate_bytes.is_some_and(|limit| {
                let size = self.size + pending.bytes.len() as u64;
                size > 0 && size + needed > limit
            }) {
                self.write_synced(std::mem::take(&mut pending))?;
                self.rotate()?;
            }
            pending.bytes.extend_from_slice(line.as_bytes());
            pending.bytes.push(b'\n');
            pending.ids.push(event_id);
            out.push(Appended::Written);
        }
        self.write_synced(pending)?;
        Ok(out)
    }

    /// Writes and fsyncs; only then are the lines' event ids remembered as written. All or
    /// nothing: on any error (a full disk mid-line) the file is cut back to its last good
    /// length, so a retry never appends after a torn line.
    fn write_synced(&mut self, pending: Pending<'_>) -> Result<(), JsonlError> {
        if pending.bytes.is_empty() {
            return Ok(());
        }
        let written = self
            .append_bytes(&pending.bytes)
            .map_err(|source| self.error("append", source))
            .and_then(|()| {
                self.file
                    .sync_data()
                    .map_err(|source| self.error("fsync", source))
            });
        if let Err(e) = written {
            return Err(match self.cut_back() {
                Ok(()) => e,
                Err(source) => self.error("cut back a partial write", source),
            });
        }
        self.size += pending.bytes.len() as u64;
        for id in pending.ids {
            self.remember(id.to_owned());
        }
        Ok(())
    }

    /// Truncates the file to the length it had after its last complete write.
    fn cut_back(&mut self) -> std::io::Result<()> {
        self.file.set_len(self.size)?;
        self.file.sync_data()
    }

    fn append_bytes(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        #[cfg(test)]
        if let Some(room) = self.room
            && self.size + bytes.len() as u64 > room
        {
            // A disk that fills mid-write: what fits is written, then ENOSPC.
            let fits = room.saturating_sub(self.size) as usize;
            self.file.write_all(&bytes[..fits])?;
            return Err(std::io::Error::from_raw_os_error(libc::ENOSPC));
        }
        self.file.write_all(bytes)
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Moves `x.jsonl` to `x.jsonl.1` (and `.1` to `.2`, …) and starts an empty file.
    fn rotate(&mut self) -> Result<(), JsonlError> {
        let mut n = 1;
        while rotated_path(&self.path, n).exists() {
            n += 1;
        }
        for i in (1..n).rev() {
            std::fs::rename(rotated_path(&self.path, i), rotated_path(&self.path, i + 1))
                .map_err(|source| self.error("rotate", source))?;
        }
        std::fs::rename(&self.path, rotated_path(&self.path, 1))
            .map_err(|source| self.error("rotate", source))?;
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(&self.path)
            .map_err(|source| self.error("open", source))?;
        self.size = 0;
        Ok(())
    }

    fn remember(&mut self, id: String) {
        if self.recent.insert(id.clone()) {
            self.order.push_back(id);
            if self.order.len() > REMEMBERED
                && let Some(old) = self.order.pop_front()
            {
                self.recent.remove(&old);
            }
        }
    }

    fn error(&self, action: &'static str, source: std::io::Error) -> JsonlError {
        JsonlError {
            path: self.path.clone(),
            action,
            source,
        }
    }
}

fn rotated_path(path: &Path, n: u32) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

/// Cuts a last line without its newline (a crash or a full disk mid-write: never a delivered
/// record) so the next line starts on a line of its own; the file's length after.
fn cut_torn_tail(file: &File) -> std::io::Result<u64> {
    use std::os::unix::fs::FileExt;
    let len = file.metadata()?.len();
    let mut end = len;
    let mut chunk = vec![0u8; 64 * 1024];
    while end > 0 {
        let start = end.saturating_sub(chunk.len() as u64);
        let part = &mut chunk[..(end - start) as usize];
        file.read_exact_at(part, start)?;
        if let Some(i) = part.iter().rposition(|b| *b == b'\n') {
            end = start + i as u64 + 1;
            break;
        }
        end = start;
    }
    if end < len {
        tracing::warn!(
            event = "jsonl_torn_line_cut",
            bytes = len - end,
            "a torn last line was cut from the sink file"
        );
        file.set_len(end)?;
        file.sync_data()?;
    }
    Ok(end)
}

/// The `event_id` of every complete line in the last [`TAIL_BYTES`] of `path` (none if absent).
fn tail_event_ids(path: &Path) -> std::io::Result<Vec<String>> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let len = file.metadata()?.len();
    let start = len.saturating_sub(TAIL_BYTES);
    file.seek(SeekFrom::Start(start))?;
    let mut reader = BufReader::new(file);
    if start > 0 {
        // Skip the partial line the seek landed in.
        reader.read_until(b'\n', &mut Vec::new())?;
    }
    let mut ids = Vec::new();
    for line in reader.split(b'\n') {
        let line = line?;
        // A torn last line (crash mid-write) is not a delivered record: ignore it.
        if let Ok(serde_json::Value::Object(obj)) = serde_json::from_slice(&line)
            && let Some(serde_json::Value::String(id)) = obj.get("event_id")
        {
            ids.push(id.clone());
        }
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(id: &str) -> String {
        format!(r#"{{"event_id":"{id}","subject":"x"}}"#)
    }

    fn lines(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn a_redelivered_event_is_written_once_even_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out/tracked.jsonl");
        let mut f = JsonlFile::open(&path, None).unwrap();
        assert_eq!(f.append("a", &line("a")).unwrap(), Appended::Written);
        assert_eq!(f.append("a", &line("a")).unwrap(), Appended::AlreadyThere);
        drop(f);
        let mut f = JsonlFile::open(&path, None).unwrap();
        assert_eq!(f.append("a", &line("a")).unwrap(), Appended::AlreadyThere);
        assert_eq!(f.append("b", &line("b")).unwrap(), Appended::Written);
        assert_eq!(lines(&path), [line("a"), line("b")]);
    }

    #[test]
    fn a_torn_last_line_does_not_count_as_delivered() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.jsonl");
        std::fs::write(&path, format!("{}\n{{\"event_id\":\"b\",\"sub", line("a"))).unwrap();
        let mut f = JsonlFile::open(&path, None).unwrap();
        assert_eq!(f.append("a", &line("a")).unwrap(), Appended::AlreadyThere);
        assert_eq!(f.append("b", &line("b")).unwrap(), Appended::Written);
        // The torn bytes are gone: every line parses.
        assert_eq!(lines(&path), [line("a"), line("b")]);
    }

    /// A disk that fills mid-batch (fault injected: what fits is written, then ENOSPC) leaves
    /// no torn line; the retry once space is back writes every line whole and once.
    #[test]
    fn a_full_disk_mid_batch_leaves_no_torn_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.jsonl");
        let mut f = JsonlFile::open(&path, None).unwrap();
        f.append("a", &line("a")).unwrap();
        f.room = Some(line("a").len() as u64 * 2 + 10);
        let batch = [("b", line("b")), ("c", line("c"))];
        let pairs: Vec<(&str, &str)> = batch.iter().map(|(i, l)| (*i, l.as_str())).collect();
        let e = f.append_all(&pairs).unwrap_err().to_string();
        assert!(e.contains("free disk space"), "{e}");
        assert_eq!(lines(&path), [line("a")]);
        f.room = None;
        assert_eq!(f.append_all(&pairs).unwrap(), [Appended::Written; 2]);
        assert_eq!(lines(&path), [line("a"), line("b"), line("c")]);
    }

    #[test]
    fn rotation_moves_full_files_aside_and_still_deduplicates() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.jsonl");
        let limit = line("a").len() as u64 * 2 + 2;
        let mut f = JsonlFile::open(&path, Some(limit)).unwrap();
        for id in ["a", "b", "c", "d", "e"] {
            f.append(id, &line(id)).unwrap();
        }
        drop(f);
        assert_eq!(lines(&rotated_path(&path, 2)), [line("a"), line("b")]);
        assert_eq!(lines(&rotated_path(&path, 1)), [line("c"), line("d")]);
        assert_eq!(lines(&path), [line("e")]);
        let mut f = JsonlFile::open(&path, Some(limit)).unwrap();
        assert_eq!(f.append("d", &line("d")).unwrap(), Appended::AlreadyThere);
    }
}
