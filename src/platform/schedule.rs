//! Cron schedules: five fields (minute hour day-of-month month weekday),
//! the `@hourly`-style macros, and `@every <duration>` (telefig's own, for
//! sub-minute schedules). Times are UTC, as on most fleet hosts.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    Fields(Box<Fields>),
    Every(Duration),
    Reboot,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fields {
    minutes: Vec<bool>,
    hours: Vec<bool>,
    days: Vec<bool>,
    months: Vec<bool>,
    weekdays: Vec<bool>,
    /// Standard cron: when both day fields are restricted, either may match.
    days_restricted: bool,
    weekdays_restricted: bool,
}

impl Schedule {
    pub fn parse(text: &str) -> Result<Schedule, String> {
        let text = text.trim();
        if let Some(every) = text.strip_prefix("@every ") {
            let d = crate::duration::parse(every).map_err(|e| e.to_string())?;
            if d < Duration::from_secs(1) {
                return Err(format!("`{text}`: @every needs at least 1s"));
            }
            return Ok(Schedule::Every(d));
        }
        let expanded = match text {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            "@reboot" => return Ok(Schedule::Reboot),
            t if t.starts_with('@') => {
                return Err(format!(
                    "unknown schedule `{t}`; use five fields, @hourly, @daily, @weekly, @monthly, @yearly, @reboot or @every 30s"
                ));
            }
            t => t,
        };
        let parts: Vec<&str> = expanded.split_whitespace().collect();
        if parts.len() != 5 {
            return Err(format!(
                "schedule `{text}` is not five cron fields (minute hour day month weekday)"
            ));
        }
        let field = |i: usize, lo: u32, hi: u32, what: &str| {
            parse_field(parts[i], lo, hi).map_err(|m| format!("schedule `{text}`, {what}: {m}"))
        };
        let mut weekdays = field(4, 0, 7, "weekday")?;
        if weekdays[7] {
            weekdays[0] = true; // 7 is Sunday too
        }
        weekdays.truncate(7);
        Ok(Schedule::Fields(Box::new(Fields {
            minutes: field(0, 0, 59, "minute")?,
            hours: field(1, 0, 23, "hour")?,
            days: field(2, 1, 31, "day of month")?,
            months: field(3, 1, 12, "month")?,
            weekdays,
            days_restricted: parts[2] != "*",
            weekdays_restricted: parts[4] != "*",
        })))
    }

    /// The first run strictly after `now` (seconds since the epoch); `None`
    /// for `@reboot` (run once when the daemon starts).
    pub fn next_after(&self, now: i64) -> Option<i64> {
        match self {
            Schedule::Reboot => None,
            Schedule::Every(d) => Some(now + d.as_secs().max(1) as i64),
            Schedule::Fields(f) => {
                // Five years of minutes covers every satisfiable schedule (Feb 29).
                let first = now.div_euclid(60) + 1;
                (first..first + 5 * 366 * 24 * 60)
                    .map(|m| m * 60)
                    .find(|t| f.matches(*t))
            }
        }
    }
}

impl Fields {
    fn matches(&self, t: i64) -> bool {
        let days = t.div_euclid(86_400);
        let secs = t.rem_euclid(86_400);
        let (_, month, day) = civil_from_days(days);
        let weekday = (days + 4).rem_euclid(7) as usize; // 1970-01-01 was a Thursday
        let day_ok = match (self.days_restricted, self.weekdays_restricted) {
            (true, true) => self.days[day as usize] || self.weekdays[weekday],
            _ => self.days[day as usize] && self.weekdays[weekday],
        };
        self.minutes[(secs / 60 % 60) as usize]
            && self.hours[(secs / 3600) as usize]
            && self.months[month as usize]
            && day_ok
    }
}

/// `*`, `5`, `1-5`, `*/15`, `1-30/5`, and comma lists of those.
fn parse_field(text: &str, lo: u32, hi: u32) -> Result<Vec<bool>, String> {
    let mut set = vec![false; hi as usize + 1];
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (
                r,
                s.parse::<u32>()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or(format!("bad step in `{part}`"))?,
            ),
            None => (part, 1),
        };
        let (start, end) = match range {
            "*" => (lo, hi),
            r => match r.split_once('-') {
                Some((a, b)) => (number(a, lo, hi)?, number(b, lo, hi)?),
                None => {
                    let n = number(r, lo, hi)?;
                    (n, if part.contains('/') { hi } else { n })
                }
            },
        };
        if start > end {
            return Err(format!("`{part}` runs backwards"));
        }
        for v in (start..=end).step_by(step as usize) {
            set[v as usize] = true;
        }
    }
    Ok(set)
}

fn number(text: &str, lo: u32, hi: u32) -> Result<u32, String> {
    text.parse::<u32>()
        .ok()
        .filter(|n| (lo..=hi).contains(n))
        .ok_or_else(|| format!("`{text}` is not a number from {lo} to {hi}"))
}

/// (year, month 1-12, day 1-31) of a day count since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2026-11-23T21:14:30Z, a Monday.
    const NOW: i64 = 1_795_468_470;

    #[test]
    fn next_runs() {
        let at = |s: &str| Schedule::parse(s).unwrap().next_after(NOW).unwrap();
        assert_eq!(at("* * * * *"), NOW - 30 + 60);
        assert_eq!(at("*/15 * * * *") % 900, 0);
        assert_eq!(at("@hourly"), NOW - 14 * 60 - 30 + 3600);
        assert_eq!(at("0 0 * * *"), (NOW / 86_400 + 1) * 86_400);
        assert_eq!(at("@every 2s"), NOW + 2);
        // Next Sunday midnight: 2026-11-29.
        assert_eq!(civil_from_days(at("0 0 * * 0") / 86_400), (2026, 11, 29));
        assert_eq!(civil_from_days(at("0 0 * * 7") / 86_400), (2026, 11, 29));
        assert_eq!(civil_from_days(at("0 0 1 1 *") / 86_400), (2027, 1, 1));
        assert_eq!(civil_from_days(at("0 0 29 2 *") / 86_400), (2028, 2, 29));
    }

    #[test]
    fn bad_schedules() {
        for bad in [
            "* * * *",
            "61 * * * *",
            "*/0 * * * *",
            "5-1 * * * *",
            "@often",
            "@every 100ms",
            "a * * * *",
        ] {
            assert!(Schedule::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(NOW / 86_400), (2026, 11, 23));
    }
}
