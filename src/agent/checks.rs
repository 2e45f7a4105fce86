//! What an admin asks of the server before and beside running the agent: a mailbox's folder
//! tree with the mapped folders marked (`foldertrack folders`), and `check-config`'s checks of
//! each mailbox's access and each mapping's folder, and of the sink (for Dynamics: sign-in,
//! organisation, privileges and every mapping's regarding record).

use crate::client::retry::Action;
use crate::config::{Check, Config};
use crate::deliver::SinkSettings;
use crate::deliver::dynamics::{DynamicsSink, checks::MappedRecord};
use crate::feed::{self, FolderFeed};
use crate::store::MappingState;
use crate::watch::MailboxConfig;
use crate::watch::health::PERMANENT_FIX;
use crate::watch::mappings::{self, FolderTree};
use std::sync::Arc;

/// The mailbox's folder tree, as the feed sees it now.
async fn folder_tree<F: FolderFeed>(feed: &F, mailbox: &str) -> Result<FolderTree, feed::Error> {
    let mut tree = FolderTree::new(feed.well_known(mailbox).await?);
    let mut cursor = None;
    loop {
        let page = feed.hierarchy(mailbox, cursor.as_ref()).await?;
        tree.apply(page.events);
        cursor = Some(page.cursor);
        if !page.more {
            return Ok(tree);
        }
    }
}

/// One folder of `foldertrack folders`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct FolderLine {
    pub depth: usize,
    pub name: String,
    pub id: String,
    /// The mapping that covers it, if any.
    pub mapping: Option<String>,
}

/// The mailbox's mail folders, depth first, marking those a configured mapping covers.
pub async fn folders<F: FolderFeed>(
    mailboxes: &[Arc<MailboxConfig>],
    feed: &F,
    mailbox: &str,
) -> Result<Vec<FolderLine>, feed::Error> {
    let tree = folder_tree(feed, mailbox).await?;
    let mut mapped = std::collections::HashMap::new();
    if let Some(m) = mailboxes
        .iter()
        .find(|m| m.address.eq_ignore_ascii_case(mailbox))
    {
        for f in &m.folder {
            for target in mappings::resolve(mailbox, f, None, &tree).1 {
                mapped.insert(target.folder_id, target.mapping);
            }
        }
    }
    let mut out = Vec::new();
    let mut stack: Vec<(usize, mappings::Folder<'_>)> = tree
        .children(&tree.well_known.top)
        .into_iter()
        .rev()
        .map(|n| (0, n))
        .collect();
    while let Some((depth, node)) = stack.pop() {
        out.push(FolderLine {
            depth,
            name: node.name.to_owned(),
            id: node.id.to_owned(),
            mapping: mapped.get(node.id).cloned(),
        });
        stack.extend(
            tree.children(node.id)
                .into_iter()
                .rev()
                .map(|n| (depth + 1, n)),
        );
    }
    Ok(out)
}

/// `check-config` against the server: per mailbox, access (credentials, impersonation), then
/// each mapping's folder. One line each, OK or what to fix.
pub async fn check_server<F: FolderFeed>(mailboxes: &[Arc<MailboxConfig>], feed: &F) -> Vec<Check> {
    let mut checks = Vec::new();
    for m in mailboxes {
        let tree = match folder_tree(feed, &m.address).await {
            Ok(t) => {
                checks.push(Check::Ok(format!(
                    "{}: signed in and allowed to read the mailbox",
                    m.address
                )));
                t
            }
            Err(e) => {
                let fix = match e.action() {
                    Action::DisableMailbox => format!("; fix: {PERMANENT_FIX}"),
                    _ => String::new(),
                };
                checks.push(Check::Fail(format!("{}: {e}{fix}", m.address)));
                continue;
            }
        };
        for f in &m.folder {
            let (record, _) = mappings::resolve(&m.address, f, None, &tree);
            let name = &record.name;
            checks.push(match mapping_problem(&m.address, name, &record.state) {
                None => Check::Ok(format!(
                    "{} {name}: found ({})",
                    m.address,
                    record.path.unwrap_or_default()
                )),
                Some(problem) => Check::Fail(problem),
            });
        }
    }
    checks
}

/// The README section that says how to grant the Graph permission.
const GRAPH_FIX: &str = "grant the app the Mail.ReadWrite application permission and scope it to the tracked mailboxes (README, \"Exchange Online\": RBAC for Applications or an application access policy)";

/// `check-config` over Graph: the application permissions in the app's token (`roles`), or why
/// they could not be read. Write-back needs `Mail.ReadWrite`; reading needs `Mail.Read` at least.
pub fn graph_permission(roles: Result<Option<Vec<String>>, String>, writeback: bool) -> Check {
    let roles = match roles {
        Ok(Some(roles)) => roles,
        Ok(None) => {
            return Check::Warn(format!(
                "Graph: the app's token does not show its permissions; the mailbox checks below tell whether they suffice (if not: {GRAPH_FIX})"
            ));
        }
        Err(e) => return Check::Fail(format!("Graph: no token for the permission check: {e}")),
    };
    let has = |r: &str| roles.iter().any(|x| x.eq_ignore_ascii_case(r));
    if has("Mail.ReadWrite") {
        Check::Ok(
            "Graph: the app has Mail.ReadWrite (reads the folders, writes the categories)".into(),
        )
    } else if has("Mail.Read") && !writeback {
        Check::Ok("Graph: the app has Mail.Read, enough while writeback.enabled = false".into())
    } else if has("Mail.Read") {
        Check::Fail(format!(
            "Graph: the app has only Mail.Read, so writing the categories back will fail (403); {GRAPH_FIX}, or set writeback.enabled = false"
        ))
    } else {
        Check::Warn(format!(
            "Graph: the app's token carries neither Mail.ReadWrite nor Mail.Read; {GRAPH_FIX}. Granted through RBAC for Applications it does not show in the token: then the mailbox checks below tell"
        ))
    }
}

/// `check-config` against the sink. Only the Dynamics sink has server-side checks.
pub async fn check_sink(config: &Config) -> Vec<Check> {
    let settings = match config.sink_settings() {
        Ok(SinkSettings::Dynamics(s)) => s,
        Ok(_) => return Vec::new(),
        Err(e) => return vec![Check::Fail(e.to_string())],
    };
    let sink = match DynamicsSink::new(settings) {
        Ok(s) => s,
        Err(e) => return vec![Check::Fail(e.to_string())],
    };
    let mapped: Vec<MappedRecord> = config
        .mailbox
        .iter()
        .flat_map(|m| {
            m.folder.iter().filter_map(|f| {
                Some(MappedRecord {
                    mailbox: m.address.clone(),
                    name: mappings::mapping_name(f),
                    regarding: f.regarding.clone()?,
                })
            })
        })
        .collect();
    crate::deliver::dynamics::checks::check(&sink, &mapped)
        .await
        .into_iter()
        .map(|f| match f.ok {
            true => Check::Ok(f.text),
            false => Check::Fail(f.text),
        })
        .collect()
}

/// Why a mapping is not watched and what to do, on one line (`check-config` and `once` say
/// the same); `None` when it is watched.
pub fn mapping_problem(address: &str, name: &str, state: &MappingState) -> Option<String> {
    match state {
        MappingState::Active => None,
        MappingState::NotFound | MappingState::Orphaned => Some(format!(
            "{address} {name}: no such folder; fix the path (`foldertrack folders {address}` lists them) or create the folder"
        )),
        MappingState::Paused(reason) => Some(format!(
            "{address} {name}: {reason}; move the folder under the Inbox or set allow_outside_inbox = true"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Roles = Result<Option<Vec<String>>, String>;

    #[test]
    fn the_graph_permission_check_names_what_is_missing_and_the_fix() {
        let roles = |r: &[&str]| Ok(Some(r.iter().map(|s| (*s).to_owned()).collect()));
        let cases: [(Roles, bool, &str, &str); 7] = [
            (roles(&["Mail.ReadWrite"]), true, "ok", "has Mail.ReadWrite"),
            (
                roles(&["Mail.Read", "Mail.ReadWrite"]),
                true,
                "ok",
                "has Mail.ReadWrite",
            ),
            (
                roles(&["Mail.Read"]),
                true,
                "fail",
                "writing the categories back will fail",
            ),
            (
                roles(&["Mail.Read"]),
                false,
                "ok",
                "writeback.enabled = false",
            ),
            (
                roles(&["User.Read.All"]),
                true,
                "warn",
                "neither Mail.ReadWrite nor Mail.Read",
            ),
            (Ok(None), true, "warn", "does not show its permissions"),
            (
                Err("refused".into()),
                true,
                "fail",
                "no token for the permission check: refused",
            ),
        ];
        for (given, writeback, level, words) in cases {
            let (got, text) = match graph_permission(given, writeback) {
                Check::Ok(t) => ("ok", t),
                Check::Warn(t) => ("warn", t),
                Check::Fail(t) => ("fail", t),
            };
            assert_eq!(got, level, "{text}");
            assert!(text.contains(words) && !text.contains('\n'), "{text}");
            if level != "ok" && !text.contains("refused") {
                assert!(
                    text.contains("Mail.ReadWrite application permission"),
                    "{text}"
                );
            }
        }
    }
}
