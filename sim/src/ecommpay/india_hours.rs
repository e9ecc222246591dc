//! "Payouts are processed during the provider's working hours: from Monday to Friday
//! from 10:30 to 19:00 (GMT+8). During weekends and non-working hours, payouts are not
//! processed." Judged by a clock shifted by `clock_offset_ms`.

use chrono::{DateTime, Datelike, FixedOffset, Timelike, Utc, Weekday};

/// The provider's clock: UTC now shifted by `offset_ms`, seen at GMT+8.
pub fn provider_now(offset_ms: i64) -> DateTime<FixedOffset> {
    let gmt8 = FixedOffset::east_opt(8 * 3600).expect("GMT+8 is a valid offset");
    (Utc::now() + chrono::Duration::milliseconds(offset_ms)).with_timezone(&gmt8)
}

/// Whether the provider processes payouts at `t` (GMT+8): Mon–Fri, 10:30 ≤ t < 19:00.
pub fn is_open(t: DateTime<FixedOffset>) -> bool {
    let weekday = !matches!(t.weekday(), Weekday::Sat | Weekday::Sun);
    let minute = t.hour() * 60 + t.minute();
    weekday && (10 * 60 + 30..19 * 60).contains(&minute)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339(s).expect("a date")
    }

    #[test]
    fn hours_are_judged_at_gmt_plus_8() {
        assert!(is_open(at("2024-06-03T10:30:00+08:00"))); // Monday
        assert!(is_open(at("2024-06-07T18:59:59+08:00"))); // Friday
        assert!(!is_open(at("2024-06-07T19:00:00+08:00")));
        assert!(!is_open(at("2024-06-03T10:29:59+08:00")));
        assert!(!is_open(at("2024-06-08T12:00:00+08:00"))); // Saturday
        // Monday 03:00 UTC is 11:00 GMT+8.
        let utc = at("2024-06-03T03:00:00+00:00");
        let gmt8 = FixedOffset::east_opt(8 * 3600).expect("offset");
        assert!(is_open(utc.with_timezone(&gmt8)));
    }
}
