//! Parsing `stonith_admin --history=<node> --output-as=xml`.
//!
//! Pacemaker 2.1 prints one `<fence_event>` per operation with `action`, `target`, `status`
//! (`success`, `failed` or `pending`), `delegate`, `origin` and, once finished, `completed`
//! (`2026-11-21 18:30:50 +00:00`). The domain code asks one question of it: was this node
//! fenced, and when.

use quick_xml::Reader;
use quick_xml::events::Event;

/// Outcome of one fencing operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FenceState {
    Success,
    Failed,
    Pending,
}

/// One entry of the fencing history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FenceEvent {
    pub target: String,
    pub action: String,
    pub state: FenceState,
    /// Completion time as printed.
    pub completed: Option<String>,
    /// Completion time in seconds since the epoch, when it could be parsed.
    pub completed_epoch: Option<i64>,
    pub delegate: Option<String>,
}

impl FenceEvent {
    /// A finished `off` or `reboot`: the node has been powered off at least once.
    pub fn is_successful_fence(&self) -> bool {
        self.state == FenceState::Success && matches!(self.action.as_str(), "off" | "reboot")
    }
}

/// Every `<fence_event>` in the document; unparsable input gives an empty list.
pub fn parse_history_xml(xml: &str) -> Vec<FenceEvent> {
    let mut r = Reader::from_str(xml);
    let mut out = Vec::new();
    loop {
        match r.read_event() {
            Ok(Event::Start(e) | Event::Empty(e)) if e.name().as_ref() == "fence_event" => {
                let mut ev = FenceEvent {
                    target: String::new(),
                    action: String::new(),
                    state: FenceState::Pending,
                    completed: None,
                    completed_epoch: None,
                    delegate: None,
                };
                for a in e.attributes().flatten() {
                    let v = a.normalized_value(quick_xml::XmlVersion::Implicit1_0).map(|v| v.to_string()).unwrap_or_default();
                    match a.key.as_ref() {
                        "target" => ev.target = v,
                        "action" => ev.action = v,
                        "status" => {
                            ev.state = match v.as_str() {
                                "success" => FenceState::Success,
                                "failed" => FenceState::Failed,
                                _ => FenceState::Pending,
                            }
                        }
                        "completed" => {
                            ev.completed_epoch = parse_time(&v);
                            ev.completed = Some(v);
                        }
                        "delegate" => ev.delegate = Some(v),
                        _ => {}
                    }
                }
                out.push(ev);
            }
            Ok(Event::Eof) | Err(_) => break,
            _ => {}
        }
    }
    out
}

/// Parses `YYYY-MM-DD HH:MM:SS[ ±HH:MM|Z]` (also with `T`) into seconds since the epoch.
pub fn parse_time(s: &str) -> Option<i64> {
    let s = s.trim();
    let (date, rest) = s.split_at(s.find([' ', 'T'])?);
    let rest = rest[1..].trim();
    let mut d = date.split('-').map(|x| x.parse::<i64>());
    let (y, mo, da) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let (time, zone) = match rest.find([' ', '+', '-', 'Z']) {
        Some(i) => (&rest[..i], rest[i..].trim()),
        None => (rest, ""),
    };
    let mut t = time.split(':').map(|x| x.split('.').next().unwrap_or("").parse::<i64>());
    let (h, mi, se) = (t.next()?.ok()?, t.next()?.ok()?, t.next().unwrap_or(Ok(0)).ok()?);
    let offset = if zone.is_empty() || zone == "Z" {
        0
    } else {
        let sign = if zone.starts_with('-') { -1 } else { 1 };
        let z = zone.trim_start_matches(['+', '-']).replace(':', "");
        let hh: i64 = z.get(0..2)?.parse().ok()?;
        let mm: i64 = z.get(2..4).unwrap_or("0").parse().ok()?;
        sign * (hh * 3600 + mm * 60)
    };
    // Days from civil (H. Hinnant).
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + da - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + se - offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_history() {
        let xml = r#"<pacemaker-result api-version="2.25" request="stonith_admin --history=compute-0 --output-as=xml">
  <fence_history>
    <fence_event action="reboot" target="compute-0" client="pacemaker-controld.2911" origin="ctl0" status="success" delegate="ctl0" completed="2026-11-21 18:30:50 +00:00"/>
    <fence_event action="off" target="compute-0" client="stonith_admin" origin="ctl0" status="failed" exit-reason="x" completed="2026-11-21 18:29:00Z"/>
    <fence_event action="on" target="compute-0" client="c" origin="ctl0" status="pending" extended-status="1"/>
  </fence_history>
  <status code="0" message="OK"/>
</pacemaker-result>"#;
        let h = parse_history_xml(xml);
        assert_eq!(h.len(), 3);
        assert!(h[0].is_successful_fence());
        assert_eq!(h[0].completed_epoch, Some(1_795_285_850));
        assert_eq!(h[1].state, FenceState::Failed);
        assert!(!h[1].is_successful_fence());
        assert_eq!(h[2].state, FenceState::Pending);
        assert!(parse_history_xml("not xml <<<").is_empty());
    }

    #[test]
    fn times() {
        assert_eq!(parse_time("1970-01-01 00:00:00"), Some(0));
        assert_eq!(parse_time("1970-01-01 01:00:00 +01:00"), Some(0));
        assert_eq!(parse_time("2000-03-01T00:00:00Z"), Some(951_868_800));
        assert_eq!(parse_time("garbage"), None);
    }
}
