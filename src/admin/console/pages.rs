//! The console's pages as maud templates over the API's views. Every state is shown in words
//! with a symbol, so nothing depends on colour.

use super::activity::{self, Activity};
use crate::admin::{ConfigView, MailboxView, StatusView};
use crate::deliver::explain::{Outcome, Story};
use crate::deliver::items::{ItemLine, ItemState};
use crate::store::MappingState;
use crate::telemetry::Hour;
use crate::tracking::MessageRecord;
use crate::watch::health::Health;
use crate::watch::notify::Delivery;
use crate::watch::track_now::SyncNow;
use axum::http::StatusCode;
use maud::{DOCTYPE, Markup, html};
use std::collections::BTreeMap;

/// Reloads a page every 15 s, unless someone is typing into it.
const REFRESH: &str = "setInterval(function(){var busy=document.activeElement&&document.activeElement.tagName==='INPUT';var typed=Array.prototype.some.call(document.querySelectorAll('input[type=password]'),function(i){return i.value;});if(!busy&&!typed){location.reload();}},15000);";

/// The frame of every page; `refresh` for pages reached by GET (a form's answer must not be
/// sent again).
fn layout(title: &str, refresh: bool, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · foldertrack" }
                link rel="stylesheet" href="/console.css";
            }
            body {
                header {
                    strong { "foldertrack" }
                    nav { a href="/" { "Overview" } a href="/items" { "Items" } a href="/config" { "Config" } }
                }
                main { h1 { (title) } (body) }
                @if refresh { script { (maud::PreEscaped(REFRESH)) } }
            }
        }
    }
}

/// A state in words with a symbol; `tone` (ok, warn, bad) only adds colour.
fn badge(symbol: &str, words: &str, tone: &str) -> Markup {
    html! { span class={ "badge " (tone) } { (symbol) " " (words) } }
}

fn health_badge(h: &Health, syncing: bool) -> Markup {
    match h {
        Health::Healthy if syncing => badge("⇄", "syncing", "ok"),
        Health::Healthy => badge("✓", "healthy", "ok"),
        Health::Retrying { attempt, .. } => {
            badge("↻", &format!("retrying (attempt {attempt})"), "warn")
        }
        Health::Parked { .. } => badge("‖", "parked", "bad"),
        Health::Disabled { .. } => badge("✕", "disabled", "bad"),
    }
}

fn mapping_badge(state: &MappingState) -> Markup {
    let (symbol, tone) = match state {
        MappingState::Active => ("✓", "ok"),
        MappingState::Paused(_) => ("‖", "warn"),
        MappingState::Orphaned => ("✕", "bad"),
        MappingState::NotFound => ("?", "bad"),
    };
    badge(symbol, &state.describe(), tone)
}

fn item_badge(state: ItemState) -> Markup {
    let (symbol, tone) = match state {
        ItemState::Retrying => ("↻", "warn"),
        ItemState::Undeliverable => ("✕", "bad"),
        ItemState::Rejected => ("⊘", "bad"),
        ItemState::Unreadable => ("?", "warn"),
    };
    badge(symbol, state.as_str(), tone)
}

fn time(t: Option<jiff::Timestamp>) -> String {
    t.map_or_else(
        || "–".into(),
        |t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string(),
    )
}

/// A tracked mail's page: its story.
fn item_link(id: &str, subject: Option<&str>) -> Markup {
    html! { a href={ "/items/" (id) } { (subject.unwrap_or("(no subject)")) } }
}

fn mailbox_link(address: &str) -> Markup {
    html! { a href={ "/mailboxes/" (address) } { (address) } }
}

/// The counters the overview shows, read from the process's metrics.
pub struct Traffic {
    /// EWS calls by outcome.
    pub calls: BTreeMap<String, u64>,
    /// Graph requests by outcome.
    pub graph: BTreeMap<String, u64>,
    /// Tracking requests by outcome.
    pub requests: BTreeMap<String, u64>,
    /// Times the server asked for a pause.
    pub episodes: u64,
    /// Detection to delivery, per hour of the last day.
    pub latency: Vec<Hour>,
}

impl Traffic {
    pub fn now() -> Self {
        let m = crate::telemetry::metrics();
        Self {
            calls: m.totals("foldertrack_ews_calls_total", "outcome"),
            graph: m.totals("foldertrack_graph_requests_total", "outcome"),
            requests: m.totals("foldertrack_tracking_requests_total", "outcome"),
            episodes: m
                .totals("foldertrack_server_throttled_total", "scope")
                .values()
                .sum(),
            latency: m.hourly("foldertrack_detected_to_delivered_seconds"),
        }
    }

    /// Calls the server answered with "too busy" (EWS back-off, HTTP 429 or 503).
    fn throttled(&self) -> u64 {
        self.calls
            .iter()
            .chain(&self.graph)
            .filter(|(o, _)| matches!(o.as_str(), "ErrorServerBusy" | "HTTP 429" | "HTTP 503"))
            .map(|(_, n)| n)
            .sum()
    }

    /// Mean seconds from detection to delivery per hour of the last day, the current hour
    /// last (0 for an hour without a delivery).
    fn latency_per_hour(&self) -> Vec<f64> {
        let now = jiff::Timestamp::now().as_second().div_euclid(3600);
        let mut out = vec![0.0; activity::HOURS];
        for h in &self.latency {
            if let Ok(back) = usize::try_from(now - h.hour)
                && back < activity::HOURS
                && h.count > 0
            {
                out[activity::HOURS - 1 - back] = h.sum / h.count as f64;
            }
        }
        out
    }
}

/// A small inline SVG line over `values` (oldest first), scaled to its largest, with `words`
/// for whoever cannot see it.
fn sparkline(values: &[f64], words: &str) -> Markup {
    const W: f64 = 240.0;
    const H: f64 = 40.0;
    let top = values.iter().copied().fold(0.0, f64::max);
    let step = W / (values.len().max(2) - 1) as f64;
    let points = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let y = if top > 0.0 { v / top * (H - 4.0) } else { 0.0 };
            format!("{:.1},{:.1}", i as f64 * step, H - 2.0 - y)
        })
        .collect::<Vec<_>>()
        .join(" ");
    html! {
        svg class="spark" viewBox="0 0 240 40" width="240" height="40" role="img" aria-label=(words) {
            title { (words) }
            polyline fill="none" stroke="currentColor" stroke-width="2" points=(points);
        }
    }
}

/// The overview's card of what was tracked and how fast.
fn tracked_card(a: &Activity, traffic: &Traffic) -> Markup {
    let per_hour: Vec<f64> = a.per_hour.iter().map(|n| *n as f64).collect();
    let busiest = a.per_hour.iter().max().copied().unwrap_or(0);
    let latency = traffic.latency_per_hour();
    let slowest = traffic.latency.iter().map(|h| h.max).fold(0.0, f64::max);
    let last = latency.last().copied().unwrap_or(0.0);
    html! {
        div class="card" { h2 { "Tracked" }
            p { strong { (a.today) } " today (since 00:00 UTC) · " strong { (a.week) } " in the last 7 days" }
            figure {
                (sparkline(&per_hour, &format!("Mails tracked per hour over the last 24 hours, at most {busiest} in an hour")))
                figcaption { "per hour, last 24 h (busiest hour: " (busiest) ")" }
            }
            figure {
                (sparkline(&latency, &format!("Seconds from seeing a mail to its delivery, mean per hour; slowest {slowest:.1} s")))
                figcaption { "seen → in the sink, mean per hour: " (format!("{last:.1}")) " s this hour, slowest " (format!("{slowest:.1}")) " s (since the agent started)" }
            }
        }
    }
}

fn counts(title: &str, map: &BTreeMap<String, u64>) -> Markup {
    html! {
        table {
            caption { (title) }
            @for (k, v) in map { tr { th scope="row" { (k) } td class="n" { (v) } } }
            @if map.is_empty() { tr { td { "none yet" } } }
        }
    }
}

fn sink_state(status: &StatusView) -> Markup {
    match &status.sink_unavailable {
        None => badge("✓", "sink answers", "ok"),
        Some(o) => html! {
            (badge("✕", "sink unavailable", "bad"))
            p { "Since " (time(Some(o.since))) ": " (o.reason) ". The outbox waits and is delivered when it answers (next try " (time(Some(o.next_probe))) ")." }
        },
    }
}

/// `/`: mailboxes by state, the sink, the queues, what was tracked and the traffic.
pub fn overview(status: &StatusView, traffic: &Traffic, tracked: &Activity) -> Markup {
    let mut by_state: BTreeMap<&str, usize> = BTreeMap::new();
    for m in &status.mailboxes {
        *by_state.entry(m.status.health.label()).or_default() += 1;
    }
    let body = html! {
        section class="cards" {
            div class="card" { h2 { "Mailboxes" } ul { @for (state, n) in &by_state { li { (n) " " (state) } } } }
            div class="card" { h2 { "Sink" } (sink_state(status)) }
            div class="card" { h2 { "Queues" } ul {
                li { a href="/items" { (status.outbox) " in the outbox" } }
                li { a href="/items" { (status.undelivered) " undeliverable or rejected" } }
                li { (status.pending_write_backs) " write-backs pending" }
                li { (status.unreadable) " unreadable" }
            } }
            (tracked_card(tracked, traffic))
            div class="card" { h2 { "Exchange" }
                p { (traffic.calls.values().sum::<u64>()) " EWS calls"
                    @if !traffic.graph.is_empty() { ", " (traffic.graph.values().sum::<u64>()) " Graph requests" }
                    ", " (traffic.throttled()) " answered “busy”" }
                p { (traffic.episodes) " throttling episodes (the server asked for a pause)" }
                @if let Some(c) = &status.capacity {
                    @if c.keeps_cadence { p { (badge("✓", "cadence kept", "ok")) } }
                    @else { p { (badge("⚠", "cadence not kept", "warn")) " " (c.advice.as_deref().unwrap_or("")) } }
                }
            }
        }
        table {
            caption { "Mailboxes" }
            thead { tr { th { "Mailbox" } th { "State" } th { "Changes seen by" } th { "Last sync" } th { "Next sync" } th class="n" { "Tracked" } } }
            tbody { @for m in &status.mailboxes { tr {
                td { (mailbox_link(&m.status.address)) }
                td { (health_badge(&m.status.health, m.status.syncing)) }
                td { (watching_badge(&m.status.notifications)) }
                td { (time(m.status.last_sync_finished)) }
                td { (time(m.status.next_sync)) }
                td class="n" { (m.status.tracked) }
            } } }
        }
        section class="cards" {
            (counts("EWS calls by outcome", &traffic.calls))
            @if !traffic.graph.is_empty() { (counts("Graph requests by outcome", &traffic.graph)) }
            (counts("Tracking requests by outcome", &traffic.requests))
        }
    };
    layout("Overview", true, body)
}

/// Notified (seconds) or polled (the cadence), in words and an icon.
fn watching_badge(d: &Delivery) -> Markup {
    match d {
        Delivery::Notified => badge("⚡", "notified", "ok"),
        Delivery::Pulled { .. } => badge("⟳", "pulled", "ok"),
        Delivery::Polled { .. } => badge("↻", "polled", ""),
        Delivery::Pending => badge("…", "subscribing", ""),
    }
}

/// The answer to a form, shown on top of the page it came from.
pub struct Notice {
    pub status: StatusCode,
    ok: bool,
    text: String,
}

impl Notice {
    pub fn refused(text: &str) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            ok: false,
            text: text.into(),
        }
    }

    pub fn sync_now(answer: &SyncNow) -> Self {
        let (ok, text) = match answer {
            SyncNow::Done { tracked } => (
                true,
                format!(
                    "Synced now: {tracked} tracking request(s) found; every request of this mailbox is in the sink."
                ),
            ),
            SyncNow::Waiting { message, .. } => (false, message.clone()),
            SyncNow::Fallback { reason, .. } => (
                false,
                format!("Could not sync now: {reason}; the next regular sync picks the mail up."),
            ),
            SyncNow::UnknownMailbox => (false, "No such mailbox is configured.".into()),
        };
        Self {
            status: StatusCode::OK,
            ok,
            text,
        }
    }

    pub fn retried(n: usize, dry_run: bool) -> Self {
        let text = if dry_run {
            format!("Dry run: {n} item(s) would be sent again (listed below); nothing was changed.")
        } else {
            format!("{n} item(s) sent back to the outbox for delivery.")
        };
        Self {
            status: StatusCode::OK,
            ok: true,
            text,
        }
    }
}

fn notice(n: Option<&Notice>) -> Markup {
    html! { @if let Some(n) = n {
        @if n.ok { p class="notice ok" role="status" { "✓ " (n.text) } }
        @else { p class="notice bad" role="alert" { "✕ " (n.text) } }
    } }
}

/// The token field of a form that changes state, when a token is configured.
fn token_field(asks: bool) -> Markup {
    html! { @if asks { label { "Admin token " input type="password" name="token" autocomplete="current-password"; } } }
}

fn problem_rows(items: &[ItemLine]) -> Markup {
    html! {
        @if !items.is_empty() { table {
            thead { tr { th { "State" } th { "Mailbox" } th { "Folder" } th { "Subject" } th { "Reason" } th { "When" } th class="n" { "Attempts" } } }
            tbody { @for i in items { tr {
                td { (item_badge(i.state)) }
                td { (mailbox_link(&i.mailbox)) }
                td { (i.folder) }
                td {
                    @if i.state == ItemState::Unreadable { (i.subject.as_deref().unwrap_or("–")) }
                    @else { (item_link(&i.id, i.subject.as_deref())) }
                    br; small { (i.internet_message_id.as_deref().unwrap_or(&i.event_id)) }
                }
                td { (i.reason) @if let Some(s) = &i.superseded_by { br; small { "superseded by " (s) " (not sent again)" } } }
                td { (time(i.at)) }
                td class="n" { (i.attempts) }
            } } }
        } }
        @if items.is_empty() { p { "No problem items." } }
    }
}

fn recent_rows(recent: &[MessageRecord]) -> Markup {
    html! {
        @if recent.is_empty() { p { "Nothing tracked yet." } }
        @else { table {
            thead { tr { th { "Subject" } th { "Folder" } th { "Regarding" } th { "Sink" } th { "Last" } } }
            tbody { @for r in recent { tr {
                td { (item_link(&r.id, r.subject.as_deref())) }
                td { (r.location.as_ref().map_or("(left the mapped folders)", |l| l.path.as_str())) }
                td { @if let Some(g) = &r.regarding { (g) } @else { "–" } }
                td { @if r.delivered >= r.events { (badge("✓", "delivered", "ok")) } @else { (badge("…", "waiting", "warn")) } }
                td { @if let Some(h) = r.history.last() { (time(Some(h.at))) br; small { (h.what) } } }
            } } }
        } }
    }
}

/// `/mailboxes/{address}`: its state with reason and fix, mappings, problems, track-now.
pub fn mailbox(
    view: &MailboxView,
    problems: &[ItemLine],
    recent: &[MessageRecord],
    answer: Option<&Notice>,
    asks: bool,
) -> Markup {
    let s = &view.status;
    let (reason, fix) = match &s.health {
        Health::Retrying { last_error, .. } | Health::Parked { last_error, .. } => {
            (Some(last_error.as_str()), s.health.fix())
        }
        Health::Disabled { error, .. } => (Some(error.as_str()), s.health.fix()),
        Health::Healthy => (None, None),
    };
    let body = html! {
        (notice(answer))
        p { (health_badge(&s.health, s.syncing)) }
        @if let Some(r) = reason { p { strong { "Why: " } (r) } }
        @if let Some(f) = fix { p { strong { "Fix: " } (f) } }
        dl {
            dt { "Last sync" } dd { (time(s.last_sync_finished)) }
            dt { "Next sync" } dd { (time(s.next_sync)) @if !s.next_why.is_empty() { br; small { "Why: " (s.next_why) } } }
            dt { "Cadence" } dd { (s.cadence) ": every " (s.interval_secs) " s" @if let Some(c) = s.cycle_secs { " (achieved " (c) " s)" } }
            dt { "Changes seen by" } dd { (watching_badge(&s.notifications)) br; small { (s.notifications.describe()) } }
            dt { "Tracked" } dd { (s.tracked) " since start" }
            dt { "Failed syncs" } dd { (s.failed_syncs) }
        }
        form method="post" action={ "/mailboxes/" (s.address) "/track-now" } {
            (token_field(asks))
            button type="submit" { "Track now" }
            small { " Syncs this mailbox at once and waits (5 s at most) until its requests are in the sink." }
        }
        @if !view.mappings.is_empty() { table {
            caption { "Mapped folders" }
            thead { tr { th { "Folder" } th { "Regarding" } th { "State" } } }
            tbody { @for m in &view.mappings { tr {
                td { (m.path.as_deref().unwrap_or(&m.name)) }
                td { @if let Some(r) = &m.regarding { (r.entity) " " (r.id) } @else { "–" } }
                td { (mapping_badge(&m.state))
                    @for h in view.held.iter().filter(|h| m.regarding.as_ref() == Some(&h.regarding)) {
                        br; small { (h.reason) "; next try " (time(Some(h.next_probe))) }
                    }
                }
            } } }
        } }
        @if view.mappings.is_empty() { p { "No mapped folder resolved yet: they are listed after the first sync that reaches the mailbox." } }
        h2 { "Recent tracking requests" }
        (recent_rows(recent))
        h2 { "Problem items" }
        (problem_rows(problems))
    };
    layout(&s.address, answer.is_none(), body)
}

fn outcome_badge(o: Outcome) -> Markup {
    let (symbol, tone) = match o {
        Outcome::Delivered | Outcome::NoRegarding | Outcome::Watched => ("✓", "ok"),
        Outcome::Waiting | Outcome::Retrying | Outcome::Held | Outcome::Baseline => ("…", "warn"),
        _ => ("✕", "bad"),
    };
    badge(symbol, o.words(), tone)
}

/// The retry buttons for the items a search `q` finds.
fn retry_form(q: &str, asks: bool, what: &str) -> Markup {
    html! {
        form method="post" action="/items/retry" {
            input type="hidden" name="q" value=(q);
            (token_field(asks))
            button type="submit" name="dry_run" value="1" { "Retry (dry run)" }
            " "
            button type="submit" { "Retry" }
            small { " " (what) }
        }
    }
}

/// `/items/{id}`: one tracked mail's story, as `explain` tells it, with its retry buttons.
pub fn explain(id: &str, stories: &[Story], asks: bool) -> Markup {
    let body = html! {
        @for s in stories {
            h2 { (s.title) }
            p { (outcome_badge(s.outcome)) }
            @if let Some(subject) = &s.subject { p { strong { "Subject: " } (subject) } }
            @if let Some(r) = &s.regarding { p { strong { "Regarding: " } (r) } }
            ol class="story" { @for l in &s.lines { li { @if let Some(at) = l.at { small { (time(Some(at))) } " " } (l.what) } } }
            @if let Some(f) = &s.fix { p { strong { "Fix: " } (f) } }
            p { small { "Rules: " (s.rules.join(", ")) } }
            @if matches!(s.outcome, Outcome::Undeliverable | Outcome::Rejected) {
                (retry_form(id, asks, "Sends this mail's request to the sink again."))
            }
        }
        @if stories.is_empty() { p { "The store keeps no story for this item." } }
        p { small { "The same story as " code { "foldertrack explain" } " and " code { "GET /v1/explain" } "." } }
    };
    layout(&format!("Item {id}"), true, body)
}

/// `/items?q=…`: problem items matching the search, with retry buttons.
pub fn items(
    q: &str,
    found: &[ItemLine],
    answer: Option<&(Notice, Vec<ItemLine>)>,
    asks: bool,
) -> Markup {
    let body = html! {
        (notice(answer.map(|(n, _)| n)))
        @if let Some((_, chosen)) = answer { @if !chosen.is_empty() { h2 { "Chosen by the retry" } (problem_rows(chosen)) } }
        form method="get" action="/items" class="search" {
            label { "Search " input type="search" name="q" value=(q) placeholder="address, subject or Message-ID"; }
            button type="submit" { "Search" }
        }
        (retry_form(q, asks, "Sends the undeliverable and rejected items shown again."))
        h2 { "Problem items" @if !q.is_empty() { " matching “" (q) "”" } }
        (problem_rows(found))
    };
    layout("Items", answer.is_none(), body)
}

/// `/config`: the settings in force and the offline checks.
pub fn config(view: &ConfigView) -> Markup {
    let body = html! {
        h2 { "Checks" }
        ul class="checks" { @for c in &view.checks { li { @match c.level.as_str() {
            "ok" => (badge("✓", "ok", "ok")),
            "warn" => (badge("⚠", "warning", "warn")),
            _ => (badge("✕", "failed", "bad")),
        } " " (c.text) } } }
        h2 { "Settings" }
        pre { @for line in &view.settings { (line) "\n" } }
    };
    layout("Config", true, body)
}

/// The sign-in form (from another machine).
pub fn login(why: &str) -> Markup {
    let body = html! {
        p { (why) }
        form method="post" action="/login" {
            label { "Admin token " input type="password" name="token" autocomplete="current-password"; }
            button type="submit" { "Sign in" }
        }
    };
    layout("Sign in", false, body)
}

/// A page that only says something.
pub fn message(title: &str, text: &str) -> Markup {
    layout(title, false, html! { p { (text) } })
}
