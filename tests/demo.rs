//! `foldertrack demo` as a new user runs it: it ends by itself with every mail moved in tracked
//! once; and its logs — at debug level, as JSON — hold no password, token or message body (R36).

use std::process::Command;

#[test]
fn the_demo_tracks_every_mail_once_and_logs_no_secret() {
    demo("ews");
}

#[test]
fn the_demo_over_graph_tracks_every_mail_once_and_logs_no_secret() {
    demo("graph");
}

fn demo(api: &str) {
    let out = Command::new(env!("CARGO_BIN_EXE_foldertrack"))
        .args(["demo", "--api", api, "-v", "--log-format", "json"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let summary = stdout
        .lines()
        .find(|l| l.starts_with("summary:"))
        .expect("a summary");
    assert!(
        summary.contains("moved in 7, tracked 7, re-linked 1, duplicates 0, failures 0"),
        "{summary}"
    );
    assert!(stdout.contains("track-now for bob: synced in"), "{stdout}");
    assert!(
        stderr
            .lines()
            .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()),
        "JSON logs"
    );

    let config = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("config"))
        .map(|p| std::path::PathBuf::from(p.trim()))
        .expect("the config path is printed");
    let dir = config.parent().unwrap();
    let secrets: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("secrets-for-the-log-check.json")).unwrap(),
    )
    .unwrap();
    let mut needles: Vec<String> = vec![
        secrets["client_secret"].as_str().unwrap().to_owned(),
        secrets["service_password"].as_str().unwrap().to_owned(),
        secrets["body_marker"].as_str().unwrap().to_owned(),
    ];
    let tokens: Vec<String> = secrets["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_owned())
        .collect();
    assert!(!tokens.is_empty(), "the agent signed in with OAuth");
    needles.extend(tokens);
    for needle in &needles {
        assert!(
            !stderr.contains(needle.as_str()),
            "the logs hold a secret or a body"
        );
        assert!(
            !stdout.contains(needle.as_str()),
            "the output holds a secret or a body"
        );
    }
    let output = std::fs::read_to_string(dir.join("tracked.jsonl")).unwrap();
    assert_eq!(output.lines().count(), 8, "7 moved in and 1 re-linked");
    let _ = std::fs::remove_dir_all(dir);
}

/// `demo --keep` ends with commands to try; each works exactly as printed, against the demo's
/// agent, and Ctrl-C then stops the demo. Its logs stay out of the story unless asked for.
#[test]
fn demo_keep_suggests_commands_that_work_as_printed() {
    use std::io::BufRead;
    use std::time::{Duration, Instant};
    let mut demo = Command::new(env!("CARGO_BIN_EXE_foldertrack"))
        .args(["demo", "--keep"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, lines) = std::sync::mpsc::channel();
    let stdout = demo.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut suggested = Vec::new();
    let mut trying = false;
    while suggested.len() < 3 {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = lines
            .recv_timeout(left)
            .expect("the demo prints commands to try");
        if line.contains("still running. Try:") {
            trying = true;
        } else if trying && line.contains(" --config ") {
            suggested.push(line.trim().to_owned());
        }
    }
    for command in &suggested {
        let mut words = command.split_whitespace();
        let out = Command::new(words.next().unwrap())
            .args(words)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "`{command}` failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // SAFETY: SIGINT to the child this test started, as Ctrl-C would.
    unsafe { libc::kill(demo.id() as i32, libc::SIGINT) };
    let deadline = Instant::now() + Duration::from_secs(30);
    while demo.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "Ctrl-C stops the demo");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Without -v the story is not drowned in the agent's INFO lines.
    let mut logs = String::new();
    std::io::Read::read_to_string(&mut demo.stderr.take().unwrap(), &mut logs).unwrap();
    assert!(!logs.contains(" INFO "), "{logs}");
}
