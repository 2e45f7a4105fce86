//! `foldertrack demo`: with no config and no server, the built-in simulator on loopback, two
//! mailboxes with three mapped folders, the agent on a cadence of seconds (OAuth app-only, as
//! against Exchange Online), and a script of people filing mail: drags into tracked folders, a
//! mail filed by both, a move between mapped folders, a move out, a throttling episode and a
//! track-now. Shows what gets tracked as it happens and ends with a summary.

use crate::app;
use crate::config::Config;
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
    pub ews_calls: u64,
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

fn config_text(sim: &SimHandle, files: &Files, secret_file: &Path) -> String {
    format!(
        r#"# Written by `foldertrack demo`: the agent against the built-in simulator.
log_subjects = true

[exchange]
url = "{url}"
auth = {{ kind = "oauth", tenant_id = "demo", client_id = "foldertrack-demo", client_secret_file = "{secret}", token_url = "{base}/demo/oauth2/v2.0/token" }}

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
        url = sim.ews_url(),
        base = sim.ews_url().split("/EWS").next().unwrap_or_default(),
        secret = secret_file.display(),
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

/// Runs the demo in `dir`. With `keep`, leaves the simulator and the agent running until
/// `stop` is cancelled, after printing how to reach them.
pub async fn run(
    dir: &Path,
    keep: bool,
    stop: CancellationToken,
    say: impl Fn(String) + Send + Sync + 'static,
) -> Result<Summary, app::Error> {
    let started = Instant::now();
    let files = Files::new(dir);
    let sim = Simulator::start(SimOptions::default())
        .await
        .map_err(|e| app::Error::Invalid(format!("the simulator did not start: {e}")))?;
    let control = sim.control();
    let secret = format!("demo-secret-{:016x}", fastrand::u64(..));
    let service_password = format!("demo-password-{:016x}", fastrand::u64(..));
    control_setup(&control, &secret, &service_password)?;
    let secret_file = dir.join("client.secret");
    let io = |e: std::io::Error| app::Error::Invalid(format!("{}: {e}", dir.display()));
    std::fs::write(&secret_file, &secret).map_err(io)?;
    std::fs::write(&files.config, config_text(&sim, &files, &secret_file)).map_err(io)?;
    let config = Config::load(&files.config)?;

    say(format!(
        "foldertrack demo: a simulated Exchange on {}, 2 mailboxes, 3 mapped folders",
        sim.addr()
    ));
    say(format!("  config  {}", files.config.display()));
    say(format!("  output  {}", files.output.display()));

    let feed = Arc::new(app::feed(&config)?);
    let store = Arc::new(SledStore::open(&config.store.path)?);
    let shutdown = CancellationToken::new();
    let (_reload, reloads) = tokio::sync::mpsc::unbounded_channel();
    let (admin_tx, admin_rx) = tokio::sync::oneshot::channel();
    let agent = {
        let (config, feed, store, shutdown) = (
            config.clone(),
            feed.clone(),
            store.clone(),
            shutdown.clone(),
        );
        tokio::spawn(async move {
            app::run(config, feed, store, shutdown, reloads, move |addr| {
                let _ = admin_tx.send(addr);
            })
            .await
        })
    };
    let admin = admin_rx
        .await
        .map_err(|_| app::Error::Invalid("the agent did not start".into()))?;
    say(format!("  admin   http://{admin}"));

    let mut script = Script {
        control: control.clone(),
        started,
        say: Box::new(say),
        body_marker: format!("BODY-{:016x}", fastrand::u64(..)),
        moved_in: HashSet::new(),
    };
    let admin_view = wait_for_first_syncs(&admin).await?;
    script.say("first syncs done: the mapped folders are baselined");

    let (tx, mut shown) = tokio::sync::mpsc::unbounded_channel::<TrackingRequest>();
    let printer = {
        let output = files.output.clone();
        let stop = shutdown.clone();
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
        })
    };
    let mut seen: Vec<TrackingRequest> = Vec::new();
    let mut show = |script: &Script, seen: &mut Vec<TrackingRequest>| {
        while let Ok(r) = shown.try_recv() {
            script.say(describe(&r));
            seen.push(r);
        }
    };

    let pause = |ms| tokio::time::sleep(Duration::from_millis(ms));
    script.drag(ALICE, "Quote for the spring order", CONTOSO, None);
    pause(400).await;
    script.drag(ALICE, "Signed framework agreement", CONTOSO, None);
    script.drag(BOB, "Deal room access", DEALS, None);
    pause(1500).await;
    show(&script, &mut seen);
    let both = "<shared-kickoff@customer.example>";
    script.drag(ALICE, "Kick-off meeting notes", CONTOSO, Some(both));
    script.drag(BOB, "Kick-off meeting notes", DEALS, Some(both));
    script.say("  (the same mail filed by alice and bob: one record, two sightings)");
    pause(2500).await;
    show(&script, &mut seen);

    let moving = script.drag(ALICE, "Invoice 2026-114", CONTOSO, None);
    let deadline = Instant::now() + Duration::from_secs(8);
    while seen.len() < 5 && Instant::now() < deadline {
        pause(200).await;
        show(&script, &mut seen);
    }
    script.say("alice moves \"Invoice 2026-114\" from Contoso to Fabrikam");
    let in_fabrikam = control
        .move_message(ALICE, &moving, FABRIKAM)
        .map_err(|e| app::Error::Invalid(e.to_string()))?;
    // The re-link shows before the mail moves on.
    let deadline = Instant::now() + Duration::from_secs(8);
    while !seen.iter().any(|r| r.event == EventKind::Relinked) && Instant::now() < deadline {
        pause(200).await;
        show(&script, &mut seen);
    }
    script.say("alice moves it out, back to her Inbox (recorded, nothing sent)");
    control
        .move_message(ALICE, &in_fabrikam, "Inbox")
        .map_err(|e| app::Error::Invalid(e.to_string()))?;

    script.say("Exchange gets busy: the next call is answered ErrorServerBusy, back off 3 s");
    control.add_fault(FaultRule {
        mailbox: Some(ALICE.into()),
        operation: Some("SyncFolderItems".into()),
        fault: FaultKind::ServerBusyMessage { back_off_ms: 3000 },
        count: Some(1),
        probability: None,
    });
    script.drag(ALICE, "Revised price list", FABRIKAM, None);
    pause(5000).await;
    show(&script, &mut seen);

    script.drag(BOB, "Urgent: contract redline", DEALS, None);
    let asked = Instant::now();
    let answer = admin_view
        .sync_now(BOB)
        .await
        .map_err(app::Error::Invalid)?;
    match answer {
        SyncNow::Done { tracked } => script.say(format!(
            "track-now for bob: synced in {} ms, {tracked} tracking request(s)",
            asked.elapsed().as_millis()
        )),
        SyncNow::Fallback { reason, .. } => script.say(format!(
            "track-now for bob could not run now ({reason}); the next regular sync picks it up"
        )),
        SyncNow::UnknownMailbox => {}
    }

    // Let everything reach the output, then count.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        pause(300).await;
        show(&script, &mut seen);
        let tracked: HashSet<&str> = seen
            .iter()
            .filter(|r| r.event == EventKind::MovedIn)
            .filter_map(|r| r.message.internet_message_id.as_deref())
            .collect();
        if script.moved_in.iter().all(|m| tracked.contains(m.as_str())) || Instant::now() > deadline
        {
            break;
        }
    }
    let undelivered = admin_view.status().await.map_or(0, |s| s.undelivered);
    let mut per_event: HashMap<&str, usize> = HashMap::new();
    let mut per_message: HashMap<&str, usize> = HashMap::new();
    for r in &seen {
        *per_event.entry(&r.event_id).or_default() += 1;
        if r.event == EventKind::MovedIn {
            *per_message.entry(&r.id).or_default() += 1;
        }
    }
    let stats = control.stats();
    let summary = Summary {
        moved_in: script.moved_in.len(),
        tracked: per_message.len(),
        relinked: seen
            .iter()
            .filter(|r| r.event == EventKind::Relinked)
            .count(),
        duplicates: per_event
            .values()
            .chain(per_message.values())
            .map(|n| n - 1)
            .sum(),
        failures: undelivered,
        ews_calls: stats.calls,
        throttled: stats.results.get("ErrorServerBusy").copied().unwrap_or(0),
        seconds: started.elapsed().as_secs_f64(),
        output: files.output.clone(),
    };
    let secrets = serde_json::json!({
        "client_secret": secret,
        "service_password": service_password,
        "tokens": control.tokens(),
        "body_marker": script.body_marker,
    });
    std::fs::write(&files.secrets, secrets.to_string()).map_err(io)?;

    if keep {
        script.say(format!(
            "still running. Try:\n  foldertrack --config {} status\n  foldertrack --config {} sync-now {ALICE}\n  curl http://{admin}/metrics\n  simulator control: {}  (`foldertrack sim --help` lists its commands)\nCtrl-C stops both.",
            files.config.display(),
            files.config.display(),
            sim.control_url()
        ));
        stop.cancelled().await;
    }
    shutdown.cancel();
    let _ = agent.await;
    printer.abort();
    sim.shutdown().await;
    Ok(summary)
}

fn control_setup(control: &SimControl, secret: &str, password: &str) -> Result<(), app::Error> {
    let fail = |e: crate::sim::Error| app::Error::Invalid(format!("simulator setup: {e}"));
    control
        .create_service_account(SERVICE, password)
        .map_err(fail)?;
    control.impersonate_all(SERVICE, true).map_err(fail)?;
    control
        .add_oauth_client("foldertrack-demo", secret, SERVICE)
        .map_err(fail)?;
    for (mailbox, folders) in [(ALICE, &[CONTOSO, FABRIKAM][..]), (BOB, &[DEALS][..])] {
        control.create_mailbox(mailbox).map_err(fail)?;
        for f in folders {
            control.create_folder(mailbox, f).map_err(fail)?;
        }
        control
            .deliver(
                mailbox,
                "Inbox",
                &NewMessage {
                    subject: "Welcome".into(),
                    from: "IT <it@contoso.example>".into(),
                    to: vec![mailbox.into()],
                    ..NewMessage::default()
                },
            )
            .map_err(fail)?;
    }
    Ok(())
}

/// The agent's admin API, reached the way an operator would.
async fn wait_for_first_syncs(admin: &std::net::SocketAddr) -> Result<AdminView, app::Error> {
    let view = AdminView {
        client: crate::admin::AdminClient::new(&admin.to_string(), None)
            .map_err(app::Error::Invalid)?,
    };
    for _ in 0..200 {
        if let Ok(status) = view.client.status().await
            && status.mailboxes.iter().all(|m| m.status.syncs > 0)
        {
            return Ok(view);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(app::Error::Invalid(
        "the agent's first syncs did not finish within 10 s".into(),
    ))
}

struct AdminView {
    client: crate::admin::AdminClient,
}

impl AdminView {
    async fn sync_now(&self, address: &str) -> Result<SyncNow, String> {
        self.client
            .sync_now(address)
            .await
            .map_err(|e| e.to_string())
    }

    async fn status(&self) -> Result<crate::admin::StatusView, String> {
        self.client.status().await.map_err(|e| e.to_string())
    }
}
