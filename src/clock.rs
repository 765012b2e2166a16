//! The wall clock, read in one place: Unix time in seconds or nanoseconds
//! (0 should the clock read before 1970). Pure code takes times as
//! arguments instead of calling these.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch of `t`.
pub fn unix_secs(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Seconds since the Unix epoch, now.
pub fn now_secs() -> i64 {
    unix_secs(SystemTime::now())
}

/// Nanoseconds since the Unix epoch, now.
pub fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn before_the_epoch_reads_zero() {
        assert_eq!(unix_secs(UNIX_EPOCH - Duration::from_secs(5)), 0);
        assert_eq!(unix_secs(UNIX_EPOCH + Duration::from_secs(5)), 5);
    }
}
