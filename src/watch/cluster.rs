//! Past one machine: which member of a group of agents owns a mailbox. Ownership is computed,
//! never negotiated: rendezvous (highest-random-weight) hashing of the lower-cased address over
//! the member numbers, with SHA-256 so every machine and every build agrees. Changing the
//! member count moves only the mailboxes whose highest weight changed: growing from N to N+1
//! moves about 1/(N+1) of them, all to the new member.

use super::MailboxConfig;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// The most members a group may have.
pub const MAX_MEMBERS: u32 = 1000;

/// `[cluster]`: this agent's place in a group of agents that share the configured mailboxes.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// How many agents share the mailboxes (1–1000; 1, the default, is a single agent).
    #[schemars(range(min = 1, max = MAX_MEMBERS))]
    pub members: Option<u32>,
    /// This agent's number, 0 to `members - 1`.
    #[schemars(range(min = 0, max = MAX_MEMBERS - 1))]
    pub member: Option<u32>,
    /// Take the number from the host name's last `-N` (a Kubernetes StatefulSet's pod
    /// `foldertrack-3` is member 3) instead of `member`.
    pub member_from_hostname: bool,
    /// While the member count changes: the count before. A mailbox this agent now owns that
    /// another member owned before waits, not watched, until its state is handed over
    /// (`foldertrack handover`), so that it is neither baselined afresh nor tracked twice. A
    /// member numbered past the new count owns nothing: it finishes its outbox and hands over.
    #[schemars(range(min = 1, max = MAX_MEMBERS))]
    pub previous_members: Option<u32>,
}

impl ClusterConfig {
    /// The member count (1 when not set).
    pub fn members(&self) -> u32 {
        self.members.unwrap_or(1)
    }

    /// Problems with the section, as `field: what to do`; `hostname` is read only with
    /// `member_from_hostname`.
    pub fn problems(&self, hostname: impl FnOnce() -> Option<String>) -> Vec<String> {
        let mut out = Vec::new();
        let members = self.members();
        if !(1..=MAX_MEMBERS).contains(&members) {
            out.push(format!(
                "cluster.members: {members} is out of range; use 1 to {MAX_MEMBERS}"
            ));
        }
        if let Some(p) = self
            .previous_members
            .filter(|p| !(1..=MAX_MEMBERS).contains(p))
        {
            out.push(format!(
                "cluster.previous_members: {p} is out of range; use 1 to {MAX_MEMBERS}"
            ));
        }
        match (self.member, self.member_from_hostname) {
            (Some(_), true) => out.push(
                "cluster.member: set either member or member_from_hostname, not both".into(),
            ),
            (None, false) if members > 1 => out.push(format!(
                "cluster.member: with members = {members}, set member (0 to {}) or member_from_hostname = true",
                members - 1
            )),
            _ => {}
        }
        if let Err(e) = self.member_number(hostname) {
            out.push(e);
        }
        out.dedup();
        out
    }

    /// This agent's number: `member`, the host name's ordinal, or 0 for a single agent.
    pub fn member_number(&self, hostname: impl FnOnce() -> Option<String>) -> Result<u32, String> {
        let members = self.members();
        let number = if self.member_from_hostname {
            let name = hostname().unwrap_or_default();
            ordinal(&name).ok_or_else(|| {
                format!("cluster.member_from_hostname: the host name {name:?} does not end in -N (a StatefulSet pod's ordinal); set cluster.member instead")
            })?
        } else {
            self.member.unwrap_or(0)
        };
        // While shrinking, a leaving member (its number only in the previous count) owns
        // nothing: it delivers what it has and answers handover exports.
        let leaving = self.previous_members.is_some_and(|p| number < p);
        if number >= members && !leaving {
            return Err(format!(
                "cluster.member: member {number} does not exist with members = {members}; use 0 to {}",
                members.saturating_sub(1)
            ));
        }
        Ok(number)
    }
}

/// The ordinal of a StatefulSet pod's host name: `foldertrack-3` → 3.
pub fn ordinal(hostname: &str) -> Option<u32> {
    let (_, n) = hostname.trim().rsplit_once('-')?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse().ok()
}

/// The member (0 to `members - 1`) that owns `address`.
pub fn owner(address: &str, members: u32) -> u32 {
    let address = address.to_ascii_lowercase();
    (0..members.max(1))
        .max_by_key(|&m| weight(&address, m))
        .unwrap_or(0)
}

/// The rendezvous weight of (address, member): stable across machines and builds.
fn weight(address: &str, member: u32) -> u64 {
    let mut h = Sha256::new();
    h.update(address.as_bytes());
    h.update(b"\0");
    h.update(member.to_be_bytes());
    let digest = h.finalize();
    u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"))
}

/// This member's share of the configured mailboxes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Share {
    /// Owned, and owned by this member before the member count changed (or no change).
    pub owned: Vec<Arc<MailboxConfig>>,
    /// Owned now, but another member's before the change: wait for their state.
    pub incoming: Vec<Arc<MailboxConfig>>,
    /// Other members' mailboxes.
    pub skipped: usize,
}

impl Share {
    /// Every mailbox this member owns, watched or waiting for its handover.
    pub fn all(self) -> Vec<Arc<MailboxConfig>> {
        [self.owned, self.incoming].concat()
    }
}

/// Splits `mailboxes` for `member` of `members`, given the count before a change.
pub fn share(
    mailboxes: &[Arc<MailboxConfig>],
    member: u32,
    members: u32,
    previous_members: Option<u32>,
) -> Share {
    let mut out = Share::default();
    for m in mailboxes {
        if owner(&m.address, members) != member {
            out.skipped += 1;
        } else if previous_members.is_some_and(|p| owner(&m.address, p) != member) {
            out.incoming.push(m.clone());
        } else {
            out.owned.push(m.clone());
        }
    }
    out
}

/// What `status` and the admin API say about this agent's place in the group.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterView {
    /// This agent's number.
    pub member: u32,
    pub members: u32,
    /// Mailboxes this agent owns (watched or waiting for a handover).
    pub owned: usize,
    /// Mailboxes other members own.
    pub skipped: usize,
    /// Owned mailboxes waiting for their state from the previous owner.
    #[serde(default)]
    pub awaiting_handover: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addresses(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("user{i}@example.com")).collect()
    }

    /// `n` mailboxes without mapped folders.
    fn unmapped(n: usize) -> Vec<Arc<MailboxConfig>> {
        addresses(n)
            .into_iter()
            .map(|address| {
                Arc::new(MailboxConfig {
                    address,
                    track_sent_items: false,
                    folder: Vec::new(),
                })
            })
            .collect()
    }

    #[test]
    fn ownership_is_stable_and_ignores_case() {
        assert_eq!(owner("Alice@Example.com", 7), owner("alice@example.com", 7));
        assert_eq!(owner("anyone@example.com", 1), 0);
        // Fixed values: a change of hash would move the mailboxes of every running group.
        let got = [
            "a@x.com", "b@x.com", "c@x.com", "d@x.com", "e@x.com", "f@x.com",
        ]
        .map(|a| owner(a, 4));
        assert_eq!(got, [0, 2, 1, 1, 3, 1]);
    }

    /// The fewest and most of `all` one of `members` owns.
    fn spread(all: &[String], members: u32) -> (usize, usize) {
        let mut counts = vec![0usize; members as usize];
        for a in all {
            counts[owner(a, members) as usize] += 1;
        }
        (*counts.iter().min().unwrap(), *counts.iter().max().unwrap())
    }

    #[test]
    fn members_share_the_mailboxes_evenly() {
        // The figures README.md and docs/scale.md quote.
        let all = addresses(10_000);
        assert_eq!(spread(&all, 2), (4_903, 5_097));
        assert_eq!(spread(&all, 3), (3_285, 3_422));
        assert_eq!(spread(&all, 4), (2_455, 2_559));
        assert_eq!(spread(&all, 10), (960, 1_033));
    }

    #[test]
    fn growing_from_3_to_4_moves_about_a_quarter_and_only_to_the_new_member() {
        let all = addresses(10_000);
        let mut moved = 0;
        for a in &all {
            let (before, after) = (owner(a, 3), owner(a, 4));
            if before != after {
                moved += 1;
                assert_eq!(after, 3, "{a} moved from {before} to {after}");
            }
        }
        assert_eq!(moved, 2_487, "about 10,000 / 4");
    }

    #[test]
    fn shrinking_moves_only_the_leaving_members_mailboxes() {
        for a in addresses(2_000) {
            let (before, after) = (owner(&a, 4), owner(&a, 3));
            assert!(before == after || before == 3, "{a}: {before} -> {after}");
        }
    }

    #[test]
    fn statefulset_ordinals() {
        assert_eq!(ordinal("foldertrack-3"), Some(3));
        assert_eq!(ordinal("ft-eu-west-12\n"), Some(12));
        assert_eq!(ordinal("foldertrack"), None);
        assert_eq!(ordinal("foldertrack-"), None);
        assert_eq!(ordinal("foldertrack-a1"), None);
    }

    #[test]
    fn the_member_is_validated_with_what_to_do() {
        let c = |members, member, from_host| ClusterConfig {
            members: Some(members),
            member,
            member_from_hostname: from_host,
            previous_members: None,
        };
        let host = |name: &str| {
            let name = name.to_owned();
            move || Some(name)
        };
        assert!(ClusterConfig::default().problems(|| None).is_empty());
        assert_eq!(c(3, None, true).member_number(host("foldertrack-2")), Ok(2));
        let cases = [
            (
                c(3, None, false),
                "set member (0 to 2) or member_from_hostname = true",
            ),
            (
                c(3, Some(3), false),
                "member 3 does not exist with members = 3; use 0 to 2",
            ),
            (
                c(3, Some(1), true),
                "set either member or member_from_hostname, not both",
            ),
            (
                c(0, None, false),
                "cluster.members: 0 is out of range; use 1 to 1000",
            ),
        ];
        for (config, want) in cases {
            let got = config.problems(host("foldertrack-1"));
            assert!(got.iter().any(|p| p.contains(want)), "{want}: {got:?}");
        }
        let got = c(3, None, true).problems(host("mailer"));
        assert_eq!(
            got,
            [
                "cluster.member_from_hostname: the host name \"mailer\" does not end in -N (a StatefulSet pod's ordinal); set cluster.member instead"
            ]
        );
        let got = c(2, None, true).problems(host("foldertrack-5"));
        assert!(got[0].contains("member 5 does not exist"), "{got:?}");
    }

    #[test]
    fn a_member_leaving_a_shrinking_group_owns_nothing() {
        let leaving = ClusterConfig {
            members: Some(2),
            member: Some(2),
            member_from_hostname: false,
            previous_members: Some(3),
        };
        assert!(leaving.problems(|| None).is_empty());
        assert_eq!(leaving.member_number(|| None), Ok(2));
        let mailboxes = unmapped(50);
        let share = share(&mailboxes, 2, 2, Some(3));
        assert_eq!(share.skipped, 50);
        assert!(share.all().is_empty());
    }

    #[test]
    fn a_share_splits_owned_incoming_and_skipped() {
        let mailboxes = unmapped(400);
        let one = share(&mailboxes, 0, 1, None);
        assert_eq!(
            (one.owned.len(), one.incoming.len(), one.skipped),
            (400, 0, 0)
        );
        let zero = share(&mailboxes, 0, 2, Some(1));
        let first = share(&mailboxes, 1, 2, Some(1));
        assert!(zero.incoming.is_empty(), "member 0 owned everything before");
        assert!(first.owned.is_empty(), "member 1 owned nothing before");
        assert_eq!(zero.owned.len() + first.incoming.len(), 400);
        assert_eq!(zero.skipped, first.incoming.len());
    }
}
