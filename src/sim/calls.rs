//! The call log and statistics: every EWS call with its time, operation, account, impersonated
//! mailbox, X-AnchorMailbox, result and bytes; calls per operation; current and peak concurrency
//! per account and per mailbox — so tests can check how hard a client leans on Exchange.
//! Owns the bookkeeping; the HTTP layer reports into it.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

/// The log keeps this many calls; older ones are dropped (statistics keep counting).
pub const LOG_CAPACITY: usize = 100_000;

/// One EWS call as the simulator saw it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CallRecord {
    /// When the call arrived (RFC 3339).
    pub at: String,
    /// The operation element's name, or `-` when the request could not be read.
    pub operation: String,
    /// The authenticated account, when authentication succeeded.
    pub account: Option<String>,
    /// The mailbox named in ExchangeImpersonation.
    pub impersonated: Option<String>,
    /// The `X-AnchorMailbox` header.
    pub anchor_mailbox: Option<String>,
    /// `NoError`, a response code, or `HTTP 401` / `HTTP 503` / `dropped` / ….
    pub result: String,
    pub http_status: u16,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub duration_ms: u64,
}

/// Current and peak concurrency of one account or mailbox.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
pub struct Concurrency {
    pub current: u32,
    pub peak: u32,
}

/// What the simulator has served.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Stats {
    pub calls: u64,
    pub calls_per_operation: BTreeMap<String, u64>,
    pub results: BTreeMap<String, u64>,
    pub per_account: BTreeMap<String, Concurrency>,
    pub per_mailbox: BTreeMap<String, Concurrency>,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

#[derive(Debug, Default)]
pub struct Calls {
    log: VecDeque<CallRecord>,
    stats: Stats,
}

fn enter(map: &mut BTreeMap<String, Concurrency>, key: &str) -> u32 {
    let c = map.entry(key.to_owned()).or_default();
    c.current += 1;
    c.peak = c.peak.max(c.current);
    c.current
}

fn leave(map: &mut BTreeMap<String, Concurrency>, key: &str) {
    if let Some(c) = map.get_mut(key) {
        c.current = c.current.saturating_sub(1);
    }
}

impl Calls {
    /// A call for `account` starts; returns how many of its calls are now in flight.
    pub fn enter_account(&mut self, account: &str) -> u32 {
        enter(&mut self.stats.per_account, account)
    }

    pub fn leave_account(&mut self, account: &str) {
        leave(&mut self.stats.per_account, account);
    }

    /// A call on `mailbox` starts; returns how many of its calls are now in flight.
    pub fn enter_mailbox(&mut self, mailbox: &str) -> u32 {
        enter(&mut self.stats.per_mailbox, mailbox)
    }

    pub fn leave_mailbox(&mut self, mailbox: &str) {
        leave(&mut self.stats.per_mailbox, mailbox);
    }

    pub fn record(&mut self, call: CallRecord) {
        let s = &mut self.stats;
        s.calls += 1;
        *s.calls_per_operation
            .entry(call.operation.clone())
            .or_default() += 1;
        *s.results.entry(call.result.clone()).or_default() += 1;
        s.bytes_in += call.bytes_in;
        s.bytes_out += call.bytes_out;
        if self.log.len() == LOG_CAPACITY {
            self.log.pop_front();
        }
        self.log.push_back(call);
    }

    pub fn log(&self) -> Vec<CallRecord> {
        self.log.iter().cloned().collect()
    }

    pub fn stats(&self) -> Stats {
        self.stats.clone()
    }

    /// Forgets the log and the counters (concurrency now in flight is kept).
    pub fn reset(&mut self) {
        self.log.clear();
        let keep = |m: &BTreeMap<String, Concurrency>| {
            m.iter()
                .filter(|(_, c)| c.current > 0)
                .map(|(k, c)| {
                    (
                        k.clone(),
                        Concurrency {
                            current: c.current,
                            peak: c.current,
                        },
                    )
                })
                .collect()
        };
        self.stats = Stats {
            per_account: keep(&self.stats.per_account),
            per_mailbox: keep(&self.stats.per_mailbox),
            ..Stats::default()
        };
    }
}
