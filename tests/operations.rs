//! What an administrator runs, against the simulator: `foldertrack run` with its admin API
//! (status, track-now, metrics, health, the token), `status`, `sync-now`, `items`, `reload`,
//! `folders` and `check-config`, and a clean stop on SIGTERM.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const TOKEN: &str = "admin-token-for-tests";

struct Running {
    child: Child,
    admin: String,
    dir: PathBuf,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `foldertrack run` and waits for its admin API.
async fn run(config: &Path, dir: &Path) -> Running {
    let child = Command::new(env!("CARGO_BIN_EXE_foldertrack"))
        .arg("--config")
        .arg(config)
        .arg("run")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let admin_file = dir.join("store.admin");
    assert!(eventually(Duration::from_secs(10), || admin_file.exists()).await);
    let admin = std::fs::read_to_string(&admin_file).unwrap();
    Running {
        child,
        admin: format!("http://{}", admin.trim()),
        dir: dir.to_owned(),
    }
}

/// Notifications off: these tests drive syncs by track-now and must find the mail themselves.
fn config_with(dir: &Path, sim: &foldertrack::sim::SimHandle, mappings: &str) -> PathBuf {
    write_secret(&dir.join("admin.token"), TOKEN);
    let extra = format!(
        "[cadence]\nbusy_secs = 60\nnormal_secs = 60\nquiet_secs = 60\n[notifications]\nmode = \"off\"\n[admin]\nlisten = \"127.0.0.1:0\"\ntoken_file = \"{}\"\n",
        dir.join("admin.token").display()
    );
    write_config(dir, &sim.ews_url(), mappings, &extra)
}

/// Each sample line is `name{labels} value`; HELP and TYPE come before a family's samples.
fn assert_prometheus(text: &str) {
    let mut typed = std::collections::HashSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split(' ');
            let name = parts.next().unwrap();
            assert!(
                matches!(parts.next(), Some("counter" | "gauge" | "histogram")),
                "{line}"
            );
            typed.insert(name.to_owned());
            continue;
        }
        if line.starts_with("# HELP ") || line.is_empty() {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
        assert!(value.parse::<f64>().is_ok(), "value of {line}");
        let name = series.split('{').next().unwrap();
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "{line}"
        );
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|f| typed.contains(*f)))
            .unwrap_or(name);
        assert!(typed.contains(family), "no TYPE before {line}");
        if let Some(labels) = series.strip_prefix(name)
            && !labels.is_empty()
        {
            assert!(labels.starts_with('{') && labels.ends_with('}'), "{line}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_status_track_now_metrics_and_reload_of_a_running_agent() {
    let sim = simulator().await;
    let c = sim.control();
    c.create_folder(ALICE, "Inbox/Customers").unwrap();
    c.create_folder(ALICE, "Inbox/Later").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let one = mailboxes(&[(ALICE, &[("Inbox/Customers", Some(CONTOSO), "")])]);
    let config = config_with(dir.path(), &sim, &one);
    let agent = run(&config, dir.path()).await;
    let http = foldertrack::http::client(&Default::default()).unwrap();
    let get = |path: &str| {
        let http = http.clone();
        let url = format!("{}{path}", agent.admin);
        async move { http.get(url).send().await.unwrap() }
    };
    assert_eq!(get("/healthz").await.status(), 200);
    let mut ready = false;
    for _ in 0..100 {
        if get("/readyz").await.status() == 200 {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "ready once every mailbox had its first sync");

    // Track-now from the command line: tracked within 2 seconds of the request.
    drag(&c, ALICE, "track me", "Inbox/Customers");
    let asked = Instant::now();
    let (code, out) = cli(&config, &["sync-now", ALICE]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("1 tracking request"), "{out}");
    assert!(asked.elapsed() < Duration::from_secs(2));
    // A state-changing call without the token is refused.
    let url = format!("{}/v1/mailboxes/{ALICE}/sync", agent.admin);
    assert_eq!(http.post(&url).send().await.unwrap().status(), 401);
    let ok = http.post(&url).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(ok.status(), 200);

    let (code, table) = cli(&config, &["status"]);
    assert_eq!(code, 0, "{table}");
    assert!(
        table.contains(ALICE) && table.contains("healthy"),
        "{table}"
    );
    assert!(
        table.contains("Inbox/Customers") && table.contains("active"),
        "{table}"
    );
    let (_, json) = cli(&config, &["status", "--json"]);
    let status: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(status["mailboxes"][0]["address"], ALICE);
    assert_eq!(status["mailboxes"][0]["tracked"], 1);
    assert_eq!(
        status["mailboxes"][0]["mappings"][0]["state"]["state"],
        "active"
    );
    // With a token configured, reads under /v1 need it too: they name mailboxes and reasons.
    let one = format!("{}/v1/mailboxes/{ALICE}", agent.admin);
    assert_eq!(get(&format!("/v1/mailboxes/{ALICE}")).await.status(), 401);
    assert_eq!(get("/v1/items").await.status(), 401);
    let mailbox: serde_json::Value = http
        .get(&one)
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(mailbox["health"]["state"], "healthy");
    let nobody = format!("{}/v1/mailboxes/nobody@example.com", agent.admin);
    let answer = http.get(&nobody).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(answer.status(), 404);

    // Items and retry go through the API while the agent holds the store.
    let (code, items) = cli(&config, &["items"]);
    assert_eq!(code, 0, "{items}");
    assert!(items.contains("no items"), "{items}");
    let (code, retry) = cli(&config, &["retry", "--dry-run"]);
    assert_eq!(code, 0, "{retry}");
    assert!(retry.contains("would re-queue 0 item"), "{retry}");

    // Track-now answers once the request is in the sink; the drain counts it right after.
    let mut metrics = String::new();
    assert!(
        eventually_async(Duration::from_secs(5), async || {
            metrics = get("/metrics").await.text().await.unwrap();
            metrics.contains("foldertrack_detected_to_delivered_seconds_count 1")
        })
        .await,
        "{metrics}"
    );
    assert_prometheus(&metrics);
    for family in [
        "foldertrack_ews_calls_total{operation=\"SyncFolderItems\",outcome=\"NoError\"}",
        "foldertrack_tracking_requests_total{outcome=\"delivered\"} 1",
        "foldertrack_mailboxes{health=\"healthy\"} 1",
        "foldertrack_mailboxes_woken{by=\"polled\"} 1",
        "foldertrack_outbox 0",
        "foldertrack_sync_seconds_bucket",
        "foldertrack_gate_wait_seconds_count",
        "foldertrack_detected_to_delivered_seconds_count 1",
    ] {
        assert!(metrics.contains(family), "{family} missing from\n{metrics}");
    }

    // Reload: a mapping added to the file is watched without a restart (R9).
    let two = mailboxes(&[(
        ALICE,
        &[
            ("Inbox/Customers", Some(CONTOSO), ""),
            ("Inbox/Later", None, ""),
        ],
    )]);
    config_with(dir.path(), &sim, &two);
    let (code, plan) = cli(&config, &["reload", "--dry-run"]);
    assert_eq!(code, 0, "{plan}");
    assert!(plan.contains("Inbox/Later: mapping added"), "{plan}");
    let (code, out) = cli(&config, &["reload"]);
    assert_eq!(code, 0, "{out}");
    let (_, plan) = cli(&config, &["reload", "--dry-run"]);
    assert!(
        eventually(Duration::from_secs(5), || {
            cli(&config, &["reload", "--dry-run"])
                .1
                .contains("no mailbox or mapping changes")
        })
        .await,
        "{plan}"
    );
    // The pass that lists the new mapping baselines it; a track-now ends after that pass, so
    // the mail dragged next is new to the folder, not part of its baseline.
    assert!(
        eventually(Duration::from_secs(5), || {
            let (_, json) = cli(&config, &["status", "--json"]);
            let status: serde_json::Value = serde_json::from_str(&json).unwrap();
            status["mailboxes"][0]["mappings"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["name"] == "Inbox/Later")
        })
        .await
    );
    let (code, out) = cli(&config, &["sync-now", ALICE]);
    assert_eq!(code, 0, "{out}");
    drag(&c, ALICE, "into the new mapping", "Inbox/Later");
    let (_, out) = cli(&config, &["sync-now", ALICE]);
    assert!(out.contains("1 tracking request"), "{out}");
    let lines = read_jsonl(&dir.path().join("tracked.jsonl"));
    assert_eq!(lines.last().unwrap().folder.path, "Inbox/Later");
    assert_eq!(lines.len(), 2);

    // SIGTERM: a clean stop that leaves no agent files behind.
    let mut agent = agent;
    let pid = agent.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = agent.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(!agent.dir.join("store.pid").exists());
    // With no agent running, status tells what the store knows, marked as such.
    let (code, out) = cli(&config, &["status"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("no agent runs on store"), "{out}");
    assert!(out.contains("no live health"), "{out}");
    let later = out
        .lines()
        .find(|l| l.contains("Inbox/Later"))
        .unwrap_or_else(|| panic!("the new mapping is listed: {out}"));
    assert!(
        later.contains("active") && later.contains("tracked 1"),
        "{later}"
    );
    assert!(!out.contains("healthy"), "no live health is made up: {out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn folders_prints_the_tree_with_ids_and_marks_the_mapped_ones() {
    let sim = simulator().await;
    let c = sim.control();
    let contoso = c.create_folder(ALICE, "Inbox/Customers/Contoso").unwrap();
    c.create_folder(ALICE, "Archive").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &sim.ews_url(),
        &mailboxes(&[(ALICE, &[("Inbox/Customers/Contoso", Some(CONTOSO), "")])]),
        "",
    );
    let (code, out) = cli(&config, &["folders", ALICE]);
    assert_eq!(code, 0, "{out}");
    let line = out.lines().find(|l| l.contains("Contoso")).unwrap();
    assert!(
        line.starts_with("    Contoso"),
        "indented under Customers: {out}"
    );
    assert!(
        line.contains(&contoso) && line.contains("[mapped: Inbox/Customers/Contoso]"),
        "{line}"
    );
    assert!(out.lines().any(|l| l.starts_with("Inbox ")), "{out}");
    // Mail folders only: no calendar, contacts, tasks, their hidden helpers, nor anything
    // outside the top of the information store.
    for not_mail in [
        "Calendar",
        "Contacts",
        "Recipient Cache",
        "Tasks",
        "Notes",
        "Journal",
    ] {
        assert!(!out.contains(not_mail), "{not_mail}: {out}");
    }
    for system in [
        "Conversation Action Settings",
        "Recoverable Items",
        "Finder",
        "Top of",
    ] {
        assert!(!out.contains(system), "{system}: {out}");
    }
    assert!(out.lines().any(|l| l.starts_with("Sync Issues ")), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("Archive ") && !l.contains("mapped")),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_config_checks_every_mailbox_and_folder_against_the_server() {
    let sim = simulator().await;
    let c = sim.control();
    c.create_folder(ALICE, "Inbox/Customers").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let good = mailboxes(&[(ALICE, &[("Inbox/Customers", None, "")])]);
    let config = write_config(dir.path(), &sim.ews_url(), &good, "");
    let (code, out) = cli(&config, &["check-config"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&format!("ok   {ALICE}: signed in")), "{out}");
    assert!(
        out.contains(&format!("ok   {ALICE} Inbox/Customers: found")),
        "{out}"
    );

    let bad = mailboxes(&[
        (ALICE, &[("Inbox/Custmers", None, "")]),
        (BOB, &[("Inbox", None, "")]),
    ]);
    c.impersonate_all(SVC, false).unwrap();
    c.grant_impersonation(SVC, ALICE).unwrap();
    let config = write_config(dir.path(), &sim.ews_url(), &bad, "");
    let (code, out) = cli(&config, &["check-config"]);
    assert_eq!(code, 1, "{out}");
    let fail: Vec<&str> = out.lines().filter(|l| l.starts_with("FAIL")).collect();
    assert_eq!(fail.len(), 2, "{out}");
    assert!(
        fail[0].contains("Inbox/Custmers: no such folder")
            && fail[0].contains("foldertrack folders"),
        "{out}"
    );
    assert!(
        fail[1].contains(BOB)
            && fail[1].contains("ErrorImpersonateUserDenied")
            && fail[1].contains(
                "fix: check the service account's credentials and grant it ApplicationImpersonation"
            ),
        "the denial comes with its fix: {out}"
    );
}

/// An Exchange whose certificate no public CA signed: check-config names the TLS problem and
/// the setting that fixes it, and with that setting it passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_config_names_an_untrusted_certificate_and_the_setting_that_trusts_it() {
    let sim = simulator().await;
    sim.control()
        .create_folder(ALICE, "Inbox/Customers")
        .unwrap();
    let https = common::tls::front(&sim.ews_url()).await;
    let dir = tempfile::tempdir().unwrap();
    let alice = mailboxes(&[(ALICE, &[("Inbox/Customers", None, "")])]);
    let config = write_config(dir.path(), &https, &alice, "");
    let (code, out) = cli(&config, &["check-config"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("TLS with the server failed: invalid peer certificate")
            && out.contains("exchange.extra_root_certs"),
        "{out}"
    );
    assert!(
        !out.contains("cannot connect"),
        "not called unreachable: {out}"
    );

    let text = std::fs::read_to_string(&config).unwrap().replacen(
        "[exchange]\n",
        &format!(
            "[exchange]\nextra_root_certs = \"{}\"\n",
            common::tls::certificate().display()
        ),
        1,
    );
    std::fs::write(&config, text).unwrap();
    let (code, out) = cli(&config, &["check-config"]);
    assert_eq!(code, 0, "trusted with extra_root_certs: {out}");
    assert!(out.contains(&format!("ok   {ALICE}: signed in")), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_config_over_graph_reads_the_apps_permission_from_its_token() {
    let sim = simulator().await;
    let c = sim.control();
    c.create_folder(ALICE, "Inbox/Customers").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let list = mailboxes(&[(ALICE, &[("Inbox/Customers", None, "")])]);
    let config = write_config_on(Api::Graph, dir.path(), &sim, &list, "");
    let check = |roles: &[&str]| {
        c.set_app_roles(APP_ID, roles).unwrap();
        cli(&config, &["check-config"])
    };

    let (code, out) = check(&["Mail.ReadWrite"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("ok   Graph: the app has Mail.ReadWrite"),
        "{out}"
    );
    assert!(out.contains(&format!("ok   {ALICE}: signed in")), "{out}");

    // Mail.Read only: the folders are read, but write-back would fail; the line says so.
    let (code, out) = check(&["Mail.Read"]);
    assert_eq!(code, 1, "{out}");
    let fail: Vec<&str> = out.lines().filter(|l| l.starts_with("FAIL")).collect();
    assert_eq!(fail.len(), 1, "{out}");
    for words in [
        "only Mail.Read",
        "writing the categories back will fail",
        "Mail.ReadWrite application permission",
        "application access policy",
        "writeback.enabled = false",
    ] {
        assert!(fail[0].contains(words), "lacks {words:?}: {out}");
    }
    assert!(out.contains(&format!("ok   {ALICE}: signed in")), "{out}");

    // No Mail permission at all: a warning with the fix, and the mailbox is refused.
    let (code, out) = check(&[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("WARN Graph: the app's token carries neither Mail.ReadWrite nor Mail.Read"),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with(&format!("FAIL {ALICE}")) && l.contains("403")),
        "{out}"
    );
}
