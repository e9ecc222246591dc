//! W3C Trace Context (`traceparent`, `tracestate`) across the bus: read from a
//! command's AMQP headers, kept in its Redis record, written as a child on every event
//! it causes, so one command can be followed from its publisher through callbacks to
//! its result event.
//!
//! payfleet carries a command's trace context as one string, its *carried* form: the
//! traceparent (version 00), then, when the publisher sent a valid tracestate, a space
//! and that tracestate unchanged (§3.3: kept as is while the trace is continued). A
//! traceparent has no space, so the first one splits them ([`split`]); one string
//! keeps the record's field and every function that passes a trace on as they were.

/// `version-traceid-parentid-flags`, e.g. `00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceParent<'a> {
    pub trace_id: &'a str,
    pub parent_id: &'a str,
    pub flags: &'a str,
}

fn lower_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Length of a version-00 traceparent.
const V00_LEN: usize = 55;

/// Parses a traceparent as W3C Trace Context §3.2 and §4.3 say: version 00 exactly; a
/// higher version (not `ff`) by its first 55 characters, followed by nothing or by `-`
/// and fields this version does not know. `None` when malformed or an id is all zeros.
pub fn parse(s: &str) -> Option<TraceParent<'_>> {
    let s = s.trim();
    let version = s.get(..2)?;
    if !lower_hex(version, 2) || version == "ff" {
        return None;
    }
    let known = match (version, s.len()) {
        ("00", V00_LEN) => s,
        ("00", _) => return None,
        (_, V00_LEN) => s,
        (_, n) if n > V00_LEN && s.as_bytes()[V00_LEN] == b'-' => &s[..V00_LEN],
        _ => return None,
    };
    let mut parts = known.split('-');
    let (_, trace_id, parent_id, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let valid = parts.next().is_none()
        && lower_hex(trace_id, 32)
        && lower_hex(parent_id, 16)
        && lower_hex(flags, 2)
        && trace_id.bytes().any(|b| b != b'0')
        && parent_id.bytes().any(|b| b != b'0');
    valid.then_some(TraceParent {
        trace_id,
        parent_id,
        flags,
    })
}

fn span_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..16].to_owned()
}

/// A new trace (sampled).
pub fn new_root() -> String {
    format!("00-{}-{}-01", uuid::Uuid::new_v4().simple(), span_id())
}

/// The carried form of a message's `traceparent` and `tracestate` headers: the
/// traceparent written as version 00 (the version payfleet speaks), with the tracestate
/// when it is valid. `None` when the traceparent is missing or invalid: its tracestate
/// goes with it (§3.3.1.1: a tracestate belongs to the traceparent's trace).
pub fn received(traceparent: Option<&str>, tracestate: Option<&str>) -> Option<String> {
    let p = traceparent.and_then(parse)?;
    let tp = format!("00-{}-{}-{}", p.trace_id, p.parent_id, p.flags);
    Some(with_state(tp, tracestate.and_then(valid_state)))
}

/// [`received`], or a new trace (a publisher that sent none or a broken one still gets
/// a command that can be followed from the worker on).
pub fn continue_from(traceparent: Option<&str>, tracestate: Option<&str>) -> String {
    received(traceparent, tracestate).unwrap_or_else(new_root)
}

/// A child of `parent` (carried form): the same trace id, flags and tracestate, a fresh
/// parent id. A missing or invalid parent starts a new trace.
pub fn child_of(parent: Option<&str>) -> String {
    let (traceparent, tracestate) = parent.map_or((None, None), |c| {
        let (tp, ts) = split(c);
        (Some(tp), ts)
    });
    match traceparent.and_then(parse) {
        Some(p) => with_state(
            format!("00-{}-{}-{}", p.trace_id, span_id(), p.flags),
            tracestate,
        ),
        None => new_root(),
    }
}

/// A carried trace context as its `traceparent` and `tracestate` header values.
pub fn split(carried: &str) -> (&str, Option<&str>) {
    match carried.split_once(' ') {
        Some((tp, ts)) => (tp, Some(ts)),
        None => (carried, None),
    }
}

/// The trace id of a traceparent (or a carried context), for log fields.
pub fn trace_id(traceparent: &str) -> Option<&str> {
    parse(split(traceparent).0).map(|p| p.trace_id)
}

fn with_state(traceparent: String, tracestate: Option<&str>) -> String {
    match tracestate {
        Some(ts) => format!("{traceparent} {ts}"),
        None => traceparent,
    }
}

/// Most list members a tracestate may have, and most characters it may take (§3.3.1.1,
/// §3.3.1.5): past either it is dropped whole rather than cut.
const MAX_MEMBERS: usize = 32;
const MAX_STATE_LEN: usize = 512;

/// `tracestate` as received (without surrounding blanks) when every list member is
/// well formed and no key repeats (§3.3.1); `None` otherwise, or when it is empty.
pub fn valid_state(tracestate: &str) -> Option<&str> {
    let s = tracestate.trim_matches([' ', '\t']);
    if s.is_empty() || s.len() > MAX_STATE_LEN {
        return None;
    }
    let mut keys = Vec::new();
    // Empty members (`a=1,,b=2`) are allowed and count for nothing.
    for member in s.split(',').map(|m| m.trim_matches([' ', '\t'])) {
        if member.is_empty() {
            continue;
        }
        let (key, value) = member.split_once('=')?;
        if !(valid_key(key) && valid_value(value)) || keys.contains(&key) {
            return None;
        }
        keys.push(key);
    }
    (!keys.is_empty() && keys.len() <= MAX_MEMBERS).then_some(s)
}

/// `simple-key` or `tenant-id@system-id` (§3.3.1.3.1).
fn valid_key(key: &str) -> bool {
    let rest = |s: &str, max: usize| {
        s.len() <= max
            && s.bytes()
                .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'*' | b'/'))
    };
    let starts = |s: &str, digit: bool| {
        s.bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || (digit && b.is_ascii_digit()))
    };
    match key.split_once('@') {
        None => starts(key, false) && rest(&key[1..], 255),
        Some((tenant, system)) => {
            starts(tenant, true)
                && rest(&tenant[1..], 240)
                && starts(system, false)
                && rest(&system[1..], 13)
        }
    }
}

/// 1 to 256 printable ASCII characters but `,` and `=`, not ending in a space
/// (§3.3.1.3.2).
fn valid_value(value: &str) -> bool {
    (1..=256).contains(&value.len())
        && !value.ends_with(' ')
        && value
            .bytes()
            .all(|b| matches!(b, 0x20..=0x7e) && b != b',' && b != b'=')
}

#[cfg(test)]
mod tests {
    use super::*;

    const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn parses_the_spec_example() {
        let p = parse(TP).unwrap();
        assert_eq!(p.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(p.parent_id, "00f067aa0ba902b7");
        assert_eq!(p.flags, "01");
    }

    #[test]
    fn refuses_malformed_ones() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",
        ] {
            assert!(parse(bad).is_none(), "{bad:?}");
        }
    }

    /// §4.3: a higher version is read by the fields version 00 knows, and continued as
    /// version 00.
    #[test]
    fn a_higher_version_is_read_by_what_version_00_knows() {
        let v1 = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let later = "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future-adds";
        for tp in [v1, later] {
            let p = parse(tp).unwrap();
            assert_eq!(p.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736", "{tp}");
            assert_eq!(continue_from(Some(tp), None), TP);
        }
    }

    #[test]
    fn a_child_keeps_the_trace_and_changes_the_parent() {
        let child = child_of(Some(TP));
        let c = parse(&child).unwrap();
        assert_eq!(c.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_ne!(c.parent_id, "00f067aa0ba902b7");
        assert_eq!(c.flags, "01");
    }

    #[test]
    fn a_missing_or_broken_parent_starts_a_new_trace() {
        for parent in [None, Some("garbage")] {
            let tp = child_of(parent);
            assert!(parse(&tp).is_some(), "{tp}");
            assert_eq!(parse(&continue_from(parent, None)).map(|_| ()), Some(()));
        }
        assert_eq!(continue_from(Some(TP), None), TP);
    }

    const STATE: &str = "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE";

    #[test]
    fn a_tracestate_goes_unchanged_from_the_command_to_its_events() {
        let carried = continue_from(Some(TP), Some(STATE));
        assert_eq!(split(&carried), (TP, Some(STATE)));
        assert_eq!(trace_id(&carried), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
        let child = child_of(Some(&carried));
        let (tp, ts) = split(&child);
        assert_eq!(ts, Some(STATE));
        assert_eq!(
            parse(tp).unwrap().trace_id,
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_ne!(tp, TP);
        // A higher version is continued as 00, its tracestate kept.
        let v1 = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(
            received(Some(v1), Some(STATE)),
            Some(format!("{TP} {STATE}"))
        );
    }

    #[test]
    fn a_tracestate_without_its_traceparent_is_dropped_with_it() {
        for parent in [None, Some("00-garbage")] {
            assert_eq!(received(parent, Some(STATE)), None);
            let (tp, ts) = split_owned(&continue_from(parent, Some(STATE)));
            assert!(parse(&tp).is_some(), "{tp}");
            assert_eq!(ts, None, "a new trace starts without the old state");
        }
        assert_eq!(child_of(None).split(' ').count(), 1);
    }

    fn split_owned(carried: &str) -> (String, Option<String>) {
        let (tp, ts) = split(carried);
        (tp.to_owned(), ts.map(str::to_owned))
    }

    #[test]
    fn a_valid_tracestate_is_kept_as_received() {
        let members: Vec<String> = (0..32).map(|n| format!("k{n}=v")).collect();
        let thirty_two = members.join(",");
        for ok in [
            "rojo=00f067aa0ba902b7",
            STATE,
            "tenant1@sys=a b,x/y*z_-=~",
            "a=1,,b=2",
            thirty_two.as_str(),
        ] {
            assert_eq!(valid_state(ok), Some(ok), "{ok:?}");
        }
        assert_eq!(valid_state("  a=1 ,\tb=2 "), Some("a=1 ,\tb=2"));
    }

    #[test]
    fn an_invalid_tracestate_is_dropped_whole() {
        let members: Vec<String> = (0..33).map(|n| format!("k{n}=v")).collect();
        let thirty_three = members.join(",");
        let long = format!("a={}", "x".repeat(257));
        let too_long: String = (0..6)
            .map(|n| format!("k{n}={}", "x".repeat(90)))
            .collect::<Vec<_>>()
            .join(",");
        assert!(too_long.len() > 512);
        for bad in [
            "",
            " , ",
            "novalue",
            "Upper=1",
            "1digit=1",
            "a=tab\there",
            "a=b=c",
            "a=1,a=2",
            "a=\u{e9}",
            "tenant@toolongsystemid=1",
            "@sys=1",
            long.as_str(),
            thirty_three.as_str(),
            too_long.as_str(),
        ] {
            assert_eq!(valid_state(bad), None, "{bad:?}");
            assert_eq!(received(Some(TP), Some(bad)), Some(TP.to_owned()));
        }
    }
}
