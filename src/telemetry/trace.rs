//! W3C Trace Context (`traceparent`) across the bus: read from a command's AMQP headers,
//! kept in its Redis record, written as a child on every event it causes, so one
//! command can be followed from its publisher through callbacks to its result event.

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

/// The given traceparent when valid, written as version 00 (the version payfleet
/// speaks), otherwise a new trace (a publisher that sent none or a broken one still gets
/// a command that can be followed from the worker on).
pub fn continue_from(traceparent: Option<&str>) -> String {
    match traceparent.and_then(parse) {
        Some(p) => format!("00-{}-{}-{}", p.trace_id, p.parent_id, p.flags),
        None => new_root(),
    }
}

/// A child of `parent`: the same trace id and flags, a fresh parent id. A missing or
/// invalid parent starts a new trace.
pub fn child_of(parent: Option<&str>) -> String {
    match parent.and_then(parse) {
        Some(p) => format!("00-{}-{}-{}", p.trace_id, span_id(), p.flags),
        None => new_root(),
    }
}

/// The trace id of a traceparent, for log fields.
pub fn trace_id(traceparent: &str) -> Option<&str> {
    parse(traceparent).map(|p| p.trace_id)
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
            assert_eq!(continue_from(Some(tp)), TP);
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
            assert_eq!(parse(&continue_from(parent)).map(|_| ()), Some(()));
        }
        assert_eq!(continue_from(Some(TP)), TP);
    }
}
