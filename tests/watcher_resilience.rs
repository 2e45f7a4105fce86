//! The watcher's paths where a mail could be lost, stalled or held behind another: answers
//! that leave out optional elements, a bad item in a page, subfolders created later, server
//! waits out of range, one busy mailbox among many. Each against the simulator.

mod common;

use common::*;
use foldertrack::agent;
use foldertrack::sim::ResponseStyle;
use std::sync::Arc;
use std::time::Duration;

const CUSTOMERS: &str = "Inbox/Customers/Contoso";

fn contoso() -> String {
    mailboxes(&[(ALICE, &[(CUSTOMERS, Some(CONTOSO), "")])])
}

/// A baselined mapping over Inbox/Customers/Contoso (regarding Contoso).
async fn baselined() -> Agent {
    let agent = Agent::start(&contoso()).await;
    agent.sim().create_folder(ALICE, CUSTOMERS).unwrap();
    agent.pass().await;
    agent
}

/// One pass that must end within 30 s.
async fn bounded_pass(agent: &Agent) -> agent::Summary {
    tokio::time::timeout(Duration::from_secs(30), agent.pass())
        .await
        .expect("the pass ended")
}

#[tokio::test]
async fn w2_r22_missing_includes_last_item_in_range_means_last_page() {
    let agent = baselined().await;
    let c = agent.sim();
    c.set_style(ResponseStyle {
        omit_includes_last: true,
        ..ResponseStyle::default()
    });
    for i in 0..3 {
        drag(&c, ALICE, &format!("filed {i}"), CUSTOMERS);
    }
    let summary = bounded_pass(&agent).await;
    assert!(summary.failed.is_empty(), "{:?}", summary.failed);
    assert_eq!((summary.tracked, summary.delivered), (3, 3));
    // The tree check (SyncFolderHierarchy) reads the same way.
    let fresh = Agent::with_sim(agent.sim, &contoso()).await;
    assert!(bounded_pass(&fresh).await.failed.is_empty());
}

#[tokio::test]
async fn w2_r22_a_pass_commits_at_its_page_bound_and_the_next_pass_goes_on() {
    let agent = baselined().await;
    let c = agent.sim();
    let n = foldertrack::watch::mailbox::PAGES_PER_PASS + 10;
    for i in 0..n {
        c.deliver(ALICE, CUSTOMERS, &mail(&format!("filed {i}")))
            .unwrap();
    }
    // One change per page, so the bound is reached before the folder is drained.
    let feed = Arc::new(agent::ews_feed(&agent.config).unwrap().with_sizes(1, 20));
    let pass = || agent::once(&agent.config, feed.clone(), agent.store.clone(), &|_| {});
    let first = pass().await.unwrap();
    assert_eq!(first.tracked, foldertrack::watch::mailbox::PAGES_PER_PASS);
    assert_eq!(
        agent.delivered().len(),
        first.tracked,
        "the first pass's pages are committed and delivered"
    );
    let second = pass().await.unwrap();
    assert_eq!(second.tracked, 10);
    assert_eq!(agent.delivered().len(), n);
}
