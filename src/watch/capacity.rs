//! PURE: can the configured limits keep the configured cadence? Every mailbox syncs once per
//! interval, each pass costing about one call per mapped folder (plus the folder tree's check);
//! the account's rate and concurrency limits decide how many calls a second go out. When the
//! calls of one cycle over every mailbox take longer than the interval, mail waits longer than
//! the cadence promises: `check-config` and `status` say so, and what to set.

use super::MailboxConfig;
use super::cadence::CadenceSettings;
use super::mailbox::HIERARCHY_EVERY;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// How long one idle sync call takes, for the concurrency estimate (a healthy server answers
/// an idle SyncFolderItems in well under this).
pub const TYPICAL_CALL: Duration = Duration::from_millis(100);

/// Calls Exchange lets one account run at once (`EWSMaxConcurrency`); foldertrack keeps a
/// margin below it.
pub const EXCHANGE_CONCURRENCY: u32 = 27;

/// The account's limits, as the call gate applies them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CallLimits {
    pub per_second: u32,
    pub mailbox_per_second: u32,
    pub concurrency: u32,
}

/// What a configuration needs and what its limits allow.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Capacity {
    pub mailboxes: usize,
    /// Calls of one idle pass over every mailbox.
    pub calls_per_cycle: f64,
    /// Calls per second needed to sync every mailbox once per normal interval.
    pub needed_per_second: f64,
    /// Calls per second the limits allow.
    pub allowed_per_second: f64,
    /// The shortest cycle over every mailbox the limits allow, in seconds.
    pub cycle_secs: f64,
    pub normal_secs: u64,
    pub quiet_secs: u64,
    /// The cycle fits in the normal interval.
    pub keeps_cadence: bool,
    /// When it does not: what to set, in plain words.
    pub advice: Option<String>,
}

/// The calls of one idle pass of a mailbox: one per mapped folder (and Sent Items), and the
/// folder tree's check — every pass with `include_subfolders`, else every 10 minutes. A
/// mapping's subfolders are not known before the server is asked; each counts as one folder.
pub fn calls_per_pass(m: &MailboxConfig, normal: Duration) -> f64 {
    let folders = m.folder.len() + usize::from(m.track_sent_items);
    let tree = if m.folder.iter().any(|f| f.include_subfolders) {
        1.0
    } else {
        (normal.as_secs_f64() / HIERARCHY_EVERY.as_secs_f64()).min(1.0)
    };
    folders as f64 + tree
}

/// The verdict for these mailboxes under these limits and cadence.
pub fn capacity(
    mailboxes: &[Arc<MailboxConfig>],
    limits: CallLimits,
    cadence: &CadenceSettings,
) -> Capacity {
    let per_mailbox: Vec<f64> = mailboxes
        .iter()
        .map(|m| calls_per_pass(m, cadence.normal))
        .collect();
    let calls: f64 = per_mailbox.iter().sum();
    let normal = cadence.normal.as_secs_f64().max(1.0);
    let by_concurrency = f64::from(limits.concurrency.max(1)) / TYPICAL_CALL.as_secs_f64();
    let allowed = f64::from(limits.per_second.max(1)).min(by_concurrency);
    // One mailbox's calls go one at a time, at its own rate.
    let slowest_mailbox = per_mailbox.iter().copied().fold(0.0, f64::max)
        / f64::from(limits.mailbox_per_second.max(1));
    let cycle = (calls / allowed).max(slowest_mailbox);
    let needed = calls / normal;
    let keeps = cycle <= normal;
    let advice = (!keeps).then(|| advise(calls, needed, cycle, limits, cadence, slowest_mailbox));
    Capacity {
        mailboxes: mailboxes.len(),
        calls_per_cycle: calls,
        needed_per_second: needed,
        allowed_per_second: allowed,
        cycle_secs: cycle,
        normal_secs: cadence.normal.as_secs(),
        quiet_secs: cadence.quiet.as_secs(),
        keeps_cadence: keeps,
        advice,
    }
}

fn advise(
    calls: f64,
    needed: f64,
    cycle: f64,
    limits: CallLimits,
    cadence: &CadenceSettings,
    slowest_mailbox: f64,
) -> String {
    let normal = cadence.normal.as_secs();
    let mut out = format!(
        "{calls:.0} calls per cycle need {needed:.1} calls/s to sync every mailbox each {normal} s, \
         but the limits allow a cycle of about {:.0} min",
        cycle / 60.0
    );
    if cycle > cadence.quiet.as_secs_f64() {
        out += &format!(
            ", longer than even the quiet interval ({} s)",
            cadence.quiet.as_secs()
        );
    }
    let concurrency = (needed * TYPICAL_CALL.as_secs_f64()).ceil() as u32;
    if slowest_mailbox > cadence.normal.as_secs_f64() {
        out += &format!(
            "; one mailbox alone needs {slowest_mailbox:.0} s at {} calls/s: raise [limits] \
             mailbox_calls_per_second",
            limits.mailbox_per_second
        );
    } else if concurrency + 3 > EXCHANGE_CONCURRENCY {
        let longest =
            (calls * TYPICAL_CALL.as_secs_f64() / f64::from(EXCHANGE_CONCURRENCY - 3)).ceil();
        out += &format!(
            "; that is more than one service account may run at once ({EXCHANGE_CONCURRENCY} \
             calls): set [cadence] normal_secs to at least {longest:.0}, or split the mailboxes \
             across service accounts"
        );
    } else {
        out += &format!("; set [limits] calls_per_second = {}", needed.ceil() as u64);
        if concurrency > limits.concurrency {
            out += &format!(" and max_concurrent_calls = {concurrency}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::watch::FolderMapping;

    fn mailboxes(n: usize, folders: usize) -> Vec<Arc<MailboxConfig>> {
        let folder = FolderMapping {
            path: Some("Inbox/A".into()),
            id: None,
            regarding: None,
            include_subfolders: false,
            track_existing: false,
            allow_outside_inbox: false,
            include_body: false,
        };
        (0..n)
            .map(|i| {
                Arc::new(MailboxConfig {
                    address: format!("user{i}@example.com"),
                    track_sent_items: false,
                    folder: vec![folder.clone(); folders],
                })
            })
            .collect()
    }

    const DEFAULTS: CallLimits = CallLimits {
        per_second: 20,
        mailbox_per_second: 2,
        concurrency: 8,
    };

    fn cadence() -> CadenceSettings {
        CadenceSettings {
            busy: Duration::from_secs(120),
            normal: Duration::from_secs(300),
            quiet: Duration::from_secs(720),
            jitter: 0.1,
        }
    }

    #[test]
    fn w11_r37_ten_thousand_mailboxes_at_the_default_limits_cannot_keep_the_cadence() {
        let c = capacity(&mailboxes(10_000, 5), DEFAULTS, &cadence());
        assert!(!c.keeps_cadence);
        // 5 folders + half a tree check each: 55,000 calls at 20/s.
        assert_eq!(c.calls_per_cycle.round(), 55_000.0);
        assert_eq!((c.cycle_secs / 60.0).round(), 46.0);
        let advice = c.advice.unwrap();
        assert!(advice.contains("quiet interval"), "{advice}");
        assert!(
            advice.contains("calls_per_second = 184 and max_concurrent_calls = 19"),
            "{advice}"
        );
        // Beyond what one account may run at once, the interval is what can give.
        let c = capacity(&mailboxes(40_000, 5), DEFAULTS, &cadence());
        let advice = c.advice.unwrap();
        assert!(advice.contains("normal_secs to at least 917"), "{advice}");
    }

    #[test]
    fn w11_r37_the_advice_names_the_rate_and_concurrency_to_set() {
        let c = capacity(&mailboxes(2_000, 5), DEFAULTS, &cadence());
        assert!(!c.keeps_cadence);
        let advice = c.advice.unwrap();
        assert!(
            advice.ends_with("set [limits] calls_per_second = 37"),
            "{advice}"
        );
    }

    #[test]
    fn w11_r37_a_small_office_keeps_the_cadence() {
        let c = capacity(&mailboxes(50, 3), DEFAULTS, &cadence());
        assert!(c.keeps_cadence);
        assert_eq!(c.advice, None);
        assert!(c.cycle_secs < 10.0);
    }
}
