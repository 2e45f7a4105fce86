//! What a reloaded config changes (R9): the mailbox and mapping lines `reload --dry-run` prints,
//! and the sections that only apply at the next start.

use super::Config;
use crate::tracking::Regarding;
use crate::watch::FolderMapping;

/// What applying `new` over `old` changes in the mailboxes and mappings, one line each (R9).
pub fn mapping_changes(old: &Config, new: &Config) -> Vec<String> {
    let name = |f: &FolderMapping| f.path.clone().or_else(|| f.id.clone()).unwrap_or_default();
    let regarding = |r: &Option<Regarding>| r.as_ref().map_or("none".to_owned(), |r| r.to_string());
    let mut out = Vec::new();
    for m in &old.mailbox {
        if !new.mailbox.iter().any(|n| n.address == m.address) {
            out.push(format!(
                "{}: mailbox removed (what it tracked stays tracked)",
                m.address
            ));
        }
    }
    for n in &new.mailbox {
        let Some(m) = old.mailbox.iter().find(|m| m.address == n.address) else {
            out.push(format!(
                "{}: mailbox added; its folders start with a baseline",
                n.address
            ));
            continue;
        };
        for f in &m.folder {
            if !n.folder.iter().any(|g| name(g) == name(f)) {
                out.push(format!(
                    "{} {}: mapping removed (what it tracked stays tracked)",
                    n.address,
                    name(f)
                ));
            }
        }
        for g in &n.folder {
            match m.folder.iter().find(|f| name(f) == name(g)) {
                None => out.push(format!(
                    "{} {}: mapping added; it starts with a baseline",
                    n.address,
                    name(g)
                )),
                Some(f) if f.regarding != g.regarding => out.push(format!(
                    "{} {}: regarding {} -> {}{}",
                    n.address,
                    name(g),
                    regarding(&f.regarding),
                    regarding(&g.regarding),
                    if g.regarding.is_some() {
                        "; every tracked mail in the folder is re-linked"
                    } else {
                        "; old links stay, new mail goes without a regarding"
                    }
                )),
                Some(_) => {}
            }
        }
    }
    out
}

/// The sections whose change needs a restart: the agent keeps running on the old values.
pub fn restart_sections(old: &Config, new: &Config) -> Vec<&'static str> {
    [
        ("exchange", new.exchange != old.exchange),
        ("store", new.store != old.store),
        ("sink", new.sink != old.sink),
        ("limits", new.limits != old.limits),
        ("notifications", new.notifications != old.notifications),
        ("delivery", new.delivery != old.delivery),
        ("writeback", new.writeback != old.writeback),
        ("admin", new.admin != old.admin),
    ]
    .into_iter()
    .filter_map(|(section, changed)| changed.then_some(section))
    .collect()
}
