//! `foldertrack bench e2e`: the whole agent, end to end, against the simulator. The simulator
//! runs in this process; the agent runs as a child `foldertrack run`, so its memory and CPU
//! are read from /proc apart from the simulator's. People drag mail into mapped folders at a
//! given rate; the harness tails the JSONL sink and reports tracked, lost and duplicated, the
//! move → record latency, EWS calls per tracked mail and per idle mailbox and cycle, bytes per
//! tracked mail, and the agent's peak memory and CPU time. The `burst` preset instead has one
//! mailbox file 40 mails at once while another tracks one mail with track-now, at the default
//! limits and with write-back on, and reports the other mailbox's latency (R33, R38).

use super::Error;
use crate::admin::client::AdminClient;
use crate::config::Api;
use crate::sim::{NewMessage, SimControl, SimHandle, SimOptions, Simulator};
use crate::tracking::{EventKind, TrackingRequest};
use serde::Serialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What to run.
#[derive(Clone, Debug, Serialize)]
pub struct Options {
    pub preset: String,
    pub mailboxes: usize,
    pub folders: usize,
    /// Seconds of dragging.
    pub duration: u64,
    /// Mails dragged per second, over all mailboxes.
    pub rate: f64,
    /// The cadence (busy, normal, quiet) in seconds.
    pub cadence: (u64, u64, u64),
    /// Ask for a track-now after every drag (R38) instead of waiting for the cadence.
    pub track_now: bool,
    /// Seconds of the idle window after the drags (calls per idle mailbox per cycle).
    pub idle: u64,
    /// Instead of dragging at `rate`: filing bursts in one mailbox beside track-now in another.
    pub burst: Option<Burst>,
    /// `[limits]` as (max_concurrent_calls, calls_per_second, mailbox_calls_per_second);
    /// `None` keeps the defaults.
    pub limits: Option<(u32, u32, u32)>,
    /// The category write-back (off: every call is the watcher's).
    pub writeback: bool,
    /// `notifications.mode`: streaming (the default), pull, or off (polling only).
    pub notifications: crate::config::NotificationMode,
    /// The API the agent speaks: EWS or Microsoft Graph.
    pub api: Api,
    /// Notification trouble during the drags, about every this many seconds: a mailbox's
    /// subscriptions expire or lose their events, or every streaming connection drops.
    pub chaos_every: Option<f64>,
}

/// One mailbox files `mails` at once and has them synced; then another mailbox files one mail
/// and asks for track-now while the first one's categories are being written; `rounds` times.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Burst {
    pub mails: usize,
    pub rounds: usize,
}

impl Options {
    pub fn preset(name: &str) -> Option<Self> {
        let (mailboxes, folders, duration, rate, cadence, idle) = match name {
            "small" => (10, 2, 15, 4.0, (2, 5, 10), 12),
            "office" => (1_000, 3, 90, 20.0, (30, 60, 120), 130),
            "enterprise" => (10_000, 5, 120, 50.0, (120, 300, 720), 330),
            // No goal: where one agent on this machine gives way first.
            "huge" => (100_000, 5, 120, 50.0, (120, 300, 720), 330),
            "burst" => (2, 1, 0, 1.0, (120, 300, 720), 2),
            _ => return None,
        };
        let burst = name == "burst";
        Some(Self {
            preset: name.to_owned(),
            mailboxes,
            folders,
            duration,
            rate,
            cadence,
            track_now: burst,
            idle,
            burst: burst.then_some(Burst {
                mails: 40,
                rounds: 20,
            }),
            limits: (!burst).then_some((16, 2000, 20)),
            writeback: burst,
            notifications: crate::config::NotificationMode::Streaming,
            api: Api::Ews,
            chaos_every: None,
        })
    }
}

/// Latency percentiles, in seconds.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

/// The figures.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub options: Option<Options>,
    pub moved_in: usize,
    pub tracked: usize,
    pub lost: usize,
    pub duplicated: usize,
    /// The Internet Message-IDs of the mails that never arrived, and where the agent's log was
    /// kept for them (the run's folder is removed at the end).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_log: Option<PathBuf>,
    pub tracked_per_second: f64,
    pub latency: Latency,
    /// `burst`: from the other mailbox's move to its request in the sink, with track-now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub track_now_latency: Option<Latency>,
    /// `burst`: the fewest categories still waiting to be written when a track-now was asked
    /// (above zero: every track-now ran beside the burst's write-back).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub burst_marks_pending_min: Option<usize>,
    pub ews_calls_per_tracked: f64,
    /// Calls per mailbox pass in the idle window; `None` when no pass ran in it (notified).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_calls_per_mailbox_cycle: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_calls_per_folder_cycle: Option<f64>,
    /// Calls in the idle window per mapped folder, scaled to an hour.
    pub idle_calls_per_folder_hour: f64,
    /// Mailboxes streaming notifications woke at the end of the run.
    pub notified_mailboxes: usize,
    /// The others, counted by what status says about them.
    pub polled_because: std::collections::BTreeMap<String, usize>,
    /// `--chaos-every`: the notification trouble made during the drags, by kind.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub notification_chaos: std::collections::BTreeMap<String, usize>,
    pub bytes_per_tracked: f64,
    pub agent_peak_rss_mib: f64,
    pub agent_cpu_seconds: f64,
    pub agent_cpu_share_idle: f64,
    pub startup_seconds: f64,
    /// Every setting the benchmark's configuration changes from the defaults.
    pub non_default_settings: Vec<String>,
    pub machine: Machine,
    pub command: String,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Machine {
    pub cores: usize,
    pub memory_gib: f64,
    pub date: String,
}

impl Machine {
    pub(super) fn here() -> Self {
        let kib = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                m.lines()
                    .find_map(|l| l.strip_prefix("MemTotal:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            })
            .unwrap_or(0.0);
        Self {
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_gib: kib / 1024.0 / 1024.0,
            date: jiff::Timestamp::now().strftime("%Y-%m-%d").to_string(),
        }
    }
}

/// A child process's peak resident memory (MiB) and CPU time (s), from /proc.
pub(super) fn process_figures(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let hwm = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces): utime is the 14th, stime the 15th.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // Linux reports in USER_HZ, 100 on every platform Rust targets.
    (hwm / 1024.0, (ticks(11) + ticks(12)) / 100.0)
}

/// The percentiles of sorted latencies.
fn latency(sorted: &[f64]) -> Latency {
    Latency {
        p50: percentile(sorted, 0.50),
        p95: percentile(sorted, 0.95),
        p99: percentile(sorted, 0.99),
        max: sorted.last().copied().unwrap_or(0.0),
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

pub(super) fn mailbox(i: usize) -> String {
    format!("user{i:05}@bench.example")
}

pub(super) fn folder(j: usize) -> String {
    format!("Inbox/Customers/C{j}")
}

/// The `[exchange]` section: the bench account over EWS, or its app over Graph.
pub(super) fn exchange_text(dir: &Path, sim: &SimHandle, api: Api) -> String {
    let secret = dir.join("svc.pw");
    match api {
        Api::Ews => format!(
            "[exchange]\nurl = \"{}\"\nauth = {{ kind = \"basic\", username = \"svc-bench\", password_file = \"{}\" }}\n",
            sim.ews_url(),
            secret.display()
        ),
        Api::Graph => format!(
            "[exchange]\napi = \"graph\"\nurl = \"{}\"\nauth = {{ kind = \"oauth\", tenant_id = \"bench\", client_id = \"{BENCH_APP}\", client_secret_file = \"{}\", token_url = \"{}\" }}\n",
            sim.graph_url(),
            secret.display(),
            sim.token_url("bench")
        ),
    }
}

/// A loopback port free now (the agent binds it a moment later).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_or(9478, |a| a.port())
}

/// The Entra app of the Graph runs; it acts as the bench account.
const BENCH_APP: &str = "foldertrack-bench";

fn config_text(dir: &Path, sim: &SimHandle, o: &Options) -> String {
    let mut text = format!(
        r#"{exchange}
[store]
path = "{store}"

[sink]
kind = "jsonl"
path = "{out}"

[cadence]
busy_secs = {busy}
normal_secs = {normal}
quiet_secs = {quiet}

[writeback]
enabled = {writeback}

[admin]
listen = "127.0.0.1:0"
"#,
        exchange = exchange_text(dir, sim, o.api),
        store = dir.join("store").display(),
        out = dir.join("tracked.jsonl").display(),
        busy = o.cadence.0,
        normal = o.cadence.1,
        quiet = o.cadence.2,
        writeback = o.writeback,
    );
    match o.notifications {
        // Graph posts its notifications to a receiver on a free loopback port.
        crate::config::NotificationMode::Streaming if o.api == Api::Graph => {
            let port = free_port();
            text += &format!(
                "\n[notifications]\ngraph_notification_url = \"http://127.0.0.1:{port}/notify\"\ngraph_listen = \"127.0.0.1:{port}\"\n"
            );
        }
        crate::config::NotificationMode::Streaming => {}
        crate::config::NotificationMode::Pull => text += "\n[notifications]\nmode = \"pull\"\n",
        crate::config::NotificationMode::Off => text += "\n[notifications]\nmode = \"off\"\n",
    }
    if let Some((concurrent, account, mailbox)) = o.limits {
        text += &format!(
            "\n[limits]\nmax_concurrent_calls = {concurrent}\ncalls_per_second = {account}\nmailbox_calls_per_second = {mailbox}\n"
        );
    }
    text + &mailboxes_text(o.mailboxes, o.folders)
}

/// The `[[mailbox]]` tables: every bench mailbox with its mapped folders.
pub(super) fn mailboxes_text(mailboxes: usize, folders: usize) -> String {
    let mut text = String::new();
    for i in 0..mailboxes {
        text += &format!("\n[[mailbox]]\naddress = \"{}\"\n", mailbox(i));
        for j in 0..folders {
            text += &format!("[[mailbox.folder]]\npath = \"{}\"\n", folder(j));
        }
    }
    text
}

/// A scratch folder, removed at the end.
pub(super) struct BenchDir(PathBuf);

impl BenchDir {
    pub(super) fn new() -> Result<Self, Error> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir =
            std::env::temp_dir().join(format!("foldertrack-bench-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|source| io(&dir, source))?;
        Ok(Self(dir))
    }

    pub(super) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for BenchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(super) fn io(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.to_owned(),
        source,
    }
}

/// Tails the JSONL sink: the new requests since the last call.
struct Tail {
    path: PathBuf,
    offset: usize,
}

impl Tail {
    fn read(&mut self) -> Vec<TrackingRequest> {
        let text = std::fs::read(&self.path).unwrap_or_default();
        let Some(new) = text.get(self.offset..) else {
            return Vec::new();
        };
        let complete = new.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        self.offset += complete;
        new[..complete]
            .split(|b| *b == b'\n')
            .filter_map(|l| serde_json::from_slice(l).ok())
            .collect()
    }
}

/// Runs the benchmark; `say` hears progress. The agent binary is `agent`.
pub async fn e2e(
    o: Options,
    agent: &Path,
    command: String,
    say: impl Fn(&str),
) -> Result<Report, Error> {
    if o.burst.is_some() && o.mailboxes < 2 {
        return Err(Error::Stalled(
            "the burst preset needs 2 mailboxes or more".into(),
        ));
    }
    let dir = BenchDir::new()?;
    let sim = Simulator::start(SimOptions::default()).await?;
    let c = sim.control();
    setup(&c, o.mailboxes, o.folders)?;
    let password = dir.path().join("svc.pw");
    super::write_secret(&password, "bench-pw")?;
    let config = dir.path().join("foldertrack.toml");
    std::fs::write(&config, config_text(dir.path(), &sim, &o)).map_err(|e| io(&config, e))?;
    let non_default_settings = crate::config::Config::load(&config)?.non_defaults();
    say(&format!(
        "{} mailboxes × {} folders ready; starting the agent",
        o.mailboxes, o.folders
    ));

    let started = Instant::now();
    let log_path = dir.path().join("agent.log");
    let log = std::fs::File::create(&log_path).map_err(|e| io(&log_path, e))?;
    let mut child = std::process::Command::new(agent)
        .arg("--config")
        .arg(&config)
        .args(["-q", "run"])
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| io(agent, e))?;
    let pid = child.id();
    let result = measure(&o, &c, dir.path(), pid, started, &say).await;
    let (rss, cpu) = process_figures(pid);
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let _ = child.wait();
    sim.shutdown().await;
    let mut report = result?;
    if report.lost > 0 {
        report.agent_log = keep_log(&log_path, "e2e");
    }
    report.agent_peak_rss_mib = rss;
    report.agent_cpu_seconds = cpu;
    report.machine = Machine::here();
    report.command = command;
    report.non_default_settings = non_default_settings;
    report.options = Some(o);
    Ok(report)
}

/// The mails that never arrived, and where the agent's log was kept.
pub(super) fn missing(ids: &[String], log: &Path) -> String {
    format!("{} ({})", ids.join(", "), log.display())
}

/// A copy of the agent's log that outlives the run's folder, for a run that lost mail.
pub(super) fn keep_log(log: &Path, run: &str) -> Option<PathBuf> {
    let kept = std::env::temp_dir().join(format!("foldertrack-{run}-{}.log", std::process::id()));
    std::fs::copy(log, &kept).ok().map(|_| kept)
}

pub(super) fn setup(
    c: &SimControl,
    mailboxes: usize,
    folders: usize,
) -> Result<(), crate::sim::Error> {
    c.create_service_account("svc-bench", "bench-pw")?;
    c.impersonate_all("svc-bench", true)?;
    c.add_oauth_client(BENCH_APP, "bench-pw", "svc-bench")?;
    for i in 0..mailboxes {
        let m = mailbox(i);
        c.create_mailbox(&m)?;
        for j in 0..folders {
            c.create_folder(&m, &folder(j))?;
        }
    }
    Ok(())
}

/// The agent's admin API, once it wrote its address into `file` (the store path + `.admin`).
pub(super) async fn admin_client(file: &Path) -> Result<AdminClient, Error> {
    for _ in 0..600 {
        if let Ok(addr) = std::fs::read_to_string(file) {
            return Ok(AdminClient::new(addr.trim(), None)?);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(Error::Stalled(
        "the agent did not start within 30 s; see its log".into(),
    ))
}

/// Total syncs over all mailboxes, from the admin API.
async fn syncs(admin: &AdminClient) -> Result<u64, Error> {
    Ok(admin.metric("foldertrack_sync_seconds_count").await? as u64)
}

/// When each mail was moved in, and when (and how often) it reached the sink.
#[derive(Default)]
struct Arrivals {
    moved: HashMap<String, Instant>,
    arrived: HashMap<String, (Instant, usize)>,
}

impl Arrivals {
    fn note(&mut self, requests: Vec<TrackingRequest>) {
        let now = Instant::now();
        for r in requests
            .into_iter()
            .filter(|r| r.event == EventKind::MovedIn)
        {
            let id = r.message.internet_message_id.unwrap_or_default();
            self.arrived.entry(id).or_insert((now, 0)).1 += 1;
        }
    }

    fn all_in(&self) -> bool {
        self.moved.keys().all(|k| self.arrived.contains_key(k))
    }

    /// Move → sink latencies in seconds, sorted.
    fn latencies(&self) -> Vec<f64> {
        let mut out: Vec<f64> = self
            .moved
            .iter()
            .filter_map(|(id, at)| {
                self.arrived
                    .get(id)
                    .map(|(t, _)| t.duration_since(*at).as_secs_f64())
            })
            .collect();
        out.sort_by(f64::total_cmp);
        out
    }
}

/// Waits until every mailbox is baselined: what is moved in after that is tracked.
pub(super) async fn baselines(admin: &AdminClient, started: Instant) -> Result<(), Error> {
    loop {
        if admin.ready().await? {
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(1800) {
            return Err(Error::Stalled(
                "the first syncs did not finish within 30 minutes".into(),
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Drags `duration × rate` mails into random mapped folders at an even pace, then waits for
/// the stragglers (up to two quiet intervals).
/// Notification trouble at random intervals around `every` seconds (none without).
struct Chaos {
    every: Option<f64>,
    next: Instant,
    rng: fastrand::Rng,
    made: std::collections::BTreeMap<String, usize>,
}

impl Chaos {
    fn new(every: Option<f64>) -> Self {
        let mut chaos = Self {
            every,
            next: Instant::now(),
            rng: fastrand::Rng::new(),
            made: Default::default(),
        };
        chaos.schedule();
        chaos
    }

    fn schedule(&mut self) {
        if let Some(every) = self.every {
            self.next = Instant::now() + Duration::from_secs_f64(every * (0.5 + self.rng.f64()));
        }
    }

    /// Makes the trouble that is due, if any.
    fn strike(&mut self, c: &SimControl, mailboxes: usize) -> Result<(), Error> {
        if self.every.is_none() || Instant::now() < self.next {
            return Ok(());
        }
        let m = mailbox(self.rng.usize(..mailboxes));
        let kind = match self.rng.u8(..3) {
            0 => {
                c.expire_subscriptions(&m)?;
                "subscriptions expired"
            }
            1 => {
                c.miss_events(&m)?;
                "events missed"
            }
            _ => {
                c.drop_streams();
                "all connections dropped"
            }
        };
        *self.made.entry(kind.to_owned()).or_default() += 1;
        self.schedule();
        Ok(())
    }
}

async fn drag(
    o: &Options,
    c: &SimControl,
    admin: &AdminClient,
    tail: &mut Tail,
    chaos: &mut Chaos,
) -> Result<Arrivals, Error> {
    let mut seen = Arrivals::default();
    let total = (o.duration as f64 * o.rate).round() as usize;
    let gap = Duration::from_secs_f64(1.0 / o.rate.max(0.001));
    let start = Instant::now();
    let mut rng = fastrand::Rng::new();
    for n in 0..total {
        let due = start + gap.mul_f64(n as f64);
        while Instant::now() < due {
            seen.note(tail.read());
            chaos.strike(c, o.mailboxes)?;
            tokio::time::sleep((due - Instant::now()).min(Duration::from_millis(20))).await;
        }
        let (m, f) = (
            mailbox(rng.usize(..o.mailboxes)),
            folder(rng.usize(..o.folders)),
        );
        let id = file(c, &m, &f, &format!("bench {n}"))?;
        seen.moved.insert(id, Instant::now());
        if o.track_now {
            admin.sync_now(&m).await?;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(o.cadence.2 * 2 + 5);
    while Instant::now() < deadline && !seen.all_in() {
        seen.note(tail.read());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(seen)
}

/// A mail arrives in `mailbox`'s Inbox and is dragged into `folder`; its InternetMessageId.
pub(super) fn file(
    c: &SimControl,
    mailbox: &str,
    folder: &str,
    subject: &str,
) -> Result<String, Error> {
    let mail = NewMessage {
        subject: subject.to_owned(),
        from: "customer@bench.example".into(),
        to: vec![mailbox.to_owned()],
        ..NewMessage::default()
    };
    let d = c.deliver(mailbox, "Inbox", &mail)?;
    c.move_message(mailbox, &d.item_id, folder)?;
    Ok(d.internet_message_id)
}

/// Reads the sink until every one of `ids` is in it, or `within` has passed.
async fn until_in(seen: &mut Arrivals, tail: &mut Tail, ids: &[String], within: Duration) {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        seen.note(tail.read());
        if ids.iter().all(|id| seen.arrived.contains_key(id)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The `burst` rounds: the first mailbox files `b.mails` mails and has them synced and
/// delivered; at once the second files one and asks for track-now, while the first one's
/// categories are being written. Returns every arrival, the second mailbox's latencies and the
/// fewest marks pending when it asked.
async fn bursts(
    b: Burst,
    c: &SimControl,
    admin: &AdminClient,
    tail: &mut Tail,
) -> Result<(Arrivals, Vec<f64>, usize), Error> {
    let (filer, other, to) = (mailbox(0), mailbox(1), folder(0));
    let mut seen = Arrivals::default();
    let mut latencies = Vec::with_capacity(b.rounds);
    let mut pending = usize::MAX;
    for round in 0..b.rounds {
        let mut filed = Vec::with_capacity(b.mails);
        for k in 0..b.mails {
            let id = file(c, &filer, &to, &format!("burst {round}.{k}"))?;
            seen.moved.insert(id.clone(), Instant::now());
            filed.push(id);
        }
        admin.sync_now(&filer).await?;
        until_in(&mut seen, tail, &filed, Duration::from_secs(60)).await;
        pending = pending.min(admin.status().await?.pending_write_backs);
        let id = file(c, &other, &to, &format!("tracked now {round}"))?;
        let moved = Instant::now();
        seen.moved.insert(id.clone(), moved);
        admin.sync_now(&other).await?;
        until_in(
            &mut seen,
            tail,
            std::slice::from_ref(&id),
            Duration::from_secs(60),
        )
        .await;
        if let Some((at, _)) = seen.arrived.get(&id) {
            latencies.push(at.duration_since(moved).as_secs_f64());
        }
    }
    latencies.sort_by(f64::total_cmp);
    Ok((seen, latencies, pending))
}

/// Calls, syncs and CPU seconds during an idle window of `o.idle` seconds.
struct Idle {
    calls: u64,
    syncs: u64,
    cpu_seconds: f64,
}

async fn idle(o: &Options, c: &SimControl, admin: &AdminClient, pid: u32) -> Result<Idle, Error> {
    let (_, cpu_before) = process_figures(pid);
    let syncs_before = syncs(admin).await?;
    let calls_before = c.stats().calls;
    tokio::time::sleep(Duration::from_secs(o.idle)).await;
    let syncs_after = syncs(admin).await?;
    let calls_after = c.stats().calls;
    let (_, cpu_after) = process_figures(pid);
    Ok(Idle {
        calls: calls_after - calls_before,
        syncs: syncs_after - syncs_before,
        cpu_seconds: cpu_after - cpu_before,
    })
}

/// Calls in the idle window per mapped folder, scaled to an hour.
fn per_folder_hour(o: &Options, calls: f64) -> f64 {
    calls / (o.mailboxes * o.folders).max(1) as f64 * 3600.0 / o.idle.max(1) as f64
}

/// How many mailboxes notifications wake now, and why the others are polled (by reason).
async fn notified(
    admin: &AdminClient,
) -> Result<(usize, std::collections::BTreeMap<String, usize>), Error> {
    use crate::watch::notify::Delivery;
    let woken = async |by: &str| {
        admin
            .metric(&format!("foldertrack_mailboxes_woken{{by=\"{by}\"}}"))
            .await
    };
    let notified = (woken("notified").await? + woken("pulled").await?) as usize;
    let mut polled = std::collections::BTreeMap::new();
    // The reasons are in `/status` alone, which costs the agent tens of MiB at 10,000 mailboxes
    // (counted in its peak): read it only when some mailbox is not woken by notifications.
    if woken("polled").await? + woken("pending").await? > 0.0 {
        for m in &admin.status().await?.mailboxes {
            if !matches!(
                m.status.notifications,
                Delivery::Notified | Delivery::Pulled { .. }
            ) {
                *polled.entry(m.status.notifications.describe()).or_insert(0) += 1;
            }
        }
    }
    Ok((notified, polled))
}

async fn measure(
    o: &Options,
    c: &SimControl,
    dir: &Path,
    pid: u32,
    started: Instant,
    say: &impl Fn(&str),
) -> Result<Report, Error> {
    let admin = admin_client(&dir.join("store.admin")).await?;
    baselines(&admin, started).await?;
    let startup = started.elapsed().as_secs_f64();
    say(&match o.burst {
        Some(b) => format!(
            "baselines done in {startup:.1} s; {} burst rounds",
            b.rounds
        ),
        None => format!(
            "baselines done in {startup:.1} s; dragging for {} s at {}/s",
            o.duration, o.rate
        ),
    });
    let before = c.stats();
    let mut tail = Tail {
        path: dir.join("tracked.jsonl"),
        offset: 0,
    };
    let drag_start = Instant::now();
    let mut chaos = Chaos::new(o.chaos_every);
    let (seen, track_now, pending) = match o.burst {
        Some(b) => {
            let (seen, latencies, pending) = bursts(b, c, &admin, &mut tail).await?;
            (seen, Some(latency(&latencies)), Some(pending))
        }
        None => (drag(o, c, &admin, &mut tail, &mut chaos).await?, None, None),
    };
    let last_arrival = seen
        .arrived
        .values()
        .map(|(t, _)| *t)
        .max()
        .unwrap_or_else(Instant::now);
    let busy = c.stats();
    say(&format!("idle for {} s", o.idle));
    let quiet = idle(o, c, &admin, pid).await?;

    let latencies = seen.latencies();
    let tracked = seen
        .moved
        .keys()
        .filter(|k| seen.arrived.contains_key(*k))
        .count();
    let calls = busy.calls - before.calls;
    let bytes = (busy.bytes_in + busy.bytes_out) - (before.bytes_in + before.bytes_out);
    let notified_now = notified(&admin).await?;
    let idle_syncs = (quiet.syncs > 0).then_some(quiet.syncs as f64);
    let idle_calls = quiet.calls as f64;
    Ok(Report {
        moved_in: seen.moved.len(),
        tracked,
        lost: seen.moved.len() - tracked,
        missing: seen
            .moved
            .keys()
            .filter(|k| !seen.arrived.contains_key(*k))
            .cloned()
            .collect(),
        duplicated: seen.arrived.values().filter(|(_, n)| *n > 1).count(),
        tracked_per_second: tracked as f64
            / last_arrival
                .duration_since(drag_start)
                .as_secs_f64()
                .max(0.001),
        latency: latency(&latencies),
        track_now_latency: track_now,
        burst_marks_pending_min: pending,
        ews_calls_per_tracked: calls as f64 / tracked.max(1) as f64,
        idle_calls_per_mailbox_cycle: idle_syncs.map(|n| idle_calls / n),
        idle_calls_per_folder_cycle: idle_syncs.map(|n| idle_calls / n / o.folders.max(1) as f64),
        idle_calls_per_folder_hour: per_folder_hour(o, idle_calls),
        notified_mailboxes: notified_now.0,
        polled_because: notified_now.1,
        notification_chaos: chaos.made,
        bytes_per_tracked: bytes as f64 / tracked.max(1) as f64,
        agent_cpu_share_idle: quiet.cpu_seconds / o.idle.max(1) as f64,
        startup_seconds: startup,
        ..Report::default()
    })
}

/// The settings the run changed from the defaults, on one line.
fn changed_settings(r: &Report) -> String {
    if r.non_default_settings.is_empty() {
        return "none".into();
    }
    r.non_default_settings.join("; ")
}

/// The table's rows that say what ran.
fn option_rows(o: &Options) -> Vec<(&'static str, String)> {
    let mut rows = vec![(
        "preset",
        format!(
            "{} ({} mailboxes × {} folders, cadence {}/{}/{} s{})",
            o.preset,
            o.mailboxes,
            o.folders,
            o.cadence.0,
            o.cadence.1,
            o.cadence.2,
            if o.track_now { ", track-now" } else { "" }
        ),
    )];
    if o.api == Api::Ews {
        use crate::config::NotificationMode;
        let how = match o.notifications {
            NotificationMode::Streaming => {
                "streaming (changes wake a mailbox; polling is the backstop)"
            }
            NotificationMode::Pull => {
                "pull (GetEvents every pull_interval_secs wakes a mailbox; polling is the backstop)"
            }
            NotificationMode::Off => "off (polling only)",
        };
        rows.push(("notifications", how.into()));
    }
    if o.api == Api::Graph {
        let how = match o.notifications {
            crate::config::NotificationMode::Streaming => {
                "graph (Microsoft Graph delta queries, woken by change notifications)"
            }
            _ => "graph (Microsoft Graph delta queries, polled)",
        };
        rows.push(("api", how.into()));
    }
    if let Some(every) = o.chaos_every {
        rows.push((
            "notification trouble",
            format!("about every {every} s during the drags"),
        ));
    }
    if let Some(b) = o.burst {
        rows.push((
            "burst",
            format!(
                "{} rounds: {} mails filed in one mailbox, then one tracked now in another",
                b.rounds, b.mails
            ),
        ));
    }
    rows
}

fn percentiles(l: &Latency) -> String {
    format!(
        "{:.2} / {:.2} / {:.2} / {:.2} s",
        l.p50, l.p95, l.p99, l.max
    )
}

/// The short table.
pub fn table(r: &Report) -> String {
    let mut out = String::new();
    let mut row = |k: &str, v: String| out += &format!("{k:<38} {v}\n");
    for (k, v) in r.options.as_ref().map(option_rows).unwrap_or_default() {
        row(k, v);
    }
    row(
        "moved in / tracked",
        format!("{} / {}", r.moved_in, r.tracked),
    );
    row(
        "lost / duplicated",
        format!("{} / {}", r.lost, r.duplicated),
    );
    if let Some(log) = &r.agent_log {
        row("missing (agent log kept)", missing(&r.missing, log));
    }
    if !r.notification_chaos.is_empty() {
        let made: Vec<String> = r
            .notification_chaos
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        row("notification trouble made", made.join(", "));
    }
    row("tracked per second", format!("{:.1}", r.tracked_per_second));
    row("latency p50 / p95 / p99 / max", percentiles(&r.latency));
    if let Some(l) = &r.track_now_latency {
        row("track-now p50 / p95 / p99 / max", percentiles(l));
    }
    if let Some(n) = r.burst_marks_pending_min {
        row(
            "categories pending at each track-now",
            format!("at least {n}"),
        );
    }
    let calls = match r.options.as_ref().map(|o| o.api) {
        Some(Api::Graph) => "Graph calls per tracked mail",
        _ => "EWS calls per tracked mail",
    };
    row(calls, format!("{:.2}", r.ews_calls_per_tracked));
    row(
        "idle: calls per mailbox per cycle",
        match (
            r.idle_calls_per_mailbox_cycle,
            r.idle_calls_per_folder_cycle,
        ) {
            (Some(mailbox), Some(folder)) => {
                format!("{mailbox:.2} ({folder:.2} per mapped folder)")
            }
            _ => "no pass ran in the idle window".into(),
        },
    );
    row(
        "idle: calls per mapped folder per hour",
        format!("{:.2}", r.idle_calls_per_folder_hour),
    );
    row("mailboxes notified", r.notified_mailboxes.to_string());
    for (why, n) in &r.polled_because {
        row("  not notified", format!("{n}: {why}"));
    }
    row(
        "bytes over the wire per tracked mail",
        format!("{:.0}", r.bytes_per_tracked),
    );
    row(
        "agent peak resident memory",
        format!("{:.1} MiB", r.agent_peak_rss_mib),
    );
    row(
        "agent CPU time",
        format!(
            "{:.1} s ({:.2} % of a core while idle)",
            r.agent_cpu_seconds,
            r.agent_cpu_share_idle * 100.0
        ),
    );
    row(
        "first syncs (baselines) took",
        format!("{:.1} s", r.startup_seconds),
    );
    row(
        "machine",
        format!(
            "{} cores, {:.0} GiB, {}",
            r.machine.cores, r.machine.memory_gib, r.machine.date
        ),
    );
    row("settings changed from the defaults", changed_settings(r));
    row("command", r.command.clone());
    out
}
