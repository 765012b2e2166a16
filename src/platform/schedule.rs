//! Cron schedules, read by the `croner` crate: five fields (minute hour
//! day-of-month month weekday) or six with seconds first, names (`MON`,
//! `JAN`), the `@hourly`-style macros, Vixie cron's day rule (when both day
//! fields are restricted, either may match), plus `@reboot` and telefig's own
//! `@every <duration>` for sub-minute intervals. A schedule is evaluated in
//! the host's local time zone unless the entry names another (`tz:`), with
//! daylight-saving transitions handled by croner over `jiff`.

use std::str::FromStr;
use std::time::Duration;

use croner::Cron;
use croner::parser::CronParser;
use jiff::Timestamp;
use jiff::tz::TimeZone;

#[derive(Debug, Clone)]
pub enum Schedule {
    Cron(Box<Cron>, TimeZone),
    Every(Duration),
    Reboot,
}

impl Schedule {
    /// Parse `text`, read in the time zone `tz` (an IANA name), or the
    /// host's when `None`.
    pub fn parse(text: &str, tz: Option<&str>) -> Result<Schedule, String> {
        let text = text.trim();
        if let Some(every) = text.strip_prefix("@every ") {
            let d = crate::duration::parse(every).map_err(|e| e.to_string())?;
            if d < Duration::from_secs(1) {
                return Err(format!("`{text}`: @every needs at least 1s"));
            }
            if d.subsec_nanos() != 0 {
                return Err(format!(
                    "`{text}`: @every runs on whole seconds; write one (`@every 2s`)"
                ));
            }
            return Ok(Schedule::Every(d));
        }
        if text == "@reboot" {
            return Ok(Schedule::Reboot);
        }
        let zone = match tz {
            None => TimeZone::system(),
            Some(name) => TimeZone::get(name).map_err(|_| {
                format!(
                    "unknown time zone `{name}`: use an IANA name such as `Europe/Paris` or `UTC`"
                )
            })?,
        };
        let fields = text.split_whitespace().count();
        if !text.starts_with('@') && !(5..=6).contains(&fields) {
            return Err(format!(
                "schedule `{text}` has {fields} fields; use five cron fields (minute hour day month weekday), or six with seconds first"
            ));
        }
        let parsed = if vixie_ands_days(text) {
            CronParser::builder().dom_and_dow(true).build().parse(text)
        } else {
            Cron::from_str(text)
        };
        let cron = parsed.map_err(|e| {
            format!(
                "schedule `{text}`: {}; use five cron fields (minute hour day month weekday), six with seconds first, @hourly, @daily, @weekly, @monthly, @yearly, @reboot or @every 30s",
                e.to_string().trim_end_matches('.')
            )
        })?;
        Ok(Schedule::Cron(Box::new(cron), zone))
    }

    /// The first run strictly after `now` (seconds since the epoch); `None`
    /// for `@reboot` (run once when the daemon starts) and for a schedule
    /// that never comes (`0 0 30 2 *`).
    pub fn next_after(&self, now: i64) -> Option<i64> {
        match self {
            Schedule::Reboot => None,
            Schedule::Every(d) => Some(now + d.as_secs().max(1) as i64),
            Schedule::Cron(cron, zone) => {
                let start = Timestamp::from_second(now).ok()?.to_zoned(zone.clone());
                let next = cron.find_next_occurrence(&start, false).ok()?;
                Some(next.timestamp().as_second())
            }
        }
    }
}

/// Vixie cron ORs the two day fields only when neither starts with `*`: a
/// stepped star (`*/2`) counts as a star, so the days are ANDed. croner
/// treats only a bare `*` so; ask it to AND in that case.
fn vixie_ands_days(text: &str) -> bool {
    let fields: Vec<&str> = text.split_whitespace().collect();
    let (dom, dow) = match fields.len() {
        5 => (fields[2], fields[4]),
        6 => (fields[3], fields[5]),
        _ => return false,
    };
    dom.starts_with('*') || dow.starts_with('*')
}

/// (year, month 1-12, day 1-31) of a day count since 1970-01-01, in UTC.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let date = Timestamp::from_second(days.saturating_mul(86_400))
        .unwrap_or(Timestamp::MAX)
        .to_zoned(TimeZone::UTC)
        .date();
    (
        i64::from(date.year()),
        date.month() as u32,
        date.day() as u32,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2026-11-23T21:14:30Z, a Monday.
    const NOW: i64 = 1_795_468_470;

    fn at(schedule: &str, tz: &str) -> i64 {
        Schedule::parse(schedule, Some(tz))
            .unwrap()
            .next_after(NOW)
            .unwrap()
    }

    #[test]
    fn next_runs_in_utc() {
        let utc = |s: &str| at(s, "UTC");
        assert_eq!(utc("* * * * *"), NOW - 30 + 60);
        assert_eq!(utc("*/15 * * * *") % 900, 0);
        assert_eq!(utc("@hourly"), NOW - 14 * 60 - 30 + 3600);
        assert_eq!(utc("0 0 * * *"), (NOW / 86_400 + 1) * 86_400);
        assert_eq!(utc("*/5 * * * * *"), NOW + 5);
        assert_eq!(
            Schedule::parse("@every 2s", None)
                .unwrap()
                .next_after(NOW)
                .unwrap(),
            NOW + 2
        );
        // Next Sunday midnight: 2026-11-29.
        assert_eq!(civil_from_days(utc("0 0 * * 0") / 86_400), (2026, 11, 29));
        assert_eq!(civil_from_days(utc("0 0 * * 7") / 86_400), (2026, 11, 29));
        assert_eq!(civil_from_days(utc("0 0 * * SUN") / 86_400), (2026, 11, 29));
        assert_eq!(civil_from_days(utc("0 0 1 1 *") / 86_400), (2027, 1, 1));
        assert_eq!(civil_from_days(utc("0 0 29 2 *") / 86_400), (2028, 2, 29));
    }

    #[test]
    fn a_stepped_day_of_month_is_unrestricted_with_a_wildcard_weekday() {
        // `*/2` in day-of-month with `*` weekday: odd days only (Vixie cron
        // ANDs a star weekday), not "every day because weekday is *".
        let next = at("0 0 */2 * *", "UTC");
        assert_eq!(civil_from_days(next / 86_400), (2026, 11, 25));
        // `*/2` starts with a star, so with a restricted weekday the two
        // are ANDed as Vixie cron does: an odd day that is a Monday.
        let next = at("0 0 */2 * 1", "UTC");
        assert_eq!(civil_from_days(next / 86_400), (2026, 12, 7));
        // Both restricted: either matches (the 1st or any Friday).
        let next = at("0 0 1 * 5", "UTC");
        assert_eq!(civil_from_days(next / 86_400), (2026, 11, 27));
    }

    #[test]
    fn schedules_are_read_in_the_named_time_zone() {
        // 02:00 in New York (UTC-5 in November) is 07:00 UTC.
        let next = at("0 2 * * *", "America/New_York");
        assert_eq!(next % 86_400, 7 * 3600);
        let next = at("0 2 * * *", "Asia/Kolkata");
        assert_eq!(next % 86_400, 20 * 3600 + 30 * 60);
    }

    #[test]
    fn bad_schedules() {
        for bad in [
            "* * * *",
            "61 * * * *",
            "*/0 * * * *",
            "@often",
            "@every 100ms",
            "@every 1.5s",
            "a * * * *",
            "0 0 0 * * * 2030",
            "* * * * * * *",
        ] {
            assert!(Schedule::parse(bad, None).is_err(), "{bad}");
        }
        let err = Schedule::parse("@daily", Some("Mars/Olympus")).unwrap_err();
        assert!(err.contains("unknown time zone `Mars/Olympus`"), "{err}");
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(NOW / 86_400), (2026, 11, 23));
    }
}
