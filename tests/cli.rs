//! The binary's behaviour on bad input: one clear line, the right exit code, never a panic.

use std::process::{Command, Output};

fn foldertrack(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_foldertrack"))
        .args(args)
        .env_remove("FOLDERTRACK_CONFIG")
        .output()
        .expect("the binary runs")
}

fn fixture(name: &str) -> String {
    format!("{}/fixtures/config/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn check_config_names_the_mailbox_folder_and_field_and_exits_1() {
    let out = foldertrack(&[
        "--config",
        &fixture("reject_folder_outside_inbox.toml"),
        "check-config",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("FAIL line 7: mailbox alice@example.com, folder \"Archive/Contoso\", path: folder paths must start at Inbox"),
        "{stdout}"
    );
    assert!(!text(&out.stderr).contains("panicked"));
}

#[test]
fn check_config_reports_a_missing_secret_variable() {
    let out = Command::new(env!("CARGO_BIN_EXE_foldertrack"))
        .args(["--config", &fixture("minimal.toml"), "check-config"])
        .env_remove("FOLDERTRACK_EWS_PASSWORD")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("ok   "), "{stdout}");
    assert!(
        stdout.contains("FAIL exchange.auth.password_env: environment variable FOLDERTRACK_EWS_PASSWORD is not set"),
        "{stdout}"
    );
    let ok = Command::new(env!("CARGO_BIN_EXE_foldertrack"))
        .args([
            "--config",
            &fixture("minimal.toml"),
            "check-config",
            "--offline",
        ])
        .env("FOLDERTRACK_EWS_PASSWORD", "not-logged")
        .output()
        .unwrap();
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok.stdout));
    assert!(!text(&ok.stdout).contains("not-logged"));
}

#[test]
fn a_missing_config_file_says_once_why_and_how_to_point_at_one() {
    let out = foldertrack(&["--config", "/nonexistent/foldertrack.toml", "once"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert_eq!(
        stderr.matches("No such file or directory").count(),
        1,
        "the OS error once: {stderr}"
    );
    assert!(
        stderr.contains("create it or pass --config PATH"),
        "{stderr}"
    );
}

#[test]
fn a_missing_config_file_says_how_to_point_at_one() {
    let out = foldertrack(&["--config", "/nonexistent/foldertrack.toml", "check-config"]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("cannot read the config file") && stdout.contains("--config"),
        "{stdout}"
    );
}

#[test]
fn malformed_xml_names_the_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.xml");
    std::fs::write(
        &path,
        "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\">\n<s:Body>\n</s:Envelope>",
    )
    .unwrap();
    let out = foldertrack(&["ews", "decode", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("bad.xml: line 3"), "{stderr}");
}

#[test]
fn unknown_commands_and_bad_arguments_exit_2_with_one_line_that_says_what_to_fix() {
    assert_eq!(foldertrack(&["frobnicate"]).status.code(), Some(2));
    let out = foldertrack(&["items", "--state", "lost"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("invalid value 'lost'"),
        "{}",
        text(&out.stderr)
    );
    let out = foldertrack(&["bench", "e2e", "--preset", "gigantic"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("choose small, office, enterprise, huge or burst"),
        "{stderr}"
    );
}

#[test]
fn ews_requests_writes_one_file_per_operation() {
    let dir = tempfile::tempdir().unwrap();
    let out = foldertrack(&["ews", "requests", "--out", dir.path().to_str().unwrap()]);
    assert!(out.status.success());
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(
        names.contains(&"SyncFolderItems.xml".to_owned()),
        "{names:?}"
    );
    for name in names {
        let xml = std::fs::read_to_string(dir.path().join(&name)).unwrap();
        let decoded = foldertrack::ews::decode::decode(&xml).unwrap();
        assert_eq!(decoded["kind"], "request", "{name}");
    }
}

#[test]
fn sim_prints_its_urls_on_loopback_and_serves() {
    use std::io::{BufRead, BufReader, Read, Write};
    let mut child = Command::new(env!("CARGO_BIN_EXE_foldertrack"))
        .args(["sim", "--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next = || lines.next().unwrap().unwrap();
    let (ews, graph, token, control) = (next(), next(), next(), next());
    assert!(ews.starts_with("EWS:     http://127.0.0.1:"), "{ews}");
    let root = ews
        .trim_start_matches("EWS:     ")
        .replace("/EWS/Exchange.asmx", "");
    assert_eq!(graph, format!("Graph:   {root}/v1.0"));
    assert_eq!(
        token,
        format!("token:   {root}/{{tenant}}/oauth2/v2.0/token")
    );
    assert!(control.contains("/_sim"), "{control}");
    // The EWS endpoint answers an unauthenticated call with 401, as Exchange does.
    let addr = ews
        .trim_start_matches("EWS:     http://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    write!(stream, "POST /EWS/Exchange.asmx HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
}

#[test]
fn help_says_what_an_address_is_and_that_retry_works_with_the_agent_running() {
    for command in ["folders", "sync-now"] {
        let out = foldertrack(&[command, "--help"]);
        assert!(out.status.success());
        let help = text(&out.stdout);
        assert!(
            help.contains(
                "<ADDRESS>  The mailbox's SMTP address, as in a `[[mailbox]]` of the config"
            ),
            "{command}: {help}"
        );
    }
    let retry = text(&foldertrack(&["retry", "--help"]).stdout);
    assert!(!retry.contains("agent stopped"), "{retry}");
    assert!(
        retry.contains("through the running agent, or in the store when none runs"),
        "{retry}"
    );
}

/// `--config` is offered where a config file is read, and only there.
#[test]
fn help_lists_config_only_for_commands_that_read_it() {
    let help = |args: &[&str]| text(&foldertrack(args).stdout);
    for tool in [
        &["sim", "--help"][..],
        &["demo", "--help"],
        &["bench", "e2e", "--help"],
    ] {
        let h = help(tool);
        assert!(h.contains("Usage:"), "{tool:?}: {h}");
        assert!(!h.contains("--config"), "{tool:?} reads no config: {h}");
    }
    for command in ["status", "run", "check-config"] {
        assert!(help(&[command, "--help"]).contains("--config"), "{command}");
    }
    // The global option still goes before any command.
    let out = foldertrack(&[
        "--config",
        "/nonexistent/x.toml",
        "sim",
        "--listen",
        "bogus",
    ]);
    assert!(!out.status.success());
    assert!(
        !text(&out.stderr).contains("panicked"),
        "{}",
        text(&out.stderr)
    );
}
