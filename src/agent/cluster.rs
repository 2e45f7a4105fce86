//! The agent's share of a group's mailboxes (`[cluster]`): those it watches, and those that
//! wait for their state from the member that owned them before the member count changed.

use crate::config::{Config, MailboxConfig};
use crate::store::{self, Store, handover};
use crate::watch::cluster::ClusterView;
use std::sync::Arc;

/// What this agent watches, and what waits for a handover.
#[derive(Debug)]
pub struct Plan {
    pub watched: Vec<Arc<MailboxConfig>>,
    pub awaiting: Vec<Arc<MailboxConfig>>,
    pub view: ClusterView,
}

/// The plan for `config` over what `store` holds: a mailbox that came from another member is
/// watched once its state is here (handed over, or watched here before).
pub fn plan<S: Store>(config: &Config, store: &S) -> Result<Plan, store::Error> {
    let share = config.share();
    let mut watched = share.owned;
    let mut awaiting = Vec::new();
    for m in share.incoming {
        if handover::has_state(store, &m.address)? {
            watched.push(m);
        } else {
            awaiting.push(m);
        }
    }
    let view = ClusterView {
        member: config.member(),
        members: config.cluster.members(),
        owned: watched.len() + awaiting.len(),
        skipped: share.skipped,
        awaiting_handover: awaiting.iter().map(|m| m.address.clone()).collect(),
    };
    if !view.awaiting_handover.is_empty() {
        tracing::warn!(
            event = "awaiting_handover",
            mailboxes = view.awaiting_handover.len(),
            "mailboxes that another member owned wait for `foldertrack handover import`"
        );
    }
    Ok(Plan {
        watched,
        awaiting,
        view,
    })
}
