//! `foldertrack bench soak`: the agent (a child process, so it can be SIGKILLed) against the
//! simulator for a long time while people file mail and something goes wrong every few
//! seconds, in turn: an Exchange fault injected into the simulator (every kind it has but a
//! 401, which disables a mailbox by design), the webhook receiver going down or answering 503
//! for a while, a full disk under the store (a tmpfs, when this process may mount one), and a
//! SIGKILL with a restart. SIGKILLs happen in the first half only, so the second half is one
//! agent life whose memory trend shows. At the end the chaos stops, and every mail filed must
//! have reached the receiver exactly once.

use super::Error;
use super::bench::{self, BenchDir, Machine};
use crate::deliver::webhook;
use crate::sim::{FaultKind, FaultRule, SimControl, SimOptions, Simulator};
use crate::tracking::{EventKind, TrackingRequest};
use axum::http::{HeaderMap, StatusCode};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What to run.
#[derive(Clone, Debug, Serialize)]
pub struct Options {
    /// Seconds of filing mail under chaos.
    pub seconds: u64,
    pub mailboxes: usize,
    pub folders: usize,
    /// Mails filed per second, over all mailboxes.
    pub rate: f64,
    /// Seconds between two chaos events.
    pub chaos_every: f64,
    /// Try to put the store on a small tmpfs and fill it now and then.
    pub disk_full: bool,
    /// Seconds to wait, after the chaos, for the last mails to arrive.
    pub settle: u64,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            seconds: 600,
            mailboxes: 5,
            folders: 2,
            rate: 2.0,
            chaos_every: 15.0,
            disk_full: true,
            settle: 600,
        }
    }
}

/// The agent's resident memory over one life (between two starts).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Life {
    pub minutes: f64,
    pub first_mib: f64,
    pub last_mib: f64,
    pub peak_mib: f64,
}

/// The figures.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub options: Option<Options>,
    pub filed: usize,
    pub delivered: usize,
    pub lost: usize,
    /// Mails that reached the receiver under more than one event id (no receiver can merge them).
    pub duplicated: usize,
    /// Posts of an event id the receiver already had (at-least-once: `Idempotency-Key` merges them).
    pub redelivered: usize,
    pub bad_signatures: usize,
    /// The Internet Message-IDs of the mails that never arrived, and where the agent's log was
    /// kept for them (the run's folder is removed at the end).
    pub missing: Vec<String>,
    pub agent_log: Option<PathBuf>,
    pub exchange_faults: BTreeMap<String, usize>,
    pub sink_outages: usize,
    pub kills: usize,
    /// Times the agent exited on its own (and was started again, as a supervisor would).
    pub agent_exits: usize,
    pub disk_fulls: usize,
    /// Why the disk-full chaos did not run, when it did not.
    pub disk_full_unavailable: Option<String>,
    /// Seconds from the end of the chaos until the last mail arrived.
    pub settle_seconds: f64,
    pub rss_first_mib: f64,
    pub rss_last_mib: f64,
    pub rss_peak_mib: f64,
    /// The longest agent life (the second half: no SIGKILLs).
    pub longest_life: Life,
    /// Every setting the soak's configuration changes from the defaults.
    pub non_default_settings: Vec<String>,
    pub machine: Machine,
    pub command: String,
}

/// The webhook receiver: it verifies each post's signature and notes what arrived.
#[derive(Default)]
struct Hook {
    secret: Vec<u8>,
    failing: AtomicBool,
    bad_signatures: AtomicUsize,
    /// (InternetMessageId, event id) of every accepted post.
    got: Mutex<Vec<(String, String)>>,
}

async fn receive(
    axum::extract::State(hook): axum::extract::State<Arc<Hook>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    if hook.failing.load(Ordering::Relaxed) {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let signature = headers
        .get(webhook::SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let now = webhook::unix_now();
    if !webhook::verify(&hook.secret, &body, signature, now, webhook::TOLERANCE_SECS) {
        hook.bad_signatures.fetch_add(1, Ordering::Relaxed);
        return StatusCode::UNAUTHORIZED;
    }
    let Ok(request) = serde_json::from_slice::<TrackingRequest>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    if request.event == EventKind::MovedIn {
        let id = request.message.internet_message_id.unwrap_or_default();
        let mut got = hook.got.lock().unwrap_or_else(|e| e.into_inner());
        got.push((id, request.event_id));
    }
    StatusCode::OK
}

/// The receiver's listener: up (serving) or down (connections refused).
struct Receiver {
    addr: SocketAddr,
    hook: Arc<Hook>,
    server: Option<tokio::task::JoinHandle<()>>,
}

impl Receiver {
    async fn start(secret: &str) -> Result<Self, Error> {
        let hook = Arc::new(Hook {
            secret: secret.as_bytes().to_vec(),
            ..Hook::default()
        });
        let mut r = Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            hook,
            server: None,
        };
        r.up().await?;
        Ok(r)
    }

    async fn up(&mut self) -> Result<(), Error> {
        if self.server.is_some() {
            return Ok(());
        }
        let at = |source| Error::Stalled(format!("webhook receiver at {}: {source}", self.addr));
        let listener = tokio::net::TcpListener::bind(self.addr).await.map_err(at)?;
        self.addr = listener.local_addr().map_err(at)?;
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(self.hook.clone());
        self.server = Some(tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        }));
        Ok(())
    }

    /// Stops listening; posts on connections still open get 503 until `up`.
    fn down(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
        self.hook.failing.store(true, Ordering::Relaxed);
    }

    async fn heal(&mut self) -> Result<(), Error> {
        self.up().await?;
        self.hook.failing.store(false, Ordering::Relaxed);
        Ok(())
    }
}

/// A small tmpfs under the store, and a file that fills it.
struct Disk {
    mount: PathBuf,
    filler: PathBuf,
}

impl Disk {
    /// Mounts a 128 MiB tmpfs at `mount`; why not, when this process may not.
    fn mount(mount: &Path) -> Result<Self, String> {
        std::fs::create_dir_all(mount).map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=128m", "tmpfs"])
            .arg(mount)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            let why = String::from_utf8_lossy(&out.stderr);
            return Err(format!("mount -t tmpfs failed: {}", why.trim()));
        }
        Ok(Self {
            mount: mount.to_owned(),
            filler: mount.join("filler"),
        })
    }

    /// Writes until the disk is full.
    fn fill(&self) {
        use std::io::Write;
        let Ok(mut f) = std::fs::File::create(&self.filler) else {
            return;
        };
        let block = vec![0u8; 1 << 20];
        while f.write_all(&block).is_ok() {}
        let _ = f.sync_all();
    }

    fn free(&self) {
        let _ = std::fs::remove_file(&self.filler);
    }
}

impl Drop for Disk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.mount).status();
    }
}

/// Memory samples of the current life, and the lives before.
#[derive(Default)]
struct Memory {
    lives: Vec<(Instant, Vec<f64>)>,
}

impl Memory {
    fn new_life(&mut self) {
        self.lives.push((Instant::now(), Vec::new()));
    }

    fn sample(&mut self, pid: u32) {
        if let (Some(mib), Some((_, samples))) = (rss_mib(pid), self.lives.last_mut()) {
            samples.push(mib);
        }
    }

    fn fill_report(&self, r: &mut Report) {
        let all: Vec<f64> = self.lives.iter().flat_map(|(_, s)| s.clone()).collect();
        r.rss_first_mib = all.first().copied().unwrap_or(0.0);
        r.rss_last_mib = all.last().copied().unwrap_or(0.0);
        r.rss_peak_mib = all.iter().copied().fold(0.0, f64::max);
        let ends: Vec<Instant> = self
            .lives
            .iter()
            .skip(1)
            .map(|(t, _)| *t)
            .chain([Instant::now()])
            .collect();
        let longest = self
            .lives
            .iter()
            .zip(ends)
            .filter(|((_, s), _)| !s.is_empty())
            .max_by(|((a, _), ea), ((b, _), eb)| (*ea - *a).cmp(&(*eb - *b)));
        if let Some(((start, s), end)) = longest {
            r.longest_life = Life {
                minutes: (end - *start).as_secs_f64() / 60.0,
                first_mib: s[0],
                last_mib: s[s.len() - 1],
                peak_mib: s.iter().copied().fold(0.0, f64::max),
            };
        }
    }
}

/// A process's resident memory now (MiB), from /proc.
fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse::<f64>()
        .ok()?;
    Some(kib / 1024.0)
}

/// The agent as a supervisor runs it: started again whenever it is not running.
struct Agent {
    bin: PathBuf,
    config: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    last_start: Option<Instant>,
}

impl Agent {
    fn start(&mut self, memory: &mut Memory) -> Result<(), Error> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|e| bench::io(&self.log, e))?;
        let child = Command::new(&self.bin)
            .arg("--config")
            .arg(&self.config)
            .args(["-q", "run"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| bench::io(&self.bin, e))?;
        self.child = Some(child);
        self.last_start = Some(Instant::now());
        memory.new_life();
        Ok(())
    }

    fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether it exited on its own since the last look.
    fn exited(&mut self) -> bool {
        let gone = self
            .child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(Some(_))));
        if gone {
            self.child = None;
        }
        gone
    }

    fn signal(&mut self, signal: &str) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args([signal, &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }
}

/// The kinds of trouble, taken in turn (shuffled per round) so a short run sees each.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Chaos {
    ExchangeFault,
    SinkOutage,
    DiskFull,
    Kill,
}

const OPERATIONS: &[&str] = &[
    "SyncFolderItems",
    "GetItem",
    "UpdateItem",
    "FindFolder",
    "GetFolder",
    "SyncFolderHierarchy",
];

/// A fault of a kind the simulator has, picked at random, for a few calls. All but
/// `Unauthorized`: a 401 disables its mailbox by design (a revoked credential), probed hourly,
/// so its mail waits for the operator or the probe, which a soak would count as lost.
fn random_fault(rng: &mut fastrand::Rng, mailboxes: usize) -> FaultRule {
    let fault = match rng.u8(0..9) {
        0 => FaultKind::ServerBusyMessage {
            back_off_ms: rng.u64(200..3000),
        },
        1 => FaultKind::ServerBusyFault {
            back_off_ms: rng.u64(200..3000),
        },
        2 => FaultKind::Http503 {
            retry_after_secs: rng.u64(1..4),
        },
        3 => FaultKind::Http429 {
            retry_after_secs: rng.u64(1..4),
        },
        4 => FaultKind::InvalidSyncState,
        5 => FaultKind::MailboxMoveInProgress,
        6 => FaultKind::Delay {
            ms: rng.u64(100..3000),
        },
        7 => FaultKind::DropConnection,
        _ => FaultKind::TruncateBody,
    };
    FaultRule {
        mailbox: rng.bool().then(|| bench::mailbox(rng.usize(..mailboxes))),
        operation: rng
            .bool()
            .then(|| OPERATIONS[rng.usize(..OPERATIONS.len())].to_owned()),
        fault,
        count: Some(rng.u32(1..4)),
        probability: None,
    }
}

fn fault_name(kind: &FaultKind) -> String {
    serde_json::to_value(kind)
        .ok()
        .and_then(|v| v["kind"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Everything one run holds.
struct Run {
    o: Options,
    c: SimControl,
    receiver: Receiver,
    disk: Option<Disk>,
    agent: Agent,
    memory: Memory,
    report: Report,
    rng: fastrand::Rng,
    filed: HashSet<String>,
    round: Vec<Chaos>,
    /// When the current sink outage and disk-full end.
    outage_until: Option<Instant>,
    full_until: Option<Instant>,
}

impl Run {
    /// A random span around the chaos interval.
    fn span(&mut self) -> Duration {
        Duration::from_secs_f64(self.o.chaos_every * (0.5 + 1.5 * self.rng.f64()))
    }

    fn next_chaos(&mut self, kills: bool) -> Chaos {
        if self.round.is_empty() {
            self.round = vec![Chaos::ExchangeFault, Chaos::SinkOutage, Chaos::Kill];
            if self.disk.is_some() {
                self.round.push(Chaos::DiskFull);
            }
            self.rng.shuffle(&mut self.round);
        }
        let next = self.round.pop().unwrap_or(Chaos::ExchangeFault);
        if next == Chaos::Kill && !kills {
            return Chaos::ExchangeFault;
        }
        next
    }

    fn chaos(&mut self, kills: bool) -> Result<(), Error> {
        match self.next_chaos(kills) {
            Chaos::ExchangeFault => {
                let rule = random_fault(&mut self.rng, self.o.mailboxes);
                *self
                    .report
                    .exchange_faults
                    .entry(fault_name(&rule.fault))
                    .or_default() += 1;
                self.c.add_fault(rule);
            }
            Chaos::SinkOutage if self.outage_until.is_none() => {
                if self.rng.bool() {
                    self.receiver.down();
                } else {
                    self.receiver.hook.failing.store(true, Ordering::Relaxed);
                }
                self.outage_until = Some(Instant::now() + self.span());
                self.report.sink_outages += 1;
            }
            Chaos::DiskFull if self.full_until.is_none() => {
                if let Some(disk) = &self.disk {
                    disk.fill();
                    self.full_until = Some(Instant::now() + self.span());
                    self.report.disk_fulls += 1;
                }
            }
            Chaos::Kill => {
                self.agent.signal("-KILL");
                self.report.kills += 1;
                self.agent.start(&mut self.memory)?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Ends outages that are due (all of them when `all`).
    async fn heal(&mut self, all: bool) -> Result<(), Error> {
        let now = Instant::now();
        if self.outage_until.is_some_and(|t| all || t <= now) {
            self.receiver.heal().await?;
            self.outage_until = None;
        }
        if self.full_until.is_some_and(|t| all || t <= now) {
            if let Some(disk) = &self.disk {
                disk.free();
            }
            self.full_until = None;
        }
        Ok(())
    }

    /// Starts the agent again when it exited, at most once a second (as systemd would).
    fn supervise(&mut self) -> Result<(), Error> {
        if self.agent.exited() {
            self.report.agent_exits += 1;
        }
        let rested = self
            .agent
            .last_start
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(1));
        if self.agent.child.is_none() && rested {
            self.agent.start(&mut self.memory)?;
        }
        Ok(())
    }

    fn file_one(&mut self, n: usize) -> Result<(), Error> {
        let m = bench::mailbox(self.rng.usize(..self.o.mailboxes));
        let f = bench::folder(self.rng.usize(..self.o.folders));
        let id = bench::file(&self.c, &m, &f, &format!("soak {n}"))?;
        self.filed.insert(id);
        Ok(())
    }

    /// Received posts: per mail, the event ids it came under; and the repeats of an event id.
    fn received(&self) -> (HashMap<String, HashSet<String>>, usize) {
        let got = self.hook_got();
        let mut by_mail: HashMap<String, HashSet<String>> = HashMap::new();
        let mut keys = HashSet::new();
        let mut repeats = 0;
        for (mail, key) in got {
            if !keys.insert(key.clone()) {
                repeats += 1;
            }
            by_mail.entry(mail).or_default().insert(key);
        }
        (by_mail, repeats)
    }

    fn hook_got(&self) -> Vec<(String, String)> {
        let got = self.receiver.hook.got.lock();
        got.unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn all_in(&self) -> bool {
        let (by_mail, _) = self.received();
        self.filed.iter().all(|id| by_mail.contains_key(id))
    }
}

fn config_text(dir: &Path, store: &Path, sim: &crate::sim::SimHandle, hook: SocketAddr) -> String {
    format!(
        r#"{exchange}
[store]
path = "{store}"

[sink]
kind = "webhook"
url = "http://{hook}/hook"
secret_file = "{secret}"
timeout_secs = 5

[cadence]
busy_secs = 2
normal_secs = 5
quiet_secs = 10

[admin]
listen = "127.0.0.1:0"
"#,
        exchange = bench::exchange_text(dir, sim, crate::config::Api::Ews),
        store = store.display(),
        secret = dir.join("hook.secret").display(),
    )
}

/// Runs the soak; `say` hears progress. The agent binary is `agent`.
pub async fn soak(
    o: Options,
    agent: &Path,
    command: String,
    say: impl Fn(&str),
) -> Result<Report, Error> {
    let dir = BenchDir::new()?;
    let sim = Simulator::start(SimOptions::default()).await?;
    let c = sim.control();
    bench::setup(&c, o.mailboxes, o.folders)?;
    super::write_secret(&dir.path().join("svc.pw"), "bench-pw")?;
    let hook_secret = format!("soak-{}", fastrand::u64(..));
    super::write_secret(&dir.path().join("hook.secret"), &hook_secret)?;
    let mut report = Report::default();
    let disk = match o.disk_full {
        true => Disk::mount(&dir.path().join("disk"))
            .map_err(|why| report.disk_full_unavailable = Some(why))
            .ok(),
        false => None,
    };
    let store = match &disk {
        Some(d) => d.mount.join("store"),
        None => dir.path().join("store"),
    };
    let receiver = Receiver::start(&hook_secret).await?;
    let config = dir.path().join("foldertrack.toml");
    let text = config_text(dir.path(), &store, &sim, receiver.addr)
        + &bench::mailboxes_text(o.mailboxes, o.folders);
    std::fs::write(&config, text).map_err(|e| bench::io(&config, e))?;
    report.non_default_settings = crate::config::Config::load(&config)?.non_defaults();
    let mut run = Run {
        agent: Agent {
            bin: agent.to_owned(),
            config,
            log: dir.path().join("agent.log"),
            child: None,
            last_start: None,
        },
        o,
        c,
        receiver,
        disk,
        memory: Memory::default(),
        report,
        rng: fastrand::Rng::new(),
        filed: HashSet::new(),
        round: Vec::new(),
        outage_until: None,
        full_until: None,
    };
    let result = drive(&mut run, &store, &say).await;
    run.agent.signal("-TERM");
    sim.shutdown().await;
    result?;
    let mut report = std::mem::take(&mut run.report);
    run.memory.fill_report(&mut report);
    let (by_mail, repeats) = run.received();
    report.filed = run.filed.len();
    report.delivered = run
        .filed
        .iter()
        .filter(|m| by_mail.contains_key(*m))
        .count();
    report.lost = report.filed - report.delivered;
    if report.lost > 0 {
        report.missing = run
            .filed
            .iter()
            .filter(|m| !by_mail.contains_key(*m))
            .cloned()
            .collect();
        report.agent_log = bench::keep_log(&run.agent.log, "soak");
    }
    report.duplicated = by_mail.values().filter(|keys| keys.len() > 1).count();
    report.redelivered = repeats;
    report.bad_signatures = run.receiver.hook.bad_signatures.load(Ordering::Relaxed);
    report.machine = Machine::here();
    report.command = command;
    report.options = Some(run.o.clone());
    Ok(report)
}

/// Starts the agent, waits for its baselines, files mail under chaos, then lets it settle.
async fn drive(run: &mut Run, store: &Path, say: &impl Fn(&str)) -> Result<(), Error> {
    run.agent.start(&mut run.memory)?;
    let admin = bench::admin_client(&store.with_extension("admin")).await?;
    bench::baselines(&admin, Instant::now()).await?;
    say(&format!(
        "baselines done; filing {}/s for {} s with trouble every {} s",
        run.o.rate, run.o.seconds, run.o.chaos_every
    ));
    let start = Instant::now();
    let length = Duration::from_secs(run.o.seconds);
    let mut next_chaos = start + run.span();
    let mut next_sample = start;
    let mut n = 0usize;
    while start.elapsed() < length {
        let due = (start.elapsed().as_secs_f64() * run.o.rate) as usize;
        while n < due {
            run.file_one(n)?;
            n += 1;
        }
        if Instant::now() >= next_chaos {
            let kills = start.elapsed() < length / 2;
            run.chaos(kills)?;
            next_chaos = Instant::now() + run.span();
        }
        run.heal(false).await?;
        run.supervise()?;
        if Instant::now() >= next_sample {
            if let Some(pid) = run.agent.pid() {
                run.memory.sample(pid);
            }
            next_sample += Duration::from_secs(5);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    say(&format!(
        "{n} mails filed; the trouble stops, waiting for the last ones"
    ));
    run.c.clear_faults();
    run.heal(true).await?;
    let settle = Instant::now();
    while !run.all_in() && settle.elapsed() < Duration::from_secs(run.o.settle) {
        run.supervise()?;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    run.report.settle_seconds = settle.elapsed().as_secs_f64();
    if let Some(pid) = run.agent.pid() {
        run.memory.sample(pid);
    }
    Ok(())
}

/// The short table.
pub fn table(r: &Report) -> String {
    let mut out = String::new();
    let mut row = |k: &str, v: String| out += &format!("{k:<38} {v}\n");
    if let Some(o) = &r.options {
        row(
            "run",
            format!(
                "{} s, {} mailboxes × {} folders, {} mails/s, trouble every {} s",
                o.seconds, o.mailboxes, o.folders, o.rate, o.chaos_every
            ),
        );
    }
    row(
        "filed / delivered",
        format!("{} / {}", r.filed, r.delivered),
    );
    row(
        "lost / duplicated",
        format!("{} / {}", r.lost, r.duplicated),
    );
    if let Some(log) = &r.agent_log {
        row("missing (agent log kept)", bench::missing(&r.missing, log));
    }
    row(
        "redelivered (same event id)",
        format!("{} (bad signatures: {})", r.redelivered, r.bad_signatures),
    );
    let faults: usize = r.exchange_faults.values().sum();
    let kinds: Vec<String> = r
        .exchange_faults
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    row(
        "Exchange faults",
        format!("{faults} ({})", kinds.join(", ")),
    );
    row("sink outages", r.sink_outages.to_string());
    row(
        "SIGKILL restarts / exits on its own",
        format!("{} / {}", r.kills, r.agent_exits),
    );
    row(
        "disk full",
        match &r.disk_full_unavailable {
            Some(why) => format!("not run: {why}"),
            None => r.disk_fulls.to_string(),
        },
    );
    row(
        "settled after the trouble in",
        format!("{:.1} s", r.settle_seconds),
    );
    row(
        "RSS first / last / peak",
        format!(
            "{:.1} / {:.1} / {:.1} MiB",
            r.rss_first_mib, r.rss_last_mib, r.rss_peak_mib
        ),
    );
    let l = &r.longest_life;
    row(
        "longest life: RSS first / last / peak",
        format!(
            "{:.1} / {:.1} / {:.1} MiB over {:.1} min",
            l.first_mib, l.last_mib, l.peak_mib, l.minutes
        ),
    );
    row(
        "machine",
        format!(
            "{} cores, {:.0} GiB, {}",
            r.machine.cores, r.machine.memory_gib, r.machine.date
        ),
    );
    row(
        "settings changed from the defaults",
        r.non_default_settings.join("; "),
    );
    row("command", r.command.clone());
    out
}
