//! Hostile conditions, black box where it matters: the agent binary and its store, sink and
//! admin API under full disks, corrupt and rolled-back stores, malicious servers, empty
//! tokens and absurd settings. Each test names the defect it guards against.

mod common;

use common::*;
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

/// Runs the binary with `--config config`, `args` and extra environment variables; kills it
/// after `within`. Its exit code (-1 when killed) and its stdout followed by its stderr.
fn run_within(
    config: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    within: Duration,
) -> (i32, String) {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_foldertrack"))
        .arg("--config")
        .arg(config)
        .args(args)
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Read while it runs: a full pipe would block the command's output, and the command.
    let stdout = drain(child.stdout.take().unwrap());
    let stderr = drain(child.stderr.take().unwrap());
    let deadline = std::time::Instant::now() + within;
    while child.try_wait().unwrap().is_none() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let status = child.wait().unwrap();
    let text = |t: std::thread::JoinHandle<Vec<u8>>| {
        String::from_utf8_lossy(&t.join().unwrap()).into_owned()
    };
    (status.code().unwrap_or(-1), text(stdout) + &text(stderr))
}

/// Reads a child's pipe to its end on a thread of its own.
fn drain(mut pipe: impl std::io::Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = pipe.read_to_end(&mut out);
        out
    })
}

/// A config whose admin API listens off loopback with the token in `token_file`.
fn exposed_admin(dir: &Path, sim: &foldertrack::sim::SimHandle, token: &str) -> std::path::PathBuf {
    write_secret(&dir.join("admin.token"), token);
    let extra = format!(
        "[admin]\nlisten = \"0.0.0.0:0\"\ntoken_file = \"{}\"\n",
        dir.join("admin.token").display()
    );
    write_config(dir, &sim.ews_url(), &mailboxes(&[(ALICE, &[])]), &extra)
}

/// An empty admin token (a file holding only a newline, or an empty variable) must not turn
/// authentication off: the agent refuses to start and `check-config` fails the line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_or_short_admin_tokens_are_refused_at_start_and_by_check_config() {
    let sim = simulator().await;
    for token in ["\n", "   \n", "short-token"] {
        let dir = tempfile::tempdir().unwrap();
        let config = exposed_admin(dir.path(), &sim, token);
        let (code, out) = run_within(&config, &["run"], &[], Duration::from_secs(5));
        assert_ne!(code, 0, "{token:?}: {out}");
        assert!(out.contains("admin.token"), "{token:?}: {out}");
        let (code, out) = cli(&config, &["check-config", "--offline"]);
        assert_ne!(code, 0, "{token:?}: {out}");
        assert!(
            out.lines()
                .any(|l| l.starts_with("FAIL") && l.contains("admin.token")),
            "{token:?}: {out}"
        );
    }
    // The same through an empty environment variable.
    let dir = tempfile::tempdir().unwrap();
    let extra = "[admin]\nlisten = \"0.0.0.0:0\"\ntoken_env = \"FT_HOSTILE_EMPTY_TOKEN\"\n";
    let config = write_config(
        dir.path(),
        &sim.ews_url(),
        &mailboxes(&[(ALICE, &[])]),
        extra,
    );
    let (code, out) = run_within(
        &config,
        &["run"],
        &[("FT_HOSTILE_EMPTY_TOKEN", "")],
        Duration::from_secs(5),
    );
    assert!(code > 0, "{out}");
    assert!(out.contains("FT_HOSTILE_EMPTY_TOKEN is empty"), "{out}");
}

/// A webhook URL with a secret in its query (`?code=`, as Azure Functions use) and in its
/// userinfo never reaches a log line or an item's reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_in_a_sink_url_are_redacted_in_logs_and_item_reasons() {
    let sim = simulator().await;
    let c = sim.control();
    c.create_folder(ALICE, "Inbox/Customers").unwrap();
    let dir = tempfile::tempdir().unwrap();
    write_secret(&dir.path().join("hook.secret"), "hook-secret-123");
    let url = format!(
        "http://hookuser:HOOKPASS@127.0.0.1:{}/api/hook?code=SECRETCODE&x=1",
        free_port()
    );
    let extra = format!(
        "[sink]\nkind = \"webhook\"\nurl = \"{url}\"\nsecret_file = \"{}\"\n",
        dir.path().join("hook.secret").display()
    );
    let map = mailboxes(&[(ALICE, &[("Inbox/Customers", Some(CONTOSO), "")])]);
    let config = write_config(dir.path(), &sim.ews_url(), &map, &extra);
    assert_eq!(cli(&config, &["once"]).0, 0, "baseline");
    drag(&c, ALICE, "leaky", "Inbox/Customers");
    let (_, once) = cli(&config, &["once"]);
    let (_, items) = cli(&config, &["items", "--json"]);
    assert!(
        items.contains("127.0.0.1") && items.contains("/api/hook"),
        "the reason still says where: {items}"
    );
    for out in [&once, &items] {
        for secret in ["SECRETCODE", "HOOKPASS", "hookuser"] {
            assert!(!out.contains(secret), "{secret} leaked: {out}");
        }
    }
}

/// A malicious server's text stays inside the log line it was logged in: a folder name with
/// a newline, a fault string with a newline and a screen-clearing escape.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_text_cannot_forge_log_lines() {
    let sim = simulator().await;
    let c = sim.control();
    c.create_folder(ALICE, "Inbox/Customers").unwrap();
    c.create_folder(ALICE, "Inbox/Customers/Evil\nERROR forged by a folder")
        .unwrap();
    let faults = std::sync::atomic::AtomicUsize::new(0);
    let ews = proxy::start(
        &sim.ews_url(),
        std::sync::Arc::new(move |operation: &str, body: Vec<u8>| {
            if operation == "SyncFolderItems"
                // The first call of the third pass (two folders per pass).
                && faults.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 4
            {
                return FORGED_FAULT.as_bytes().to_vec();
            }
            body
        }),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let map = mailboxes(&[(
        ALICE,
        &[(
            "Inbox/Customers",
            Some(CONTOSO),
            "include_subfolders = true",
        )],
    )]);
    let config = write_config(dir.path(), &ews, &map, "");
    let (_, mut all) = cli(&config, &["once"]);
    drag(
        &c,
        ALICE,
        "into evil",
        "Inbox/Customers/Evil\nERROR forged by a folder",
    );
    for _ in 0..2 {
        all += &cli(&config, &["once"]).1;
    }
    assert!(all.contains("forged by a folder"), "{all}");
    assert!(all.contains("forged by a fault"), "{all}");
    for line in all.lines() {
        assert!(!line.trim_start().starts_with("ERROR forged"), "{all}");
        assert!(!line.contains('\u{1b}'), "{line:?}");
    }
}

/// A SOAP fault whose text tries to start a log line of its own and clear the screen.
const FORGED_FAULT: &str = "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body><s:Fault><faultcode>s:Server</faultcode><faultstring>boom\nERROR forged by a fault \u{1b}[2J</faultstring></s:Fault></s:Body></s:Envelope>";

/// Invalid UTF-8 in a subject reaches the sink as U+FFFD where the bytes were, and is said in
/// the log with the call it came in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_utf8_from_the_server_is_replaced_and_logged() {
    let sim = simulator().await;
    let c = sim.control();
    c.create_folder(ALICE, "Inbox/Customers").unwrap();
    let ews = proxy::start(
        &sim.ews_url(),
        std::sync::Arc::new(|operation: &str, body: Vec<u8>| {
            if operation != "GetItem" {
                return body;
            }
            let text = String::from_utf8(body).unwrap();
            text.replace("<t:Subject>", "<t:Subject>\u{1}")
                .into_bytes()
                .into_iter()
                .map(|b| if b == 1 { 0xff } else { b })
                .collect()
        }),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let map = mailboxes(&[(ALICE, &[("Inbox/Customers", Some(CONTOSO), "")])]);
    let config = write_config(dir.path(), &ews, &map, "");
    cli(&config, &["once"]);
    drag(&c, ALICE, "Quarterly numbers", "Inbox/Customers");
    let (code, out) = cli(&config, &["once"]);
    assert_eq!(code, 0, "{out}");
    let sent = read_jsonl(&dir.path().join("tracked.jsonl"));
    assert_eq!(
        sent.last().unwrap().message.subject.as_deref(),
        Some("\u{fffd}Quarterly numbers")
    );
    let warning = out
        .lines()
        .find(|l| l.contains("invalid_utf8"))
        .unwrap_or_else(|| panic!("not logged: {out}"));
    assert!(
        warning.contains("GetItem") && warning.contains(ALICE),
        "{warning}"
    );
}

/// An answer far larger than any legitimate one fails that call clearly, before it is read
/// into memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_answer_fails_its_call_without_being_read() {
    let sim = simulator().await;
    sim.control()
        .create_folder(ALICE, "Inbox/Customers")
        .unwrap();
    let padded = std::sync::atomic::AtomicBool::new(false);
    let ews = proxy::start(
        &sim.ews_url(),
        std::sync::Arc::new(move |operation: &str, mut body: Vec<u8>| {
            if operation == "SyncFolderItems"
                && !padded.swap(true, std::sync::atomic::Ordering::SeqCst)
            {
                // Whitespace after the envelope: still a readable answer, just huge.
                body.resize(body.len() + 80 * 1024 * 1024, b' ');
            }
            body
        }),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let map = mailboxes(&[(ALICE, &[("Inbox/Customers", Some(CONTOSO), "")])]);
    let config = write_config(dir.path(), &ews, &map, "");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_foldertrack"))
        .arg("--config")
        .arg(&config)
        .arg("once")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let status = format!("/proc/{}/status", child.id());
    let mut peak_kib = 0u64;
    let reader = std::thread::spawn(move || child.wait_with_output().unwrap());
    while !reader.is_finished() {
        if let Some(hwm) = std::fs::read_to_string(&status).ok().and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        }) {
            peak_kib = peak_kib.max(hwm);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = reader.join().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("max_response_bytes") && text.contains("SyncFolderItems"),
        "{text}"
    );
    assert!(peak_kib < 60 * 1024, "peak RSS {peak_kib} KiB");
}

/// Every number in the config file has a documented range: the schema gives each numeric
/// field a minimum and a maximum, and validation enforces them.
#[test]
fn every_numeric_setting_has_a_documented_range() {
    fn walk(at: &str, v: &serde_json::Value, missing: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(map) => {
                let types: Vec<&str> = match map.get("type") {
                    Some(serde_json::Value::String(t)) => vec![t.as_str()],
                    Some(serde_json::Value::Array(ts)) => {
                        ts.iter().filter_map(|t| t.as_str()).collect()
                    }
                    _ => vec![],
                };
                let numeric = types.iter().any(|t| *t == "integer" || *t == "number");
                if numeric && !(map.contains_key("minimum") && map.contains_key("maximum")) {
                    missing.push(at.to_owned());
                }
                for (k, child) in map {
                    walk(&format!("{at}/{k}"), child, missing);
                }
            }
            serde_json::Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    walk(&format!("{at}/{i}"), child, missing);
                }
            }
            _ => {}
        }
    }
    let (_, text) = foldertrack::schemas()
        .into_iter()
        .find(|(name, _)| *name == "config.v1.json")
        .unwrap();
    let schema: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut missing = Vec::new();
    walk("", &schema, &mut missing);
    assert!(missing.is_empty(), "numbers without a range: {missing:#?}");
}

/// Absurd values are refused with the line they are on (`busy_secs = u64::MAX` used to pass
/// and panic a mailbox task); a missing `exchange.url` names its section and line; a secret
/// file every user can read gets a warning.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_range_values_and_missing_fields_name_their_line() {
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "a-password").unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let exchange = format!(
        "[exchange]\nurl = \"https://mail.example.com/EWS/Exchange.asmx\"\nauth = {{ kind = \"basic\", username = \"u\", password_file = \"{}\" }}\n",
        pw.display()
    );
    let huge = write(
        "huge.toml",
        &format!(
            "{exchange}\n[cadence]\nbusy_secs = 18446744073709551615\nnormal_secs = 18446744073709551615\nquiet_secs = 18446744073709551615\n\n[health]\nretry_max_secs = 18446744073709551615\n"
        ),
    );
    let (code, out) = cli(&huge, &["check-config", "--offline"]);
    assert_ne!(code, 0, "{out}");
    for want in [
        "line 6: cadence.busy_secs: 18446744073709551615 is out of range",
        "line 7: cadence.normal_secs",
        "line 11: health.retry_max_secs",
    ] {
        assert!(out.contains(want), "{want}: {out}");
    }
    let no_url = write(
        "no_url.toml",
        &format!(
            "[store]\npath = \"s\"\n\n[exchange]\nauth = {{ kind = \"basic\", username = \"u\", password_file = \"{}\" }}\n",
            pw.display()
        ),
    );
    let (code, out) = cli(&no_url, &["check-config", "--offline"]);
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains("line 4") && out.contains("[exchange]") && out.contains("`url`"),
        "{out}"
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o644)).unwrap();
    let fine = write("fine.toml", &exchange);
    let (code, out) = cli(&fine, &["check-config", "--offline"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("WARN") && l.contains("readable by every user")),
        "{out}"
    );
}

/// A store whose disk fills (a real I/O error: the agent runs under an `RLIMIT_FSIZE` at the
/// store file's size, with `SIGXFSZ` ignored, so sled's next write that grows the file fails
/// with `EFBIG`) stops the agent with a clear reason and a failure exit, instead of failing
/// every pass forever; the next start, with room again, delivers every mail exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_whose_disk_fills_stops_the_agent_and_the_next_start_loses_nothing() {
    use std::os::unix::process::CommandExt;
    let sim = simulator().await;
    let c = sim.control();
    c.create_folder(ALICE, "Inbox/Customers").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let map = mailboxes(&[(ALICE, &[("Inbox/Customers", Some(CONTOSO), "")])]);
    let extra = "[cadence]\nbusy_secs = 1\nnormal_secs = 1\nquiet_secs = 1\n";
    let config = write_config(dir.path(), &sim.ews_url(), &map, extra);
    assert_eq!(cli(&config, &["once"]).0, 0, "baseline");
    let store_file = dir.path().join("store/db");
    // Room for sled to open (it starts a new segment), not for much mail.
    let limit = std::fs::metadata(&store_file).unwrap().len() + 1024 * 1024;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_foldertrack"));
    // The log goes to a file: a pipe nobody reads while the agent runs fills up and blocks
    // its logging, and with it the agent.
    let log = dir.path().join("agent.log");
    child
        .arg("--config")
        .arg(&config)
        .arg("run")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        child.pre_exec(move || {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let cap = libc::rlimit {
                rlim_cur: limit,
                rlim_max: limit,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &cap) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = child.spawn().unwrap();
    // People keep filing mail until the disk is full.
    let mut subjects = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    while child.try_wait().unwrap().is_none() && std::time::Instant::now() < deadline {
        for _ in 0..10 {
            let subject = format!("filed {}", subjects.len());
            drag(&c, ALICE, &subject, "Inbox/Customers");
            subjects.push(subject);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = child.kill();
    let status = child.wait().unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        status.code().is_some_and(|code| code != 0),
        "still running or killed after 90 s ({status:?}): {text}"
    );
    assert!(
        text.contains("the disk failed") && text.contains("restarts it"),
        "{text}"
    );
    let (code, more) = cli(&config, &["once"]);
    assert_eq!(code, 0, "{more}");
    let mut sent: Vec<String> = read_jsonl(&dir.path().join("tracked.jsonl"))
        .into_iter()
        .filter_map(|r| r.message.subject)
        .collect();
    sent.sort();
    subjects.sort();
    assert_eq!(sent, subjects, "each mail exactly once");
}

/// Alice's Inbox/Customers mapped, and a first `once` that took its baseline: the simulator,
/// the agent's folder and its config.
async fn baselined() -> (
    foldertrack::sim::SimHandle,
    tempfile::TempDir,
    std::path::PathBuf,
) {
    let sim = simulator().await;
    sim.control()
        .create_folder(ALICE, "Inbox/Customers")
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let map = mailboxes(&[(ALICE, &[("Inbox/Customers", Some(CONTOSO), "")])]);
    let config = write_config(dir.path(), &sim.ews_url(), &map, "");
    assert_eq!(cli(&config, &["once"]).0, 0, "baseline");
    (sim, dir, config)
}

/// Copies every file of the store folder `from` into `to`, except the high-water mark.
fn copy_store(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == "delivered.hwm" {
            continue;
        }
        if entry.file_type().unwrap().is_dir() {
            copy_store(&entry.path(), &to.join(&name));
        } else {
            std::fs::copy(entry.path(), to.join(&name)).unwrap();
        }
    }
}

/// A store that went back in time (here an older copy put back, as a restored backup or a
/// disk that lost its last writes would leave it) is refused instead of delivering again what
/// it delivered, with what to do; deleting the high-water mark as told accepts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_went_back_in_time_is_refused_until_accepted() {
    let (sim, dir, config) = baselined().await;
    let c = sim.control();
    let (store, backup) = (dir.path().join("store"), dir.path().join("backup"));
    copy_store(&store, &backup);
    for i in 0..5 {
        drag(&c, ALICE, &format!("filed {i}"), "Inbox/Customers");
    }
    assert_eq!(cli(&config, &["once"]).0, 0);
    assert_eq!(read_jsonl(&dir.path().join("tracked.jsonl")).len(), 5);
    for entry in std::fs::read_dir(&store).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() != "delivered.hwm" {
            let path = entry.path();
            if path.is_dir() {
                std::fs::remove_dir_all(path).unwrap();
            } else {
                std::fs::remove_file(path).unwrap();
            }
        }
    }
    copy_store(&backup, &store);
    let (code, out) = cli(&config, &["once"]);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("went back in time"), "{out}");
    assert!(out.contains("send up to 5 requests again"), "{out}");
    assert!(!out.contains("panicked"), "{out}");
    let mark = store.join("delivered.hwm");
    assert!(out.contains(&mark.display().to_string()), "{out}");
    std::fs::remove_file(&mark).unwrap();
    let (code, out) = cli(&config, &["once"]);
    assert_eq!(code, 0, "accepted: {out}");
}

/// SIGTERM stops the agent within a bounded time even while a sink call hangs (a webhook that
/// takes connections and never answers, with the longest timeout allowed); the request cut off
/// is delivered at the next start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_agent_within_its_grace_while_a_sink_hangs() {
    let sim = simulator().await;
    let c = sim.control();
    c.create_folder(ALICE, "Inbox/Customers").unwrap();
    // Takes connections and keeps them, never answering.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_url = format!("http://{}/hook", silent.local_addr().unwrap());
    let (taken_tx, mut taken) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
            let _ = taken_tx.send(());
        }
    });
    let dir = tempfile::tempdir().unwrap();
    write_secret(&dir.path().join("hook.secret"), "hook-secret-123");
    let sink = |url: &str| {
        format!(
            "[sink]\nkind = \"webhook\"\nurl = \"{url}\"\nsecret_file = \"{}\"\ntimeout_secs = 3600\n",
            dir.path().join("hook.secret").display()
        )
    };
    let map = mailboxes(&[(ALICE, &[("Inbox/Customers", Some(CONTOSO), "")])]);
    let cadence = "[cadence]\nbusy_secs = 1\nnormal_secs = 1\nquiet_secs = 1\n";
    let config = write_config(
        dir.path(),
        &sim.ews_url(),
        &map,
        &format!("{}{cadence}", sink(&silent_url)),
    );
    assert_eq!(cli(&config, &["once"]).0, 0, "baseline");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_foldertrack"))
        .arg("--config")
        .arg(&config)
        .arg("run")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drag(&c, ALICE, "cut off", "Inbox/Customers");
    tokio::time::timeout(Duration::from_secs(30), taken.recv())
        .await
        .expect("the webhook call started");
    let asked = std::time::Instant::now();
    // SAFETY: a signal to the child this test started.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    while child.try_wait().unwrap().is_none() && asked.elapsed() < Duration::from_secs(40) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let took = asked.elapsed();
    assert!(
        took < Duration::from_secs(25),
        "took {took:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The next start, with a receiver that answers, delivers the request cut off.
    let hook = receivers::Webhook::start().await;
    let config = write_config(
        dir.path(),
        &sim.ews_url(),
        &map,
        &format!("{}{cadence}", hook.sink_toml(dir.path())),
    );
    let (code, out) = cli(&config, &["once"]);
    assert_eq!(code, 0, "{out}");
    let subjects: Vec<Value> = hook
        .accepted()
        .iter()
        .map(|r| r["message"]["subject"].clone())
        .collect();
    assert_eq!(subjects, [Value::from("cut off")], "{out}");
}

/// Replaces the store folder `store` with a copy of `good`.
fn restore_store(good: &Path, store: &Path) {
    let _ = std::fs::remove_dir_all(store);
    copy_store(good, store);
    std::fs::copy(good.join("delivered.hwm"), store.join("delivered.hwm")).unwrap();
}

/// Garbled bytes in sled's file (a bad sector, a stray write) never crash the agent or
/// `compact` with a panic: each start either runs or stops with one line naming the store and
/// what to do; and nothing tracked is lost or sent twice by a store it accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_with_garbled_bytes_is_refused_in_one_line_never_with_a_panic() {
    let (sim, dir, config) = baselined().await;
    let c = sim.control();
    for i in 0..5 {
        drag(&c, ALICE, &format!("filed {i}"), "Inbox/Customers");
    }
    assert_eq!(cli(&config, &["once"]).0, 0);
    let (store, good) = (dir.path().join("store"), dir.path().join("good"));
    restore_store(&store, &good);
    let size = std::fs::metadata(store.join("db")).unwrap().len() as usize;
    let mut rng = fastrand::Rng::with_seed(19);
    let mut refused = 0;
    for round in 0..12 {
        for command in [&["once"][..], &["compact"][..]] {
            restore_store(&good, &store);
            let mut bytes = std::fs::read(store.join("db")).unwrap();
            // A few runs of garbage, anywhere in the file (round 0: the header).
            for _ in 0..3 {
                let at = if round == 0 { 0 } else { rng.usize(..size) };
                for b in bytes.iter_mut().skip(at).take(64) {
                    *b = rng.u8(..);
                }
            }
            std::fs::write(store.join("db"), &bytes).unwrap();
            let (code, out) = cli(&config, command);
            assert!(
                !out.contains("panicked"),
                "{command:?} round {round}: {out}"
            );
            if code != 0 {
                refused += 1;
                let error: Vec<&str> = out.lines().filter(|l| l.starts_with("error")).collect();
                assert_eq!(error.len(), 1, "{command:?} round {round}: {out}");
                assert!(error[0].contains(&store.display().to_string()), "{out}");
                assert!(!error[0].contains("backtrace"), "{out}");
            }
        }
    }
    assert!(refused > 0, "no garbling was noticed");
    let sent = read_jsonl(&dir.path().join("tracked.jsonl"));
    assert_eq!(sent.len(), 5, "nothing sent again by an accepted store");
}

/// Mounts a tmpfs of `mib` MiB at `at`; false when this process may not (not root).
fn mount_tmpfs(at: &Path, mib: u32) -> bool {
    std::fs::create_dir_all(at).unwrap();
    std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
        .arg(at)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Fills the file system holding `dir` with one file; returns it.
fn fill(dir: &Path) -> std::path::PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    while f.write_all(&[0u8; 1 << 16]).is_ok() {}
    path
}

/// A start while the store's disk is full (a service manager restarting the agent that the full
/// disk stopped) is refused before sled writes anything, saying so: `bench soak` saw such a
/// start leave a store every later start read as corrupt (not reproduced by this simpler
/// sequence, which checks the refusal). Once there is room again the store opens and nothing
/// is lost. Needs a tmpfs, so root; skipped (and says so) without.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_on_a_full_disk_is_refused_without_touching_the_store() {
    let sim = simulator().await;
    let c = sim.control();
    c.create_folder(ALICE, "Inbox/Customers").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    if !mount_tmpfs(&store, 24) {
        eprintln!("skipped: cannot mount a tmpfs here (needs root)");
        return;
    }
    let map = mailboxes(&[(ALICE, &[("Inbox/Customers", Some(CONTOSO), "")])]);
    let config = write_config(dir.path(), &sim.ews_url(), &map, "");
    let (code, out) = cli(&config, &["once"]);
    for i in 0..3 {
        drag(&c, ALICE, &format!("filed {i}"), "Inbox/Customers");
    }
    let filler = fill(&store);
    let mut refusals = Vec::new();
    for _ in 0..5 {
        refusals.push(cli(&config, &["once"]));
    }
    std::fs::remove_file(&filler).unwrap();
    let (after, after_out) = cli(&config, &["once"]);
    let sent = read_jsonl(&dir.path().join("tracked.jsonl"));
    let _ = std::process::Command::new("umount").arg(&store).status();
    assert_eq!(code, 0, "baseline: {out}");
    for (code, out) in &refusals {
        assert_ne!(*code, 0, "{out}");
        assert!(out.contains("No space left on its disk"), "{out}");
        assert!(
            out.contains("free space on its disk and start again"),
            "{out}"
        );
    }
    assert_eq!(after, 0, "with room again: {after_out}");
    assert_eq!(sent.len(), 3, "{after_out}");
}
