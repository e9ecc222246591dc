//! The provider's payout hours: Monday to Friday, 10:30 to 19:00 GMT+8. Outside them
//! payouts are not processed, so payfleet holds them until the window opens.
//!
//! The clock is injectable so that tests and the demo can put "now" anywhere in the
//! week: payfleet and the sandbox each read it from their `clock_offset_ms` setting.

use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveTime, Utc, Weekday};

/// Where "now" comes from.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock shifted by a fixed offset (zero in production).
#[derive(Debug, Clone, Copy, Default)]
pub struct OffsetClock {
    pub offset: Duration,
}

impl OffsetClock {
    pub fn from_ms(offset_ms: i64) -> Self {
        OffsetClock {
            offset: Duration::milliseconds(offset_ms),
        }
    }

    /// The offset that makes this clock read `at` now.
    pub fn reading(at: DateTime<Utc>) -> Self {
        OffsetClock {
            offset: at - Utc::now(),
        }
    }
}

impl Clock for OffsetClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.offset
    }
}

fn zone() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).expect("GMT+8 is a valid offset")
}

fn opens() -> NaiveTime {
    NaiveTime::from_hms_opt(10, 30, 0).expect("valid time")
}

fn closes() -> NaiveTime {
    NaiveTime::from_hms_opt(19, 0, 0).expect("valid time")
}

fn working_day(day: Weekday) -> bool {
    !matches!(day, Weekday::Sat | Weekday::Sun)
}

/// Whether the provider processes payouts at `at`: 19:00 itself is closed.
pub fn is_open(at: DateTime<Utc>) -> bool {
    let local = at.with_timezone(&zone());
    let t = local.time();
    working_day(local.weekday()) && t >= opens() && t < closes()
}

/// The first moment at or after `at` when payouts are processed.
pub fn next_open(at: DateTime<Utc>) -> DateTime<Utc> {
    if is_open(at) {
        return at;
    }
    let local = at.with_timezone(&zone());
    let mut day = local.date_naive();
    if local.time() >= opens() {
        day = day.succ_opt().expect("far from the end of time");
    }
    while !working_day(day.weekday()) {
        day = day.succ_opt().expect("far from the end of time");
    }
    day.and_time(opens())
        .and_local_timezone(zone())
        .single()
        .expect("a fixed offset has no gaps")
        .with_timezone(&Utc)
}

/// How long a payout must wait, by `clock`, before it may be sent; `None` when now.
pub fn wait(clock: &dyn Clock) -> Option<std::time::Duration> {
    let now = clock.now();
    let opens = next_open(now);
    (opens > now).then(|| (opens - now).to_std().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A moment given in GMT+8. 2026-11-27 is a Friday.
    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_str(&format!("{s} +0800"), "%Y-%m-%d %H:%M:%S %z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn friday_evening_edge() {
        assert!(is_open(at("2026-11-27 18:59:00")));
        assert!(is_open(at("2026-11-27 18:59:59")));
        assert!(!is_open(at("2026-11-27 19:00:00")));
        assert_eq!(
            next_open(at("2026-11-27 19:00:00")),
            at("2026-11-30 10:30:00")
        );
    }

    #[test]
    fn the_weekend_is_closed() {
        assert!(!is_open(at("2026-11-28 12:00:00")));
        assert!(!is_open(at("2026-11-29 23:59:59")));
        assert_eq!(
            next_open(at("2026-11-28 12:00:00")),
            at("2026-11-30 10:30:00")
        );
        assert_eq!(
            next_open(at("2026-11-29 11:00:00")),
            at("2026-11-30 10:30:00")
        );
    }

    #[test]
    fn monday_morning_edge() {
        assert!(!is_open(at("2026-11-30 10:29:00")));
        assert!(!is_open(at("2026-11-30 10:29:59")));
        assert!(is_open(at("2026-11-30 10:30:00")));
        assert_eq!(
            next_open(at("2026-11-30 10:29:00")),
            at("2026-11-30 10:30:00")
        );
        assert_eq!(
            next_open(at("2026-11-30 10:30:00")),
            at("2026-11-30 10:30:00")
        );
    }

    #[test]
    fn weekday_nights_open_the_next_morning() {
        assert_eq!(
            next_open(at("2026-11-24 22:00:00")),
            at("2026-11-25 10:30:00")
        );
        assert_eq!(
            next_open(at("2026-11-25 03:00:00")),
            at("2026-11-25 10:30:00")
        );
        // 02:00 GMT+8 on Saturday is still Friday evening in UTC: the zone decides.
        assert!(!is_open(at("2026-11-28 02:00:00")));
    }

    #[test]
    fn an_injected_clock_decides_the_wait() {
        let clock = OffsetClock::reading(at("2026-11-30 10:29:00"));
        let w = wait(&clock).unwrap();
        assert!((59..=60).contains(&w.as_secs()), "{w:?}");
        assert_eq!(wait(&OffsetClock::reading(at("2026-11-27 18:59:00"))), None);
    }
}
