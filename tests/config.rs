//! The example configurations in fixtures/config: the accepted ones load, each rejected one
//! fails with a message naming the field and what to do.

use foldertrack::config::Config;
use std::path::PathBuf;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/config")
        .join(name)
}

#[test]
fn accepted_examples_load() {
    for name in ["minimal.toml", "full.toml"] {
        let config = Config::load(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!config.mailbox.is_empty(), "{name}");
    }
}

#[test]
fn rejected_examples_say_what_to_fix() {
    let rows = [
        ("reject_unknown_field.toml", "unknown field `folders`"),
        (
            "reject_folder_outside_inbox.toml",
            "mailbox alice@example.com, folder \"Archive/Contoso\", path: folder paths must start at Inbox",
        ),
        (
            "reject_inline_password.toml",
            "secrets never go in the file",
        ),
        (
            "reject_bad_url.toml",
            "exchange.url: \"mail.example.com/EWS\" is not an http(s) URL",
        ),
        (
            "reject_duplicate_mailbox.toml",
            "mailbox Alice@Example.com, address: Alice@Example.com is configured twice",
        ),
        (
            "reject_graph_notification_url.toml",
            "notifications.graph_notification_url: Microsoft Graph posts only to https:// URLs",
        ),
        (
            "reject_graph_pull.toml",
            "notifications.mode: \"pull\" is for api = \"ews\"",
        ),
        (
            "reject_missing_secret.toml",
            "exchange.auth.password: missing; secrets never go in the file",
        ),
    ];
    let dir = std::fs::read_dir(fixture("")).unwrap();
    let on_disk = dir
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("reject_")
        })
        .count();
    assert_eq!(on_disk, rows.len(), "every reject_*.toml needs a row here");
    for (name, want) in rows {
        let err = Config::load(&fixture(name)).expect_err(name).to_string();
        assert!(err.contains(want), "{name}: {err}");
        assert!(
            err.starts_with(&fixture(name).display().to_string()),
            "{name}: {err}"
        );
        assert!(!err.contains("hunter2"), "{name} leaks the password: {err}");
    }
}
