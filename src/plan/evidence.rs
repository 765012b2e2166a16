//! The evidence of a failure: what an engineer needs at 3 a.m. about the
//! container that failed its gate or its bake — its last health probe
//! outputs, exit code, OOM-killed flag, restart count and last lines of
//! output. Data only: the executor gathers it (`engine::execute`, masked
//! through the process's redactor as it is read), the deploy log keeps it
//! (`state::deploys`), `start` prints it above its last line and `status`
//! until the next successful deploy.

use serde::{Deserialize, Serialize};

/// How many lines of a container's output the evidence keeps.
pub const LOG_LINES: usize = 10;
/// The longest line kept, in bytes (a longer one is cut, with `…`).
const LINE_BYTES: usize = 300;

/// What was known of a failed container when its gate or bake failed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    pub container: String,
    /// Where it failed: `gate` or `bake`.
    pub during: String,
    /// What happened, in words (`turned unhealthy`, `exited with code 3`).
    pub cause: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
    #[serde(default)]
    pub oom_killed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_count: Option<i64>,
    /// Docker's last health probe outputs, oldest first (it keeps five).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub health_probes: Vec<String>,
    /// The last lines of its output (stdout and stderr), oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub log_tail: Vec<String>,
}

impl Evidence {
    /// The lines people read, each starting with `container: `.
    pub fn lines(&self) -> Vec<String> {
        let c = &self.container;
        let mut out = vec![format!("{c}: {} during its {}", self.cause, self.during)];
        let mut facts = Vec::new();
        if let Some(code) = self.exit_code {
            facts.push(format!("exit code {code}"));
        }
        facts.push(format!(
            "OOM-killed: {}",
            if self.oom_killed { "yes" } else { "no" }
        ));
        if let Some(n) = self.restart_count {
            facts.push(format!("restarts: {n}"));
        }
        out.push(format!("{c}: {}", facts.join(", ")));
        for p in &self.health_probes {
            out.push(format!("{c}: health probe said: {p}"));
        }
        for l in &self.log_tail {
            out.push(format!("{c}: output: {l}"));
        }
        out
    }
}

/// Lines of text as the evidence keeps them: trimmed, blank ones dropped,
/// the last `keep`, each cut at a bound.
pub fn last_lines(text: &str, keep: usize) -> Vec<String> {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty())
        .collect();
    lines[lines.len().saturating_sub(keep)..]
        .iter()
        .map(|l| cut(l))
        .collect()
}

fn cut(line: &str) -> String {
    if line.len() <= LINE_BYTES {
        return line.to_owned();
    }
    format!("{}…", &line[..line.floor_char_boundary(LINE_BYTES)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evidence_reads_as_lines_that_each_name_the_container() {
        let e = Evidence {
            container: "shop-web".into(),
            during: "bake".into(),
            cause: "turned unhealthy".into(),
            exit_code: None,
            oom_killed: false,
            restart_count: Some(0),
            health_probes: vec!["ok".into(), "db down".into()],
            log_tail: vec!["listening".into(), "lost db".into()],
        };
        assert_eq!(
            e.lines(),
            [
                "shop-web: turned unhealthy during its bake",
                "shop-web: OOM-killed: no, restarts: 0",
                "shop-web: health probe said: ok",
                "shop-web: health probe said: db down",
                "shop-web: output: listening",
                "shop-web: output: lost db",
            ]
        );
    }

    #[test]
    fn only_the_last_lines_are_kept_each_bounded() {
        let text = format!("a\n\n  \nb\nc\n{}\n", "x".repeat(1000));
        let kept = last_lines(&text, 3);
        assert_eq!(kept[..2], ["b", "c"]);
        assert!(kept[2].ends_with('…') && kept[2].len() < 310, "{}", kept[2]);
        assert!(last_lines("", 3).is_empty());
    }

    #[test]
    fn evidence_round_trips_through_the_deploy_log_format() {
        let e = Evidence {
            container: "web".into(),
            during: "gate".into(),
            cause: "exited with code 3".into(),
            exit_code: Some(3),
            oom_killed: true,
            ..Evidence::default()
        };
        let text = serde_json::to_string(&e).unwrap();
        assert_eq!(
            text,
            r#"{"container":"web","during":"gate","cause":"exited with code 3","exit_code":3,"oom_killed":true}"#
        );
        assert_eq!(serde_json::from_str::<Evidence>(&text).unwrap(), e);
    }
}
