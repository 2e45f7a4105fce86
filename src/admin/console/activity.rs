//! What the overview and mailbox pages count, from the store's message records (the same
//! records `explain` and `items` read): mails tracked per hour, today and this week, and a
//! mailbox's latest ones. PURE over the records and the time.

use crate::tracking::MessageRecord;
use jiff::{Timestamp, ToSpan};

/// Hours in the tracked-per-hour sparkline.
pub const HOURS: usize = 24;

/// Mails first tracked, by when.
#[derive(Debug, Default, PartialEq)]
pub struct Activity {
    /// Since 00:00 UTC.
    pub today: usize,
    /// In the last 7 days.
    pub week: usize,
    /// Per hour of the last [`HOURS`] hours, oldest first; the last one is the current hour.
    pub per_hour: Vec<u64>,
}

/// Counts `records` by when they were first tracked, as of `now`.
pub fn activity(records: &[MessageRecord], now: Timestamp) -> Activity {
    let day = now.as_second().div_euclid(86_400) * 86_400;
    let midnight = Timestamp::from_second(day).unwrap_or(now);
    let week_ago = now - 168.hours();
    let this_hour = now.as_second().div_euclid(3600);
    let mut out = Activity {
        per_hour: vec![0; HOURS],
        ..Activity::default()
    };
    for at in records.iter().filter_map(MessageRecord::tracked_at) {
        if at > now {
            continue;
        }
        out.today += usize::from(at >= midnight);
        out.week += usize::from(at > week_ago);
        let back = this_hour - at.as_second().div_euclid(3600);
        if let Ok(back) = usize::try_from(back)
            && back < HOURS
        {
            out.per_hour[HOURS - 1 - back] += 1;
        }
    }
    out
}

/// The `n` records `mailbox` tracked that changed last, latest first.
pub fn recent(records: Vec<MessageRecord>, mailbox: &str, n: usize) -> Vec<MessageRecord> {
    let mut own: Vec<_> = records
        .into_iter()
        .filter(|r| r.owner.eq_ignore_ascii_case(mailbox))
        .collect();
    own.sort_by_key(|r| std::cmp::Reverse(r.last_change()));
    own.truncate(n);
    own
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracking::HistoryEntry;

    fn record(owner: &str, lines: &[(&str, &str)]) -> MessageRecord {
        let history = lines
            .iter()
            .map(|(at, what)| HistoryEntry {
                at: at.parse().unwrap(),
                what: (*what).into(),
            })
            .collect();
        serde_json::from_value::<MessageRecord>(serde_json::json!({"o": owner, "e": 1, "h": []}))
            .map(|r| MessageRecord { history, ..r })
            .unwrap()
    }

    #[test]
    fn mails_count_by_when_they_were_first_tracked() {
        let now: Timestamp = "2026-12-01T10:30:00Z".parse().unwrap();
        let records = [
            record("a", &[("2026-12-01T10:05:00Z", "tracked from Inbox/C")]),
            record("a", &[("2026-12-01T08:59:59Z", "tracked from Inbox/C")]),
            record(
                "a",
                &[
                    ("2026-11-30T23:00:00Z", "tracked from Inbox/C"),
                    ("2026-12-01T10:00:00Z", "moved to Inbox/D"),
                ],
            ),
            record("a", &[("2026-11-25T12:00:00Z", "tracked from Inbox/C")]),
            record("a", &[("2026-11-20T12:00:00Z", "tracked from Inbox/C")]),
            // History pruned to its last line: when it was tracked is no longer known.
            record(
                "a",
                &[(
                    "2026-12-01T10:10:00Z",
                    "left Inbox/C (moved out or deleted)",
                )],
            ),
        ];
        let a = activity(&records, now);
        assert_eq!((a.today, a.week), (2, 4));
        assert_eq!(a.per_hour.len(), HOURS);
        assert_eq!(a.per_hour[HOURS - 1], 1, "10:05 is in the current hour");
        assert_eq!(a.per_hour[HOURS - 2], 0);
        assert_eq!(a.per_hour[HOURS - 3], 1, "08:59 two hours back");
        assert_eq!(a.per_hour[HOURS - 12], 1, "23:00 yesterday, 11 hours back");
        assert_eq!(a.per_hour.iter().sum::<u64>(), 3);
    }

    #[test]
    fn recent_lists_a_mailboxs_own_records_latest_change_first() {
        let records = vec![
            record("a@x", &[("2026-12-01T08:00:00Z", "tracked from I")]),
            record("b@x", &[("2026-12-01T11:00:00Z", "tracked from I")]),
            record(
                "A@x",
                &[
                    ("2026-12-01T07:00:00Z", "tracked from I"),
                    ("2026-12-01T09:00:00Z", "moved to J"),
                ],
            ),
            record("a@x", &[("2026-12-01T06:00:00Z", "tracked from I")]),
        ];
        let got = recent(records, "a@x", 2);
        let lines: Vec<_> = got
            .iter()
            .map(|r| r.history.last().unwrap().what.as_str())
            .collect();
        assert_eq!(lines, ["moved to J", "tracked from I"]);
        assert_eq!(
            got[1].history[0].at,
            "2026-12-01T08:00:00Z".parse().unwrap()
        );
    }
}
