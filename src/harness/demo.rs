//! `foldertrack demo`: with no config and no server, the built-in simulator on loopback, two
//! mailboxes with three mapped folders, the agent on a cadence of seconds (OAuth app-only, as
//! against Exchange Online), and a script of people filing mail: drags into tracked folders, a
//! mail filed by both, a move between mapped folders, a move out, a throttling episode and a
//! track-now. Shows what gets tracked as it happens and ends with a summary.

use super::Error;
use crate::admin::client::AdminClient;
use crate::agent::{self, files::AgentFiles};
use crate::config::{Api, Config};
use crate::sim::{FaultKind, FaultRule, NewMessage, SimControl, SimHandle, SimOptions, Simulator};
use crate::store::SledStore;
use crate::tracking::{EventKind, TrackingRequest};
use crate::watch::supervisor::SyncNow;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const ALICE: &str = "alice@contoso.example";
const BOB: &str = "bob@contoso.example";
const SERVICE: &str = "svc-foldertrack@contoso.example";
const CONTOSO: &str = "Inbox/Customers/Contoso";
const FABRIKAM: &str = "Inbox/Customers/Fabrikam";
const DEALS: &str = "Inbox/Deals";

/// How the demo went.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Summary {
    pub moved_in: usize,
    pub tracked: usize,
    pub relinked: usize,
    pub duplicates: usize,
    pub failures: usize,
    /// Calls to the (simulated) Exchange, EWS or Graph.
    pub calls: u64,
    pub throttled: u64,
    pub seconds: f64,
    pub output: PathBuf,
}

impl Summary {
    /// Every mail moved in tracked once, nothing twice, nothing failed.
    pub fn ok(&self) -> bool {
        self.moved_in == self.tracked && self.duplicates == 0 && self.failures == 0
    }
}

/// The demo's files: the config, the sink output, the store; and the throwaway secrets, kept
/// for the check that none of them reaches the logs.
pub struct Files {
    pub dir: PathBuf,
    pub config: PathBuf,
    pub output: PathBuf,
    pub secrets: PathBuf,
}

impl Files {
    fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_owned(),
            config: dir.join("foldertrack.toml"),
            output: dir.join("tracked.jsonl"),
            secrets: dir.join("secrets-for-the-log-check.json"),
        }
    }
}

struct Script {
    control: SimControl,
    started: Instant,
    say: Box<dyn Fn(String) + Send + Sync>,
    body_marker: String,
    moved_in: HashSet<String>,
}

impl Script {
    fn say(&self, line: impl AsRef<str>) {
        (self.say)(format!(
            "[{:5.1}s] {}",
            self.started.elapsed().as_secs_f64(),
            line.as_ref()
        ));
    }

    /// A person drags a new mail from the Inbox into `folder`; returns its new ItemId.
    fn drag(&mut self, who: &str, subject: &str, folder: &str, id: Option<&str>) -> String {
        let mail = NewMessage {
            subject: subject.into(),
            from: "Dana Buyer <dana@customer.example>".into(),
            to: vec![who.into()],
            body: Some(format!("{} {subject}", self.body_marker)),
            internet_message_id: id.map(str::to_owned),
            ..NewMessage::default()
        };
        let delivered = self
            .control
            .deliver(who, "Inbox", &mail)
            .expect("the demo mailboxes exist");
        self.moved_in.insert(delivered.internet_message_id.clone());
        self.say(format!("{} drags \"{subject}\" into {folder}", short(who)));
        self.control
            .move_message(who, &delivered.item_id, folder)
            .expect("the demo folders exist")
    }
}

fn short(address: &str) -> &str {
    address.split('@').next().unwrap_or(address)
}

/// The `[exchange]` section: the demo app's client credentials, over EWS or Graph.
fn exchange_text(sim: &SimHandle, api: Api, secret_file: &Path) -> String {
    let (api, url) = match api {
        Api::Ews => ("ews", sim.ews_url()),
        Api::Graph => ("graph", sim.graph_url()),
    };
    format!(
        r#"[exchange]
api = "{api}"
url = "{url}"
auth = {{ kind = "oauth", tenant_id = "demo", client_id = "foldertrack-demo", client_secret_file = "{secret}", token_url = "{token_url}" }}
"#,
        secret = secret_file.display(),
        token_url = sim.token_url("demo"),
    )
}

fn config_text(sim: &SimHandle, api: Api, files: &Files, secret_file: &Path) -> String {
    format!(
        r#"# Written by `foldertrack demo`: the agent against the built-in simulator.
log_subjects = true

{exchange}
[store]
path = "{store}"

[sink]
kind = "jsonl"
path = "{output}"

[cadence]
busy_secs = 1
normal_secs = 2
quiet_secs = 4

[limits]
mailbox_calls_per_second = 50

[health]
retry_secs = 1
retry_max_secs = 2

[admin]
listen = "127.0.0.1:0"

[[mailbox]]
address = "{ALICE}"
[[mailbox.folder]]
path = "{CONTOSO}"
regarding = {{ entity = "account", id = "4f0c3e1a-0000-4000-8000-00000000c050" }}
[[mailbox.folder]]
path = "{FABRIKAM}"
regarding = {{ entity = "account", id = "4f0c3e1a-0000-4000-8000-0000000fab00" }}

[[mailbox]]
address = "{BOB}"
[[mailbox.folder]]
path = "{DEALS}"
regarding = {{ entity = "opportunity", id = "4f0c3e1a-0000-4000-8000-0000000dea15" }}
"#,
        exchange = exchange_text(sim, api, secret_file),
        store = files.dir.join("store").display(),
        output = files.output.display(),
    )
}

/// Reads the JSONL output from `from` on; returns the new requests and the new offset.
fn read_new(path: &Path, from: usize) -> (Vec<TrackingRequest>, usize) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let Some(new) = text.get(from..) else {
        return (Vec::new(), from);
    };
    let complete = new.rfind('\n').map_or(0, |i| i + 1);
    let requests = new[..complete]
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    (requests, from + complete)
}

fn describe(r: &TrackingRequest) -> String {
    let regarding = r
        .regarding
        .as_ref()
        .map(|g| format!(" → {}", g.entity))
        .unwrap_or_default();
    let what = match r.event {
        EventKind::MovedIn => "tracked ",
        EventKind::Relinked => "re-linked",
    };
    format!(
        "{what} {:<6} {:<26} \"{}\"{regarding}",
        short(&r.mailbox),
        r.folder.path,
        r.message.subject.as_deref().unwrap_or("")
    )
}

/// The demo's running parts: the simulator, the agent, its admin API and the output reader.
struct Stage {
    api: Api,
    sim: SimHandle,
    files: Files,
    admin_addr: std::net::SocketAddr,
    admin: AdminClient,
    /// Written with `--keep`, so `status`, `sync-now` and friends find this agent.
    agent_files: AgentFiles,
    agent: tokio::task::JoinHandle<Result<(), agent::Error>>,
    shutdown: CancellationToken,
    /// Tracking requests as the output file gains them.
    output: tokio::sync::mpsc::UnboundedReceiver<TrackingRequest>,
    seen: Vec<TrackingRequest>,
}

/// Runs the demo in `dir`. With `keep`, leaves the simulator and the agent running until
/// `stop` is cancelled, after printing how to reach them.
pub async fn run(
    dir: &Path,
    api: Api,
    keep: bool,
    stop: CancellationToken,
    say: impl Fn(String) + Send + Sync + 'static,
) -> Result<Summary, Error> {
    let started = Instant::now();
    let secret = format!("demo-secret-{:016x}", fastrand::u64(..));
    let service_password = format!("demo-password-{:016x}", fastrand::u64(..));
    let mut stage = Stage::start(dir, api, &secret, &service_password, &say).await?;
    let mut script = Script {
        control: stage.sim.control(),
        started,
        say: Box::new(say),
        body_marker: format!("BODY-{:016x}", fastrand::u64(..)),
        moved_in: HashSet::new(),
    };
    stage.first_syncs().await?;
    script.say("first syncs done: the mapped folders are baselined");
    play(&mut script, &mut stage).await?;
    stage.settle(&script).await;
    let summary = stage.summary(&script, started).await;
    let secrets = serde_json::json!({
        "client_secret": secret,
        "service_password": service_password,
        "tokens": stage.sim.control().tokens(),
        "body_marker": script.body_marker,
    });
    write(&stage.files.secrets, &secrets.to_string())?;
    if keep {
        stage.agent_files.write(&stage.files.config)?;
        stage.agent_files.admin_listens(stage.admin_addr)?;
        script.say(stage.how_to_try());
        stop.cancelled().await;
        stage.agent_files.remove();
    }
    stage.stop().await;
    Ok(summary)
}

fn write(path: &Path, text: &str) -> Result<(), Error> {
    std::fs::write(path, text).map_err(|source| Error::Io {
        path: path.to_owned(),
        source,
    })
}

impl Stage {
    /// The simulator with the demo's people, the config, and the agent running on it.
    async fn start(
        dir: &Path,
        api: Api,
        secret: &str,
        service_password: &str,
        say: &(impl Fn(String) + Send + Sync),
    ) -> Result<Self, Error> {
        let files = Files::new(dir);
        let sim = Simulator::start(SimOptions::default()).await?;
        control_setup(&sim.control(), secret, service_password)?;
        let secret_file = dir.join("client.secret");
        super::write_secret(&secret_file, secret)?;
        write(&files.config, &config_text(&sim, api, &files, &secret_file))?;
        let config = Config::load(&files.config)?;
        say(format!(
            "foldertrack demo: a simulated Exchange on {}, 2 mailboxes, 3 mapped folders",
            sim.addr()
        ));
        say(format!("  config  {}", files.config.display()));
        say(format!("  output  {}", files.output.display()));
        let feed = Arc::new(agent::feed(&config)?);
        let store_path = config.store.path.clone();
        let store = Arc::new(SledStore::open_for(
            &config.store.path,
            config.mailbox.len(),
        )?);
        let shutdown = CancellationToken::new();
        let (_reload, reloads) = tokio::sync::mpsc::unbounded_channel();
        let (admin_tx, admin_rx) = tokio::sync::oneshot::channel();
        let running = agent::run(config, feed, store, shutdown.clone(), reloads, |addr| {
            let _ = admin_tx.send(addr);
        });
        let agent = tokio::spawn(async move { running.await.map(drop) });
        let admin_addr = admin_rx
            .await
            .map_err(|_| Error::Stalled("the agent did not start".into()))?;
        say(format!("  admin   http://{admin_addr}"));
        let output = follow(files.output.clone(), shutdown.clone());
        Ok(Self {
            api,
            admin: AdminClient::new(&admin_addr.to_string(), None)?,
            agent_files: AgentFiles::beside(&store_path),
            sim,
            files,
            admin_addr,
            agent,
            shutdown,
            output,
            seen: Vec::new(),
        })
    }

    /// Waits for every mailbox's first sync, asked the way an operator would.
    async fn first_syncs(&self) -> Result<(), Error> {
        for _ in 0..200 {
            if let Ok(status) = self.admin.status().await
                && status.mailboxes.iter().all(|m| m.status.syncs > 0)
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(Error::Stalled(
            "the agent's first syncs did not finish within 10 s".into(),
        ))
    }

    /// Prints what reached the output since the last look.
    fn show(&mut self, script: &Script) {
        while let Ok(r) = self.output.try_recv() {
            script.say(describe(&r));
            self.seen.push(r);
        }
    }

    /// Shows output until `done` holds or `within` has passed.
    async fn show_until(
        &mut self,
        script: &Script,
        within: Duration,
        done: impl Fn(&[TrackingRequest]) -> bool,
    ) {
        let deadline = Instant::now() + within;
        loop {
            self.show(script);
            if done(&self.seen) || Instant::now() > deadline {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Lets every mail moved in reach the output (or 20 s pass).
    async fn settle(&mut self, script: &Script) {
        let moved_in = script.moved_in.clone();
        self.show_until(script, Duration::from_secs(20), |seen| {
            let tracked: HashSet<&str> = seen
                .iter()
                .filter(|r| r.event == EventKind::MovedIn)
                .filter_map(|r| r.message.internet_message_id.as_deref())
                .collect();
            moved_in.iter().all(|m| tracked.contains(m.as_str()))
        })
        .await;
    }

    async fn summary(&self, script: &Script, started: Instant) -> Summary {
        let undelivered = self.admin.status().await.map_or(0, |s| s.undelivered);
        let mut per_event: HashMap<&str, usize> = HashMap::new();
        let mut per_message: HashMap<&str, usize> = HashMap::new();
        for r in &self.seen {
            *per_event.entry(&r.event_id).or_default() += 1;
            if r.event == EventKind::MovedIn {
                *per_message.entry(&r.id).or_default() += 1;
            }
        }
        let stats = self.sim.control().stats();
        Summary {
            moved_in: script.moved_in.len(),
            tracked: per_message.len(),
            relinked: self
                .seen
                .iter()
                .filter(|r| r.event == EventKind::Relinked)
                .count(),
            duplicates: per_event
                .values()
                .chain(per_message.values())
                .map(|n| n - 1)
                .sum(),
            failures: undelivered,
            calls: stats.calls,
            throttled: ["ErrorServerBusy", "ApplicationThrottled"]
                .iter()
                .filter_map(|busy| stats.results.get(*busy))
                .sum(),
            seconds: started.elapsed().as_secs_f64(),
            output: self.files.output.clone(),
        }
    }

    /// Commands that work as printed: this very binary (which `cargo run` leaves off PATH),
    /// with this demo's config.
    fn how_to_try(&self) -> String {
        let program = std::env::current_exe()
            .map_or_else(|_| "foldertrack".into(), |p| p.display().to_string());
        let command = format!("{program} --config {}", self.files.config.display());
        format!(
            "still running. Try:\n  {command} status\n  {command} sync-now {ALICE}\n  {command} items\n  curl http://{}/metrics\n  simulator control: {}  (`{program} sim --help` lists its commands)\nCtrl-C stops both.",
            self.admin_addr,
            self.sim.control_url()
        )
    }

    async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.agent.await;
        self.sim.shutdown().await;
    }
}

/// The people's part: drags, a mail filed by both, a move between mapped folders, a move out,
/// a throttling episode and a track-now.
async fn play(script: &mut Script, stage: &mut Stage) -> Result<(), Error> {
    let pause = |ms| tokio::time::sleep(Duration::from_millis(ms));
    let control = stage.sim.control();
    script.drag(ALICE, "Quote for the spring order", CONTOSO, None);
    pause(400).await;
    script.drag(ALICE, "Signed framework agreement", CONTOSO, None);
    script.drag(BOB, "Deal room access", DEALS, None);
    pause(1500).await;
    stage.show(script);
    let both = "<shared-kickoff@customer.example>";
    script.drag(ALICE, "Kick-off meeting notes", CONTOSO, Some(both));
    script.drag(BOB, "Kick-off meeting notes", DEALS, Some(both));
    script.say("  (the same mail filed by alice and bob: one record, two sightings)");
    pause(2500).await;
    stage.show(script);

    let moving = script.drag(ALICE, "Invoice 2026-114", CONTOSO, None);
    stage
        .show_until(script, Duration::from_secs(8), |seen| seen.len() >= 5)
        .await;
    script.say("alice moves \"Invoice 2026-114\" from Contoso to Fabrikam");
    let in_fabrikam = control.move_message(ALICE, &moving, FABRIKAM)?;
    // The re-link shows before the mail moves on.
    stage
        .show_until(script, Duration::from_secs(8), |seen| {
            seen.iter().any(|r| r.event == EventKind::Relinked)
        })
        .await;
    script.say("alice moves it out, back to her Inbox (recorded, nothing sent)");
    control.move_message(ALICE, &in_fabrikam, "Inbox")?;

    let (sync, busy) = match stage.api {
        Api::Ews => ("SyncFolderItems", "ErrorServerBusy, back off 3 s"),
        Api::Graph => ("messages.delta", "429 with Retry-After: 3"),
    };
    script.say(format!(
        "Exchange gets busy: the next call is answered {busy}"
    ));
    control.add_fault(FaultRule {
        mailbox: Some(ALICE.into()),
        operation: Some(sync.into()),
        fault: FaultKind::ServerBusyMessage { back_off_ms: 3000 },
        count: Some(1),
        probability: None,
    });
    script.drag(ALICE, "Revised price list", FABRIKAM, None);
    pause(5000).await;
    stage.show(script);

    script.drag(BOB, "Urgent: contract redline", DEALS, None);
    let asked = Instant::now();
    match stage.admin.sync_now(BOB).await? {
        SyncNow::Done { tracked } => script.say(format!(
            "track-now for bob: synced in {} ms, {tracked} tracking request(s), in the sink",
            asked.elapsed().as_millis()
        )),
        SyncNow::Waiting { message, .. } => script.say(format!("track-now for bob: {message}")),
        SyncNow::Fallback { reason, .. } => script.say(format!(
            "track-now for bob could not run now ({reason}); the next regular sync picks it up"
        )),
        SyncNow::UnknownMailbox => {}
    }
    Ok(())
}

/// Sends every tracking request the output file gains, until `stop`.
fn follow(
    output: PathBuf,
    stop: CancellationToken,
) -> tokio::sync::mpsc::UnboundedReceiver<TrackingRequest> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut offset = 0;
        loop {
            let (new, next) = read_new(&output, offset);
            offset = next;
            for r in new {
                let _ = tx.send(r);
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
    });
    rx
}

fn control_setup(control: &SimControl, secret: &str, password: &str) -> Result<(), Error> {
    control.create_service_account(SERVICE, password)?;
    control.impersonate_all(SERVICE, true)?;
    control.add_oauth_client("foldertrack-demo", secret, SERVICE)?;
    for (mailbox, folders) in [(ALICE, &[CONTOSO, FABRIKAM][..]), (BOB, &[DEALS][..])] {
        control.create_mailbox(mailbox)?;
        for f in folders {
            control.create_folder(mailbox, f)?;
        }
        control.deliver(
            mailbox,
            "Inbox",
            &NewMessage {
                subject: "Welcome".into(),
                from: "IT <it@contoso.example>".into(),
                to: vec![mailbox.into()],
                ..NewMessage::default()
            },
        )?;
    }
    Ok(())
}
