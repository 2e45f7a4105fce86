//! How the CLI shows things to a person: times in local time, the status table, one line per
//! problem item; and printing that treats a closed pipe as the reader's choice.

use foldertrack::admin::StatusView;
use foldertrack::agent::stored::StoredStatus;
use foldertrack::deliver::items::ItemLine;
use foldertrack::watch::capacity::Capacity;
use foldertrack::watch::cluster::ClusterView;
use foldertrack::watch::health::Health;
use foldertrack::watch::track_now::Pending;
use std::io::Write;

/// Prints one line to stdout, reporting a closed pipe as an error instead of panicking.
pub fn print_line(line: &str) -> std::io::Result<()> {
    writeln!(std::io::stdout().lock(), "{line}")
}

/// Text that holds what a server sent (an error, a folder name), made one safe line.
pub fn one_line(text: &str) -> String {
    foldertrack::telemetry::escape_line(text, false)
}

/// A time for people: local date and time to the second.
pub fn local(t: jiff::Timestamp) -> String {
    t.to_zoned_datetime(jiff::tz::TimeZone::system())
        .strftime("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// The status table: one block per mailbox, its mappings indented, then the outbox.
/// `status` with no agent running: the store's record, without live health.
pub fn stored_status(status: &StoredStatus, store: &std::path::Path) -> std::io::Result<()> {
    print_line(&format!(
        "no agent runs on store {} — what the store knows (no live health; `foldertrack run` starts the agent):",
        store.display()
    ))?;
    for mailbox in &status.mailboxes {
        print_line(&mailbox.address)?;
        if mailbox.folders.is_empty() {
            print_line("    never synced")?;
        }
        for f in &mailbox.folders {
            let since = f.baselined_since.map_or("not baselined yet".into(), |t| {
                format!("baselined {}", local(t))
            });
            print_line(&format!(
                "    {:<40} {:<24} {since:<28} tracked {}",
                f.path, f.state, f.tracked
            ))?;
        }
    }
    let s = &status.stats;
    print_line(&queues_line(s.outbox, s.dead, s.marks, s.pending))
}

fn queues_line(outbox: usize, undelivered: usize, write_backs: usize, unreadable: usize) -> String {
    format!(
        "outbox {outbox} · undeliverable or rejected {undelivered} · write-backs pending {write_backs} · unreadable {unreadable}"
    )
}

pub fn status(status: &StatusView) -> std::io::Result<()> {
    print_line(&format!(
        "{:<28} {:<9} {:>8} {:>7}  {:<19}  {:<19}  {:>7}  {:>6}",
        "MAILBOX", "HEALTH", "INTERVAL", "CYCLE", "LAST SYNC", "NEXT SYNC", "TRACKED", "FAILED"
    ))?;
    for m in &status.mailboxes {
        let s = &m.status;
        let time = |t: Option<jiff::Timestamp>| t.map(local).unwrap_or_else(|| "-".into());
        let cycle = s.cycle_secs.map_or("-".into(), |c| format!("{c}s"));
        print_line(&format!(
            "{:<28} {:<9} {:>7}s {:>7}  {:<19}  {:<19}  {:>7}  {:>6}",
            s.address,
            s.health.label(),
            s.interval_secs,
            cycle,
            time(s.last_sync_finished),
            time(s.next_sync),
            s.tracked,
            s.failed_syncs
        ))?;
        match &s.health {
            Health::Retrying { last_error, .. } | Health::Parked { last_error, .. } => {
                print_line(&format!("    last error: {last_error}"))?
            }
            Health::Disabled { error, .. } => print_line(&format!("    error: {error}"))?,
            Health::Healthy => {}
        }
        if let Some(fix) = s.health.fix() {
            print_line(&format!("    fix: {fix}"))?;
        }
        print_line(&format!("    {}", s.notifications.describe()))?;
        for mapping in &m.mappings {
            print_line(&format!(
                "    {:<40} {:<36} {}",
                mapping.path.as_deref().unwrap_or(&mapping.name),
                mapping.state.describe(),
                mapping.folder_id.as_deref().unwrap_or("-")
            ))?;
            for hold in m
                .held
                .iter()
                .filter(|h| mapping.regarding.as_ref() == Some(&h.regarding))
            {
                print_line(&format!(
                    "        {}; next try {}",
                    hold.reason,
                    local(hold.next_probe)
                ))?;
            }
        }
    }
    print_line(&queues_line(
        status.outbox,
        status.undelivered,
        status.pending_write_backs,
        status.unreadable,
    ))?;
    if let Some(c) = &status.capacity {
        print_line(&capacity_line(c))?;
    }
    if let Some(c) = status.cluster.as_ref().filter(|c| c.members > 1) {
        print_line(&cluster_line(c))?;
    }
    match &status.sink_unavailable {
        Some(o) => print_line(&format!(
            "sink unavailable since {}: {}; the outbox waits and is delivered when it answers (next try {})",
            local(o.since),
            o.reason,
            local(o.next_probe)
        )),
        None => Ok(()),
    }
}

/// This agent's place in its group.
fn cluster_line(c: &ClusterView) -> String {
    let mut line = format!(
        "member {} of {}: owns {} mailbox(es), leaves {} to the other members",
        c.member, c.members, c.owned, c.skipped
    );
    if !c.awaiting_handover.is_empty() {
        line.push_str(&format!(
            "; {} wait for `foldertrack handover import`: {}",
            c.awaiting_handover.len(),
            c.awaiting_handover.join(", ")
        ));
    }
    line
}

/// Whether the limits keep the cadence, and what to set when they do not.
fn capacity_line(c: &Capacity) -> String {
    match &c.advice {
        Some(advice) if !c.keeps_cadence => format!("cadence NOT KEPT: {advice}"),
        _ => format!(
            "cadence kept: {:.0} calls per cycle over {} mailboxes take about {:.0} s of the {} s interval",
            c.calls_per_cycle, c.mailboxes, c.cycle_secs, c.normal_secs
        ),
    }
}

/// A request track-now found not yet in the sink, on one line.
pub fn pending_line(p: &Pending) -> String {
    let state = serde_json::to_value(p.state)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let next = p
        .next_try
        .map(|t| format!("  next try {}", local(t)))
        .unwrap_or_default();
    format!(
        "    {state:<17} {}  {}{next}  {}",
        p.event_id,
        p.folder,
        p.reason.as_deref().unwrap_or("")
    )
}

/// One problem item on one line.
pub fn item_line(i: &ItemLine) -> String {
    let at =
        i.at.map(|t| t.strftime("%Y-%m-%d %H:%M:%S").to_string())
            .unwrap_or_default();
    one_line(&format!(
        "{:<13} {at:<19}  {}  {} {}  attempts {}  {}",
        i.state.as_str(),
        i.event_id,
        i.mailbox,
        i.folder,
        i.attempts,
        i.reason
    ))
}
