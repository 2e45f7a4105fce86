//! The operations that concern no folder: ResolveNames (against the simulator's mailboxes,
//! its whole directory), GetServerTimeZones (a fixed table of common Windows zones) and
//! ConvertId (between the id formats of `ids.rs`). Written with `respond/directory.rs`.

use super::context::{Answer, fault, ok};
use crate::ews::ResponseCode;
use crate::ews::convert_id::ConvertId;
use crate::ews::get_server_time_zones::GetServerTimeZones;
use crate::ews::resolve_names::ResolveNames;
use crate::sim::ids;
use crate::sim::respond::directory::{
    Switch, Zone, write_alternate_id, write_resolution, write_zone,
};
use crate::sim::respond::{MessageError, Out};
use crate::sim::shared::Inner;

/// At most this many resolutions, as Exchange caps ResolveNames.
const MAX_RESOLUTIONS: usize = 100;

/// The mailboxes a name stands for: the whole address, or a prefix of the address or of its
/// local part (case-insensitive; an `smtp:` prefix is ignored).
fn resolve(inner: &Inner, entry: &str) -> Vec<String> {
    let entry = entry.trim();
    let entry = entry
        .get(..5)
        .filter(|p| p.eq_ignore_ascii_case("smtp:"))
        .map_or(entry, |_| &entry[5..])
        .to_ascii_lowercase();
    let mut found: Vec<String> = inner
        .state
        .mailboxes
        .values()
        .map(|mb| mb.address.clone())
        .filter(|a| !entry.is_empty() && a.to_ascii_lowercase().starts_with(&entry))
        .collect();
    found.sort();
    found
}

pub(super) fn resolve_names(inner: &mut Inner, op: &ResolveNames) -> Answer {
    const OP: &str = "ResolveNames";
    let found = resolve(inner, &op.entry);
    let total = found.len();
    let shown = &found[..total.min(MAX_RESOLUTIONS)];
    let set = |o: &mut Out| {
        let n = o.m("ResolutionSet");
        o.w.element(&n)
            .attr_display("TotalItemsInView", total)
            .attr(
                "IncludesLastItemInRange",
                if shown.len() == total {
                    "true"
                } else {
                    "false"
                },
            )
            .open();
        for address in shown {
            let name = address.split('@').next().unwrap_or(address);
            write_resolution(o, name, address);
        }
        o.w.close(&n);
    };
    ok(Out::document(inner.style, |o| {
        o.response(OP, |o| match total {
            0 => o.message(
                OP,
                Err(&fault(
                    ResponseCode::ErrorNameResolutionNoResults,
                    "No results were found.",
                )),
                |_| {},
            ),
            1 => o.message(OP, Ok(()), set),
            _ => o.warning(
                OP,
                &fault(
                    ResponseCode::ErrorNameResolutionMultipleResults,
                    "Multiple results were found.",
                ),
                set,
            ),
        })
    }))
}

const EU_TO_SUMMER: Switch = Switch {
    month: 3,
    day: "Sunday",
    occurrence: -1,
    time: 120,
};
const EU_TO_WINTER: Switch = Switch {
    month: 10,
    day: "Sunday",
    occurrence: -1,
    time: 180,
};
const US_TO_SUMMER: Switch = Switch {
    month: 3,
    day: "Sunday",
    occurrence: 2,
    time: 120,
};
const US_TO_WINTER: Switch = Switch {
    month: 11,
    day: "Sunday",
    occurrence: 1,
    time: 120,
};

/// The zones the simulated server knows: a few common ones, with their current rules.
const ZONES: [Zone; 8] = [
    Zone {
        id: "UTC",
        name: "(UTC) Coordinated Universal Time",
        offset: 0,
        daylight: None,
    },
    Zone {
        id: "GMT Standard Time",
        name: "(UTC+00:00) Dublin, Edinburgh, Lisbon, London",
        offset: 0,
        daylight: Some((
            Switch {
                time: 60,
                ..EU_TO_SUMMER
            },
            Switch {
                time: 120,
                ..EU_TO_WINTER
            },
        )),
    },
    Zone {
        id: "W. Europe Standard Time",
        name: "(UTC+01:00) Amsterdam, Berlin, Bern, Rome, Stockholm, Vienna",
        offset: 60,
        daylight: Some((EU_TO_SUMMER, EU_TO_WINTER)),
    },
    Zone {
        id: "Romance Standard Time",
        name: "(UTC+01:00) Brussels, Copenhagen, Madrid, Paris",
        offset: 60,
        daylight: Some((EU_TO_SUMMER, EU_TO_WINTER)),
    },
    Zone {
        id: "India Standard Time",
        name: "(UTC+05:30) Chennai, Kolkata, Mumbai, New Delhi",
        offset: 330,
        daylight: None,
    },
    Zone {
        id: "Tokyo Standard Time",
        name: "(UTC+09:00) Osaka, Sapporo, Tokyo",
        offset: 540,
        daylight: None,
    },
    Zone {
        id: "Eastern Standard Time",
        name: "(UTC-05:00) Eastern Time (US & Canada)",
        offset: -300,
        daylight: Some((US_TO_SUMMER, US_TO_WINTER)),
    },
    Zone {
        id: "Pacific Standard Time",
        name: "(UTC-08:00) Pacific Time (US & Canada)",
        offset: -480,
        daylight: Some((US_TO_SUMMER, US_TO_WINTER)),
    },
];

pub(super) fn get_server_time_zones(inner: &mut Inner, op: &GetServerTimeZones) -> Answer {
    const OP: &str = "GetServerTimeZones";
    ok(Out::document(inner.style, |o| {
        o.response(OP, |o| {
            o.message(OP, Ok(()), |o| {
                o.m_open("TimeZoneDefinitions");
                for zone in ZONES
                    .iter()
                    .filter(|z| op.ids.is_empty() || op.ids.iter().any(|id| id == z.id))
                {
                    write_zone(o, zone, op.return_full_data);
                }
                o.m_close("TimeZoneDefinitions");
            })
        })
    }))
}

pub(super) fn convert_id(inner: &mut Inner, op: &ConvertId) -> Answer {
    const OP: &str = "ConvertId";
    let results: Vec<Result<(String, &str), MessageError>> = op
        .ids
        .iter()
        .map(|a| {
            ids::convert_id(&a.id, &a.format, &op.destination_format)
                .map(|id| (id, a.mailbox.as_str()))
                .ok_or_else(|| fault(ResponseCode::ErrorInvalidIdMalformed, "Id is malformed."))
        })
        .collect();
    ok(Out::document(inner.style, |o| {
        o.response(OP, |o| {
            for r in &results {
                match r {
                    Ok((id, mailbox)) => o.message(OP, Ok(()), |o| {
                        write_alternate_id(o, &op.destination_format, id, mailbox)
                    }),
                    Err(e) => o.message(OP, Err(e), |_| {}),
                }
            }
        })
    }))
}
