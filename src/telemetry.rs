//! Logs through tracing: text for people, JSON lines with `--log-format json`, on stderr.
//! `RUST_LOG` overrides the verbosity flags. Never a password, token or message body.
//!
//! Every line goes through [`escape_line`]: text a server chose (folder names, fault strings,
//! garbage bodies quoted in an error) can carry newlines and control characters, and without
//! escaping one folder name could forge a whole `ERROR` line or drive the terminal.

use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// For people.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            _ => Err(format!("{s:?}: choose text or json")),
        }
    }
}

/// Installs the global subscriber. Calling it twice is harmless (the second does nothing).
pub fn init(format: LogFormat, verbose: u8, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => "warn",
        (false, 0) => "info",
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let colours = format == LogFormat::Text && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colours)
        .with_writer(move || Escaping {
            inner: std::io::stderr(),
            colours,
        });
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().with_current_span(true).try_init(),
    };
}

/// Whether subjects of tracked mail may appear in logs (`log_subjects`; off by default, since a
/// subject can be personal data). Process-wide like the subscriber; a reload changes it.
static LOG_SUBJECTS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

pub fn set_log_subjects(on: bool) {
    LOG_SUBJECTS.store(on, std::sync::atomic::Ordering::Relaxed);
}

/// The subject to put in a log line: itself when `log_subjects` is on, nothing otherwise
/// (tracing leaves a `None` field out of the line).
pub fn loggable_subject(subject: Option<&str>) -> Option<&str> {
    subject.filter(|_| LOG_SUBJECTS.load(std::sync::atomic::Ordering::Relaxed))
}

/// A writer that passes each formatted line through [`escape_line`]. The formatter hands over
/// one whole event per write.
struct Escaping<W> {
    inner: W,
    /// Keep the formatter's colour codes (a terminal).
    colours: bool,
}

impl<W: std::io::Write> std::io::Write for Escaping<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.inner
            .write_all(escape_line(&String::from_utf8_lossy(buf), self.colours).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// One log line made safe: newlines, carriage returns and other control characters (C0, DEL,
/// C1) and the Unicode controls that reorder text are written as escapes, so whatever a
/// server sent stays inside the line it was logged in; the final newline stays. With
/// `colours`, the colour codes (`ESC [ digits ; m`) stay too.
pub fn escape_line(line: &str, colours: bool) -> String {
    let (body, end) = match line.strip_suffix('\n') {
        Some(body) => (body, "\n"),
        None => (line, ""),
    };
    let mut out = String::with_capacity(body.len() + end.len());
    let mut rest = body;
    while let Some(c) = rest.chars().next() {
        if colours && let Some(code) = colour_code(rest) {
            out.push_str(code);
            rest = &rest[code.len()..];
            continue;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push('\t'),
            c if c.is_control() || is_reordering(c) => {
                out.push_str(&format!("\\u{{{:x}}}", c as u32));
            }
            c => out.push(c),
        }
        rest = &rest[c.len_utf8()..];
    }
    out.push_str(end);
    out
}

/// The SGR colour code `rest` starts with, if any.
fn colour_code(rest: &str) -> Option<&str> {
    let params = rest.strip_prefix("\x1b[")?;
    let n = params
        .bytes()
        .take_while(|b| b.is_ascii_digit() || *b == b';')
        .count();
    params[n..].starts_with('m').then(|| &rest[..2 + n + 1])
}

/// Bidirectional overrides and isolates: they make a line read differently than it is.
fn is_reordering(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// The process's metrics: labelled counters and histograms, rendered as Prometheus text by
/// the admin API's `/metrics` (with the gauges it reads live). One registry per process, like
/// any Prometheus recorder.
pub fn metrics() -> &'static Metrics {
    static METRICS: std::sync::OnceLock<Metrics> = std::sync::OnceLock::new();
    METRICS.get_or_init(Metrics::default)
}

/// Seconds, for latency histograms: 10 ms to 30 min.
const BUCKETS: [f64; 14] = [
    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 720.0, 1800.0,
];

type Labels = Vec<(&'static str, String)>;

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// Hours of each histogram kept per hour of wall-clock time, for the console's sparklines.
pub const HOURS: usize = 24;

/// One hour of a histogram's observations (all labels together).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Hour {
    /// Hours since the Unix epoch.
    pub hour: i64,
    pub count: u64,
    pub sum: f64,
    pub max: f64,
}

#[derive(Default)]
pub struct Metrics {
    counters: std::sync::Mutex<std::collections::BTreeMap<(&'static str, Labels), u64>>,
    histograms: std::sync::Mutex<std::collections::BTreeMap<(&'static str, Labels), Histogram>>,
    hours: std::sync::Mutex<
        std::collections::BTreeMap<&'static str, std::collections::VecDeque<Hour>>,
    >,
}

/// Adds an observation at `hour` to `ring`, dropping hours older than [`HOURS`].
fn add_hourly(ring: &mut std::collections::VecDeque<Hour>, hour: i64, seconds: f64) {
    if ring.back().is_none_or(|h| h.hour < hour) {
        ring.push_back(Hour {
            hour,
            ..Hour::default()
        });
    }
    while ring.front().is_some_and(|h| h.hour <= hour - HOURS as i64) {
        ring.pop_front();
    }
    if let Some(h) = ring.iter_mut().rev().find(|h| h.hour == hour) {
        h.count += 1;
        h.sum += seconds;
        h.max = h.max.max(seconds);
    }
}

fn this_hour() -> i64 {
    jiff::Timestamp::now().as_second().div_euclid(3600)
}

impl Metrics {
    pub fn count(&self, name: &'static str, labels: &[(&'static str, &str)], n: u64) {
        let key = (name, owned(labels));
        *self
            .counters
            .lock()
            .expect("unpoisoned")
            .entry(key)
            .or_default() += n;
    }

    pub fn observe(&self, name: &'static str, labels: &[(&'static str, &str)], seconds: f64) {
        let key = (name, owned(labels));
        let mut all = self.histograms.lock().expect("unpoisoned");
        let h = all.entry(key).or_default();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                h.counts[i] += 1;
            }
        }
        h.count += 1;
        h.sum += seconds;
        drop(all);
        let mut hours = self.hours.lock().expect("unpoisoned");
        add_hourly(hours.entry(name).or_default(), this_hour(), seconds);
    }

    /// The histogram `name` per hour over the last [`HOURS`] hours (hours without an
    /// observation left out), oldest first.
    pub fn hourly(&self, name: &str) -> Vec<Hour> {
        let now = this_hour();
        self.hours
            .lock()
            .expect("unpoisoned")
            .get(name)
            .map(|ring| {
                ring.iter()
                    .filter(|h| h.hour > now - HOURS as i64)
                    .copied()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The counter `name` summed by the value of `label`: e.g. EWS calls by outcome.
    pub fn totals(&self, name: &str, label: &str) -> std::collections::BTreeMap<String, u64> {
        let mut out = std::collections::BTreeMap::new();
        for ((n, labels), value) in self.counters.lock().expect("unpoisoned").iter() {
            if *n == name {
                let key = labels
                    .iter()
                    .find(|(k, _)| *k == label)
                    .map_or_else(String::new, |(_, v)| v.clone());
                *out.entry(key).or_default() += value;
            }
        }
        out
    }

    /// Prometheus text exposition of every counter and histogram, with `# HELP` from `help`.
    pub fn render(&self, help: &dyn Fn(&str) -> &'static str) -> String {
        let mut out = String::new();
        let mut last = "";
        for ((name, labels), value) in self.counters.lock().expect("unpoisoned").iter() {
            if *name != last {
                out += &format!("# HELP {name} {}\n# TYPE {name} counter\n", help(name));
                last = name;
            }
            out += &format!("{name}{} {value}\n", label_text(labels, None));
        }
        for ((name, labels), h) in self.histograms.lock().expect("unpoisoned").iter() {
            if *name != last {
                out += &format!("# HELP {name} {}\n# TYPE {name} histogram\n", help(name));
                last = name;
            }
            for (bound, count) in BUCKETS.iter().zip(h.counts) {
                out += &format!(
                    "{name}_bucket{} {count}\n",
                    label_text(labels, Some(&bound.to_string()))
                );
            }
            out += &format!(
                "{name}_bucket{} {}\n",
                label_text(labels, Some("+Inf")),
                h.count
            );
            out += &format!("{name}_sum{} {}\n", label_text(labels, None), h.sum);
            out += &format!("{name}_count{} {}\n", label_text(labels, None), h.count);
        }
        out
    }
}

fn owned(labels: &[(&'static str, &str)]) -> Labels {
    labels.iter().map(|(k, v)| (*k, (*v).to_owned())).collect()
}

/// `{a="x",le="1"}`, values escaped as the exposition format asks.
pub fn label_text(labels: &[(&'static str, String)], le: Option<&str>) -> String {
    let mut parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| {
            let v = v
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            format!("{k}=\"{v}\"")
        })
        .collect();
    if let Some(le) = le {
        parts.push(format!("le=\"{le}\""));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hourly_figures_keep_count_sum_and_max_for_the_last_hours_only() {
        let mut ring = std::collections::VecDeque::new();
        for (hour, secs) in [(100, 2.0), (100, 4.0), (101, 1.0), (99, 9.0)] {
            add_hourly(&mut ring, hour, secs);
        }
        let at = |h: i64| ring.iter().find(|x| x.hour == h).copied();
        assert_eq!(
            at(100),
            Some(Hour {
                hour: 100,
                count: 2,
                sum: 6.0,
                max: 4.0
            })
        );
        assert_eq!(at(101).map(|h| h.count), Some(1));
        assert_eq!(
            at(99),
            None,
            "a late observation for a closed hour is left out"
        );
        add_hourly(&mut ring, 100 + HOURS as i64, 1.0);
        assert_eq!(
            ring.iter().map(|h| h.hour).collect::<Vec<_>>(),
            [101, 100 + HOURS as i64],
            "hours older than the window go"
        );
    }

    #[test]
    fn server_text_cannot_break_out_of_its_line() {
        let forged =
            "INFO sync folder=Inbox/Evil\nERROR forged line\r\x1b[2J\u{7f}\u{9b}\u{202e}txt\n";
        let escaped = escape_line(forged, false);
        assert_eq!(
            escaped,
            "INFO sync folder=Inbox/Evil\\nERROR forged line\\r\\u{1b}[2J\\u{7f}\\u{9b}\\u{202e}txt\n"
        );
        assert_eq!(escaped.lines().count(), 1);
        // A terminal keeps the formatter's colours but not a screen-clearing sequence.
        assert_eq!(
            escape_line("\x1b[2mtime\x1b[0m \x1b[2Jx\n", true),
            "\x1b[2mtime\x1b[0m \\u{1b}[2Jx\n"
        );
        assert_eq!(
            escape_line("plain, ünïcode\ttab", false),
            "plain, ünïcode\ttab"
        );
    }
}
