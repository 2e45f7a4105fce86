//! R24: a mail's email activity already regards another record than its folder says. Was that
//! foldertrack's own earlier link, or a change somebody made in Dynamics? And who wins?

use crate::tracking::TrackingRequest;
use jiff::Timestamp;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Who wins when a person changed a tracked mail's regarding in Dynamics and its folder says
/// otherwise.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RegardingPolicy {
    /// The folder's regarding is applied (as server-side sync does).
    #[default]
    FolderWins,
    /// The regarding set in Dynamics stays.
    ManualWins,
    /// The later of the change in Dynamics (`modifiedon`) and the move in the mailbox wins.
    LastActionWins,
}

/// What to do about the activity's regarding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Link it to the request's regarding; with a history line when that overrides a change
    /// made in Dynamics.
    Link(Option<String>),
    /// Leave the regarding set in Dynamics, and say so in the history.
    Keep(String),
}

/// Decides for an activity regarding `found` (its id) last modified at `modified`, when the
/// request wants another record. `found` is a person's change unless it is the record
/// foldertrack linked the mail to before (the request's previous regarding).
pub fn decide(
    policy: RegardingPolicy,
    request: &TrackingRequest,
    found: Option<&str>,
    modified: Option<Timestamp>,
) -> Decision {
    let Some(wanted) = &request.regarding else {
        return Decision::Link(None);
    };
    let ours = |id: &str| {
        request
            .previous_regarding
            .as_ref()
            .is_some_and(|p| p.id.eq_ignore_ascii_case(id))
    };
    let Some(manual) = found.filter(|id| !ours(id)) else {
        return Decision::Link(None);
    };
    let folder_later = modified.is_none_or(|m| m <= request.detected_at);
    let keep = match policy {
        RegardingPolicy::FolderWins => false,
        RegardingPolicy::ManualWins => true,
        RegardingPolicy::LastActionWins => !folder_later,
    };
    let name = match policy {
        RegardingPolicy::FolderWins => "folder_wins",
        RegardingPolicy::ManualWins => "manual_wins",
        RegardingPolicy::LastActionWins => "last_action_wins",
    };
    match keep {
        true => Decision::Keep(format!(
            "Dynamics: the regarding {manual} set there is kept; the folder's {wanted} is not applied ({name})"
        )),
        false => Decision::Link(Some(format!(
            "Dynamics: the regarding {manual} set there is replaced by the folder's {wanted} ({name})"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracking::{EventKind, FolderLocation, MessageInfo, Regarding};

    fn request(previous: Option<&str>) -> TrackingRequest {
        let account = |id: &str| Regarding {
            entity: "account".into(),
            id: id.into(),
        };
        TrackingRequest {
            id: "m".into(),
            event_id: "m.2".into(),
            sequence: 2,
            event: EventKind::Relinked,
            mailbox: "a@example.com".into(),
            folder: FolderLocation {
                id: "f".into(),
                path: "Inbox/B".into(),
            },
            mapping: "Inbox/B".into(),
            regarding: Some(account("b")),
            previous_regarding: previous.map(account),
            message: MessageInfo::default(),
            detected_at: "2026-12-01T10:00:00Z".parse().unwrap(),
        }
    }

    fn at(t: &str) -> Option<Timestamp> {
        Some(t.parse().unwrap())
    }

    #[test]
    fn foldertracks_own_earlier_link_is_no_manual_change() {
        for policy in [
            RegardingPolicy::FolderWins,
            RegardingPolicy::ManualWins,
            RegardingPolicy::LastActionWins,
        ] {
            let d = decide(
                policy,
                &request(Some("a")),
                Some("a"),
                at("2026-12-01T11:00:00Z"),
            );
            assert_eq!(d, Decision::Link(None), "{policy:?}");
        }
        let d = decide(RegardingPolicy::ManualWins, &request(None), None, None);
        assert_eq!(d, Decision::Link(None), "no regarding yet");
    }

    #[test]
    fn a_manual_change_is_replaced_kept_or_weighed_by_time() {
        let r = request(Some("a"));
        let (before, after) = (at("2026-12-01T09:00:00Z"), at("2026-12-01T11:00:00Z"));
        let linked = |d| matches!(d, Decision::Link(Some(_)));
        let kept = |d| matches!(d, Decision::Keep(_));
        assert!(linked(decide(
            RegardingPolicy::FolderWins,
            &r,
            Some("x"),
            after
        )));
        assert!(kept(decide(
            RegardingPolicy::ManualWins,
            &r,
            Some("x"),
            before
        )));
        assert!(linked(decide(
            RegardingPolicy::LastActionWins,
            &r,
            Some("x"),
            before
        )));
        assert!(kept(decide(
            RegardingPolicy::LastActionWins,
            &r,
            Some("x"),
            after
        )));
    }
}
