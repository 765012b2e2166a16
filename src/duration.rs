//! Durations as people write them, in one place: the serviceset file, the
//! platform file and the command line all read them here.
//!
//! Accepted: whole or fractional seconds (`10`, `1.5`) and `jiff`'s
//! duration strings (`10s`, `1m30s`, `200ms`, `1h 30m`, ISO 8601 `PT1M`).
//! Arithmetic is checked: a value that is negative, not a number, or longer
//! than [`MAX`] is an error with a message, never a panic.

use std::time::Duration;

/// The longest duration telefig accepts anywhere: every wait it bounds is
/// far shorter, and this keeps sums such as a gate's deadline
/// (start_period + retries × interval) and Docker's nanosecond fields from
/// overflowing.
pub const MAX: Duration = Duration::from_secs(365 * 24 * 3600);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{text}` is not a duration: {why}; use seconds (10) or a duration string (\"10s\", \"1m30s\", \"200ms\")"
)]
pub struct Error {
    pub text: String,
    pub why: String,
}

fn error(text: impl ToString, why: impl ToString) -> Error {
    Error {
        text: text.to_string(),
        why: why.to_string(),
    }
}

/// Parse a duration written as text.
pub fn parse(text: &str) -> Result<Duration, Error> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(error(text, "it is empty"));
    }
    // A bare number means seconds; jiff reads it once it carries the unit.
    let bare = trimmed.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    let spelled = if bare {
        format!("{trimmed}s")
    } else {
        trimmed.to_owned()
    };
    let signed: jiff::SignedDuration =
        spelled.parse().map_err(|_| error(text, why_not(trimmed)))?;
    bounded(text, signed)
}

/// Why jiff refused `text`, in telefig's words: jiff's own message names
/// its types ("perhaps try parsing into a `jiff::Span`").
fn why_not(text: &str) -> &'static str {
    // A span jiff reads in calendar units: days and longer vary in length.
    if text.parse::<jiff::Span>().is_ok() {
        "days, weeks, months and years are not accepted; give hours (\"48h\")"
    } else {
        "it is not a number followed by a unit (h, m, s, ms, us, ns)"
    }
}

/// A number of whole seconds (a YAML integer).
pub fn from_secs(secs: i128) -> Result<Duration, Error> {
    let max = i128::from(MAX.as_secs());
    match secs {
        s if s < 0 => Err(error(secs, "it is negative")),
        s if s > max => Err(error(secs, too_long())),
        // In range, so the conversion cannot fail.
        s => Ok(Duration::from_secs(u64::try_from(s).unwrap_or(0))),
    }
}

/// A number of seconds with a fraction (a YAML float).
pub fn from_secs_f64(secs: f64) -> Result<Duration, Error> {
    if secs.is_nan() {
        return Err(error(secs, "it is not a number"));
    }
    if secs < 0.0 {
        return Err(error(secs, "it is negative"));
    }
    if secs > MAX.as_secs_f64() {
        return Err(error(secs, too_long()));
    }
    Duration::try_from_secs_f64(secs).map_err(|e| error(secs, e))
}

fn bounded(text: &str, d: jiff::SignedDuration) -> Result<Duration, Error> {
    if d.is_negative() {
        return Err(error(text, "it is negative"));
    }
    let d = Duration::try_from(d).map_err(|e| error(text, e))?;
    if d > MAX {
        return Err(error(text, too_long()));
    }
    Ok(d)
}

fn too_long() -> String {
    format!(
        "it is longer than the limit of {} days",
        MAX.as_secs() / 86_400
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_spellings() {
        for (text, ms) in [
            ("10", 10_000),
            ("0", 0),
            ("1.5", 1_500),
            ("10s", 10_000),
            ("1m30s", 90_000),
            ("1m 30s", 90_000),
            ("200ms", 200),
            ("1.5s", 1_500),
            ("1h", 3_600_000),
            ("PT1M", 60_000),
            (" 5s ", 5_000),
        ] {
            assert_eq!(parse(text), Ok(Duration::from_millis(ms)), "{text}");
        }
    }

    #[test]
    fn extremes_are_errors_with_a_message() {
        for text in [
            "",
            "10x",
            "s",
            "-1",
            "-1s",
            "1e20",
            "1e20s",
            "NaN",
            "inf",
            "18446744073709551615",
            "18446744073709551616s",
            "99999999999999999999h",
            "9223372036854775807s",
            "366d",
            "8784h",
        ] {
            let err = parse(text).expect_err(text);
            assert!(err.to_string().contains("is not a duration"), "{err}");
        }
        assert!(from_secs(-1).is_err());
        assert!(from_secs(i128::from(u64::MAX)).is_err());
        assert_eq!(from_secs(90), Ok(Duration::from_secs(90)));
        for v in [1e20, f64::NAN, f64::INFINITY, -0.5, f64::MAX] {
            assert!(from_secs_f64(v).is_err(), "{v}");
        }
        assert_eq!(from_secs_f64(0.25), Ok(Duration::from_millis(250)));
        assert_eq!(parse("8760h"), Ok(MAX));
    }

    /// jiff's own message names its types ("perhaps try parsing into a
    /// `jiff::Span`"); telefig says what it accepts instead.
    #[test]
    fn a_refusal_says_what_telefig_accepts_not_what_jiff_does() {
        for (text, why) in [
            ("1d", "days, weeks, months and years are not accepted"),
            ("2 weeks", "days, weeks, months and years are not accepted"),
            ("1 year", "days, weeks, months and years are not accepted"),
            ("P1Y", "days, weeks, months and years are not accepted"),
            (
                "10 fortnights",
                "a number followed by a unit (h, m, s, ms, us, ns)",
            ),
            ("10x", "a number followed by a unit (h, m, s, ms, us, ns)"),
        ] {
            let message = parse(text).unwrap_err().to_string();
            assert!(message.contains(why), "{text}: {message}");
            assert!(!message.contains("jiff"), "{text}: {message}");
            assert!(!message.contains("friendly"), "{text}: {message}");
        }
    }
}
