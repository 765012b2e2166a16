//! The numbers Docker takes for a container's resources and restarts, read
//! exactly from the text a person wrote: `cpus`, `mem_limit`,
//! `cpuset_cpus`, `restart: on-failure:N`. A value outside what Docker
//! accepts, or one that would have to be rounded to fit its field, is
//! refused with what to write instead; nothing is clamped.

use super::container::RestartPolicy;
use crate::serviceset::parse_bytes;

/// Docker refuses a memory limit under 6 MiB.
pub const MIN_MEMORY: i64 = 6 << 20;
/// Docker refuses fewer than 0.01 CPUs.
const MIN_NANO_CPUS: i64 = 10_000_000;

/// `mem_limit` in bytes.
pub fn memory(text: &str) -> Result<i64, String> {
    let bytes = parse_bytes(text)?;
    if bytes < MIN_MEMORY {
        return Err(format!(
            "mem_limit `{text}` is under 6 MiB, Docker's least (\"512m\")"
        ));
    }
    Ok(bytes)
}

/// `cpus` (a decimal with at most 9 places) in billionths, as Docker's `NanoCpus`.
pub fn nano_cpus(text: &str) -> Result<i64, String> {
    let bad = |why: &str| {
        format!(
            "cpus `{text}` {why}: write a positive number of CPUs, from 0.01, with at most 9 decimals (\"0.5\", \"2\")"
        )
    };
    let (whole, fraction) = text.trim().split_once('.').unwrap_or((text.trim(), ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(fraction) || text.trim().ends_with('.') {
        return Err(bad("is not a plain decimal number"));
    }
    if fraction.len() > 9 {
        return Err(bad("has more than 9 decimals"));
    }
    let nanos = whole
        .parse::<i64>()
        .ok()
        .and_then(|w| w.checked_mul(1_000_000_000))
        .and_then(|w| {
            let part = format!("{fraction:0<9}").parse::<i64>().ok()?;
            w.checked_add(part)
        })
        .ok_or_else(|| bad("is more than Docker can take"))?;
    if nanos < MIN_NANO_CPUS {
        return Err(bad("is under 0.01"));
    }
    Ok(nanos)
}

/// `cpuset_cpus`: CPU numbers and ranges (`0-3,8`), as the kernel's cpuset reads them.
pub fn cpuset(text: &str) -> Result<String, String> {
    let bad = |why: String| {
        format!("cpuset_cpus `{text}` {why}: write CPU numbers and ranges such as `0-3,8`")
    };
    if text.is_empty() {
        return Err(bad("is empty".into()));
    }
    for item in text.split(',') {
        let (low, high) = item.split_once('-').unwrap_or((item, item));
        let number = |s: &str| {
            s.bytes()
                .all(|b| b.is_ascii_digit())
                .then(|| s.parse::<u32>().ok())
                .flatten()
        };
        match (number(low), number(high)) {
            (Some(l), Some(h)) if l <= h => {}
            (Some(_), Some(_)) => return Err(bad(format!("has the range `{item}` backwards"))),
            _ => return Err(bad(format!("has `{item}`, which is not a CPU or range"))),
        }
    }
    Ok(text.to_owned())
}

/// `no`, `always`, `unless-stopped`, `on-failure` or `on-failure:N`.
pub fn restart_policy(text: &str) -> Result<RestartPolicy, String> {
    const NAMES: [&str; 4] = ["no", "always", "unless-stopped", "on-failure"];
    let (name, count) = match text.split_once(':') {
        Some((name, count)) => (name, Some(count)),
        None => (text, None),
    };
    if !NAMES.contains(&name) {
        let hint = crate::diagnostic::did_you_mean(name, NAMES)
            .unwrap_or_else(|| "use no, always, unless-stopped or on-failure[:N]".into());
        return Err(format!("unknown restart policy `{text}`; {hint}"));
    }
    let maximum_retry_count = match count {
        None => None,
        Some(_) if name != "on-failure" => {
            return Err(format!(
                "restart policy `{text}`: only on-failure takes a count (`on-failure:3`)"
            ));
        }
        Some(n) => Some(
            n.bytes()
                .all(|b| b.is_ascii_digit())
                .then(|| n.parse::<i32>().ok())
                .flatten()
                .ok_or_else(|| {
                    format!(
                        "restart policy `{text}`: `{n}` is not a count of retries (0 to {})",
                        i32::MAX
                    )
                })?
                .into(),
        ),
    };
    Ok(RestartPolicy {
        name: name.to_owned(),
        maximum_retry_count,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpus_are_exact_or_refused() {
        for (text, nanos) in [
            ("1", 1_000_000_000),
            ("0.5", 500_000_000),
            ("0.3", 300_000_000),
            ("0.01", 10_000_000),
            ("2.123456789", 2_123_456_789),
            (" 4 ", 4_000_000_000),
        ] {
            assert_eq!(nano_cpus(text), Ok(nanos), "{text}");
        }
        for (text, why) in [
            ("1e300", "not a plain decimal"),
            ("-1", "not a plain decimal"),
            ("+1", "not a plain decimal"),
            ("1.", "not a plain decimal"),
            (".5", "not a plain decimal"),
            ("NaN", "not a plain decimal"),
            ("0", "under 0.01"),
            ("0.001", "under 0.01"),
            ("0.0000000001", "more than 9 decimals"),
            ("9223372037", "more than Docker can take"),
            ("99999999999999999999", "more than Docker can take"),
        ] {
            let err = nano_cpus(text).unwrap_err();
            assert!(err.contains(why), "{text}: {err}");
        }
    }

    #[test]
    fn memory_has_docker_s_floor() {
        assert_eq!(memory("512m"), Ok(512 << 20));
        assert_eq!(memory("6m"), Ok(MIN_MEMORY));
        assert!(memory("5m").unwrap_err().contains("under 6 MiB"));
        assert!(memory("100").unwrap_err().contains("under 6 MiB"));
        assert!(memory("99999999999999999999g").is_err());
    }

    #[test]
    fn cpusets() {
        for ok in ["0", "0-3", "0-3,8", "0,2,4-7", "3-3"] {
            assert_eq!(cpuset(ok), Ok(ok.to_owned()), "{ok}");
        }
        for (bad, why) in [
            ("", "is empty"),
            ("3-1", "backwards"),
            ("a", "`a`"),
            ("-1", "`-1`"),
            ("0-", "`0-`"),
            ("0,,1", "``"),
            ("+1", "`+1`"),
            ("99999999999999999999", "not a CPU"),
            ("0-3 ", "`0-3 `"),
        ] {
            let err = cpuset(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn restart_policies() {
        let policy = |t: &str| restart_policy(t).map(|p| (p.name, p.maximum_retry_count));
        assert_eq!(policy("always"), Ok(("always".into(), None)));
        assert_eq!(policy("on-failure"), Ok(("on-failure".into(), None)));
        assert_eq!(policy("on-failure:5"), Ok(("on-failure".into(), Some(5))));
        assert_eq!(policy("on-failure:0"), Ok(("on-failure".into(), Some(0))));
        for (bad, why) in [
            ("alway", "did you mean `always`?"),
            ("sometimes", "use no, always"),
            ("always:3", "only on-failure takes a count"),
            ("on-failure:+5", "`+5` is not a count"),
            ("on-failure:-1", "`-1` is not a count"),
            ("on-failure:", "`` is not a count"),
            ("on-failure:2147483648", "is not a count"),
            ("on-failure:99999999999", "is not a count"),
        ] {
            let err = restart_policy(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }
}
