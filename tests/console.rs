//! The web console of a running agent, against the simulator: each page over HTTP with the
//! content people rely on (a parked mailbox's reason and fix, track-now from the page, retry of
//! an undeliverable item from its own page with and without the token), and each page in
//! headless Chromium, whose screenshots go to docs/console/ when FOLDERTRACK_SCREENSHOTS is
//! set. In Chromium the mouse presses Track now (over the DevTools protocol) and the mail
//! reaches the sink and the page.

mod common;
mod required;

use common::receivers::Webhook;
use common::*;
use foldertrack::sim::FaultKind;
use std::path::Path;
use std::time::Duration;

const TOKEN: &str = "console-token-for-tests";
const CUSTOMERS: &str = "Inbox/Customers";

/// Bob's server answers 503: with `park_after = 1` his first failed sync parks him.
const HEALTH: &str = "[health]\nretry_secs = 1\npark_after = 1\nparked_probe_secs = 3600\n[cadence]\nbusy_secs = 60\nnormal_secs = 60\nquiet_secs = 60\n";

/// The `[admin]` section with the token in a file under `dir`.
fn admin_toml(dir: &Path) -> String {
    let file = dir.join("admin.token");
    std::fs::write(&file, TOKEN).unwrap();
    format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\ntoken_file = \"{}\"\n",
        file.display()
    )
}

/// An agent running with the console: Alice healthy, Bob parked, `sink` extra sections.
async fn console(sink: impl FnOnce(&Path) -> String) -> (Agent, Running, Console) {
    let sim = simulator().await;
    let c = sim.control();
    c.create_folder(ALICE, CUSTOMERS).unwrap();
    c.create_folder(BOB, CUSTOMERS).unwrap();
    c.add_fault(foldertrack::sim::FaultRule {
        mailbox: Some(BOB.into()),
        operation: None,
        fault: FaultKind::Http503 {
            retry_after_secs: 0,
        },
        count: None,
        probability: None,
    });
    let list = mailboxes(&[
        (ALICE, &[(CUSTOMERS, Some(CONTOSO), "")]),
        (BOB, &[(CUSTOMERS, Some(FABRIKAM), "")]),
    ]);
    // Notifications off: the mail dragged before Track now must be found by Track now.
    let agent = Agent::with_extra(sim, &list, |dir| {
        format!(
            "{}{HEALTH}{}[notifications]\nmode = \"off\"\n",
            admin_toml(dir),
            sink(dir)
        )
    })
    .await;
    let running = agent.run().await;
    let page = Console {
        base: running.admin.base().to_owned(),
        http: foldertrack::http::client(&Default::default()).unwrap(),
    };
    (agent, running, page)
}

/// The console over HTTP, as a browser without JavaScript uses it.
struct Console {
    base: String,
    http: reqwest::Client,
}

impl Console {
    async fn get(&self, path: &str) -> (u16, String) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    /// Submits a form.
    async fn post(&self, path: &str, form: &[(&str, &str)]) -> (u16, String) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .form(form)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    /// Waits until `path` shows every one of `wanted`; the page at the end.
    async fn shows(&self, path: &str, wanted: &[&str]) -> String {
        let mut last = String::new();
        let found = eventually_async(Duration::from_secs(10), async || {
            last = self.get(path).await.1;
            wanted.iter().all(|w| last.contains(w))
        })
        .await;
        assert!(found, "{path} never showed {wanted:?}:\n{last}");
        last
    }
}

/// The text between the first `start` in `html` and the next `end`.
fn between<'a>(html: &'a str, start: &str, end: &str) -> &'a str {
    let from = html
        .find(start)
        .unwrap_or_else(|| panic!("no {start:?} in {html}"))
        + start.len();
    let len = html[from..].find(end).expect("an end");
    &html[from..from + len]
}

fn bob_page() -> String {
    format!("/mailboxes/{BOB}")
}

fn alice_track_now() -> String {
    format!("/mailboxes/{ALICE}/track-now")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_shows_a_parked_mailbox_with_reason_and_fix_and_tracks_now_from_its_form() {
    let (agent, running, page) = console(|_| String::new()).await;
    let bob = page
        .shows(&bob_page(), &["‖ parked", "Why: ", "503", "Fix: "])
        .await;
    assert!(
        bob.contains("check that the server at exchange.url answers"),
        "{bob}"
    );
    assert!(bob.contains("No mapped folder resolved yet"), "{bob}");
    assert!(
        bob.contains("Why: Exchange asked for a pause (throttling); the mailbox is parked"),
        "{bob}"
    );
    let overview = page.shows("/", &["1 parked", "1 healthy"]).await;
    assert!(overview.contains("✓ sink answers"), "{overview}");
    // With notifications off, every mailbox says it is polled (and its page says why).
    assert!(overview.contains("↻ polled"), "{overview}");
    assert!(
        overview.contains(&format!("href=\"/mailboxes/{ALICE}\"")),
        "{overview}"
    );

    // Track-now without the token is refused and changes nothing; with it, the mail is in the
    // sink and the page says so.
    drag(&agent.sim(), ALICE, "Quarterly offer", CUSTOMERS);
    let (code, refused) = page.post(&alice_track_now(), &[("token", "wrong")]).await;
    assert_eq!(code, 401, "{refused}");
    assert!(refused.contains("Refused: this changes state"), "{refused}");
    assert!(read_jsonl(&agent.dir.path().join("tracked.jsonl")).is_empty());
    let (code, done) = page.post(&alice_track_now(), &[("token", TOKEN)]).await;
    assert_eq!(code, 200, "{done}");
    assert!(
        done.contains(
            "Synced now: 1 tracking request(s) found; every request of this mailbox is in the sink."
        ),
        "{done}"
    );
    assert!(done.contains("1 since start"), "{done}");
    assert!(done.contains(CUSTOMERS) && done.contains(CONTOSO), "{done}");
    assert!(done.contains("✓ active"), "{done}");
    for words in [
        "Recent tracking requests",
        ">Quarterly offer</a>",
        "✓ delivered",
        "normal: every 60 s",
        "Why: the last sync found 1 tracking request(s): the interval shrinks toward the busy one",
    ] {
        assert!(done.contains(words), "lacks {words:?}: {done}");
    }
    let overview = page.shows("/", &["<strong>1</strong> today"]).await;
    assert!(
        overview.contains("<strong>1</strong> in the last 7 days"),
        "{overview}"
    );
    assert!(
        overview.contains("Mails tracked per hour over the last 24 hours, at most 1 in an hour"),
        "{overview}"
    );
    assert!(overview.contains("<svg class=\"spark\""), "{overview}");
    // Bob's server answered 503: at least that one throttling episode is counted.
    assert!(
        overview.contains("throttling episodes") && !overview.contains("<p>0 throttling episodes"),
        "{overview}"
    );
    let sent = read_jsonl(&agent.dir.path().join("tracked.jsonl"));
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].message.subject.as_deref(), Some("Quarterly offer"));

    // The config page: settings and checks, no secret.
    let (code, config) = page.get("/config").await;
    assert_eq!(code, 200);
    assert!(
        config.contains("exchange.url = http://127.0.0.1"),
        "{config}"
    );
    assert!(config.contains("✓ ok"), "{config}");
    assert!(
        !config.contains(SVC_PW) && !config.contains(TOKEN),
        "{config}"
    );
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undeliverable_items_retry_from_the_console_needs_the_token() {
    let hook = Webhook::start().await;
    let sink = hook.clone();
    let (agent, running, page) =
        console(move |dir| format!("{}[delivery]\nmax_attempts = 1\n", sink.sink_toml(dir))).await;
    hook.always(Some(404));
    drag(&agent.sim(), ALICE, "Invoice 4711", CUSTOMERS);
    let (code, _) = page.post(&alice_track_now(), &[("token", TOKEN)]).await;
    assert_eq!(code, 200);
    let search = "/items?q=invoice+4711";
    let before = page
        .shows(search, &["✕ undeliverable", "HTTP 404", "Invoice 4711"])
        .await;
    assert!(before.contains(ALICE), "{before}");
    hook.always(None);
    let attempts = hook.attempts();

    // The item's own page, linked from the search: its story, its fix, its retry buttons.
    let item = between(&before, "href=\"/items/", "\"").to_owned();
    let (code, story) = page.get(&format!("/items/{item}")).await;
    assert_eq!(code, 200, "{story}");
    for words in [
        "✕ tracked, undeliverable",
        "Subject: </strong>Invoice 4711",
        "HTTP 404",
        "Fix: ",
        "Retry (dry run)",
    ] {
        assert!(story.contains(words), "lacks {words:?}: {story}");
    }
    let (code, unknown) = page.get("/items/no-such-id").await;
    assert_eq!(code, 404, "{unknown}");
    assert!(
        unknown.contains("search for it on the Items page"),
        "{unknown}"
    );

    // Its retry form, as the page has it: the hidden search names this one item.
    let form = between(&story, "action=\"/items/retry\"", "</form>");
    let q = between(form, "name=\"q\" value=\"", "\"").to_owned();
    assert_eq!(q, item);
    let page = &page;
    let retry = move |token: &'static str, dry_run: bool| {
        let mut form = vec![("q", q.clone()), ("token", token.to_owned())];
        if dry_run {
            form.push(("dry_run", "1".into()));
        }
        async move {
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            page.post("/items/retry", &form).await
        }
    };
    let (code, refused) = retry("", false).await;
    assert_eq!(code, 401, "{refused}");
    assert!(refused.contains("Refused: this changes state"), "{refused}");
    let (code, dry) = retry(TOKEN, true).await;
    assert_eq!(code, 200, "{dry}");
    assert!(
        dry.contains("Dry run: 1 item(s) would be sent again"),
        "{dry}"
    );
    assert!(
        dry.contains("✕ undeliverable"),
        "still undeliverable: {dry}"
    );
    assert_eq!(
        hook.attempts(),
        attempts,
        "neither refusal nor dry run sent anything"
    );

    let (code, done) = retry(TOKEN, false).await;
    assert_eq!(code, 200, "{done}");
    assert!(done.contains("1 item(s) sent back to the outbox"), "{done}");
    assert!(eventually(Duration::from_secs(10), || hook.records().len() == 1).await);
    page.shows(search, &["No problem items."]).await;
    running.stop().await;
}

/// Headless Chromium with the flags that keep it off the network and quiet.
fn chromium(profile: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--timeout=10000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .output()
        .unwrap()
}

/// Chromium driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`: it reads
/// commands on fd 3 and answers on fd 4, each message ending in a NUL), attached to one tab.
struct Browser {
    child: std::process::Child,
    commands: std::process::ChildStdin,
    answers: std::sync::mpsc::Receiver<serde_json::Value>,
    next: u64,
    session: String,
}

impl Browser {
    /// A headless Chromium with one tab at `url`.
    fn open(profile: &Path, url: &str) -> Self {
        use std::process::Stdio;
        // The shell hands our pipes to Chromium as fd 3 and 4.
        let mut child = std::process::Command::new("sh")
            .arg("-c")
            .arg(r#"exec chromium "$@" 3<&0 4>&1 0</dev/null 1>/dev/null"#)
            .arg("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
            ])
            .args([
                "--disable-background-networking",
                "--disable-component-update",
            ])
            .args(["--disable-sync", "--remote-debugging-pipe"])
            .arg(format!("--user-data-dir={}", profile.display()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        let (tx, answers) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut message = Vec::new();
            while std::io::BufRead::read_until(&mut out, 0, &mut message).is_ok_and(|n| n > 0) {
                message.pop();
                if let Ok(v) = serde_json::from_slice(&message)
                    && tx.send(v).is_err()
                {
                    return;
                }
                message.clear();
            }
        });
        let commands = child.stdin.take().unwrap();
        let mut b = Self {
            child,
            commands,
            answers,
            next: 0,
            session: String::new(),
        };
        let target = b.call("Target.createTarget", serde_json::json!({ "url": url }));
        let attached = b.call(
            "Target.attachToTarget",
            serde_json::json!({ "targetId": target["targetId"], "flatten": true }),
        );
        b.session = attached["sessionId"].as_str().unwrap().to_owned();
        b
    }

    /// Sends a command (to the tab once attached) and waits up to 10 s for its answer.
    fn call(&mut self, method: &str, params: serde_json::Value) -> serde_json::Value {
        self.next += 1;
        let mut message =
            serde_json::json!({ "id": self.next, "method": method, "params": params });
        if !self.session.is_empty() {
            message["sessionId"] = self.session.clone().into();
        }
        let mut bytes = serde_json::to_vec(&message).unwrap();
        bytes.push(0);
        std::io::Write::write_all(&mut self.commands, &bytes).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let answer = self
                .answers
                .recv_timeout(left)
                .unwrap_or_else(|e| panic!("{method}: no answer from Chromium ({e})"));
            if answer["id"] == self.next {
                return answer["result"].clone();
            }
        }
    }

    /// The value of `expression` in the tab; `Null` while it throws (e.g. during navigation).
    fn eval(&mut self, expression: &str) -> serde_json::Value {
        let r = self.call(
            "Runtime.evaluate",
            serde_json::json!({ "expression": expression, "returnByValue": true }),
        );
        r["result"]["value"].clone()
    }

    /// Waits up to `within` until `expression` is true in the tab.
    async fn until(&mut self, within: Duration, expression: &str) -> bool {
        eventually(within, || self.eval(expression) == true).await
    }

    /// A mouse click in the middle of the element `selector` finds.
    fn click(&mut self, selector: &str) {
        let at = self.eval(&format!(
            "(function(){{var r=document.querySelector('{selector}').getBoundingClientRect();return [r.x+r.width/2,r.y+r.height/2];}})()"
        ));
        for kind in ["mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                serde_json::json!({ "type": kind, "x": at[0], "y": at[1], "button": "left", "clickCount": 1 }),
            );
        }
    }

    /// Types `text` into the element `selector` finds, as a keyboard would.
    fn type_into(&mut self, selector: &str, text: &str) {
        self.eval(&format!("document.querySelector('{selector}').focus()"));
        self.call("Input.insertText", serde_json::json!({ "text": text }));
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Opens the mailbox page at `url` in Chromium, types the token and presses Track now with the
/// mouse; the text of the page that answers.
async fn press_track_now(profile: &Path, url: &str) -> String {
    let mut b = Browser::open(profile, url);
    let button = "form[action$=\"/track-now\"] button";
    assert!(
        b.until(
            Duration::from_secs(10),
            &format!("!!document.querySelector('{button}')")
        )
        .await,
        "the mailbox page never showed its Track now button"
    );
    b.type_into("input[name=token]", TOKEN);
    b.click(button);
    let answered = "document.body.innerText.includes('Synced now')";
    b.until(Duration::from_secs(15), answered).await;
    b.eval("document.body.innerText")
        .as_str()
        .unwrap_or("")
        .to_owned()
}

/// Each page to open in Chromium: its screenshot's name, its path, what it must show and the
/// window size; `item` is the path of a tracked mail's page.
fn shot_pages(item: String) -> [(&'static str, String, &'static [&'static str], &'static str); 7] {
    let overview: &[&str] = &["1 parked", "1 healthy", "sink answers"];
    [
        ("overview", "/".into(), overview, "1280,900"),
        ("overview-phone", "/".into(), overview, "390,844"),
        (
            "mailbox-parked",
            bob_page(),
            &["parked", "Fix: ", "Track now"],
            "1280,900",
        ),
        (
            "mailbox",
            format!("/mailboxes/{ALICE}"),
            &["healthy", "1 since start", CUSTOMERS],
            "1280,900",
        ),
        (
            "items",
            "/items".into(),
            &["Retry (dry run)", "No problem items."],
            "1280,900",
        ),
        (
            "item",
            item,
            &["✓ tracked and delivered", "Quarterly offer", "Rules: "],
            "1280,900",
        ),
        (
            "config",
            "/config".into(),
            &["exchange.url", "Checks"],
            "1280,900",
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_console_page_in_headless_chromium_with_screenshots() {
    if !required::tool("chromium", "apt-get install -y chromium") {
        return;
    }
    let (agent, running, page) = console(|_| String::new()).await;
    page.shows(&bob_page(), &["‖ parked"]).await;
    let profile = tempfile::tempdir().unwrap();

    // Pressing Track now on Alice's page in the browser: the mail is in the sink and on the
    // page that answers.
    drag(&agent.sim(), ALICE, "Quarterly offer", CUSTOMERS);
    let answer = press_track_now(profile.path(), &format!("{}/mailboxes/{ALICE}", page.base)).await;
    for words in [
        "Synced now: 1 tracking request(s) found",
        "Recent tracking requests",
        "Quarterly offer",
    ] {
        assert!(
            answer.contains(words),
            "the answer lacks {words:?}:\n{answer}"
        );
    }
    let sent = read_jsonl(&agent.dir.path().join("tracked.jsonl"));
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].message.subject.as_deref(), Some("Quarterly offer"));
    // The screenshots in docs/ are refreshed only when asked, so a test run leaves the
    // checkout as it was: FOLDERTRACK_SCREENSHOTS=1 cargo test --test console.
    let scratch = tempfile::tempdir().unwrap();
    let shots = match std::env::var_os("FOLDERTRACK_SCREENSHOTS") {
        Some(_) => Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/console"),
        None => scratch.path().to_owned(),
    };
    std::fs::create_dir_all(&shots).unwrap();
    let alice = page.get(&format!("/mailboxes/{ALICE}")).await.1;
    assert!(
        alice.contains("polled: notifications.mode = &quot;off&quot;"),
        "the page says why it is polled: {alice}"
    );
    let pages = shot_pages(format!(
        "/items/{}",
        between(&alice, "href=\"/items/", "\"")
    ));
    for (name, path, wanted, size) in &pages {
        let url = format!("{}{path}", page.base);
        let dom = chromium(profile.path(), &["--dump-dom", &url]);
        let dom = String::from_utf8_lossy(&dom.stdout);
        for w in *wanted {
            assert!(
                dom.contains(w),
                "{name}: the rendered DOM lacks {w:?}:\n{dom}"
            );
        }
        let file = shots.join(format!("{name}.png"));
        let _ = std::fs::remove_file(&file);
        let shot = format!("--screenshot={}", file.display());
        let size = format!("--window-size={size}");
        let out = chromium(profile.path(), &[&shot, &size, &url]);
        let png = std::fs::read(&file).unwrap_or_else(|_| {
            panic!(
                "{name}: no screenshot: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        assert!(
            png.starts_with(b"\x89PNG") && png.len() > 10_000,
            "{name}: {} bytes",
            png.len()
        );
    }
    required::checked(pages.len(), "pages in Chromium");
    running.stop().await;
}
