//! Writing what the mailbox-independent operations return: a ResolveNames resolution, a
//! GetServerTimeZones time zone definition (with its periods and transitions when asked) and
//! a ConvertId alternate id. Owns XML output only; the directory and the zone table live in
//! `ops/directory.rs`.

use super::Out;

/// One `t:Resolution`: the mailbox a name resolved to.
pub fn write_resolution(o: &mut Out, name: &str, address: &str) {
    o.t_open("Resolution");
    o.t_open("Mailbox");
    o.t_leaf("Name", name);
    o.t_leaf("EmailAddress", address);
    o.t_leaf("RoutingType", "SMTP");
    o.t_leaf("MailboxType", "Mailbox");
    o.t_close("Mailbox");
    o.t_close("Resolution");
}

/// When a zone switches to daylight saving time or back: at `time` (minutes after local
/// midnight) on the `occurrence`th `day` of `month` (-1: the last).
pub struct Switch {
    pub month: u8,
    pub day: &'static str,
    pub occurrence: i8,
    pub time: u16,
}

/// A Windows time zone: its id, display name, offset from UTC in minutes, and its daylight
/// saving rule (the switch to daylight time, then back).
pub struct Zone {
    pub id: &'static str,
    pub name: &'static str,
    pub offset: i16,
    pub daylight: Option<(Switch, Switch)>,
}

/// An `xs:duration` of whole minutes (`-PT1H`, `PT5H30M`, `PT0M`).
fn duration(minutes: i32) -> String {
    let sign = if minutes < 0 { "-" } else { "" };
    let (h, m) = (minutes.abs() / 60, minutes.abs() % 60);
    match (h, m) {
        (0, m) => format!("{sign}PT{m}M"),
        (h, 0) => format!("{sign}PT{h}H"),
        (h, m) => format!("{sign}PT{h}H{m}M"),
    }
}

/// One `t:TimeZoneDefinition`; with `full`, its periods and transitions.
pub fn write_zone(o: &mut Out, zone: &Zone, full: bool) {
    let n = o.t("TimeZoneDefinition");
    let e = o.w.element(&n).attr("Id", zone.id).attr("Name", zone.name);
    if !full {
        e.empty();
        return;
    }
    e.open();
    // Bias is what to add to local time to get UTC.
    let standard = -i32::from(zone.offset);
    o.t_open("Periods");
    write_period(o, standard, "Standard", "Std");
    if zone.daylight.is_some() {
        write_period(o, standard - 60, "Daylight", "Dlt");
    }
    o.t_close("Periods");
    o.t_open("TransitionsGroups");
    let g = o.t("TransitionsGroup");
    o.w.element(&g).attr("Id", "0").open();
    match &zone.daylight {
        Some((to_daylight, to_standard)) => {
            write_switch(o, to_daylight, "Dlt");
            write_switch(o, to_standard, "Std");
        }
        None => {
            o.t_open("Transition");
            write_target(o, "Period", "Std");
            o.t_close("Transition");
        }
    }
    o.w.close(&g);
    o.t_close("TransitionsGroups");
    o.t_open("Transitions");
    o.t_open("Transition");
    write_target(o, "Group", "0");
    o.t_close("Transition");
    o.t_close("Transitions");
    o.w.close(&n);
}

fn write_period(o: &mut Out, bias: i32, name: &str, id: &str) {
    let n = o.t("Period");
    o.w.element(&n)
        .attr("Bias", &duration(bias))
        .attr("Name", name)
        .attr("Id", id)
        .empty();
}

fn write_target(o: &mut Out, kind: &str, to: &str) {
    let n = o.t("To");
    o.w.element(&n).attr("Kind", kind).text(to);
}

fn write_switch(o: &mut Out, s: &Switch, to: &str) {
    o.t_open("RecurringDayTransition");
    write_target(o, "Period", to);
    o.t_leaf("TimeOffset", &duration(i32::from(s.time)));
    o.t_leaf("Month", &s.month.to_string());
    o.t_leaf("DayOfWeek", s.day);
    o.t_leaf("Occurrence", &s.occurrence.to_string());
    o.t_close("RecurringDayTransition");
}

/// `m:AlternateId xsi:type="t:AlternateIdType"`, the converted id.
pub fn write_alternate_id(o: &mut Out, format: &str, id: &str, mailbox: &str) {
    let n = o.m("AlternateId");
    let ty = o.t("AlternateIdType");
    o.w.element(&n)
        .attr("xmlns:xsi", "http://www.w3.org/2001/XMLSchema-instance")
        .attr("xsi:type", &ty)
        .attr("Format", format)
        .attr("Id", id)
        .attr("Mailbox", mailbox)
        .empty();
}

#[cfg(test)]
mod tests {
    use super::duration;

    #[test]
    fn durations_are_xs_durations() {
        assert_eq!(duration(0), "PT0M");
        assert_eq!(duration(-60), "-PT1H");
        assert_eq!(duration(330), "PT5H30M");
        assert_eq!(duration(-570), "-PT9H30M");
    }
}
