//! The notification operations: Subscribe (pull and streaming; push is refused), GetEvents,
//! GetStreamingEvents (answered as a `StreamPlan` the HTTP layer holds open, fed by
//! `stream_envelope`) and Unsubscribe. Only the account that subscribed may read or end a
//! subscription. The queues live in `notify.rs`; events are written with `respond/events.rs`.

use super::context::{Answer, Ctx, StreamPlan, fault, fault_answer, locate, ok, own_mailbox};
use crate::ews::ResponseCode;
use crate::ews::get_events::GetEvents;
use crate::ews::get_streaming_events::GetStreamingEvents;
use crate::ews::subscribe::{Mode, Subscribe};
use crate::sim::ids;
use crate::sim::notify::{self, Event, Kind, Subscription};
use crate::sim::respond::events::write_event;
use crate::sim::respond::{Doc, MessageError, NotificationNs, Out, error_document};
use crate::sim::shared::Inner;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::Notify;

/// EWSMaxSubscriptions in Exchange Online: per target mailbox.
const MAX_SUBSCRIPTIONS_PER_MAILBOX: usize = 20;

pub(super) fn subscribe(inner: &mut Inner, ctx: &Ctx<'_>, op: &Subscribe) -> Answer {
    const OP: &str = "Subscribe";
    let subscription = match new_subscription(inner, ctx, op) {
        Ok(s) => s,
        Err(e) => return ok(error_document(inner.style, OP, &e)),
    };
    let pull = matches!(subscription.kind, Kind::Pull { .. });
    let n = inner.subs.add(subscription);
    ok(Out::document(inner.style, |o| {
        o.response(OP, |o| {
            o.message(OP, Ok(()), |o| {
                o.m_leaf("SubscriptionId", &ids::subscription_id(n));
                if pull {
                    o.m_leaf("Watermark", &ids::watermark(n, 0));
                }
            })
        })
    }))
}

/// The subscription a Subscribe asks for, or the error to send: push is refused, every folder
/// must resolve in the mailbox the call acts on (delegates cannot subscribe, as on Exchange),
/// and a mailbox has at most `MAX_SUBSCRIPTIONS_PER_MAILBOX`.
fn new_subscription(
    inner: &Inner,
    ctx: &Ctx<'_>,
    op: &Subscribe,
) -> Result<Subscription, MessageError> {
    let kind = match &op.mode {
        Mode::Pull {
            timeout_minutes, ..
        } => Kind::Pull {
            timeout: ctx.minute * (*timeout_minutes).clamp(1, 1440),
        },
        Mode::Streaming if !inner.streaming => return Err(no_streaming()),
        Mode::Streaming => Kind::Streaming,
        Mode::Push { .. } => {
            return Err(fault(
                ResponseCode::ErrorInvalidPushSubscriptionUrl,
                "Push notifications are not supported by the simulator; use pull or streaming subscriptions.",
            ));
        }
    };
    let mailbox = own_mailbox(ctx)?;
    let folders = if op.all_folders {
        None
    } else {
        let mut set = HashSet::new();
        for sel in &op.folders {
            let at = locate(inner, ctx, sel)?;
            if at.mailbox != mailbox {
                return Err(fault(
                    ResponseCode::ErrorSubscriptionDelegateAccessNotSupported,
                    "Subscriptions are not supported for delegate user access.",
                ));
            }
            set.insert(at.folder);
        }
        Some(set)
    };
    let existing = inner
        .subs
        .subs
        .values()
        .filter(|s| s.mailbox == mailbox)
        .count();
    if existing >= MAX_SUBSCRIPTIONS_PER_MAILBOX {
        return Err(fault(
            ResponseCode::ErrorExceededSubscriptionCount,
            "You have exceeded the maximum number of subscriptions for this mailbox.",
        ));
    }
    let event_types = op
        .events
        .iter()
        .map(|e| e.as_str())
        .filter(|t| notify::EVENT_TYPES.contains(t))
        .map(str::to_owned)
        .collect();
    Ok(Subscription {
        owner: ctx.account.to_owned(),
        mailbox,
        folders,
        event_types,
        kind,
        queue: Default::default(),
        next_event: 0,
        last_access: Instant::now(),
        wake: Arc::new(Notify::new()),
        streaming: false,
        backend: ctx.affinity.preferred.clone(),
    })
}

/// What a server older than Exchange 2010 SP1 says to streaming.
fn no_streaming() -> MessageError {
    fault(
        ResponseCode::ErrorInvalidServerVersion,
        "Streaming notifications require Exchange Server 2010 Service Pack 1 or later.",
    )
}

/// Looks up a subscription for its owner, or the error to send.
fn own_subscription<'a>(
    inner: &'a mut Inner,
    ctx: &Ctx<'_>,
    id: &str,
) -> Result<(u64, &'a mut Subscription), MessageError> {
    let (n, s) = inner.subs.get_mut(id, Instant::now()).ok_or_else(|| {
        fault(
            ResponseCode::ErrorSubscriptionNotFound,
            "The specified subscription was not found.",
        )
    })?;
    if s.owner != ctx.account {
        return Err(fault(
            ResponseCode::ErrorSubscriptionAccessDenied,
            "A subscription can only be read by the account that created it.",
        ));
    }
    Ok((n, s))
}

/// GetEvents returns at most this many events per call.
const MAX_EVENTS: usize = 50;

pub(super) fn get_events(inner: &mut Inner, ctx: &Ctx<'_>, op: &GetEvents) -> Answer {
    const OP: &str = "GetEvents";
    let style = inner.style;
    let result = own_subscription(inner, ctx, op.subscription_id.as_str()).and_then(|(n, s)| {
        if !matches!(s.kind, Kind::Pull { .. }) {
            return Err(fault(
                ResponseCode::ErrorInvalidPullSubscriptionId,
                "The subscription is not a pull subscription.",
            ));
        }
        let seen = match ids::parse_watermark(op.watermark.as_str()) {
            Some((sub, e)) if sub == n && e <= s.next_event => e,
            _ => {
                return Err(fault(
                    ResponseCode::ErrorInvalidWatermark,
                    "The watermark is invalid.",
                ));
            }
        };
        s.last_access = Instant::now();
        while s.queue.front().is_some_and(|(e, _)| *e <= seen) {
            s.queue.pop_front();
        }
        let events: Vec<(u64, Event)> = s.queue.iter().take(MAX_EVENTS).cloned().collect();
        let more = s.queue.len() > MAX_EVENTS;
        Ok((n, seen, events, more))
    });
    ok(Out::document(style, |o| {
        o.response(OP, |o| match &result {
            Err(e) => o.message(OP, Err(e), |_| {}),
            Ok((n, seen, events, more)) => o.message(OP, Ok(()), |o| {
                o.m_open("Notification");
                o.t_leaf("SubscriptionId", &ids::subscription_id(*n));
                o.t_leaf("PreviousWatermark", &ids::watermark(*n, *seen));
                o.t_leaf("MoreEvents", if *more { "true" } else { "false" });
                if events.is_empty() {
                    o.t_open("StatusEvent");
                    o.t_leaf("Watermark", &ids::watermark(*n, *seen));
                    o.t_close("StatusEvent");
                }
                for (e, event) in events {
                    write_event(o, event, Some(&ids::watermark(*n, *e)));
                }
                o.m_close("Notification");
            }),
        })
    }))
}

pub(super) fn get_streaming_events(
    inner: &mut Inner,
    ctx: &Ctx<'_>,
    op: &GetStreamingEvents,
) -> Answer {
    const OP: &str = "GetStreamingEvents";
    if !inner.streaming {
        return ok(error_document(inner.style, OP, &no_streaming()));
    }
    if !(1..=30).contains(&op.connection_timeout) || op.subscription_ids.is_empty() {
        return fault_answer(
            inner,
            &fault(
                ResponseCode::ErrorSchemaValidation,
                "The request failed schema validation: ConnectionTimeout must be 1 to 30 and at least one SubscriptionId is required.",
            )
            .with("Violation", "ConnectionTimeout or SubscriptionIds"),
        );
    }
    // Charged to the mailbox an impersonated call acts as, else to the account (ews-protocol
    // §3.6: impersonation is how a service opens more connections than one account may hold).
    let charged_to = ctx
        .mailbox
        .map_or_else(|| ctx.account.to_owned(), |m| format!("mailbox #{m}"));
    let open = inner.streams_open.get(&charged_to).copied().unwrap_or(0);
    if open >= inner.hanging_connection_limit {
        let e = fault(
            ResponseCode::ErrorExceededConnectionCount,
            "You have exceeded the available concurrent connections for your account. Try again once your other requests have completed.",
        );
        return ok(error_document(inner.style, OP, &e));
    }
    let mut plan = StreamPlan {
        charged_to,
        subscriptions: Vec::new(),
        wakes: Vec::new(),
        timeout: ctx.minute * op.connection_timeout,
    };
    let mut bad = Vec::new();
    for id in &op.subscription_ids {
        match own_subscription(inner, ctx, id.as_str()) {
            // Pinned to a back end this request was not routed to: not found there.
            Ok((_, s)) if s.backend.is_some() && s.backend != ctx.affinity.routed_to => {
                bad.push(id.0.clone())
            }
            Ok((n, s)) if s.kind == Kind::Streaming => {
                s.streaming = true;
                plan.subscriptions.push((n, id.0.clone()));
                plan.wakes.push(s.wake.clone());
            }
            _ => bad.push(id.0.clone()),
        }
    }
    if bad.is_empty() {
        *inner
            .streams_open
            .entry(plan.charged_to.clone())
            .or_default() += 1;
        return Answer::Stream(plan);
    }
    let e = fault(
        ResponseCode::ErrorInvalidSubscription,
        "The subscription is invalid.",
    );
    ok(Out::document(inner.style, |o| {
        o.response(OP, |o| {
            o.message(OP, Err(&e), |o| {
                o.m_open("ErrorSubscriptionIds");
                for id in &bad {
                    o.t_leaf("SubscriptionId", id);
                }
                o.m_close("ErrorSubscriptionIds");
            })
        })
    }))
}

/// One streamed envelope: pending events of the plan's subscriptions, the ones that ceased to
/// exist since (ErrorSubscriptionNotFound, listed in `ErrorSubscriptionIds`, then no longer
/// served), or a connection status.
pub fn stream_envelope(
    inner: &mut Inner,
    plan: &mut StreamPlan,
    status: Option<&str>,
) -> Option<Doc> {
    const OP: &str = "GetStreamingEvents";
    let (live, gone): (Vec<_>, Vec<_>) = std::mem::take(&mut plan.subscriptions)
        .into_iter()
        .partition(|(n, _)| inner.subs.subs.contains_key(n));
    plan.subscriptions = live;
    if !gone.is_empty() {
        // One code per envelope: the ones whose events were lost first; the others are named
        // in the next envelope.
        let (missed, lapsed): (Vec<_>, Vec<_>) = gone
            .into_iter()
            .partition(|(n, _)| inner.subs.missed.remove(n));
        let (e, gone) = if missed.is_empty() {
            let e = fault(
                ResponseCode::ErrorSubscriptionNotFound,
                "The specified subscription was not found.",
            );
            (e, lapsed)
        } else {
            plan.subscriptions.extend(lapsed);
            let e = fault(
                ResponseCode::ErrorMissedNotificationEvents,
                "Events were missed: the subscription must be re-created.",
            );
            (e, missed)
        };
        return Some(Out::envelope(inner.style, false, |o| {
            o.response(OP, |o| {
                o.message(OP, Err(&e), |o| {
                    o.m_open("ErrorSubscriptionIds");
                    for (_, id) in &gone {
                        o.t_leaf("SubscriptionId", id);
                    }
                    o.m_close("ErrorSubscriptionIds");
                })
            })
        }));
    }
    let mut batches: Vec<(String, Vec<Event>)> = Vec::new();
    for (n, id) in &plan.subscriptions {
        if let Some(s) = inner.subs.subs.get_mut(n)
            && !s.queue.is_empty()
        {
            batches.push((id.clone(), s.queue.drain(..).map(|(_, e)| e).collect()));
        }
    }
    if batches.is_empty() && status.is_none() {
        return None;
    }
    let types_ns = inner.style.notification_ns == NotificationNs::Types;
    Some(Out::envelope(inner.style, false, |o| {
        o.response(OP, |o| {
            o.message(OP, Ok(()), |o| {
                if !batches.is_empty() {
                    o.m_open("Notifications");
                    for (id, events) in &batches {
                        if types_ns {
                            o.t_open("Notification");
                        } else {
                            o.m_open("Notification");
                        }
                        o.t_leaf("SubscriptionId", id);
                        for e in events {
                            write_event(o, e, None);
                        }
                        if types_ns {
                            o.t_close("Notification");
                        } else {
                            o.m_close("Notification");
                        }
                    }
                    o.m_close("Notifications");
                }
                if let Some(s) = status {
                    o.m_leaf("ConnectionStatus", s);
                }
            })
        })
    }))
}

pub(super) fn unsubscribe(inner: &mut Inner, ctx: &Ctx<'_>, id: &str) -> Answer {
    const OP: &str = "Unsubscribe";
    let result = own_subscription(inner, ctx, id).map(|(n, _)| n);
    if let Ok(n) = result {
        inner.subs.subs.remove(&n);
    }
    ok(Out::document(inner.style, |o| {
        o.response(OP, |o| match &result {
            Ok(_) => o.message(OP, Ok(()), |_| {}),
            Err(e) => o.message(OP, Err(e), |_| {}),
        })
    }))
}
